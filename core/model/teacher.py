"""EO teacher: a single-stream RGB segmentation network of the same family (ordinary BN).

Trained first on the EO images with CE, then frozen; its stage features are the targets of the
contrastive distillation into the student's EO branch (see core/losses.py).
"""

from __future__ import annotations

from dataclasses import replace

from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.model.single import SingleStreamOutput, SingleStreamSegNet

EOTeacher = SingleStreamSegNet


def create_teacher(config: CSKNetConfig, **overrides) -> SingleStreamSegNet:
    """An EO teacher shaped like `config` (e.g. `create_teacher(model.config, backbone="resnet50")`)."""
    return SingleStreamSegNet(replace(config, **overrides) if overrides else config, in_channels=3)


def freeze(teacher: SingleStreamSegNet) -> SingleStreamSegNet:
    """Eval mode and no gradients: the teacher is a fixed target during distillation."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


__all__ = ["EOTeacher", "SingleStreamOutput", "create_teacher", "freeze"]
