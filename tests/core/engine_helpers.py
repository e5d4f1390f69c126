"""Small synthetic EO/IR data for the engine tests (64x64 scenes a tiny model can learn quickly)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.frames import FramePair

SCHEME3 = ClassScheme("toy3", ("background", "box", "person"), ((0, 0, 0), (255, 0, 0), (0, 255, 0)))


def make_frames(n: int, size: int = 64, seed: int = 0) -> list[FramePair]:
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


def write_generic_dataset(root: Path, frames: list[FramePair]) -> Path:
    """eo/ ir/ labels/ PNG folders with matching stems (the generic `folders` layout)."""
    for sub in ("eo", "ir", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for f in frames:
        cv2.imwrite(str(root / "eo" / f"{f.name}.png"), cv2.cvtColor(f.eo, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "ir" / f"{f.name}.png"), f.ir)
        cv2.imwrite(str(root / "labels" / f"{f.name}.png"), f.label)
    return root


def tiny_config_toml(data: Path, out: Path, epochs: int = 1, **top) -> str:
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


def write_aspect_pair_folder(root: Path) -> Path:
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
