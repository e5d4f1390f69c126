"""`open_sequence`: look at a path and pick the layout that fits, or say what was looked for."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from csknet_studio.core.classes import FMB, MFNET, PST900, SCHEMES, ClassScheme
from csknet_studio.core.errors import FrameCountMismatchError, SequenceError, UnknownLayoutError
from csknet_studio.core.radiometry import LinearScale, parse_ir_scale, scale_from_meta

from .alignment import Alignment
from .base import BaseSequence
from .folders import (
    LABEL_DIRS,
    FileSequence,
    _ci,
    _first,
    mfnet_frames,
    mfnet_single,
    open_pair,
    pair_frames,
    split_lists,
)
from .hdf5 import HDF5Sequence, LabelsOnlyError, LabelStack
from .imaging import HDF5_EXTS, IMAGE_EXTS, VIDEO_EXTS, list_images, png_channels
from .rosbag import RecordingSequence, is_recording
from .thermal import hdf5_ir_scale
from .video import VideoPairSequence

EO_TOKENS = frozenset({"eo", "vi", "vis", "visible", "rgb", "color", "colour", "optical", "visual"})
IR_TOKENS = frozenset({"ir", "infrared", "thermal", "lwir", "tir", "therm", "modal"})
SPLIT_DIRS = ("test", "val", "train", "testing", "validation", "training")

LAYOUTS: dict[str, str] = {
    "mfnet": "MFNet/RTFNet: images/*.png with 4 channels (R, G, B, thermal), labels/, train.txt/val.txt/test.txt",
    "mfnet-cmx": "MFNet as CMX ships it: RGB/, Modal/, Label/ (+ split lists)",
    "pst900": "PST900: rgb/, thermal/ (or thermal_raw/ 16-bit), labels/ (optionally under train/ or test/)",
    "fmb": "FMB: Visible/, Infrared/, Label/ (optionally under train/ or test/)",
    "msrs": "MSRS: Visible/, Infrared/, Label/ with MFNet names (00001D.png) and classes",
    "folders": "paired folders with matching file stems: eo/+ir/, vi/+ir/, visible/+infrared/, rgb/+thermal/, "
               "*_vi/+*_ir/ (LLVIP), *visible/+*infrared/ (RoadScene), visible/{train,test}/+infrared/{train,test}/ "
               "(+ optional labels/)",
    "video": "a pair of videos (eo_video, ir_video), or a folder holding exactly eo.* and ir.* videos",
    "hdf5": "an HDF5 file with eo / ir datasets (our export with image copies included)",
    "rosbag1": "a ROS 1 bag (.bag) with two image topics (Image / CompressedImage), paired by timestamp",
    "rosbag2": "a ROS 2 bag folder (metadata.yaml + sqlite3 .db3 or .mcap storage) with two image topics",
    "mcap": "a plain ROS 2 .mcap file with two image topics",
    "pair": "open_pair(eo_image, ir_image[, label_image]): one frame",
}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


def modality_of(name: str) -> str | None:
    """'eo' / 'ir' / None from a folder or file stem (crop_LR_visible -> eo, cropinfrared -> ir)."""
    low = name.lower()
    toks = _tokens(name)
    eo = bool(toks & EO_TOKENS) or "visible" in low
    ir = bool(toks & (IR_TOKENS - {"modal"})) or "infrared" in low or "thermal" in low
    if eo == ir:
        return None
    return "eo" if eo else "ir"


def _looked_for() -> str:
    return ("MFNet (images/ of 4-channel RGB+T PNGs), CMX MFNet (RGB/ Modal/), PST900 (rgb/ thermal/ labels/), "
            "FMB (Visible/ Infrared/), paired folders (eo|vi|visible|rgb + ir|infrared|thermal, same file names), "
            "eo.* + ir.* videos, HDF5 with eo/ir datasets, ROS 1/ROS 2 bags and MCAP recordings")


def _is_hdf5(p: Path) -> bool:
    if p.suffix.lower() in HDF5_EXTS:
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(8) == _HDF5_MAGIC
    except OSError:
        return False


def open_sequence(
    path: str | os.PathLike | tuple[str | os.PathLike, str | os.PathLike] | list,
    alignment: Alignment | None = None,
    *,
    split: str | None = None,
    raw_thermal: bool = False,
    allow_unmatched: bool = False,
    eo_topic: str | None = None,
    ir_topic: str | None = None,
    ir_scale: LinearScale | str | None = None,
    **cache_kw: Any,
) -> BaseSequence:
    """Open a paired EO/IR sequence, auto-detecting its layout (see LAYOUTS).

    path: a folder, an HDF5 file, an MFNet 4-channel PNG, or an (eo, ir) pair of videos, folders
    or images. split: a split list name (MFNet/CMX "test", ...) or split folder (PST900/FMB
    "train"/"test"). raw_thermal: PST900's 16-bit thermal_raw/ instead of 8-bit thermal/.
    eo_topic, ir_topic: the image topics of a recording (a default is picked when there are two).
    ir_scale: how IR counts read as °C ("centikelvin", "GAIN,OFFSET" or a LinearScale); it wins over
    what the files state. Without it: a FLIR R-JPEG's or a TIFF's own metadata, else the `ir` block
    of a sidecar JSON beside the folders (the demo's demo.json), else the IR is not radiometric.
    cache_kw: cache_bytes, cache_frames, prefetch, workers (see BaseSequence).
    """
    try:
        user_scale = parse_ir_scale(ir_scale) if isinstance(ir_scale, str) else ir_scale
    except ValueError as exc:
        raise SequenceError(str(exc)) from None
    if isinstance(path, tuple | list):
        seq = _open_two(path, alignment, split=split, allow_unmatched=allow_unmatched, **cache_kw)
    else:
        p = Path(path).expanduser()
        if not p.exists():
            raise UnknownLayoutError(f"{p}: no such file or folder")
        if is_recording(p):
            seq = RecordingSequence(p, eo_topic=eo_topic, ir_topic=ir_topic, alignment=alignment, **cache_kw)
        elif p.is_file():
            seq = _open_file(p, alignment, **cache_kw)
        else:
            seq = _open_dir(p, alignment, split=split, raw_thermal=raw_thermal, allow_unmatched=allow_unmatched,
                            **cache_kw)
    if user_scale is not None:
        seq.set_ir_scale(user_scale)
    elif (root := sidecar_root(seq)) is not None:
        try:
            fallback = sidecar_ir_scale(root)
        except BaseException:
            seq.close()
            raise
        if fallback is not None:
            seq.set_ir_scale(fallback, override=False)
    elif seq.layout == "hdf5" and (fallback := hdf5_ir_scale(Path(seq.source))) is not None:
        seq.set_ir_scale(fallback, override=False)  # our export of a radiometric sequence reads as one
    return seq


def sidecar_root(seq: BaseSequence) -> Path | None:
    """The folder a sidecar JSON of `seq` would sit in: its own folder, or above a split folder."""
    src = Path(seq.source)
    if not src.is_dir():
        return None
    if seq.split is not None and src.name.lower() == str(seq.split).lower():
        return src.parent
    return src


def _open_two(pair: tuple | list, alignment: Alignment | None, *, split: str | None, allow_unmatched: bool,
              **cache_kw: Any) -> BaseSequence:
    if len(pair) != 2:
        raise UnknownLayoutError(f"expected an (eo, ir) pair of paths, got {len(pair)} path(s)")
    a, b = (Path(x).expanduser() for x in pair)
    for x in (a, b):
        if not x.exists():
            raise UnknownLayoutError(f"{x}: no such file or folder")
    if a.is_dir() and b.is_dir():
        frames = pair_frames(a, b, _label_dir(a.parent), allow_unmatched=allow_unmatched)
        seq: BaseSequence = FileSequence(frames, layout="folders", source=a.parent, alignment=alignment, **cache_kw)
        seq.origin = (str(a), str(b))
        return seq
    if a.is_file() and b.is_file():
        sa, sb = a.suffix.lower(), b.suffix.lower()
        if sa in VIDEO_EXTS and sb in VIDEO_EXTS:
            return VideoPairSequence(a, b, alignment=alignment, **cache_kw)
        if sa in IMAGE_EXTS and sb in IMAGE_EXTS:
            return open_pair(a, b, alignment=alignment)
    raise UnknownLayoutError(f"({a}, {b}): expected two video files, two image files or two folders")


def _open_file(p: Path, alignment: Alignment | None, **cache_kw: Any) -> BaseSequence:
    ext = p.suffix.lower()
    if _is_hdf5(p):
        try:
            return HDF5Sequence(p, alignment=alignment, **cache_kw)
        except LabelsOnlyError as exc:
            if not exc.source:
                raise
            return _open_label_export(p, exc, alignment, **cache_kw)
    if ext in VIDEO_EXTS:
        raise UnknownLayoutError(f"{p}: one video holds one modality; open an (eo_video, ir_video) pair, or a "
                                 f"folder holding exactly eo.{ext.lstrip('.')} and ir.* videos")
    if ext == ".png" and png_channels(p) == 4:
        return mfnet_single(p, alignment)
    if ext in IMAGE_EXTS:
        raise UnknownLayoutError(f"{p}: a single image is not a sequence; use open_pair(eo_image, ir_image) "
                                 f"or open the folder that holds EO and IR sub-folders")
    raise UnknownLayoutError(f"{p}: not a supported file. Looked for: {_looked_for()}")


def _open_label_export(p: Path, exc: LabelsOnlyError, alignment: Alignment | None, **cache_kw: Any) -> BaseSequence:
    """Our label export without image copies: open the sequence it names, with the file's labels."""
    src = Path(exc.source)
    src = src if src.is_absolute() else Path(os.path.normpath(p.parent / src))
    if not src.exists():
        raise UnknownLayoutError(f"{p}: holds labels only, and their sequence {src} (its 'source') is not there; "
                                 f"move the sequence back or export again with image copies") from None
    seq = open_sequence(src, alignment, **cache_kw)
    try:
        stack = LabelStack(p)
    except BaseException:
        seq.close()
        raise
    if len(stack) != len(seq) or (stack.names is not None and stack.names != seq.names):
        n_lab = len(stack)
        stack.close()
        seq.close()
        raise FrameCountMismatchError(f"{p}: its labels ({n_lab} frames) no longer match {src} ({len(seq)} "
                                      f"frames, or other frame names)")
    seq.attach_labels(stack.read, scheme=stack.scheme, closer=stack.close)
    seq.label_file = p
    return seq


def _label_dir(root: Path) -> Path | None:
    return _first(_ci(root), *LABEL_DIRS)


def _open_dir(p: Path, alignment: Alignment | None, *, split: str | None, raw_thermal: bool, allow_unmatched: bool,
              **cache_kw: Any) -> BaseSequence:
    """The folder's layout, tried in order: a public dataset's own folders, generic paired folders,
    split folders (opening the chosen one the same way), a pair of videos, flat MFNet PNGs."""
    subs = _ci(p)
    common = dict(alignment=alignment, **cache_kw)
    seq = _open_dataset_dir(p, subs, split=split, raw_thermal=raw_thermal, allow_unmatched=allow_unmatched,
                            common=common)
    if seq is None:
        seq = _open_paired_dirs(p, subs, split=split, allow_unmatched=allow_unmatched, common=common)
    if seq is not None:
        return seq
    # split folders (PST900/FMB train/ test/): pick the asked one, else test, val, train
    splits = [s for s in SPLIT_DIRS if s in subs and _ci(subs[s])]
    if splits:
        if split is not None and split.lower() not in splits:
            raise UnknownLayoutError(f"{p}: no split folder {split!r}; found {', '.join(splits)}")
        chosen = split.lower() if split is not None else splits[0]
        seq = _open_dir(subs[chosen], alignment, split=None, raw_thermal=raw_thermal,
                        allow_unmatched=allow_unmatched, **cache_kw)
        seq.split = chosen
        return seq
    # a folder with exactly one EO video and one IR video
    vids = _videos(p)
    if vids is not None:
        return VideoPairSequence(vids[0], vids[1], source=p, **common)
    # a flat folder of MFNet 4-channel PNGs
    if _has_4ch_png(p):
        frames = mfnet_frames(p, p, None, split)
        return FileSequence(frames, layout="mfnet", source=p, scheme=MFNET, split=split, **common)
    found = sorted(s.name + "/" for s in subs.values())[:12]
    n_img = len(list_images(p))
    hint = ""
    if n_img and modality_of(p.name):
        hint = f" {p.name}/ looks like one modality ({n_img} images): open its parent folder."
    elif n_img:
        hint = f" It holds {n_img} image(s) but no EO/IR sub-folders."
    raise UnknownLayoutError(f"{p}: no supported layout found (sub-folders: {', '.join(found) or 'none'}).{hint} "
                             f"Looked for: {_looked_for()}")


def _open_dataset_dir(p: Path, subs: dict[str, Path], *, split: str | None, raw_thermal: bool,
                      allow_unmatched: bool, common: dict[str, Any]) -> BaseSequence | None:
    """A public dataset by its own folder names (MFNet, CMX's MFNet, FMB, MSRS, PST900), else None."""
    # MFNet (RTFNet copy): images/ of 4-channel PNGs (+ labels/, split lists)
    images = _first(subs, "images", "image", "imgs", "img")
    if images is not None and _has_4ch_png(images):
        frames = mfnet_frames(p, images, _first(subs, "labels", "label"), split)
        return FileSequence(frames, layout="mfnet", source=p, scheme=MFNET, split=split, **common)
    # MFNet as CMX: RGB/ Modal/ Label/
    if "rgb" in subs and "modal" in subs:
        frames = pair_frames(subs["rgb"], subs["modal"], _first(subs, "label", "labels"), root=p, split=split,
                             allow_unmatched=allow_unmatched)
        return FileSequence(frames, layout="mfnet-cmx", source=p, scheme=MFNET, split=split, **common)
    # FMB: Visible/ Infrared/ (exact capitalisation, as shipped) (+ Label/)
    names = {s.name for s in subs.values()}
    if "Visible" in names and "Infrared" in names:
        frames = pair_frames(subs["visible"], subs["infrared"], _first(subs, "label", "labels"),
                             allow_unmatched=allow_unmatched)
        if _mfnet_like([f.name for f in frames]):  # MSRS ships the same folders with MFNet names/classes
            return FileSequence(frames, layout="msrs", source=p, scheme=MFNET, split=split, **common)
        return FileSequence(frames, layout="fmb", source=p, scheme=FMB, split=split, **common)
    # PST900: rgb/ thermal/ with labels/ or thermal_raw/ (plain rgb/+thermal/ is a generic pair)
    if "rgb" in subs and ("thermal" in subs or "thermal_raw" in subs) and (
            "labels" in subs or "thermal_raw" in subs or "depth" in subs):
        th = subs.get("thermal_raw") if raw_thermal or "thermal" not in subs else subs["thermal"]
        if raw_thermal and th is None:
            raise UnknownLayoutError(f"{p}: raw_thermal asked for but there is no thermal_raw/ folder")
        frames = pair_frames(subs["rgb"], th, subs.get("labels"), allow_unmatched=allow_unmatched)
        return FileSequence(frames, layout="pst900", source=p, scheme=PST900, split=split, **common)
    return None


def _open_paired_dirs(p: Path, subs: dict[str, Path], *, split: str | None, allow_unmatched: bool,
                      common: dict[str, Any]) -> BaseSequence | None:
    """One EO and one IR folder found by name (the split may sit inside each, as in LLVIP), else
    None; several candidates of either are refused."""
    eo_dirs = [d for n, d in subs.items() if modality_of(d.name) == "eo" and n not in LABEL_DIRS]
    ir_dirs = [d for n, d in subs.items() if modality_of(d.name) == "ir" and n not in LABEL_DIRS]
    eo_dirs = [d for d in eo_dirs if list_images(d)] or eo_dirs
    ir_dirs = [d for d in ir_dirs if list_images(d)] or ir_dirs
    if len(eo_dirs) == 1 and len(ir_dirs) == 1 and not list_images(eo_dirs[0]):
        # LLVIP: visible/{train,test}/ + infrared/{train,test}/ (the split sits inside each modality)
        eo_subs, ir_subs = _ci(eo_dirs[0]), _ci(ir_dirs[0])
        inner = [s for s in SPLIT_DIRS if s in eo_subs and s in ir_subs]
        if inner:
            if split is not None and split.lower() not in inner:
                raise UnknownLayoutError(f"{p}: no split folder {split!r} in {eo_dirs[0].name}/; found "
                                         f"{', '.join(inner)}")
            chosen = split.lower() if split is not None else inner[0]
            label_root = _label_dir(p)
            label_dir = _first(_ci(label_root), chosen) if label_root is not None else None
            frames = pair_frames(eo_subs[chosen], ir_subs[chosen], label_dir, allow_unmatched=allow_unmatched)
            return FileSequence(frames, layout="folders", source=p, scheme=sidecar_scheme(p), split=chosen,
                                **common)
    if len(eo_dirs) == 1 and len(ir_dirs) == 1:
        frames = pair_frames(eo_dirs[0], ir_dirs[0], _label_dir(p), root=p,
                             split=split if split and (p / f"{split}.txt").is_file() else None,
                             allow_unmatched=allow_unmatched)
        has_labels = any(f.label is not None for f in frames)
        scheme = sidecar_scheme(p)
        if scheme is None and has_labels and _mfnet_like([f.name for f in frames]):
            scheme = MFNET
        return FileSequence(frames, layout="folders", source=p, scheme=scheme, split=split, **common)
    if eo_dirs and ir_dirs:
        raise UnknownLayoutError(
            f"{p}: several EO/IR folder candidates (EO: {', '.join(sorted(d.name for d in eo_dirs))}; IR: "
            f"{', '.join(sorted(d.name for d in ir_dirs))}); open the pair explicitly: "
            f"open_sequence((eo_folder, ir_folder))")
    return None


SIDECARS = ("sequence.json", "dataset.json", "demo.json", "meta.json", "classes.json")


def _sidecars(root: Path):
    """(name, path, JSON object) of each readable sidecar beside the folders; unreadable or
    non-object files are skipped (a sidecar is a hint, never a reason to refuse the folder)."""
    for name in SIDECARS:
        path = root / name
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict):
            yield name, path, meta


