"""Label propagation on the demo sequence: mIoU against ground truth after 5 and 10 frames.

    .venv/bin/python bench/propagate.py [--data DIR] [--frames 120] [--starts 0,30,60,88] [--no-model]

From each start frame, the ground-truth labels are carried forward by `propagate_labels`; at each
horizon the result is scored against that frame's ground truth (mIoU over the classes present,
unlabelled pixels count as misses). Printed beside it: copying the start labels unchanged (the
plain baseline, what "copy previous frame" gives), the bundled model alone, and the flow with the
model filling the pixels it does not trust. Also the fraction carried and the modality chosen.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from csknet_studio.core.data import open_sequence
from csknet_studio.core.propagate import PropagationConfig, propagate_labels


def miou(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    ious = []
    for c in range(num_classes):
        t, p = truth == c, pred == c
        if t.any():
            ious.append((t & p).sum() / (t | p).sum())
    return float(np.mean(ious)) if ious else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="a demo sequence (default: generate one)")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--starts", default="0,30,60,88", help="start frames (the default ones lie in day, night, "
                    "day and fog runs of the 120-frame demo, each >= 11 frames long)")
    ap.add_argument("--preset", default="medium", choices=["ultrafast", "fast", "medium"])
    ap.add_argument("--max-error", type=float, default=1.0, help="forward-backward threshold (px)")
    ap.add_argument("--horizons", default="5,10")
    ap.add_argument("--no-model", action="store_true", help="flow only, no model predictions to fill")
    args = ap.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    config = PropagationConfig(max_error_px=args.max_error, preset=args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from csknet_studio.core.demo import generate_demo

            data = Path(tmp) / "demo"
            generate_demo(data, n_frames=args.frames)
        conditions = json.loads((data / "demo.json").read_text())["conditions"]
        seq = open_sequence(data)
        n_cls = seq.scheme.num_classes
        predictor = None
        if not args.no_model:
            from csknet_studio.core.checkpoint import load_checkpoint
            from csknet_studio.core.predictor import Predictor
            from csknet_studio.resources import resource_path

            loaded = load_checkpoint(resource_path("default_model.pt"))
            predictor = Predictor(loaded.model, "cpu", loaded.scheme, amp=False)
        preds: dict[int, np.ndarray] = {}

        def prediction(i: int):
            if predictor is None:
                return None
            if i not in preds:
                preds[i] = predictor.predict_labels([seq[i]])[0]
            return preds[i]

        print(f"{'start':>5} {'cond':>5} {'N':>3} | {'copy':>6} {'flow':>6} {'model':>6} {'flow+m':>6} | "
              f"{'carried':>7} modality")
        for start in (int(s) for s in args.starts.split(",")):
            horizon = max(horizons)
            targets = [t for t in range(start + 1, start + 1 + horizon) if t < len(seq)]
            t0 = time.perf_counter()
            flow = propagate_labels(seq, start, seq[start].label, targets, config=config)
            ms = (time.perf_counter() - t0) * 1000 / max(1, len(flow))
            filled = propagate_labels(seq, start, seq[start].label, targets, prediction, config=config) \
                if predictor else None
            for h in horizons:
                if h > len(flow):
                    continue
                k = h - 1
                t = flow[k].index
                truth = seq[t].label
                row = [miou(seq[start].label, truth, n_cls), miou(flow[k].labels, truth, n_cls)]
                if filled is not None:
                    row += [miou(prediction(t), truth, n_cls), miou(filled[k].labels, truth, n_cls)]
                cells = " ".join(f"{100 * v:6.1f}" for v in row) + (" " * 14 if filled is None else "")
                mods = "".join(p.modality[0] for p in flow[:h])
                print(f"{start:5d} {conditions[start]:>5} {h:3d} | {cells} | {flow[k].carried:7.2f} {mods}")
            print(f"      flow: {ms:.0f} ms per frame ({seq[start].shape[1]}x{seq[start].shape[0]})")
        seq.close()


if __name__ == "__main__":
    main()
