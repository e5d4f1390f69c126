"""Class schemes (names + palette + ignore index) and the registry of known datasets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from csknet_studio.core.errors import ConfigError, SchemeMismatchError

IGNORE_INDEX = 255


# What datasets call their background class. MFNet's "unlabeled" reads like the unlabelled pixels
# (255, nobody labelled them), so people are shown "background" instead (`ClassScheme.shown_name`).
BACKGROUND_NAMES = frozenset({"unlabeled", "unlabelled", "background", "void"})


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

    def shown_name(self, i: int) -> str:
        """The name a person reads for id `i` (legend, read-out, shortcuts): class 0 under a
        background name is "background", 255 "unlabelled". Exports and scores keep `class_names`."""
        if i == self.ignore_index:
            return "unlabelled"
        if not 0 <= i < self.num_classes:
            return f"class {i}"
        name = self.class_names[i]
        return "background" if i == 0 and name.lower() in BACKGROUND_NAMES else name

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


LABEL_PROBE_FRAMES = 8


def resolve_data_scheme(declared: str | None, checkpoint_scheme: ClassScheme, detected: ClassScheme | None
                        ) -> ClassScheme | None:
    """The scheme the data's labels are taken to use: `declared` ("checkpoint", or a known scheme
    name) when given, else what the reader detected (None: unknown)."""
    if declared is None:
        return detected
    if declared == "checkpoint" or declared == checkpoint_scheme.name:
        return checkpoint_scheme

    try:
        return get_scheme(declared)
    except KeyError:
        raise ConfigError(f"--scheme {declared!r}: not a known class scheme; use 'checkpoint' or one of "
                          f"{', '.join(SCHEMES)}") from None


def check_scheme_fits(checkpoint_scheme: ClassScheme, sequence, *, declared: str | None = None,
                      check_labels: bool = True, source: str = "checkpoint", hint: str = "") -> None:
    """Refuse a checkpoint whose classes are not the data's, so no score or mask pairs the wrong
    classes under the right names.

    The data's scheme is `declared` (see `resolve_data_scheme`) or the one the reader detected;
    when it is known its class names must equal the checkpoint's. With `check_labels`, the label
    ids of a few evenly spaced frames must also lie within the checkpoint's classes (or be the
    ignore index): a layout with no scheme of its own is caught by its ids. Raises
    SchemeMismatchError; `hint` ends the message (how the caller overrides the check).
    """

    data = resolve_data_scheme(declared, checkpoint_scheme, getattr(sequence, "scheme", None))
    where = getattr(sequence, "source", "the sequence")
    tail = f"; {hint}" if hint else ""
    if data is not None and tuple(data.class_names) != tuple(checkpoint_scheme.class_names):
        raise SchemeMismatchError(
            f"{source} predicts scheme {checkpoint_scheme.name!r} ({checkpoint_scheme.num_classes} classes: "
            f"{', '.join(checkpoint_scheme.class_names)}) but {where} uses {data.name!r} ({data.num_classes} "
            f"classes: {', '.join(data.class_names)}){tail}"
        )
    if not check_labels or not getattr(sequence, "has_labels", False) or len(sequence) == 0:
        return
    k, ignore = checkpoint_scheme.num_classes, checkpoint_scheme.ignore_index
    n = len(sequence)
    for i in sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n, LABEL_PROBE_FRAMES))}):
        fp = sequence[i]
        if fp.label is None:
            continue
        ids = np.unique(fp.label)
        bad = ids[(ids >= k) & (ids != ignore)]
        if bad.size:
            raise SchemeMismatchError(
                f"{where}: frame {i} ({fp.name}) has label id(s) {', '.join(map(str, bad[:5].tolist()))} but "
                f"{source} predicts {k} classes (ids 0-{k - 1}, {ignore} = unlabelled, scheme "
                f"{checkpoint_scheme.name!r}){tail}"
            )
