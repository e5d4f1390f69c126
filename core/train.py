"""Training CSK-Net from a TOML config: teacher, student, validation per mode, checkpoints, resume, DDP.

    cfg = TrainConfig.from_toml("configs/tiny_demo.toml")
    result = train(cfg, progress=None, resume=False)

Under `torchrun --nproc_per_node=N -m csknet_studio train --config X.toml` every rank trains on its
DistributedSampler shard, gradients are averaged by DDP, validation confusion matrices are summed
across ranks, and rank 0 alone writes checkpoints. Runs are seeded: the same config (and world size)
gives the same weights and metrics; `--resume` restores model, optimiser, scheduler, epoch and RNG
so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from csknet_studio.core.classes import ClassScheme, get_scheme
from csknet_studio.core.dataclass_io import check_field_types, dataclass_from_mapping
from csknet_studio.core.errors import CancelledError, CheckpointError, ConfigError, TrainingError
from csknet_studio.core.losses import (
    ContrastiveDistiller,
    LossConfig,
    class_balance_weights,
    segmentation_loss,
    total_loss,
)
from csknet_studio.core.modes import Mode
from csknet_studio.core.train_data import (
    AugmentConfig,
    SegmentationDataset,
    label_pixel_counts,
    labelled_indices,
    split_indices,
)

# progress(stage, step, total, info): stage is "teacher" | "train" | "val"; info holds epoch, loss, lr.
ProgressFn = Callable[[str, int, int, dict], None]

SCHEDULES = ("poly", "cosine", "constant")
OPTIMIZERS = ("sgd", "adamw")


# --- config --------------------------------------------------------------------------------------


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
    pretrained: optional torchvision-format ImageNet ResNet state_dict file for the encoder."""

    name: str = "csknet-r18"
    overrides: dict = field(default_factory=dict)
    pretrained: str = ""

    def __post_init__(self) -> None:
        from csknet_studio.core.model.config import CSKNetConfig

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
    # bfloat16 autocast on CPU too (amp alone means CUDA only): ~1.3x faster training steps on CPUs
    # with AVX512-BF16 / AMX (measured in docs/benchmarks.md), slower on CPUs without them.
    cpu_bf16: bool = False
    num_workers: int = 0
    # lr multiplier for the BN scales of exchange sites (the gammas the L1 term drives below the
    # exchange threshold). Adam moves a weight by about lr per step, so a short run never takes
    # gammas from 1 to 0.02 and no channel is ever exchanged; a multiplier (e.g. 10) lets it.
    exchange_lr_mult: float = 1.0

    def __post_init__(self) -> None:
        if not self.exchange_lr_mult > 0:
            raise ConfigError(f"optim.exchange_lr_mult must be > 0, got {self.exchange_lr_mult}")
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


