"""CodeGen1 and CodeGen2 vocabularies, read from the Hugging Face tokenizer files they ship.

CodeGen1 repos carry GPT-2's vocab.json and merges.txt plus added_tokens.json
(38 runs of spaces and tabs, ids 50257..50294); CodeGen2 repos also carry a
tokenizer.json whose added tokens include ``<mask_N>``, ``<sep>`` and
``<eom>``. This module turns either layout into the arrays of a GGUF "gpt2"
tokenizer that tokenizes as transformers does.

Unlike CodeGen2.5's tiktoken encoding, Hugging Face splits every added token,
whitespace runs included, out of the text before the regex and BPE run, taking
the longest match first: ``"\\n    return"`` is ``"\\n"``, ``"    "``,
``"return"``. llama.cpp does the same for USER_DEFINED tokens, so non-special
added tokens are typed USER_DEFINED (not NORMAL with extra merges, which would
give ``"   "``, ``" return"``); special ones are CONTROL. Ids past the
tokenizer's last token up to config.json's vocab_size are padding rows of the
embedding and become UNUSED placeholders that nothing can produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.errors import ConvertError
from ggufkit.vocab.codegen25 import TOKEN_TYPE_CONTROL, TOKEN_TYPE_NORMAL, GGUFVocab

# gguf.TokenType values not needed by CodeGen2.5, spelled out to keep gguf out of this module.
TOKEN_TYPE_USER_DEFINED = 4
TOKEN_TYPE_UNUSED = 5

ENDOFTEXT = "<|endoftext|>"
INFILL_TOKENS = ("<mask_1>", "<sep>", "<eom>")
_SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class AddedToken:
    """One entry of Hugging Face's added vocabulary."""

    id: int
    content: str
    special: bool


@dataclass(frozen=True)
class CheckpointVocab:
    """The GGUF vocabulary of a checkpoint and the ids a prompt format needs."""

    vocab: GGUFVocab
    eos_id: int
    bos_id: int
    special_ids: dict[str, int]
    has_infill: bool
    eom_id: int | None


def read_checkpoint_vocab(directory: Path, vocab_size: int) -> CheckpointVocab:
    """Read tokenizer.json, else vocab.json + merges.txt + added_tokens.json, padded to vocab_size rows."""
    directory = Path(directory)
    config = _read_json(directory / "tokenizer_config.json", required=False) or {}
    special_map = _read_json(directory / "special_tokens_map.json", required=False) or {}
    if not isinstance(config, dict) or not isinstance(special_map, dict):
        raise ConvertError(f"{directory}: tokenizer_config.json or special_tokens_map.json is not a JSON object")
    if config.get("add_prefix_space"):
        raise ConvertError(f"{directory / 'tokenizer_config.json'}: add_prefix_space is set, which GGUF cannot express")
    if (directory / "tokenizer.json").is_file():
        base, merges, added = _read_tokenizer_json(directory / "tokenizer.json")
    else:
        base, merges, added = _read_legacy_files(directory, config, _special_texts(config, special_map))
    tokens, types = _token_table(base, added, vocab_size, directory)
    by_text = {token.content: token.id for token in added}

    def role_id(role: str, default: str) -> int:
        text = _token_text(config.get(role)) or _token_text(special_map.get(role)) or default
        token_id = by_text.get(text, base.get(text))
        if token_id is None:
            raise ConvertError(f"{directory}: the tokenizer's {role} {text!r} is not in its vocabulary")
        return token_id

    eos_id = role_id("eos_token", ENDOFTEXT)
    return CheckpointVocab(
        vocab=GGUFVocab(tokens=tokens, token_types=types, merges=merges),
        eos_id=eos_id,
        bos_id=role_id("bos_token", tokens[eos_id]),
        special_ids={token.content: token.id for token in added if token.special},
        has_infill=all(text in by_text for text in INFILL_TOKENS),
        eom_id=by_text.get("<eom>"),
    )


def _read_json(path: Path, required: bool = True) -> Any:
    if not path.is_file():
        if required:
            raise ConvertError(f"{path} is missing")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConvertError(f"{path} is not valid JSON: {str(exc).splitlines()[0]}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {twice!r} appears twice")
    return result


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], list[str], list[AddedToken]]:
    data = _read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else None
        raise ConvertError(f"{path}: the tokenizer model is {kind!r}; only byte-level BPE is supported")
    pre = data.get("pre_tokenizer")
    byte_level = isinstance(pre, dict) and pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
    if data.get("normalizer") or not byte_level or pre.get("add_prefix_space"):
        raise ConvertError(f"{path}: only GPT-2's byte-level pre-tokenizer without a prefix space is supported")
    if model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise ConvertError(f"{path}: BPE dropout or subword affixes are set, which GGUF cannot express")
    base = _check_vocab(model.get("vocab"), path)
    merges = _check_merges(model.get("merges"), path)
    entries = data.get("added_tokens") or []
    if not isinstance(entries, list):
        raise ConvertError(f"{path}: 'added_tokens' is not a list")
    added = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int) or not entry.get("content"):
            raise ConvertError(f"{path}: malformed added token {entry!r}")
        if any(entry.get(flag) for flag in ("lstrip", "rstrip", "single_word")):
            raise ConvertError(f"{path}: added token {entry['content']!r} strips spaces, which GGUF cannot express")
        added.append(AddedToken(entry["id"], entry["content"], bool(entry.get("special"))))
    return base, merges, added


