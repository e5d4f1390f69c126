"""Bad inputs give the right result or a documented error naming the key / frame / file, never a
silent wrong answer or a traceback: configs, unreadable frames, class schemes, IR aspect ratios,
non-finite training, checkpoints, Ctrl+C."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from csknet_studio.cli import main
from csknet_studio.core.checkpoint import load_checkpoint, save_checkpoint
from csknet_studio.core.classes import MFNET, PST900, check_scheme_fits
from csknet_studio.core.data import Alignment, ArraySequence, open_sequence
from csknet_studio.core.errors import (
    AspectMismatchError,
    CancelledError,
    CheckpointError,
    ConfigError,
    SchemeMismatchError,
    TrainingError,
)
from csknet_studio.core.model import create_model
from csknet_studio.core.model.pretrained import read_state_dict
from csknet_studio.core.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory, write_generic_dataset, make_frames) -> Path:
    """Eight 32x32 labelled frames in the generic eo/ ir/ labels/ layout (classes 0..2)."""
    return write_generic_dataset(tmp_path_factory.mktemp("data"), make_frames(8, size=32, seed=0))


def _checkpoint(path: Path, scheme) -> Path:
    torch.manual_seed(0)
    save_checkpoint(path, create_model("csknet-tiny", num_classes=scheme.num_classes), scheme=scheme)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, scheme3) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {s.name: _checkpoint(root / f"{s.name}.pt", s) for s in (scheme3, MFNET, PST900)}


def _config_dict(tiny_config_toml, data: Path, out: Path) -> dict:
    return tomllib.loads(tiny_config_toml(data, out, epochs=1))


# --- 6. configs: every key type-checked, the key, its type and the value named ---------------------

BAD_VALUES = [
    # (section or None for top level, key, bad value, what the message must show)
    ("optim", "batch", 2.5, "2.5"),
    ("optim", "epochs", "ten", "'ten'"),
    ("optim", "lr", "fast", "'fast'"),
    ("optim", "amp", 1, "true or false"),
    ("optim", "num_workers", True, "integer"),
    (None, "seed", "zero", "'zero'"),
    (None, "device", 3, "string"),
    (None, "modality_dropout", "half", "'half'"),
    (None, "val_modes", "both", "list of strings"),
    (None, "val_every", 1.5, "1.5"),
    ("data", "path", 5, "string"),
    ("data", "val_fraction", "0.2", "'0.2'"),
    ("data", "scheme", 3, "string or a table"),
    ("data", "cache_mb", [1], "integer"),
    ("augment", "crop", [64, "a"], "list of 2 integers"),
    ("augment", "flip", "yes", "'yes'"),
    ("loss", "samples", 64.5, "64.5"),
    ("loss", "distill_stages", [1, "2"], "list of integers"),
    ("teacher", "epochs", "1", "'1'"),
    ("model", "name", 7, "string"),
    # non-finite numbers: an inf learning rate trains nothing but NaNs
    ("optim", "lr", math.inf, "inf"),
    ("optim", "lr", math.nan, "nan"),
    ("optim", "weight_decay", math.nan, "nan"),
    ("optim", "momentum", math.inf, "inf"),
    ("optim", "grad_clip", math.inf, "inf"),
    ("loss", "dice", math.nan, "nan"),
    ("augment", "scale", [1.0, math.inf], "inf"),
]


@pytest.mark.parametrize(("section", "key", "value", "shown"), BAD_VALUES,
                         ids=[f"{s or 'top'}.{k}={v!r}" for s, k, v, _ in BAD_VALUES])
def test_config_value_of_wrong_type_names_key_type_and_value(tmp_path, data, section, key, value, shown,
                                                             tiny_config_toml):
    d = _config_dict(tiny_config_toml, data, tmp_path / "run")
    (d.setdefault(section, {}) if section else d)[key] = value
    with pytest.raises(ConfigError) as ei:
        TrainConfig.from_dict(d)
    msg = str(ei.value)
    assert (f"{section}.{key}" if section else key) in msg and shown in msg, msg
    assert "not supported between" not in msg


def test_model_override_of_wrong_type_is_named(tmp_path, data, tiny_config_toml):
    d = _config_dict(tiny_config_toml, data, tmp_path / "run")
    d["model"]["overrides"] = {"base_width": "wide"}
    with pytest.raises(ConfigError, match=r"model\.overrides\.base_width must be an integer, got str 'wide'"):
        TrainConfig.from_dict(d)


@pytest.mark.parametrize(("line", "key"), [
    ("epochs = \"ten\"", "optim.epochs"),
    ("batch = 2.5", "optim.batch"),
    ("lr = inf", "optim.lr"),
    ("weight_decay = nan", "optim.weight_decay"),
])
def test_toml_file_errors_name_file_and_key(tmp_path, data, line, key, tiny_config_toml):
    text = tiny_config_toml(data, tmp_path / "run", epochs=1)
    name = line.split(" ")[0]
    lines = [ln for ln in text.splitlines() if not ln.startswith(f"{name} =")]
    at = lines.index("[optim]") + 1
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("\n".join(lines[:at] + [line] + lines[at:]))
    with pytest.raises(ConfigError) as ei:
        TrainConfig.from_toml(cfg)
    assert str(cfg) in str(ei.value) and key in str(ei.value)


def test_valid_configs_still_load(tmp_path, data, tiny_config_toml):
    cfg = TrainConfig.from_dict(_config_dict(tiny_config_toml, data, tmp_path / "run"))
    assert cfg.optim.batch == 4 and cfg.augment.crop == (64, 64) and cfg.val_modes == ("both", "ir", "eo")
    for toml in sorted((REPO / "configs").glob("*.toml")):
        TrainConfig.from_toml(toml)  # every shipped config passes the type check


@pytest.mark.parametrize(("content", "needle"), [
    (b"\xff\xfe[data]\npath = 'x'\n", "not UTF-8"),
    ("[data]\npath = \"caf\u00e9\"\n".encode("latin-1"), "not UTF-8"),
    (None, "is a directory"),
])
def test_unreadable_config_file_is_one_clear_line(tmp_path, capsys, content, needle):
    cfg = tmp_path / "cfg.toml"
    if content is None:
        cfg.mkdir()
    else:
        cfg.write_bytes(content)
    assert main(["train", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and str(cfg) in err and len(err.splitlines()) == 1


# --- 6. labels beyond the scheme, checkpoints ------------------------------------------------------


@pytest.mark.parametrize("bad_id", [3, 200])
def test_label_id_beyond_scheme_in_training_names_the_frame(tmp_path, bad_id, make_frames,
                                                            write_generic_dataset, tiny_config_toml):
    frames = make_frames(4, size=32, seed=1)
    frames[2].label[0, 0] = bad_id
    root = write_generic_dataset(tmp_path / "data", frames)
    d = _config_dict(tiny_config_toml, root, tmp_path / "run")
    d["data"]["val_fraction"] = 0.0
    d["optim"]["batch"] = 2
    d["augment"]["crop"] = [32, 32]
    d["loss"]["contrastive"] = 0.0
    with pytest.raises(TrainingError) as ei:
        train(TrainConfig.from_dict(d))
    assert "f002" in str(ei.value) and str(bad_id) in str(ei.value) and "3 classes" in str(ei.value)


@pytest.mark.parametrize("target", ["dir", "missing"])
def test_checkpoint_that_is_a_directory_or_missing(tmp_path, capsys, data, target):
    path = tmp_path / "run"
    if target == "dir":
        path.mkdir()
    assert main(["eval", "--checkpoint", str(path), str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert ("is a directory" if target == "dir" else "does not exist") in err and str(path) in err
    with pytest.raises(CheckpointError, match="directory" if target == "dir" else "no such"):
        read_state_dict(path)


def test_pretrained_file_with_objects_is_refused_without_torch_advice(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"conv1.weight": torch.zeros(1), "meta": object.__new__(Alignment)}, path)
    with pytest.raises(CheckpointError) as ei:
        read_state_dict(path)
    msg = str(ei.value)
    assert str(path) in msg and "weights_only=False" not in msg and "could run code" in msg
    assert len(msg.splitlines()) == 1


# --- 2. non-finite training stops, names the step and writes no checkpoint ------------------------


def _nan_after_step(monkeypatch, bad_steps: int):
    """Let the optimiser poison one weight after its `bad_steps`-th step (a valid config whose
    update goes non-finite while the loss of that step was still finite)."""
    import csknet_studio.core.training.schedule as train_mod  # student_optimizer looks make_optimizer up here

    real = train_mod.make_optimizer
    count = {"n": 0}

    def poison(opt, args, kwargs):
        count["n"] += 1
        if count["n"] >= bad_steps:
            with torch.no_grad():
                opt.param_groups[0]["params"][0].view(-1)[0] = float("inf")

    def make(params, cfg, lr=None):
        opt = real(params, cfg, lr)
        opt.register_step_post_hook(poison)
        return opt

    monkeypatch.setattr(train_mod, "make_optimizer", make)


@pytest.mark.parametrize("bad_step", [1, 2])
def test_non_finite_weights_stop_training_naming_the_step_and_save_nothing(tmp_path, data, monkeypatch,
                                                                           bad_step, tiny_config_toml):
    _nan_after_step(monkeypatch, bad_step)
    d = _config_dict(tiny_config_toml, data, tmp_path / "run")
    d["optim"]["batch"] = 2
    d["augment"]["crop"] = [32, 32]
    d["loss"]["contrastive"] = 0.0
    d["max_steps_per_epoch"] = 2
    with pytest.raises(TrainingError) as ei:
        train(TrainConfig.from_dict(d))
    msg = str(ei.value)
    assert f"epoch 1 step {bad_step}" in msg and "not finite" in msg and "no checkpoint" in msg
    assert not (tmp_path / "run" / "best.pt").exists() and not (tmp_path / "run" / "last.pt").exists()


def test_inf_lr_is_refused_by_the_cli_before_training(tmp_path, capsys, data, tiny_config_toml):
    text = tiny_config_toml(data, tmp_path / "run", epochs=1).replace("lr = 0.01", "lr = inf")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr" in err and "inf" in err and not (tmp_path / "run" / "best.pt").exists()


# --- 1. infer names unreadable frames and fails unless --skip-bad ----------------------------------


@pytest.fixture
def data_with_bad_frames(tmp_path, write_generic_dataset, make_frames) -> tuple[Path, list[str]]:
    root = write_generic_dataset(tmp_path / "bad", make_frames(10, size=32, seed=2))
    bad = ["f003", "f006", "f009"]
    for name in bad:
        (root / "ir" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return root, bad


@pytest.mark.parametrize(("fmt", "skip_bad"), [("png", False), ("png", True), ("hdf5", False)])
def test_infer_names_each_unreadable_frame(tmp_path, capsys, ckpts, data_with_bad_frames, fmt, skip_bad):
    root, bad = data_with_bad_frames
    out = tmp_path / ("masks" if fmt == "png" else "labels.h5")
    argv = ["infer", str(root), "--checkpoint", str(ckpts["toy3"]), "--out", str(out), "--quiet",
            "--device", "cpu", "--scheme", "checkpoint"] + (["--skip-bad"] if skip_bad else [])
    assert main(argv) == (0 if skip_bad else 2)
    err = capsys.readouterr().err
    for name in bad:
        assert name in err
    assert ("--skip-bad" in err) != skip_bad
    if fmt == "png":
        assert sorted(p.stem for p in out.glob("f*.png")) == [f"f{i:03d}" for i in range(10) if f"f{i:03d}" not in bad]


def test_infer_on_good_frames_exits_zero_without_skip_notes(tmp_path, capsys, ckpts, data):
    assert main(["infer", str(data), "--checkpoint", str(ckpts["toy3"]), "--out", str(tmp_path / "m"),
                 "--quiet", "--device", "cpu"]) == 0
    assert "skipped" not in capsys.readouterr().err and len(list((tmp_path / "m").glob("f*.png"))) == 8


# --- 3. a checkpoint of another class scheme is refused unless --scheme says so -------------------


@pytest.fixture(scope="module")
def mfnet_data(tmp_path_factory, make_frames, write_generic_dataset) -> Path:
    """MFNet-scheme data (sidecar names it) with labels using ids up to 8."""
    frames = make_frames(4, size=32, seed=3)
    for f in frames:
        f.label[f.label == 2] = 8
    root = write_generic_dataset(tmp_path_factory.mktemp("mfnet"), frames)
    (root / "sequence.json").write_text(json.dumps({"class_scheme": "mfnet"}))
    return root


CASES = [
    # (command, checkpoint scheme, data, extra args, exit status, words in stderr)
    ("eval", "pst900", "mfnet", [], 2, ["pst900", "mfnet", "--scheme"]),
    ("infer", "pst900", "mfnet", [], 2, ["pst900", "mfnet", "--scheme"]),
    ("eval", "pst900", "mfnet", ["--scheme", "mfnet"], 2, ["pst900", "mfnet"]),
    ("eval", "pst900", "mfnet", ["--scheme", "checkpoint"], 2, ["label id(s) 8", "5 classes"]),
    ("infer", "pst900", "mfnet", ["--scheme", "checkpoint"], 0, []),
    ("infer", "pst900", "mfnet", ["--scheme", "pst900"], 0, []),
    ("eval", "mfnet", "mfnet", [], 0, []),
    ("eval", "pst900", "toy", [], 0, []),  # no detected scheme, ids 0..2 fit 5 classes
    ("eval", "toy3", "mfnet", [], 2, ["toy3", "mfnet"]),
    ("infer", "mfnet", "toy", ["--scheme", "fmb"], 2, ["fmb", "mfnet"]),
    ("infer", "mfnet", "toy", ["--scheme", "nosuch"], 2, ["nosuch", "pst900"]),
]


@pytest.mark.parametrize(("cmd", "ckpt", "which", "extra", "status", "words"), CASES,
                         ids=[f"{c}-{k}-on-{w}{''.join(e)}" for c, k, w, e, _, _ in CASES])
def test_checkpoint_scheme_must_match_the_data(tmp_path, capsys, ckpts, data, mfnet_data, cmd, ckpt, which, extra,
                                               status, words):
    seq = mfnet_data if which == "mfnet" else data
    argv = [cmd, str(seq), "--checkpoint", str(ckpts[ckpt]), "--quiet", "--device", "cpu", *extra]
    if cmd == "infer":
        argv += ["--out", str(tmp_path / "m")]
    assert main(argv) == status
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    if status:
        assert len(err.strip().splitlines()) == 1


def test_export_with_checkpoint_of_another_scheme_is_refused(tmp_path, capsys, ckpts, mfnet_data):
    out = tmp_path / "x.h5"
    argv = ["export", str(mfnet_data), "--checkpoint", str(ckpts["pst900"]), "--out", str(out), "--quiet",
            "--device", "cpu", "--project", str(tmp_path / "p.csknet")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pst900" in err and "mfnet" in err and not out.exists()
    assert main([*argv, "--scheme", "checkpoint"]) == 0
    assert out.is_file()


@pytest.mark.parametrize(("scheme_name", "ids", "ok"), [
    ("toy3", [0, 1, 2, 255], True),
    ("toy3", [0, 3], False),
    ("pst900", [4, 255], True),
    ("pst900", [5], False),
    ("mfnet", [8], True),
])
def test_label_ids_checked_against_the_checkpoint(scheme_name, ids, ok, scheme3):
    scheme = {s.name: s for s in (scheme3, PST900, MFNET)}[scheme_name]
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[1, 0, : len(ids)] = ids
    seq = ArraySequence(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 8, 8), np.uint8), labels)
    if ok:
        check_scheme_fits(scheme, seq)
    else:
        with pytest.raises(SchemeMismatchError, match=r"frame 1 \(000001\)"):
            check_scheme_fits(scheme, seq)


# --- 4. IR of another aspect ratio needs an explicit alignment -------------------------------------

ASPECTS = [
    # (EO h, w), (IR h, w), stretched without alignment?
    ((48, 64), (48, 64), False),
    ((48, 64), (24, 32), False),  # same aspect, half size: resized as before
    ((48, 64), (96, 128), False),
    ((480, 640), (481, 640), False),  # within the tolerance
    ((48, 64), (48, 48), True),
    ((48, 64), (64, 48), True),
    ((720, 1280), (512, 640), True),  # 16:9 EO, 5:4 IR
    ((480, 640), (512, 640), True),
]


@pytest.mark.parametrize(("eo_hw", "ir_hw", "refused"), ASPECTS, ids=[f"{e}-{i}" for e, i, _ in ASPECTS])
def test_ir_of_another_aspect_ratio_needs_an_alignment(tmp_path, eo_hw, ir_hw, refused):
    for sub, arr in (("eo", np.full((*eo_hw, 3), 90, np.uint8)), ("ir", np.full(ir_hw, 120, np.uint8))):
        (tmp_path / sub).mkdir()
        for i in range(2):
            cv2.imwrite(str(tmp_path / sub / f"a{i}.png"), arr)
    if refused:
        with pytest.raises(AspectMismatchError) as ei:
            open_sequence(tmp_path)
        msg = str(ei.value)
        assert f"{ir_hw[1]}x{ir_hw[0]}" in msg and f"{eo_hw[1]}x{eo_hw[0]}" in msg and "alignment" in msg
    else:
        with open_sequence(tmp_path) as seq:
            assert seq[1].ir.shape == eo_hw and not seq.bad_frames
    with open_sequence(tmp_path, alignment=Alignment()) as seq:  # explicit: IR goes onto the EO grid
        assert seq[0].ir.shape == eo_hw and int(seq[0].ir[eo_hw[0] // 2, eo_hw[1] // 2]) == 120


def test_the_command_line_supplies_the_alignment_another_aspect_ratio_needs(tmp_path, capsys,
                                                                            write_aspect_pair_folder):
    """Refused without an alignment, with the two ways out named; `align` registers the very
    sequence it could not open before; `--alignment plain` or a JSON file serves one run."""
    root = write_aspect_pair_folder(tmp_path / "seq")
    assert main(["info", str(root), "--no-scan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "csknet-studio align" in err and "--alignment plain" in err
    assert main(["info", str(root), "--no-scan", "--alignment", "plain"]) == 0
    assert "recorded 64x64" in capsys.readouterr().out
    (tmp_path / "shift.json").write_text(json.dumps({"dx": 2.0, "dy": 0.0, "scale": 1.0}))
    assert main(["info", str(root), "--no-scan", "--alignment", str(tmp_path / "shift.json")]) == 0
    (tmp_path / "bad.json").write_text(json.dumps({"rotation": 3}))
    capsys.readouterr()
    assert main(["info", str(root), "--no-scan", "--alignment", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not an alignment" in capsys.readouterr().err
    assert main(["align", str(root), "--json"]) == 0  # the stored homography opens it from now on
    h = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["homography"]
    assert main(["info", str(root), "--no-scan"]) == 0
    from csknet_studio.core.registration import open_aligned

    with open_aligned(root) as seq:  # what infer, eval, export, finetune and training open
        assert seq.alignment is not None and np.allclose(seq.alignment.homography, h)
        assert seq[0].ir.shape == (48, 64)
    (tmp_path / "h.json").write_text(json.dumps({"homography": h, "method": "ecc"}))  # `align --json` output
    assert main(["info", str(root), "--no-scan", "--alignment", str(tmp_path / "h.json")]) == 0


def test_one_frame_of_another_aspect_ratio_is_a_named_bad_frame():
    eo = np.zeros((3, 24, 32, 3), np.uint8)
    ir = [np.zeros((24, 32), np.uint8), np.zeros((30, 30), np.uint8), np.zeros((12, 16), np.uint8)]
    seq = ArraySequence(eo, ir)
    assert [seq[i].bad for i in range(3)] == [False, True, False]
    assert "30x30" in seq.bad_reasons[1] and "32x24" in seq.bad_reasons[1]


# --- 5. Ctrl+C: exit status 130 with one line, even when the parent ignored SIGINT ----------------


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), CancelledError("export cancelled; nothing replaced")])
def test_interrupt_is_exit_130_with_one_line(monkeypatch, capsys, exc):
    import csknet_studio.commands.demo as demo

    def run(args):
        raise exc

    monkeypatch.setattr(demo, "run", run)
    assert main(["demo", "--out", "x"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err


def test_sigint_is_honoured_when_inherited_as_ignored(tmp_path):
    script = textwrap.dedent(f"""
        import signal, sys, time
        sys.path.insert(0, {str(REPO)!r})
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script hands down
        import csknet_studio.commands.demo as demo
        def run(args):
            print("ready", flush=True)
            time.sleep(30)
            return 0
        demo.run = run
        from csknet_studio.cli import main
        sys.exit(main(["demo", "--out", "x"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines() == ["csknet-studio demo: interrupted"]


def test_loaded_checkpoint_keeps_its_scheme(ckpts):
    assert load_checkpoint(ckpts["pst900"]).scheme.class_names == PST900.class_names
