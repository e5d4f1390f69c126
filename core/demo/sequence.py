"""The bundled demo sequence: a seeded, procedural EO/IR street scene with exact MFNet ground truth.

Why it exists: the app needs something to open with no data, and that something has to show why the
missing-modality switch matters. About a third of the frames are NIGHT (EO dark, noisy, glare from
headlights and lamps, pedestrians lost in the dark) or FOG (EO washed out), while IR keeps showing
warm people, engines and tyres against a cooler street.

Images follow the app's conventions (core/frames.py):
- EO: (H, W, 3) uint8 RGB.
- IR: (H, W) uint16 *radiometric*, in centikelvin (kelvin = value / 100; 29315 = 20 C), like a
  TLinear thermal camera, so the 16-bit path is exercised. Plausible values span about 23,800
  (cold night sky) to 34,500 (exhaust pipes); people sit near 30,100-30,650.
- label: (H, W) uint8 MFNet ids (0 unlabeled/background ... 8 bump), exact for every pixel
  (EO, IR and label come from the same z-buffered polygons).

Frames are a pure function of (seed, index, size, n_frames): any frame renders on its own, the
same arrays every time. `generate_demo` writes the generic paired-folder layout
(eo/ ir/ labels/ NNNNNN.png + demo.json) into a temporary folder renamed into place at the end, so
an interrupted run never leaves a demo that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes, atomic_write_text
from csknet_studio.core.classes import MFNET
from csknet_studio.core.demo_scene import FPS, render_scene, static_world
from csknet_studio.core.errors import CancelledError, ConfigError, ExportError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.radiometry import ZERO_CELSIUS_K, LinearScale
from csknet_studio.core.user_dirs import user_cache_dir

GENERATOR_VERSION = 2  # bump whenever the pixels change, so cached default demos regenerate
DEFAULT_SIZE = (480, 640)
DEFAULT_FRAMES = 120
IR_SCALE = 0.01  # kelvin per IR count
IR_CELSIUS = LinearScale(IR_SCALE, -ZERO_CELSIUS_K, "demo centikelvin")  # what demo.json's `ir` block says
META_NAME = "demo.json"

ProgressFn = Callable[[int, int], None]


def _check(seed: int, n_frames: int, size: tuple[int, int]) -> tuple[int, int]:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"demo seed must be a non-negative integer, got {seed!r}")
    if int(n_frames) < 1:
        raise ConfigError(f"demo frames must be >= 1, got {n_frames!r}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"demo size must be (height, width), got {size!r}") from None
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise ConfigError(f"demo size {h}x{w} out of range: height and width must be in [32, 4096]")
    return h, w


def demo_conditions(seed: int, n_frames: int) -> list[str]:
    """Per-frame condition: contiguous segments day | night | day | fog | day (about 1/6 night,
    1/6 fog), boundaries shifted a little by the seed."""
    n = int(n_frames)
    if n <= 1:
        return ["day"] * n
    if n == 2:
        return ["day", "night"]
    n_night = max(1, round(n / 6))
    n_fog = max(1, round(n / 6))
    days = n - n_night - n_fog
    rng = np.random.default_rng([int(seed), 41])
    a = int(round(days * rng.uniform(0.3, 0.45)))
    c = int(round(days * rng.uniform(0.1, 0.2)))
    b = days - a - c
    return ["day"] * a + ["night"] * n_night + ["day"] * b + ["fog"] * n_fog + ["day"] * c


@lru_cache(maxsize=8)
def _vignette(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return (1.0 - 0.12 * r2)[..., None].astype(np.float32)


@lru_cache(maxsize=8)
def _fixed_pattern(seed: int, h: int, w: int) -> np.ndarray:
    """Microbolometer fixed-pattern noise: column and row offsets in kelvin, constant per camera."""
    rng = np.random.default_rng([seed, 61])
    cols = rng.normal(0, 0.12, w).astype(np.float32)
    rows = rng.normal(0, 0.04, h).astype(np.float32)
    return rows[:, None] + cols[None, :]


@lru_cache(maxsize=2)
def _noise_pool(seed: int, h: int, w: int) -> np.ndarray:
    """Gaussian noise, 3 EO channels + 1 IR, a little larger than the frame: each frame takes a
    window at its own offset (cheaper than fresh noise, still different every frame)."""
    rng = np.random.default_rng([seed, 71])
    return rng.standard_normal((h + 48, w + 48, 4), dtype=np.float32)


def _finish(cv, glare: np.ndarray, cond: str, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera effects: glare and bloom, fog, optics blur, vignetting, sensor noise, quantisation."""
    h, w = cv.label.shape
    s = w / 640.0
    rng = np.random.default_rng([seed, 51, index])
    oy, ox = (int(v) for v in rng.integers(0, 48, 2))
    noise = _noise_pool(seed, h, w)[oy : oy + h, ox : ox + w]
    eo = cv.eo
    depth = cv.depth
    if cond != "day":
        small = cv2.resize(glare, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), 2.5 * s + 0.5)
        glare = cv2.scaleAdd(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 1.5, glare)
    if cond == "fog":
        tr = np.exp(np.minimum(depth, 1e3) * np.float32(-0.2))
        air = np.array([0.74, 0.75, 0.77], np.float32)
        eo = (eo - air) * tr[..., None] + air
        eo += 0.5 * glare
        grey = eo.mean(axis=2, keepdims=True)
        eo = 0.5 * (eo + grey)
    elif cond == "night":
        eo = eo + glare
    eo = cv2.GaussianBlur(eo, (0, 0), 0.5 * s + 0.2)
    eo *= _vignette(h, w)
    if cond == "night":
        lum = np.sqrt(np.clip(eo.mean(axis=2), 0, 1))
        sigma = (0.018 + 0.045 * lum)[..., None]
        eo *= 1.15
        eo += sigma * noise[..., :3]
    else:
        eo += (0.014 if cond == "fog" else 0.011) * noise[..., :3]
    eo *= 255.0
    eo += 0.5
    np.clip(eo, 0, 255, out=eo)
    eo8 = eo.astype(np.uint8)

    temp = cv.temp
    if cond == "fog":
        tr_ir = np.exp(np.minimum(depth, 1e3) * np.float32(-0.01))
        temp = (temp - 285.0) * tr_ir + 285.0
    temp = cv2.GaussianBlur(temp, (0, 0), 0.9 * s + 0.2)
    temp += _fixed_pattern(seed, h, w)
    temp += 0.07 * noise[..., 3]
    temp *= 1.0 / IR_SCALE
    temp += 0.5
    np.clip(temp, 0, 65535, out=temp)
    return eo8, temp.astype(np.uint16)


