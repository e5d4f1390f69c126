"""`csknet-studio finetune` end to end on a tiny demo sequence with a tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csknet_studio.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-frame 64x80 demo sequence and an untrained csknet-tiny checkpoint for its classes."""
    from csknet_studio.core.checkpoint import save_checkpoint
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.model import create_model

    root = tmp_path_factory.mktemp("ft")
    seq_dir = root / "demo"
    assert main(["demo", "--out", str(seq_dir), "--frames", "6", "--size", "64x80", "--quiet"]) == 0
    seq = open_sequence(seq_dir)
    ckpt = root / "tiny.pt"
    save_checkpoint(ckpt, create_model("csknet-tiny", num_classes=seq.scheme.num_classes), scheme=seq.scheme)
    seq.close()
    return seq_dir, ckpt


def _correct(seq_dir: Path, frames: list[int]) -> Path:
    """A project where the user corrected `frames` (to their ground truth), saved beside the sequence."""
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.session import AnnotationSession

    seq = open_sequence(seq_dir)
    session = AnnotationSession(seq, autosave=False)
    for i in frames:
        session.set_prediction(i, seq[i].label)
        session.accept_prediction(i)
    session.save()
    seq.close()
    return session.project_path


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_finetune_on_project_corrections_writes_only_on_a_gain(demo, tmp_path, capsys):
    from csknet_studio.core.checkpoint import load_checkpoint

    seq_dir, ckpt = demo
    _correct(seq_dir, [0, 2, 4])
    out = tmp_path / "ft.pt"
    rc = main(["finetune", str(seq_dir), "--checkpoint", str(ckpt), "--out", str(out), "--steps", "10",
               "--lr", "1e-2", "--json", "--quiet", "--device", "cpu"])
    text = capsys.readouterr().out
    res = _last_json(text)
    assert set(res) >= {"before", "after", "held_out", "improved"}
    assert res["held_out"]["kind"] == "regions" and res["held_out"]["frames"] == [0, 2, 4]
    assert "held-out mIoU: before" in text and 0 <= res["before"] <= 100 and 0 <= res["after"] <= 100
    assert rc == (0 if res["improved"] else 1) and out.is_file() == res["improved"]
    if not res["improved"]:
        assert "No gain on held-out corrections" in text
    # --force writes the trained weights whatever the figures say; they load as a checkpoint
    assert main(["finetune", str(seq_dir), "--checkpoint", str(ckpt), "--out", str(out), "--steps", "10",
                 "--lr", "1e-2", "--json", "--quiet", "--force", "--device", "cpu"]) == 0
    forced = _last_json(capsys.readouterr().out)
    loaded = load_checkpoint(out)
    assert forced["written"] == str(out) and loaded.weights_hash == forced["weights_hash"]
    assert loaded.weights_hash != load_checkpoint(ckpt).weights_hash
    assert loaded.meta["extra"]["base_weights_hash"] == load_checkpoint(ckpt).weights_hash
    assert loaded.metrics["finetune"]["held_out"]["kind"] == "regions"


def test_finetune_from_ground_truth_labels_holds_out_frames(demo, tmp_path, capsys):
    seq_dir, ckpt = demo
    out = tmp_path / "gt.pt"
    rc = main(["finetune", str(seq_dir), "--checkpoint", str(ckpt), "--out", str(out), "--from-labels", "0-3,5",
               "--steps", "5", "--json", "--quiet", "--force", "--device", "cpu"])
    res = _last_json(capsys.readouterr().out)
    assert rc == 0 and out.is_file()
    assert res["frames"] == [0, 1, 2, 3, 5]
    assert res["held_out"]["kind"] == "frames" and res["held_out"]["frames"] == [2]


def test_finetune_bad_input_is_one_line(demo, tmp_path, capsys):
    seq_dir, ckpt = demo
    base = ["finetune", str(seq_dir), "--out", str(tmp_path / "x.pt"), "--quiet"]
    assert main(base + ["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    for spec, words in (("3-x", "bad frame list"), ("4-2", "bad range"), ("0-99", "out of range")):
        assert main(base + ["--checkpoint", str(ckpt), "--from-labels", spec]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty.csknet"
    assert main(base + ["--checkpoint", str(ckpt), "--project", str(empty)]) == 2
    assert "no corrections" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
