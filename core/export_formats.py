"""Masks in the formats other tools import: COCO JSON with RLE masks, and CVAT's "Segmentation mask 1.1".

COCO (`export_coco`, one JSON file in COCO's instance format, read back with pycocotools):
  - Instance style: every 8-connected component of every class other than background (id 0) is one
    annotation; `per_class=True` makes one annotation per class per frame instead (semantic style).
  - `segmentation` is compressed RLE (pycocotools), with `area`, `bbox` [x, y, w, h] and `iscrowd` 0
    (COCO's evaluation ignores crowd regions, and these are real objects).
  - `categories` are classes 1..N-1 under their own ids (category_id == class id, 0 stays
    background), with an extra `color` [r, g, b]; `supercategory` is the scheme's name.
  - `images` hold `file_name` (the EO file relative to the JSON where the sequence has one per frame,
    else `<frame>.png`; `copy_images` writes `images/eo/` and `images/ir/` beside it), `width`,
    `height`, `frame_name`, `frame_index`, `frame_origin`, and on recordings `timestamp_ns`,
    `ir_timestamp_ns` and `date_captured` (the EO stamp, UTC).
  - `info.frame_origin` holds every frame's origin, frames left out included.

CVAT / Pascal VOC (`export_cvat`, a folder in the layout of CVAT's "Segmentation mask 1.1"):
    labelmap.txt                         `# label:color_rgb:parts:actions`, one class a line, id order
    ImageSets/Segmentation/default.txt   the frames written, one name a line
    SegmentationClass/<frame>.png        RGB: each pixel its class colour
    SegmentationObject/<frame>.png       indexed PNG (VOC palette): pixel = object number 1..254, the
                                         components above, largest first; 0 background
    frames.json                          every frame's origin
  Unlabelled pixels (255) take VOC's void colour 224,224,192 in both masks (listed as `ignored` in
  labelmap.txt when a written frame has any); objects past the 254th of a frame are void there too.

Both export what `export.frame_content` picks for each frame (corrections, then propagated labels and
predictions as the include_* options say) and leave out frames with no labels at all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from csknet_studio.core.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError, CSKNetError, ExportError
from csknet_studio.core.export import Progress, frame_content
from csknet_studio.core.export_read import FRAMES_JSON
from csknet_studio.core.label_source import LabelSource, PredictFn
from csknet_studio.core.palette_png import write_palette_png
from csknet_studio.core.project import utc_now
from csknet_studio.core.version import __version__

COCO_FORMAT = "csknet-studio-coco"
VOC_VOID = (224, 224, 192)  # Pascal VOC's colour for "void / ignored" (palette index 255)
MAX_OBJECTS = 254  # SegmentationObject numbers objects 1..254 in 8 bits (0 background, 255 void)
LABELMAP = "labelmap.txt"
LABELMAP_HEADER = "# label:color_rgb:parts:actions"
Cancel = Callable[[], bool] | None


# --- shared --------------------------------------------------------------------------------------
def file_stem(name: str) -> str:
    """A frame name as a file name (the PNG export's rule: path separators become '_')."""
    return name.replace("/", "_").replace("\\", "_")


def _cancelled(cancel: Cancel, what: str) -> None:
    if cancel is not None and cancel():
        raise CancelledError(f"export to {what} cancelled")


def _expected_frames(session: LabelSource, include_predictions: bool, include_propagated: bool,
                     predict: PredictFn | None) -> int:
    """How many frames can carry labels (an upper bound for the free-space check)."""
    kept = {Origin.CORRECTED} | ({Origin.PROPAGATED} if include_propagated else set())
    if include_predictions:
        kept |= {Origin.PREDICTED} | ({Origin.PROPAGATED, Origin.EMPTY} if predict is not None else set())
    every = getattr(session, "origins", None)
    found = every() if callable(every) else [session.origin(i) for i in range(len(session))]
    return max(1, sum(1 for o in found if o in kept))


def check_free_space(folder: Path, need: int, target: Path) -> None:
    """Refuse a write of about `need` bytes that cannot fit in `folder`."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need:
        raise ExportError(f"not enough free space to export {target}: it needs about {need / 1e6:.1f} MB and "
                          f"{folder} has {free / 1e6:.1f} MB free; free some space or choose another disk")


def labelled_frames(session: LabelSource, include_predictions: bool, include_propagated: bool,
                    predict: PredictFn | None, cancel: Cancel, what: str, origins: dict[str, str],
                    progress: Progress | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, labels) of each frame that has a labelled pixel; `origins` gets every frame's origin,
    and progress(i + 1, n) is called once the caller is done with frame i (or it was skipped)."""
    scheme: ClassScheme = session.scheme
    n = len(session)
    for i in range(n):
        _cancelled(cancel, what)
        origin, lab = frame_content(session, i, include_predictions, include_propagated, predict)
        origins[session.names[i]] = origin
        if lab is not None and not (lab == scheme.ignore_index).all():
            yield i, _checked(lab, scheme, i, session.names[i])
        if progress is not None:
            progress(i + 1, n)


def _checked(lab: np.ndarray, scheme: ClassScheme, i: int, name: str) -> np.ndarray:
    """`lab` as C-contiguous uint8; ExportError when it holds an id outside the scheme."""
    lab = np.ascontiguousarray(lab, dtype=np.uint8)
    bad = np.setdiff1d(np.unique(lab), [*range(scheme.num_classes), scheme.ignore_index])
    if bad.size:
        raise ExportError(f"frame {i + 1} ({name}) holds class id(s) {bad.tolist()[:5]}, outside scheme "
                          f"{scheme.name!r} (ids 0-{scheme.num_classes - 1}, {scheme.ignore_index} = unlabelled)")
    return lab


def objects(labels: np.ndarray, ignore_index: int, per_class: bool = False
            ) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(class id, y0, x0, bool crop) of each object: each 8-connected component of each class other
    than background 0 and `ignore_index`, in class order (per_class: the whole class at once)."""
    for c in np.unique(labels).tolist():
        if c == 0 or c == ignore_index:
            continue
        m = labels == c
        if per_class:
            ys, xs = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
            yield c, int(ys[0]), int(xs[0]), m[ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1]
            continue
        n, cc, stats, _ = cv2.connectedComponentsWithStats(m.view(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h = (int(v) for v in stats[k, :4])
            yield c, y, x, cc[y: y + h, x: x + w] == k


def _relative(target: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(Path(target).resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(target).resolve().as_posix()


# --- COCO ----------------------------------------------------------------------------------------
def _coco_header(session: LabelSource, path: Path, per_class: bool) -> dict[str, Any]:
    scheme: ClassScheme = session.scheme
    src = getattr(session, "source", None)
    ck = getattr(getattr(session, "checkpoint", None), "weights_hash", "") or ""
    info = {"description": f"CSKNet Studio labels of {Path(src).name if src else 'a sequence'}",
            "version": "1.0", "year": dt.datetime.now(dt.UTC).year, "contributor": "", "url": "",
            "date_created": utc_now(), "format": COCO_FORMAT, "app_version": __version__,
            "scheme": scheme.name, "ignore_index": scheme.ignore_index, "checkpoint_hash": ck,
            "source": _relative(src, path.parent) if src is not None and not str(src).startswith("<") else "",
            "annotation_style": "class" if per_class else "component"}
    cats = [{"id": c, "name": scheme.class_names[c], "supercategory": scheme.name,
             "color": [int(v) for v in scheme.palette[c]]} for c in range(1, scheme.num_classes)]
    return {"info": info, "licenses": [], "categories": cats, "images": [], "annotations": []}


def _image_entry(session: LabelSource, i: int, shape: tuple[int, int], file_name: str, origin: str,
                 stamps: dict[str, Any]) -> dict[str, Any]:
    img: dict[str, Any] = {"id": i + 1, "file_name": file_name, "width": int(shape[1]), "height": int(shape[0]),
                           "frame_name": session.names[i], "frame_index": i, "frame_origin": origin}
    for key, values in stamps.items():
        img[key] = int(values[i])
    if "timestamp_ns" in img:
        when = dt.datetime.fromtimestamp(img["timestamp_ns"] / 1e9, dt.UTC)
        img["date_captured"] = when.isoformat().replace("+00:00", "Z")
    return img


def _copy_frame(session: LabelSource, i: int, root: Path) -> tuple[str, str | None, int]:
    """Write frame i's EO and IR as PNG under root/images/{eo,ir}/; (EO or IR file, IR file, bytes)."""
    fp = session.sequence[i]
    stem = file_stem(session.names[i])
    names: dict[str, str] = {}
    size = 0
    for key, img in (("eo", fp.eo), ("ir", fp.ir)):
        if img is None:
            continue
        ok, buf = cv2.imencode(".png", img[..., ::-1] if img.ndim == 3 else img)
        if not ok:
            raise ExportError(f"could not encode the {key} image of frame {i + 1} ({session.names[i]}) as PNG")
        rel = f"images/{key}/{stem}.png"
        atomic_write_bytes(root / rel, buf.tobytes())
        names[key] = rel
        size += len(buf)
    return names.get("eo", names.get("ir", f"{stem}.png")), names.get("ir") if "eo" in names else None, size


def _source_files(session: LabelSource, root: Path) -> list[str | None]:
    """Each frame's EO (or combined RGB+T) file relative to `root`, where the sequence has one."""
    frames = getattr(getattr(session, "sequence", None), "frames", None)
    if not isinstance(frames, list) or len(frames) != len(session):
        return [None] * len(session)
    out: list[str | None] = []
    for f in frames:
        p = getattr(f, "eo", None) or getattr(f, "combined", None)
        out.append(_relative(p, root) if p is not None else None)
    return out


def rle_counts(shape: tuple[int, int], y: int, x: int, crop: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE (column-major runs, zeros first) of `crop` placed at (y, x) in a frame
    of `shape`: only the columns the object spans are scanned, so a speck costs its column band,
    not a whole frame."""
    height, width = int(shape[0]), int(shape[1])
    band = np.zeros((height, crop.shape[1]), bool)
    band[y: y + crop.shape[0]] = crop
    flat = band.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    if flat[0]:
        runs.insert(0, 0)
    runs[0] += x * height  # the empty columns before the band
    tail = (width - x - crop.shape[1]) * height  # and after it
    if len(runs) % 2 == 0:  # the band ends inside the object: the tail is a new run of zeros
        if tail:
            runs.append(tail)
    else:
        runs[-1] += tail
    return runs


def _rle(mask_utils: Any, shape: tuple[int, int], y: int, x: int, crop: np.ndarray
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JSON form, pycocotools' own form) of one object's compressed RLE."""
    rle = mask_utils.frPyObjects({"size": [int(shape[0]), int(shape[1])],
                                  "counts": rle_counts(shape, y, x, crop)}, int(shape[0]), int(shape[1]))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}, rle


def export_coco(
    session: LabelSource,
    path: str | os.PathLike,
    *,
    per_class: bool = False,
    copy_images: bool = False,
    include_predictions: bool = True,
    include_propagated: bool = True,
    predict: PredictFn | None = None,
    progress: Progress | None = None,
    cancel: Cancel = None,
) -> Path:
    """Write the session's labels as one COCO JSON file (module docstring); atomic: a cancel or a
    failure leaves any earlier file at `path` as it was (copied images already written stay)."""
    path = Path(path)
    coco = _coco_header(session, path, per_class)
    seq = getattr(session, "sequence", None)
    n = len(session)
    stamps = {key: np.asarray(v, np.int64) for key, attr in (("timestamp_ns", "timestamps_ns"),
                                                           ("ir_timestamp_ns", "ir_timestamps_ns"))
              if (v := getattr(seq, attr, None)) is not None and len(v) == n}
    origins: dict[str, str] = {}
    ignore = session.scheme.ignore_index
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files = _source_files(session, path.parent)
        expected = _expected_frames(session, include_predictions, include_propagated, predict)
        for k, (i, lab) in enumerate(labelled_frames(session, include_predictions, include_propagated, predict,
                                                     cancel, str(path), origins, progress)):
            name = files[i] or f"{file_stem(session.names[i])}.png"
            ir_name = None
            if copy_images:
                name, ir_name, size = _copy_frame(session, i, path.parent)
                if k == 0:
                    check_free_space(path.parent, size * expected, path)
            img = _image_entry(session, i, lab.shape, name, origins[session.names[i]], stamps)
            if ir_name is not None:
                img["ir_file_name"] = ir_name
            coco["images"].append(img)
            for c, y, x, crop in objects(lab, ignore, per_class):
                seg, rle = _rle(mask_utils, lab.shape, y, x, crop)
                coco["annotations"].append({
                    "id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": c,
                    "segmentation": seg, "area": int(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
        _cancelled(cancel, str(path))
        coco["info"]["frame_origin"] = origins
        text = json.dumps(coco, separators=(",", ":")) + "\n"
        check_free_space(path.parent, len(text) + (64 << 10), path)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except CancelledError as exc:
        raise CancelledError(f"{exc}; any earlier {path.name} is unchanged") from None
    except CSKNetError:
        raise
    except (OSError, ValueError) as exc:
        raise ExportError(f"could not export COCO labels to {path}: {exc}; any earlier file is left intact") from exc
    return path


# --- CVAT / Pascal VOC ---------------------------------------------------------------------------
def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: Pascal VOC's colour map (the bits of the index spread over R, G, B)."""
    idx = np.arange(n)
    pal = np.zeros((n, 3), np.int64)
    for shift in range(7, -1, -1):
        for ch in range(3):
            pal[:, ch] |= ((idx >> ch) & 1) << shift
        idx = idx >> 3
    return pal.astype(np.uint8)


def _check_cvat_scheme(scheme: ClassScheme) -> None:
    for c, name in enumerate(scheme.class_names):
        if ":" in name or "\n" in name:
            raise ExportError(f"class {c} ({name!r}) has a ':' or a line break, which labelmap.txt cannot hold")
    seen: dict[tuple[int, int, int], str] = {}
    for name, colour in zip(scheme.class_names, scheme.palette, strict=True):
        if tuple(colour) in seen:
            raise ExportError(f"classes {seen[tuple(colour)]!r} and {name!r} share the colour {colour}; a colour "
                              "mask tells classes apart by colour only (give each class its own colour)")
        seen[tuple(colour)] = name


def object_numbers(labels: np.ndarray, ignore_index: int) -> tuple[np.ndarray, int]:
    """(H, W) uint8 SegmentationObject ids (objects 1..254 largest first, 0 background, 255 void)
    and how many objects did not fit (they are void too)."""
    found = sorted(objects(labels, ignore_index), key=lambda o: -int(o[3].sum()))
    ids = np.where(labels == ignore_index, 255, 0).astype(np.uint8)
    for k, (_c, y, x, crop) in enumerate(found):
        ids[y: y + crop.shape[0], x: x + crop.shape[1]][crop] = k + 1 if k < MAX_OBJECTS else 255
    return ids, max(0, len(found) - MAX_OBJECTS)


def _write_cvat_frame(root: Path, stem: str, lab: np.ndarray, lut: np.ndarray, ignore: int, with_objects: bool,
                      inst_palette: np.ndarray) -> tuple[int, int]:
    """Frame's SegmentationClass (and SegmentationObject) PNGs; (bytes written, objects made void)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(lut[lab][..., ::-1]))
    if not ok:
        raise ExportError(f"could not encode the mask of {stem} as PNG")
    atomic_write_bytes(root / "SegmentationClass" / f"{stem}.png", buf.tobytes())
    size, dropped = len(buf), 0
    if with_objects:
        ids, dropped = object_numbers(lab, ignore)
        target = root / "SegmentationObject" / f"{stem}.png"
        write_palette_png(target, ids, inst_palette)
        size += target.stat().st_size
    return size, dropped


def export_cvat(
    session: LabelSource,
    out_dir: str | os.PathLike,
    *,
    with_objects: bool = True,
    include_predictions: bool = True,
    include_propagated: bool = True,
    predict: PredictFn | None = None,
    progress: Progress | None = None,
    cancel: Cancel = None,
) -> Path:
    """Write a CVAT "Segmentation mask 1.1" folder (module docstring). Each file is atomic; a cancel
    keeps the masks written and leaves labelmap.txt and the frame list as they were."""
    out = Path(out_dir)
    scheme: ClassScheme = session.scheme
    _check_cvat_scheme(scheme)
    ignore = scheme.ignore_index
    lut = np.zeros((256, 3), np.uint8)
    lut[: scheme.num_classes] = scheme.palette_array()
    lut[ignore] = VOC_VOID
    inst_palette = voc_palette()
    origins: dict[str, str] = {}
    written: list[str] = []
    void = False
    dropped: dict[str, int] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        expected = _expected_frames(session, include_predictions, include_propagated, predict)
        for i, lab in labelled_frames(session, include_predictions, include_propagated, predict, cancel,
                                      str(out), origins, progress):
            if not void and (lab == ignore).any():
                if VOC_VOID in {tuple(c) for c in scheme.palette}:
                    raise ExportError(f"a class of scheme {scheme.name!r} has VOC's void colour {VOC_VOID}, "
                                      f"which marks the unlabelled pixels of frame {i + 1} ({session.names[i]})")
                void = True
            stem = file_stem(session.names[i])
            size, lost = _write_cvat_frame(out, stem, lab, lut, ignore, with_objects, inst_palette)
            if lost:
                dropped[session.names[i]] = lost
            if not written:
                check_free_space(out, size * expected, out)
            written.append(stem)
        _cancelled(cancel, str(out))
        lines = [LABELMAP_HEADER, *(f"{name}:{','.join(map(str, colour))}::"
                                    for name, colour in zip(scheme.class_names, scheme.palette, strict=True))]
        if void:
            lines.append(f"ignored:{','.join(map(str, VOC_VOID))}::")
        atomic_write_text(out / "ImageSets" / "Segmentation" / "default.txt", "".join(f"{s}\n" for s in written))
        atomic_write_text(out / LABELMAP, "\n".join(lines) + "\n")
        record = {"frames": origins, **({"objects_made_void": dropped} if dropped else {})}
        atomic_write_text(out / FRAMES_JSON, json.dumps(record, indent=1) + "\n")
    except CancelledError as exc:
        raise CancelledError(f"{exc}; the masks written so far are kept, labelmap.txt and the frame list "
                             "are unchanged") from None
    except CSKNetError:
        raise
    except OSError as exc:
        raise ExportError(f"could not write CVAT masks to {out}: {exc}") from exc
    return out
