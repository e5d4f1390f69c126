"""Export a session's labels: one self-describing HDF5 file, or MFNet-style palette PNG masks.

HDF5 layout (axes `tyx`, one chunk per frame, gzip or lzf):
    /labels          (T, H, W) uint8 class ids, 255 = ignore; attrs axistags (ilastik JSON), axes
    /exported_data   soft link -> /labels (ilastik / Fiji open it with their defaults)
    /corrected       (T,) bool: a person corrected or accepted the frame
    /frame_origin    (T,) utf-8 strings: where each frame's labels come from (FRAME_ORIGINS)
    /frame_names     (T,) utf-8 strings
    /timestamps_ns   (T,) int64 EO stamps, and /ir_timestamps_ns the IR ones (recordings only)
    /frame_shape     (T, 2) int32 (height, width) of each frame, only when the frames differ in size
                     (stills from several cameras): every (T, H, W...) dataset is then as large as the
                     largest frame, each frame at its top left, padded with 255 (labels), 0 (images,
                     probabilities) or NaN (°C); our readers crop it back
    /probabilities   (T, C, H, W) float16            (optional)
    /eo (T, H, W, 3), /ir (T, H, W)                  (optional copies of the imagery)
    /ir_celsius      (T, H, W) float32 °C, attrs units "degC" and the conversion (radiometric IR, with the copies)
    file attrs       class_names, palette (N, 3) uint8, ignore_index, axes, scheme, source (relative
                     to the file), checkpoint_hash, mode, app_version, created (ISO 8601 UTC), format
The file is written beside the target by a child process (core/export_process.py) and renamed into
place: a cancel, a failure or a crash of the HDF5 library leaves any earlier file as it was and no
temporary file behind; one left by a killed export is removed by the next export to that path.
The format is bounded to HDF5 1.10 (`export_process.LIBVER`), so HDF5 1.10 / 1.12 / 1.14 readers open it too.

What each frame exports: a corrected frame its correction; a propagated frame its propagated labels
when `include_propagated`; any other frame the model's prediction when `include_predictions` (the
session's, else `predict(i)`, e.g. a forward pass); else 255. PNG export writes `frames.json`
beside the masks with the same per-frame origins.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from csknet_studio.core.atomic import atomic_path
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError, CSKNetError, ExportError
from csknet_studio.core.export_read import FRAME_ORIGINS, FRAMES_JSON
from csknet_studio.core.export_writer import WriterFailed, WriterProcess
from csknet_studio.core.label_source import LabelSource, PredictFn
from csknet_studio.core.modes import Mode
from csknet_studio.core.palette_png import write_palette_png
from csknet_studio.core.project import utc_now
from csknet_studio.core.version import __version__

FORMAT = "csknet-studio-labels"
FORMAT_VERSION = 1
AXISTAGS = json.dumps({"axes": [
    {"key": "t", "typeFlags": 8, "resolution": 0, "description": ""},
    {"key": "y", "typeFlags": 2, "resolution": 0, "description": ""},
    {"key": "x", "typeFlags": 2, "resolution": 0, "description": ""},
]})
Progress = Callable[[int, int], None]
ProbabilitySource = Callable[[int], np.ndarray] | np.ndarray | None


def _relative(target: Path | None, start: Path) -> str:
    if target is None or str(target).startswith("<"):
        return ""
    try:
        return os.path.relpath(Path(target).resolve(), start.resolve())
    except ValueError:  # another drive on Windows
        return str(Path(target).resolve())


def _check_cancel(cancel: Callable[[], bool] | None, path: Path) -> None:
    if cancel is not None and cancel():
        raise CancelledError(f"export to {path} cancelled; any earlier {path.name} is unchanged")


def frame_content(session: LabelSource, i: int, include_predictions: bool = True, include_propagated: bool = True,
                  predict: PredictFn | None = None) -> tuple[str, np.ndarray | None]:
    """(origin, labels) frame i exports with; labels None means all 255 ("unlabelled")."""
    origin = session.origin(i)
    if origin is Origin.CORRECTED or (origin is Origin.PROPAGATED and include_propagated):
        return origin.value, session.labels(i)
    if include_predictions:
        if origin is Origin.PREDICTED:
            return "predicted", session.labels(i)
        pred = session.prediction(i) if origin is Origin.PROPAGATED else None
        if pred is None and predict is not None:
            pred = predict(i)
        if pred is not None:
            return "predicted", np.asarray(pred, np.uint8)
    return "unlabelled", None


def export_hdf5(
    session: LabelSource,
    path: str | os.PathLike,
    *,
    compression: str = "gzip",
    compression_level: int = 4,
    include_probabilities: ProbabilitySource = None,
    copy_images: bool = False,
    checkpoint_hash: str | None = None,
    mode: Mode | str = Mode.BOTH,
    include_predictions: bool = True,
    include_propagated: bool = True,
    predict: PredictFn | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write the session's labels to `path`: corrections, propagated labels and predictions as the
    include_* options say (module docstring), else 255; `frame_origin` records which per frame.

    include_probabilities: None, a (T, C, H, W) array, or a callable frame -> (C, H, W); it is called
    before the frame's labels are read, so it may also `session.set_prediction` that frame.
    predict: frame -> labels (or None) for frames the session holds no prediction of.
    The file is written by a child process (core/export_process.py), so an HDF5 crash costs the
    export only. Raises CancelledError (cancel() returned True) or ExportError (disk full, too little
    free space, the writer crashed, ...); either way an earlier file at `path` is left intact and
    the temporary file is removed. Call from the thread that owns the session."""
    path = Path(path)
    if compression not in ("gzip", "lzf"):
        raise ValueError(f"compression must be 'gzip' or 'lzf', got {compression!r}")
    n = len(session)
    if n == 0:
        raise ExportError(f"cannot export {path}: the sequence has no frames")
    writer: WriterProcess | None = None
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        tmp = _new_temp(path)
        h, w = session.frame_shape(0)
        spec = _spec(session, n, (h, w), compression, compression_level, copy_images)

        def on_cancel() -> None:
            _check_cancel(lambda: True, path)

        def content(i: int) -> tuple[str, np.ndarray | None]:
            return frame_content(session, i, include_predictions, include_propagated, predict)

        writer = WriterProcess(tmp, spec, progress, cancel, on_cancel)
        try:
            meta = _send_frames(writer, session, path, (h, w), include_probabilities, copy_images, cancel, content)
        except _MixedSizes:  # frames differ in size (stills from several cameras): pad them all
            writer.close()
            shapes = [tuple(session.frame_shape(i)) for i in range(n)]
            h, w = max(s[0] for s in shapes), max(s[1] for s in shapes)
            spec = {**spec, "h": h, "w": w,
                    "frame_arrays": {**spec["frame_arrays"], "frame_shape": np.asarray(shapes, np.int32)}}
            writer = WriterProcess(tmp, spec, progress, cancel, on_cancel)
            meta = _send_frames(writer, session, path, (h, w), include_probabilities, copy_images, cancel, content,
                                shapes)
        _check_cancel(cancel, path)
        writer.finish(*meta, _attrs(session, path, checkpoint_hash, Mode(mode)), list(FRAME_ORIGINS))
        _check_cancel(cancel, path)
        os.replace(tmp, path)
    except CSKNetError:
        raise
    except WriterFailed as exc:
        what = ("; the app and your corrections are unaffected" if exc.crashed else "")
        raise ExportError(f"could not export labels to {path}: {exc.text}{what}; any earlier file is left "
                          "intact") from None
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise ExportError(f"could not export labels to {path}: {exc}; any earlier file is left intact") from exc
    finally:
        if writer is not None:
            writer.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return path


