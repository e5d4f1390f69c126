"""Readers: bounded LRU cache, background prefetch, alignment/resampling, display levels."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from csknet_studio.core.data import Alignment, ArraySequence, FrameCache, apply_levels, open_sequence
from csknet_studio.core.errors import SequenceError
from csknet_studio.core.frames import FramePair


def make_folder(root: Path, n: int, h: int = 16, w: int = 24) -> Path:
    (root / "eo").mkdir(parents=True)
    (root / "ir").mkdir()
    for i in range(n):
        cv2.imwrite(str(root / "eo" / f"{i:05d}.png"), np.full((h, w, 3), i % 256, np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:05d}.png"), np.full((h, w), (i * 7) % 256, np.uint8))
    return root


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("csknet-prefetch")]


def test_lru_cache_is_bounded_by_count_and_bytes():
    fp = FramePair("x", np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8))  # 400 bytes
    c = FrameCache(max_bytes=1000, max_frames=10)
    for i in range(6):
        c.put(i, fp)
    assert len(c) == 2 and c.nbytes == 800 and 5 in c and 4 in c  # bytes bite first
    c = FrameCache(max_bytes=10**6, max_frames=3)
    for i in range(5):
        c.put(i, fp)
    c.get(2)  # touch: 2 becomes most recent
    c.put(9, fp)
    assert sorted(c.keys()) == [2, 4, 9]


def test_scrubbing_keeps_cache_and_memory_flat(tmp_path):
    root = make_folder(tmp_path, 120, 32, 48)
    per_frame = 32 * 48 * 4
    with open_sequence(root, cache_frames=10_000, cache_bytes=20 * per_frame, prefetch=2) as seq:
        assert len(seq.names) == 120
        tracemalloc.start()
        for i in range(40):
            seq[i]
        seq.wait_prefetch()
        _, peak_40 = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(40, 120):
            seq[i]
        seq.wait_prefetch()
        _, peak_120 = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(seq.cache) <= 20 and seq.cache.nbytes <= 20 * per_frame
        # three times the frames, about the same memory (cache budget, not sequence length)
        assert peak_120 < 1.5 * peak_40 + 64 * 1024


def test_prefetch_reads_ahead_in_scrub_direction_and_close_joins(tmp_path):
    root = make_folder(tmp_path, 30)
    seq = open_sequence(root, prefetch=3, workers=2)
    seq[10]
    seq.wait_prefetch()
    assert {11, 12, 13} <= set(seq.cache.keys())
    hits = seq.cache.hits
    assert seq[11].name == "00011" and seq.cache.hits == hits + 1  # served from cache, no decode
    seq[20]
    seq[19]  # moving backwards: read behind
    seq.wait_prefetch()
    assert {18, 17, 16} <= set(seq.cache.keys())
    assert prefetch_threads()
    seq.close()
    assert not any(t.is_alive() for t in prefetch_threads())
    assert seq.prefetch_pending() == 0 and len(seq.cache) == 0
    with pytest.raises(SequenceError, match="closed"):
        seq[0]
    seq.close()  # idempotent


def test_prefetch_cancels_stale_requests_on_jump(tmp_path):
    root = make_folder(tmp_path, 200)
    with open_sequence(root, prefetch=8, workers=1) as seq:
        for i in range(0, 200, 25):  # fast jumps: queued read-ahead for old positions is dropped
            seq[i]
        assert seq.prefetch_pending() <= 8 + 1  # the read-ahead window + the one already running
        seq.wait_prefetch()
        assert 199 in seq.cache or 176 in seq.cache


def test_frames_are_read_only_so_the_cache_cannot_be_corrupted(tmp_path):
    with open_sequence(make_folder(tmp_path, 3)) as seq:
        fp = seq[0]
        with pytest.raises(ValueError, match="read-only"):
            fp.eo[0, 0, 0] = 1
        label_copy = np.array(fp.ir)  # consumers copy before editing
        label_copy[0, 0] = 1


def test_ir_resampled_to_eo_grid_and_alignment_shifts_and_scales():
    h, w = 40, 60
    ir = np.zeros((h // 2, w // 2), np.float32)
    ir[10, 15] = 1000.0  # one hot pixel at the centre of the half-size IR
    eo = np.zeros((h, w, 3), np.uint8)
    seq = ArraySequence([eo], [ir])
    base = seq[0].ir
    assert base.shape == (h, w)
    cy, cx = np.unravel_index(np.argmax(base), base.shape)
    assert abs(cy - 20.5) <= 1 and abs(cx - 30.5) <= 1  # lands on the matching EO location
    seq.alignment = Alignment(dx=7, dy=-3)
    moved = seq[0].ir
    my, mx = np.unravel_index(np.argmax(moved), moved.shape)
    assert (my - cy, mx - cx) == (-3, 7)
    # scale about the centre: a pixel off-centre moves away from it by the factor
    ir2 = np.zeros((h, w), np.uint16)
    ir2[14, 24] = 500  # (y, x) offset (-5.5, -5.5) from the centre (19.5, 29.5)
    seq2 = ArraySequence([eo], [ir2], alignment=Alignment(scale=2.0))
    out = seq2[0].ir
    assert out.dtype == np.uint16
    sy, sx = np.unravel_index(np.argmax(out), out.shape)
    assert abs(sy - (19.5 - 11)) <= 1 and abs(sx - (29.5 - 11)) <= 1


def test_alignment_round_trip_and_validation():
    a = Alignment(dx=1.5, dy=-2.0, scale=1.1)
    assert Alignment.from_dict(a.to_dict()) == a and Alignment.from_dict(None).is_identity
    with pytest.raises(ValueError, match="scale"):
        Alignment(scale=0.0)
    with pytest.raises(ValueError, match="finite"):
        Alignment(dx=float("nan"))


def test_changing_alignment_invalidates_cached_frames(tmp_path):
    with open_sequence(make_folder(tmp_path, 4), prefetch=0) as seq:
        before = seq[1].ir
        seq.alignment = Alignment(dx=100)
        assert len(seq.cache) == 0
        after = seq[1].ir
        assert before.any() and not after.any()  # shifted entirely off the grid (zeros)


def test_display_levels_are_fixed_percentiles_per_sequence():
    rng = np.random.default_rng(0)
    ir = [rng.integers(1000 + 100 * i, 3000 + 100 * i, (20, 20)).astype(np.uint16) for i in range(50)]
    eo = [np.full((20, 20, 3), 128, np.uint8) for _ in range(50)]
    seq = ArraySequence(eo, ir)
    lv = seq.display_levels()
    lo, hi = lv["ir"]
    # spans the whole sequence (frame 0 tops out at 3000, frame 49 starts at 5900), outliers clipped
    assert 1000 < lo < 1500 and 7500 < hi < 7900
    assert lv["eo"] == (128.0, 129.0)  # flat EO widened instead of dividing by zero
    assert seq.display_levels() == lv  # fixed
    d_eo, d_ir = seq.display_pair(0)
    assert d_ir.dtype == np.uint8 and d_eo.dtype == np.uint8
    assert d_ir.min() == 0 and d_ir.max() < 255  # frame 0 is darker than the sequence's top


def test_apply_levels_maps_span_to_uint8():
    a16 = np.array([[1000, 2000, 3000, 65535]], np.uint16)
    np.testing.assert_array_equal(apply_levels(a16, (1000, 3000)), [[0, 128, 255, 255]])
    a8 = np.array([[0, 10, 20]], np.uint8)
    np.testing.assert_array_equal(apply_levels(a8, (10, 20)), [[0, 0, 255]])
    f = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_array_equal(apply_levels(f, (0.0, 1.0)), [[0, 128, 255]])


def test_background_reads_do_not_steer_the_read_ahead(tmp_path):
    with open_sequence(make_folder(tmp_path, 40), prefetch=3) as seq:
        seq[10]
        seq.wait_prefetch()
        for i in (30, 31, 32):
            assert not seq.read(i, prefetch=False).bad
        seq.wait_prefetch()
        assert 33 not in seq.cache and {11, 12, 13} <= set(seq.cache.keys())


def test_array_sequence_leaves_the_callers_arrays_writable():
    eo = [np.zeros((4, 4, 3), np.uint8)]
    ir = [np.zeros((4, 4), np.uint8)]
    lab = [np.zeros((4, 4), np.uint8)]
    seq = ArraySequence(eo, ir, labels=lab)
    assert not seq[0].eo.flags.writeable and not seq[0].label.flags.writeable
    eo[0][0, 0, 0] = 1  # the caller's own arrays stay theirs
    ir[0][0, 0] = 1
    lab[0][0, 0] = 1
