"""The IR percentile stretch works at any frame size and is unchanged where torch.quantile worked.

IR is resampled onto the EO grid, so a 640x512 thermal camera beside a 20 MP visible camera gives
IR frames over torch.quantile's 2**24-value limit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.model.preprocess import InputNorm, ir_percentile_range, ir_to_tensor, to_tensors

PERCENTILE = InputNorm(ir_scale="percentile")


def _quantile_range(ir: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """What the stretch used before: torch.quantile over the float32 frame."""
    flat = torch.from_numpy(np.asarray(ir, dtype=np.float32).reshape(ir.shape[0] if ir.ndim == 3 else 1, -1))
    return torch.quantile(flat, torch.tensor([0.01, 0.99]), dim=1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_the_range_of_a_480x640_frame_is_unchanged(dtype):
    rng = np.random.default_rng(0)
    for seed in range(3):
        if dtype == np.float32:
            ir = rng.normal(300.0, 12.0, (480, 640)).astype(np.float32)
        else:
            hi = np.iinfo(dtype).max
            ir = np.clip(rng.normal(hi * 0.4, hi * 0.1, (480, 640)), 0, hi).astype(dtype)
        lo_t, hi_t = _quantile_range(ir)
        assert ir_percentile_range(ir) == (float(lo_t), float(hi_t)), (dtype, seed)  # bit-identical


def test_the_model_input_of_a_normal_batch_is_unchanged():
    rng = np.random.default_rng(1)
    ir = rng.integers(20000, 40000, (3, 480, 640), dtype=np.uint16)
    got = ir_to_tensor(ir, PERCENTILE)
    lo, hi = _quantile_range(ir)
    t = torch.from_numpy(ir.astype(np.float32))[:, None]
    t = ((t - lo.view(-1, 1, 1, 1)) / (hi - lo).clamp_min(1e-6).view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    assert torch.equal(got, (t - PERCENTILE.ir_mean) / PERCENTILE.ir_std)


def test_a_24_megapixel_ir_frame_is_stretched():
    h, w = 4000, 6000  # 24 MP, over 2**24 values
    ir = np.empty((h, w), np.uint16)
    ir[:] = np.arange(w, dtype=np.uint16)[None, :] * 10  # 0 .. 59990, known percentiles
    lo, hi = ir_percentile_range(ir)
    assert lo == pytest.approx(0.01 * 59990, abs=10) and hi == pytest.approx(0.99 * 59990, abs=10)
    _, t = to_tensors(None, ir, PERCENTILE)
    assert t.shape == (1, 1, h, w) and torch.isfinite(t).all()
    zero_one = t * PERCENTILE.ir_std + PERCENTILE.ir_mean
    assert float(zero_one.min()) == pytest.approx(0.0) and float(zero_one.max()) == pytest.approx(1.0, abs=1e-6)


def test_nan_pixels_give_what_torch_quantile_gave():
    ir = np.full((8, 8), 300.0, np.float32)
    ir[3, 3] = np.nan
    lo, hi = ir_percentile_range(ir)
    assert np.isnan(lo) and np.isnan(hi)