def _read_legacy_files(
    directory: Path, config: dict[str, Any], special_texts: set[str]
) -> tuple[dict[str, int], list[str], list[AddedToken]]:
    base = _check_vocab(_read_json(directory / "vocab.json"), directory / "vocab.json")
    merges_path = directory / "merges.txt"
    if not merges_path.is_file():
        raise ConvertError(f"{merges_path} is missing")
    try:
        lines = merges_path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvertError(f"{merges_path} cannot be read: {exc}") from None
    merges = _check_merges([line for line in lines if line and not line.startswith("#version")], merges_path)
    added_path = directory / "added_tokens.json"
    extra = _read_json(added_path, required=False) or {}
    if not isinstance(extra, dict) or not all(isinstance(i, int) for i in extra.values()):
        raise ConvertError(f"{added_path}: expected an object of token -> id")
    added = [AddedToken(token_id, text, text in special_texts) for text, token_id in extra.items()]
    # Newer saves list added tokens (with their ids) in tokenizer_config.json instead.
    decoder = config.get("added_tokens_decoder") or {}
    for key, entry in decoder.items() if isinstance(decoder, dict) else ():
        text = _token_text(entry)
        if not key.isdigit() or text is None:
            raise ConvertError(f"{directory / 'tokenizer_config.json'}: malformed added token {key!r}: {entry!r}")
        added.append(AddedToken(int(key), text, text in special_texts))
    # The end-of-text token lives in vocab.json but behaves as an added special token.
    added += [AddedToken(base[text], text, True) for text in sorted(special_texts) if text in base]
    return base, merges, added


def _special_texts(config: dict[str, Any], special_map: dict[str, Any]) -> set[str]:
    """Texts that tokenizer_config.json or special_tokens_map.json call special."""
    texts: set[str] = set()
    for source in (config, special_map):
        for role in _SPECIAL_ROLES:
            texts.add(_token_text(source.get(role)) or "")
        for entry in source.get("additional_special_tokens") or ():
            texts.add(_token_text(entry) or "")
    decoder = config.get("added_tokens_decoder")
    for entry in decoder.values() if isinstance(decoder, dict) else ():
        if isinstance(entry, dict) and entry.get("special"):
            texts.add(_token_text(entry) or "")
    texts.discard("")
    return texts


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json spells it: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _check_vocab(vocab: Any, path: Path) -> dict[str, int]:
    if not isinstance(vocab, dict) or not vocab or not all(isinstance(i, int) for i in vocab.values()):
        raise ConvertError(f"{path}: the BPE vocabulary is missing or not a token -> id object")
    return vocab


def _check_merges(merges: Any, path: Path) -> list[str]:
    """Merges as GGUF's "left right" lines; tokenizer.json may hold them as [left, right] pairs."""
    if not isinstance(merges, list):
        raise ConvertError(f"{path}: the BPE merges are missing")
    lines = []
    for merge in merges:
        if isinstance(merge, list) and len(merge) == 2 and all(isinstance(part, str) for part in merge):
            merge = " ".join(merge)
        if not isinstance(merge, str) or len(merge.split(" ")) != 2 or "" in merge.split(" "):
            raise ConvertError(f"{path}: malformed merge {merge!r}")
        lines.append(merge)
    return lines


def _token_table(
    base: dict[str, int], added: list[AddedToken], vocab_size: int, directory: Path
) -> tuple[list[str], list[int]]:
    """Tokens and types by id: BPE tokens NORMAL, added ones USER_DEFINED or CONTROL, padding UNUSED."""
    by_id: dict[int, tuple[str, int]] = {}

    def place(token_id: int, text: str, kind: int) -> None:
        held = by_id.get(token_id)
        if held is not None and held[0] != text:
            raise ConvertError(f"{directory}: tokenizer id {token_id} is both {held[0]!r} and {text!r}")
        if token_id < 0:
            raise ConvertError(f"{directory}: tokenizer id {token_id} for {text!r} is negative")
        by_id[token_id] = (text, kind)

    for text, token_id in base.items():
        place(token_id, text, TOKEN_TYPE_NORMAL)
    id_of = dict(base)
    for token in added:
        if id_of.setdefault(token.content, token.id) != token.id:
            raise ConvertError(f"{directory}: {token.content!r} has ids {id_of[token.content]} and {token.id}")
        # Added tokens are matched in raw text, so GGUF holds them unspelled, like llama.cpp's converter.
        place(token.id, token.content, TOKEN_TYPE_CONTROL if token.special else TOKEN_TYPE_USER_DEFINED)
    count = len(by_id)
    if max(by_id) != count - 1:
        hole = next(i for i in range(count) if i not in by_id)
        raise ConvertError(f"{directory}: the tokenizer has no token with id {hole} (ids must run 0..{count - 1})")
    if count > vocab_size:
        raise ConvertError(
            f"{directory}: the tokenizer has {count} tokens but config.json's vocab_size is {vocab_size}"
        )
    tokens = [by_id[i][0] for i in range(count)] + [f"<|unused_{i}|>" for i in range(count, vocab_size)]
    types = [by_id[i][1] for i in range(count)] + [TOKEN_TYPE_UNUSED] * (vocab_size - count)
    return tokens, types