# --- pieces ----------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Global RNG states as plain data + tensors (loadable with weights_only=True)."""
    st = np.random.get_state()
    out = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": {"keys": torch.from_numpy(st[1].astype(np.int64)), "pos": int(st[2]),
                  "has_gauss": int(st[3]), "cached": float(st[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(st: Mapping[str, Any]) -> None:
    random.setstate((3, tuple(int(v) for v in st["python"]), st.get("python_pos")))
    npst = st["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), int(npst["pos"]),
                         int(npst["has_gauss"]), float(npst["cached"])))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int, power: float = 0.9) -> Callable[[int], float]:
    """Multiplier of the base lr at optimiser step `i`: linear warm-up then poly / cosine / constant."""

    def f(i: int) -> float:
        if warmup_steps > 0 and i < warmup_steps:
            return (i + 1) / warmup_steps
        t = min(1.0, (i - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "poly":
            return max(0.0, 1.0 - t) ** power
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    return f


def make_optimizer(params, cfg: OptimConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """params: tensors, or param-group dicts (a group's own "lr" is kept)."""
    lr = lr or cfg.lr
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
    else:
        params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


class StudentStep(nn.Module):
    """Student + distillation heads + loss in one module, so DDP sees every parameter a step uses
    (the L1 term touches EO gammas even in an IR-only step)."""

    def __init__(self, model: nn.Module, loss_cfg: LossConfig, distiller: ContrastiveDistiller | None):
        super().__init__()
        self.model = model
        self.distiller = distiller
        self.loss_cfg = loss_cfg

    def forward(self, eo, ir, labels, teacher_out=None) -> dict[str, torch.Tensor]:
        out = self.model(eo, ir)
        return total_loss(out, labels, self.model, self.loss_cfg, distiller=self.distiller, teacher_out=teacher_out)


class TeacherStep(nn.Module):
    def __init__(self, teacher: nn.Module, loss_cfg: LossConfig):
        super().__init__()
        self.teacher = teacher
        self.loss_cfg = loss_cfg

    def forward(self, eo, labels) -> dict[str, torch.Tensor]:
        loss = segmentation_loss(self.teacher(eo).logits, labels, self.loss_cfg)
        return {"ce_teacher": loss, "total": loss}


def _step_mode(rng: random.Random, p_ir: float, p_eo: float) -> Mode:
    u = rng.random()
    if u < p_ir:
        return Mode.IR
    if u < p_ir + p_eo:
        return Mode.EO
    return Mode.BOTH


def open_training_sequence(path: Path, split: str = "", cache_mb: int | None = None):
    """open_sequence with an optional split name, without read-ahead (training reads frames in
    shuffled order, so prefetching the next frames would only burn CPU); `cache_mb` sets the decoded
    frame cache by size alone (None: the reader's default budget)."""
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.registration import apply_project_alignment

    cache = {} if cache_mb is None else {"cache_bytes": cache_mb * 1024 * 1024, "cache_frames": 1 << 30}
    seq = open_sequence(path, split=split or None, prefetch=0, **cache)
    apply_project_alignment(seq)  # a registered sequence trains on the IR its project aligned
    return seq


def resolve_scheme(spec: str | Mapping, sequence) -> ClassScheme:
    if isinstance(spec, Mapping) and spec:
        try:
            return ClassScheme.from_dict(dict(spec))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"data.scheme table is invalid: {exc}") from None
    if spec:
        try:
            return get_scheme(str(spec))
        except KeyError as exc:
            raise ConfigError(f"data.scheme: {exc.args[0]}") from None
    seq_scheme = getattr(sequence, "scheme", None)
    return seq_scheme if seq_scheme is not None else get_scheme("mfnet")


@dataclass
class TrainResult:
    output_dir: Path
    epochs_done: int
    best_metric: float
    best_epoch: int
    history: list[dict]
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    weights_hash: str
    final_metrics: dict


class _Loaders:
    def __init__(self, dataset: SegmentationDataset, batch: int, seed: int, num_workers: int):
        from csknet_studio.core.distributed import rank_and_world

        rank, world = rank_and_world()
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                          drop_last=len(dataset) >= world * 2)
        per_rank = max(1, math.ceil(len(dataset) / world))
        # drop a trailing batch of one (BatchNorm cannot normalise a single sample at 1x1)
        drop_last = per_rank > batch and per_rank % batch == 1
        self.loader = DataLoader(dataset, batch_size=batch, sampler=self.sampler, num_workers=num_workers,
                                 drop_last=drop_last, persistent_workers=False)

    def epoch(self, e: int):
        self.sampler.set_epoch(e)
        self.dataset.set_epoch(e)
        return self.loader

    def __len__(self) -> int:
        return len(self.loader)


def _check_finite(loss: torch.Tensor, where: str) -> None:
    from csknet_studio.core.distributed import all_reduce_sum, is_distributed

    bad = 0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0
    if is_distributed():
        bad = float(all_reduce_sum(bad))
    if bad:
        raise TrainingError(f"{where}: loss is not finite ({loss.item()!r}); lower optim.lr or check the data; "
                            "no checkpoint was written from this state")


def _check_finite_weights(tensors, where: str) -> None:
    """Stop on a NaN / inf weight, so no checkpoint is ever written from it (a finite loss does not
    prove the step that followed kept the weights finite)."""
    from csknet_studio.core.distributed import all_reduce_sum, is_distributed

    floats = [t.detach() for t in tensors if t.is_floating_point()]
    bad = 0.0
    if floats:
        # one reduction instead of a sync per tensor: a NaN or inf anywhere makes the sum non-finite
        total = torch.stack([t.float().sum() for t in floats]).sum()
        if not bool(torch.isfinite(total)):
            bad = float(sum(int((~torch.isfinite(t)).sum()) for t in floats))
    if is_distributed():
        bad = float(all_reduce_sum(bad))
    if bad:
        n = sum(t.numel() for t in floats)
        raise TrainingError(f"{where}: {int(bad)} of {n} weights are not finite (NaN or inf); lower optim.lr "
                            "or check the data; no checkpoint was written from this state")


def _train_teacher(cfg: TrainConfig, loaders: _Loaders, model_cfg, device, progress, out_dir: Path):
    from torch.nn.parallel import DistributedDataParallel as DDP

    from csknet_studio.core.device import autocast, needs_grad_scaler
    from csknet_studio.core.distributed import broadcast_module_state, is_distributed, is_main
    from csknet_studio.core.model.teacher import create_teacher

    overrides = {"backbone": cfg.teacher.backbone} if cfg.teacher.backbone else {}
    teacher = create_teacher(model_cfg, **overrides).to(device)
    if cfg.model.pretrained:
        from csknet_studio.core.model.pretrained import load_imagenet_weights

        load_imagenet_weights(teacher, cfg.resolve(cfg.model.pretrained))
    step_mod: nn.Module = TeacherStep(teacher, cfg.loss)
    if is_distributed():
        step_mod = DDP(step_mod)
    opt = make_optimizer(teacher.parameters(), cfg.optim, cfg.teacher.lr or cfg.optim.lr)
    steps_per_epoch = _steps(cfg, loaders)
    total = cfg.teacher.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.optim.schedule, total, 0, cfg.optim.power))
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, cfg.optim.amp))
    teacher.train()
    for epoch in range(cfg.teacher.epochs):
        for i, batch in enumerate(loaders.epoch(10_000 + epoch)):
            if i >= steps_per_epoch:
                break
            eo, labels = batch["eo"].to(device), batch["label"].to(device)
            with autocast(device, enabled=cfg.optim.amp, cpu_bf16=cfg.optim.cpu_bf16):
                loss = step_mod(eo, labels)["total"]
            _check_finite(loss, f"teacher epoch {epoch + 1} step {i + 1}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            _check_finite_weights(teacher.parameters(), f"teacher epoch {epoch + 1} step {i + 1}")
            sched.step()
            if progress is not None:
                progress("teacher", epoch * steps_per_epoch + i + 1, total,
                         {"epoch": epoch + 1, "loss": float(loss.item())})
    broadcast_module_state(teacher)
    _check_finite_weights(teacher.state_dict().values(), f"teacher after {cfg.teacher.epochs} epoch(s)")
    if is_main():
        save_teacher(out_dir / "teacher.pt", teacher)
    return teacher


def save_teacher(path: Path, teacher: nn.Module) -> None:
    """A teacher file: same container as a checkpoint but its own format tag (never loaded as a student)."""
    from csknet_studio.core.atomic import atomic_path
    from csknet_studio.core.checkpoint import clean_state_dict, weights_hash

    state = {k: v.detach().cpu().clone() for k, v in clean_state_dict(teacher.state_dict()).items()}
    payload = {"format": "csknet-studio-teacher", "format_version": 1,
               "model_config": teacher.config.to_dict(), "state_dict": state, "weights_hash": weights_hash(state)}
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)


