"""The default model on real EO/IR pairs, and the PST900 new-class-scheme workflow.

    python scripts/default_model_real.py [--checkpoint resources/default_model.pt]
           [--data ../shared/data/rgbt_real] [--sheet docs/images/real_contact_sheet.jpg]
           [--steps 150] [--json runs/default_model_real.json]

1. Every pair under the real-data folder (MFNet 4-channel PNG, MSRS, RoadScene, LLVIP, TNO, M3FD,
   PST900), read with the app's own readers (`open_sequence` / `open_pair`), is segmented in all
   three modes; a contact sheet (EO | IR | both | IR only | EO only overlays) is written.
   Frames are scaled so the long side is 640 px (the scale the model was trained at).
2. PST900: the colour-coded label is mapped to ids with the PST900 palette; the model gets a new
   5-class head (`replace_head` via FinetuneConfig.num_classes: encoder and decoder body kept), is
   fine-tuned (`core.finetune.finetune`) on the LEFT half of the frame (right half = 255, ignored)
   and scored on the RIGHT half before and after.
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

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.classes import PST900, ClassScheme
from csknet_studio.core.data import open_pair, open_sequence
from csknet_studio.core.evaluate import SegMetrics, confusion_matrix
from csknet_studio.core.finetune import FinetuneConfig, finetune, replace_head
from csknet_studio.core.frames import FramePair
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
# (label on the sheet, folder relative to the data root)
SOURCES = (
    ("MFNet", "mfnet_pytorch_samples"),
    ("MSRS", "msrs_piafusion"),
    ("RoadScene", "roadscene"),
    ("LLVIP", "llvip"),
    ("TNO", "tno_piafusion"),
    ("M3FD/TNO", "tardal_samples"),
)
PST_DIR = "pst900_readme_example"
THUMB = (96, 128)  # h, w of one cell
LONG_SIDE = 640


def fit(frame: FramePair, long_side: int = LONG_SIDE) -> FramePair:
    """Scale so the long side is `long_side` (labels nearest-neighbour)."""
    h, w = frame.shape
    s = long_side / max(h, w)
    if abs(s - 1) < 1e-3:
        return frame
    size = (max(16, round(w * s)), max(16, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    eo = None if frame.eo is None else cv2.resize(frame.eo, size, interpolation=interp)
    ir = None if frame.ir is None else cv2.resize(frame.ir if frame.ir.ndim == 2 else frame.ir[..., 0], size,
                                                  interpolation=interp)
    lab = None if frame.label is None else cv2.resize(frame.label, size, interpolation=cv2.INTER_NEAREST)
    return FramePair(name=frame.name, eo=eo, ir=ir, label=lab)


def ir_display(ir: np.ndarray) -> np.ndarray:
    """1..99 % stretch to uint8 grey RGB."""
    x = ir.astype(np.float32)
    lo, hi = np.percentile(x, (1, 99))
    g = np.clip((x - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def overlay(base_rgb: np.ndarray, labels: np.ndarray, scheme: ClassScheme, alpha: float = 0.6) -> np.ndarray:
    """Class colours over the image; class 0 (background / unlabeled) left uncoloured."""
    col = scheme.colorize(labels).astype(np.float32)
    m = (labels > 0)[..., None]
    out = np.where(m, (1 - alpha) * base_rgb.astype(np.float32) + alpha * col, base_rgb.astype(np.float32))
    return out.astype(np.uint8)


def thumb(img: np.ndarray) -> np.ndarray:
    h, w = THUMB
    ih, iw = img.shape[:2]
    s = min(h / ih, w / iw)
    r = cv2.resize(img, (max(1, round(iw * s)), max(1, round(ih * s))), interpolation=cv2.INTER_AREA)
    cell = np.full((h, w, 3), 24, np.uint8)
    y, x = (h - r.shape[0]) // 2, (w - r.shape[1]) // 2
    cell[y:y + r.shape[0], x:x + r.shape[1]] = r
    return cell


def put(img: np.ndarray, text: str, org=(3, 11), scale: float = 0.33) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def legend(scheme: ClassScheme, width: int) -> np.ndarray:
    bar = np.full((18, width, 3), 24, np.uint8)
    x = 4
    for i, (name, c) in enumerate(zip(scheme.class_names, scheme.palette, strict=True)):
        if i == 0:
            continue
        cv2.rectangle(bar, (x, 4), (x + 10, 14), tuple(int(v) for v in c), -1)
        put(bar, name, (x + 13, 13), 0.33)
        x += 18 + 7 * len(name)
    return bar


def contact_sheet(predictor: Predictor, scheme: ClassScheme, data: Path) -> tuple[np.ndarray, list[dict]]:
    rows, stats = [], []
    pairs: list[tuple[str, FramePair]] = []
    for label, sub in SOURCES:
        seq = open_sequence(data / sub)
        for i in range(len(seq)):
            pairs.append((f"{label} {seq[i].name}", seq[i]))
    pst = open_pair(data / PST_DIR / "utils_rgb_loader.png", data / PST_DIR / "utils_thermal_loader.png")
    pairs.append(("PST900 example", pst[0]))
    for name, raw in pairs:
        f = fit(raw)
        ir_rgb = ir_display(f.ir)
        cells = [thumb(f.eo), thumb(ir_rgb)]
        st = {"pair": name, "size": list(raw.shape)}
        for mode in ALL_MODES:
            p = predictor.predict(f.eo, f.ir, mode)
            base = ir_rgb if mode is Mode.IR else f.eo
            cells.append(thumb(overlay(base, p.labels, scheme)))
            st[mode.value] = {scheme.class_names[c]: round(float(v), 4) for c, v in
                              enumerate(np.bincount(p.labels.ravel(), minlength=scheme.num_classes)
                                        / p.labels.size) if c > 0 and v > 0.001}
        put(cells[0], name)
        rows.append(np.concatenate(cells, axis=1))
        stats.append(st)
    header = [thumb(np.full((8, 8, 3), 24, np.uint8)) for _ in range(5)]
    head = np.full((16, 5 * THUMB[1], 3), 24, np.uint8)
    for j, t in enumerate(("EO", "IR", "both", "IR only", "EO only")):
        put(head, t, (j * THUMB[1] + 4, 12), 0.4)
    del header
    half = (len(rows) + 1) // 2
    cols = []
    for block in (rows[:half], rows[half:]):
        while len(block) < half:
            block.append(np.full_like(rows[0], 24))
        cols.append(np.concatenate([head, *block], axis=0))
    gap = np.full((cols[0].shape[0], 6, 3), 24, np.uint8)
    sheet = np.concatenate([cols[0], gap, cols[1]], axis=1)
    sheet = np.concatenate([sheet, legend(scheme, sheet.shape[1])], axis=0)
    return sheet, stats


def halves_metrics(model, frame: FramePair, k: int, right: np.ndarray) -> dict:
    """Per-mode IoU on the right half (the pixels fine-tuning never saw)."""
    pred = Predictor(model, "cpu", amp=False)
    out = {}
    for mode in ALL_MODES:
        lab = pred.predict(frame.eo, frame.ir, mode).labels
        conf = confusion_matrix(lab[right], frame.label[right], k, 255)
        m = SegMetrics(conf)
        out[mode.value] = {"miou": m.miou, "iou": {n: (None if not np.isfinite(v) else float(v))
                                                  for n, v in zip(PST900.class_names, m.iou, strict=True)},
                           "predicted_pixels": np.bincount(lab[right].ravel(), minlength=k).tolist()}
    return out


def pst900_workflow(model: torch.nn.Module, data: Path, steps: int) -> dict:
    seq = open_pair(data / PST_DIR / "utils_rgb_loader.png", data / PST_DIR / "utils_thermal_loader.png",
                    data / PST_DIR / "utils_label_vis.png", scheme=PST900)
    f = fit(seq[0])
    h, w = f.shape
    right = np.zeros((h, w), bool)
    right[:, w // 2:] = True
    train_mask = f.label.copy()
    train_mask[right] = 255
    k = PST900.num_classes
    gt = {"left": np.bincount(f.label[~right].ravel(), minlength=k).tolist(),
          "right": np.bincount(f.label[right].ravel(), minlength=k).tolist()}
    torch.manual_seed(0)
    new = replace_head(model, k).eval()
    before = halves_metrics(new, f, k, right)
    before_left = halves_metrics(new, f, k, ~right)
    cfg = FinetuneConfig(steps=steps, lr=1e-3, batch=4, modes=("both", "ir", "eo"), crop=(192, 192),
                         num_classes=k, seed=0, freeze_bn=True, freeze_encoder=False, evaluate=False)
    t0 = time.perf_counter()
    res = finetune(new, [(f.eo, f.ir, train_mask)], cfg)
    new.load_state_dict(res.state_dict)
    after = halves_metrics(new.eval(), f, k, right)
    after_left = halves_metrics(new, f, k, ~right)
    return {"before_left_seen": before_left, "after_left_seen": after_left,"size": [h, w], "gt_pixels": gt, "steps": steps, "seconds": round(time.perf_counter() - t0, 1),
            "reinitialised": getattr(new, "reinitialised", []), "before": before, "after": after,
            "final_loss": res.losses[-1] if res.losses else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "resources" / "default_model.pt")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "rgbt_real")
    ap.add_argument("--sheet", type=Path, default=ROOT / "docs" / "images" / "real_contact_sheet.jpg")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--json", type=Path, default=ROOT / "runs" / "default_model_real.json")
    ap.add_argument("--skip-sheet", action="store_true")
    args = ap.parse_args(argv)
    ck = load_checkpoint(args.checkpoint)
    out: dict = {}
    if not args.skip_sheet:
        t0 = time.perf_counter()
        sheet, stats = contact_sheet(Predictor(ck.model, "cpu", ck.scheme, amp=False), ck.scheme, args.data)
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        args.sheet.write_bytes(buf.tobytes())
        print(f"wrote {args.sheet} ({sheet.shape[1]}x{sheet.shape[0]}, {len(buf) / 1e3:.0f} kB) "
              f"in {time.perf_counter() - t0:.0f} s")
        out["pairs"] = stats
    out["pst900"] = pst = pst900_workflow(ck.model, args.data, args.steps)
    print(f"PST900: ground-truth pixels left {pst['gt_pixels']['left']} right {pst['gt_pixels']['right']}")
    for when in ("before", "after", "before_left_seen", "after_left_seen"):
        for m, r in pst[when].items():
            print(f"  {when:16s} {m:4s} mIoU {100 * r['miou']:.1f}  " + ", ".join(
                f"{n} {'-' if v is None else f'{100 * v:.1f}'}" for n, v in r["iou"].items()))
    print(f"  fine-tuning: {pst['steps']} steps in {pst['seconds']} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
