"""The editor plugins people use, against the real `localcoder serve`: their request bodies replayed over HTTP
as the plugins build them (llama.vim, llama.vscode, Continue, twinny, minuet-ai.nvim), and the official
`ollama` and `openai` clients. With a bigram model the completion is exact and ends at <eom>.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bigram import GARBAGE, bigram_model
from tests.server_run import post_head, running_server, serving_home

pytest.importorskip("llama_cpp")

ANSWER = "return x * 2"
# Eight whole lines above the cursor, which sits at the start of line 9: the stable layout's prompt then
# ends with <mask_1>, the token after which the bigram model writes ANSWER.
ABOVE = "import os\nimport sys\n\n\nSCALE = 2\n\n\ndef f(x):\n"
BELOW = "\n\nprint(f(2))\n"
EXTRA = [
    {"text": "def helper(value):\n    return value + 1\n", "time": 1733100000, "filename": "utils.py"},
    {"text": "LIMIT = 10\n", "time": 1733100005, "filename": "settings.py"},
]
LLAMA_VIM_FIELDS = [
    "content",
    "timings/prompt_n",
    "timings/prompt_ms",
    "timings/prompt_per_token_ms",
    "timings/prompt_per_second",
    "timings/predicted_n",
    "timings/predicted_ms",
    "timings/predicted_per_token_ms",
    "timings/predicted_per_second",
    "truncated",
    "tokens_cached",
]
LLAMA_VIM_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer "}  # its empty api_key


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "answer": bigram_model(tmp_path_factory.mktemp("answer"), ANSWER),
        "endless": bigram_model(tmp_path_factory.mktemp("endless"), "x = 1", end=GARBAGE),
    }


@pytest.fixture(scope="module")
def server(models, tmp_path_factory: pytest.TempPathFactory):
    env = serving_home(tmp_path_factory.mktemp("serve-home"), models)  # so that clients may name every model
    options = ("--model", str(models["answer"]), "--max-models", "2", "--keep-alive", "-1")
    with running_server(*options, env=env) as running:
        yield running


def llama_vim_fim(prefix: str = ABOVE, suffix: str = BELOW, extra: list | None = None) -> dict:
    return {
        "id_slot": 0,
        "input_prefix": prefix,
        "input_suffix": suffix,
        "input_extra": EXTRA if extra is None else extra,
        "prompt": "",
        "n_predict": 128,
        "stop": [],
        "n_indent": 0,
        "top_k": 40,
        "top_p": 0.90,
        "samplers": ["top_k", "top_p", "infill"],
        "stream": False,
        "cache_prompt": True,
        "t_max_prompt_ms": 500,
        "t_max_predict_ms": 250,
        "response_fields": LLAMA_VIM_FIELDS,
    }


def llama_vim_warm_up(extra: list) -> dict:
    return {
        "id_slot": 0,
        "input_prefix": "",
        "input_suffix": "",
        "input_extra": extra,
        "prompt": "",
        "n_predict": 0,
        "temperature": 0.0,
        "samplers": [],
        "stream": False,
        "cache_prompt": True,
        "t_max_prompt_ms": 1,
        "t_max_predict_ms": 1,
        "response_fields": [""],
    }


def llama_vscode(predict: bool, n_cmpl: int = 1) -> dict:
    base = {"id_slot": 0, "input_prefix": ABOVE, "input_suffix": BELOW, "input_extra": EXTRA, "prompt": ""}
    if not predict:
        return {**base, "n_predict": 0, "samplers": [], "cache_prompt": True, "t_max_prompt_ms": 500,
                "t_max_predict_ms": 1}  # fmt: skip
    return {
        **base,
        "n_predict": 128,
        "n_cmpl": n_cmpl,
        "top_k": 40,
        "top_p": 0.99,
        "stream": False,
        "samplers": ["top_k", "top_p", "infill"],
        "cache_prompt": True,
        "t_max_prompt_ms": 500,
        "t_max_predict_ms": 2500,
    }


def test_llama_vim_fim_answer_matches_its_regex(server) -> None:
    status, _, data = server.raw("POST", "/infill", llama_vim_fim(), LLAMA_VIM_HEADERS)
    assert status == 200, data
    raw = data.decode()
    assert re.match(r"^\s*{", raw) and re.search(r'"content"\s*:"', raw), raw  # llama.vim's own checks
    assert raw.count("\n") == 1 and raw.endswith("\n")  # one line
    body = json.loads(raw)
    assert body["content"] == ANSWER
    assert set(body) == set(LLAMA_VIM_FIELDS)
    assert body["timings/predicted_n"] == len(server_tokens(ANSWER)) and body["truncated"] is False


def server_tokens(text: str) -> list[int]:
    from ggufkit.vocab.codegen25 import codegen25_tokenizer

    return codegen25_tokenizer().encode(text)


def test_a_warm_up_reads_the_prompt_and_generates_nothing(server) -> None:
    other = [{"text": "def unrelated():\n    pass\n", "time": 1, "filename": "other.py"}]
    status, _, data = server.raw("POST", "/infill", llama_vim_warm_up(other), LLAMA_VIM_HEADERS)
    assert status == 200 and json.loads(data) == {}  # response_fields [""]: nothing asked, nothing answered
    status, warm = server.post("/infill", llama_vscode(predict=False))
    assert status == 200, warm
    assert warm["content"] == "" and warm["tokens_predicted"] == 0 and warm["timings"]["prompt_n"] > 20
    status, again = server.post("/infill", llama_vscode(predict=False))
    assert again["timings"]["prompt_n"] == 0  # all of it is in the cache already
    status, fim = server.post("/infill", llama_vscode(predict=True))
    assert fim["content"] == ANSWER and fim["stop_type"] == "eos"
    read = fim["timings"]["prompt_n"]
    assert read <= 1 and fim["tokens_cached"] == fim["tokens_evaluated"] - read


def test_llama_vscode_n_cmpl_answers_an_array_and_props_has_n_ctx(server) -> None:
    status, answers = server.post("/infill", llama_vscode(predict=True, n_cmpl=2))
    assert status == 200 and isinstance(answers, list) and [a["content"] for a in answers] == [ANSWER, ANSWER]
    assert [a["index"] for a in answers] == [0, 1]
    status, props = server.request("GET", "/props")
    assert status == 200 and props["generation_settings"]["n_ctx"] > 0
    assert props["default_generation_settings"]["n_ctx"] == props["generation_settings"]["n_ctx"]
    status, health = server.request("GET", "/health")
    assert health["status"] == "ok"


def test_infill_bodies_and_errors(server) -> None:
    status, body = server.post("/infill", {"input_prefix": 3})
    assert status == 400 and "input_prefix must be a string" in body["error"]["message"]
    status, body = server.post("/infill", {"input_prefix": "x", "input_extra": ["not an object"]})
    assert status == 400 and "input_extra[0]" in body["error"]["message"]
    status, body = server.post("/infill", {"input_prefix": ABOVE, "input_suffix": BELOW, "model": "", "n_predict": -1})
    assert status == 200 and body["content"] == ANSWER  # model "" is the default; -1 is "as many as allowed"
    status, headers, data = server.raw("HEAD", "/")
    assert status == 200 and data == b"" and int(headers["Content-Length"]) == len(b"Ollama is running")
    status, body = server.request("GET", "/")
    assert status == 200 and body == "Ollama is running"
    status, body = server.request("GET", "/api/nowhere")
    assert status == 404 and isinstance(body["error"], str) and "/api/generate" in body["error"]


def continue_generate(model: str) -> dict:
    """Continue's Ollama provider (FIM): no `stream` key, numbers for keep_alive, options it always sends."""
    options = {"temperature": 0.01, "top_p": 0.9, "top_k": 40, "num_predict": 256, "num_ctx": 2048}
    return {"model": model, "prompt": ABOVE, "suffix": BELOW, "options": {**options, "stop": ["\n\n\n"]},
            "keep_alive": 1800}  # fmt: skip