@dataclass(frozen=True)
class ThermalVariety:
    """Scene temperatures a clip draws at random, for training data: the demo's street has one
    thermal look (cool walls and road, warm people), real scenes do not. A sunny road or facade can
    be as warm as a person, a clear sky is far colder than an overcast one. Drawn per clip from the
    seed, so a clip stays consistent over its frames."""

    sky_offset_k: float     # added to the sky
    surface_amp_k: float    # amplitude of the smooth warming of background surfaces (day; a third at night)
    surface_tilt_k: float   # bottom-to-top gradient over background surfaces (sun on the road)

    @staticmethod
    def draw(seed: int) -> ThermalVariety:
        rng = np.random.default_rng([int(seed), 81])
        return ThermalVariety(float(rng.uniform(-12.0, 8.0)), float(rng.uniform(0.0, 10.0)),
                              float(rng.uniform(-4.0, 8.0)))

    def apply(self, cv, cond: str, seed: int) -> None:
        """Change the canvas temperatures in place (the canvas is the frame's own copy)."""
        h, w = cv.label.shape
        sky = ~np.isfinite(cv.depth)
        surface = (cv.label == 0) & ~sky
        rng = np.random.default_rng([int(seed), 82])
        field = cv2.resize(rng.uniform(0.0, 1.0, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        rows = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
        sun = 1.0 if cond == "day" else 0.35
        warm = sun * (self.surface_amp_k * field + self.surface_tilt_k * rows)
        temp = cv.temp.copy()
        temp[surface] += warm[surface]
        temp[sky] += self.sky_offset_k
        cv.temp = temp


def render_demo_frame(
    seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE, n_frames: int = DEFAULT_FRAMES,
    *, thermal_variety: bool = False,
) -> tuple[FramePair, str]:
    """Render frame `index` of the demo: (FramePair(eo RGB uint8, ir uint16 centikelvin, label uint8), condition).

    Deterministic for (seed, index, size, n_frames); n_frames only sets where the night and fog
    segments fall. `thermal_variety` draws the clip's scene temperatures at random
    (`ThermalVariety`; training data only, the app's demo keeps its one look)."""
    h, w = _check(seed, n_frames, size)
    if not 0 <= int(index) < int(n_frames):
        raise ConfigError(f"demo frame index {index} out of range [0, {n_frames})")
    cond = demo_conditions(seed, n_frames)[int(index)]
    cv, glare = render_scene(int(seed), int(index) / FPS, h, w, cond)
    if thermal_variety:
        ThermalVariety.draw(int(seed)).apply(cv, cond, int(seed))
    eo, ir = _finish(cv, glare, cond, int(seed), int(index))
    return FramePair(name=f"{int(index):06d}", eo=eo, ir=ir, label=cv.label.copy(), radiometry=IR_CELSIUS), cond


def _png(img: np.ndarray, what: str) -> bytes:
    # RLE: noisy sensor images gain nothing from LZ matching; faster and smaller than the default.
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:  # pragma: no cover - cv2 only fails on impossible shapes
        raise ExportError(f"could not encode {what} as PNG")
    return buf.tobytes()


def release_caches() -> None:
    """Drop the cached static streets and noise (tens of MB per size): a long-running app calls
    this, and generate_demo does it when done."""
    static_world.cache_clear()
    _noise_pool.cache_clear()
    _vignette.cache_clear()
    _fixed_pattern.cache_clear()


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
    h, w = _check(seed, n_frames, size)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_demo(out):
        raise ConfigError(f"demo output {out} is not empty and holds no earlier demo; choose an empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out.parent}: {exc}") from exc
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    conditions = demo_conditions(seed, n_frames)
    try:
        for sub in ("eo", "ir", "labels"):
            (tmp / sub).mkdir(parents=True)
        # Rendering (mostly Python) overlaps with PNG encoding and writing (cv2 and the OS release
        # the GIL) in worker threads; at most a few frames wait, so memory stays flat.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-write") as pool:
            pending: deque[Future] = deque()
            done = 0
            for i in range(int(n_frames)):
                if cancel is not None and cancel():
                    raise CancelledError(f"demo generation cancelled at frame {i}; {out} left unchanged")
                frame, _ = render_demo_frame(seed, i, (h, w), n_frames)
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
        meta = {
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
