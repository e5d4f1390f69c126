"""The demo on disk: `generate_demo` writes the generic paired-folder layout (eo/ ir/ labels/
NNNNNN.png + demo.json) into a hidden temporary folder renamed into place at the end, so an
interrupted run never leaves a demo that looks complete; readers of that layout's metadata; and the
per-user default demo the app opens when started without data.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes, atomic_write_text
from csknet_studio.core.classes import MFNET
from csknet_studio.core.demo.frame import (
    DEFAULT_FRAMES,
    DEFAULT_SIZE,
    GENERATOR_VERSION,
    check_args,
    demo_conditions,
    release_caches,
    render_demo_frame,
)
from csknet_studio.core.demo.sensor import IR_SCALE
from csknet_studio.core.demo.traffic import FPS
from csknet_studio.core.errors import CancelledError, ConfigError, ExportError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.user_dirs import user_cache_dir

META_NAME = "demo.json"

ProgressFn = Callable[[int, int], None]


def _png(img: np.ndarray, what: str) -> bytes:
    # RLE: noisy sensor images gain nothing from LZ matching; faster and smaller than the default.
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:  # pragma: no cover - cv2 only fails on impossible shapes
        raise ExportError(f"could not encode {what} as PNG")
    return buf.tobytes()


def _write_frame(folder: Path, frame: FramePair) -> None:
    name = f"{frame.name}.png"
    atomic_write_bytes(folder / "eo" / name, _png(cv2.cvtColor(frame.eo, cv2.COLOR_RGB2BGR), f"eo {name}"))
    atomic_write_bytes(folder / "ir" / name, _png(frame.ir, f"ir {name}"))
    atomic_write_bytes(folder / "labels" / name, _png(frame.label, f"label {name}"))


def _is_previous_demo(path: Path) -> bool:
    try:
        meta = json.loads((path / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    extra = {p.name for p in path.iterdir()} - {"eo", "ir", "labels", META_NAME}
    return meta.get("format") == "csknet-studio-demo" and not extra


def _prepare_out_dir(out: Path) -> None:
    """Refuse an `out` that is a file or holds something other than an earlier demo; create its parent."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_demo(out):
        raise ConfigError(f"demo output {out} is not empty and holds no earlier demo; choose an empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out.parent}: {exc}") from exc


def _write_frames(
    tmp: Path, out: Path, seed: int, n_frames: int, size: tuple[int, int],
    progress: ProgressFn | None, cancel: Callable[[], bool] | None,
) -> None:
    """Render every frame into `tmp`. Rendering (mostly Python) overlaps with PNG encoding and
    writing (cv2 and the OS release the GIL) in worker threads; at most a few frames wait, so memory
    stays flat."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-write") as pool:
        pending: deque[Future] = deque()
        done = 0
        for i in range(int(n_frames)):
            if cancel is not None and cancel():
                raise CancelledError(f"demo generation cancelled at frame {i}; {out} left unchanged")
            frame, _ = render_demo_frame(seed, i, size, n_frames)
            pending.append(pool.submit(_write_frame, tmp, frame))
            while pending and (len(pending) > 3 or pending[0].done()):
                pending.popleft().result()
                done += 1
                if progress is not None:
                    progress(done, int(n_frames))
        while pending:
            pending.popleft().result()
            done += 1
            if progress is not None:
                progress(done, int(n_frames))


def _demo_meta(seed: int, n_frames: int, h: int, w: int, conditions: list[str]) -> dict:
    """The demo.json of a demo: what it is, how it was made, and how to read its images."""
    return {
        "format": "csknet-studio-demo",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_frames": int(n_frames),
        "size": [h, w],
        "fps": FPS,
        "class_scheme": MFNET.name,
        "class_names": list(MFNET.class_names),
        "conditions": conditions,
        "layout": "generic: eo/, ir/, labels/ with matching NNNNNN.png stems",
        "eo": {"dtype": "uint8", "channels": "RGB"},
        "ir": {
            "dtype": "uint16",
            "units": "centikelvin",
            "scale": IR_SCALE,
            "offset": 0.0,
            "note": "kelvin = value * scale + offset",
        },
        "labels": {
            "dtype": "uint8",
            "ignore_index": MFNET.ignore_index,
            "note": "0 = unlabeled/background; every pixel is ground truth",
        },
    }


def generate_demo(
    out_dir: str | os.PathLike,
    n_frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write the demo as eo/ ir/ labels/ NNNNNN.png + demo.json into `out_dir` and return it.

    `out_dir` may be absent, empty, or an earlier demo (replaced); anything else is refused rather
    than mixed with our files. Frames go into a hidden sibling folder that is renamed into place
    only when complete; a failure or cancel removes it and leaves `out_dir` as it was."""
    h, w = check_args(seed, n_frames, size)
    out = Path(out_dir).expanduser().absolute()
    _prepare_out_dir(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    conditions = demo_conditions(seed, n_frames)
    try:
        for sub in ("eo", "ir", "labels"):
            (tmp / sub).mkdir(parents=True)
        _write_frames(tmp, out, seed, n_frames, (h, w), progress, cancel)
        meta = _demo_meta(seed, n_frames, h, w, conditions)
        atomic_write_text(tmp / META_NAME, json.dumps(meta, indent=2) + "\n")
        _swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"could not write the demo to {out}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        release_caches()
    return out


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder over `out` (absent, empty, or an earlier demo)."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, trash)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(trash, out)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)


def read_demo_meta(path: str | os.PathLike) -> dict | None:
    """demo.json of a demo folder, or None when `path` is not one (readers use it for the scheme)."""
    try:
        meta = json.loads((Path(path) / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == "csknet-studio-demo" else None


def is_complete_demo(path: str | os.PathLike, n_frames: int | None = None) -> bool:
    """True when `path` holds a finished demo of this generator version (every frame present)."""
    meta = read_demo_meta(path)
    if meta is None or meta.get("generator_version") != GENERATOR_VERSION:
        return False
    n = int(meta.get("n_frames", -1))
    if n_frames is not None and n != n_frames:
        return False
    p = Path(path)
    return all(len(list((p / sub).glob("*.png"))) == n for sub in ("eo", "ir", "labels"))


def default_demo_dir() -> Path:
    """Per-user cache folder of the default demo (seed 0, 120 frames, 480x640). Its project and
    exports go to the data folder (core/user_dirs.py), so emptying the cache loses no work."""
    return user_cache_dir() / f"demo-v{GENERATOR_VERSION}-seed0"


def ensure_default_demo(progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None) -> Path:
    """The default demo folder, generated on first use and reused afterwards (the GUI opens it
    when launched without a path). Safe when two processes race: the loser keeps the winner's."""
    out = default_demo_dir()
    if is_complete_demo(out, DEFAULT_FRAMES):
        return out
    try:
        generate_demo(out, DEFAULT_FRAMES, DEFAULT_SIZE, 0, progress=progress, cancel=cancel)
    except (ExportError, ConfigError):
        if not is_complete_demo(out, DEFAULT_FRAMES):  # else another process finished it first
            raise
    _remove_stale_defaults(out)
    return out


def _remove_stale_defaults(current: Path) -> None:
    """Delete default demos of older generator versions beside `current` (about 100 MB each)."""
    for old in current.parent.glob("demo-v*-seed0"):
        if old != current and old.is_dir() and _is_previous_demo(old):
            shutil.rmtree(old, ignore_errors=True)
