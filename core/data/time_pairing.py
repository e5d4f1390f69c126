"""Pairing two cameras' frames by nearest timestamp: each camera runs at its own rate on its own
clock, so a pair is the closest two frames within a tolerance, one to one, in time order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Frames of one camera further apart than this many periods count the missing ones as dropped.
GAP_PERIODS = 1.5


@dataclass(frozen=True)
class Pairing:
    """How two cameras' frames pair up. eo/ir: indices into each camera's time-sorted frames."""

    eo: np.ndarray
    ir: np.ndarray
    tolerance_ns: int
    clock_offset_ns: int | None  # median of EO - IR stamp over the pairs
    unpaired_eo: int
    unpaired_ir: int
    dropped_eo: int
    dropped_ir: int
    period_eo_ns: int | None
    period_ir_ns: int | None

    def __len__(self) -> int:
        return len(self.eo)


def median_period(t: np.ndarray) -> int | None:
    d = np.diff(np.asarray(t, dtype=np.int64))
    d = d[d > 0]
    return int(np.median(d)) if d.size else None


def count_dropped(t: np.ndarray, period: int | None) -> int:
    """Frames missing from a camera's stream: each gap longer than 1.5 periods, in periods, less one."""
    if period is None or period <= 0 or len(t) < 2:
        return 0
    d = np.diff(np.asarray(t, dtype=np.int64))
    gaps = d[d > GAP_PERIODS * period]
    return int(np.sum(np.rint(gaps / period).astype(np.int64) - 1))


def pair_timestamps(eo_ns: np.ndarray, ir_ns: np.ndarray, tolerance_ns: int | None = None) -> Pairing:
    """Pair each frame of the slower camera with the nearest frame of the faster one, one to one.

    Both inputs sorted ascending. A pair is kept when its stamps lie within `tolerance_ns` (default
    half the slower camera's period, so one faster frame is never the nearest of two slower ones);
    ties go to the closest pair first. The result is in time order.
    """
    eo_ns = np.asarray(eo_ns, dtype=np.int64)
    ir_ns = np.asarray(ir_ns, dtype=np.int64)
    p_eo, p_ir = median_period(eo_ns), median_period(ir_ns)
    if tolerance_ns is None:
        slow = max((p for p in (p_eo, p_ir) if p), default=None)
        tolerance_ns = slow // 2 if slow else 50_000_000
    tolerance_ns = int(tolerance_ns)
    # The camera with fewer frames picks; the other is searched.
    swap = len(ir_ns) > len(eo_ns)
    slow_t, fast_t = (eo_ns, ir_ns) if swap else (ir_ns, eo_ns)
    cand_slow: list[int] = []
    cand_fast: list[int] = []
    cand_d: list[int] = []
    if len(fast_t) and len(slow_t):
        pos = np.searchsorted(fast_t, slow_t)
        for j, (t, k) in enumerate(zip(slow_t.tolist(), pos.tolist(), strict=True)):
            for kk in (k - 1, k):
                if 0 <= kk < len(fast_t):
                    d = abs(int(fast_t[kk]) - t)
                    if d <= tolerance_ns:
                        cand_slow.append(j)
                        cand_fast.append(kk)
                        cand_d.append(d)
    order = np.argsort(np.asarray(cand_d, dtype=np.int64), kind="stable")
    used_slow: set[int] = set()
    used_fast: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for o in order.tolist():
        j, k = cand_slow[o], cand_fast[o]
        if j in used_slow or k in used_fast:
            continue
        used_slow.add(j)
        used_fast.add(k)
        pairs.append((j, k))
    pairs.sort()
    js = np.array([p[0] for p in pairs], dtype=np.int64)
    ks = np.array([p[1] for p in pairs], dtype=np.int64)
    eo_idx, ir_idx = (js, ks) if swap else (ks, js)
    offset = int(np.median(eo_ns[eo_idx] - ir_ns[ir_idx])) if len(pairs) else None
    return Pairing(eo=eo_idx, ir=ir_idx, tolerance_ns=tolerance_ns, clock_offset_ns=offset,
                   unpaired_eo=len(eo_ns) - len(pairs), unpaired_ir=len(ir_ns) - len(pairs),
                   dropped_eo=count_dropped(eo_ns, p_eo), dropped_ir=count_dropped(ir_ns, p_ir),
                   period_eo_ns=p_eo, period_ir_ns=p_ir)
