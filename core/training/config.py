"""Training configuration: the TOML file's sections as frozen, validated dataclasses.

    cfg = TrainConfig.from_toml("configs/tiny_demo.toml")

Every section rejects unknown keys and out-of-range values with a ConfigError naming `section.key`,
so a typo stops the run before any data is read.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csknet_studio.core.dataclass_io import check_field_types, dataclass_from_mapping
from csknet_studio.core.errors import ConfigError
from csknet_studio.core.losses import NO_GATE_TEACHER, LossConfig
from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.modes import Mode
from csknet_studio.core.sim2real import CameraRandomisation

# progress(stage, step, total, info): stage is "teacher" | "train" | "val"; info holds epoch, loss, lr.
ProgressFn = Callable[[str, int, int, dict], None]

SCHEDULES = ("poly", "cosine", "constant")
OPTIMIZERS = ("sgd", "adamw")


def _build(cls, d: Mapping[str, Any], section: str):
    """Dataclass from a TOML table; unknown keys raise ConfigError naming `section.key`."""
    return dataclass_from_mapping(cls, d, f"[{section}]", key_prefix=f"{section}.")


@dataclass(frozen=True)
class DataConfig:
    """path: the training sequence (any layout `open_sequence` detects); val_path: a separate
    validation sequence, else the last `val_fraction` of the training frames is held out.
    split / val_split: split names for layouts with split lists (MFNet's train.txt, PST900 train/test).
    layout: when set, the layout open_sequence detects must be this one (guards against a wrong folder).
    scheme: class scheme name ("mfnet", "pst900", "fmb") or a table {name, class_names, palette};
    empty = the scheme the layout implies, else MFNet.
    """

    path: str = ""
    layout: str = ""  # "" = auto-detect; else the layout open_sequence must find (e.g. "mfnet")
    val_path: str = ""
    split: str = ""
    val_split: str = ""
    val_fraction: float = 0.2
    scheme: str | dict = ""
    max_frames: int = 0  # 0 = all
    # RAM for decoded training frames. Training visits every frame once per epoch in shuffled order,
    # so a set that fits is decoded once instead of every epoch (PNG decoding was ~15 % of a CPU
    # step of the default model); a larger set falls back to the reader's LRU behaviour.
    cache_mb: int = 1024

    def __post_init__(self) -> None:
        if self.cache_mb < 0:
            raise ConfigError(f"data.cache_mb must be >= 0, got {self.cache_mb}")
        if not self.path:
            raise ConfigError("data.path is required (the training sequence)")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class ModelSection:
    """name: a registry name (csknet-tiny, csknet-r18, ...); overrides: CSKNetConfig fields;
    pretrained: optional torchvision-format ImageNet ResNet state_dict file for the encoder;
    init: optional CSKNet Studio checkpoint whose weights start the run (a warm start with this
    config's own schedule; not a resume)."""

    name: str = "csknet-r18"
    overrides: dict = field(default_factory=dict)
    pretrained: str = ""
    init: str = ""

    def __post_init__(self) -> None:
        check_field_types(CSKNetConfig, self.overrides, "[model]", "model.overrides.")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 50
    batch: int = 8
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "poly"
    power: float = 0.9
    warmup_epochs: float = 0.0
    grad_clip: float = 0.0  # 0 = off
    amp: bool = True
    # bfloat16 autocast on CPU too (amp alone means CUDA only): ~1.4x faster training steps on CPUs
    # with AVX512-BF16 / AMX (measured in docs/benchmarks.md), several times slower on CPUs without
    # them; "auto" turns it on only where the CPU has them.
    cpu_bf16: bool | str = False
    num_workers: int = 0
    # lr multiplier for the BN scales of exchange sites (the gammas the L1 term drives below the
    # exchange threshold). Adam moves a weight by about lr per step, so a short run never takes
    # gammas from 1 to 0.02 and no channel is ever exchanged; a multiplier (e.g. 10) lets it.
    exchange_lr_mult: float = 1.0
    # Decay of an exponential moving average of the weights (0 = off): when on, the average is the
    # model validated and saved (best.pt, last.pt), the optimiser's own weights ride in last.pt's
    # resume state. 0.998 averages over about the last 500 steps.
    ema: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"optim.ema must be in [0, 1) (0 = off), got {self.ema}")
        if not self.exchange_lr_mult > 0:
            raise ConfigError(f"optim.exchange_lr_mult must be > 0, got {self.exchange_lr_mult}")
        if self.cpu_bf16 not in (True, False, "auto"):
            raise ConfigError(f'optim.cpu_bf16 must be true, false or "auto", got {self.cpu_bf16!r}')
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError("optim.epochs and optim.batch must be >= 1")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optim.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.warmup_epochs < 0 or self.grad_clip < 0 or self.num_workers < 0:
            raise ConfigError("optim.warmup_epochs, grad_clip and num_workers must be >= 0")


@dataclass(frozen=True)
class AugmentConfig:
    """crop: (H, W) of training crops, or None for full frames (all frames must then share a size).

    scale: random rescale range before cropping; flip: horizontal flip probability;
    photometric: strength of EO brightness / contrast / saturation jitter (0 disables);
    sim2real: strength of the random camera drawn per sample (`core.sim2real`; 0 disables).
    """

    crop: tuple[int, int] | None = (480, 640)
    scale: tuple[float, float] = (0.5, 2.0)
    flip: float = 0.5
    photometric: float = 0.2
    sim2real: float = 0.0

    def __post_init__(self) -> None:
        if self.crop is not None:
            crop = tuple(int(v) for v in self.crop)
            if len(crop) != 2 or min(crop) < 8:
                raise ConfigError(f"augment.crop must be [H, W] with both >= 8, got {self.crop!r}")
            object.__setattr__(self, "crop", crop)
        scale = tuple(float(v) for v in self.scale)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"augment.scale must be [min, max] with 0 < min <= max, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        if not 0.0 <= float(self.flip) <= 1.0:
            raise ConfigError(f"augment.flip must be a probability in [0, 1], got {self.flip!r}")
        if not 0.0 <= float(self.photometric) <= 1.0:
            raise ConfigError(f"augment.photometric must be in [0, 1], got {self.photometric!r}")
        CameraRandomisation(strength=float(self.sim2real))  # validates the range


@dataclass(frozen=True)
class TeacherConfig:
    """The EO teacher for contrastive distillation: trained first for `epochs` (CE on EO only), or
    loaded from `checkpoint` (a teacher.pt written by an earlier run). Unused when the loss's
    `contrastive` and `kd` weights are both 0."""

    epochs: int = 0
    checkpoint: str = ""
    lr: float = 0.0  # 0 = optim.lr
    backbone: str = ""  # "" = the student's

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError("teacher.epochs must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; built from TOML by `from_toml` / `from_dict`.

    modality_dropout: probability that a step drops EO (IR-only step: trains the missing-modality
    path); eo_only_dropout: probability that a step drops IR instead.
    """

    data: DataConfig
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    modality_dropout: float = 0.25
    eo_only_dropout: float = 0.0
    seed: int = 0
    device: str = "auto"
    output_dir: str = "runs/csknet"
    val_every: int = 1
    val_modes: tuple[str, ...] = ("both", "ir", "eo")
    val_batch: int = 4
    select_mode: str = "both"
    checkpoint_every: int = 1
    max_steps_per_epoch: int = 0  # 0 = full epochs
    base_dir: str = field(default="", compare=False)  # folder of the TOML file: relative paths start here

    def __post_init__(self) -> None:
        p_ir, p_eo = float(self.modality_dropout), float(self.eo_only_dropout)
        if not (0 <= p_ir <= 1 and 0 <= p_eo <= 1 and p_ir + p_eo <= 1):
            raise ConfigError("modality_dropout and eo_only_dropout must be in [0, 1] and sum to <= 1")
        try:
            modes = tuple(Mode(m).value for m in self.val_modes)
        except ValueError:
            raise ConfigError(f"val_modes: values must be among both / ir / eo, got {list(self.val_modes)}") from None
        object.__setattr__(self, "val_modes", modes)
        if self.select_mode not in modes:
            raise ConfigError(f"select_mode {self.select_mode!r} must be one of val_modes {list(modes)}")
        if self.val_every < 1 or self.checkpoint_every < 1 or self.val_batch < 1:
            raise ConfigError("val_every, checkpoint_every and val_batch must be >= 1")
        if self.loss.gate > 0 and self.loss.gate_target == "teacher" and \
                not (self.teacher.epochs > 0 or self.teacher.checkpoint):
            # distillation alone can run without a teacher (it is then off); this gate target cannot
            raise ConfigError(NO_GATE_TEACHER)

    # -- paths --------------------------------------------------------------------------------------
    def resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() or not self.base_dir else Path(self.base_dir) / path

    @property
    def out_path(self) -> Path:
        return self.resolve(self.output_dir)

    # -- (de)serialisation ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base_dir: str | Path = "") -> TrainConfig:
        d = dict(d)
        sections = {"data": DataConfig, "model": ModelSection, "optim": OptimConfig,
                    "augment": AugmentConfig, "loss": LossConfig, "teacher": TeacherConfig}
        kwargs: dict[str, Any] = {}
        if "data" not in d:
            raise ConfigError("missing [data] table (data.path names the training sequence)")
        for name, sub in sections.items():
            if name in d:
                kwargs[name] = _build(sub, d.pop(name), name)
        top = {f.name for f in dataclasses.fields(cls)} - set(sections) - {"base_dir"}
        unknown = sorted(set(d) - top)
        if unknown:
            raise ConfigError(f"unknown top-level key(s): {', '.join(unknown)}; allowed: "
                              f"{', '.join(sorted(top | set(sections)))}")
        check_field_types(cls, d, "top level")
        if "val_modes" in d:
            d["val_modes"] = tuple(d["val_modes"])
        kwargs.update(d)
        try:
            return cls(**kwargs, base_dir=str(base_dir))
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}: "
                              f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        try:
            return cls.from_dict(raw, base_dir=path.resolve().parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        def conv(v):
            if dataclasses.is_dataclass(v):
                return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        d = conv(self)
        d.pop("base_dir", None)
        return d
