"""`localcoder lsp` driven by real clients nobody here wrote: the JavaScript libraries VS Code extensions use
(tests/lsp_client, installed by `make lsp-client`), Debian's Neovim, headless, and Emacs with eglot, in batch mode.

The model is the programmed bigram (tests/bigram.py): its chain starts at the last token of the text typed on
the cursor's line (the stable prompt layout puts that text last), so it writes ANSWER only when the server
holds exactly the text the client has; an edit applied one UTF-16 unit off, or a cursor read in the wrong
encoding, gives garbage instead.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ggufkit.vocab.codegen25 import codegen25_tokenizer
from tests.bigram import bigram_model
from tests.server_run import running_server

pytest.importorskip("llama_cpp")

CLIENT = Path(__file__).parent / "lsp_client"
EMOJI = "\N{PARTY POPPER}"
ABOVE = "import os\nimport sys\n\n\nSCALE = 2\n\n\ndef f(x):\n"  # eight lines: the stable layout's grid
LINE = f'    label = ("{EMOJI}" + )'  # line 8 (0-based); the client types "total" before the ")"
TYPED = "total"
BELOW = "\n\n\nprint(f(2))\n"
TEXT = ABOVE + LINE + BELOW
ANSWER = " * SCALE)"  # the ")" repeats the rest of the line: the suffix rule trims it, the item's range covers it
URI = "file:///work/project/app.py"


def units16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


INSERT_AT = units16(LINE[: LINE.index(")", LINE.index("+"))])  # after "+ ", in UTF-16 units
CURSOR = INSERT_AT + len(TYPED)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    typed_line = LINE.replace("+ )", f"+ {TYPED}")
    start = codegen25_tokenizer().encode(typed_line)[-1]  # " total"
    return bigram_model(tmp_path_factory.mktemp("lsp-model"), ANSWER, start=start)


def server_env() -> dict[str, str]:
    """This checkout first on the server's path, whatever directory the client starts it in."""
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def lsp_command(model: Path, *options: str) -> list[str]:
    where = options if "--server" in options else ("--no-server", *options)
    return [sys.executable, "-m", "localcoder", "lsp", "--model", str(model), *where]


def needs(tool: str, ready: bool, how: str) -> None:
    """Skip without the client here; fail where CI is set (a green CI run must mean the client ran)."""
    if not ready:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing ({how}); CI is set: this fails, not skips")
        pytest.skip(f"needs {tool} ({how})")


