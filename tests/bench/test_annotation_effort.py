"""bench/annotation_effort.py: the scripted annotator still brings every frame to the target
agreement through the session, in every configuration, and counts what it did."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from csknet_studio.core.edits import Origin
from csknet_studio.core.model import create_model

BENCH = Path(__file__).resolve().parents[2] / "bench" / "annotation_effort.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("annotation_effort", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_every_configuration_labels_every_frame_to_the_target(bench):
    torch.manual_seed(0)
    frames = bench.render_frames(bench.SEED, 3, (48, 64))
    assert {"day", "night", "fog"} <= set(frames.conditions)
    model = create_model("csknet-tiny").eval()  # untrained: its predictions are mostly wrong
    predictions = bench.Predictor(model, "cpu", amp=False).predict_labels([frames.pair(i) for i in range(3)])
    results = {}
    for name, aids in bench.configurations(finetune_every=2, propagate_frames=2).items():
        r = bench.run_config(frames, aids, model if aids.predict else None,
                             predictions if aids.predict else None, finetune_steps=2)
        results[name] = r
        assert [f.index for f in r.frames] == [0, 1, 2]
        for f in r.frames:
            assert f.agreement >= bench.TARGET, (name, f)
            assert f.actions > 0 and sum(f.kinds.values()) == f.actions, (name, f)
        assert r.actions == sum(f.actions for f in r.frames)
    assert results["manual"].kinds()["accept"] == 0 and results["manual"].kinds()["take click"] == 0
    assert results["manual"].frames[0].painted > 0
    assert results["finetune"].kinds()["fine-tune"] == 2 * len(results["finetune"].finetunes) > 0
    assert results["propagate"].kinds()["propagate"] > 0


def test_the_annotator_leaves_corrected_frames_in_the_session(bench):
    frames = bench.render_frames(bench.SEED, 2, (48, 64))
    annotator = bench.Annotator(frames, bench.configurations()["manual"])
    tallies = [annotator.label_frame(i) for i in range(2)]
    assert annotator.session.origins() == [Origin.CORRECTED] * 2
    for i, tally in enumerate(tallies):
        agree = float((annotator.session.labels(i) == frames.truth[i]).mean())
        assert agree == pytest.approx(tally.agreement) and agree >= bench.TARGET
        assert tally.start_agreement == 0.0  # manual work starts from an empty frame
    assert annotator.session.can_undo  # every change was a session edit


def test_the_gui_brush_ladder(bench):
    assert bench.LADDER[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14]
    assert bench.ladder_radius(0.2) == 1 and bench.ladder_radius(11.2) == 12