def _spec(session: LabelSource, n: int, shape: tuple[int, int], compression: str, level: int,
          copy_images: bool) -> dict[str, Any]:
    """What the writer needs to lay the file out: sizes, compression, attributes, per-frame arrays."""
    h, w = shape
    spec: dict[str, Any] = {"n": n, "h": h, "w": w, "compression": compression, "level": int(level),
                            "label_attrs": {"axistags": AXISTAGS, "axes": "tyx",
                                            "ignore_index": session.scheme.ignore_index}}
    # A recording's pairs keep their camera stamps: (T,) int64 datasets beside the labels.
    seq = getattr(session, "sequence", None)
    spec["frame_arrays"] = {k: np.asarray(v, np.int64) for k in ("timestamps_ns", "ir_timestamps_ns")
                            if (v := getattr(seq, k, None)) is not None and len(v) == n}
    rad = getattr(seq, "radiometry", None) if copy_images else None
    if rad is not None:  # radiometric IR: its temperatures go beside the raw counts
        spec["dataset_attrs"] = {"ir_celsius": {"units": "degC", "axes": "tyx",
                                                "conversion": json.dumps(rad.to_dict())}}
    return spec


TEMP_SUFFIX = ".h5.tmp"
STALE_AFTER_S = 24 * 3600  # a temp file without a readable writer pid is stale after a day