def test_continue_ollama_provider(server, models) -> None:
    name = models["answer"].name
    status, show = server.post("/api/show", {"name": name})
    assert status == 200 and ".Suffix" in show["template"] and "insert" in show["capabilities"]
    assert all(re.match(r"^(\S+)\s+((?:\".*\")|\S+)$", line) for line in show["parameters"].split("\n"))
    lines = server.ndjson("/api/generate", continue_generate(name))
    assert "".join(line["response"] for line in lines) == ANSWER
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and all(not line["done"] for line in lines[:-1])
    assert final["eval_count"] == len(server_tokens(ANSWER)) and final["prompt_eval_count"] >= 1
    assert all(isinstance(final[key], int) for key in ("total_duration", "prompt_eval_duration", "eval_duration"))


def test_twinny_spelled_fim_prompt(server, models) -> None:
    """twinny builds the FIM prompt itself; with a CodeGen2.5 template it spells the sentinels."""
    prompt = f"def f(x):\n<mask_1>{BELOW}<|endoftext|><sep><mask_1>"
    body = {"model": models["answer"].name, "prompt": prompt, "stream": True, "keep_alive": "5m",
            "options": {"temperature": 0.2, "num_predict": 512}}  # fmt: skip
    lines = server.ndjson("/api/generate", body)
    assert "".join(line["response"] for line in lines) == ANSWER and lines[-1]["done_reason"] == "stop"


