"""Shared by the bench scripts: the model arguments, interleaved timing of several cases and the
machine line."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch

from csknet_studio.core.model import MODEL_REGISTRY


def model_parser(doc: str | None, repeats: int) -> argparse.ArgumentParser:
    """A parser with the arguments every model bench takes: --model, --height, --width, --threads,
    --repeats."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="csknet-r18", choices=sorted(MODEL_REGISTRY))
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=repeats)
    return ap


def interleaved_times(cases: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each case. The cases run round by round (not one after the other), so
    load drift on a shared machine hits all of them alike and their ratios stay comparable."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def machine_line() -> str:
    return f"machine: {platform.machine()} {platform.processor() or ''} torch {torch.__version__}".strip()
