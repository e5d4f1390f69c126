"""Bad inputs, one table per kind. Each gives a documented error (a CSKNetError subclass) whose
message names the file at fault, or a correct result; never a traceback or a silent wrong answer.

Readers (damaged PNG / JPEG / TIFF / BMP frames, odd dtypes, channels and sizes, empty or unpaired
folders, damaged videos and HDF5), checkpoints (other files, truncated, tampered, pickles that
would run code), configs (unknown keys, wrong shapes of tables, non-UTF-8, invalid TOML), projects
(damaged manifest, journal lines and masks) and exports (targets that cannot be written, a full
disk). Everything is tiny and synthetic, so the whole file runs in seconds.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from csknet_studio.core import palette_png
from csknet_studio.core.checkpoint import load_checkpoint, save_checkpoint
from csknet_studio.core.classes import MFNET
from csknet_studio.core.data import open_sequence
from csknet_studio.core.errors import (
    CheckpointError,
    ConfigError,
    CorruptImageError,
    ExportError,
    FrameCountMismatchError,
    ProjectError,
    SequenceError,
    UnknownLayoutError,
    UnmatchedFilesError,
)
from csknet_studio.core.export import export_hdf5, export_png
from csknet_studio.core.model import create_model
from csknet_studio.core.project import JOURNAL, MANIFEST, ProjectStore
from csknet_studio.core.project_journal import encode_records, frame_record
from csknet_studio.core.session import AnnotationSession
from csknet_studio.core.training import TrainConfig

H, W = 16, 24


def _folder(root: Path, ext: str = "png", n: int = 3, labels: bool = False) -> Path:
    """eo/ ir/ (and labels/) with n small frames named 0..n-1."""
    for i in range(n):
        for sub, img in (("eo", np.full((H, W, 3), 40 * i + 10, np.uint8)), ("ir", np.full((H, W), 30 * i + 5, np.uint8))):
            (root / sub).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / sub / f"{i}.{ext}"), img)
        if labels:
            (root / "labels").mkdir(exist_ok=True)
            cv2.imwrite(str(root / "labels" / f"{i}.png"), np.full((H, W), i % 3, np.uint8))
    return root


# --- readers: frame 1 of a three-frame folder sequence is damaged ------------------------------------
def _cut(frac: float):
    return lambda p: p.write_bytes(p.read_bytes()[: int(len(p.read_bytes()) * frac)])


def _put(data: bytes):
    return lambda p: p.write_bytes(data)


def _img(a: np.ndarray):
    return lambda p: cv2.imwrite(str(p), a)


def _flip_middle(p: Path) -> None:
    b = bytearray(p.read_bytes())
    for k in range(len(b) // 2, len(b) // 2 + 8):
        b[k] ^= 0xFF
    p.write_bytes(bytes(b))


RNG_BYTES = np.random.default_rng(7).integers(0, 256, 400, dtype=np.uint8).tobytes()

# name: (extension, modality damaged, damage, what the frame must come out as)
# "bad": marked bad, the error naming the damaged file; else a check of the decoded frame
FRAME_CASES = {
    "png_truncated_half": ("png", "eo", _cut(0.5), "bad"),
    "png_signature_only": ("png", "eo", _put(b"\x89PNG\r\n\x1a\n"), "bad"),
    "png_empty_file": ("png", "eo", _put(b""), "bad"),
    "png_random_bytes": ("png", "ir", _put(RNG_BYTES), "bad"),
    "png_flipped_bytes": ("png", "ir", _flip_middle, "bad"),
    "png_text_file": ("png", "ir", _put(b"this is not an image\n"), "bad"),
    "jpg_truncated_half": ("jpg", "eo", _cut(0.5), "bad"),
    "jpg_header_only": ("jpg", "eo", _cut(0.1), "bad"),
    "jpg_random_after_soi": ("jpg", "ir", _put(b"\xff\xd8" + RNG_BYTES), "bad"),
    "tif_truncated_half": ("tif", "eo", _cut(0.5), "bad"),
    "tif_garbage_after_header": ("tif", "ir", _put(b"II*\x00" + RNG_BYTES), "bad"),
    "bmp_truncated": ("bmp", "eo", _cut(0.3), "bad"),
    "ir_of_another_aspect": ("png", "ir", _img(np.full((H, H), 9, np.uint8)), "bad"),
    "eo_of_one_pixel": ("png", "eo", _img(np.full((1, 1, 3), 9, np.uint8)), "bad"),
    "ir_16_bit": ("png", "ir", _img(np.full((H, W), 9000, np.uint16)),
                  lambda fp: fp.ir.dtype == np.uint16 and int(fp.ir[0, 0]) == 9000),
    "ir_in_colour": ("png", "ir", _img(np.full((H, W, 3), 90, np.uint8)),
                     lambda fp: fp.ir.shape == (H, W) and int(fp.ir[0, 0]) == 90),
    "ir_float_tiff": ("tif", "ir", _img(np.full((H, W), 0.25, np.float32)),
                      lambda fp: fp.ir.dtype == np.float32 and float(fp.ir[0, 0]) == 0.25),
    "eo_grey": ("png", "eo", _img(np.full((H, W), 77, np.uint8)),
                lambda fp: fp.eo.shape == (H, W, 3) and (fp.eo == 77).all()),
    "eo_16_bit": ("png", "eo", _img(np.full((H, W, 3), 9000, np.uint16)),
                  lambda fp: fp.eo.dtype == np.uint16 and fp.eo.shape == (H, W, 3)),
    "eo_with_alpha": ("png", "eo", _img(np.full((H, W, 4), 90, np.uint8)), lambda fp: fp.eo.shape == (H, W, 3)),
    "eo_twice_the_size": ("png", "eo", _img(np.full((2 * H, 2 * W, 3), 90, np.uint8)),
                          lambda fp: fp.shape == (2 * H, 2 * W) and fp.ir.shape == (2 * H, 2 * W)),
    "ir_twice_the_size": ("png", "ir", _img(np.full((2 * H, 2 * W), 90, np.uint8)),
                          lambda fp: fp.shape == (H, W) and fp.ir.shape == (H, W)),
    "eo_of_another_size_same_aspect": ("png", "eo", _img(np.full((20, 30, 3), 90, np.uint8)),
                                       lambda fp: fp.shape == (20, 30) and fp.ir.shape == (20, 30)),
}


@pytest.mark.parametrize("case", sorted(FRAME_CASES))
def test_a_damaged_or_odd_frame_is_a_named_bad_frame_or_reads_right(tmp_path, case):
    ext, modality, damage, expect = FRAME_CASES[case]
    root = _folder(tmp_path / "seq", ext)
    target = root / modality / f"1.{ext}"
    damage(target)
    with open_sequence(root, prefetch=0) as seq:
        fp = seq[1]
        if expect == "bad":
            assert fp.bad and (target.name in fp.error or str(root) in fp.error), fp.error
            assert 1 in seq.bad_frames
        else:
            assert not fp.bad and expect(fp), (fp.shape, fp.eo.dtype, fp.ir.dtype)
        assert not seq[0].bad and not seq[2].bad  # the others are untouched


def test_a_damaged_label_keeps_the_frame_and_names_the_label_file(tmp_path):
    root = _folder(tmp_path / "seq", labels=True)
    (root / "labels" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + RNG_BYTES)
    with open_sequence(root, prefetch=0) as seq:
        fp = seq[1]
        assert not fp.bad and fp.label is None and "1.png" in seq.label_errors[1]
        assert seq[2].label is not None


# --- readers: the sequence as a whole --------------------------------------------------------------
def _video(path: Path, n: int) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(n):
        vw.write(np.full((H, W, 3), 9 * i, np.uint8))
    vw.release()
    return path


def _seq_missing(tmp):
    return tmp / "nope", UnknownLayoutError


def _seq_empty_folder(tmp):
    (tmp / "empty").mkdir()
    return tmp / "empty", UnknownLayoutError


def _seq_empty_eo_ir(tmp):
    (tmp / "s" / "eo").mkdir(parents=True)
    (tmp / "s" / "ir").mkdir()
    return tmp / "s", SequenceError


def _seq_eo_only(tmp):
    root = _folder(tmp / "s")
    shutil.rmtree(root / "ir")
    return root, UnknownLayoutError


def _seq_unmatched(tmp):
    root = _folder(tmp / "s")
    (root / "ir" / "2.png").rename(root / "ir" / "7.png")
    return root, UnmatchedFilesError


def _seq_all_unreadable(tmp):
    root = _folder(tmp / "s", n=2)
    for p in (root / "eo").iterdir():
        p.write_bytes(b"not an image")
    return root, CorruptImageError


def _seq_frame_is_a_folder(tmp):
    root = _folder(tmp / "s")
    (root / "eo" / "1.png").unlink()
    (root / "eo" / "1.png").mkdir()
    return root, UnmatchedFilesError


def _seq_dangling_link(tmp):
    root = _folder(tmp / "s")
    (root / "eo" / "1.png").unlink()
    (root / "eo" / "1.png").symlink_to(tmp / "gone.png")
    return root, UnmatchedFilesError


def _seq_text_file(tmp):
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt", UnknownLayoutError


def _seq_empty_h5(tmp):
    (tmp / "x.h5").write_bytes(b"")
    return tmp / "x.h5", CorruptImageError


def _seq_png_named_h5(tmp):
    cv2.imwrite(str(tmp / "x.png"), np.zeros((4, 4), np.uint8))
    (tmp / "x.png").rename(tmp / "x.h5")
    return tmp / "x.h5", CorruptImageError


def _seq_video_truncated(tmp):
    eo, ir = _video(tmp / "eo.avi", 10), _video(tmp / "ir.avi", 10)
    ir.write_bytes(ir.read_bytes()[: ir.stat().st_size // 2])
    return (eo, ir), CorruptImageError


def _seq_video_empty(tmp):
    eo = _video(tmp / "eo.avi", 10)
    (tmp / "ir.avi").write_bytes(b"")
    return (eo, tmp / "ir.avi"), CorruptImageError


def _seq_video_counts_differ(tmp):
    return (_video(tmp / "eo.avi", 10), _video(tmp / "ir.avi", 7)), FrameCountMismatchError


def _seq_video_and_image(tmp):
    cv2.imwrite(str(tmp / "ir.png"), np.zeros((H, W), np.uint8))
    return (_video(tmp / "eo.avi", 4), tmp / "ir.png"), UnknownLayoutError


def _seq_one_video(tmp):
    return _video(tmp / "eo.avi", 4), UnknownLayoutError


SEQUENCE_CASES = {f.__name__[5:]: f for f in (
    _seq_missing, _seq_empty_folder, _seq_empty_eo_ir, _seq_eo_only, _seq_unmatched, _seq_all_unreadable,
    _seq_frame_is_a_folder, _seq_dangling_link, _seq_text_file, _seq_empty_h5, _seq_png_named_h5,
    _seq_video_truncated, _seq_video_empty, _seq_video_counts_differ, _seq_video_and_image, _seq_one_video)}


@pytest.mark.parametrize("case", sorted(SEQUENCE_CASES))
def test_a_sequence_that_cannot_open_names_its_path(tmp_path, case):
    path, error = SEQUENCE_CASES[case](tmp_path)
    with pytest.raises(error) as ei:
        open_sequence(path, prefetch=0).close()
    names = [str(p) for p in (path if isinstance(path, tuple) else (path,))]
    assert any(n in str(ei.value) for n in names), str(ei.value)


# --- checkpoints -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    save_checkpoint(path, create_model("csknet-tiny", num_classes=MFNET.num_classes), scheme=MFNET)
    return path


class _RunsCode:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tampered(good: Path, path: Path, edit) -> None:
    payload = torch.load(good, map_location="cpu", weights_only=True)
    edit(payload)
    torch.save(payload, path)


def _first_tensor_key(payload) -> str:
    return next(k for k, v in payload["state_dict"].items() if v.ndim > 1)


CHECKPOINT_CASES = {
    "text_file": lambda good, p: p.write_text("not a checkpoint"),
    "empty_file": lambda good, p: p.write_bytes(b""),
    "truncated_half": lambda good, p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
    "truncated_to_100_bytes": lambda good, p: p.write_bytes(good.read_bytes()[:100]),
    "png_renamed": lambda good, p: p.write_bytes(cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes()),
    "zip_of_something_else": lambda good, p: zipfile.ZipFile(p, "w").writestr("readme.txt", "hello"),
    "a_bare_tensor": lambda good, p: torch.save(torch.zeros(3), p),
    "a_bare_state_dict": lambda good, p: torch.save({"w": torch.zeros(3)}, p),
    "torch_pickle_that_runs_code": lambda good, p: torch.save({"x": _RunsCode(p.with_suffix(".ran"))}, p),
    "raw_pickle_that_runs_code": lambda good, p: p.write_bytes(pickle.dumps(_RunsCode(p.with_suffix(".ran")))),
    "tensor_of_another_shape": lambda good, p: _tampered(good, p, lambda d: d["state_dict"].__setitem__(
        _first_tensor_key(d), torch.zeros(1, 1))),
    "a_weight_missing": lambda good, p: _tampered(good, p, lambda d: d["state_dict"].pop(_first_tensor_key(d))),
    "scheme_not_a_table": lambda good, p: _tampered(good, p, lambda d: d.__setitem__("scheme", 7)),
    "class_names_not_a_list": lambda good, p: _tampered(good, p, lambda d: d["scheme"].__setitem__("class_names", 7)),
    "class_count_not_that_of_the_weights": lambda good, p: _tampered(
        good, p, lambda d: d["model_config"].__setitem__("num_classes", 5)),
    "scheme_of_another_class_count": lambda good, p: _tampered(good, p, lambda d: d["scheme"].__setitem__(
        "class_names", d["scheme"]["class_names"][:4])),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, good_checkpoint, case):
    path = tmp_path / f"{case}.pt"
    CHECKPOINT_CASES[case](good_checkpoint, path)
    with pytest.raises(CheckpointError) as ei:
        load_checkpoint(path)
    assert str(path) in str(ei.value), str(ei.value)
    assert not path.with_suffix(".ran").exists(), "loading the file ran its code"


def test_the_good_checkpoint_loads(good_checkpoint):
    assert load_checkpoint(good_checkpoint).scheme.class_names == MFNET.class_names


# --- configs ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_config(tmp_path_factory, write_generic_dataset, tiny_config_toml, make_frames) -> str:
    data = write_generic_dataset(tmp_path_factory.mktemp("data"), make_frames(4, size=32, seed=0))
    return tiny_config_toml(data, tmp_path_factory.mktemp("run"), epochs=1)


def _insert(line: str, section: str | None = None):
    """The base config with `line` added at the top or at the start of [section]."""
    def edit(text: str) -> str:
        lines = text.splitlines()
        at = 0 if section is None else lines.index(f"[{section}]") + 1
        return "\n".join(lines[:at] + [line] + lines[at:]) + "\n"
    return edit


CONFIG_CASES = {  # name: (edit of the text or raw bytes, what the message must also say)
    "unknown_top_level_key": (_insert("colour = 'blue'"), "colour"),
    "unknown_key_in_a_section": (_insert("speed = 3", "optim"), "optim.speed"),
    "a_misspelt_key": (_insert("epoch = 3", "optim"), "optim.epoch"),
    "unknown_section": (lambda t: t + "\n[turbo]\nenabled = true\n", "turbo"),
    "a_section_given_as_a_number": (lambda t: t.replace("[optim]", "optim = 3\n[optim_old]"), "optim"),
    "invalid_toml": (lambda t: t + "\nthis is = = not toml\n", "not valid TOML"),
    "duplicate_key": (_insert("epochs = 1", "optim"), "not valid TOML"),
    "utf8_with_bom": (lambda t: "\ufeff" + t, ""),
    "non_utf8_bytes": (lambda t: t.encode("utf-8") + b"\n# \xff\xfe\n", "not UTF-8"),
    "negative_epochs": (lambda t: _insert("epochs = -2", "optim")("\n".join(
        x for x in t.splitlines() if not x.startswith("epochs ="))), "optim.epochs"),
    "crop_of_three_numbers": (lambda t: "\n".join(x for x in t.splitlines() if not x.startswith("crop =")).replace(
        "[augment]", "[augment]\ncrop = [64, 64, 64]"), "augment.crop"),
    "empty_file": (lambda t: "", ""),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_a_bad_config_file_is_a_config_error_naming_the_file(tmp_path, base_config, case):
    edit, needle = CONFIG_CASES[case]
    cfg = tmp_path / "cfg.toml"
    out = edit(base_config)
    cfg.write_bytes(out if isinstance(out, bytes) else out.encode("utf-8"))
    with pytest.raises(ConfigError) as ei:
        TrainConfig.from_toml(cfg)
    assert str(cfg) in str(ei.value) and needle in str(ei.value), str(ei.value)


def test_the_base_config_loads(tmp_path, base_config):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(base_config)
    assert TrainConfig.from_toml(cfg).optim.epochs == 1


# --- projects ----------------------------------------------------------------------------------------
N_PROJ = 4


@pytest.fixture(scope="module")
def project_template(tmp_path_factory, make_sequence) -> Path:
    """seq/ and seq.csknet/ with frames 0..2 corrected (compacted: masks on disk, journal empty)."""
    root = tmp_path_factory.mktemp("proj")
    s = AnnotationSession(make_sequence(root / "seq", n=N_PROJ))
    for i in range(3):
        s.paint_stroke(i, [(5 + i, 5), (30, 20)], 1 + i, 3)
    s.close()
    return root


def _copy_project(template: Path, tmp: Path) -> Path:
    shutil.copytree(template, tmp / "p")
    return tmp / "p" / "seq.csknet"


def _manifest_edit(edit):
    def damage(project: Path) -> None:
        path = project / MANIFEST
        d = json.loads(path.read_text())
        out = edit(d)
        path.write_bytes(out if isinstance(out, bytes) else json.dumps(d if out is None else out).encode())
    return damage


MANIFEST_CASES = {
    "not_json": lambda p: (p / MANIFEST).write_text("{ this is not json"),
    "truncated_json": lambda p: (p / MANIFEST).write_bytes((p / MANIFEST).read_bytes()[:40]),
    "empty_file": lambda p: (p / MANIFEST).write_bytes(b""),
    "non_utf8": lambda p: (p / MANIFEST).write_bytes(b"\xff\xfe{}"),
    "a_json_list": _manifest_edit(lambda d: [1, 2, 3]),
    "another_format": _manifest_edit(lambda d: d.__setitem__("format", "labelme")),
    "a_future_version": _manifest_edit(lambda d: d.__setitem__("format_version", 99)),
    "version_not_a_number": _manifest_edit(lambda d: d.__setitem__("format_version", "3")),
    "no_sequence_block": _manifest_edit(lambda d: d.pop("sequence")),
    "frame_index_not_a_number": _manifest_edit(lambda d: next(iter(d["frames"].values())).__setitem__("index", "x")),
    "scheme_not_a_table": _manifest_edit(lambda d: d.__setitem__("scheme", 5)),
    "made_for_another_sequence": _manifest_edit(lambda d: d["sequence"].__setitem__("num_frames", 99)),
    "a_directory_in_its_place": lambda p: ((p / MANIFEST).unlink(), (p / MANIFEST).mkdir()),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_a_damaged_manifest_is_a_project_error_naming_the_project(tmp_path, project_template, case,
                                                                  make_sequence):
    project = _copy_project(project_template, tmp_path)
    MANIFEST_CASES[case](project)
    with pytest.raises(ProjectError) as ei:
        AnnotationSession(make_sequence(project.parent / "seq", n=N_PROJ), read_only=True)
    assert str(project) in str(ei.value), str(ei.value)


def _journal_line(project: Path, raw: bytes) -> None:
    with open(project / JOURNAL, "ab") as fh:
        fh.write(raw)


def _png(mask: np.ndarray) -> bytes:
    return ProjectStore.encode_mask(mask)


JOURNAL_CASES = {  # name: (the line, the frame it concerns or None)
    "png_not_base64": (b'{"f": 3, "o": "corrected", "png": "***"}\n', None),
    "png_not_a_string": (b'{"f": 3, "o": "corrected", "png": 5}\n', None),
    "png_not_a_png": (encode_records([frame_record(3, "corrected", b"definitely not a png")]), 3),
    "png_of_the_wrong_size": (encode_records([frame_record(3, "corrected", _png(np.zeros((5, 7), np.uint8)))]), 3),
    "png_in_colour": (encode_records([frame_record(3, "corrected", cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1]
                                                   .tobytes())]), 3),
    "frame_out_of_range": (encode_records([frame_record(40, "corrected", _png(np.zeros((48, 64), np.uint8)))]), 40),
    "unknown_origin": (b'{"f": 3, "o": "guessed"}\n', None),
    "frame_not_a_number": (b'{"f": "three", "o": null}\n', None),
    "a_json_array": (b"[1, 2, 3]\n", None),
    "not_utf8": (b'{"f": 3, "o": "\xff\xfe"}\n', None),
    "no_origin": (b'{"f": 3}\n', None),
}


@pytest.mark.parametrize("case", sorted(JOURNAL_CASES))
def test_a_bad_journal_line_costs_that_line_and_is_reported(tmp_path, project_template, case, make_sequence):
    project = _copy_project(project_template, tmp_path)
    line, frame = JOURNAL_CASES[case]
    _journal_line(project, b'{"journal": "x"}\n' + line)
    s = AnnotationSession(make_sequence(project.parent / "seq", n=N_PROJ), read_only=True)
    if frame == 3:
        s.labels(3)  # a mask whose header passes is checked when first decoded
    assert s.corrected_frames() == [0, 1, 2] and s.origin(3).value != "corrected"
    assert len(s.problems) == 1, s.problems
    p = s.problems[0]
    assert (f"{JOURNAL} line 2" in str(p)) if frame is None else (p.frame == frame and JOURNAL in str(p) or
                                                                  "out of range" in str(p)), str(p)


def _mask(project: Path, i: int) -> Path:
    return project / ProjectStore.mask_name(i)


MASK_CASES = {
    "sixteen_bit": lambda p: cv2.imwrite(str(_mask(p, 1)), np.zeros((48, 64), np.uint16)),
    "palette_png": lambda p: _mask(p, 1).write_bytes(palette_png.encode_palette_png(np.zeros((48, 64), np.uint8),
                                                                                      MFNET.palette_array())),
    "empty_file": lambda p: _mask(p, 1).write_bytes(b""),
    "a_jpeg": lambda p: _mask(p, 1).write_bytes(cv2.imencode(".jpg", np.zeros((48, 64), np.uint8))[1].tobytes()),
    "a_directory": lambda p: (_mask(p, 1).unlink(), _mask(p, 1).mkdir()),
    "header_only": lambda p: _mask(p, 1).write_bytes(_mask(p, 1).read_bytes()[:33]),
    "one_pixel": lambda p: cv2.imwrite(str(_mask(p, 1)), np.zeros((1, 1), np.uint8)),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_a_bad_mask_file_costs_its_frame_and_is_reported(tmp_path, project_template, case, make_sequence):
    project = _copy_project(project_template, tmp_path)
    MASK_CASES[case](project)
    s = AnnotationSession(make_sequence(project.parent / "seq", n=N_PROJ), read_only=True)
    s.labels(1)  # decoded on first use
    assert s.corrected_frames() == [0, 2] and [p.frame for p in s.problems] == [1], s.problems
    assert "masks/000001.png" in str(s.problems[0])


def test_masks_with_ids_outside_the_scheme_and_an_orphan_of_another_size(tmp_path, project_template,
                                                                         make_sequence):
    project = _copy_project(project_template, tmp_path)
    m = cv2.imread(str(_mask(project, 2)), cv2.IMREAD_UNCHANGED)
    m[:2, :3] = 77
    cv2.imwrite(str(_mask(project, 2)), m)
    cv2.imwrite(str(_mask(project, 3)), np.zeros((10, 10), np.uint8))  # an orphan of another size
    s = AnnotationSession(make_sequence(project.parent / "seq", n=N_PROJ), read_only=True)
    assert (s.labels(2)[:2, :3] == 255).all() and s.corrected_frames() == [0, 1, 2]
    reports = {p.frame: str(p) for p in s.problems}
    assert "class ids 77" in reports[2] and "masks/000003.png" in reports[3]


# --- exports -----------------------------------------------------------------------------------------
@pytest.fixture
def small_session(make_sequence):
    s = AnnotationSession(make_sequence(None, n=3), autosave=False)
    s.paint_stroke(0, [(5, 5)], 1, 3)
    return s


def _file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


EXPORT_CASES = {  # name: (writer, target)
    "png_into_a_file": (export_png, _file),
    "png_under_a_file": (export_png, lambda t: _file(t) / "masks"),
    "png_in_proc": (export_png, lambda t: Path("/proc/csknet-masks")),
    "hdf5_under_a_file": (export_hdf5, lambda t: _file(t) / "labels.h5"),
    "hdf5_onto_a_folder": (export_hdf5, lambda t: (t / "folder").mkdir() or t / "folder"),
    "hdf5_in_proc": (export_hdf5, lambda t: Path("/proc/csknet-labels.h5")),
}


@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_an_unwritable_export_target_is_an_export_error_naming_it(tmp_path, small_session, case):
    writer, target = EXPORT_CASES[case]
    path = target(tmp_path)
    with pytest.raises(ExportError) as ei:
        writer(small_session, path)
    assert str(path) in str(ei.value), str(ei.value)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no litter


def test_a_full_disk_fails_a_png_export_naming_the_folder_and_keeps_the_earlier_masks(tmp_path, small_session,
                                                                                    monkeypatch):
    out = export_png(small_session, tmp_path / "masks")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    small_session.paint_stroke(1, [(9, 9)], 2, 3)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(palette_png, "atomic_write_bytes", full)
    with pytest.raises(ExportError, match="No space left") as ei:
        export_png(small_session, out)
    assert str(out) in str(ei.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

