"""Layers point one way: completing a line (the core, the server, its client) never imports the converter."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import localcoder.pipeline, localcoder.completion.infill, localcoder.server.http, localcoder.server.client
import localcoder.evaluate.generation
print(",".join(sorted(name for name in sys.modules if name == "convert" or name.startswith("convert."))))
"""


def test_the_runtime_does_not_import_the_converter() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported: {done.stdout}"


def test_both_packages_share_ggufkit() -> None:
    import convert.errors
    import localcoder.errors
    from ggufkit.errors import UserError

    assert issubclass(convert.errors.ConvertError, UserError)
    assert issubclass(localcoder.errors.LocalcoderError, UserError)
