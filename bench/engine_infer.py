"""Predictor overhead: numpy frame in -> numpy Prediction out, against the plain model forward on
ready-made tensors, per modality mode, in one process (interleaved rounds, median / min).

Predictor adds input normalisation (numpy -> tensor), softmax, normalised entropy, argmax and the
copies to owned numpy arrays; the target is <= 1.15x the plain forward. Test-time mirroring
(`mirror=True`: a second forward on the mirrored frame and the mean of the two softmaxes) is timed
against the same Predictor call without it; it should cost about 2x. Also batch inference over a
sequence (`infer_sequence`, PNG writing included) at batch 1 and 4 against a plain loop of forwards.

    .venv/bin/python bench/engine_infer.py --threads 2
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time

import numpy as np
import torch
from _timing import model_parser

from csknet_studio.core.batch_infer import infer_sequence
from csknet_studio.core.classes import MFNET
from csknet_studio.core.model import create_model, to_tensors
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.predictor import Predictor


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = model_parser(__doc__, repeats=6)
    ap.add_argument("--frames", type=int, default=8, help="frames for the batch-inference case")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    h, w = args.height, args.width
    model = create_model(args.model).eval()
    pred = Predictor(model, "cpu", MFNET, amp=False)
    eo_np = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    ir_np = rng.integers(0, 65535, (h, w), dtype=np.uint16)
    eo_t, ir_t = to_tensors(eo_np, ir_np, model.config.input_norm)
    print(f"{args.model} {h}x{w}, {args.threads} thread(s), {platform.processor() or platform.machine()}")

    def plain(mode: Mode):
        with torch.inference_mode():
            model(eo_t if mode.uses_eo else None, ir_t if mode.uses_ir else None)

    for fn in (lambda: plain(Mode.BOTH), lambda: pred.predict(eo_np, ir_np, Mode.BOTH)):
        fn()  # warm-up
    print(f"{'mode':<10}{'plain forward ms':>18}{'Predictor ms':>15}{'ratio':>8}{'mirrored ms':>14}{'/ Predictor':>12}")
    for mode in ALL_MODES:
        a, b, c = [], [], []
        for _ in range(args.repeats):  # interleave so load changes hit every case alike
            a += _time(lambda m=mode: plain(m), 1)
            b += _time(lambda m=mode: pred.predict(eo_np, ir_np, m), 1)
            c += _time(lambda m=mode: pred.predict(eo_np, ir_np, m, mirror=True), 1)
        ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
        print(f"{mode.value:<10}{ma:>12.1f} (min {min(a):.0f}){mb:>9.1f} (min {min(b):.0f}){mb / ma:>7.3f}"
              f"{mc:>14.1f}{mc / mb:>12.3f}")

    from csknet_studio.core.data import ArraySequence

    n = args.frames
    seq = ArraySequence(np.stack([eo_np] * n), np.stack([ir_np] * n), names=[f"{i:04d}" for i in range(n)])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for _ in range(n):
            plain(Mode.BOTH)
        base = n / (time.perf_counter() - t0)
        print(f"batch inference, {n} frames, mode both: plain forward loop {base:.2f} frames/s")
        for batch in (1, 4):
            r = infer_sequence(pred, seq, Mode.BOTH, f"{tmp}/b{batch}", batch=batch)
            fps = r.frames / r.seconds
            print(f"  infer_sequence batch {batch}: {fps:.2f} frames/s ({fps / base:.3f}x plain, PNGs written)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