def load_teacher(path: Path, map_location="cpu") -> nn.Module:
    from csknet_studio.core.checkpoint import load_state_dict_checked, read_checkpoint
    from csknet_studio.core.model import CSKNetConfig
    from csknet_studio.core.model.teacher import create_teacher

    payload = read_checkpoint(path, map_location="cpu", expected_format="csknet-studio-teacher")
    teacher = create_teacher(CSKNetConfig.from_dict(payload["model_config"]))
    load_state_dict_checked(teacher, payload["state_dict"], source=f"teacher {path}")
    return teacher.to(map_location)


def _steps(cfg: TrainConfig, loaders: _Loaders) -> int:
    n = len(loaders)
    if n == 0:
        raise TrainingError("no training batch: the training split has no labelled frames")
    return min(n, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else n


def _metrics_dict(results, scheme: ClassScheme) -> dict:
    return {m.value: r.to_dict(scheme.class_names) for m, r in results.items()}


def train(cfg: TrainConfig, progress: ProgressFn | None = None, *, resume: bool = False,
          device: str | None = None, log: Callable[[str], None] | None = None,
          cancel: Callable[[], bool] | None = None, stop_after_epoch: int | None = None) -> TrainResult:
    """Run a whole training (teacher first when distillation needs one). DDP-aware.

    Writes to `cfg.output_dir`: last.pt (every `checkpoint_every` epochs and at the end; carries the
    resume state), best.pt (best validation mIoU of `select_mode`), teacher.pt, history.json,
    config.json. With `resume=True` continues from last.pt.

    cancel: checked before every step; when it returns True a CancelledError is raised (last.pt keeps
    the last completed checkpointed epoch, so `--resume` picks up from there). stop_after_epoch: end
    early after that epoch, as an interrupted run would, with the schedule of the full run.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    from csknet_studio.core.atomic import atomic_write_text
    from csknet_studio.core.checkpoint import (
        load_state_dict_checked,
        read_checkpoint,
        save_checkpoint,
        weights_hash,
    )
    from csknet_studio.core.device import autocast, needs_grad_scaler, resolve_device
    from csknet_studio.core.distributed import (
        all_reduce_mean,
        barrier,
        broadcast_module_state,
        init_from_env,
        is_distributed,
        is_main,
        rank_and_world,
        rank_device,
        shutdown,
    )
    from csknet_studio.core.evaluate import evaluate
    from csknet_studio.core.model import create_model

    say = log or (lambda s: None)
    dev = resolve_device(device or cfg.device)
    started = init_from_env(dev)
    try:
        dev = rank_device(dev)
        rank, world = rank_and_world()
        out_dir = cfg.out_path
        last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
        seed_everything(cfg.seed)

        # data
        train_seq = open_training_sequence(cfg.resolve(cfg.data.path), cfg.data.split, cfg.data.cache_mb)
        found = getattr(train_seq, "layout", "")
        if cfg.data.layout and found != cfg.data.layout:
            raise ConfigError(f"data.layout = {cfg.data.layout!r} but {cfg.data.path} was detected as {found!r}")
        scheme = resolve_scheme(cfg.data.scheme, train_seq)
        if not getattr(train_seq, "has_labels", True):
            raise TrainingError(f"{cfg.data.path}: the sequence has no ground-truth labels to train on "
                                f"(layout {getattr(train_seq, 'layout', '?')})")
        idx = labelled_indices(train_seq)
        if cfg.data.max_frames:
            idx = idx[: cfg.data.max_frames]
        if cfg.data.val_path or cfg.data.val_split:
            val_seq = open_training_sequence(cfg.resolve(cfg.data.val_path or cfg.data.path), cfg.data.val_split)
            train_idx, val_idx = idx, labelled_indices(val_seq)
        else:
            val_seq = train_seq
            train_idx, val_idx = split_indices(idx, cfg.data.val_fraction)
        if not train_idx:
            raise TrainingError(f"{cfg.data.path}: no labelled frames to train on")
        say(f"data: {len(train_idx)} training / {len(val_idx)} validation frames, scheme {scheme.name} "
            f"({scheme.num_classes} classes), world size {world}")
        if cfg.loss.class_balance != "none" and not cfg.loss.class_weights:
            counts = label_pixel_counts(train_seq, train_idx, scheme.num_classes, scheme.ignore_index)
            weights = class_balance_weights(counts, cfg.loss.class_balance, cfg.loss.class_balance_power)
            cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, class_weights=weights))
            say(f"class weights ({cfg.loss.class_balance}): "
                + ", ".join(f"{n} {w:.2f}" for n, w in zip(scheme.class_names, weights, strict=True)))
        if cfg.loss.class_weights and len(cfg.loss.class_weights) != scheme.num_classes:
            raise ConfigError(f"loss.class_weights has {len(cfg.loss.class_weights)} values; scheme "
                              f"{scheme.name} has {scheme.num_classes} classes")

        # model
        overrides = dict(cfg.model.overrides)
        overrides["num_classes"] = scheme.num_classes
        model = create_model(cfg.model.name, **overrides)
        if cfg.model.pretrained and not resume:
            from csknet_studio.core.model.pretrained import load_imagenet_weights

            load_imagenet_weights(model, cfg.resolve(cfg.model.pretrained))
        model.to(dev)
        dataset = SegmentationDataset(train_seq, train_idx, model.config.input_norm, cfg.augment, seed=cfg.seed,
                                      num_classes=scheme.num_classes, ignore_index=scheme.ignore_index)
        loaders = _Loaders(dataset, cfg.optim.batch, cfg.seed, cfg.optim.num_workers)
        steps_per_epoch = _steps(cfg, loaders)

        # resume state (read before the teacher, which may come from it)
        state: dict | None = None
        if resume:
            if not last_path.is_file():
                raise CheckpointError(f"--resume: no {last_path} to resume from")
            payload = read_checkpoint(last_path, map_location="cpu")
            state = payload.get("training_state")
            if not state:
                raise CheckpointError(f"--resume: {last_path} carries no training state")
            load_state_dict_checked(model, payload["state_dict"], source=f"checkpoint {last_path}")

        # teacher
        use_teacher = cfg.loss.contrastive > 0 or cfg.loss.kd > 0
        teacher = None
        if use_teacher:
            if cfg.teacher.checkpoint:
                teacher = load_teacher(cfg.resolve(cfg.teacher.checkpoint), dev)
            elif state is not None and (out_dir / "teacher.pt").is_file():
                teacher = load_teacher(out_dir / "teacher.pt", dev)
            elif cfg.teacher.epochs > 0:
                say(f"teacher: training the EO teacher for {cfg.teacher.epochs} epoch(s)")
                teacher = _train_teacher(cfg, loaders, model.config, dev, progress, out_dir)
            else:
                say("teacher: none (teacher.epochs = 0 and no teacher.checkpoint); distillation off")
        if teacher is not None:
            from csknet_studio.core.model.teacher import freeze

            freeze(teacher)
            if val_idx and state is None:  # the teacher's own score, beside the student's EO branch
                t_res = evaluate(teacher, val_seq, [Mode.EO], device=dev, batch=cfg.val_batch,
                                 num_classes=scheme.num_classes, ignore_index=scheme.ignore_index,
                                 indices=val_idx, amp=cfg.optim.amp)
                say(f"teacher: val mIoU (EO) {100 * t_res[Mode.EO].miou:.1f}")
                if is_main():
                    out_dir.mkdir(parents=True, exist_ok=True)
                    atomic_write_text(out_dir / "teacher_metrics.json",
                                      json.dumps(_metrics_dict(t_res, scheme), indent=2))
        distiller = ContrastiveDistiller.for_models(model, teacher, cfg.loss).to(dev) \
            if teacher is not None and cfg.loss.contrastive > 0 else None

        step_mod: nn.Module = StudentStep(model, cfg.loss, distiller)
        if is_distributed():
            step_mod = DDP(step_mod, find_unused_parameters=True)
        params = list(model.parameters()) + (list(distiller.parameters()) if distiller is not None else [])
        fast = {id(g) for g, _ in model.exchange_gammas()} if cfg.optim.exchange_lr_mult != 1.0 else set()
        groups = [{"params": [p for p in params if id(p) not in fast]}]
        if fast:
            groups.append({"params": [p for p in params if id(p) in fast], "lr": cfg.optim.lr * cfg.optim.exchange_lr_mult})
        opt = make_optimizer(groups, cfg.optim)
        total_steps = cfg.optim.epochs * steps_per_epoch
        warmup = round(cfg.optim.warmup_epochs * steps_per_epoch)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lr_lambda(cfg.optim.schedule, total_steps, warmup, cfg.optim.power))
        scaler = torch.amp.GradScaler(dev.type, enabled=needs_grad_scaler(dev, cfg.optim.amp))

        start_epoch, best, best_epoch, history = 0, -math.inf, 0, []
        if state is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            if distiller is not None and state.get("distiller"):
                distiller.load_state_dict(state["distiller"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch = int(state["epoch"])
            best = float(state["best"]) if state.get("best") is not None else -math.inf
            best_epoch = int(state.get("best_epoch", 0))
            history = json.loads(state.get("history", "[]"))
            set_rng_state(state["rng"][rank] if isinstance(state["rng"], list) and rank < len(state["rng"])
                          else state["rng"][0] if isinstance(state["rng"], list) else state["rng"])
            say(f"resumed from {last_path} after epoch {start_epoch}")
        if start_epoch >= cfg.optim.epochs:
            say(f"nothing to do: {start_epoch} of {cfg.optim.epochs} epochs already done")

        if is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
        val_modes = [Mode(m) for m in cfg.val_modes]
        last_metrics: dict = history[-1].get("val", {}) if history else {}
        last_written: Path | None = last_path if last_path.is_file() else None

        for epoch in range(start_epoch, cfg.optim.epochs):
            model.train()
            mode_rng = random.Random(cfg.seed * 1_000_003 + epoch)  # same modes on every rank
            running, count = 0.0, 0
            for i, batch in enumerate(loaders.epoch(epoch)):
                if i >= steps_per_epoch:
                    break
                if cancel is not None and cancel():
                    raise CancelledError(f"training cancelled in epoch {epoch + 1}; "
                                         f"{last_written or 'no checkpoint'} holds the last saved epoch")
                mode = _step_mode(mode_rng, cfg.modality_dropout, cfg.eo_only_dropout)
                eo = batch["eo"].to(dev, non_blocking=True) if mode.uses_eo else None
                ir = batch["ir"].to(dev, non_blocking=True) if mode.uses_ir else None
                labels = batch["label"].to(dev, non_blocking=True)
                with autocast(dev, enabled=cfg.optim.amp, cpu_bf16=cfg.optim.cpu_bf16):
                    t_out = None
                    if teacher is not None and eo is not None:
                        with torch.no_grad():
                            t_out = teacher(eo)
                    terms = step_mod(eo, ir, labels, t_out)
                loss = terms["total"]
                _check_finite(loss, f"epoch {epoch + 1} step {i + 1}")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.optim.grad_clip > 0:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
                scaler.step(opt)
                scaler.update()
                _check_finite_weights(params, f"epoch {epoch + 1} step {i + 1}")
                sched.step()
                running += float(loss.item())
                count += 1
                if progress is not None:
                    progress("train", epoch * steps_per_epoch + i + 1, total_steps,
                             {"epoch": epoch + 1, "loss": float(loss.item()), "lr": opt.param_groups[0]["lr"],
                              "mode": mode.value})
            broadcast_module_state(model)  # every rank validates / saves rank 0's BN statistics
            _check_finite_weights(model.state_dict().values(), f"epoch {epoch + 1}")
            entry: dict[str, Any] = {"epoch": epoch + 1, "loss": all_reduce_mean(running / max(1, count)),
                                     "lr": opt.param_groups[0]["lr"]}
            improved = False
            if val_idx and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.optim.epochs):
                res = evaluate(model, val_seq, val_modes, device=dev, batch=cfg.val_batch,
                               num_classes=scheme.num_classes, ignore_index=scheme.ignore_index,
                               indices=val_idx, amp=cfg.optim.amp,
                               progress=(lambda d, t, e=epoch + 1: progress("val", d, t, {"epoch": e}))
                               if progress is not None else None)
                entry["val"] = last_metrics = _metrics_dict(res, scheme)
                score = res[Mode(cfg.select_mode)].miou
                if math.isfinite(score) and score > best:
                    best, best_epoch, improved = score, epoch + 1, True
                say(f"epoch {epoch + 1}: loss {entry['loss']:.4f}, val mIoU "
                    + ", ".join(f"{m.label} {100 * res[m].miou:.1f}" for m in val_modes))
            else:
                say(f"epoch {epoch + 1}: loss {entry['loss']:.4f}")
            history.append(entry)
            metrics = {"epoch": epoch + 1, "val": last_metrics, "best_epoch": best_epoch,
                       "best_" + cfg.select_mode + "_miou": best if math.isfinite(best) else None}
            is_last = epoch + 1 == cfg.optim.epochs
            rng_all = _gather_rng()
            save_last = (epoch + 1) % cfg.checkpoint_every == 0 or is_last
            if save_last:
                last_written = last_path  # every rank reports it; rank 0 writes it before the barrier
            if is_main():
                if save_last:
                    tstate = {
                        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "distiller": distiller.state_dict() if distiller is not None else {},
                        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                        "epoch": epoch + 1, "best": best if math.isfinite(best) else None,
                        "best_epoch": best_epoch, "history": json.dumps(history), "rng": rng_all,
                        "world_size": world,
                    }
                    save_checkpoint(last_path, model, scheme=scheme, metrics=metrics, train_config=cfg.to_dict(),
                                    training_state=tstate)
                if improved or (not val_idx and is_last):
                    save_checkpoint(best_path, model, scheme=scheme, metrics=metrics, train_config=cfg.to_dict())
                atomic_write_text(out_dir / "history.json", json.dumps(history, indent=2))
            barrier()
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
        final_hash = weights_hash(model.state_dict())
        return TrainResult(
            output_dir=out_dir, epochs_done=len(history),
            best_metric=best if math.isfinite(best) else float("nan"), best_epoch=best_epoch,
            history=history, last_checkpoint=last_written,
            best_checkpoint=best_path if best_path.is_file() else None,
            weights_hash=final_hash, final_metrics=last_metrics,
        )
    finally:
        shutdown(started)


def _gather_rng() -> list[dict]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    from csknet_studio.core.distributed import is_distributed, rank_and_world

    mine = rng_state()
    if not is_distributed():
        return [mine]
    import torch.distributed as dist

    _, world = rank_and_world()
    out: list = [None] * world
    dist.all_gather_object(out, mine)
    return out
