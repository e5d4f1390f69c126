from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.introspect import channel_maps, stream_of
from csknet_studio.core.model import create_model
from csknet_studio.core.model.streams import ExchangeBN


def _model_with_exchange():
    model = create_model("csknet-tiny").eval()
    bn = next(m for m in model.modules() if isinstance(m, ExchangeBN))
    with torch.no_grad():
        bn.eo.weight[[1, 3]] = 0.0  # EO channels 1 and 3 now come from IR ("ir->eo")
    return model, bn.site


def test_exchanged_channel_after_equals_the_other_streams_channel():
    model, site = _model_with_exchange()
    rng = np.random.default_rng(0)
    eo = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (32, 48), dtype=np.uint8)
    got = channel_maps(model, eo, ir, site, "ir->eo", 3)
    assert got.stream == "eo" and got.exchanged
    assert got.before.shape == got.after.shape and got.before.ndim == 2
    assert not np.allclose(got.before, got.after)  # replaced by IR's channel 3
    ir_side = channel_maps(model, eo, ir, site, "eo->ir", 3)
    assert not ir_side.exchanged
    np.testing.assert_allclose(got.after, ir_side.before, rtol=1e-5, atol=1e-5)
    kept = channel_maps(model, eo, ir, site, "ir->eo", 2)
    assert not kept.exchanged
    np.testing.assert_array_equal(kept.before, kept.after)


def test_bad_site_channel_or_direction_is_a_clear_error():
    model, site = _model_with_exchange()
    eo = np.zeros((16, 16, 3), np.uint8)
    ir = np.zeros((16, 16), np.uint8)
    with pytest.raises(ModelInputError, match="layer9"):
        channel_maps(model, eo, ir, "layer9.0", "ir->eo", 0)
    with pytest.raises(ModelInputError, match="channel 9999"):
        channel_maps(model, eo, ir, site, "ir->eo", 9999)
    with pytest.raises(ModelInputError, match="direction"):
        stream_of("eo-ir")
