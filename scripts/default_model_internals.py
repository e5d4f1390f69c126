"""Picture of the default model's internals on demo frames: GSU gate maps and exchanged channels.

    python scripts/default_model_internals.py [--checkpoint resources/default_model.pt]
           [--out docs/images/gates_exchange.png]

Made from the real code path the GUI uses: `Predictor.predict(..., introspect=True)` returns the
GSU's gate maps (the share of the EO decoder's features, the IR decoder's and their sum that the
fusion took at each pixel, 0 = none, 1 = all) and, per exchange site, the channel
indices that were replaced ("ir->eo": EO channels overwritten by IR's, "eo->ir": the reverse), and
`core.introspect.channel_maps` one exchanged channel before/after. One day and one night frame of
the held-out clip (seed 1000) are shown. numpy + cv2 only (no matplotlib in the app's environment).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.demo import render_demo_frame
from csknet_studio.core.introspect import channel_maps
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
GATE_ORDER = ("eo", "ir", "sum")
GATE_LABELS = {"eo": "EO decoder", "ir": "IR decoder", "sum": "EO + IR"}
CELL = (180, 240)
BG = 28


def _text(img, s, org, scale=0.42, color=(255, 255, 255)):
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _cell(img: np.ndarray, title: str) -> np.ndarray:
    """The image scaled to CELL under a title bar."""
    h, w = CELL
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if img.shape[0] < h // 2 else cv2.INTER_AREA)
    bar = np.full((18, w, 3), BG, np.uint8)
    _text(bar, title, (4, 13), 0.38)
    return np.concatenate([bar, out], axis=0)


def _gate_rgb(g: np.ndarray) -> np.ndarray:
    """Gate in [0,1] -> colour: blue = IR (0), red = EO (1), cv2's COLORMAP_JET."""
    u8 = np.clip(g * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _norm_map(m: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(m, (1, 99))
    u8 = np.clip((m - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def exchange_strip(exchanged: dict, channels: dict[str, int], width: int) -> np.ndarray:
    """One bar per exchange site: a cell per channel, orange = IR->EO, cyan = EO->IR, grey = kept."""
    rows = []
    for site in sorted(exchanged, key=lambda s: (int(s[5]), int(s.split(".")[1]))):
        c = channels[site]
        bar = np.full((14, c, 3), 70, np.uint8)
        bar[:, exchanged[site].get("ir->eo", np.array([], int))] = (255, 150, 0)
        bar[7:, :] = 70
        bar[7:, exchanged[site].get("eo->ir", np.array([], int))] = (0, 200, 255)
        bar = cv2.resize(bar, (width - 170, 14), interpolation=cv2.INTER_NEAREST)
        row = np.full((18, width, 3), BG, np.uint8)
        row[2:16, 165:165 + bar.shape[1]] = bar
        n1 = len(exchanged[site].get("ir->eo", []))
        n2 = len(exchanged[site].get("eo->ir", []))
        _text(row, f"{site} ({c}): {n1}/{n2}", (3, 13), 0.38)
        rows.append(row)
    head = np.full((20, width, 3), BG, np.uint8)
    _text(head, "exchanged channels per site (same on every frame), n IR->EO / n EO->IR; "
          "orange: EO takes IR's, cyan: IR takes EO's", (3, 14), 0.38)
    return np.concatenate([head, *rows], axis=0)


def site_channels(model) -> dict[str, int]:
    """Channels of every exchange site (the ExchangeBN's width)."""
    from csknet_studio.core.model.streams import ExchangeBN

    return {m.site: int(m.masks()[m.modalities[0]].numel()) for m in model.modules() if isinstance(m, ExchangeBN)}


def panel(pred: Predictor, model, scheme, seed: int, index: int) -> tuple[np.ndarray, dict]:
    frame, cond = render_demo_frame(seed, index, (480, 640), 120)
    p = pred.predict(frame.eo, frame.ir, Mode.BOTH, introspect=True)
    ir_grey = frame.ir.astype(np.float32)
    lo, hi = np.percentile(ir_grey, (1, 99))
    ir_rgb = np.repeat(np.clip((ir_grey - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)[..., None], 3, 2)
    col = scheme.colorize(p.labels)
    ov = np.where((p.labels > 0)[..., None], (0.4 * frame.eo + 0.6 * col), frame.eo).astype(np.uint8)
    p_ir = pred.predict(None, frame.ir, Mode.IR)
    ov_ir = np.where((p_ir.labels > 0)[..., None], (0.4 * ir_rgb + 0.6 * scheme.colorize(p_ir.labels)),
                     ir_rgb).astype(np.uint8)
    cells = [_cell(frame.eo, f"EO ({cond}, held-out frame {index})"), _cell(ir_rgb, "IR"),
             _cell(ov, "prediction, EO + IR"), _cell(ov_ir, "prediction, IR only")]
    for key in GATE_ORDER:
        if key in p.gate_maps:
            g = p.gate_maps[key]
            cells.append(_cell(_gate_rgb(g), f"GSU gate on {GATE_LABELS[key]} (mean {g.mean():.2f})"))
    # one exchanged channel, before and after, at the deepest site that exchanged anything
    sites = [s for s, d in p.exchanged.items() if len(d.get("ir->eo", []))]
    if sites:
        site = sorted(sites, key=lambda s: (int(s[5]), int(s.split(".")[1])))[-1]
        ch = int(p.exchanged[site]["ir->eo"][0])
        cm = channel_maps(model, frame.eo, frame.ir, site, "ir->eo", ch)
        cells.append(_cell(_norm_map(cm.before), f"{site} EO ch {ch}, before exchange"))
        cells.append(_cell(_norm_map(cm.after), f"{site} EO ch {ch}, after (IR's)"))
    while len(cells) % 4:
        cells.append(np.full((CELL[0] + 18, CELL[1], 3), BG, np.uint8))
    grid = np.concatenate([np.concatenate(cells[i:i + 4], axis=1) for i in range(0, len(cells), 4)], axis=0)
    return grid, p.exchanged


def gate_legend(width: int) -> np.ndarray:
    bar = np.full((22, width, 3), BG, np.uint8)
    ramp = _gate_rgb(np.tile(np.linspace(0, 1, 200, dtype=np.float32), (10, 1)))
    bar[6:16, 260:460] = ramp
    _text(bar, "GSU gate = share taken:", (3, 15), 0.38)
    _text(bar, "0 (none)", (196, 15), 0.33)
    _text(bar, "1 (all)", (466, 15), 0.33)
    return bar


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "resources" / "default_model.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "gates_exchange.png")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--frames", type=int, nargs="+", default=None,
                    help="frame indices (default: the first day and the first night frame)")
    args = ap.parse_args(argv)
    ck = load_checkpoint(args.checkpoint)
    pred = Predictor(ck.model, "cpu", ck.scheme, amp=False)
    if args.frames is None:
        from csknet_studio.core.demo import demo_conditions

        conds = demo_conditions(args.seed, 120)
        args.frames = [conds.index("day") + 5, conds.index("night") + 5]
    parts = [panel(pred, ck.model, ck.scheme, args.seed, i) for i in args.frames]
    width = parts[0][0].shape[1]
    # the exchanged set depends on the BN scales only (CEN's rule), not on the frame: shown once
    strip = exchange_strip(parts[0][1], site_channels(ck.model), width)
    img = np.concatenate([*(g for g, _ in parts), gate_legend(width), strip], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    args.out.write_bytes(buf.tobytes())
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]}, {len(buf) / 1e3:.0f} kB); frames {args.frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
