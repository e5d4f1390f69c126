"""Shared test set-up: offscreen Qt when there is no display, few threads, seeded torch, and the
synthetic inputs (sequences, labelled frames, training folders and configs, sensor recordings) that
the engine, CLI, robustness and GUI tests build from."""

from __future__ import annotations

import os
import sys

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from csknet_studio.core.classes import ClassScheme  # noqa: E402
from csknet_studio.core.data import ArraySequence  # noqa: E402
from csknet_studio.core.frames import FramePair  # noqa: E402
from tests.core import bagdata as _bagdata  # noqa: E402  (a module: bench/rosbag_open.py imports it too)
from tests.core.seqdata import make_sequence as _make_sequence  # noqa: E402  (child processes import it)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "rgbt_real"

SCHEME3 = ClassScheme("toy3", ("background", "box", "person"), ((0, 0, 0), (255, 0, 0), (0, 255, 0)))


@pytest.fixture(scope="session")
def rgbt_real() -> Path:
    """Real public EO/IR samples (read in place, never copied). Skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_torch():
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(0)
    yield


# --- small synthetic sequences (session, project and export tests) ---------------------------------


@pytest.fixture(scope="session")
def make_sequence() -> Callable[..., ArraySequence]:
    """`make_sequence(source, n=6, size=(48, 64), seed=0, scheme=None)`: an ArraySequence of smooth
    EO/IR frames with a box label each; `source` is where it "lives" (None: in memory only)."""
    return _make_sequence


# --- 64x64 scenes a tiny model learns quickly (engine, CLI and robustness tests) -------------------


def _make_frames(n: int, size: int = 64, seed: int = 0) -> list[FramePair]:
    """Background 0, a box (class 1, bright in EO, mild in IR) and a warm disk (class 2, hot in IR,
    dim in EO), at random places per frame."""
    rng = np.random.default_rng(seed)
    frames = []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        eo = (rng.normal(60, 8, (size, size, 3))).clip(0, 255)
        ir = rng.normal(70, 6, (size, size)).clip(0, 255)
        s = size // 4
        y0, x0 = rng.integers(0, size - s, 2)
        label[y0:y0 + s, x0:x0 + s] = 1
        cy, cx = rng.integers(s // 2, size - s // 2, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < (s // 2) ** 2
        label[disk] = 2
        eo[label == 1] = (210, 180, 40)
        ir[label == 1] = 120
        eo[disk] = (90, 90, 110)
        ir[disk] = 230
        frames.append(FramePair(f"f{i:03d}", eo.astype(np.uint8), ir.astype(np.uint8), label))
    return frames


def _write_generic_dataset(root: Path, frames: list[FramePair]) -> Path:
    """eo/ ir/ labels/ PNG folders with matching stems (the generic `folders` layout)."""
    for sub in ("eo", "ir", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for f in frames:
        cv2.imwrite(str(root / "eo" / f"{f.name}.png"), cv2.cvtColor(f.eo, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "ir" / f"{f.name}.png"), f.ir)
        cv2.imwrite(str(root / "labels" / f"{f.name}.png"), f.label)
    return root


def _tiny_config_toml(data: Path, out: Path, epochs: int = 1, **top) -> str:
    """A training config for csknet-tiny on `data` (classes of SCHEME3), CPU, no AMP; `top` adds
    top-level keys."""
    extra = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in top.items())
    return f"""
seed = 0
device = "cpu"
output_dir = "{out}"
modality_dropout = 0.25
{extra}

[data]
path = "{data}"
val_fraction = 0.25
scheme = {{ name = "toy3", class_names = ["background", "box", "person"], palette = [[0,0,0],[255,0,0],[0,255,0]] }}

[model]
name = "csknet-tiny"

[optim]
epochs = {epochs}
batch = 4
lr = 0.01
optimizer = "adamw"
schedule = "poly"
amp = false

[augment]
crop = [64, 64]
scale = [1.0, 1.0]
flip = 0.5
photometric = 0.1

[loss]
contrastive = 0.1
samples = 64
"""


def _write_aspect_pair_folder(root: Path) -> Path:
    """A 64x48 EO / 64x64 IR folder pair: the IR of a thermal camera with another aspect ratio."""
    rng = np.random.default_rng(0)
    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        eo = np.full((48, 64, 3), 40, np.uint8)
        eo[10:30, 12:40] = 220
        ir = (rng.random((64, 64)) * 30).astype(np.uint8)
        ir[14:40, 12:40] = 200
        cv2.imwrite(str(root / "eo" / f"a{i}.png"), eo)
        cv2.imwrite(str(root / "ir" / f"a{i}.png"), ir)
    return root


@pytest.fixture(scope="session")
def scheme3() -> ClassScheme:
    """The three classes of `make_frames` (background, box, person)."""
    return SCHEME3


@pytest.fixture(scope="session")
def make_frames() -> Callable[..., list[FramePair]]:
    """`make_frames(n, size=64, seed=0)`: labelled FramePairs of a box and a warm disk."""
    return _make_frames


@pytest.fixture(scope="session")
def write_generic_dataset() -> Callable[[Path, list[FramePair]], Path]:
    """`write_generic_dataset(root, frames)`: the frames as eo/ ir/ labels/ PNG folders under root."""
    return _write_generic_dataset


@pytest.fixture(scope="session")
def tiny_config_toml() -> Callable[..., str]:
    """`tiny_config_toml(data, out, epochs=1, **top)`: the TOML text of a tiny CPU training run."""
    return _tiny_config_toml


@pytest.fixture(scope="session")
def write_aspect_pair_folder() -> Callable[[Path], Path]:
    """`write_aspect_pair_folder(root)`: two 64x48 EO / 64x64 IR frames in eo/ and ir/ under root."""
    return _write_aspect_pair_folder


def _write_colour_mapped_folder(root: Path) -> Path:
    (root / "eo").mkdir(parents=True)
    (root / "ir").mkdir()
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    for i in range(2):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.dstack([ramp] * 3))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), cv2.applyColorMap(ramp, cv2.COLORMAP_JET))
    return root


@pytest.fixture(scope="session")
def write_colour_mapped_folder() -> Callable[[Path], Path]:
    """`write_colour_mapped_folder(root)`: two 64x48 pairs in eo/ and ir/ whose IR is jet-coloured
    (as some datasets ship their thermal previews)."""
    return _write_colour_mapped_folder


# --- sensor recordings (ROS 1, ROS 2 and MCAP, written with rosbags) -------------------------------


@pytest.fixture(scope="session")
def bagdata() -> ModuleType:
    """The recording writer: `Camera`, `write_recording`, `mcap_file`, and what the frames hold
    (`T0_NS`, `frame_value`)."""
    return _bagdata


# --- a child process killed partway (crash-safety tests) -------------------------------------------


def _run_and_kill(child_src: str, arg: Path, kill_after: int, pause_s: float, timeout_s: float = 60) -> int:
    """Start `child_src` with `arg`, read its printed step indices until one reaches `kill_after`,
    wait `pause_s` (to land inside a later step), SIGKILL it; return the last index it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child_src, str(arg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    last = -1
    try:
        deadline = time.monotonic() + timeout_s
        while last < kill_after:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child exited early: {proc.stderr.read()}")
            last = int(line)
            assert time.monotonic() < deadline, "child too slow"
        time.sleep(pause_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    return last


@pytest.fixture(scope="session")
def run_and_kill() -> Callable[..., int]:
    """`run_and_kill(child_src, arg, kill_after, pause_s, timeout_s=60)`: run a child Python that
    prints each step it finished, SIGKILL it after step `kill_after`; the last step it printed."""
    return _run_and_kill
