"""Class schemes (names + palette + ignore index) and the registry of known datasets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassScheme:
    """Names and RGB colours of a label set. Label masks hold ids; 255 means unlabelled."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if len(self.class_names) != len(self.palette):
            raise ValueError(f"{self.name}: {len(self.class_names)} names but {len(self.palette)} colours")
        if not 1 <= len(self.class_names) < self.ignore_index:
            raise ValueError(f"{self.name}: number of classes must be in [1, {self.ignore_index})")
        for c in self.palette:
            if len(c) != 3 or any(not 0 <= v <= 255 for v in c):
                raise ValueError(f"{self.name}: bad colour {c}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def palette_array(self) -> np.ndarray:
        """(N, 3) uint8."""
        return np.asarray(self.palette, dtype=np.uint8)

    def lut(self, ignore_color: tuple[int, int, int, int] = (0, 0, 0, 0)) -> np.ndarray:
        """(256, 4) uint8 RGBA lookup table: id -> colour, ignore/unknown ids transparent."""
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[:, :] = ignore_color
        lut[: self.num_classes, :3] = self.palette_array()
        lut[: self.num_classes, 3] = 255
        return lut

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) ids -> (H, W, 3) uint8 RGB (ignore -> black)."""
        return self.lut((0, 0, 0, 255))[mask][..., :3]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ClassScheme:
        return cls(
            name=str(d["name"]),
            class_names=tuple(str(n) for n in d["class_names"]),
            palette=tuple(tuple(int(v) for v in c) for c in d["palette"]),  # type: ignore[misc]
            ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
        )


MFNET = ClassScheme(
    "mfnet",
    ("unlabeled", "car", "person", "bike", "curve", "car_stop", "guardrail", "color_cone", "bump"),
    ((0, 0, 0), (64, 0, 128), (64, 64, 0), (0, 128, 192), (0, 0, 192), (128, 128, 0),
     (64, 64, 128), (192, 128, 128), (192, 64, 0)),
    description="MFNet (Ha et al. 2017) urban RGB-T, 9 classes incl. unlabeled; RTFNet palette.",
)

PST900 = ClassScheme(
    "pst900",
    ("background", "fire_extinguisher", "backpack", "hand_drill", "survivor"),
    ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)),
    description="PST900 subterranean RGB-T, 5 classes; official toolkit palette in RGB order.",
)

FMB = ClassScheme(
    "fmb",
    ("background", "road", "sidewalk", "building", "traffic_light", "traffic_sign", "vegetation",
     "sky", "person", "car", "truck", "bus", "motorcycle", "bicycle", "pole"),
    ((0, 0, 0), (0, 0, 142), (0, 60, 100), (0, 0, 230), (119, 11, 32), (255, 0, 0), (0, 139, 139),
     (255, 165, 150), (192, 64, 0), (211, 211, 211), (100, 33, 128), (117, 79, 86), (153, 153, 153),
     (190, 122, 222), (250, 170, 30)),
    description="FMB (SegMiF, ICCV 2023), 15 classes with background.",
)

SCHEMES: dict[str, ClassScheme] = {s.name: s for s in (MFNET, PST900, FMB)}


def get_scheme(name: str) -> ClassScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown class scheme {name!r}; known: {', '.join(SCHEMES)}") from None
