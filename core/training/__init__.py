"""Training CSK-Net from a TOML config: teacher, student, validation per mode, checkpoints, resume, DDP.

    cfg = TrainConfig.from_toml("configs/tiny_demo.toml")
    result = train(cfg, progress=None, resume=False)

config    the TOML sections as validated dataclasses (TrainConfig and its parts)
data      training sequences, labelled frames, class scheme, DDP-sharded batches
rng       seeding, and the RNG state a resumed run restores
schedule  lr schedule and optimiser set-up
guards    stop on a non-finite loss or weight before anything is saved
teacher   the EO teacher distillation needs (trained or loaded)
loop      `train()`: open data, build, restore, then train / validate / save each epoch
"""

from csknet_studio.core.training.config import (
    DataConfig,
    ModelSection,
    OptimConfig,
    ProgressFn,
    TeacherConfig,
    TrainConfig,
)
from csknet_studio.core.training.loop import TrainResult, train

__all__ = ["DataConfig", "ModelSection", "OptimConfig", "ProgressFn", "TeacherConfig", "TrainConfig",
           "TrainResult", "train"]
