"""Forward time per modality mode vs a plain single-stream baseline, measured in one process.

Baseline = plain-torch ResNet + the same DeepLabV3+-lite decoder (nn.Conv2d / nn.BatchNorm2d only:
no parallel BN, exchange, GSU or stream lists) fed one 3-channel image, i.e. what a single-modality
segmentation network of the same backbone costs. Targets: IR-only / baseline <= 1.05.

    .venv/bin/python bench/model_forward.py --threads 2
"""

from __future__ import annotations

import statistics

import torch
from _timing import interleaved_times, machine_line, model_parser

from csknet_studio.core.model import SingleStreamSegNet, create_model


def main(argv: list[str] | None = None) -> int:
    ap = model_parser(__doc__, repeats=8)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = create_model(args.model).eval()
    baseline = SingleStreamSegNet(model.config, in_channels=3).eval()
    h, w = args.height, args.width
    eo, ir = torch.randn(1, 3, h, w), torch.randn(1, 1, h, w)
    rgb = torch.randn(1, 3, h, w)
    cases = {
        "baseline (plain single-stream)": lambda: baseline(rgb),
        "csknet IR only": lambda: model(None, ir),
        "csknet EO only": lambda: model(eo, None),
        "csknet both": lambda: model(eo, ir),
        "csknet both, introspect": lambda: model(eo, ir, introspect=True),
    }
    with torch.inference_mode():
        times = interleaved_times(cases, args.warmup, args.repeats)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = med["baseline (plain single-stream)"]
    print(f"model {args.model} ({model.config.backbone}, OS{model.config.output_stride}), input {h}x{w}, batch 1, "
          f"eval, inference_mode, threads {args.threads}, warmup {args.warmup}, repeats {args.repeats}")
    print(machine_line())
    print(f"{'case':34s} {'median ms':>10s} {'min ms':>9s} {'/ baseline':>11s}")
    for k, v in med.items():
        print(f"{k:34s} {v:10.1f} {min(times[k]) * 1e3:9.1f} {v / base:11.3f}")
    ratio_ir = med["csknet IR only"] / base
    best = {k: min(v) for k, v in times.items()}
    best_base = best["baseline (plain single-stream)"]
    print(f"RATIO ir_only/baseline = {ratio_ir:.3f} (target <= 1.05: {'OK' if ratio_ir <= 1.05 else 'MISSED'})")
    print(f"RATIO both/baseline = {med['csknet both'] / base:.3f}")
    # Minimum times are the least disturbed by other processes on a shared machine.
    print(f"RATIO (min times) ir_only/baseline = {best['csknet IR only'] / best_base:.3f}, "
          f"both/baseline = {best['csknet both'] / best_base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
