from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.model import create_model
from csknet_studio.core.model.streams import ExchangeBN
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Predictor
from csknet_studio.ui.feature_worker import FeatureWorker
from csknet_studio.ui.internals_panel import DIRECTIONS, InternalsPanel


@pytest.fixture(scope="module")
def setup():
    model = create_model("csknet-tiny").eval()
    sites = [m for m in model.modules() if isinstance(m, ExchangeBN)]
    with torch.no_grad():  # make the exchange visible: small gammas are what training produces
        sites[0].eo.weight[[1, 3]] = 0.0
        c = sites[-1].ir.weight.numel()
        sites[-1].ir.weight[[c - 6, c - 3, c - 1]] = 0.0  # IR's penalised half: the second
    rng = np.random.default_rng(1)
    eo = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (40, 56), dtype=np.uint8)
    pred = Predictor(model, "cpu").predict(eo, ir, Mode.BOTH, introspect=True)
    return model, eo, ir, pred


def test_gate_maps_exchange_plot_and_entropy_show_the_prediction(qtbot, setup):
    _, eo, ir, pred = setup
    panel = InternalsPanel()
    qtbot.addWidget(panel)
    panel.set_frame(eo, ir, {"eo": (0, 255), "ir": (0, 255)})
    panel.set_prediction(pred)

    stages = [panel.stage_combo.itemData(i) for i in range(panel.stage_combo.count())]
    assert stages == ["eo", "ir", "sum"] and set(stages) == set(pred.gate_maps)
    assert panel.stage_combo.itemText(0) == "EO decoder"
    for i, stage in enumerate(stages):
        panel.stage_combo.setCurrentIndex(i)
        shown = panel.gate_view.heat.image
        np.testing.assert_array_equal(shown, pred.gate_maps[stage])
        assert shown.min() >= 0.0 and shown.max() <= 1.0
        assert tuple(panel.gate_view.heat.levels) == (0.0, 1.0)  # fixed, never auto
        rect = panel.gate_view.heat.mapRectToParent(panel.gate_view.heat.boundingRect())
        assert (rect.width(), rect.height()) == (56, 40)  # stretched over the frame it blends with
    assert panel.gate_view.background.image is not None  # blended over EO by default
    panel.blend_combo.setCurrentIndex(0)
    assert panel.gate_view.background.image is None

    assert panel.exchange_layers() == list(pred.exchanged)
    total = 0
    for d in DIRECTIONS:
        expect = np.concatenate([pred.exchanged[s][d] for s in pred.exchanged])
        pts = panel.exchange_points(d)
        np.testing.assert_array_equal(pts[:, 0], expect)
        rows = np.concatenate([np.full(len(pred.exchanged[s][d]), r) for r, s in enumerate(pred.exchanged)])
        np.testing.assert_array_equal(pts[:, 1], rows)
        total += len(expect)
    assert total == 5  # the five gammas zeroed above
    assert "IR\u2192EO: 2" in panel.exchange_info.text() and "EO\u2192IR: 3" in panel.exchange_info.text()

    np.testing.assert_array_equal(panel.entropy_view.heat.image, pred.entropy)
    assert f"{pred.entropy.mean():.3f}" in panel.entropy_info.text()
    assert panel.entropy_view.background.image is None
    panel.entropy_blend_combo.setCurrentIndex(2)  # over IR
    np.testing.assert_array_equal(panel.entropy_view.background.image, ir)  # levels 0..255: unchanged
    with qtbot.waitSignal(panel.next_uncertain_requested):
        panel.next_button.click()


def test_clicking_a_channel_shows_it_before_and_after_exchange(qtbot, setup):
    model, eo, ir, pred = setup
    panel = InternalsPanel()
    qtbot.addWidget(panel)
    panel.set_prediction(pred)
    worker = FeatureWorker()
    panel.channel_selected.connect(lambda s, d, c: worker.request(model, eo, ir, s, d, c, tag=(s, d, c)))
    worker.ready.connect(lambda tag, m: panel.set_feature_maps(m.site, tag[1], m.channel, m.before, m.after))
    sp = panel.exchange_scatter["ir->eo"]
    point = sp.points()[1]
    with qtbot.waitSignal(worker.ready, timeout=20000) as sig:
        sp.sigClicked.emit(sp, [point], None)
    maps = sig.args[1]
    site = panel.exchange_layers()[0]
    assert (maps.site, maps.stream, maps.channel, maps.exchanged) == (site, "eo", 3, True)
    np.testing.assert_array_equal(panel.feature_items["before"].image, maps.before)
    np.testing.assert_array_equal(panel.feature_items["after"].image, maps.after)
    assert not np.allclose(maps.before, maps.after)
    assert "channel 3" in panel.feature_title.text()
    worker.shutdown()


def test_ir_only_prediction_explains_why_there_are_no_gates(qtbot, setup):
    model, eo, ir, _ = setup
    pred = Predictor(model, "cpu").predict(None, ir, Mode.IR, introspect=True)
    panel = InternalsPanel()
    qtbot.addWidget(panel)
    panel.set_prediction(pred)
    assert panel.stage_combo.count() == 0 and panel.gate_view.heat.image is None
    assert "both streams" in panel.gate_info.text()
    assert panel.exchange_points("ir->eo").shape == (0, 2)
    np.testing.assert_array_equal(panel.entropy_view.heat.image, pred.entropy)


def test_the_ensemble_models_stage_gates_keep_their_meaning(qtbot):
    """An older checkpoint's in-encoder gates are weights on EO, not the GSU's per-input shares."""
    model = create_model("csknet-tiny", fusion="logit_ensemble", gsu_stages=(3, 4), bn_stats="shared").eval()
    rng = np.random.default_rng(2)
    eo = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (40, 56), dtype=np.uint8)
    pred = Predictor(model, "cpu").predict(eo, ir, Mode.BOTH, introspect=True)
    panel = InternalsPanel()
    qtbot.addWidget(panel)
    panel.set_frame(eo, ir, {"eo": (0, 255), "ir": (0, 255)})
    panel.set_prediction(pred)
    assert [panel.stage_combo.itemData(i) for i in range(panel.stage_combo.count())] == ["layer3", "layer4"]
    assert "1 = EO" in panel.gate_view.colorbar.getAxis("left").labelText
    assert "share of EO in the fused feature" in panel.gate_info.text()


def test_a_new_caption_leaves_the_maps_their_size(qtbot, setup):
    """Frame changes swap "No prediction yet." and three lines of figures under the maps: the maps
    must not be resized each time (their colour bars' axes are laid out again in Python), and
    their colours come from the bar's fixed map, not from a link that re-ticks the bar."""
    _, eo, ir, pred = setup
    panel = InternalsPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 600)
    panel.show()
    panel.set_frame(eo, ir, {"eo": (0, 255), "ir": (0, 255)})
    panel.set_prediction(pred)
    qtbot.wait(50)
    size = panel.gate_view.size()
    for p in (None, pred, None, pred):
        panel.set_prediction(p)
        qtbot.wait(20)
        assert panel.gate_view.size() == size
    lut = panel.gate_view.heat.lut
    assert lut is not None and len(lut) == 256
