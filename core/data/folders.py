"""Image-folder layouts: MFNet (4-channel PNGs, or CMX's RGB/Modal/Label), PST900, FMB, generic
paired folders, and a single EO/IR pair. All become a FileSequence: one list of per-frame paths.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csknet_studio.core.classes import MFNET, ClassScheme
from csknet_studio.core.errors import (
    CorruptImageError,
    EmptySequenceError,
    SequenceError,
    UnmatchedFilesError,
)

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import (
    IMAGE_EXTS,
    list_images,
    natural_key,
    read_image,
    stems_summary,
    to_grey,
    to_label,
    to_rgb,
)
from .thermal import read_ir_file


@dataclass(frozen=True)
class FrameFiles:
    """The files of one frame. `combined` is an MFNet RGB+T PNG (then eo/ir are None)."""

    name: str
    eo: Path | None = None
    ir: Path | None = None
    label: Path | None = None
    combined: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.eo, self.ir, self.label, self.combined) if p is not None]


class FileSequence(BaseSequence):
    """Frames decoded lazily from per-frame image files."""

    def __init__(
        self,
        frames: list[FrameFiles],
        *,
        layout: str,
        source: Path,
        scheme: ClassScheme | None = None,
        alignment: Alignment | None = None,
        split: str | None = None,
        **cache_kw: Any,
    ):
        self._frames = list(frames)
        self._has_labels = any(f.label is not None for f in self._frames)
        super().__init__(layout=layout, source=source, names=[f.name for f in self._frames], scheme=scheme,
                         alignment=alignment, split=split, **cache_kw)
        self._precheck()
        self._probe()

    def _has_native_labels(self) -> bool:
        return self._has_labels

    @property
    def frames(self) -> list[FrameFiles]:
        return list(self._frames)

    def _precheck(self) -> None:
        """Cheap open-time check (one stat per file): empty or missing files mark their frame bad now."""
        for i, f in enumerate(self._frames):
            for p in (f.eo, f.ir, f.combined):
                if p is None:
                    continue
                try:
                    size = os.stat(p).st_size
                except OSError:
                    reason = f"{p}: file not found"
                else:
                    if size > 0:
                        continue
                    reason = f"{p}: empty file (0 bytes)"
                self._mark_bad(i, reason)
                break

    def _read_raw(self, i: int) -> RawFrame:
        f = self._frames[i]
        radiometry = None
        if f.combined is not None:
            img = read_image(f.combined)
            if img.ndim != 3 or img.shape[2] != 4:
                got = 1 if img.ndim == 2 else img.shape[2]
                raise CorruptImageError(f"{f.combined}: expected a 4-channel MFNet PNG (R, G, B, thermal), "
                                        f"got {got} channel(s)", str(f.combined))
            eo = to_rgb(img[:, :, :3])
            ir = to_grey(img[:, :, 3])
        else:
            eo = None if f.eo is None else to_rgb(read_image(f.eo))
            ir = None
            if f.ir is not None:  # FLIR R-JPEGs and TIFFs may say how their counts read as °C
                ir, radiometry = read_ir_file(f.ir)
        label = None
        if f.label is not None:
            # A broken label must not blank a good image pair: the frame opens without its label.
            try:
                label = to_label(read_image(f.label), self.scheme, f.label)
            except CorruptImageError as exc:
                self._mark_label_error(i, str(exc))
        return RawFrame(eo, ir, label, radiometry)


# ------------------------------------------------------------------------------------ builders
def _ci(folder: Path) -> dict[str, Path]:
    """Sub-folders of `folder` by lower-case name (dataset folder capitalisation varies)."""
    try:
        return {e.name.lower(): Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")}
    except OSError:
        return {}


def _first(subs: dict[str, Path], *names: str) -> Path | None:
    for n in names:
        if n in subs:
            return subs[n]
    return None


LABEL_DIRS = ("labels", "label", "gt", "groundtruth", "masks", "mask", "annotations", "segmentationclass")


def read_split(root: Path, split: str) -> list[str]:
    """Names listed in `root/<split>.txt` (MFNet/CMX split lists; lines may carry paths/extensions)."""
    path = root / f"{split}.txt"
    if not path.is_file():
        found = sorted(p.stem for p in root.glob("*.txt"))
        raise SequenceError(f"{root}: no split list {split}.txt; available splits: {', '.join(found) or 'none'}")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SequenceError(f"{path}: cannot read split list ({exc})") from None
    names = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            token = line.split()[0]
            names.append(Path(token).stem if Path(token).suffix.lower() in IMAGE_EXTS else Path(token).name)
    if not names:
        raise EmptySequenceError(f"{path}: split list is empty")
    return names


def split_lists(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("*.txt") if p.stem.lower() not in ("readme", "license", "requirements"))


def _select(names_all: dict[str, Any], root: Path, split: str | None, what: str) -> list[str]:
    if split is None:
        return sorted(names_all, key=natural_key)
    wanted = read_split(root, split)
    missing = [n for n in wanted if n not in names_all]
    if missing:
        raise UnmatchedFilesError(
            f"{root / (split + '.txt')}: {len(missing)} listed name(s) have no {what}: {stems_summary(missing)}",
            eo_only=missing)
    return wanted


def mfnet_frames(root: Path, images: Path, labels: Path | None, split: str | None) -> list[FrameFiles]:
    """RTFNet-style MFNet: images/*.png hold R, G, B, thermal; labels/*.png hold ids 0..8."""
    imgs = {k: v for k, v in list_images(images).items() if v.suffix.lower() == ".png"}
    if not imgs:
        raise EmptySequenceError(f"{images}: MFNet layout but no PNG images in it")
    labs = list_images(labels) if labels else {}
    names = _select(imgs, root, split, f"image in {images}")
    return [FrameFiles(n, label=labs.get(n), combined=imgs[n]) for n in names]


def pair_frames(
    eo_dir: Path | None,
    ir_dir: Path | None,
    label_dir: Path | None = None,
    *,
    root: Path | None = None,
    split: str | None = None,
    allow_unmatched: bool = False,
) -> list[FrameFiles]:
    """Pair EO and IR files by stem. Unpaired stems raise UnmatchedFilesError listing them."""
    eo = list_images(eo_dir) if eo_dir else {}
    ir = list_images(ir_dir) if ir_dir else {}
    exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTS)
    if not eo and not ir:
        raise EmptySequenceError(f"{eo_dir} and {ir_dir} hold no images (looked for {exts})")
    if eo_dir and not eo:
        raise EmptySequenceError(f"{eo_dir}: EO folder holds no images (looked for {exts}); IR has {len(ir)}")
    if ir_dir and not ir:
        raise EmptySequenceError(f"{ir_dir}: IR folder holds no images (looked for {exts}); EO has {len(eo)}")
    labs = list_images(label_dir) if label_dir else {}
    if eo_dir and ir_dir and not set(eo) & set(ir):
        # Names that differ only by a modality tag ("0001_rgb" / "0001_ir") still pair up.
        eo2, ir2 = _rekey(eo), _rekey(ir)
        if len(set(eo2) & set(ir2)) > 0:
            eo, ir, labs = eo2, ir2, _rekey(labs)
    if eo_dir and ir_dir:
        eo_only = sorted(set(eo) - set(ir), key=natural_key)
        ir_only = sorted(set(ir) - set(eo), key=natural_key)
        if (eo_only or ir_only) and (not allow_unmatched or not set(eo) & set(ir)):
            parts = []
            if eo_only:
                parts.append(f"{len(eo_only)} in {eo_dir.name}/ without IR: {stems_summary(eo_only)}")
            if ir_only:
                parts.append(f"{len(ir_only)} in {ir_dir.name}/ without EO: {stems_summary(ir_only)}")
            raise UnmatchedFilesError(
                f"{eo_dir.parent}: EO and IR file names do not pair up ({'; '.join(parts)}). Frames pair by "
                f"file name without extension; rename or remove these files, or open with allow_unmatched=True "
                f"to keep only the {len(set(eo) & set(ir))} matched pair(s).",
                eo_only=eo_only, ir_only=ir_only)
        common = set(eo) & set(ir)
    else:
        common = set(eo or ir)
    if split is not None and root is not None:
        names = _select({n: None for n in common}, root, split, "EO/IR pair")
    else:
        names = sorted(common, key=natural_key)
    return [FrameFiles(n, eo=eo.get(n), ir=ir.get(n), label=labs.get(n)) for n in names]


_TAG = r"(?:vi|vis|visible|rgb|eo|color|colour|ir|infrared|thermal|lwir|tir|label|labels|gt|mask)"
_TAG_RE = re.compile(rf"^{_TAG}[_\-. ]+|[_\-. ]+{_TAG}$", re.IGNORECASE)


def _rekey(files: dict[str, Path]) -> dict[str, Path]:
    """Stems with a leading/trailing modality tag removed; unchanged when that would merge files."""
    out = {_TAG_RE.sub("", k) or k: v for k, v in files.items()}
    return out if len(out) == len(files) else files


def open_pair(
    eo_path: str | os.PathLike,
    ir_path: str | os.PathLike,
    label_path: str | os.PathLike | None = None,
    *,
    scheme: ClassScheme | None = None,
    alignment: Alignment | None = None,
) -> FileSequence:
    """A one-frame sequence from two image files (and a label image: ids, or colours of `scheme`)."""
    eo_p, ir_p = Path(eo_path), Path(ir_path)
    lab_p = None if label_path is None else Path(label_path)
    for p in (eo_p, ir_p, lab_p):
        if p is not None and not p.is_file():
            raise CorruptImageError(f"{p}: no such image file", str(p))
    seq = FileSequence([FrameFiles(eo_p.stem, eo=eo_p, ir=ir_p, label=lab_p)], layout="pair", source=eo_p,
                       scheme=scheme, alignment=alignment, prefetch=0)
    if seq.label_errors:  # the caller named this label file: say so now rather than drop it
        msg = seq.label_errors[0]
        seq.close()
        raise CorruptImageError(msg, str(lab_p))
    seq.origin = (str(eo_p), str(ir_p))
    return seq


def mfnet_single(path: Path, alignment: Alignment | None = None) -> FileSequence:
    """One MFNet 4-channel PNG as a one-frame sequence."""
    return FileSequence([FrameFiles(path.stem, combined=path)], layout="mfnet", source=path, scheme=MFNET,
                        alignment=alignment, prefetch=0)
