"""train(): TOML config validation, a real run on a generic-layout folder, seeding, exact resume."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.device import (
    amp_dtype,
    autocast,
    cpu_has_native_bf16,
    cuda_amp_dtype,
    precision_label,
    resolve_device,
)
from csknet_studio.core.errors import CancelledError, CheckpointError, ConfigError
from csknet_studio.core.training import TrainConfig, train
from csknet_studio.core.training.schedule import lr_lambda


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, write_generic_dataset, make_frames) -> Path:
    return write_generic_dataset(tmp_path_factory.mktemp("ds") / "data", make_frames(8, size=64, seed=0))


def _cfg(tiny_config_toml, tmp_path: Path, dataset: Path, epochs: int = 1, extra: str = "",
         **top) -> TrainConfig:
    path = tmp_path / "cfg.toml"
    path.write_text(tiny_config_toml(dataset, tmp_path / "run", epochs=epochs, **top) + extra)
    return TrainConfig.from_toml(path)


def test_unknown_keys_are_named(tmp_path: Path, dataset: Path, tiny_config_toml):
    cfg = _cfg(tiny_config_toml, tmp_path, dataset)
    assert cfg.model.name == "csknet-tiny" and cfg.augment.crop == (64, 64) and cfg.loss.samples == 64
    path = tmp_path / "cfg.toml"
    base = path.read_text()
    path.write_text(base.replace("[optim]", "[optim]\nlearning_rate = 0.1"))
    with pytest.raises(ConfigError, match=r"optim\.learning_rate"):
        TrainConfig.from_toml(path)
    path.write_text("epochz = 3\n" + base)
    with pytest.raises(ConfigError, match="epochz"):
        TrainConfig.from_toml(path)
    path.write_text(base.replace("[loss]", "[loss]\nce_foo = 1.0"))
    with pytest.raises(ConfigError, match="ce_foo"):
        TrainConfig.from_toml(path)
    path.write_text(base.replace('schedule = "poly"', 'schedule = "step"'))
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig.from_toml(path)
    path.write_text("seed = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.from_toml(path)


def test_schedules():
    poly = lr_lambda("poly", 100, 10)
    assert poly(0) == pytest.approx(0.1) and poly(9) == pytest.approx(1.0) and poly(100) == 0.0
    cos = lr_lambda("cosine", 100, 0)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)


def test_device_resolution():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with autocast(torch.device("cpu")):  # full precision on CPU unless asked
        assert torch.ones(2).matmul(torch.ones(2)).dtype == torch.float32


def test_cpu_bf16_auto_follows_the_cpu_and_other_values_are_refused(tmp_path: Path, dataset: Path,
                                                                    tiny_config_toml):
    cpu = torch.device("cpu")
    native = cpu_has_native_bf16()
    # CUDA: bfloat16 only where the card computes it (Ampere, 8.0, on); a T4 (7.5) or V100 (7.0)
    # trains in float16 with loss scaling
    assert [cuda_amp_dtype((m, n)) for m, n in ((7, 0), (7, 5), (8, 0), (8, 6), (9, 0))] == \
        [torch.float16] * 2 + [torch.bfloat16] * 3
    assert amp_dtype(cpu, "auto") == (torch.bfloat16 if native else None)
    assert amp_dtype(cpu, True) == torch.bfloat16 and amp_dtype(cpu, False) is None
    assert precision_label(cpu, True, "auto") == ("bfloat16 autocast" if native else "float32")
    assert precision_label(cpu, False, True) == "float32"  # amp off wins
    with autocast(cpu, cpu_bf16="auto"):
        dtype = torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype
    assert dtype == (torch.bfloat16 if native else torch.float32)
    cfg = _cfg(tiny_config_toml, tmp_path, dataset)
    path = tmp_path / "cfg.toml"
    base = path.read_text()
    path.write_text(base.replace("[optim]", '[optim]\ncpu_bf16 = "auto"'))
    assert TrainConfig.from_toml(path).optim.cpu_bf16 == "auto"
    path.write_text(base.replace("[optim]", '[optim]\ncpu_bf16 = "yes"'))
    with pytest.raises(ConfigError, match="cpu_bf16"):
        TrainConfig.from_toml(path)
    assert cfg.optim.cpu_bf16 is False


@pytest.mark.slow
def test_train_writes_checkpoints_is_seeded_and_resumes_exactly(tmp_path: Path, dataset: Path,
                                                                tiny_config_toml):
    cfg = _cfg(tiny_config_toml, tmp_path, dataset, epochs=3, extra="\n[teacher]\nepochs = 1\n")
    events = []
    full = train(cfg, progress=lambda stage, s, t, info: events.append(stage))
    out = cfg.out_path
    assert {"last.pt", "best.pt", "teacher.pt", "history.json", "config.json"} <= {p.name for p in out.iterdir()}
    assert {"teacher", "train", "val"} <= set(events)
    assert full.epochs_done == 3 and len(json.loads((out / "history.json").read_text())) == 3
    val = full.history[-1]["val"]
    assert set(val) == {"both", "ir", "eo"} and set(val["ir"]["iou"]) == {"background", "box", "person"}
    last = load_checkpoint(out / "last.pt")
    assert last.weights_hash == full.weights_hash and last.scheme.name == "toy3"
    assert last.training_state["epoch"] == 3 and last.config["optim"]["epochs"] == 3
    assert full.history[-1]["loss"] < full.history[0]["loss"]

    # same config, fresh folder: interrupted after epoch 2, then resumed -> identical to the full run
    cfg2 = dataclasses.replace(cfg, output_dir=str(tmp_path / "run2"))
    part = train(cfg2, stop_after_epoch=2)
    assert part.epochs_done == 2 and part.weights_hash != full.weights_hash
    resumed = train(cfg2, resume=True)
    assert resumed.epochs_done == 3 and resumed.weights_hash == full.weights_hash
    assert resumed.history[-1]["val"] == full.history[-1]["val"]


def test_class_balance_is_computed_from_the_training_labels_and_recorded(tmp_path: Path, dataset: Path,
                                                                         tiny_config_toml, make_frames):
    from csknet_studio.core.losses import class_balance_weights
    from csknet_studio.core.training.data import label_pixel_counts, split_indices

    base = _cfg(tiny_config_toml, tmp_path, dataset, epochs=1)
    cfg = dataclasses.replace(base, loss=dataclasses.replace(base.loss, class_balance="enet"),
                              optim=dataclasses.replace(base.optim, amp=True, cpu_bf16=True))
    res = train(cfg)
    assert res.epochs_done == 1 and math.isfinite(res.history[-1]["loss"])
    frames = make_frames(8, size=64, seed=0)
    train_idx, _ = split_indices(list(range(8)), 0.25)
    counts = label_pixel_counts(frames, train_idx, 3)
    assert counts.sum() == len(train_idx) * 64 * 64 and (counts > 0).all()
    saved = json.loads((cfg.out_path / "config.json").read_text())["loss"]
    assert saved["class_balance"] == "enet"
    assert saved["class_weights"] == pytest.approx(class_balance_weights(counts, "enet"), abs=1e-4)
    assert saved["class_weights"][0] < min(saved["class_weights"][1:])  # background weighs least
    assert load_checkpoint(cfg.out_path / "last.pt").config["loss"]["class_weights"] == saved["class_weights"]
    # explicit weights of the wrong length are refused before any step
    bad = dataclasses.replace(base, loss=dataclasses.replace(base.loss, class_weights=(1.0, 2.0)),
                              output_dir=str(tmp_path / "bad"))
    with pytest.raises(ConfigError, match="class_weights"):
        train(bad)


def test_training_sequence_keeps_every_decoded_frame_within_cache_mb(dataset: Path):
    from csknet_studio.core.training.data import open_training_sequence

    def epoch_misses(s) -> int:
        before = s.cache.misses
        for i in range(len(s)):
            s[i]
        return s.cache.misses - before

    seq = open_training_sequence(dataset, cache_mb=64)
    assert epoch_misses(seq) <= len(seq)
    assert epoch_misses(seq) == 0 and epoch_misses(seq) == 0  # later epochs decode nothing
    tiny = open_training_sequence(dataset, cache_mb=0)  # no room: decoded on every visit
    epoch_misses(tiny)
    assert epoch_misses(tiny) == len(tiny)
    with pytest.raises(ConfigError, match="cache_mb"):
        TrainConfig.from_dict({"data": {"path": "x", "cache_mb": -1}})


def test_a_teacher_gate_target_without_a_teacher_is_refused_when_the_config_is_read():
    gate = {"gate": 0.2, "gate_target": "teacher", "contrastive": 0.0, "kd": 0.0}
    with pytest.raises(ConfigError, match=r"gate_target = \"teacher\" needs an EO teacher"):
        TrainConfig.from_dict({"data": {"path": "x"}, "loss": gate})
    for teacher in ({"epochs": 2}, {"checkpoint": "runs/x/teacher.pt"}):
        assert TrainConfig.from_dict({"data": {"path": "x"}, "loss": gate, "teacher": teacher}).loss.needs_teacher
    # distillation alone may run without a teacher: it is then off, as before
    TrainConfig.from_dict({"data": {"path": "x"}, "loss": {"contrastive": 0.1, "kd": 1.0}})


def test_resume_without_checkpoint_and_cancel(tmp_path: Path, dataset: Path, tiny_config_toml):
    cfg = _cfg(tiny_config_toml, tmp_path, dataset)
    with pytest.raises(ConfigError, match="detected as 'folders'"):
        train(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, layout="mfnet")))
    with pytest.raises(CheckpointError, match="no .*last.pt"):
        train(cfg, resume=True)
    with pytest.raises(CancelledError):
        train(cfg, cancel=lambda: True)
    assert not (cfg.out_path / "last.pt").exists()


def test_shipped_configs_parse():
    configs = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.toml"))
    assert configs, "configs/*.toml examples are missing"
    for path in configs:
        cfg = TrainConfig.from_toml(path)
        assert cfg.data.path and cfg.optim.epochs >= 1, path


def test_a_warm_start_from_a_checkpoint_seeds_the_solo_scales_and_refuses_a_misfit(tmp_path: Path, dataset: Path, tiny_config_toml):
    """`model.init`: a run starts from another run's weights. A checkpoint made without solo BN
    affines gets them seeded from its paired ones, so the warm-started model computes what the
    checkpoint did; a checkpoint that does not fit is refused naming model.init."""
    from csknet_studio.core.errors import WeightsMismatchError
    from csknet_studio.core.model import create_model
    from csknet_studio.core.training.loop import warm_start

    first = train(_cfg(tiny_config_toml, tmp_path, dataset, extra="\n[teacher]\nepochs = 1\n"))
    best = tmp_path / "run" / "best.pt"
    src = load_checkpoint(best)
    model = create_model("csknet-tiny", num_classes=3, solo_affine=True).eval()
    seeded = warm_start(model, best)
    assert seeded and all(k.endswith((".solo_weight", ".solo_bias")) for k in seeded)
    g = torch.Generator().manual_seed(3)
    eo, ir = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)
    with torch.no_grad():
        for args in ((None, ir), (eo, None), (eo, ir)):
            torch.testing.assert_close(model(*args).logits, src.model.eval()(*args).logits)

    toml = tiny_config_toml(dataset, tmp_path / "warm", epochs=1) + "\n[teacher]\nepochs = 1\n"
    toml = toml.replace('name = "csknet-tiny"', f'name = "csknet-tiny"\ninit = "{best}"\n'
                                                 'overrides = { solo_affine = true }')
    (tmp_path / "warm.toml").write_text(toml)
    warm = train(TrainConfig.from_toml(tmp_path / "warm.toml"))
    out = load_checkpoint(tmp_path / "warm" / "last.pt")
    assert out.model.config.solo_affine and warm.weights_hash != first.weights_hash
    assert any(k.endswith("solo_weight") for k in out.model.state_dict())

    with pytest.raises(WeightsMismatchError, match="model.init"):
        warm_start(create_model("csknet-tiny", num_classes=5), best)


def test_a_weight_average_follows_the_warmed_up_decay_and_copies_integer_buffers():
    from csknet_studio.core.training.ema import WeightAverage

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    avg = WeightAverage(model, 0.9)
    w0 = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 5
    d = avg.current_decay()
    assert d == pytest.approx(1 / 10)  # warm-up: the first update weighs the new weights 0.9
    avg.update(model)
    assert torch.allclose(avg.module[0].weight, d * w0 + (1 - d) * model[0].weight)
    assert int(avg.module[1].num_batches_tracked) == 5
    assert not any(p.requires_grad for p in avg.module.parameters())
    for _ in range(200):
        avg.update(model)
    assert avg.current_decay() == 0.9 and torch.allclose(avg.module[0].weight, model[0].weight, atol=1e-6)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, 1.0)


@pytest.mark.slow
def test_with_optim_ema_the_average_is_validated_saved_and_resumed_exactly(tmp_path: Path, dataset: Path,
                                                                         tiny_config_toml):
    base = tiny_config_toml(dataset, tmp_path / "run", epochs=3)
    path = tmp_path / "cfg.toml"
    path.write_text(base.replace("[optim]", "[optim]\nema = 0.7"))
    cfg = TrainConfig.from_toml(path)
    full = train(cfg)
    last = load_checkpoint(cfg.out_path / "last.pt")
    student = last.training_state["student_weights"]
    assert last.training_state["ema_updates"] > 0 and last.weights_hash == full.weights_hash
    # the saved weights are the average, not the optimiser's: they differ from the student's
    saved = last.model.state_dict()
    assert any(not torch.equal(saved[k], student[k]) for k in student if saved[k].is_floating_point())

    # interrupted after epoch 2 and resumed: the same average, the same validation
    cfg2 = dataclasses.replace(cfg, output_dir=str(tmp_path / "run2"))
    train(cfg2, stop_after_epoch=2)
    resumed = train(cfg2, resume=True)
    assert resumed.weights_hash == full.weights_hash
    assert resumed.history[-1]["val"] == full.history[-1]["val"]

    # a run without the average cannot resume into one that has it (or the average would restart)
    (tmp_path / "p").mkdir()
    plain = _cfg(tiny_config_toml, tmp_path / "p", dataset, epochs=2)
    train(dataclasses.replace(plain, output_dir=str(tmp_path / "run3")), stop_after_epoch=1)
    with pytest.raises(CheckpointError, match="optim.ema"):
        train(dataclasses.replace(cfg, output_dir=str(tmp_path / "run3")), resume=True)
    path.write_text(base.replace("[optim]", "[optim]\nema = 1.0"))
    with pytest.raises(ConfigError, match="optim.ema"):
        TrainConfig.from_toml(path)
