"""The bundled default model (resources/default_model.pt): it loads, runs in every mode, and
is actually trained (a floor mIoU on held-out demo frames, far below the figures in docs/model.md, so
the test is stable yet fails for a broken, truncated or untrained checkpoint)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.classes import MFNET
from csknet_studio.core.demo import demo_conditions, render_demo_frame
from csknet_studio.core.evaluate import evaluate
from csknet_studio.core.model import create_model
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.predictor import Predictor
from csknet_studio.core.training import TrainConfig

REPO = Path(__file__).resolve().parents[3]
BUNDLED = REPO / "resources" / "default_model.pt"
HELDOUT_SEED = 1000  # scripts/default_model_report.py; never used for training or model selection
SIZE = (240, 320)  # cheaper than the app's 480x640; the recipe trains across both scales


@pytest.fixture(scope="module")
def bundled():
    assert BUNDLED.is_file(), f"{BUNDLED} is missing: run `make model` (docs/model.md, Default model)"
    return load_checkpoint(BUNDLED)


@pytest.fixture(scope="module")
def heldout():
    conds = demo_conditions(HELDOUT_SEED, 120)
    day = [i for i, c in enumerate(conds) if c == "day"][::20][:3]
    night = [i for i, c in enumerate(conds) if c == "night"][::10][:2] + [conds.index("fog") + 2]
    return ([render_demo_frame(HELDOUT_SEED, i, SIZE, 120)[0] for i in day],
            [render_demo_frame(HELDOUT_SEED, i, SIZE, 120)[0] for i in night])


def test_bundled_checkpoint_is_small_and_self_describing(bundled):
    assert BUNDLED.stat().st_size < 25 * 1024 * 1024
    assert bundled.scheme == MFNET
    assert bundled.model.config.backbone == "resnet18" and bundled.model.config.base_width == 32
    # the paper's architecture: exchange in the encoder, EO and IR decoders, three heads, the GSU
    # after the decoders feeding the Fusion head
    cfg = bundled.model.config
    assert cfg.exchange_stages and cfg.fusion == "gsu_heads"
    assert {n for n, _ in bundled.model.heads.named_children()} == {"eo", "ir", "fusion"}
    held = bundled.metrics["heldout"]
    assert held["seed"] == HELDOUT_SEED
    assert set(held["day"]) == {"both", "ir", "eo"} and set(held["night+fog"]) == {"both", "ir", "eo"}
    assert bundled.config["model"]["name"] == "csknet-r18s"
    assert bundled.meta["extra"]["training_time"]


def test_runs_in_every_mode_on_a_demo_frame(bundled, heldout):
    frame = heldout[1][0]
    pred = Predictor(bundled.model, "cpu", bundled.scheme, amp=False)
    seen = {}
    for mode in ALL_MODES:
        eo = frame.eo if mode.uses_eo else None
        ir = frame.ir if mode.uses_ir else None
        p = pred.predict(eo, ir, mode, introspect=mode is Mode.BOTH)
        assert p.labels.shape == SIZE and p.labels.dtype == np.uint8
        assert np.isfinite(p.probs.astype(np.float32)).all()
        assert int(p.labels.max()) < MFNET.num_classes
        seen[mode] = p
    both = seen[Mode.BOTH]
    assert set(both.gate_maps) == {"eo", "ir", "sum"}  # the GSU's three inputs
    assert all(float(g.min()) >= 0.0 and float(g.max()) <= 1.0 for g in both.gate_maps.values())
    assert both.exchanged  # the GUI's internals panel has exchange sites to show
    # the modes are genuinely different paths through the network
    assert (seen[Mode.IR].labels != seen[Mode.EO].labels).any()


def test_reaches_a_floor_miou_on_heldout_frames(bundled, heldout):
    day, night = heldout
    k = MFNET.num_classes
    r_day = evaluate(bundled.model, day, ALL_MODES, num_classes=k, amp=False, batch=3)
    r_night = evaluate(bundled.model, night, (Mode.BOTH, Mode.IR, Mode.EO), num_classes=k, amp=False, batch=3)
    # measured on these frames: day both 0.79 / IR 0.72 / EO 0.70, night/fog both 0.78 / IR 0.76 /
    # EO 0.61 (the ensemble model before it: EO 0.40 / 0.29). Floors far below (docs/model.md has
    # the full held-out tables); an untrained net scores ~0.1
    assert r_day[Mode.BOTH].miou > 0.45, r_day[Mode.BOTH].miou
    assert r_day[Mode.IR].miou > 0.40, r_day[Mode.IR].miou
    assert r_day[Mode.EO].miou > 0.40, r_day[Mode.EO].miou  # the EO branch stands on its own
    assert r_night[Mode.BOTH].miou > 0.35, r_night[Mode.BOTH].miou
    assert r_night[Mode.IR].miou > 0.35, r_night[Mode.IR].miou
    # the product's claims: fusion beats either branch by day; IR carries the night, EO alone less so
    assert r_day[Mode.BOTH].miou > max(r_day[Mode.IR].miou, r_day[Mode.EO].miou)
    assert r_night[Mode.IR].miou > r_night[Mode.EO].miou


def test_untrained_model_is_below_the_floor(heldout):
    """The floor is meaningful: the same architecture without training does not pass it."""
    model = create_model("csknet-r18s", num_classes=MFNET.num_classes).eval()
    r = evaluate(model, heldout[0], (Mode.BOTH,), num_classes=MFNET.num_classes, amp=False, batch=3)
    assert r[Mode.BOTH].miou < 0.45


def test_example_configs_parse():
    """The recipe and the MFNet / PST900 / FMB examples are valid TrainConfigs."""
    paths = sorted(glob.glob(str(REPO / "configs" / "*.toml")))
    names = {Path(p).stem for p in paths}
    assert {"default_model", "mfnet_r18", "pst900_r18", "fmb_r18"} <= names
    cfgs = {Path(p).stem: TrainConfig.from_toml(p) for p in paths}
    assert cfgs["fmb_r18"].data.scheme == "fmb" and cfgs["pst900_r18"].data.scheme == "pst900"
    d = cfgs["default_model"]
    assert d.model.name == "csknet-r18s" and d.loss.contrastive > 0 and d.teacher.epochs > 0
    assert d.modality_dropout > 0 and d.device == "cpu"
    m = create_model(d.model.name, **d.model.overrides)
    assert sum(p.numel() for p in m.parameters()) * 4 < 25 * 1024 * 1024
