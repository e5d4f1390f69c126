"""`csknet-studio train / eval / infer` end to end on a tiny generic-layout dataset in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from csknet_studio.cli import main


@pytest.mark.slow
def test_train_eval_infer_cli(tmp_path: Path, capsys, write_generic_dataset, make_frames, tiny_config_toml):
    data = write_generic_dataset(tmp_path / "data", make_frames(8, size=64, seed=0))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(tiny_config_toml(data, tmp_path / "run", epochs=1))
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "done: 1 epoch(s)" in out.out and "epoch 1: loss" in out.err
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "best.pt").is_file()

    # --resume with more epochs continues from epoch 1
    assert main(["train", "--config", str(cfg), "--resume", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr()
    assert "resumed from" in out.err and "epoch 2: loss" in out.err and "epoch 1: loss" not in out.err

    ckpt = tmp_path / "run" / "last.pt"
    assert main(["eval", "--checkpoint", str(ckpt), str(data), "--modes", "both,ir", "--quiet",
                 "--json", str(tmp_path / "m.json")]) == 0
    table = capsys.readouterr().out
    for word in ("background", "box", "person", "EO + IR", "IR only", "mIoU"):
        assert word in table
    assert "EO only" not in table
    assert (tmp_path / "m.json").is_file()

    assert main(["infer", str(data), "--checkpoint", str(ckpt), "--mode", "ir", "--out", str(tmp_path / "masks"),
                 "--batch", "3", "--quiet"]) == 0
    assert len(list((tmp_path / "masks").glob("f*.png"))) == 8
    assert main(["eval", "--checkpoint", str(ckpt), str(data), "--modes", "ir", "--quiet", "--mirror"]) == 0
    assert "IR only" in capsys.readouterr().out
    assert main(["infer", str(data), "--checkpoint", str(ckpt), "--mode", "both", "--mirror", "--quiet",
                 "--out", str(tmp_path / "mirrored")]) == 0
    assert len(list((tmp_path / "mirrored").glob("f*.png"))) == 8


def test_cli_errors_are_one_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('colour = "red"\n[data]\npath = "x"\n')
    assert main(["train", "--config", str(bad)]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(bad), str(tmp_path)]) == 2
    assert "not a torch checkpoint" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(bad), str(tmp_path), "--modes", "rgb"]) == 2
    assert "rgb" in capsys.readouterr().err
