"""A built-in corpus for checking a tokenizer against the reference.

``localcoder convert --verify`` tokenizes these strings with llama.cpp and
with the reference and demands equal ids. The strings aim at the places where
a GGUF tokenizer goes wrong: whitespace runs (CodeGen2.5's 38 extra tokens,
reachable only by merges), the regex's whitespace back-off, characters whose
Unicode class is easy to get wrong, and special-token text. Deterministic, so
a failure can be reproduced, and small enough to encode in well under a second.
"""

from __future__ import annotations

import random

_WORDS = (
    "x",
    "i",
    "self",
    "return",
    "def",
    "if",
    "else",
    "for",
    "while",
    "import",
    "the",
    "The",
    "THE",
    "data",
    "value",
    "foo_bar",
    "camelCase",
    "HTTPServer",
    "naïve",
    "café",
    "Ärger",
    "straße",
    "Ελλάδα",
    "привет",
    "日本語",
    "中文",
    "한국어",
    "עברית",
    "العربية",
    "हिन्दी",
    "ไทย",
    "🙂",
    "👨‍👩‍👧",
    "e\u0301",
    "a\u0308",
)
_NUMBERS = ("0", "1", "42", "3.14", "1e-5", "0x1F", "1_000_000", "١٢٣", "²", "Ⅻ", "½", "007")
_PUNCT = (
    "(",
    ")",
    "()",
    "[]",
    "{",
    "}",
    ":",
    ";",
    ",",
    ".",
    "...",
    "->",
    "=>",
    "==",
    "!=",
    "+=",
    "**",
    "//",
    "#",
    "/*",
    "*/",
    "'",
    '"',
    '"""',
    "`",
    "\\",
    "@",
    "$",
    "%",
    "&&",
    "||",
    "<",
    ">",
    "<=",
    "</div>",
    "?",
    "!",
    "~",
    "^",
    "|",
    "—",
    "…",
    "«»",
)
_ODD_CHARS = (
    "\u0085",
    "\u00a0",
    "\u3000",
    "\u001c",
    "\u001f",
    "\u200b",
    "\u200d",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u1680",
    "\u180e",
    "\ufeff",
    "\u000b",
    "\u000c",
    "\u200e",
    "\u202e",
    "\u0000",
    "\u007f",
    "\ufffd",
)
_SPECIALS = (
    "<|endoftext|>",
    "<mask_1>",
    "<mask_2>",
    "<mask_881>",
    "<sep>",
    "<eom>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<reponame>",
    "<filename>",
    "<dummy_0>",
    "<jupyter_output>",
)
_NEAR_MISSES = (
    "<mask_0>",
    "<mask_882>",
    "<mask_01>",
    "<mask_1",
    "mask_1>",
    "< sep>",
    "<sep >",
    "<SEP>",
    "<|endoftext|",
    "<|endoftext>",
    "<<sep>>",
    "<eom><",
    "<|startoftext|>",
)
_SNIPPETS = (
    'def add(a, b):\n    """Return a + b."""\n    return a + b\n',
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    'for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(f"{i} is even")\n\telse:\n\t\tcontinue\n',
    '#include <stdio.h>\n\nint main(void) {\n    printf("%d\\n", 42);\n    return 0;\n}\n',
    "static int sum(const int *xs, size_t n)\n{\n\tint s = 0;\n\tfor (size_t i = 0; i < n; ++i)\n"
    "\t\ts += xs[i];\n\treturn s;\n}\n",
    "function greet(name) {\n  const msg = `Hello, ${name}!`;\n  console.log(msg);\n  return msg;\n}\n",
    "const xs = [1, 2, 3].map((x) => x * 2);  // doubled\n",
    "if (a && b) {\r\n    doIt();\r\n}\r\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "    \n\n    \n\t\n",
    "x = {\n    'key': \"value\",\n    'n': [1, 2.5, -3e10],\n}\n",
)


