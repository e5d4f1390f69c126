"""One training step of the bundled model's recipe: fp32 vs bfloat16 autocast, in one process.

A step is the student forward on both modalities, CE on every branch, backward and an AdamW update
(the default model's batch 6 of 160x224 crops, `csknet-r18s` with one-way fusion). The baseline is
the same step in fp32; `optim.cpu_bf16 = true` runs the bf16 case. Frame reads are measured apart:
a training frame through the training reader decoded on every visit (`data.cache_mb = 0`) vs kept
decoded (the default), the saving that made the bundled model's 5400 steps fit its budget.

    .venv/bin/python bench/train_step.py --threads 2
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch
import torch.nn.functional as F
from _timing import report_steps, step_parser

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


def _read_times(repeats: int, n: int = 6) -> tuple[float, float]:
    """Median ms to get one training frame (360x480 demo EO/IR/label PNGs in a generic folder) through
    the training reader: decoded on every visit (cache_mb = 0) vs kept decoded (the default)."""
    from csknet_studio.core.demo import render_demo_frame
    from csknet_studio.core.training.data import open_training_sequence

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for sub in ("eo", "ir", "labels"):
            (root / sub).mkdir()
        for i in range(n):
            f, _ = render_demo_frame(1, i * 20, (360, 480), 120)
            for sub, img in (("eo", cv2.cvtColor(f.eo, cv2.COLOR_RGB2BGR)), ("ir", f.ir), ("labels", f.label)):
                cv2.imwrite(str(root / sub / f"{i:06d}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        out = []
        for cache_mb in (0, 1024):
            seq = open_training_sequence(root, cache_mb=cache_mb)
            for i in range(n):  # first epoch: decodes either way
                seq[i]
            per: list[float] = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for i in range(n):
                    seq[i]
                per.append((time.perf_counter() - t0) / n)
            out.append(statistics.median(per) * 1e3)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    args = step_parser(__doc__, warmup=3, repeats=10).parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {"fp32 (baseline)": _step_fn(False, args.batch, *args.size),
             "bf16 autocast": _step_fn(True, args.batch, *args.size)}
    med = report_steps("csknet-r18s training step", steps, args)
    base = med["fp32 (baseline)"]
    print(f"RATIO bf16/fp32 = {med['bf16 autocast'] / base:.3f}")
    disk, cached = _read_times(args.repeats)
    print(f"training frame read (demo EO+IR+label PNGs, 360x480): decoded {disk:.2f} ms, from data.cache_mb "
          f"{cached:.3f} ms; per batch of {args.batch}: {(disk - cached) * args.batch:.1f} ms saved "
          f"({(disk - cached) * args.batch / base:.0%} of an fp32 step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
