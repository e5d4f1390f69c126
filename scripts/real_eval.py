"""Person / car / bike IoU of a checkpoint on the real EO/IR pairs labelled in the app.

    python scripts/real_eval.py [--checkpoint resources/default_model.pt] [--data ../shared/data/rgbt_real]
                                [--json out.json]

The ground truth is tests/data/real_eval/ (masks only, drawn in CSKNet Studio; see its README); the
images stay in the shared data folder, read in place. Prints a Markdown table per mode (EO + IR / IR
only / EO only): IoU over all pairs pooled, per class, and the share of pixels each mode calls
background on the labelled objects (the "EO only predicts nothing" symptom).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.data.imaging import read_image, to_grey, to_rgb
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
GT = ROOT / "tests" / "data" / "real_eval"
CLASSES = {1: "car", 2: "person", 3: "bike"}


def load_pair(data: Path, eo_rel: str, ir_rel: str) -> tuple[np.ndarray, np.ndarray]:
    """EO RGB uint8 and IR grey; a 4-channel PNG named for both holds R, G, B, thermal."""
    eo_img = read_image(data / eo_rel)
    if eo_rel == ir_rel and eo_img.ndim == 3 and eo_img.shape[2] == 4:
        return cv2.cvtColor(eo_img[..., :3], cv2.COLOR_BGR2RGB), eo_img[..., 3].copy()
    return to_rgb(eo_img), to_grey(read_image(data / ir_rel))


def entries(gt: Path = GT) -> list[dict]:
    manifest = json.loads((gt / "manifest.json").read_text())
    items = manifest["masks"] if isinstance(manifest, dict) else manifest
    return list(items)


def _mask_path(gt: Path, item: dict) -> Path:
    return gt / item["mask"]


def evaluate_real(checkpoint: Path, data: Path, gt: Path = GT) -> dict:
    """{mode: {"iou": {class: IoU}, "missed": {class: share of its pixels called background},
    "pairs": n}} pooled over all labelled pairs; plus "per_source"."""
    loaded = load_checkpoint(checkpoint)
    pred = Predictor(loaded.model, "cpu", loaded.scheme, amp=False)
    inter = {m: np.zeros(9) for m in ALL_MODES}
    union = {m: np.zeros(9) for m in ALL_MODES}
    missed = {m: np.zeros(9) for m in ALL_MODES}
    total = np.zeros(9)
    per_source: dict[str, dict[Mode, list[np.ndarray]]] = {}
    items = entries(gt)
    for item in items:
        eo, ir = load_pair(data, item["eo"], item["ir"])
        mask = cv2.imread(str(_mask_path(gt, item)), cv2.IMREAD_UNCHANGED)
        if mask.shape != eo.shape[:2]:
            raise SystemExit(f"{item['mask']}: mask {mask.shape} differs from image {eo.shape[:2]}")
        valid = mask != 255
        src = item["mask"].split("/")[0]
        for mode in ALL_MODES:
            p = pred.predict(eo if mode.uses_eo else None, ir if mode.uses_ir else None, mode).labels
            acc = per_source.setdefault(src, {}).setdefault(mode, [np.zeros(9), np.zeros(9)])
            for c in CLASSES:
                g, q = (mask == c) & valid, (p == c) & valid
                i, u = float((g & q).sum()), float((g | q).sum())
                inter[mode][c] += i
                union[mode][c] += u
                acc[0][c] += i
                acc[1][c] += u
                missed[mode][c] += float((g & (p == 0)).sum())
        for c in CLASSES:
            total[c] += float(((mask == c) & valid).sum())

    def iou(i, u):
        return {CLASSES[c]: (round(100 * i[c] / u[c], 1) if u[c] > 0 else None) for c in CLASSES}

    out = {m.value: {"iou": iou(inter[m], union[m]),
                     "missed": {CLASSES[c]: (round(100 * missed[m][c] / total[c], 1) if total[c] else None)
                                for c in CLASSES},
                     "pairs": len(items)} for m in ALL_MODES}
    out["per_source"] = {s: {m.value: iou(*v) for m, v in d.items()} for s, d in per_source.items()}
    out["pixels"] = {CLASSES[c]: int(total[c]) for c in CLASSES}
    return out


def table(res: dict) -> str:
    names = {"both": "EO + IR", "ir": "IR only", "eo": "EO only"}
    rows = ["| mode | person IoU | car IoU | bike IoU | person missed | car missed |", "|---|---:|---:|---:|---:|---:|"]
    for m in ("both", "ir", "eo"):
        r = res[m]
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        rows.append(f"| {names[m]} | {f(r['iou']['person'])} | {f(r['iou']['car'])} | {f(r['iou']['bike'])} | "
                    f"{f(r['missed']['person'])} % | {f(r['missed']['car'])} % |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "resources" / "default_model.pt"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "rgbt_real"))
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    res = evaluate_real(Path(args.checkpoint), Path(args.data))
    print(f"{res['both']['pairs']} pairs; labelled pixels {res['pixels']}")
    print(table(res))
    for src, d in res["per_source"].items():
        print(src, {m: d[m] for m in d})
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
