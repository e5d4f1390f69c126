"""scripts/default_model_report.py: the gate statistics' pixel sets mean what the report's
columns say, and every gate gets every statistic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csknet_studio.core.demo import render_demo_frame
from csknet_studio.core.model import create_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "default_model_report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("default_model_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_interior_regions_leave_out_both_sides_of_every_boundary_and_split_on_texture(report) -> None:
    h, w = 40, 64
    label = np.zeros((h, w), np.uint8)
    label[:, 32:] = 1
    rng = np.random.default_rng(0)
    grey = np.full((h, w), 100.0, np.float32)
    grey[:, :32] += rng.normal(0, 40, (h, 32)).astype(np.float32)  # textured left region, flat right one
    interior, _ = report._interior_contrast(grey, label, (h, w))
    # the boundary pixels are columns 31 and 32; nothing within 3 px of either is interior
    assert not interior[:, 28:36].any()
    assert interior[:, :28].all() and interior[:, 36:].all()
    regions = report._texture_regions(grey, label, (h, w))
    cols = np.nonzero(regions["textured_interior"])[1]
    assert cols.size and cols.max() < 28
    cols = np.nonzero(regions["flat_interior"])[1]
    assert cols.size and cols.min() >= 36


def test_gate_statistics_cover_every_gate_stat_and_condition(report) -> None:
    torch.manual_seed(0)
    model = create_model("csknet-tiny").eval()
    frames = [render_demo_frame(1000, i, (96, 128), 120) for i in (2, 60, 110)]
    frames = [(f, "day") for f, _ in frames[:2]] + [(frames[2][0], "night")]
    stats = report.gate_statistics(model, frames)
    assert set(stats) == {"eo", "ir", "sum"}
    for groups in stats.values():
        assert set(groups) == {"day", "night+fog"}
        for d in groups.values():
            assert set(d) == set(report.GATE_STATS)
            assert all(0.0 <= v <= 1.0 for v in d.values())
    table = report.gate_table(stats)
    assert table.count("\n") == 2 + 3 * 2 - 1
