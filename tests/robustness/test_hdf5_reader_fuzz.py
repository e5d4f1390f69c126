"""Damaged HDF5 files give one documented error, quickly.

Seeded fuzzing of the HDF5 reader (open, every frame, the label stack): truncated files, flipped
bits, overwritten bytes, and well-formed files whose content is wrong (dtypes, shapes, declared
sizes of billions of entries, strings that are not UTF-8). Only CSKNetError subclasses may come out,
naming the file, and each case must finish within a bound (a hang is reported, not waited for).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from csknet_studio.core.data import open_sequence
from csknet_studio.core.data.hdf5 import HDF5Sequence, LabelStack
from csknet_studio.core.errors import CSKNetError

T, H, W = 3, 12, 16
WALL_S = 90.0  # a hang, on a loaded machine
CPU_S = 8.0  # CPU seconds one case may use (HDF5 itself takes ~2 s on the worst damaged heaps)
TEXT = h5py.string_dtype("utf-8")


def _valid(path: Path, **edits) -> Path:
    """A small EO/IR/labels file in our export's layout; `edits` replace datasets or attributes."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w", libver=("v110", "v110")) as f:  # dense attribute storage: large ones too
        f.create_dataset("eo", data=rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8), chunks=(1, H, W, 3),
                         compression="gzip")
        f.create_dataset("ir", data=rng.integers(0, 65535, (T, H, W), dtype=np.uint16), chunks=(1, H, W))
        lab = f.create_dataset("labels", data=rng.integers(0, 9, (T, H, W), dtype=np.uint8), chunks=(1, H, W))
        lab.attrs["axes"] = "tyx"
        f.create_dataset("frame_names", data=["a", "b", "c"], dtype=TEXT)
        f.attrs["class_names"] = np.array([f"class{i}" for i in range(9)], dtype=TEXT)
        f.attrs["palette"] = rng.integers(0, 255, (9, 3), dtype=np.uint8)
        f.attrs["scheme"] = "custom"
        f.attrs["ignore_index"] = 255
        f.attrs["source"] = "../seq"
        for key, edit in edits.items():
            edit(f, key)
    return path


def _attr(value):
    def edit(f, key):
        f.attrs[key] = value
    return edit


def _raw_attr(dtype, value):
    """An attribute written byte for byte, e.g. a UTF-8 typed string holding invalid UTF-8."""
    def edit(f, key):
        if key in f.attrs:
            del f.attrs[key]
        f.attrs.create(key, value, dtype=dtype)
    return edit


def _dataset(shape, dtype, data=None, chunks=True):
    def edit(f, key):
        if key in f:
            del f[key]
        if data is not None:
            f.create_dataset(key, data=data, dtype=dtype)
        else:  # declared, never written: a header may claim any size
            f.create_dataset(key, shape, dtype, chunks=chunks)
    return edit


def _huge_attr(key_shape):
    """An attribute of `key_shape` zero bytes (megabytes: a header that declares far more than a
    class table holds)."""
    def edit(f, key):
        if key in f.attrs:
            del f.attrs[key]
        f.attrs.create(key, np.zeros(key_shape, np.uint8))
    return edit


