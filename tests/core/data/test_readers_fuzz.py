"""Fuzzing the readers: whatever bytes, shapes or dtypes come in, only CSKNetError subclasses come out,
and a sequence that opens yields well-formed FramePairs for every frame."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csknet_studio.core.data import ArraySequence, open_sequence
from csknet_studio.core.data.imaging import decode_bytes
from csknet_studio.core.errors import CorruptImageError, CSKNetError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VALID = {ext: cv2.imencode(ext, np.random.default_rng(1).integers(0, 255, (12, 16, 3), dtype=np.uint8))[1].tobytes()
          for ext in (".png", ".jpg", ".tif", ".bmp")}
_VALID[".png16"] = cv2.imencode(".png", np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300)[1].tobytes()


@st.composite
def damaged_image(draw) -> bytes:
    """A valid encoded image, truncated, bit-flipped or spliced with random bytes; or pure noise."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "noise"]))
    data = bytearray(_VALID[draw(st.sampled_from(sorted(_VALID)))])
    if kind == "noise":
        return draw(st.binary(min_size=0, max_size=300))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    i = draw(st.integers(0, len(data)))
    return bytes(data[:i]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[i:])


def _check_frame(fp, shape=None) -> None:
    assert fp.eo is not None and fp.ir is not None
    assert fp.eo.ndim == 3 and fp.eo.shape[2] == 3 and fp.ir.shape == fp.eo.shape[:2]
    assert fp.eo.dtype in (np.uint8, np.uint16) and fp.ir.dtype in (np.uint8, np.uint16, np.float32)
    if fp.bad:
        assert fp.error and not fp.eo.any()
    if shape is not None:
        assert fp.eo.shape[:2] == shape


@FUZZ
@given(damaged_image())
def test_decode_bytes_raises_only_corrupt_image_error(data):
    try:
        img = decode_bytes(data, "fuzz.img")
    except CorruptImageError as exc:
        assert "fuzz.img" in str(exc)
    else:
        assert img.ndim in (2, 3) and img.size > 0


@FUZZ
@given(data=damaged_image(), which=st.sampled_from(["eo", "ir"]), frame=st.integers(0, 2),
       ext=st.sampled_from([".png", ".jpg", ".tif", ".bmp"]))
def test_damaged_file_in_a_folder_sequence(data, which, frame, ext):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("eo", "ir"):
            (root / d).mkdir()
        for i in range(3):
            cv2.imwrite(str(root / "eo" / f"{i}.png"), np.full((12, 16, 3), 40 * i, np.uint8))
            cv2.imwrite(str(root / "ir" / f"{i}.png"), np.full((12, 16), 50 * i, np.uint8))
        (root / which / f"{frame}.png").unlink()
        (root / which / f"{frame}{ext}").write_bytes(data)
        try:
            seq = open_sequence(root, prefetch=2)
        except CSKNetError:
            return
        with seq:
            for i in range(len(seq)):
                _check_frame(seq[i])
            seq.display_levels()
            assert seq.bad_frames <= {frame}


_DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, np.bool_]


@st.composite
def odd_array(draw, max_t: int = 3) -> np.ndarray:
    ndim = draw(st.integers(0, 5))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    if ndim >= 1 and shape[0] > max_t:
        shape = (max_t, *shape[1:])
    dtype = draw(st.sampled_from(_DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.normal(0, 1000, size=shape)
    if draw(st.booleans()) and a.size:
        a.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30]))
    with np.errstate(invalid="ignore", over="ignore"):
        return a.astype(dtype)


@FUZZ
@given(eo=st.one_of(st.none(), odd_array()), ir=st.one_of(st.none(), odd_array()),
       labels=st.one_of(st.none(), odd_array()))
def test_hdf5_with_odd_shapes_and_dtypes(eo, ir, labels):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "fuzz.h5"
        with h5py.File(p, "w") as f:
            for key, a in (("eo", eo), ("ir", ir), ("labels", labels)):
                if a is not None:
                    f.create_dataset(key, data=a)
        try:
            seq = open_sequence(p, prefetch=1)
        except CSKNetError:
            return
        with seq:
            for i in range(len(seq)):
                fp = seq[i]
                ref = fp.eo if fp.eo is not None else fp.ir
                assert ref is not None and ref.ndim >= 2
                if fp.eo is not None and fp.ir is not None:
                    assert fp.ir.shape == fp.eo.shape[:2]
                if fp.label is not None:
                    assert fp.label.dtype == np.uint8 and fp.label.shape == ref.shape[:2]
            lv = seq.display_levels()
            assert all(np.isfinite(v) for pair in lv.values() for v in pair)


@FUZZ
@given(eo=odd_array(max_t=2), ir=odd_array(max_t=2))
def test_array_sequence_with_odd_inputs(eo, ir):
    try:
        seq = ArraySequence(eo if eo.ndim else [eo], ir if ir.ndim else [ir])
    except CSKNetError:
        return
    for i in range(len(seq)):
        fp = seq[i]
        if not fp.bad:
            assert fp.eo.shape[2] == 3 and fp.ir.shape == fp.eo.shape[:2]
