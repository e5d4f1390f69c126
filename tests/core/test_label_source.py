"""Every provider of labels that export reads is a `LabelSource`, and the writers accept each one."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from csknet_studio.core.batch_infer import PredictedLabels
from csknet_studio.core.classes import MFNET
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.export import export_hdf5
from csknet_studio.core.label_source import LabelSource
from csknet_studio.core.model import create_model
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Predictor
from csknet_studio.core.session import AnnotationSession


@pytest.fixture
def seq():
    rng = np.random.default_rng(0)
    return ArraySequence(rng.integers(0, 255, (3, 32, 32, 3), np.uint8), rng.integers(0, 255, (3, 32, 32), np.uint8),
                         names=["a", "b", "c"])


def test_the_session_and_the_batch_predictions_are_label_sources(seq, tmp_path):
    import torch

    session = AnnotationSession(seq, autosave=False)
    session.paint_stroke(0, [(5, 5)], 2, 3)
    model = create_model("csknet-tiny", num_classes=MFNET.num_classes)
    batch = PredictedLabels(Predictor(model, torch.device("cpu"), MFNET), seq, Mode.BOTH)
    for source, origins in ((session, [b"corrected", b"unlabelled", b"unlabelled"]),
                            (batch, [b"predicted"] * 3)):
        assert isinstance(source, LabelSource)
        out = tmp_path / f"{type(source).__name__}.h5"
        export_hdf5(source, out)
        with h5py.File(out) as f:
            assert list(f["frame_origin"][()]) == origins and f["labels"].shape == (3, 32, 32)
