"""Training crops see IR exactly as inference sees it inside the whole frame (percentile stretch)."""

from __future__ import annotations

import numpy as np
import torch

from csknet_studio.core.finetune import FinetuneConfig
from csknet_studio.core.finetune_data import _make_batch, _whole_frame_samples
from csknet_studio.core.frames import FramePair
from csknet_studio.core.model.preprocess import InputNorm, ir_to_tensor, whole_frame_ir
from csknet_studio.core.modes import Mode
from csknet_studio.core.training.config import AugmentConfig
from csknet_studio.core.training.data import SegmentationDataset

PCT = InputNorm(ir_scale="percentile")


def _frame() -> FramePair:
    """A cool wall on the left, a hot person on the right: a crop of the wall alone has a narrow range."""
    rng = np.random.default_rng(0)
    ir = (29000 + rng.integers(0, 40, (64, 96))).astype(np.uint16)
    ir[:, :40] += 300  # wall, a little warmer than the street
    ir[20:50, 70:80] = 31000  # person
    eo = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    return FramePair("f", eo, ir, np.zeros((64, 96), np.uint8))


def test_a_training_crop_gets_the_whole_frame_ir_stretch() -> None:
    frame = _frame()
    whole = ir_to_tensor(frame.ir, PCT)[0, 0]  # what inference feeds the network
    ds = SegmentationDataset([frame], [0], PCT, AugmentConfig(crop=(32, 32), scale=(1.0, 1.0), flip=0,
                                                              photometric=0), train=False)
    crop = ds[0]["ir"][0]
    y, x = (64 - 32) // 2, (96 - 32) // 2  # the evaluation (centre) crop
    torch.testing.assert_close(crop, whole[y:y + 32, x:x + 32])
    # Stretched by its own range, the same crop would look nothing like it does at inference.
    own = ir_to_tensor(frame.ir[y:y + 32, x:x + 32], PCT)[0, 0]
    assert (own - whole[y:y + 32, x:x + 32]).abs().max() > 1.0
    # Random training crops (some hold only the wall and street): each is a window of the whole
    # frame's tensor, never re-stretched by its own range.
    ds_train = SegmentationDataset([frame], [0], PCT, AugmentConfig(crop=(32, 32), scale=(1.0, 1.0), flip=0,
                                                                    photometric=0), seed=3)
    for epoch in range(4):
        ds_train.set_epoch(epoch)
        assert _window_of(ds_train[0]["ir"][0], whole)


def _window_of(crop: torch.Tensor, whole: torch.Tensor) -> bool:
    h, w = crop.shape
    return any(torch.allclose(crop, whole[y:y + h, x:x + w])
               for y in range(whole.shape[0] - h + 1) for x in range(whole.shape[1] - w + 1))


def test_other_ir_norms_are_left_to_the_crop_and_finetune_crops_match_inference() -> None:
    frame = _frame()
    dtype_norm = InputNorm()
    ir, norm = whole_frame_ir(frame.ir, dtype_norm)
    assert ir is frame.ir and norm is dtype_norm
    stretched, finish = whole_frame_ir(frame.ir, PCT)
    assert stretched.dtype == np.float32 and finish.ir_scale == 1.0
    torch.testing.assert_close(ir_to_tensor(stretched, finish), ir_to_tensor(frame.ir, PCT))

    whole = ir_to_tensor(frame.ir, PCT)[0, 0]
    cfg = FinetuneConfig(crop=(32, 32), flip=False)
    samples, finish = _whole_frame_samples([(frame.eo, frame.ir, frame.label)], PCT)
    _, ir_t, labels = _make_batch(samples, [0], cfg, Mode.IR, finish, torch.device("cpu"),
                                  np.random.default_rng(0), 255)
    assert _window_of(ir_t[0, 0], whole)  # the crop is a window of what inference sees
