"""CodeGen1 and CodeGen2 GGUFs in the rest of the tool: verify, prompt formats and complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convert.pipeline import ConvertOptions, convert
from tests.codegen1 import CODEGEN1, CODEGEN2, CodeGenSpec, save_checkpoint
from tests.helpers import run_cli, run_complete

transformers = pytest.importorskip("transformers")
pytest.importorskip("llama_cpp")



@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    def build(spec: CodeGenSpec, name: str) -> tuple[Path, Path]:
        directory = tmp_path_factory.mktemp(name)
        checkpoint = save_checkpoint(spec, directory / "checkpoint")
        gguf = convert(ConvertOptions(source=str(checkpoint), output=directory / f"{name}.gguf", outtype="f32")).output
        return checkpoint, gguf

    return build


@pytest.mark.parametrize("spec, name", [(CODEGEN1, "codegen1"), (CODEGEN2, "codegen2")])
def test_verify_passes_for_codegen_families(spec: CodeGenSpec, name: str, converted) -> None:
    checkpoint, gguf = converted(spec, name)
    result = run_cli("verify", str(gguf), str(checkpoint), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["tokenizer"]["equal"] == report["tokenizer"]["strings"]
    logits = report["logits"]
    assert logits["decisive_argmax_equal"] and logits["max_abs_diff"] <= logits["tolerance"]


def test_codegen2_infill_prompt_equals_its_own_tokenizer(converted, tmp_path: Path) -> None:
    checkpoint, gguf = converted(CODEGEN2, "codegen2")
    reference = transformers.AutoTokenizer.from_pretrained(checkpoint)
    source = tmp_path / "app.py"
    source.write_text("def f(x):\n    \n    return y\n")
    result = run_complete(f"{source}:2", "--model", str(gguf), "--json", "--max-tokens", "4", "--scope", "full")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prompt_format"] == "codegen-infill"

    from ggufkit.llamacpp import load_llama, tokenize
    from localcoder.completion.prompts import FORMATS, Vocabulary, build_prompt

    llm = load_llama(gguf, vocab_only=True)
    vocab = Vocabulary(lambda text: tokenize(llm, text), dict(llm.metadata), lambda: frozenset())
    prefix, suffix = "def f(x):\n    ", "\n    return y\n"
    ids = build_prompt(FORMATS["codegen-infill"], vocab, prefix, suffix, budget=512).ids
    expected = reference.encode(prefix + "<mask_1>" + suffix + "<|endoftext|><sep><mask_1>", add_special_tokens=False)
    assert ids == expected


def test_codegen1_completes_left_to_right_with_a_note(converted, tmp_path: Path) -> None:
    _, gguf = converted(CODEGEN1, "codegen1")
    source = tmp_path / "app.py"
    source.write_text("import os\n\n")
    result = run_complete(f"{source}:2", "--model", str(gguf), "--json", "--max-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prompt_format"] == "left-to-right"
    assert "cannot infill" in result.stderr


def test_mp_num_flag(converted, tmp_path: Path) -> None:
    from tests.helpers import assert_one_line_error

    checkpoint, _ = converted(CODEGEN1, "codegen1")
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(tmp_path / "x.gguf"), "--mp-num", "5"), "mp_num"
    )
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(tmp_path / "z.gguf"), "--mp-num", "8"), "mp_num 8"
    )
    ok = run_cli("convert", str(checkpoint), "-o", str(tmp_path / "y.gguf"), "--mp-num", "4")
    assert ok.returncode == 0, ok.stderr