def _new_temp(path: Path) -> Path:
    """`.<name>.<pid>.<random>.h5.tmp` beside `path`: the pid says whether its writer still runs."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists and belongs to someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temp files an earlier export to `path` left behind when its process was killed: ours
    by name (`.<name>.<pid>.*.h5.tmp`), whose process is gone (or, without a pid, a day old)."""
    path = Path(path)
    prefix = f".{path.name}."
    removed: list[Path] = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        name = p.name
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        try:
            stale = (not _pid_alive(int(pid_text))) if pid_text.isdigit() and int(pid_text) != os.getpid() \
                else (not pid_text.isdigit() and now - p.stat().st_mtime > STALE_AFTER_S)
            if stale:
                p.unlink()
                removed.append(p)
        except (OSError, ValueError):
            continue
    return removed


def _check_space(path: Path, arrays: list[np.ndarray], n: int) -> None:
    """Refuse an export that cannot fit: frame 0 compressed (zlib level 1) times the frame count."""
    per_frame = sum(len(zlib.compress(np.ascontiguousarray(a).tobytes(), 1)) for a in arrays)
    need = per_frame * n + (64 << 10)  # + metadata
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < need:
        raise ExportError(f"not enough free space to export {path}: it needs about {_mb(need)} and "
                          f"{path.parent} has {_mb(free)} free; free some space or choose another disk "
                          "(any earlier file is left intact)")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class _MixedSizes(Exception):
    """A frame of another size than frame 1: the export starts again with every frame padded."""