def _handwritten() -> list[str]:
    cases = [
        "",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\n\n",
        " \n",
        "\n ",
        "a",
        "'",
        "don't",
        "DON'T",
        "'s",
        "'S",
        "it's",
        "we're",
        "they've",
        "I'm",
        "we'll",
        "he'd",
        "'re'",
        "''s",
        "'ll've",
        "rock 'n' roll",
        "’s",
        "l'amour",
        "'Sam",
        "ISN'T IT",
        "'Tis",
        "O'Reilly",
        "WE'LL",
        "x'sy",
        "' s",
        "it''s",
        "prefix<mask_1>suffix<|endoftext|><sep><mask_1>",
        "x<eom>",
        "<|endoftext|><|endoftext|>",
        "<sep><sep>",
        "a <sep> b",
        "Hello, world!",
        "1234567890",
        "3.14159",
        "a1b2c3",
        "x=1;y=2",
        "😀😀😀",
        "漢字かなカナ",
        "🇫🇷🇩🇪",
        "Ａｂｃ",
        "ﬁ",
        "Zalgo: z̷̢͔a̶l̵g̸o̴",
    ]
    cases += _SNIPPETS + _SPECIALS + _NEAR_MISSES + _ODD_CHARS
    # Long pre-tokens, where a quadratic or subtly wrong merge loop shows.
    cases += [" " * 100 + "x", "\t" * 64, "x" * 300, "0123456789" * 30, "ab" * 200, "é" * 150]
    cases += [f"a{c}b" for c in _ODD_CHARS] + [f"  {c}  x" for c in _ODD_CHARS]
    return cases


def _whitespace_runs() -> list[str]:
    cases = []
    for n in range(1, 41):
        space, tab = " " * n, "\t" * n
        cases += [
            space,
            tab,
            space + "x",
            tab + "x",
            "x" + space,
            "x" + tab,
            "x" + space + "y",
            "x" + tab + "y",
            "\n" + space + "return x",
            "\n" + tab + "if y:",
            "x" + space + "\n",
            space + "\n" + space,
            "(" + space + ")",
            "#" + space + "1",
            space + "42",
            space + "é",
            "\r\n" + space + "x",
            space + "<sep>" + space,
        ]
    return cases


def _random_cases(rng: random.Random, count: int) -> list[str]:
    """Random mixtures, weighted towards whitespace next to everything else."""
    space_runs = [" " * n for n in range(1, 41)] + ["\t" * n for n in range(1, 12)]
    mixed_ws = [" \t", "\t ", "  \t\t", "\t  \t", "\n", "\r\n", "\r", "\n\n", " \n ", "\t\n"]
    kinds = (
        (_WORDS, 6),
        (_NUMBERS, 2),
        (_PUNCT, 4),
        (space_runs, 6),
        (mixed_ws, 3),
        (_ODD_CHARS, 1),
        (_SPECIALS, 1),
        (_NEAR_MISSES, 1),
    )
    pools = [pool for pool, _ in kinds]
    weights = [weight for _, weight in kinds]
    cases = []
    for _ in range(count):
        parts = [rng.choice(rng.choices(pools, weights)[0]) for _ in range(rng.randint(1, 12))]
        cases.append("".join(parts))
    return cases


def _reindented_snippets() -> list[str]:
    """The code snippets with other indentation units and line endings."""
    cases = []
    for snippet in _SNIPPETS:
        for unit in ("  ", "   ", "        ", "\t", "\t\t", " \t"):
            cases.append(snippet.replace("    ", unit).replace("\t", unit))
        cases += [snippet.replace("\n", "\r\n"), snippet.replace("\n", "\r"), snippet.rstrip("\n")]
    return cases


def verification_corpus() -> list[str]:
    """About 2,000 strings covering the risky corners of CodeGen2.5's tokenizer."""
    rng = random.Random(25_2023)
    corpus = _handwritten() + _whitespace_runs() + _reindented_snippets()
    corpus += _random_cases(rng, 2000 - len(corpus))
    return corpus
