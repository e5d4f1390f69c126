"""Predictor (the GUI worker's engine) and batch inference over a sequence."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from csknet_studio.core.batch_infer import infer_sequence
from csknet_studio.core.errors import CancelledError, ModelInputError
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Predictor


@pytest.fixture(scope="module")
def frames(make_frames):
    return make_frames(5, size=48, seed=2)


@pytest.fixture
def predictor(scheme3):
    from csknet_studio.core.model import create_model

    torch.manual_seed(0)
    return Predictor(create_model("csknet-tiny", num_classes=3), "cpu", scheme3)


def test_prediction_fields(predictor, frames):
    f = frames[0]
    p = predictor.predict(f.eo, f.ir, Mode.BOTH, introspect=True, features=("layer2",))
    assert p.labels.shape == (48, 48) and p.labels.dtype == np.uint8
    assert p.probs.shape == (3, 48, 48) and p.probs.dtype == np.float16
    np.testing.assert_allclose(p.probs.astype(np.float32).sum(0), 1.0, atol=3e-3)
    probs = p.probs.astype(np.float32)  # labels are the argmax (up to float16 ties)
    np.testing.assert_array_equal(np.take_along_axis(probs, p.labels[None].astype(np.int64), 0)[0], probs.max(0))
    assert p.entropy.dtype == np.float32 and p.entropy.min() >= 0 and p.entropy.max() <= 1
    assert p.gate_maps, "both-mode introspection reports gate maps"
    for g in p.gate_maps.values():
        assert g.ndim == 2 and g.dtype == np.float32 and g.min() >= 0 and g.max() <= 1
    assert p.exchanged and all(idx.dtype == np.int64 for d in p.exchanged.values() for idx in d.values())
    assert set(p.features) == {"layer2/eo", "layer2/ir"} or all(k.startswith("layer2") for k in p.features)
    assert all(v.ndim == 2 and v.dtype == np.float32 for v in p.features.values())
    assert p.mode is Mode.BOTH and p.weights_version == 0 and p.ms > 0


def test_missing_modality_modes(predictor, frames):
    f = frames[0]
    ir_only = predictor.predict(None, f.ir, "ir", introspect=True)
    assert ir_only.mode is Mode.IR and not ir_only.gate_maps and not ir_only.exchanged
    eo_only = predictor.predict(f.eo, None, "eo")
    assert eo_only.labels.shape == (48, 48)
    # the unused modality is ignored even when given
    np.testing.assert_array_equal(predictor.predict(f.eo, f.ir, "ir").probs, ir_only.probs)
    with pytest.raises(ModelInputError, match="needs an IR image"):
        predictor.predict(f.eo, None, "both")


def test_predict_batch_equals_single(predictor, frames):
    batch = predictor.predict_batch(frames[:3], Mode.BOTH)
    for f, b in zip(frames[:3], batch, strict=True):
        s = predictor.predict(f.eo, f.ir, Mode.BOTH)
        np.testing.assert_array_equal(s.labels, b.labels)
        np.testing.assert_allclose(s.probs.astype(np.float32), b.probs.astype(np.float32), atol=1e-3)


def test_mirroring_averages_the_frame_with_its_mirror(predictor, frames):
    """Mirrored predictions are the mean of the frame's softmax and its mirror's, so they commute
    with a left-right flip of the input, which the model's own do not; gates stay the frame's own."""
    f = frames[0]
    eo_m, ir_m = f.eo[:, ::-1].copy(), f.ir[:, ::-1].copy()
    for mode in (Mode.BOTH, Mode.IR, Mode.EO):
        plain = predictor.predict(f.eo, f.ir, mode)
        mirrored = predictor.predict(eo_m, ir_m, mode)
        want = (plain.probs.astype(np.float32) + mirrored.probs.astype(np.float32)[:, :, ::-1]) / 2
        on = predictor.predict(f.eo, f.ir, mode, mirror=True)
        np.testing.assert_allclose(on.probs.astype(np.float32), want, atol=2e-3)
        flipped_on = predictor.predict(eo_m, ir_m, mode, mirror=True)
        np.testing.assert_allclose(flipped_on.probs.astype(np.float32)[:, :, ::-1], on.probs.astype(np.float32),
                                   atol=1e-3)
        assert not np.allclose(plain.probs.astype(np.float32), mirrored.probs.astype(np.float32)[:, :, ::-1],
                               atol=1e-3), "the model alone is not mirror-symmetric"
        labels = predictor.predict_labels([f], mode, mirror=True)[0]
        assert (labels == on.labels).mean() > 0.99  # the same mean, ranked in float32 and in float16
    with_gates = predictor.predict(f.eo, f.ir, Mode.BOTH, introspect=True, mirror=True)
    own = predictor.predict(f.eo, f.ir, Mode.BOTH, introspect=True)
    for stage, g in own.gate_maps.items():
        np.testing.assert_array_equal(with_gates.gate_maps[stage], g)
    predictor.mirror = True  # the predictor's default for every call
    np.testing.assert_array_equal(predictor.predict(f.eo, f.ir).probs, predictor.predict(f.eo, f.ir, mirror=True).probs)


def test_evaluate_scores_the_mirrored_mean(frames):
    from csknet_studio.core.evaluate import confusion_matrix, evaluate
    from csknet_studio.core.model import create_model

    torch.manual_seed(0)
    model = create_model("csknet-tiny")  # nine classes
    with torch.no_grad():  # sharper heads: an untrained model would give one class everywhere
        for head in model.heads.values():
            head.bias.zero_()
            head.weight.mul_(20)
    mirrored = Predictor(model, "cpu", amp=False, mirror=True)
    conf = sum(confusion_matrix(mirrored.predict_labels([f], Mode.BOTH)[0], f.label, 9) for f in frames)
    res = evaluate(model, frames, [Mode.BOTH], amp=False, mirror=True)[Mode.BOTH]
    np.testing.assert_array_equal(res.confusion, conf)
    plain = evaluate(model, frames, [Mode.BOTH], amp=False)[Mode.BOTH]
    assert not np.array_equal(plain.confusion, conf)


def test_set_state_dict_bumps_version_and_changes_output(predictor, frames):
    from csknet_studio.core.model import create_model

    f = frames[0]
    before = predictor.predict(f.eo, f.ir)
    torch.manual_seed(1)
    other = create_model("csknet-tiny", num_classes=3).state_dict()
    assert predictor.set_state_dict(other) == 1
    after = predictor.predict(f.eo, f.ir)
    assert after.weights_version == 1 and not np.array_equal(before.probs, after.probs)


def test_predictor_is_safe_across_threads(predictor, frames):
    f = frames[1]
    ref = predictor.predict(f.eo, f.ir).probs
    out, errors = [], []

    def work():
        try:
            for _ in range(3):
                out.append(predictor.predict(f.eo, f.ir).probs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(out) == 9 and all(np.array_equal(ref, o) for o in out)


def test_infer_sequence_png_and_hdf5(tmp_path: Path, predictor, frames, scheme3):
    from csknet_studio.core.data import ArraySequence
    from csknet_studio.core.export_read import read_labels_hdf5
    from csknet_studio.core.palette_png import decode_png_indices

    seq = ArraySequence(np.stack([f.eo for f in frames]), np.stack([f.ir for f in frames]),
                        names=[f.name for f in frames], scheme=scheme3)
    done = []
    res = infer_sequence(predictor, seq, "ir", tmp_path / "masks", batch=2, progress=lambda d, t: done.append((d, t)))
    assert res.frames == 5 and done[-1] == (5, 5)
    for f in frames:
        ids, palette = decode_png_indices((tmp_path / "masks" / f"{f.name}.png").read_bytes())
        np.testing.assert_array_equal(ids, predictor.predict(None, f.ir, "ir").labels)
        np.testing.assert_array_equal(palette[:3], scheme3.palette_array())
    assert (tmp_path / "masks" / "classes.json").is_file()

    h5 = infer_sequence(predictor, seq, "both", tmp_path / "pred.h5", batch=3, fmt="hdf5", checkpoint_hash="abc")
    back = read_labels_hdf5(h5.written[0])
    assert back.labels.shape == (5, 48, 48) and back.mode == "both" and back.checkpoint_hash == "abc"
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(back.labels[i], predictor.predict(f.eo, f.ir).labels)
    assert back.class_names == scheme3.class_names

    calls = iter([False, False, True])
    with pytest.raises(CancelledError):
        infer_sequence(predictor, seq, "both", tmp_path / "cancelled", batch=1, cancel=lambda: next(calls))
    assert len(list((tmp_path / "cancelled").glob("f*.png"))) == 2


def test_batch_inference_on_a_real_mfnet_frame(rgbt_real: Path, tmp_path: Path):
    """The real 4-channel MFNet PNG (RGB + thermal) goes through reader -> Predictor -> indexed PNG."""
    from csknet_studio.core.classes import MFNET
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.model import create_model
    from csknet_studio.core.palette_png import decode_png_indices

    path = rgbt_real / "mfnet_pytorch_samples" / "image" / "01477D.png"
    if not path.is_file():
        pytest.skip("MFNet sample missing")
    seq = open_sequence(path)
    pred = Predictor(create_model("csknet-tiny", num_classes=9), "cpu", MFNET)
    frame = seq[0]
    ir_only = pred.predict(None, frame.ir, "ir")
    assert ir_only.labels.shape == (480, 640) and ir_only.probs.shape == (9, 480, 640)
    res = infer_sequence(pred, seq, "ir", tmp_path / "out", batch=2)
    assert res.frames == 1
    ids, _ = decode_png_indices(res.written[0].read_bytes())
    np.testing.assert_array_equal(ids, ir_only.labels)