def _pad(a: np.ndarray, h: int, w: int, fill: float, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """`a` grown to h x w along `axes` (rows, columns), new pixels `fill`; `a` itself if it fits."""
    y, x = axes
    if (a.shape[y], a.shape[x]) == (h, w):
        return a
    shape = list(a.shape)
    shape[y], shape[x] = h, w
    out = np.full(shape, fill, a.dtype)
    index = [slice(None)] * a.ndim
    index[y], index[x] = slice(0, a.shape[y]), slice(0, a.shape[x])
    out[tuple(index)] = a
    return out


def _send_frames(writer: WriterProcess, session: LabelSource, path: Path, shape: tuple[int, int],
                 probs: ProbabilitySource, copy_images: bool, cancel: Callable[[], bool] | None,
                 content: Callable[[int], tuple[str, np.ndarray | None]],
                 shapes: list[tuple[int, int]] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Compute every frame's content here and hand it to the writer; (corrected, origins, names).

    shapes: each frame's (H, W) when they differ; every array is then padded to `shape` (labels with
    the ignore id, images and probabilities with 0, °C with NaN). Without it a frame of another
    size raises _MixedSizes."""
    n = len(session)
    h, w = shape
    scheme: ClassScheme = session.scheme
    corrected = np.zeros(n, bool)
    origins: list[str] = []
    keys: tuple[str, ...] = ()
    if copy_images:
        fp0 = session.sequence[0]
        keys = tuple(k for k in ("eo", "ir") if getattr(fp0, k) is not None)
    celsius = "ir" in keys and getattr(session.sequence, "radiometry", None) is not None
    sample: dict[str, np.ndarray] = {}
    n_classes: int | None = None
    for i in range(n):
        _check_cancel(cancel, path)
        fh, fw = shapes[i] if shapes is not None else (h, w)
        p = None
        if probs is not None:
            p = np.asarray(probs(i) if callable(probs) else probs[i], dtype=np.float16)
            if shapes is None and p.ndim == 3 and p.shape[1:] != (h, w):
                raise _MixedSizes  # a wrong size is refused after the restart, against the frame's own
            if p.ndim != 3 or p.shape[1:] != (fh, fw) or (n_classes is not None and p.shape[0] != n_classes):
                raise ExportError(f"probabilities of frame {i + 1} have shape {p.shape}, expected (C, {fh}, {fw})")
            n_classes = p.shape[0]
            p = _pad(p, h, w, 0, axes=(1, 2))
        origin, lab = content(i)
        origins.append(origin)
        if lab is None:
            lab = np.full(session.frame_shape(i), scheme.ignore_index, np.uint8)
        lab = np.ascontiguousarray(lab, dtype=np.uint8)
        if lab.shape != (fh, fw):
            if shapes is None:
                raise _MixedSizes
            raise ExportError(f"frame {i + 1} ({session.names[i]}) has {lab.shape[1]}x{lab.shape[0]} labels but "
                              f"is {fw}x{fh}")
        lab = _pad(lab, h, w, scheme.ignore_index)
        corrected[i] = session.origin(i) is Origin.CORRECTED
        images: dict[str, np.ndarray] = {}
        if keys:
            fp = session.sequence[i]
            for key in keys:
                img = getattr(fp, key)
                want = sample.get(key)
                if img is None or img.shape[:2] != (fh, fw) or (want is not None and
                                                                (img.shape[2:], img.dtype) != (want.shape[2:], want.dtype)):
                    raise ExportError(f"{key} image of frame {i + 1} ({session.names[i]}) does not match frame 1")
                images[key] = np.ascontiguousarray(_pad(img, h, w, 0))
                sample.setdefault(key, images[key])
            if celsius:  # float32 °C of the IR copy; NaN where a frame has none (unreadable)
                c = fp.ir_celsius()
                images["ir_celsius"] = np.full((h, w), np.nan, np.float32) if c is None else \
                    np.ascontiguousarray(_pad(np.asarray(c, np.float32), h, w, np.nan))
        if i == 0:
            _check_space(path, [lab, *([p] if p is not None else []), *images.values()], n)
        writer.frame(i, lab, p, images)
    return corrected, origins, list(session.names)


def _attrs(session: LabelSource, path: Path, checkpoint_hash: str | None, mode: Mode) -> dict[str, Any]:
    scheme: ClassScheme = session.scheme
    src = session.source if getattr(session, "source", None) is not None else None
    ck = checkpoint_hash
    if ck is None and getattr(session, "checkpoint", None) is not None:
        ck = session.checkpoint.weights_hash
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "class_names": list(scheme.class_names),
        "palette": scheme.palette_array(), "ignore_index": scheme.ignore_index, "scheme": scheme.name,
        "axes": "tyx", "source": _relative(src, path.parent), "checkpoint_hash": ck or "",
        "mode": mode.value, "app_version": __version__, "created": utc_now(),
        "ir_alignment": _alignment_json(session),
    }


def _alignment_json(session: LabelSource) -> str:
    """How IR was put on the EO grid for this export, as JSON (`Alignment.to_dict()`: a homography
    from IR pixels to EO pixels, or dx/dy/scale); "" when IR was only resized (or there is none)."""
    seq = getattr(session, "sequence", None)
    a = getattr(seq, "alignment", None)
    if a is None or a.is_identity:
        return ""
    return json.dumps(a.to_dict())


def export_png(
    session: LabelSource,
    out_dir: str | os.PathLike,
    *,
    only_corrected: bool = False,
    include_predictions: bool = True,
    include_propagated: bool = True,
    predict: PredictFn | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """One indexed PNG per frame, `<out_dir>/<frame name>.png`: pixel = class id, palette = colours.

    Also writes `classes.json` (the scheme) and `frames.json` (each written frame's origin). Each
    file is atomic; a cancel keeps the ones written."""
    out = Path(out_dir)
    frames = session.corrected_frames() if only_corrected else list(range(len(session)))
    palette = session.scheme.palette_array()
    written: dict[str, str] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "classes.json") as tmp:
            tmp.write_text(json.dumps(session.scheme.to_dict(), indent=1) + "\n", encoding="utf-8")
        for k, i in enumerate(frames):
            _check_cancel(cancel, out)
            name = session.names[i].replace("/", "_").replace("\\", "_")
            origin, lab = frame_content(session, i, include_predictions, include_propagated, predict)
            if lab is None:
                lab = np.full(session.frame_shape(i), session.scheme.ignore_index, np.uint8)
            write_palette_png(out / f"{name}.png", np.ascontiguousarray(lab), palette)
            written[name] = origin
            if progress is not None:
                progress(k + 1, len(frames))
        with atomic_path(out / FRAMES_JSON) as tmp:
            tmp.write_text(json.dumps({"frames": written}, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"could not write PNG masks to {out}: {exc}") from exc
    return out