def sidecar_scheme(root: Path) -> ClassScheme | None:
    """Class scheme named by a JSON file beside the folders ({"class_scheme": "mfnet"} or
    {"class_names": [...], "palette": [[r, g, b], ...]}), e.g. our demo's demo.json."""
    for _, _, meta in _sidecars(root):
        key = meta.get("class_scheme")
        if isinstance(key, str) and key in SCHEMES:
            return SCHEMES[key]
        try:
            if "class_names" in meta and "palette" in meta:
                return ClassScheme.from_dict({"name": key or root.name, **meta})
        except (KeyError, TypeError, ValueError):
            continue
    return None


def sidecar_ir_scale(root: Path) -> LinearScale | None:
    """The IR scale a sidecar JSON beside the folders states in its `ir` block ({"units": "centikelvin"},
    see radiometry.scale_from_meta), e.g. the demo's demo.json; None when none does."""
    for name, path, meta in _sidecars(root):
        if not isinstance(meta.get("ir"), dict):
            continue
        try:
            scale = scale_from_meta(meta["ir"], name)
        except ValueError as exc:
            raise SequenceError(f"{path}: {exc}") from None
        if scale is not None:
            return scale
    return None


_MFNET_NAME = re.compile(r"^\d{5}[DN](_flip)?$")


def _mfnet_like(names: list[str]) -> bool:
    """MFNet / MSRS frame names are 5 digits + D(ay) / N(ight): 00001D."""
    return bool(names) and sum(bool(_MFNET_NAME.match(n)) for n in names) >= 0.8 * len(names)


def _has_4ch_png(folder: Path) -> bool:
    pngs = [v for v in list_images(folder).values() if v.suffix.lower() == ".png"]
    return bool(pngs) and png_channels(min(pngs)) == 4


def _videos(p: Path) -> tuple[Path, Path] | None:
    try:
        files = [Path(e.path) for e in os.scandir(p) if e.is_file() and Path(e.name).suffix.lower() in VIDEO_EXTS]
    except OSError:
        return None
    eo = [f for f in files if modality_of(f.stem) == "eo"]
    ir = [f for f in files if modality_of(f.stem) == "ir"]
    if len(eo) == 1 and len(ir) == 1:
        return eo[0], ir[0]
    return None


__all__ = ["LAYOUTS", "open_sequence", "modality_of", "split_lists"]
