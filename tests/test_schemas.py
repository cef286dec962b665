"""Every `--json` document, made by the real command on tiny models, passes the schema shipped in the package.

The schemas are read back through `localcoder.schemas` (the files an installed package carries) and checked with
jsonschema, an implementation nobody here wrote; negative controls show the check can fail.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from localcoder import paths, schemas
from tests.bigram import bigram_model
from tests.helpers import checked_document, localcoder

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef main():\n    \n"
ANSWER = "print(sum)"


@pytest.fixture(scope="module")
def answer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigram_model(tmp_path_factory.mktemp("answer"), ANSWER)


def ok(*args: str, stdin: str | None = None) -> str:
    done = localcoder(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def complete(model: Path, tmp: Path, tiny: Path) -> list[str]:
    source = tmp / "app.py"
    source.write_text(SOURCE)
    options = ["--model", str(model), "--json", "--no-server", "--temperature", "0", "--prompt-layout", "cursor"]
    one = ok("complete", f"{source}:6", *options)
    assert json.loads(one)["completion"] == ANSWER  # it really completed
    return [one, ok("complete", f"{source}:6", "-n", "2", *options)]


def context(model: Path, tmp: Path, tiny: Path) -> list[str]:
    (tmp / "setup.py").write_text("")
    (tmp / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp / "app.py").write_text("from util import add\n\nprint(add(1, 2))\n")
    one = ok("context", f"{tmp / 'app.py'}:3", "--json")
    assert json.loads(one)["snippets"][0]["path"] == "util.py"  # it really found the definition
    return [one, ok("context", f"{tmp / 'app.py'}:1", "--json", "--budget", "0")]


def chat(model: Path, tmp: Path, tiny: Path) -> list[str]:
    return [ok("chat", "--model", str(model), "--script", "-", "--json", "--max-tokens", "8", stdin="add 1 and 2\n")]


def models(model: Path, tmp: Path, tiny: Path) -> list[str]:
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(model, paths.models_dir() / "answer.gguf")
    return [ok("models", "--json")]


def eval_(model: Path, tmp: Path, tiny: Path) -> list[str]:
    out = tmp / "samples.jsonl"
    options = ["--model", str(model), "--limit", "1", "--max-tokens", "8", "--out", str(out), "--json"]
    return [ok("eval", "humaneval", *options)]


def kld(model: Path, tmp: Path, tiny: Path) -> list[str]:
    return [ok("eval", "kld", "--base", str(tiny), str(tiny), "--limit", "64", "--ctx", "64", "--json")]


def bench(model: Path, tmp: Path, tiny: Path) -> list[str]:
    return [ok("bench", "--model", str(tiny), "--new-tokens", "4", "--no-cold", "--json")]


def convert(model: Path, tmp: Path, tiny: Path) -> list[str]:
    checkpoint = model.parent / "checkpoint"
    return [ok("convert", str(checkpoint), "--output", str(tmp / "again.gguf"), "--outtype", "f32", "--json")]


PRODUCERS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "complete": complete,
    "context": context,
    "chat": chat,
    "doctor": lambda model, tmp, tiny: [ok("doctor", "--json")],
    "inspect": lambda model, tmp, tiny: [ok("inspect", str(tiny), "--json")],
    "verify": lambda model, tmp, tiny: [ok("verify", str(model), "--json")],
    "models": models,
    "eval": eval_,
    "kld": kld,
    "bench": bench,
    "convert": convert,
}


def test_every_shipped_schema_is_a_valid_schema_and_has_a_producer() -> None:
    assert set(PRODUCERS) == set(schemas.NAMES)
    for name in schemas.NAMES:
        jsonschema.Draft202012Validator.check_schema(schemas.schema(name))


@pytest.mark.parametrize("name", sorted(PRODUCERS))
def test_real_output_passes_its_schema(name: str, answer_model: Path, tiny_f32_gguf: Path, tmp_path: Path) -> None:
    for text in PRODUCERS[name](answer_model, tmp_path, tiny_f32_gguf):
        document = checked_document(name, text)
        assert document["schema_version"] == schemas.SCHEMA_VERSION
        assert next(iter(document)) == "schema_version"  # first, so a reader sees it before anything else


def test_the_check_fails_on_a_document_that_breaks_its_schema(answer_model: Path, tmp_path: Path) -> None:
    good = checked_document("complete", complete(answer_model, tmp_path, answer_model)[0])
    for broken in ("missing", "wrong type", "other version"):
        document = copy.deepcopy(good)
        if broken == "missing":
            del document["cursor"]
        elif broken == "wrong type":
            document["tokens"]["prompt"] = "many"
        else:
            document["schema_version"] = 2
        with pytest.raises(jsonschema.ValidationError):
            checked_document("complete", document)
