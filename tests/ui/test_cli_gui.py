"""`csknet-studio --screenshot` end to end in a subprocess (offscreen Qt), and the no-display hint."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import pytest


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1", **extra)
    return env


def _run(args, env, timeout=120):
    code = "import sys; from csknet_studio.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _sequence_and_checkpoint(synthetic_frames, tmp_path, tiny_model):
    from csknet_studio.core.checkpoint import save_checkpoint
    from csknet_studio.core.classes import MFNET

    seq = tmp_path / "seq"
    (seq / "eo").mkdir(parents=True)
    (seq / "ir").mkdir()
    eo, ir = synthetic_frames(n=3)
    for i in range(3):
        cv2.imwrite(str(seq / "eo" / f"{i:04d}.png"), eo[i][..., ::-1])
        cv2.imwrite(str(seq / "ir" / f"{i:04d}.png"), ir[i])
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny_model, scheme=MFNET)
    return seq, ckpt


@pytest.mark.slow
def test_screenshot_writes_png_of_segmented_window(tmp_path, tiny_model, synthetic_frames):
    seq, ckpt = _sequence_and_checkpoint(synthetic_frames, tmp_path, tiny_model)
    shot = tmp_path / "shot.png"
    r = _run([str(seq), "--checkpoint", str(ckpt), "--device", "cpu", "--screenshot", str(shot)],
             _env(tmp_path, QT_QPA_PLATFORM="offscreen"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(frame 1)" in r.stdout
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 300 and img.shape[1] > 500
    assert img.std() > 10  # a rendered window, not a blank image
    confs = list((tmp_path / "config").rglob("*.conf"))
    assert confs and "recent" in confs[0].read_text()  # settings went to our temp home, not the user's


def test_without_display_says_how_to_run(tmp_path):
    r = _run([], _env(tmp_path), timeout=60)
    assert r.returncode == 2
    assert "no display" in r.stderr and "xvfb-run -a csknet-studio" in r.stderr and "--screenshot" in r.stderr


@pytest.mark.slow
def test_frame_opens_that_frame_one_based(tmp_path, tiny_model, synthetic_frames):
    seq, ckpt = _sequence_and_checkpoint(synthetic_frames, tmp_path, tiny_model)
    shot = tmp_path / "shot.png"
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen")
    r = _run([str(seq), "--frame", "3", "--checkpoint", str(ckpt), "--device", "cpu", "--screenshot", str(shot)], env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"screenshot written to {shot} (frame 3)" in r.stdout
    r = _run([str(seq), "--frame", "4", "--checkpoint", str(ckpt), "--device", "cpu", "--screenshot", str(shot)], env)
    assert r.returncode == 2
    assert "--frame 4: the sequence has 3 frames" in r.stderr


@pytest.mark.parametrize("text", ["0", "-2", "x"])
def test_frame_below_one_is_refused(text):
    from csknet_studio.cli import build_parser

    parser = build_parser(["--frame", text])
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--frame", text])
    assert exc.value.code == 2
    assert build_parser(["--frame", "7"]).parse_args(["--frame", "7"]).frame == 7