def drive(model: Path, steps: list[dict[str, Any]], tmp_path: Path, *options: str) -> dict[str, Any]:
    """Run the steps with tests/lsp_client/drive.mjs; what the server answered to each, and its messages."""
    installed = (CLIENT / "node_modules" / "vscode-languageserver-protocol").is_dir()
    needs("node and the VS Code LSP libraries", bool(shutil.which("node")) and installed, "make lsp-client")
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"command": lsp_command(model, *options), "steps": steps}))
    done = subprocess.run(
        ["node", str(CLIENT / "drive.mjs"), str(scenario)],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def opening(encodings: list[str] | None = None, options: dict | None = None) -> list[dict[str, Any]]:
    return [
        {"kind": "initialize", "positionEncodings": encodings, "options": options,
         "workspaceFolders": [{"uri": "file:///work/project", "name": "project"}]},
        {"kind": "initialized"},
        {"kind": "open", "uri": URI, "text": TEXT},
    ]  # fmt: skip


def at(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


def typing(insert_at: int) -> dict[str, Any]:
    return {"kind": "change", "uri": URI, "changes": [{"range": {"start": at(8, insert_at), "end": at(8, insert_at)},
                                                       "text": TYPED}]}  # fmt: skip


def test_vscode_client_inline_completion_after_an_edit_on_an_emoji_line(model: Path, tmp_path: Path) -> None:
    inline = {"kind": "inline", "uri": URI, "position": at(8, CURSOR)}
    # Before typing: the editor's completion popup has "total" selected at the cursor; the model must see the
    # document as if it were accepted, and the item starts with it.
    popup = {"range": {"start": at(8, INSERT_AT), "end": at(8, INSERT_AT)}, "text": TYPED}
    steps = [
        *opening(),
        {**inline, "position": at(8, INSERT_AT), "selected": popup},
        typing(INSERT_AT),
        inline,
        {"kind": "completion", "uri": URI, "position": at(8, CURSOR)},
        # Typing faster than the server answers: the older request for the document is superseded.
        {"kind": "together", "requests": [{**inline, "automatic": True}, {**inline, "automatic": True}]},
        {"kind": "close", "uri": URI},
        inline,  # closed: no items, and the user is told why
        {"kind": "shutdown"},
        {"kind": "exit"},
    ]
    answers, messages = (lambda run: (run["answers"], run["messages"]))(drive(model, steps, tmp_path))
    capabilities = answers[0]["capabilities"]
    assert capabilities["positionEncoding"] == "utf-16"
    assert capabilities["textDocumentSync"]["change"] == 2 and capabilities["textDocumentSync"]["openClose"]
    assert "inlineCompletionProvider" in capabilities and "completionProvider" in capabilities
    selected = {"insertText": TYPED + ANSWER, "range": {"start": at(8, INSERT_AT), "end": at(8, INSERT_AT + 1)}}
    assert answers[3] == {"result": [selected]}
    ghost = {"insertText": ANSWER, "range": {"start": at(8, CURSOR), "end": at(8, CURSOR + 1)}}
    assert answers[5] == {"result": [ghost]}
    [item] = answers[6]["result"]["items"]
    # The item rewrites the word being typed: word-completing clients replace it, VS Code filters by it.
    word = {"start": at(8, INSERT_AT), "end": at(8, CURSOR + 1)}
    assert item["label"] == ANSWER.strip(" )") and item["textEdit"] == {"range": word, "newText": TYPED + ANSWER}
    assert item["filterText"].startswith(TYPED) and item["insertText"] == TYPED + ANSWER
    assert item["insertTextFormat"] == 1 and item["sortText"] < "1"
    assert answers[7] == [{"result": []}, {"result": [ghost]}]
    assert answers[9] == {"result": []}
    assert any("not open" in m.get("show", "") for m in messages)
    assert answers[-1] == {"exit_code": 0}
    assert {"progress": "begin"} in messages  # the model loaded lazily, with $/progress


def test_utf8_positions_when_the_client_offers_them(model: Path, tmp_path: Path) -> None:
    utf8 = lambda units16_: units16_ + 2  # noqa: E731 - the emoji is 2 UTF-16 units and 4 UTF-8 bytes
    steps = [*opening(["utf-8", "utf-16"]), typing(utf8(INSERT_AT)), {"kind": "inline", "uri": URI,
             "position": at(8, utf8(CURSOR))}, {"kind": "shutdown"}, {"kind": "exit"}]  # fmt: skip
    answers = drive(model, steps, tmp_path)["answers"]
    assert answers[0]["capabilities"]["positionEncoding"] == "utf-8"
    range_ = {"start": at(8, utf8(CURSOR)), "end": at(8, utf8(CURSOR) + 1)}
    assert answers[4] == {"result": [{"insertText": ANSWER, "range": range_}]}


def test_cancel_answers_request_cancelled_and_stops_the_generation(model: Path, tmp_path: Path) -> None:
    # At the end of line 0 the bigram model writes garbage until maxTokens: work that only a cancel ends.
    endless = {"uri": URI, "position": at(0, 9)}
    steps = [
        *opening(options={"maxTokens": 4}),
        {"kind": "inline", **endless},  # loads the model, so that the cancels below meet generation
        {"kind": "configure", "settings": {"maxTokens": 1500}},
        {"kind": "cancel", **endless, "after_ms": 0},  # request and cancel in one burst
        {"kind": "cancel", **endless, "after_ms": 200},  # cancelled while it generates
        {"kind": "cancel", **endless, "request": "completion", "after_ms": 200},
        {"kind": "configure", "settings": {"localcoder": {"maxTokens": 0}}},  # refused: the user is told
        {"kind": "configure", "settings": {"localcoder": {"maxTokens": 16}}},
        typing(INSERT_AT),
        {"kind": "inline", "uri": URI, "position": at(8, CURSOR)},  # the server goes on, with new settings
        {"kind": "shutdown"},
        {"kind": "exit"},
    ]
    run = drive(model, steps, tmp_path)
    answers, messages = run["answers"], run["messages"]
    for answer in answers[5:8]:
        assert answer["error"]["code"] == -32800, answer
    stopped = [m["log"] for m in messages if "generation stopped (cancelled)" in m.get("log", "")]
    assert len(stopped) == 2, messages  # the burst's request never started; the other two stopped mid-way
    assert any("maxTokens" in m.get("show", "") for m in messages)
    assert answers[11] == {
        "result": [{"insertText": ANSWER, "range": {"start": at(8, CURSOR), "end": at(8, CURSOR + 1)}}]
    }
    assert answers[-1] == {"exit_code": 0}


def test_with_a_running_serve_the_lsp_uses_its_model_and_a_cancel_hangs_up(model: Path, tmp_path: Path) -> None:
    steps = [
        *opening(options={"maxTokens": 1000}),
        {"kind": "cancel", "uri": URI, "position": at(0, 9), "after_ms": 200},
        typing(INSERT_AT),
        {"kind": "inline", "uri": URI, "position": at(8, CURSOR)},
        {"kind": "shutdown"},
        {"kind": "exit"},
    ]
    with running_server("--model", str(model)) as server:  # serve takes at most 1024 tokens
        run = drive(model, steps, tmp_path, "--server", server.url)
    answers, messages = run["answers"], run["messages"]
    assert answers[3]["error"]["code"] == -32800
    assert any("generation stopped (cancelled)" in m.get("log", "") for m in messages)
    ghost = {"insertText": ANSWER, "range": {"start": at(8, CURSOR), "end": at(8, CURSOR + 1)}}
    assert answers[5] == {"result": [ghost]}
    assert {"progress": "begin"} not in messages  # nothing loaded here: serve's resident model answered


def test_exit_without_shutdown_is_status_1(model: Path, tmp_path: Path) -> None:
    answers = drive(model, [*opening(), {"kind": "exit"}], tmp_path)["answers"]
    assert answers[-1] == {"exit_code": 1}


NEOVIM = """
local ok, failure = pcall(function()
local cmd = vim.fn.json_decode(os.getenv("LSP_CMD"))
local exit_code = nil
local shown = {}
vim.cmd("edit " .. os.getenv("LSP_FILE"))
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({cmd = cmd, name = "localcoder", root_dir = vim.fn.getcwd(),
  init_options = {debounceMs = 0}, on_exit = function(code) exit_code = code end,
  handlers = {["window/showMessage"] = function(_, result) table.insert(shown, result.message) end}})
vim.lsp.buf_attach_client(buf, id)
vim.wait(30000, function() return #vim.lsp.buf_get_clients(buf) > 0 end, 20)
-- Type "total" after "+ " on line 9 without saving: the server must complete the buffer, not the file.
local line = vim.api.nvim_buf_get_lines(buf, 8, 9, true)[1]
local col = line:find("+ )", 1, true) + 1
vim.api.nvim_buf_set_text(buf, 8, col, 8, col, {"total"})
vim.api.nvim_win_set_cursor(0, {9, col + 5})
local params = vim.lsp.util.make_position_params()
local answer = vim.lsp.buf_request_sync(buf, "textDocument/completion", params, 30000)
vim.lsp.stop_client(id)
vim.wait(30000, function() return exit_code ~= nil end, 20)
vim.fn.writefile({vim.fn.json_encode({answer = answer[id], position = params.position, exit_code = exit_code,
  shown = shown})},
  os.getenv("LSP_OUT"))
end)
if not ok then vim.fn.writefile({vim.fn.json_encode({failure = tostring(failure)})}, os.getenv("LSP_OUT")) end
vim.cmd("qa!")
"""


def test_neovim_builtin_client_asks_textdocument_completion(model: Path, tmp_path: Path) -> None:
    needs("nvim", bool(shutil.which("nvim")), "make system-deps installs Debian's neovim")
    source = tmp_path / "app.py"
    source.write_text(TEXT, encoding="utf-8")
    script, out = tmp_path / "client.lua", tmp_path / "answer.json"
    script.write_text(NEOVIM)
    env = {**server_env(), "LSP_CMD": json.dumps(lsp_command(model)), "LSP_FILE": str(source), "LSP_OUT": str(out)}
    subprocess.run(["nvim", "--headless", "--clean", "-c", f"luafile {script}"], env=env, timeout=120, check=True,
                   cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True)  # fmt: skip
    seen = json.loads(out.read_text())
    assert "failure" not in seen, seen["failure"]
    assert seen["position"] == at(8, CURSOR)  # neovim's own UTF-16 count agrees with ours
    [item] = seen["answer"]["result"]["items"]
    assert item["textEdit"] == {
        "range": {"start": at(8, INSERT_AT), "end": at(8, CURSOR + 1)},
        "newText": TYPED + ANSWER,
    }
    assert seen["exit_code"] == 0
    assert seen["shown"] in ([], {}), seen["shown"]  # no complaint about Neovim's (empty) settings
    assert source.read_text(encoding="utf-8") == TEXT  # nothing was written to the file


EGLOT = """
;; Emacs's own LSP client: open the file, start eglot on `localcoder lsp`, type "total" after "+ " on line 9
;; without saving, then `completion-at-point`, which asks textDocument/completion and applies the item.
(require 'eglot)
(require 'json)
(setq eglot-sync-connect 60 eglot-connect-timeout 60)
(let ((out (getenv "LSP_OUT")) (shown nil))
  (condition-case err
      (let ((cmd (append (json-parse-string (getenv "LSP_CMD") :array-type 'list) nil)))
        (advice-add 'eglot--message :before (lambda (fmt &rest args) (push (apply #'format fmt args) shown)))
        (find-file (getenv "LSP_FILE"))
        (python-mode)
        (eglot '(python-mode) (cons 'transient default-directory) 'eglot-lsp-server cmd "python")
        (goto-char (point-min))
        (forward-line 8)
        (search-forward "+ )")
        (backward-char 1)
        (insert "total")
        (let ((column (eglot-lsp-abiding-column))
              (before (buffer-substring-no-properties (line-beginning-position) (line-end-position))))
          (completion-at-point)
          (let ((line (buffer-substring-no-properties (line-beginning-position) (line-end-position)))
                (modified (buffer-modified-p)))
            (with-temp-file out
              (insert (json-encode `((before . ,before) (line . ,line) (column . ,column)
                                     (modified . ,(if modified t :json-false))
                                     (shown . ,(vconcat (reverse shown))))))))))
    (error (with-temp-file out (insert (json-encode `((failure . ,(format "%S" err)))))))))
(kill-emacs 0)
"""


def test_emacs_eglot_completes_the_word_being_typed(model: Path, tmp_path: Path) -> None:
    eglot = ["emacs", "--batch", "--eval", "(require 'eglot)"]
    ready = bool(shutil.which("emacs")) and subprocess.run(eglot, capture_output=True, timeout=60).returncode == 0
    needs("emacs with eglot", ready, "make system-deps installs emacs-nox and elpa-eglot")
    source = tmp_path / "app.py"
    source.write_text(TEXT, encoding="utf-8")
    script, out = tmp_path / "client.el", tmp_path / "answer.json"
    script.write_text(EGLOT)
    env = {**server_env(), "LSP_CMD": json.dumps(lsp_command(model)), "LSP_FILE": str(source), "LSP_OUT": str(out)}
    subprocess.run(["emacs", "--batch", "-l", str(script)], env=env, timeout=120, check=True, cwd=tmp_path,
                   stdin=subprocess.DEVNULL, capture_output=True)  # fmt: skip
    seen = json.loads(out.read_text())
    assert "failure" not in seen, seen["failure"]
    typed = LINE.replace("+ )", f"+ {TYPED})")
    assert seen["before"] == typed and seen["column"] == CURSOR  # the control: the edit was made where we said
    # eglot's own UTF-16 column agrees with ours, the server held the unsaved buffer, and the item replaced the
    # word it started with: exactly the model's answer follows "total", the ")" it repeats not doubled.
    assert seen["line"] == LINE.replace("+ )", f"+ {TYPED}{ANSWER}")
    assert seen["modified"] is True and source.read_text(encoding="utf-8") == TEXT  # nothing written to the file
    assert not any("error" in message.lower() for message in seen["shown"]), seen["shown"]


def frame(message: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(message), message)


def test_malformed_messages_get_a_line_each_and_the_session_goes_on(model: Path) -> None:
    def rpc(**message: object) -> bytes:
        return frame(json.dumps({"jsonrpc": "2.0", **message}).encode())

    stream = frame(b"{not json}") + rpc(id=1, method="nope")  # broken JSON, then a request without params
    stream += rpc(id=2, method="initialize", params={"capabilities": {}}) + rpc(method="initialized", params={})
    stream += rpc(id=3, method="shutdown") + rpc(method="exit")
    done = subprocess.run(lsp_command(model), input=stream, capture_output=True, env=server_env(), timeout=120)
    assert done.returncode == 0, done.stderr  # it went on to shutdown and exit
    assert b'"inlineCompletionProvider"' in done.stdout  # and answered initialize after the bad messages
    errors = done.stderr.decode().splitlines()
    assert errors and all(line.startswith("localcoder lsp: ") for line in errors), errors
    assert "Traceback" not in done.stderr.decode()


def read_messages(stdout: Any, into: queue.Queue) -> None:
    """On a thread: each message the server writes, until it closes its end."""
    while True:
        length = 0
        while (header := stdout.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        if not length:
            return
        into.put(json.loads(stdout.read(length)))


def test_invalid_params_and_requests_after_shutdown_are_answered_with_a_reason(model: Path, tmp_path: Path) -> None:
    """pygls alone leaves both unanswered (the editor waits forever) and says only `Exception Group` on stderr."""

    def rpc(**message: object) -> bytes:
        return frame(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def completion(msg_id: int, line: object, character: object) -> bytes:
        params = {"textDocument": {"uri": URI}, "position": {"line": line, "character": character},
                  "context": {"triggerKind": 1}}  # fmt: skip
        return rpc(id=msg_id, method="textDocument/completion", params=params)

    typed = TEXT.replace("+ )", f"+ {TYPED})")
    document = {"uri": URI, "languageId": "python", "version": 1, "text": typed}
    start = rpc(id=1, method="initialize", params={"capabilities": {}}) + rpc(method="initialized", params={})
    start += rpc(method="textDocument/didOpen", params={"textDocument": document})
    server = subprocess.Popen(lsp_command(model), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=server_env())  # fmt: skip
    answers: dict[Any, dict[str, Any]] = {}
    written: queue.Queue = queue.Queue()
    threading.Thread(target=read_messages, args=(server.stdout, written), daemon=True).start()

    def ask(stream: bytes, *ids: int) -> None:
        server.stdin.write(stream)
        server.stdin.flush()
        while not set(ids) <= set(answers):
            try:
                message = written.get(timeout=60)
            except queue.Empty:
                server.kill()
                pytest.fail(f"no answer to request(s) {sorted(set(ids) - set(answers))} in 60 s")
            answers[message.get("id")] = message

    ask(start + completion(2, 8, CURSOR), 1, 2)  # the control: a valid request, answered
    ask(completion(3, -1, 0) + completion(4, "eight", 0), 3, 4)
    ask(rpc(id=5, method="shutdown"), 5)
    ask(completion(6, 8, CURSOR), 6)
    _, stderr = server.communicate(rpc(method="exit"), timeout=60)
    assert server.returncode == 0
    [item] = answers[2]["result"]["items"]
    assert item["textEdit"]["newText"] == TYPED + ANSWER
    assert [answers[i]["error"]["code"] for i in (3, 4, 6)] == [-32602, -32602, -32600]
    assert "Position.line should be in range" in answers[3]["error"]["message"]
    assert "$.params.position.line" in answers[4]["error"]["message"]
    lines = stderr.decode().splitlines()
    assert len(lines) == 3 and all(line.startswith("localcoder lsp: request ") for line in lines), lines
    assert "invalid params" in lines[0] and "invalid params" in lines[1] and "after shutdown" in lines[2]
