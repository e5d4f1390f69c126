"""Held-out evaluation of the default model, and bundling it into resources/.

    python scripts/default_model_report.py [--checkpoint runs/default_model/best.pt] [--bundle]
                                            [--frames 24] [--size 480 640] [--json out.json]

Renders the held-out demo clip (seed 1000, never seen in training or model selection), runs the
model in every mode (both / IR only / EO only) and prints per-class IoU tables for day frames and for
night + fog frames, as Markdown (pasted into docs/model.md), then the GSU's gate statistics: per
gate, the mean and the spatial std by day and at night / in fog, and the mean over textured vs flat
EO regions (top / bottom quarter of the EO gradient magnitude, then of local EO contrast away from
label boundaries). With --bundle the checkpoint is
re-written to resources/default_model.pt with these held-out metrics and the recipe facts (training
time, data, commit) inside, so the GUI's model panel can show where its numbers come from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from csknet_studio.core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from csknet_studio.core.demo import demo_conditions, render_demo_frame
from csknet_studio.core.edits import label_edges
from csknet_studio.core.evaluate import SegMetrics, evaluate
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
HELDOUT_SEED = 1000
CLIP_FRAMES = 120
BUNDLE = ROOT / "resources" / "default_model.pt"


def heldout_conditions(n: int = 24, seed: int = HELDOUT_SEED) -> list[tuple[int, str]]:
    """(frame index, condition) of the n held-out frames, without rendering them."""
    step = CLIP_FRAMES / n
    conds = demo_conditions(seed, CLIP_FRAMES)
    return [(int(j * step + step / 2), conds[int(j * step + step / 2)]) for j in range(n)]


def heldout_frames(n: int = 24, size: tuple[int, int] = (480, 640), seed: int = HELDOUT_SEED):
    """n frames spread evenly over the held-out clip (day, night and fog as the generator mixes them)."""
    step = CLIP_FRAMES / n
    out = []
    for j in range(n):
        frame, cond = render_demo_frame(seed, int(j * step + step / 2), size, CLIP_FRAMES)
        out.append((frame, cond))
    return out


def evaluate_groups(model: torch.nn.Module, frames, modes=ALL_MODES,
                    mirror: bool = False) -> dict[str, dict[Mode, SegMetrics]]:
    """{"day": ..., "night+fog": ..., "night": ..., "fog": ..., "all": ...} -> per-mode metrics."""
    groups = {
        "day": [f for f, c in frames if c == "day"],
        "night+fog": [f for f, c in frames if c != "day"],
        "night": [f for f, c in frames if c == "night"],
        "fog": [f for f, c in frames if c == "fog"],
        "all": [f for f, _ in frames],
    }
    k = int(model.config.num_classes)
    return {g: evaluate(model, fs, modes, num_classes=k, batch=2, amp=False, mirror=mirror)
            for g, fs in groups.items() if fs}


GATE_STATS = ("mean", "spatial_std", "textured", "flat", "textured_interior", "flat_interior")


def _interior_contrast(grey: np.ndarray, label: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(pixels with no boundary pixel of either side within 3 px, local grey std over 7x7), at `shape` (h, w)."""
    lab = cv2.resize(label, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    edge = label_edges(lab).astype(np.uint8)  # both sides of every boundary, as the contour view draws it
    interior = cv2.dilate(edge, np.ones((7, 7), np.uint8)) == 0
    mean = cv2.blur(grey, (7, 7))
    contrast = np.sqrt(np.maximum(cv2.blur(grey * grey, (7, 7)) - mean * mean, 0.0))
    return interior, contrast


def _texture_regions(grey: np.ndarray, label: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The four pixel sets of `gate_statistics` at gate-map `shape` (h, w), for one frame."""
    small = cv2.resize(grey, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    tex = np.hypot(cv2.Sobel(small, cv2.CV_32F, 1, 0), cv2.Sobel(small, cv2.CV_32F, 0, 1))
    lo, hi = np.quantile(tex, (0.25, 0.75))
    interior, contrast = _interior_contrast(small, label, shape)
    ilo, ihi = np.quantile(contrast[interior], (0.25, 0.75))
    return {"textured": tex >= hi, "flat": tex <= lo,
            "textured_interior": interior & (contrast >= ihi), "flat_interior": interior & (contrast <= ilo)}


def gate_statistics(model: torch.nn.Module, frames) -> dict[str, dict[str, dict[str, float]]]:
    """{gate: {"day" | "night+fog": {stat: value for stat in GATE_STATS}}} over the frames.

    spatial_std is the std over the pixels of one frame's gate map, averaged over frames; textured
    / flat are the gate's mean over the top / bottom quarter of the EO gradient magnitude (EO at
    decoder resolution), pooled over frames. That quarter is mostly object outlines, where every
    branch is least sure, so textured_interior / flat_interior repeat the split on local EO
    contrast (the grey std over a 7x7 window) over the pixels with no label-boundary pixel
    (`label_edges`, both sides) within 3 decoder pixels: texture inside a region, with the
    outlines left out."""
    pred = Predictor(model, "cpu", amp=False)
    acc: dict[str, dict[str, dict[str, list[float]]]] = {}
    for f, cond in frames:
        group = "day" if cond == "day" else "night+fog"
        p = pred.predict(f.eo, f.ir, Mode.BOTH, introspect=True)
        grey = cv2.cvtColor(np.ascontiguousarray(f.eo), cv2.COLOR_RGB2GRAY).astype(np.float32)
        regions: dict[tuple[int, int], dict[str, np.ndarray]] = {}  # per gate-map shape: the same for every gate
        for name, g in p.gate_maps.items():
            if g.shape not in regions:
                regions[g.shape] = _texture_regions(grey, f.label, g.shape)
            d = acc.setdefault(name, {}).setdefault(group, {k: [] for k in GATE_STATS})
            d["mean"].append(float(g.mean()))
            d["spatial_std"].append(float(g.std()))
            for k, where in regions[g.shape].items():
                d[k].append(float(g[where].mean()))
    return {n: {grp: {k: float(np.mean(v)) for k, v in d.items()} for grp, d in groups.items()}
            for n, groups in acc.items()}


def gate_table(stats: dict) -> str:
    lines = ["| gate | frames | mean | spatial std | textured EO | flat EO | textured interior | flat interior |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, groups in stats.items():
        for grp, d in groups.items():
            lines.append(f"| {name} | {grp} | " + " | ".join(f"{d[k]:.3f}" for k in GATE_STATS) + " |")
    return "\n".join(lines)


def markdown_table(res: dict[Mode, SegMetrics], class_names) -> str:
    modes = list(res)
    lines = ["| class | " + " | ".join(m.label for m in modes) + " |",
             "|---|" + "---:|" * len(modes)]
    for i, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(_pct(res[m].iou[i]) for m in modes) + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{_pct(res[m].miou)}**" for m in modes) + " |")
    return "\n".join(lines)


def _pct(v: float) -> str:
    return f"{100 * v:.1f}" if np.isfinite(v) else "-"


def to_json(groups: dict[str, dict[Mode, SegMetrics]], class_names) -> dict:
    return {g: {m.value: r.to_dict(class_names) for m, r in res.items()} for g, res in groups.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "runs" / "default_model" / "best.pt")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    ap.add_argument("--mirror", action="store_true", help="score with test-time mirroring (core/mirroring.py)")
    ap.add_argument("--bundle", action="store_true", help=f"write {BUNDLE.relative_to(ROOT)}")
    ap.add_argument("--metrics", type=Path, default=None,
                    help="with --bundle: the --json of an earlier evaluation of this checkpoint, not re-measured")
    ap.add_argument("--train-log", type=Path, default=None,
                    help="`/usr/bin/time -v` output of the training (wall / CPU time go into the bundle)")
    ap.add_argument("--train-note", default="",
                    help="how the training time was measured, when it was not one quiet run (kept in the bundle)")
    args = ap.parse_args(argv)
    if args.bundle and args.mirror:
        ap.error("--bundle records the model's own scores, one forward a frame: drop --mirror")

    t0 = time.perf_counter()
    ck = load_checkpoint(args.checkpoint)
    names = ck.scheme.class_names
    if args.metrics:  # bundle what an earlier run of this script measured (--json), without re-evaluating
        metrics_json = json.loads(args.metrics.read_text(encoding="utf-8"))
        conds = [c for _, c in heldout_conditions(args.frames)]
        return bundle(args, ck, metrics_json, conds)
    frames = heldout_frames(args.frames, tuple(args.size))
    groups = evaluate_groups(ck.model, frames, mirror=args.mirror)
    conds = [c for _, c in frames]
    print(f"held-out: seed {HELDOUT_SEED}, {len(frames)} frames at {args.size[0]}x{args.size[1]} "
          f"({conds.count('day')} day, {conds.count('night')} night, {conds.count('fog')} fog); "
          f"checkpoint {args.checkpoint} (epoch {ck.metrics.get('epoch')})")
    for g, res in groups.items():
        print(f"\n#### {g} ({sum(1 for c in conds if (c == 'day') == (g == 'day') and g in ('day', 'night+fog'))} frames)"
              if g in ("day", "night+fog") else f"\n#### {g}")
        print(markdown_table(res, names))
    metrics_json = to_json(groups, names)
    teacher = args.checkpoint.parent / "teacher_metrics.json"
    if teacher.is_file():  # the EO teacher's own score on the validation frames, from the training run
        eo = json.loads(teacher.read_text(encoding="utf-8")).get("eo", {})
        print(f"\nEO teacher (validation frames): mIoU {100 * float(eo.get('miou', float('nan'))):.1f}")
        metrics_json["teacher_val"] = eo
    gates = gate_statistics(ck.model, frames)
    if gates:
        print("\n#### GSU gates (both modes)")
        print(gate_table(gates))
        metrics_json["gates"] = gates
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics_json, indent=1) + "\n", encoding="utf-8")
    print(f"\nevaluation took {time.perf_counter() - t0:.0f} s")

    if args.bundle:
        bundle(args, ck, metrics_json, conds)
    return 0


def bundle(args, ck, metrics_json: dict, conds: list[str]) -> int:
    """Write resources/default_model.pt: the checkpoint with its held-out metrics and the recipe facts."""
    payload = read_checkpoint(args.checkpoint)
    timing = {}
    if args.train_log and args.train_log.is_file():
        timing = parse_time_v(args.train_log.read_text(encoding="utf-8", errors="replace"))
    if args.train_note:
        timing["note"] = args.train_note
    metrics = dict(ck.metrics)
    metrics["heldout"] = {"seed": HELDOUT_SEED, "frames": len(conds), "size": list(args.size),
                          "conditions": {c: conds.count(c) for c in sorted(set(conds))}, **metrics_json}
    extra = dict(payload.get("extra") or {})
    extra.update({"what": "CSK-Net ResNet-18 half width, trained on the procedural demo scenes only "
                          "(configs/default_model.toml, `make model`)",
                  "training_time": timing, "source_checkpoint": str(args.checkpoint)})
    save_checkpoint(BUNDLE, ck.model, scheme=ck.scheme, metrics=metrics, train_config=ck.config, extra=extra)
    print(f"wrote {BUNDLE} ({BUNDLE.stat().st_size / 1e6:.1f} MB)")
    return 0


def parse_time_v(text: str) -> dict:
    """Wall and CPU seconds from GNU time -v output."""
    out: dict = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("User time (seconds):"):
            out["user_s"] = float(line.split(":")[-1])
        elif line.startswith("System time (seconds):"):
            out["sys_s"] = float(line.split(":")[-1])
        elif line.startswith("Elapsed (wall clock) time"):
            parts = [float(p) for p in line.split(": ")[-1].split(":")]
            sec = 0.0
            for p in parts:
                sec = sec * 60 + p
            out["wall_s"] = sec
        elif line.startswith("wall_s="):  # written by `make model`
            out["wall_s"] = float(line.split("=")[1])
        elif line.startswith("Percent of CPU this job got:"):
            out["cpu_percent"] = line.split(":")[-1].strip()
    return out


if __name__ == "__main__":
    sys.exit(main())
