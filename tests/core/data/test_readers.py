"""Readers: every layout on the real samples (rgbt_real) and on small generated files."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from csknet_studio.core.classes import FMB, MFNET, PST900
from csknet_studio.core.data import ArraySequence, open_pair, open_sequence
from csknet_studio.core.errors import (
    CorruptImageError,
    CSKNetError,
    EmptySequenceError,
    FrameCountMismatchError,
    SequenceError,
    UnknownLayoutError,
    UnmatchedFilesError,
)


def imread_raw(p: Path) -> np.ndarray:
    return cv2.imread(str(p), cv2.IMREAD_UNCHANGED)


def write(p: Path, a: np.ndarray, rgb: bool = True) -> Path:
    """Write an RGB (or grey) array as an image file (cv2 wants BGR)."""
    p.parent.mkdir(parents=True, exist_ok=True)
    out = a[:, :, ::-1] if (rgb and a.ndim == 3 and a.shape[2] == 3) else a
    assert cv2.imwrite(str(p), np.ascontiguousarray(out)), p
    return p


def rgb(seed: int, h: int = 24, w: int = 32, dtype=np.uint8) -> np.ndarray:
    hi = 255 if dtype == np.uint8 else 65535
    return np.random.default_rng(seed).integers(0, hi + 1, (h, w, 3), dtype=np.int64).astype(dtype)


def grey(seed: int, h: int = 24, w: int = 32, dtype=np.uint8, lo: int = 0, hi: int = 255) -> np.ndarray:
    return np.random.default_rng(seed + 1000).integers(lo, hi + 1, (h, w), dtype=np.int64).astype(dtype)


# ------------------------------------------------------------------------------------ real samples
REAL_PAIRED = {
    "llvip": ("Test_LLVIP_vi", "Test_LLVIP_ir", 12),
    "msrs_piafusion": ("vi", "ir", 3),
    "roadscene": ("crop_LR_visible", "cropinfrared", 12),
    "tno_piafusion": ("vi", "ir", 2),
    "tardal_samples": ("vi", "ir", 2),
}


@pytest.mark.parametrize("folder", sorted(REAL_PAIRED))
def test_real_paired_folders_decode_like_cv2(rgbt_real, folder):
    eo_dir, ir_dir, n = REAL_PAIRED[folder]
    with open_sequence(rgbt_real / folder, prefetch=0) as seq:
        assert seq.layout == "folders" and len(seq) == n and seq.scheme is None and not seq.has_labels
        assert seq.names == sorted(seq.names, key=lambda s: s)  # natural order == lexical here
        i = len(seq) - 1  # the last frame: also exercises a different size than frame 0 (TNO, RoadScene)
        fp = seq[i]
        assert not fp.bad and fp.label is None
        eo_file = next((rgbt_real / folder / eo_dir).glob(seq.names[i] + ".*"))
        ir_file = next((rgbt_real / folder / ir_dir).glob(seq.names[i] + ".*"))
        raw_eo, raw_ir = imread_raw(eo_file), imread_raw(ir_file)
        exp_eo = np.repeat(raw_eo[:, :, None], 3, 2) if raw_eo.ndim == 2 else raw_eo[:, :, ::-1]
        exp_ir = raw_ir if raw_ir.ndim == 2 else raw_ir[:, :, 0]  # grey stored in 3 channels (LLVIP, TNO)
        np.testing.assert_array_equal(fp.eo, exp_eo)
        np.testing.assert_array_equal(fp.ir, exp_ir)
        assert fp.eo.dtype == np.uint8 and fp.eo.shape == (*fp.ir.shape, 3)
        lv = seq.display_levels()
        assert 0 <= lv["ir"][0] < lv["ir"][1] <= 255


def test_real_mfnet_four_channel_png(rgbt_real):
    root = rgbt_real / "mfnet_pytorch_samples"
    raw = imread_raw(root / "image" / "01477D.png")  # B, G, R, T
    for path in (root, root / "image", root / "image" / "01477D.png"):
        with open_sequence(path) as seq:
            assert seq.layout == "mfnet" and seq.scheme is MFNET and seq.names == ["01477D"]
            fp = seq[0]
            np.testing.assert_array_equal(fp.eo, raw[:, :, 2::-1])
            np.testing.assert_array_equal(fp.ir, raw[:, :, 3])  # thermal lives in the alpha slot
            assert fp.ir.min() == 4 and fp.ir.max() == 245  # README facts


def test_real_pst900_example_with_colour_label(rgbt_real):
    d = rgbt_real / "pst900_readme_example"
    with pytest.raises(UnknownLayoutError, match="open_pair|no EO/IR sub-folders"):
        open_sequence(d)
    seq = open_pair(d / "utils_rgb_loader.png", d / "utils_thermal_loader.png", d / "utils_label_vis.png",
                    scheme=PST900)
    fp = seq[0]
    assert fp.eo.shape == (720, 1280, 3) and fp.ir.shape == (720, 1280) and seq.has_labels
    ids, counts = np.unique(fp.label, return_counts=True)
    # README: black 896434 px, red (1 fire extinguisher) 5172, green (2 backpack) 14806, blue (3 drill) 5188
    assert dict(zip(ids.tolist(), counts.tolist(), strict=True)) == {0: 896434, 1: 5172, 2: 14806, 3: 5188}
    with pytest.raises(CorruptImageError, match="utils_label_vis.png.*class scheme"):
        open_pair(d / "utils_rgb_loader.png", d / "utils_thermal_loader.png", d / "utils_label_vis.png")


def test_real_sample_root_is_not_a_layout(rgbt_real):
    with pytest.raises(UnknownLayoutError, match="Looked for: MFNet") as ei:
        open_sequence(rgbt_real)
    assert "llvip/" in str(ei.value)
    with pytest.raises(UnknownLayoutError, match="looks like one modality"):
        open_sequence(rgbt_real / "llvip" / "Test_LLVIP_vi")


# ------------------------------------------------------------------------------------ generated
def make_mfnet(root: Path, n: int = 6) -> dict[str, np.ndarray]:
    frames = {}
    for i in range(n):
        name = f"{i:05d}{'D' if i % 2 else 'N'}"
        bgrt = np.dstack([rgb(i)[:, :, ::-1], grey(i)])
        write(root / "images" / f"{name}.png", bgrt, rgb=False)
        lab = (np.arange(24 * 32).reshape(24, 32) + i) % 9
        write(root / "labels" / f"{name}.png", lab.astype(np.uint8))
        frames[name] = bgrt
    names = list(frames)
    (root / "train.txt").write_text("\n".join(names[:4]) + "\n")
    (root / "test.txt").write_text("\n".join(names[4:]) + "\n\n")
    return frames


def test_mfnet_layout_with_labels_and_splits(tmp_path):
    frames = make_mfnet(tmp_path)
    with open_sequence(tmp_path) as seq:
        assert seq.layout == "mfnet" and len(seq) == 6 and seq.has_labels and seq.scheme is MFNET
    with open_sequence(tmp_path, split="test") as seq:
        assert seq.names == list(frames)[4:] and seq.split == "test"
        fp = seq[1]
        raw = frames[seq.names[1]]
        np.testing.assert_array_equal(fp.eo, raw[:, :, 2::-1])
        np.testing.assert_array_equal(fp.ir, raw[:, :, 3])
        assert fp.label.dtype == np.uint8 and fp.label.max() == 8
    with pytest.raises(SequenceError, match=r"no split list val\.txt; available splits: test, train"):
        open_sequence(tmp_path, split="val")
    (tmp_path / "val.txt").write_text("00001D\nmissing_one\n")
    with pytest.raises(UnmatchedFilesError, match="missing_one") as ei:
        open_sequence(tmp_path, split="val")
    assert ei.value.eo_only == ["missing_one"]


def test_mfnet_three_channel_images_are_not_mfnet(tmp_path):
    write(tmp_path / "images" / "a.png", rgb(0))
    with pytest.raises(UnknownLayoutError):
        open_sequence(tmp_path)


def test_cmx_style_mfnet(tmp_path):
    for i in range(3):
        write(tmp_path / "RGB" / f"{i}.png", rgb(i))
        write(tmp_path / "Modal" / f"{i}.png", grey(i))
        write(tmp_path / "Label" / f"{i}.png", np.full((24, 32), i, np.uint8))
    (tmp_path / "test.txt").write_text("2\n0\n")
    with open_sequence(tmp_path, split="test") as seq:
        assert seq.layout == "mfnet-cmx" and seq.scheme is MFNET and seq.names == ["2", "0"]
        np.testing.assert_array_equal(seq[0].eo, rgb(2))
        assert int(seq[0].label[0, 0]) == 2


def test_pst900_splits_and_raw_16bit_thermal(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        d = tmp_path / split
        for i in range(n):
            write(d / "rgb" / f"{i}.png", rgb(i, 36, 64))
            write(d / "thermal" / f"{i}.png", grey(i, 36, 64))
            write(d / "thermal_raw" / f"{i}.png", grey(i, 36, 64, np.uint16, 20000, 30000))
            write(d / "labels" / f"{i}.png", np.full((36, 64), i % 5, np.uint8))
    with open_sequence(tmp_path) as seq:  # default split: test
        assert seq.layout == "pst900" and seq.split == "test" and len(seq) == 2 and seq.scheme is PST900
        assert seq[0].ir.dtype == np.uint8
    with open_sequence(tmp_path, split="train", raw_thermal=True) as seq:
        assert len(seq) == 3
        fp = seq[2]
        assert fp.ir.dtype == np.uint16  # radiometric values kept raw
        np.testing.assert_array_equal(fp.ir, grey(2, 36, 64, np.uint16, 20000, 30000))
        lo, hi = seq.display_levels()["ir"]
        assert 20000 <= lo < 20500 and 29500 < hi <= 30000
    with pytest.raises(UnknownLayoutError, match="no split folder 'val'"):
        open_sequence(tmp_path, split="val")


def test_fmb_infrared_three_channel_grey(tmp_path):
    for i in range(2):
        write(tmp_path / "Visible" / f"{i:04d}.png", rgb(i))
        g = grey(i)
        write(tmp_path / "Infrared" / f"{i:04d}.png", np.dstack([g, g, g]))
        write(tmp_path / "Label" / f"{i:04d}.png", np.full((24, 32), 14, np.uint8))
    with open_sequence(tmp_path) as seq:
        assert seq.layout == "fmb" and seq.scheme is FMB and seq.has_labels
        assert seq[1].ir.ndim == 2
        np.testing.assert_array_equal(seq[1].ir, grey(1))


@pytest.mark.parametrize(("eo_name", "ir_name"), [("eo", "ir"), ("visible", "infrared"), ("rgb", "thermal"),
                                                   ("Test_X_vi", "Test_X_ir"), ("crop_LR_visible", "cropinfrared")])
def test_generic_folder_aliases(tmp_path, eo_name, ir_name):
    for i in (1, 2, 10):  # natural sort: 1, 2, 10
        write(tmp_path / eo_name / f"f{i}.jpg", rgb(i))
        write(tmp_path / ir_name / f"f{i}.png", grey(i))
    with open_sequence(tmp_path) as seq:
        assert seq.layout == "folders" and seq.names == ["f1", "f2", "f10"]
        np.testing.assert_array_equal(seq[2].ir, grey(10))


def test_generic_16bit_tiff_ir_resampled_to_eo_grid_with_labels(tmp_path):
    ir16 = np.full((12, 16), 3000, np.uint16)
    ir16[:6] = 5000
    write(tmp_path / "eo" / "a.png", rgb(0, 24, 32))
    write(tmp_path / "ir" / "a.tif", ir16)
    write(tmp_path / "labels" / "a.png", np.kron(np.eye(2, dtype=np.uint8), np.ones((6, 8), np.uint8)))
    with open_sequence(tmp_path) as seq:
        fp = seq[0]
        assert fp.ir.shape == (24, 32) and fp.ir.dtype == np.uint16  # IR on the EO grid, raw kept
        assert set(np.unique(fp.ir).tolist()) <= set(range(3000, 5001))
        assert fp.ir[0, 0] == 5000 and fp.ir[-1, -1] == 3000
        assert fp.label.shape == (24, 32) and set(np.unique(fp.label).tolist()) == {0, 1}  # nearest, no blend


def test_folder_pair_given_explicitly(tmp_path):
    for i in range(2):
        write(tmp_path / "A" / f"{i}.png", rgb(i))
        write(tmp_path / "B" / f"{i}.png", grey(i))
    seq = open_sequence((tmp_path / "A", tmp_path / "B"))
    assert len(seq) == 2 and seq.origin == (str(tmp_path / "A"), str(tmp_path / "B"))
    seq.close()


def test_unmatched_names_are_listed(tmp_path):
    for i in range(4):
        write(tmp_path / "vi" / f"{i}.png", rgb(i))
    for i in (0, 1, 7):
        write(tmp_path / "ir" / f"{i}.png", grey(i))
    with pytest.raises(UnmatchedFilesError) as ei:
        open_sequence(tmp_path)
    assert ei.value.eo_only == ["2", "3"] and ei.value.ir_only == ["7"]
    msg = str(ei.value)
    assert "2 in vi/ without IR: 2, 3" in msg and "1 in ir/ without EO: 7" in msg and "allow_unmatched" in msg
    with open_sequence(tmp_path, allow_unmatched=True) as seq:
        assert seq.names == ["0", "1"]


def test_empty_and_ambiguous_and_missing(tmp_path):
    (tmp_path / "eo").mkdir()
    (tmp_path / "ir").mkdir()
    with pytest.raises(EmptySequenceError, match="hold no images"):
        open_sequence(tmp_path)
    with pytest.raises(UnknownLayoutError, match="no such file"):
        open_sequence(tmp_path / "nope")
    amb = tmp_path / "amb"
    for d in ("crop_HR_visible", "crop_LR_visible", "cropinfrared"):
        write(amb / d / "a.png", rgb(0))
    with pytest.raises(UnknownLayoutError, match=r"several EO/IR folder candidates.*open_sequence\(\(eo_folder"):
        open_sequence(amb)


def test_corrupt_frames_open_marked_bad(tmp_path):
    for i in range(6):
        write(tmp_path / "eo" / f"{i}.png", rgb(i))
        write(tmp_path / "ir" / f"{i}.png", grey(i))
    good = (tmp_path / "ir" / "3.png").read_bytes()
    (tmp_path / "ir" / "3.png").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "eo" / "4.png").write_bytes(b"")  # empty
    (tmp_path / "eo" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with open_sequence(tmp_path, prefetch=0) as seq:
        assert 4 in seq.bad_frames  # found by the open-time check, before any read
        for i in (3, 4, 5):
            fp = seq[i]
            assert fp.bad and fp.shape == (24, 32) and not fp.eo.any() and not fp.ir.any()
        assert "3.png" in seq[3].error and "truncated or corrupt" in seq[3].error
        assert "4.png: empty file" in seq[4].error
        assert seq.bad_frames == {3, 4, 5}
        assert not seq[2].bad
        assert seq.info().bad_frames == 3
    # nothing readable at all: refuse to open, naming a file
    only = tmp_path / "only"
    (only / "eo").mkdir(parents=True)
    (only / "ir").mkdir()
    (only / "eo" / "x.png").write_bytes(b"not an image")
    write(only / "ir" / "x.png", grey(0))
    with pytest.raises(CorruptImageError, match=r"x\.png: not an image file"):
        open_sequence(only)


# ------------------------------------------------------------------------------------ video
def write_video(path: Path, n: int, size=(48, 64), grey_out: bool = False) -> Path:
    h, w = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), (i * 9) % 250, np.uint8))  # the frame index is its brightness
    vw.release()
    return path


def test_video_pair_seeks_and_detects_folder(tmp_path):
    eo = write_video(tmp_path / "eo.avi", 20)
    ir = write_video(tmp_path / "ir.avi", 20, size=(24, 32))
    with open_sequence((eo, ir), workers=1) as seq:
        assert seq.layout == "video" and len(seq) == 20 and seq.names[3] == "000003"
        for i in (15, 2, 3, 19, 0):  # jumps back and forth
            fp = seq[i]
            assert abs(float(fp.eo.mean()) - i * 9) < 3 and abs(float(fp.ir.mean()) - i * 9) < 3
            assert fp.ir.shape == fp.eo.shape[:2] == (48, 64)
    with open_sequence(tmp_path) as seq:  # a folder holding exactly eo.* and ir.*
        assert seq.layout == "video" and seq.source == tmp_path


def test_video_errors(tmp_path):
    eo = write_video(tmp_path / "eo.avi", 12)
    short = write_video(tmp_path / "short_ir.avi", 9)
    with pytest.raises(FrameCountMismatchError, match=r"eo\.avi has 12 frames but .*short_ir\.avi has 9"):
        open_sequence((eo, short))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 500)
    with pytest.raises(CorruptImageError, match=r"junk\.mp4: cannot open the IR video"):
        open_sequence((eo, junk))
    with pytest.raises(UnknownLayoutError, match="one video holds one modality"):
        open_sequence(eo)


# ------------------------------------------------------------------------------------ hdf5
def test_hdf5_export_layout_with_labels_names_and_scheme(tmp_path):
    p = tmp_path / "export.h5"
    eo = np.stack([rgb(i) for i in range(4)])
    ir = np.stack([grey(i, dtype=np.uint16, hi=9000) for i in range(4)])
    lab = np.full((4, 24, 32), 255, np.uint8)
    lab[1, :5] = 2
    with h5py.File(p, "w") as f:
        f["eo"], f["ir"] = eo, ir
        d = f.create_dataset("labels", data=lab, chunks=(1, 24, 32), compression="gzip")
        f["frame_names"] = np.array([f"fr{i}" for i in range(4)], dtype=h5py.string_dtype())
        d.attrs["class_names"] = np.array(MFNET.class_names, dtype=h5py.string_dtype())
        d.attrs["palette"] = MFNET.palette_array()
        f.attrs["source"] = "seq"
    with open_sequence(p) as seq:
        assert seq.layout == "hdf5" and seq.names == ["fr0", "fr1", "fr2", "fr3"] and seq.has_labels
        assert seq.scheme is MFNET
        fp = seq[1]
        np.testing.assert_array_equal(fp.eo, eo[1])
        np.testing.assert_array_equal(fp.ir, ir[1])
        np.testing.assert_array_equal(fp.label, lab[1])


def test_hdf5_other_tools_layouts_and_errors(tmp_path):
    p = tmp_path / "chfirst.hdf5"
    with h5py.File(p, "w") as f:
        f["RGB"] = np.stack([rgb(i) for i in range(3)]).transpose(0, 3, 1, 2)  # (T, 3, H, W)
        f["Thermal"] = np.stack([grey(i) for i in range(3)]).astype(np.float64)  # odd dtype
    with open_sequence(p) as seq:
        np.testing.assert_array_equal(seq[2].eo, rgb(2))
        assert seq[2].ir.dtype == np.float32 and not seq.has_labels
    labels_only = tmp_path / "labels_only.h5"
    with h5py.File(labels_only, "w") as f:
        f["labels"] = np.zeros((2, 4, 4), np.uint8)
        f.attrs["source"] = "../my_sequence"
    with pytest.raises(UnknownLayoutError, match=r"holds labels only, and their sequence .*my_sequence .* is not there"):
        open_sequence(labels_only)
    bad = tmp_path / "counts.h5"
    with h5py.File(bad, "w") as f:
        f["eo"] = np.zeros((3, 4, 4, 3), np.uint8)
        f["ir"] = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(FrameCountMismatchError, match=r"/eo 3, /ir 2"):
        open_sequence(bad)
    odd = tmp_path / "odd.h5"
    with h5py.File(odd, "w") as f:
        f["eo"] = np.zeros((3, 4), np.uint8)
    with pytest.raises(UnknownLayoutError, match=r"'/eo' \(EO\) has shape \(3, 4\)"):
        open_sequence(odd)
    notreally = tmp_path / "broken.h5"
    notreally.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(CorruptImageError, match="not a readable HDF5 file"):
        open_sequence(notreally)


def test_array_sequence_protocol():
    eo = np.stack([rgb(i) for i in range(3)])
    ir = [grey(i, 12, 16) for i in range(3)]
    seq = ArraySequence(eo, ir, labels=[None, np.ones((24, 32), np.uint8), None], names=["a", "b", "c"],
                        scheme=MFNET)
    assert len(seq) == 3 and seq.has_labels and seq.layout == "memory" and seq.names == ["a", "b", "c"]
    assert seq[1].ir.shape == (24, 32) and seq[1].label.sum() == 24 * 32 and seq[0].label is None
    np.testing.assert_array_equal(seq[-1].eo, eo[2])
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(FrameCountMismatchError, match="eo 3, ir 2"):
        ArraySequence(eo, ir[:2])
    with pytest.raises(EmptySequenceError):
        ArraySequence(np.zeros((0, 4, 4, 3), np.uint8), None)
    assert all(issubclass(e, CSKNetError) for e in (EmptySequenceError, FrameCountMismatchError))


def test_msrs_layout_is_told_apart_from_fmb(tmp_path):
    for name in ("00001D", "00002N"):
        write(tmp_path / "Visible" / f"{name}.png", rgb(1))
        write(tmp_path / "Infrared" / f"{name}.png", grey(1))
        write(tmp_path / "Label" / f"{name}.png", np.full((24, 32), 2, np.uint8))
    with open_sequence(tmp_path) as seq:
        assert seq.layout == "msrs" and seq.scheme is MFNET and int(seq[1].label[0, 0]) == 2


def test_stems_with_modality_tags_pair_up(tmp_path):
    for i in range(3):
        write(tmp_path / "rgb" / f"{i:04d}_rgb.png", rgb(i))
        write(tmp_path / "thermal" / f"{i:04d}_thermal.png", grey(i))
    with open_sequence(tmp_path) as seq:
        assert seq.names == ["0000", "0001", "0002"]
        np.testing.assert_array_equal(seq[2].ir, grey(2))


def test_broken_label_keeps_the_image_pair(tmp_path):
    for i in range(2):
        write(tmp_path / "eo" / f"{i}.png", rgb(i))
        write(tmp_path / "ir" / f"{i}.png", grey(i))
        write(tmp_path / "labels" / f"{i}.png", np.full((24, 32), 1, np.uint8))
    (tmp_path / "labels" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with open_sequence(tmp_path, prefetch=0) as seq:
        fp = seq[1]
        assert not fp.bad and fp.label is None and fp.eo.any()
        assert 1 not in seq.bad_frames and "labels/1.png" in seq.label_errors[1]
        assert seq[0].label is not None


def test_sidecar_json_names_the_class_scheme(tmp_path):
    write(tmp_path / "eo" / "000000.png", rgb(0))
    write(tmp_path / "ir" / "000000.png", grey(0))
    write(tmp_path / "labels" / "000000.png", np.zeros((24, 32), np.uint8))
    (tmp_path / "demo.json").write_text('{"class_scheme": "mfnet"}')
    with open_sequence(tmp_path) as seq:
        assert seq.scheme is MFNET
    (tmp_path / "demo.json").write_text('{"class_names": ["bg", "hot"], "palette": [[0, 0, 0], [255, 0, 0]]}')
    with open_sequence(tmp_path) as seq:
        assert seq.scheme.class_names == ("bg", "hot")
    (tmp_path / "demo.json").write_text("{not json")
    with open_sequence(tmp_path) as seq:
        assert seq.scheme is None


def test_float_tiff_ir_and_named_videos(tmp_path):
    ir = np.linspace(250.0, 310.0, 24 * 32, dtype=np.float32).reshape(24, 32)  # kelvin, radiometric
    write(tmp_path / "f" / "eo" / "a.png", rgb(0))
    write(tmp_path / "f" / "ir" / "a.tiff", ir)
    with open_sequence(tmp_path / "f") as seq:
        assert seq[0].ir.dtype == np.float32
        np.testing.assert_allclose(seq[0].ir, ir)
        lo, hi = seq.display_levels()["ir"]
        assert 250 < lo < 252 and 308 < hi < 310
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "visible.avi", 5)
    write_video(tmp_path / "v" / "thermal.avi", 5)
    with open_sequence(tmp_path / "v") as seq:
        assert seq.layout == "video" and len(seq) == 5


@pytest.mark.parametrize(("name", "want"), [("Test_LLVIP_vi", "eo"), ("cropinfrared", "ir"), ("lwir", "ir"),
                                            ("visible", "eo"), ("RGB", "eo"), ("labels", None), ("rgb_thermal", None)])
def test_modality_of_folder_names(name, want):
    from csknet_studio.core.data import modality_of

    assert modality_of(name) == want


def test_label_export_without_images_opens_its_sequence_with_the_labels(tmp_path):
    from csknet_studio.core.export import export_hdf5
    from csknet_studio.core.session import AnnotationSession

    root = tmp_path / "seq"
    for i in range(3):
        write(root / "eo" / f"{i}.png", rgb(i))
        write(root / "ir" / f"{i}.png", grey(i))
    seq = open_sequence(root)
    s = AnnotationSession(seq, tmp_path / "proj.csknet", scheme=MFNET)
    s.paint_stroke(1, [(10, 10), (20, 12)], 3, 2)
    out = export_hdf5(s, tmp_path / "out" / "labels.h5")  # labels only, source stored relative
    want = np.array(s.labels(1))
    seq.close()
    with open_sequence(out) as got:
        assert got.source == root and got.label_file == out and got.has_labels and got.scheme == MFNET
        np.testing.assert_array_equal(got[1].label, want)
        np.testing.assert_array_equal(got[1].eo, rgb(1))
    (root / "eo" / "2.png").unlink()
    (root / "ir" / "2.png").unlink()
    with pytest.raises(FrameCountMismatchError, match="no longer match"):
        open_sequence(out)
    import shutil

    shutil.rmtree(root)
    with pytest.raises(UnknownLayoutError, match="holds labels only"):
        open_sequence(out)


def test_llvip_style_split_inside_each_modality(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            write(tmp_path / "visible" / split / f"{split}{i}.jpg", rgb(i))
            write(tmp_path / "infrared" / split / f"{split}{i}.jpg", np.dstack([grey(i)] * 3))
    with open_sequence(tmp_path) as seq:
        assert seq.split == "test" and seq.names == ["test0", "test1"]
    with open_sequence(tmp_path, split="train") as seq:
        assert len(seq) == 3 and seq[0].ir.ndim == 2