def test_official_ollama_client(server, models, monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = pytest.importorskip("ollama")
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")  # what the README tells ollama users
    client = ollama.Client()
    listed = [m.model for m in client.list().models]
    assert f"{models['answer'].stem}:latest" in listed
    shown = client.show(listed[0])
    assert ".Suffix" in shown.template and "insert" in shown.capabilities and shown.modelinfo
    name = f"{models['answer'].stem}:latest"
    answer = client.generate(name, ABOVE, suffix=BELOW, options={"temperature": 0, "num_predict": 64})
    assert answer.response == ANSWER and answer.done_reason == "stop" and answer.eval_count > 0
    pieces = list(client.generate(name, ABOVE, suffix=BELOW, stream=True, options={"temperature": 0}))
    assert "".join(p.response for p in pieces) == ANSWER and pieces[-1].done
    assert any(m.context_length for m in client.ps().models)
    assert ollama.Client(host=server.url).generate(name, "", keep_alive="5m").done_reason == "load"


def test_official_openai_client_and_minuet(server, models) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    ids = [m.id for m in client.models.list().data]
    assert models["answer"].name in ids
    done = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=ABOVE, suffix=BELOW,
                                     max_tokens=32, temperature=0)  # fmt: skip
    assert done.choices[0].text == ANSWER and done.choices[0].finish_reason == "stop"
    chunks = list(client.completions.create(model=ids[0], prompt=ABOVE, suffix=BELOW, max_tokens=32,
                                            temperature=0, stream=True))  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks) == ANSWER
    assert len({c.id for c in chunks}) == 1  # one id for every chunk of a stream
    # minuet-ai.nvim's openai_fim_compatible provider: prompt, suffix, its `optional` options, streamed.
    body = {"model": ids[0], "prompt": ABOVE, "suffix": BELOW, "max_tokens": 56, "top_p": 0.9, "stream": True}
    events = server.events("/v1/completions", body)
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == ANSWER


def test_an_aborted_ollama_stream_cancels_its_generation(server, models) -> None:
    body = {"model": str(models["endless"]), "prompt": ABOVE, "suffix": BELOW, "options": {"num_predict": -1}}
    payload = json.dumps(body).encode()
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.sendall(post_head("/api/generate", len(payload)) + payload)
    first = connection.recv(65536)
    assert first.startswith(b"HTTP/1.1 200") and b"application/x-ndjson" in first
    connection.close()
    server.wait_for_log("client went away; generation cancelled")
    lines = server.ndjson("/api/generate", continue_generate(models["answer"].name))
    assert "".join(line["response"] for line in lines) == ANSWER


def two_files() -> tuple[str, str]:
    def source(name: str) -> str:
        return "".join(f"def {name}_{i}(value):\n    return value * {i} + {len(name)}\n\n\n" for i in range(30))

    return source("alpha"), source("beta")


@pytest.mark.parametrize("slots", [1, 2])
def test_cache_slots_keep_two_files(models, slots: int) -> None:
    """Switching between two files: with 2 slots each revisit reads one token; with 1 it reads the file again."""
    alpha, beta = two_files()
    with running_server("--model", str(models["answer"]), "--cache-slots", str(slots), "--quiet") as running:
        answers = []
        for text in (alpha, beta, alpha, beta):
            body = llama_vim_fim(prefix=text, extra=[])
            status, answer = running.post("/infill", {**body, "response_fields": None})
            assert status == 200 and answer["content"] == ANSWER, answer
            answers.append(answer)
    read = [answer["timings"]["prompt_n"] for answer in answers]
    assert min(read[:2]) > 200
    if slots == 2:
        assert read[2:] == [1, 1] and answers[0]["id_slot"] != answers[1]["id_slot"], read
        assert [a["id_slot"] for a in answers[2:]] == [a["id_slot"] for a in answers[:2]]
    else:
        assert min(read[2:]) > 200, read


def test_complete_context_files_match_the_server(server, models, tmp_path: Path) -> None:
    path, helper = tmp_path / "app.py", tmp_path / "utils.py"
    path.write_text(ABOVE + BELOW)
    helper.write_text(EXTRA[0]["text"])
    options = ["--model", str(models["answer"]), "--temperature", "0", "--json"]
    command = [sys.executable, "-m", "localcoder", "complete", f"{path}:9", "--no-server", *options]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120)
    local = subprocess.run([*command, "--context", str(helper)], capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    expected, without = json.loads(local.stdout), json.loads(plain.stdout)
    assert expected["completion"] == ANSWER and expected["tokens"]["prompt"] > without["tokens"]["prompt"]
    body = {"text": ABOVE + BELOW, "line": 9, "path": str(path), "model": str(models["answer"]), "temperature": 0,
            "context": [{"filename": str(helper), "text": EXTRA[0]["text"]}]}  # fmt: skip
    status, answer = server.post("/infill", body)
    assert status == 200 and answer["tokens"]["prompt"] == expected["tokens"]["prompt"]
    assert answer["completion"] == ANSWER
