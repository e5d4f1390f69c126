"""Loading torchvision-format ImageNet ResNet state_dict files into the two-stream encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from csknet_studio.core.errors import CheckpointError, WeightsMismatchError
from csknet_studio.core.model import (
    create_model,
    create_teacher,
    extract_single_stream,
    load_imagenet_weights,
)
from csknet_studio.core.model.resnet import ResNet

# torchvision resnet18's first keys, verbatim: our plain ResNet must produce the same layout.
TORCHVISION_R18_HEAD = [
    "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
    "layer1.0.conv1.weight", "layer1.0.bn1.weight",
]


def _random_resnet_file(tmp_path: Path, prefix: str = "module.") -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision-layout state_dict for the tiny backbone (resnet10, width 8) with random values."""
    net = ResNet("basic", (1, 1, 1, 1), 8)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.1)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    saved = {prefix + k: v for k, v in sd.items()}
    saved["fc.weight"] = torch.zeros(1000, 64)  # ImageNet classifier: ignored
    saved["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet10_tiny.pth"
    torch.save(saved, path)
    return path, sd


def test_plain_resnet_uses_torchvision_names() -> None:
    keys = list(ResNet("basic", (2, 2, 2, 2), 64).state_dict())
    assert keys[: len(TORCHVISION_R18_HEAD)] == TORCHVISION_R18_HEAD
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.running_var" in keys
    assert len([k for k in keys if not k.endswith("num_batches_tracked")]) == 100  # torchvision r18 minus fc
    assert "layer4.2.conv3.weight" in ResNet("bottleneck", (3, 4, 6, 3), 64).state_dict()


def test_load_into_two_stream_encoder_fills_both_bn_copies(tmp_path: Path) -> None:
    path, sd = _random_resnet_file(tmp_path)
    model = create_model("csknet-tiny")
    rep = load_imagenet_weights(model, path)
    assert rep.ignored == ("fc.weight", "fc.bias")
    enc = model.encoder
    assert torch.equal(enc.conv1.weight, sd["conv1.weight"])
    assert torch.equal(enc.layer3[0].conv2.weight, sd["layer3.0.conv2.weight"])
    for mod in ("eo", "ir"):
        assert torch.equal(getattr(enc.layer2[0].bn1, mod).weight, sd["layer2.0.bn1.weight"])
        assert torch.equal(getattr(enc.layer2[0].bn1, mod).running_var, sd["layer2.0.bn1.running_var"])
        assert torch.equal(getattr(enc.layer4[0].downsample._modules["1"], mod).bias, sd["layer4.0.downsample.1.bias"])
    # The IR-only network extracted afterwards has the RGB stem summed into one channel.
    plain_ir = extract_single_stream(model, "ir")
    torch.testing.assert_close(plain_ir.encoder.conv1.weight, sd["conv1.weight"].sum(1, keepdim=True))


def test_load_into_teacher_and_plain_ir_network(tmp_path: Path) -> None:
    path, sd = _random_resnet_file(tmp_path, prefix="_orig_mod.module.")
    teacher = create_teacher(create_model("csknet-tiny").config)
    load_imagenet_weights(teacher, path)
    assert torch.equal(teacher.encoder.layer1[0].bn2.running_mean, sd["layer1.0.bn2.running_mean"])
    plain_ir = extract_single_stream(create_model("csknet-tiny"), "ir")
    load_imagenet_weights(plain_ir, sd)
    torch.testing.assert_close(plain_ir.encoder.conv1.weight, sd["conv1.weight"].sum(1, keepdim=True))


def test_mismatch_lists_missing_unexpected_and_shapes_and_changes_nothing(tmp_path: Path) -> None:
    _, sd = _random_resnet_file(tmp_path)
    sd.pop("layer3.0.conv1.weight")
    sd["layer9.0.conv1.weight"] = torch.zeros(1)
    sd["layer2.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    model = create_model("csknet-tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as ei:
        load_imagenet_weights(model, path)
    msg = str(ei.value)
    assert "bad.pth" in msg
    assert "missing (1): layer3.0.conv1.weight" in msg
    assert "unexpected (1): layer9.0.conv1.weight" in msg
    assert "layer2.0.conv2.weight (3, 3, 3, 3) vs model (16, 16, 3, 3)" in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wrong_backbone_and_unreadable_files(tmp_path: Path) -> None:
    path, _ = _random_resnet_file(tmp_path)
    with pytest.raises(WeightsMismatchError, match="missing"):
        load_imagenet_weights(create_model("csknet-tiny", backbone="resnet18"), path)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_imagenet_weights(create_model("csknet-tiny"), junk)
    with pytest.raises(CheckpointError, match="no such"):
        load_imagenet_weights(create_model("csknet-tiny"), tmp_path / "absent.pth")
    obj = tmp_path / "obj.pth"
    torch.save({"state_dict": {"conv1.weight": "text"}}, obj)
    with pytest.raises(CheckpointError, match="obj.pth"):
        load_imagenet_weights(create_model("csknet-tiny"), obj)