NOT_UTF8 = b"\xff\xfe caf\xe9"
CONTENT_CASES = {
    "class_names_ints": {"class_names": _attr(np.arange(9))},
    "class_names_2d": {"class_names": _attr(np.array([["a", "b"], ["c", "d"]], dtype=TEXT))},
    "class_names_not_utf8": {"class_names": _raw_attr(h5py.string_dtype("utf-8"), [NOT_UTF8] * 9)},
    "class_names_huge": {"class_names": _huge_attr((1 << 22,))},
    "class_names_million": {"class_names": _attr(np.array(["x"] * 1_000_000, dtype=TEXT))},
    "palette_text": {"palette": _attr(np.array(["red", "green", "blue"], dtype=TEXT))},
    "palette_float_nan": {"palette": _attr(np.full((9, 3), np.nan))},
    "palette_bad_shape": {"palette": _attr(np.arange(7))},
    "palette_huge": {"palette": _huge_attr((1 << 21, 3))},
    "palette_negative_huge": {"palette": _attr(np.full((9, 3), -1e300))},
    "ignore_index_text": {"ignore_index": _attr("two hundred")},
    "ignore_index_array": {"ignore_index": _attr(np.arange(5))},
    "ignore_index_huge": {"ignore_index": _attr(2**62)},
    "scheme_not_utf8": {"scheme": _raw_attr(h5py.string_dtype("utf-8"), NOT_UTF8)},
    "scheme_array": {"scheme": _attr(np.arange(1000))},
    "source_not_utf8": {"eo": lambda f, k: f.__delitem__(k), "ir": lambda f, k: f.__delitem__(k),
                        "source": _raw_attr(h5py.string_dtype("utf-8"), NOT_UTF8)},
    "frame_names_not_utf8": {"frame_names": _dataset(None, h5py.string_dtype("utf-8"), data=[NOT_UTF8] * 3)},
    "frame_names_ints": {"frame_names": _dataset(None, np.int64, data=np.arange(3))},
    "frame_names_compound": {"frame_names": _dataset(None, np.dtype([("a", "i4"), ("b", "f4")]),
                                                     data=np.zeros(3, [("a", "i4"), ("b", "f4")]))},
    "eo_text": {"eo": _dataset(None, TEXT, data=np.array(["x"] * 6, dtype=object).reshape(1, 2, 3))},
    "eo_compound": {"eo": _dataset((T, H, W, 3), np.dtype([("a", "u1"), ("b", "f4")]))},
    "eo_huge_count": {"eo": _dataset((1 << 40, H, W, 3), np.uint8, chunks=(1, H, W, 3))},
    "ir_huge_frames": {"ir": _dataset((T, 1 << 20, 1 << 20), np.uint16, chunks=(1, 16, 16))},
    "labels_float": {"labels": _dataset((T, H, W), np.float32)},
    "labels_huge_count": {"labels": _dataset((1 << 40, H, W), np.uint8, chunks=(1, H, W))},
    "labels_ids_out_of_range": {"labels": _dataset(None, np.uint8, data=np.full((T, H, W), 200, np.uint8))},
    "eo_wrong_count": {"eo": _dataset(None, np.uint8, data=np.zeros((T + 1, H, W, 3), np.uint8))},
}


def _mutate(data: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    kind = seed % 3
    if kind == 0:  # truncate
        return bytes(b[: int(rng.integers(0, len(b)))])
    if kind == 1:  # flip bits
        for _ in range(int(rng.integers(1, 24))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    i = int(rng.integers(0, len(b) - 8))  # overwrite 8 bytes (a size or an address)
    b[i : i + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    return bytes(b)


def _open_everything(path: Path) -> None:
    """What the app does with a file: open it as a sequence, read each frame, read its labels."""
    try:
        seq = open_sequence(path, prefetch=0)
    except CSKNetError as exc:
        assert str(path) in str(exc), exc
    else:
        try:
            assert isinstance(seq, HDF5Sequence)
            for i in range(min(len(seq), 4)):
                fp = seq[i]
                assert fp.bad or (fp.eo is not None or fp.ir is not None)
        finally:
            seq.close()
    try:
        stack = LabelStack(path)
    except CSKNetError as exc:
        assert str(path) in str(exc), exc
    else:
        try:
            for i in range(min(len(stack), 4)):
                try:
                    stack.read(i)
                except CSKNetError as exc:
                    assert str(path) in str(exc), exc
        finally:
            stack.close()


def _within_bounds(path: Path) -> None:
    """Run `_open_everything` on a thread; fail on a hang, on too much CPU, or on any other error."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            _open_everything(path)
        except BaseException as exc:  # reported below with the file's name
            outcome["error"] = exc

    cpu0 = time.process_time()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(WALL_S)
    assert not t.is_alive(), f"{path.name}: still running after {WALL_S:.0f} s"
    cpu = time.process_time() - cpu0
    if "error" in outcome:
        exc = outcome["error"]
        raise AssertionError(f"{path.name}: {type(exc).__name__} escaped: {exc}") from exc
    assert cpu < CPU_S, f"{path.name}: {cpu:.1f} CPU seconds"


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_wrong_content_gives_a_documented_error_or_a_sequence(tmp_path, case):
    path = _valid(tmp_path / f"{case}.h5", **CONTENT_CASES[case])
    _within_bounds(path)


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory) -> bytes:
    return _valid(tmp_path_factory.mktemp("fuzz") / "valid.h5").read_bytes()


@pytest.mark.parametrize("block", range(6))
def test_damaged_bytes_give_a_documented_error_quickly(tmp_path, valid_bytes, block):
    """40 damaged copies per block (truncated, bit-flipped, overwritten), seeded: reproducible."""
    for seed in range(block * 40, block * 40 + 40):
        path = tmp_path / f"damaged_{seed}.h5"
        path.write_bytes(_mutate(valid_bytes, seed))
        _within_bounds(path)
        path.unlink()


def test_the_valid_file_opens(tmp_path):
    """The fuzzed file itself is good: frames, names and scheme come out."""
    seq = open_sequence(_valid(tmp_path / "ok.h5"), prefetch=0)
    try:
        assert len(seq) == T and seq.names == ["a", "b", "c"] and seq.scheme.num_classes == 9
        assert seq[1].eo.shape == (H, W, 3)
    finally:
        seq.close()
