"""Picture of the correction loop: a corrected frame, its labels propagated, a propagated frame shown.

    python scripts/loop_screenshot.py [--sequence DIR | --demo-frames 40] [--frame 17] [--count 10]
           [--show 22] [--out docs/images/propagated_timeline.png]

Renders a short demo sequence (seed 0, 40 frames, so a stretch of 10 frames is a quarter of the
timeline) into a temp folder, or uses the sequence given (`--sequence ~/.cache/csknet-studio/demo-v2-seed0`
is the one the app opens). A project is made in the temp folder, through the same session calls
the GUI makes:
- the bundled model's predictions are set on the corrected frame and on the frames after it;
- frame `--frame` (1-based) is corrected: its ground-truth mask is set as the prediction, then
  accepted;
- its labels are propagated over the next `--count` frames (core/propagate.py), and the result is
  applied as one edit.

Then the GUI opens that project offscreen on frame `--show` and saves the window once the frame is
segmented, so the amber stretch shows in the timeline and the frame list.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.data import open_sequence
from csknet_studio.core.demo import generate_demo
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Predictor
from csknet_studio.core.propagate import propagate_labels, propagation_targets
from csknet_studio.core.session import AnnotationSession
from csknet_studio.resources import resource_path

ROOT = Path(__file__).resolve().parents[1]


def make_project(sequence: Path, project: Path, frame: int, count: int) -> list[int]:
    """Correct frame index `frame` from its ground truth and propagate it; returns the frames set."""
    seq = open_sequence(sequence)
    loaded = load_checkpoint(resource_path("default_model.pt"))
    predictor = Predictor(loaded.model, "cpu", loaded.scheme, num_threads=1)
    session = AnnotationSession(seq, project, scheme=loaded.scheme)
    try:
        targets = propagation_targets(session.origins(), frame, count, +1)
        for i in [frame, *targets]:
            f = seq[i]
            session.set_prediction(i, predictor.predict(f.eo, f.ir, Mode.BOTH).labels)
        truth = seq[frame].label
        if truth is None:
            raise SystemExit(f"frame {frame + 1} has no ground-truth mask to correct it with")
        session.set_prediction(frame, np.array(truth))
        session.accept_prediction(frame)
        results = propagate_labels(seq, frame, session.labels(frame), targets, session.prediction)
        done = session.apply_propagation({r.index: r.labels for r in results})
        session.save()
    finally:
        session.close()
        seq.close()
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequence", type=Path, default=None, help="default: a fresh demo sequence")
    ap.add_argument("--demo-frames", type=int, default=40, help="length of the fresh demo sequence")
    ap.add_argument("--frame", type=int, default=17, help="frame to correct (1-based; 17-28 are day)")
    ap.add_argument("--count", type=int, default=10, help="frames to propagate to")
    ap.add_argument("--show", type=int, default=22, help="frame shown in the screenshot (1-based)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "propagated_timeline.png")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="loopshot-") as tmp:
        sequence = args.sequence or Path(generate_demo(Path(tmp) / "demo", n_frames=args.demo_frames))
        project = Path(tmp) / "demo.csknet"
        done = make_project(sequence, project, args.frame - 1, args.count)
        print(f"frame {args.frame} corrected; propagated to frames {done[0] + 1}-{done[-1] + 1}")
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(Path(tmp) / "config"))
        cmd = [sys.executable, "-m", "csknet_studio", str(project), "--frame", str(args.show),
               "--device", "cpu", "--theme", "dark", "--screenshot", str(args.out)]
        return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
