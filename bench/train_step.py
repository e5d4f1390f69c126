"""One training step of the bundled model's recipe: fp32 vs bfloat16 autocast, in one process.

A step is the student forward on both modalities, CE on every branch, backward and an AdamW update
(the default model's batch 6 of 160x224 crops, `csknet-r18s` with one-way fusion). The baseline is
the same step in fp32; `optim.cpu_bf16 = true` runs the bf16 case. Decode cost is measured apart:
reading a PNG frame triple from disk vs taking it from the training frame cache (`data.cache_mb`).

    .venv/bin/python bench/train_step.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from _timing import interleaved_times, machine_line

from csknet_studio.core.model import create_model


def _step_fn(bf16: bool, batch: int, h: int, w: int):
    torch.manual_seed(0)
    model = create_model("csknet-r18s", exchange_direction="ir->eo", gsu_inject="eo").train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    eo, ir = torch.randn(batch, 3, h, w), torch.randn(batch, 1, h, w)
    labels = torch.randint(0, 9, (batch, h, w))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(eo, ir)
            loss = F.cross_entropy(out.logits.float(), labels) + sum(
                F.cross_entropy(lg.float(), labels) for lg in out.branch_logits.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _decode_times(repeats: int) -> tuple[float, float]:
    """Median ms to read one 360x480 EO/IR/label PNG triple from disk vs from an in-memory dict."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, img in (("eo", rng.integers(0, 255, (360, 480, 3), np.uint8)),
                          ("ir", rng.integers(0, 65535, (360, 480), np.uint16)),
                          ("label", rng.integers(0, 9, (360, 480), np.uint8))):
            p = Path(d) / f"{name}.png"
            cv2.imwrite(str(p), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            paths.append(p)
        disk, cached = [], []
        cache = {p: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths}
        for _ in range(repeats):
            t0 = time.perf_counter()
            [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths]
            disk.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            [cache[p] for p in paths]
            cached.append(time.perf_counter() - t0)
    return statistics.median(disk) * 1e3, statistics.median(cached) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--size", type=int, nargs=2, default=(160, 224), metavar=("H", "W"))
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {"fp32 (baseline)": _step_fn(False, args.batch, *args.size),
             "bf16 autocast": _step_fn(True, args.batch, *args.size)}
    times = interleaved_times(steps, args.warmup, args.repeats)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = med["fp32 (baseline)"]
    print(f"csknet-r18s training step, batch {args.batch} of {args.size[0]}x{args.size[1]}, both modalities, "
          f"threads {args.threads}, repeats {args.repeats}")
    print(machine_line())
    for k, v in med.items():
        print(f"{k:18s} {v:8.1f} ms/step  {v / base:6.3f}x")
    print(f"RATIO bf16/fp32 = {med['bf16 autocast'] / base:.3f}")
    disk, cached = _decode_times(args.repeats * 3)
    print(f"frame read (EO+IR+label PNG, 360x480): disk {disk:.2f} ms, cached {cached:.4f} ms; "
          f"per batch of {args.batch}: {disk * args.batch:.1f} ms saved by data.cache_mb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
