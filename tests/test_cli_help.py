"""`csknet-studio CMD --help` answers at once: the parsers are built without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, sys
from csknet_studio.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main([{args}])
print("torch" in sys.modules)
"""


@pytest.mark.parametrize("command", ["", "eval", "infer", "train", "export", "info", "align", "demo"])
def test_help_does_not_import_torch(command):
    args = ", ".join(repr(a) for a in (command, "--help") if a)
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out[-1] == "False", f"`csknet-studio {command} --help` imported torch"
