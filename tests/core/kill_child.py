"""Run a child Python that prints the index of each step it has finished, and SIGKILL it partway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(child_src: str, arg: Path, kill_after: int, pause_s: float, timeout_s: float = 60) -> int:
    """Start `child_src` with `arg`, read its printed step indices until one reaches `kill_after`,
    wait `pause_s` (to land inside a later step), SIGKILL it; return the last index it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child_src, str(arg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    last = -1
    try:
        deadline = time.monotonic() + timeout_s
        while last < kill_after:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child exited early: {proc.stderr.read()}")
            last = int(line)
            assert time.monotonic() < deadline, "child too slow"
        time.sleep(pause_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    return last
