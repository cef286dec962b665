"""The pieces the editor protocols add, on their own: snippets, cuts, Ollama's fields, llama-server's fields."""

from __future__ import annotations

import pytest

from localcoder.completion.infill import InfillInput
from localcoder.completion.prompts import FORMATS, Vocabulary, build_prompt
from localcoder.completion.snippets import Snippet, fit, render, snippet_ids
from localcoder.completion.truncate import Chained, IndentFloor, StopStrings
from localcoder.server.fields import BadRequest
from localcoder.server.llama_api import _only, is_llama_body, parse_llama_infill
from localcoder.server.ollama_api import keep_alive_seconds, parse_generate, read_spelled_infill

BYTES = Vocabulary(lambda text: list(text.encode()), {}, frozenset)  # one token a byte: budgets are lengths


def feed_all(cut, text: str, step: int = 3) -> str:
    out = "".join(cut.feed(text[i : i + step]) for i in range(0, len(text), step))
    return out + cut.finish()


def test_snippets_keep_the_newest_that_fit_in_their_order() -> None:
    snippets = (Snippet("a = 1\n", "a.py"), Snippet("b = 2\n", "b.js"), Snippet("   \n", "blank.py"))
    assert render(snippets[0]) == "# a.py\na = 1\n\n" and render(snippets[1]).startswith("// b.js\n")
    whole = snippet_ids(BYTES, snippets, 1000)
    assert bytes(whole.ids).decode() == render(snippets[0]) + render(snippets[1]) and whole.left_out == 0
    newest = snippet_ids(BYTES, snippets, len(render(snippets[1])))
    assert bytes(newest.ids).decode() == render(snippets[1]) and (newest.used, newest.left_out) == (1, 1)


def test_snippets_that_do_not_fit_leave_by_rank_after_the_editors_chunks_are_kept() -> None:
    """The repository's snippets come in path order; when the prompt's room is short of the context stage's
    count, the worst ranked leave first (not the first by path), and the editor's chunk stays."""
    ranked = (
        Snippet("a = 1\n", "a.py", rank=3),
        Snippet("b = 2\n", "b.py", rank=1),
        Snippet("c = 3\n", "c.py", rank=2),
    )
    chunk = Snippet("d = 4\n", "d.py")
    size = len(render(chunk))  # every snippet renders to as many bytes
    kept, room = fit((*ranked, chunk), 3 * size + 1, lambda snippet: len(render(snippet)))
    assert kept == (ranked[1], ranked[2], chunk) and room == 1
    assert fit((*ranked, chunk), 4 * size, lambda snippet: len(render(snippet))) == ((*ranked, chunk), 0)  # control
    two = snippet_ids(BYTES, (*ranked, chunk), 2 * size)
    assert bytes(two.ids).decode() == render(ranked[1]) + render(chunk) and (two.used, two.left_out) == (2, 2)


def test_snippet_ids_lead_the_prompt_and_count_in_its_budget() -> None:
    lead = snippet_ids(BYTES, (Snippet("x = 1\n", "x.py"),), 100).ids
    prompt = build_prompt(FORMATS["left-to-right"], BYTES, "def f():\n", "", budget=200, lead=lead)
    assert prompt.ids[: len(lead)] == lead and bytes(prompt.ids[len(lead) :]).decode() == "def f():\n"
    trimmed = build_prompt(FORMATS["left-to-right"], BYTES, "one\ntwo\n", "", budget=len(lead) + 5, lead=lead)
    assert trimmed.ids[: len(lead)] == lead and trimmed.trimmed_prefix_lines == 1


def test_indent_floor_stops_at_a_line_indented_less() -> None:
    text = "x = 1\n        y = 2\n\n    z = 3\n"
    cut = IndentFloor(8)
    assert feed_all(cut, text) == "x = 1\n        y = 2\n\n" and cut.stopped
    assert feed_all(IndentFloor(4), text) == text  # every later line is indented enough
    chained = Chained(StopStrings(("y",)), IndentFloor(4))
    assert feed_all(chained, text, 1) == "x = 1\n        " and chained.stopped and chained.text == "x = 1\n        "


def test_keep_alive_and_generate_fields() -> None:
    assert keep_alive_seconds("5m") == 300 and keep_alive_seconds(1800) == 1800 and keep_alive_seconds("-1") == -1
    assert keep_alive_seconds(None) is None
    with pytest.raises(BadRequest, match="keep_alive"):
        keep_alive_seconds("soon")
    request = parse_generate({"model": "m", "prompt": "a", "options": {"num_predict": -1, "stop": "x", "top_k": 5}})
    assert request.stream and request.sampling.max_tokens == 1024 and request.stop == ("x",)
    assert request.sampling.top_k == 5 and request.source == InfillInput("a", infill=False)
    assert parse_generate({"prompt": "", "suffix": ""}).source == InfillInput("", "", infill=True)
    assert parse_generate({"prompt": ""}).source is None
    with pytest.raises(BadRequest, match="images"):
        parse_generate({"prompt": "a", "images": ["..."]})
    with pytest.raises(BadRequest, match="options.temperature"):
        parse_generate({"prompt": "a", "options": {"temperature": "hot"}})


def test_a_prompt_spelling_the_infill_format_is_read_back() -> None:
    fmt = FORMATS["codegen-infill"]
    spelled = InfillInput("def f():\n<mask_1>\nf()\n<|endoftext|><sep><mask_1>    ret", infill=False)
    assert read_spelled_infill(fmt, spelled) == InfillInput("def f():\n    ret", "\nf()\n", layout="cursor")
    plain = InfillInput("def f():\n", infill=False)
    assert read_spelled_infill(fmt, plain) is plain


def test_llama_server_fields() -> None:
    assert is_llama_body({"input_prefix": "a"}) and not is_llama_body({"text": "a", "line": 1, "prompt": "x"})
    request = parse_llama_infill({"input_prefix": "a\n", "prompt": "  b", "input_suffix": "\n", "n_predict": 0})
    assert request.source.prefix == "a\n  b" and request.n_predict == 0 and request.sampling.max_tokens == 1
    body = {"content": "x", "timings": {"prompt_n": 3, "predicted_n": 1}}
    assert _only(body, ("content", "timings/prompt_n", "missing", "")) == {"content": "x", "timings/prompt_n": 3}
    assert _only(body, None) is body
