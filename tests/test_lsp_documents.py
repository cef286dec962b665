"""The language server's document sync, settings and targets, without a client (tests/test_lsp_clients.py
drives the whole server with real ones). Every expected text here is worked out by hand from the LSP spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcoder.completion.budget import PromptBudget  # the window of 2,048 less 128 new tokens: 1,920
from localcoder.context.gather import bundled_counter
from localcoder.context.stage import request_context
from localcoder.errors import LocalcoderError
from localcoder.lsp.documents import Change, Documents, Position, offset_at, position_at, units
from localcoder.lsp.features import build_request, completion_items, inline_items, target_at
from localcoder.lsp.options import LspOptions

EMOJI = "\N{PARTY POPPER}"  # outside the BMP: 2 UTF-16 units, 4 UTF-8 bytes, 1 code point


def edit(start: tuple[int, int], end: tuple[int, int], text: str) -> Change:
    return Change(text, Position(*start), Position(*end))


@pytest.mark.parametrize(("encoding", "after_emoji"), [("utf-16", 8), ("utf-8", 10), ("utf-32", 7)])
def test_an_edit_after_an_emoji_lands_where_the_encoding_says(encoding: str, after_emoji: int) -> None:
    documents = Documents()
    documents.open("file:///a.py", f'x = "{EMOJI}" + \ny = 1\n')
    # 'x = "' is 5 units in every encoding; the emoji is 2, 4 or 1; the quote 1: the space after it is at 8/10/7.
    documents.change("file:///a.py", 2, [edit((0, after_emoji), (0, after_emoji + 1), "+")], encoding)
    assert documents.get("file:///a.py").text == f'x = "{EMOJI}"++ \ny = 1\n'
    assert documents.get("file:///a.py").version == 2


def test_several_edits_apply_in_order_each_against_the_text_the_last_one_left() -> None:
    documents = Documents()
    documents.open("u", "alpha\nbeta\ngamma\n")
    documents.change(
        "u",
        2,
        [
            edit((0, 5), (2, 0), " BETWEEN "),  # joins three lines: "alpha BETWEEN gamma\n"
            edit((0, 0), (0, 0), "# top\n"),  # then a line above it
            edit((1, 6), (1, 13), "AND"),  # on the joined line, now line 1
        ],
    )
    assert documents.get("u").text == "# top\nalpha AND gamma\n"


def test_crlf_and_lone_cr_end_lines_but_form_feed_and_line_separator_do_not() -> None:
    text = "a\r\nb\rc\fd\u2028e\nf"
    assert offset_at(text, Position(1, 0)) == 3  # "b", after the CRLF
    assert offset_at(text, Position(2, 2)) == text.index("d")  # line 2 is "c\fd\u2028e": \f and U+2028 are characters
    assert offset_at(text, Position(3, 1)) == len(text)
    assert position_at(text, text.index("e")) == Position(2, 4)
    documents = Documents()
    documents.open("u", text)
    documents.change("u", 2, [edit((0, 1), (1, 1), "")])  # delete the CRLF and "b"
    assert documents.get("u").text == "a\rc\fd\u2028e\nf"


def test_positions_past_a_line_or_the_text_clamp_and_half_a_surrogate_pair_rounds_down() -> None:
    text = f"{EMOJI}x\nlast"
    assert offset_at(text, Position(0, 99)) == 2  # the end of line 0, before its newline
    assert offset_at(text, Position(9, 0)) == len(text)
    assert offset_at(text, Position(0, 1)) == 0  # inside the emoji's two units: its start
    assert offset_at(text, Position(0, 2)) == 1
    assert position_at(text, 2) == Position(0, 3)
    assert units(EMOJI, "utf-16") == 2 and units(EMOJI, "utf-8") == 4 and units(EMOJI, "utf-32") == 1


def test_a_change_without_a_range_replaces_the_text_and_close_frees_the_document() -> None:
    documents = Documents()
    documents.open("u", "old")
    documents.change("u", 2, [Change("new\n"), edit((1, 0), (1, 0), "more")])
    assert documents.get("u").text == "new\nmore"
    documents.close("u")
    assert "u" not in documents and len(documents) == 0
    with pytest.raises(LocalcoderError, match="not open"):
        documents.change("u", 3, [Change("x")])


def test_settings_update_the_options_and_bad_ones_are_one_line_errors() -> None:
    options = LspOptions().updated({"localcoder": {"maxTokens": 12, "temperature": 0.5, "debounceMs": 0, "model": "m"}})
    assert (options.max_tokens, options.temperature, options.debounce_ms, options.model) == (12, 0.5, 0.0, "m")
    assert options.updated(None) == options and options.updated([]) == options
    assert options.updated({"contextBudget": 64, "unknown": 1}).context_budget == 64
    for bad in ({"maxTokens": 0}, {"maxTokens": 1.5}, {"temperature": 9}, {"scope": "page"}, {"debounceMs": True}):
        with pytest.raises(LocalcoderError, match=r"setting|scope") as caught:
            options.updated(bad)
        assert "\n" not in str(caught.value)
    with pytest.raises(LocalcoderError, match="JSON object"):
        options.updated([1])


def test_a_crlf_document_gives_the_core_newline_text_and_items_come_back_in_its_newlines() -> None:
    text = "def f(x):\r\n    return (x + )\r\n"
    cursor = offset_at(text, Position(1, 16))  # after "x + "
    target = target_at(text, cursor)
    assert (target.tail, target.end) == (")", cursor + 1)  # the rest of the line is covered by the item
    request = build_request(target, "/w/a.py", None, LspOptions())
    assert request.prefix == "def f(x):\n    return (x + "
    assert request.suffix == ")\n"
    assert (request.cursor.line, request.cursor.col, request.language, request.scope) == (2, 17, "python", "line")
    [item] = inline_items(text, target, "y", "utf-16")
    assert item.insert_text == "y)"
    assert (item.range.start.line, item.range.start.character, item.range.end.character) == (1, 16, 17)
    listed = completion_items(text, target, "y\nz", "utf-16")
    assert listed.items[0].label == "y" and listed.items[0].text_edit.new_text == "y\r\nz)"
    assert inline_items(text, target, "", "utf-16") == []


def test_a_completion_item_rewrites_the_word_being_typed_and_only_that_word() -> None:
    # After a space or a dot nothing is being typed: the edit starts at the cursor (the control).
    for text, typed in (("x = obj.", ""), ("x = größ", "größ"), ("x = a_b2", "a_b2")):
        target = target_at(text, len(text))
        [item] = completion_items(text, target, "e + 1", "utf-16").items
        assert item.text_edit.range.start.character == len(text) - len(typed)
        assert item.text_edit.new_text == item.insert_text == typed + "e + 1"
        assert item.filter_text == typed + "e + 1" and item.label == "e + 1"


def test_a_selected_completion_entry_is_in_the_text_the_model_sees_and_starts_the_item() -> None:
    text = "import os\nos.pa\n"
    start, end = offset_at(text, Position(1, 3)), offset_at(text, Position(1, 5))
    target = target_at(text, start, end, "path")
    assert target.text == "import os\nos.path\n" and target.offset == len("import os\nos.path")
    [item] = inline_items(text, target, ".join", "utf-16")
    assert item.insert_text == "path.join"
    assert (item.range.start.character, item.range.end.character) == (3, 5)


def test_open_documents_and_the_workspace_folder_reach_the_context_stage(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "settings.py").write_text("def load_config():\n    pass\n")  # what is saved on disk
    unsaved = 'def load_config(path, strict=False):\n    """Read the settings at path."""\n    return {}\n'
    text = "from settings import load_config\n\n\nconfig = load_config("
    main = str(workspace / "main.py")
    request = build_request(
        target_at(text, len(text)), main, "python", LspOptions(), {str(workspace / "settings.py"): unsaved}, [tmp_path]
    )
    assert request.context_root == str(tmp_path)  # no repository around the file: the workspace folder
    context = request_context(request, bundled_counter(), PromptBudget.of(2048, 128))
    assert context is not None and context.root == str(tmp_path)
    shown = {snippet.path: snippet.text for snippet in context.snippets}
    assert "load_config(path, strict=False)" in shown["work/settings.py"]  # the editor's text, not the disk's

    (workspace / "pyproject.toml").write_text("[project]\nname = 'work'\n")  # a project inside the folder wins
    assert build_request(target_at(text, len(text)), main, "python", LspOptions(), {}, [tmp_path]).context_root is None
    off = build_request(target_at(text, len(text)), main, "python", LspOptions(context_budget=0), {}, [tmp_path])
    assert request_context(off, bundled_counter(), PromptBudget.of(2048, 128)) is None


def test_a_newer_request_for_a_document_supersedes_the_older_and_only_for_that_document() -> None:
    """The language server's tickets supersede through the server's own claims (supersede.py)."""
    from localcoder.lsp.server import Tickets

    tickets = Tickets()
    first, other = tickets.start("file:///a.py", 1), tickets.start("file:///b.py", 2)
    assert not first.stopped() and not other.stopped()  # control: nothing newer yet
    second = tickets.start("file:///a.py", 3)
    assert first.superseded and first.stopped() and not second.stopped() and not other.stopped()
    tickets.cancel(3)
    assert second.cancelled and second.stopped() and not second.superseded
    tickets.finish(second)
    tickets.finish(first)
    assert not tickets.start("file:///a.py", 4).stopped()  # finished ones supersede nothing more


def test_settings_take_their_camel_case_names_by_one_rule() -> None:
    from localcoder.lsp.options import json_name

    assert [json_name(n) for n in ("model", "max_tokens", "top_p", "prompt_layout", "debounce_ms")] == [
        "model", "maxTokens", "topP", "promptLayout", "debounceMs"
    ]  # fmt: skip
    assert LspOptions().updated({"promptLayout": "cursor", "topP": 0.5}).prompt_layout == "cursor"
    with pytest.raises(LocalcoderError, match="prompt layout"):
        LspOptions().updated({"promptLayout": "sideways"})
