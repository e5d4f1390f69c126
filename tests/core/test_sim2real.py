"""Camera randomisation (core/sim2real.py) and the renderer's thermal variety (core/demo/thermal.py)."""

from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.demo import ThermalVariety, render_demo_frame
from csknet_studio.core.errors import ConfigError
from csknet_studio.core.sim2real import CameraRandomisation, randomise_eo, randomise_ir, randomise_pair
from csknet_studio.core.training.config import AugmentConfig
from csknet_studio.core.training.data import augment_frame


def _pair(h: int = 48, w: int = 64):
    rng = np.random.default_rng(0)
    eo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ir = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    return eo, ir


def test_off_returns_the_inputs_and_draws_nothing():
    eo, ir = _pair()
    rng = np.random.default_rng(5)
    out_eo, out_ir = randomise_pair(eo, ir, rng, CameraRandomisation(strength=0.0))
    assert out_eo is eo and out_ir is ir
    assert rng.random() == np.random.default_rng(5).random()  # the generator did not move


def test_same_generator_same_camera_and_dtypes_kept():
    eo, ir = _pair()
    cfg = CameraRandomisation(strength=1.0)
    a = randomise_pair(eo, ir, np.random.default_rng([7, 1]), cfg)
    b = randomise_pair(eo, ir, np.random.default_rng([7, 1]), cfg)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].dtype == np.uint8 and a[0].shape == eo.shape
    assert a[1].dtype == np.float32 and a[1].shape == ir.shape
    assert float(a[1].min()) >= 0.0 and float(a[1].max()) <= 1.0
    # uint16 IR comes back as uint16 in its own scale
    ir16 = (ir * 65535).astype(np.uint16)
    _, out16 = randomise_pair(eo, ir16, np.random.default_rng(3), cfg)
    assert out16.dtype == np.uint16


def test_polarity_turns_white_hot_into_black_hot():
    _, ir = _pair()
    only_polarity = CameraRandomisation(strength=1.0, ir_polarity=1.0, ir_tone=0, ir_noise=0, ir_fixed_pattern=0,
                                        blur=0, jpeg=0)
    out = randomise_ir(ir, np.random.default_rng(0), only_polarity)
    assert np.allclose(out, 1.0 - ir)


def test_every_effect_changes_the_image_and_many_cameras_differ():
    eo, ir = _pair()
    cfg = CameraRandomisation(strength=1.0)
    outs = [randomise_pair(eo, ir, np.random.default_rng(k), cfg) for k in range(8)]
    assert len({o[1].tobytes() for o in outs}) == 8
    assert all(not np.array_equal(o[0], eo) for o in outs)
    low_light = CameraRandomisation(strength=1.0, eo_cast=0, eo_low_light=1.0, eo_noise=0, blur=0, jpeg=0)
    dark = randomise_eo(np.full((16, 16, 3), 200, np.uint8), np.random.default_rng(1), low_light)
    assert dark.mean() < 170


def test_strength_is_validated():
    with pytest.raises(ConfigError, match="sim2real"):
        CameraRandomisation(strength=1.5)
    with pytest.raises(ConfigError, match="sim2real"):
        AugmentConfig(sim2real=-0.1)


def test_augment_frame_applies_it_in_training_only():
    frame, _ = render_demo_frame(3, 0, (64, 80), 12)
    plain = AugmentConfig(crop=(48, 64), scale=(1.0, 1.0), flip=0.0, photometric=0.0)
    s2r = AugmentConfig(crop=(48, 64), scale=(1.0, 1.0), flip=0.0, photometric=0.0, sim2real=1.0)
    a = augment_frame(frame, plain, np.random.default_rng(1))
    b = augment_frame(frame, s2r, np.random.default_rng(1))
    assert np.array_equal(a[2], b[2])  # labels untouched
    assert not np.array_equal(a[0], b[0]) or not np.array_equal(a[1], b[1])
    val_a = augment_frame(frame, plain, np.random.default_rng(1), train=False)
    val_b = augment_frame(frame, s2r, np.random.default_rng(1), train=False)
    assert all(np.array_equal(x, y) for x, y in zip(val_a, val_b, strict=True))


def test_thermal_variety_changes_background_and_sky_only():
    plain, cond = render_demo_frame(4, 5, (96, 128), 120)
    varied, _ = render_demo_frame(4, 5, (96, 128), 120, thermal_variety=True)
    assert np.array_equal(plain.eo, varied.eo) and np.array_equal(plain.label, varied.label)
    diff = varied.ir.astype(np.int32) - plain.ir.astype(np.int32)
    people = plain.label == 2
    # blur spreads a changed neighbour a pixel or two into a person; its core keeps its temperature
    assert people.any() and np.median(np.abs(diff[people])) < 30  # < 0.3 K
    assert np.abs(diff[plain.label == 0]).mean() > 50  # > 0.5 K on the background
    # per clip: the same draw for every frame of a seed, another for another seed
    assert ThermalVariety.draw(4) == ThermalVariety.draw(4) != ThermalVariety.draw(5)
    # the app's demo look is unchanged without the flag
    again, _ = render_demo_frame(4, 5, (96, 128), 120)
    assert np.array_equal(again.ir, plain.ir)
