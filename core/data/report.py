"""What a sequence holds, as `csknet-studio info` reports it: layout, sizes, bit depths, labels,
bad frames, and for a recording its topics, pairs and clocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import BaseSequence
from .imaging import COLOUR_MAPPED_IR

BAD_REASONS_SHOWN = 10


def _bits(dtype: Any) -> int | None:
    return None if dtype is None else int(np.dtype(dtype).itemsize * 8)


def _shape(a: np.ndarray | None) -> list[int] | None:
    return None if a is None else [int(v) for v in a.shape]


def sequence_report(seq: BaseSequence, *, scan: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """A JSON-ready summary of `seq`. scan: decode every frame, so `bad_frames` lists every frame
    that cannot be read and the value ranges cover the whole sequence (else only frame 0 and the
    frames met so far)."""
    n = len(seq)
    first = seq.read(0, prefetch=False)
    ranges: dict[str, list[float]] = {}

    def widen(key: str, lo: float, hi: float) -> None:
        r = ranges.setdefault(key, [lo, hi])
        r[0], r[1] = min(r[0], lo), max(r[1], hi)

    def account(fp: Any) -> None:
        for key in ("eo", "ir"):
            a = getattr(fp, key)
            if fp.bad or a is None or a.size == 0:
                continue
            lo, hi = float(a.min()), float(a.max())
            widen(key, lo, hi)
            if key == "ir" and fp.radiometry is not None:  # extremes of the counts are those of °C
                c = fp.radiometry.celsius(np.array([lo, hi]))
                if np.isfinite(c).all():
                    widen("ir_celsius", round(float(c.min()), 3), round(float(c.max()), 3))

    account(first)
    if scan:
        for i in range(1, n):
            account(seq.read(i, prefetch=False))
            if progress is not None:
                progress(i + 1, n)
    eo_native = ir_native = None
    raw_pair = getattr(seq, "raw_pair", None)
    if callable(raw_pair) and not first.bad:
        try:
            eo_raw, ir_raw = raw_pair(0)
            eo_native, ir_native = _shape(eo_raw), _shape(ir_raw)
        except Exception:  # noqa: BLE001 - the native sizes are a detail; the report stands without them
            pass
    bad = sorted(seq.bad_frames)
    report: dict[str, Any] = {
        "layout": seq.layout,
        "source": str(seq.source),
        "frames": n,
        "first_frame": seq.names[0],
        "last_frame": seq.names[-1],
        "eo_shape": _shape(first.eo),
        "ir_shape": _shape(first.ir),
        "eo_native_shape": eo_native,
        "ir_native_shape": ir_native,
        "eo_dtype": None if first.eo is None else str(first.eo.dtype),
        "ir_dtype": None if first.ir is None else str(first.ir.dtype),
        "eo_bit_depth": _bits(None if first.eo is None else first.eo.dtype),
        "ir_bit_depth": _bits(None if first.ir is None else first.ir.dtype),
        # The bits the values use: 14-bit thermal in 16-bit words says 14.
        "ir_bits_used": (int(ranges["ir"][1]).bit_length() if "ir" in ranges and first.ir is not None
                         and first.ir.dtype.kind in "ui" else None),
        "value_range": {k: v for k, v in ranges.items() if k != "ir_celsius"},
        # IR counts that read as °C: the conversion (a linear scale or FLIR's Planck model) and the
        # temperatures met.
        "radiometric": first.radiometry is not None,
        "ir_to_celsius": None if first.radiometry is None else first.radiometry.to_dict(),
        "ir_celsius_range": ranges.get("ir_celsius"),
        "scanned": bool(scan),
        "labels": bool(seq.has_labels),
        "scheme": None if seq.scheme is None else seq.scheme.name,
        "label_file": None if seq.label_file is None else str(seq.label_file),
        "label_errors": len(seq.label_errors),
        "split": seq.split,
        "bad_frames": bad,
        "bad_reasons": {str(i): seq.bad_reasons.get(i, "") for i in bad[:BAD_REASONS_SHOWN]},
    }
    summary = getattr(seq, "summary", None)
    if callable(summary):
        report.update(summary())
    return report


def report_lines(r: dict[str, Any]) -> list[str]:
    """The report as a person reads it."""
    def shape(s: list[int] | None) -> str:
        return "none" if not s else "x".join(map(str, s[:2][::-1])) + (f"x{s[2]}" if len(s) > 2 else "")

    out = [f"{r['source']}: {r['layout']}, {r['frames']} frames ({r['first_frame']} .. {r['last_frame']})"]
    for key in ("eo", "ir"):
        native = r.get(f"{key}_native_shape")
        nat = f" (recorded {shape(native)})" if native and native[:2] != (r[f"{key}_shape"] or [])[:2] else ""
        rng = r["value_range"].get(key)
        vals = f", values {rng[0]:g}..{rng[1]:g}" if rng else ""
        out.append(f"  {key.upper()}: {shape(r[f'{key}_shape'])}{nat} {r[f'{key}_dtype']} "
                   f"({r[f'{key}_bit_depth']}-bit){vals}")
    if r.get("ir_bits_used"):
        out[-1] += f", {r['ir_bits_used']} bits used"
    out.append("  radiometric: " + _radiometric_line(r))
    if r.get("ir_colour_mapped"):
        out.append(f"  warning: {COLOUR_MAPPED_IR}")
    labels = "none"
    if r["labels"]:
        labels = f"yes ({r['scheme'] or 'no scheme'})" + (f" from {r['label_file']}" if r["label_file"] else "")
    out.append(f"  labels: {labels}" + (f", {r['label_errors']} unreadable" if r["label_errors"] else ""))
    if r["split"]:
        out.append(f"  split: {r['split']}")
    bad = r["bad_frames"]
    scope = "" if r["scanned"] else " (among the frames read; run without --no-scan to check all)"
    out.append(f"  bad frames: {len(bad)}{scope}" + (f": {', '.join(map(str, bad[:20]))}" if bad else ""))
    for i, why in r["bad_reasons"].items():
        out.append(f"    {i}: {why}")
    if "topics" in r:
        out.append("  image topics:")
        for t in r["topics"]:
            mark = " [EO]" if t["name"] == r["eo_topic"] else " [IR]" if t["name"] == r["ir_topic"] else ""
            size = f" {t['shape'][1]}x{t['shape'][0]}" if t["shape"] else ""
            out.append(f"    {t['name']}{mark}: {t['type'].rsplit('/', 1)[-1]} {t['encoding']}{size}, "
                       f"{t['count']} messages")
        rate = r["rate_hz"]
        out.append(f"  pairs: {r['pairs']} (EO {r['messages']['eo']} messages at {rate['eo']} Hz, IR "
                   f"{r['messages']['ir']} at {rate['ir']} Hz; tolerance {r['tolerance_ns'] / 1e6:.1f} ms, "
                   f"{r['stamps']} stamps)")
        out.append(f"  unpaired: EO {r['unpaired']['eo']}, IR {r['unpaired']['ir']}; dropped: EO "
                   f"{r['dropped']['eo']}, IR {r['dropped']['ir']}")
        off = r["clock_offset_ns"]
        out.append("  clock offset (EO - IR, median over the pairs): "
                   + ("n/a" if off is None else f"{off / 1e6:+.3f} ms"))
    return out


def _radiometric_line(r: dict[str, Any]) -> str:
    conv = r.get("ir_to_celsius")
    if not r.get("radiometric") or not conv:
        return "no (IR values are not temperatures; --ir-scale GAIN,OFFSET or a unit such as centikelvin says " \
               "how they read as °C)"
    if conv["kind"] == "linear":
        sign = "-" if conv["offset"] < 0 else "+"
        how = f"°C = v × {conv['gain']:g} {sign} {abs(conv['offset']):g}"
    else:
        how = f"FLIR Planck (R1 {conv['r1']:g}, B {conv['b']:g}, emissivity {conv['emissivity']:g})"
    rng = r.get("ir_celsius_range")
    temps = f", {rng[0]:.2f}..{rng[1]:.2f} °C" if rng else ""
    return f"yes, {how} ({conv['source']}){temps}"
