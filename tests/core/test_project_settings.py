"""The IR temperature scale kept in the project: round trip, applied on the next open unless one is
given, untouched by the session's saves, and `export --ir-scale` keeping it for later commands."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from csknet_studio.core import project_settings as ps
from csknet_studio.core.data import open_sequence
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.radiometry import LinearScale
from csknet_studio.core.registration import open_aligned
from csknet_studio.core.session import AnnotationSession

H, W = 24, 32


def _folder(root, n=3):
    """eo/ (grey PNG) and ir/ (16-bit PNG, 31315 + i: 40.00 + i/100 °C in centikelvin) folders."""
    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.full((H, W, 3), 40 * i + 20, np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), np.full((H, W), 31315 + i, np.uint16))
    return root


def _make_project(root):
    seq = open_sequence(root)
    s = AnnotationSession(seq)
    s.paint_stroke(1, [(5, 5), (9, 6)], 1, 2)
    s.close()
    seq.close()
    return root.with_name(root.name + ".csknet")


def test_the_scale_round_trips_through_the_project(tmp_path):
    project = tmp_path / "p.csknet"
    assert ps.stored_ir_scale_text(None, project) is None and ps.stored_ir_scale(None, project) is None
    ps.store_ir_scale(project, " 0.04,-273.15 ")
    assert ps.stored_ir_scale_text(None, project) == "0.04,-273.15"
    assert ps.stored_ir_scale(None, project) == LinearScale(0.04, -273.15, "project")
    ps.save_setting(project, "other", 1)  # other settings stay beside it
    ps.store_ir_scale(project, "centikelvin")
    assert ps.load_settings(project) == {"ir_scale": "centikelvin", "other": 1}
    ps.store_ir_scale(project, "")  # forgotten: the files speak again
    assert ps.load_settings(project) == {"other": 1}
    with pytest.raises(ValueError, match="GAIN,OFFSET"):
        ps.store_ir_scale(project, "warm-ish")
    (project / ps.SETTINGS).write_text('{"ir_scale": "furlongs"}')
    with pytest.raises(ProjectError, match="bad IR scale"):
        ps.stored_ir_scale(None, project)
    (project / ps.SETTINGS).write_text("[1, 2")
    with pytest.raises(ProjectError, match="unreadable"):
        ps.load_settings(project)
    assert ps.stored_ir_scale(("eo.mp4", "ir.mp4")) is None  # a pair of videos: no project beside them


def test_the_next_open_applies_the_kept_scale_and_a_given_one_wins(tmp_path):
    root = _folder(tmp_path / "seq")
    project = _make_project(root)
    with open_aligned(root, prefetch=0) as seq:
        assert not seq.radiometric
    ps.store_ir_scale(project, "centikelvin")
    with open_aligned(root, prefetch=0) as seq:
        assert seq.radiometry == LinearScale(0.01, -273.15, "project")
        assert seq[2].ir_celsius()[0, 0] == pytest.approx(40.02, abs=1e-4)
    with open_aligned(root, prefetch=0, ir_scale="kelvin") as seq:
        assert seq.radiometry == LinearScale(1.0, -273.15, "user")
    # the session rewrites the manifest on every save and close: the scale stays
    seq = open_aligned(root)
    s = AnnotationSession(seq)
    s.paint_stroke(0, [(3, 3)], 2, 1)
    s.save()
    s.close()
    seq.close()
    assert ps.stored_ir_scale_text(root) == "centikelvin"


def test_cli_export_keeps_the_scale_for_later_commands(tmp_path, capsys):
    import h5py

    from csknet_studio.cli import main

    root = _folder(tmp_path / "seq")
    project = _make_project(root)
    out = tmp_path / "out.h5"
    assert main(["export", str(root), "--out", str(out), "--copy-images", "--ir-scale", "centikelvin",
                 "--quiet"]) == 0
    assert json.loads((project / ps.SETTINGS).read_text()) == {"ir_scale": "centikelvin"}
    capsys.readouterr()
    assert main(["info", str(root), "--no-scan", "--json"]) == 0  # not given: the project's
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["radiometric"] and r["ir_to_celsius"]["gain"] == 0.01 and r["ir_to_celsius"]["source"] == "project"
    again = tmp_path / "again.h5"
    assert main(["export", str(root), "--out", str(again), "--copy-images", "--quiet"]) == 0
    with h5py.File(again, "r") as f:
        assert f["ir_celsius"][2, 0, 0] == pytest.approx(40.02, abs=1e-4)
    assert main(["info", str(root), "--no-scan", "--ir-scale", "kelvin", "--json"]) == 0  # given: it wins
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["ir_to_celsius"]["gain"] == 1.0
    assert ps.stored_ir_scale_text(root) == "centikelvin"  # info reports, it keeps nothing
