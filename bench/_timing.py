"""Shared by the bench scripts: the model and training-step arguments, interleaved timing of several cases and the
machine line."""

from __future__ import annotations

import argparse
import platform
import statistics
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


def step_parser(doc: str | None, warmup: int, repeats: int) -> argparse.ArgumentParser:
    """A parser with the arguments every training-step bench takes: --threads, --batch, --size,
    --warmup, --repeats (the bundled recipe's batch 6 of 160x224 crops by default)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--size", type=int, nargs=2, default=(160, 224), metavar=("H", "W"))
    ap.add_argument("--warmup", type=int, default=warmup)
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


def report_steps(title: str, cases: dict[str, Callable[[], object]], args: argparse.Namespace) -> dict[str, float]:
    """Time the training-step cases (the first is the baseline) interleaved, print the title, the
    machine and one row per case with its ratio; returns the median ms per case."""
    times = interleaved_times(cases, args.warmup, args.repeats)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = next(iter(med.values()))
    print(f"{title}, batch {args.batch} of {args.size[0]}x{args.size[1]}, both modalities, "
          f"threads {args.threads}, repeats {args.repeats}")
    print(machine_line())
    width = max(len(k) for k in med)
    for k, v in med.items():
        print(f"{k:{width}s} {v:8.1f} ms/step  {v / base:6.3f}x")
    return med


def machine_line() -> str:
    return f"machine: {platform.machine()} {platform.processor() or ''} torch {torch.__version__}".strip()
