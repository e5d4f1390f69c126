"""`csknet-studio demo` writes the demo sequence through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from csknet_studio.cli import main


def test_cli_demo_writes_frames_and_metadata(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--frames", "4", "--size", "120x160", "--seed", "3", "--quiet"])
    assert rc == 0
    meta = json.loads((out / "demo.json").read_text())
    assert meta["n_frames"] == 4 and meta["size"] == [120, 160] and meta["seed"] == 3
    for sub in ("eo", "ir", "labels"):
        assert len(list((out / sub).glob("*.png"))) == 4
    assert str(out) in capsys.readouterr().out


def test_cli_demo_reports_bad_input(tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    assert main(["demo", "--out", str(busy), "--frames", "2", "--size", "120x160"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "z"), "--frames", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path / "y"), "--size", "big"])
