"""CSK-Net structure: registry, config, shared convs / private BN, missing modality, GSU, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from csknet_studio.core.errors import ConfigError, ModelInputError
from csknet_studio.core.model import (
    MODEL_REGISTRY,
    CSKNet,
    CSKNetConfig,
    InputNorm,
    create_model,
    extract_single_stream,
    to_tensors,
)
from csknet_studio.core.model.streams import ExchangeBN, ParallelBN
from csknet_studio.core.modes import Mode


def _randomise_bn(model: nn.Module, seed: int = 1) -> None:
    """Give every BN distinct, non-trivial statistics so EO and IR copies really differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def _inputs(b: int = 2, h: int = 64, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(b, 3, h, w, generator=g), torch.randn(b, 1, h, w, generator=g)


def _cheap(name: str) -> bool:
    return name in ("csknet-tiny", "csknet-r18")


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_registry_forward_every_mode(name: str) -> None:
    model = create_model(name, num_classes=5).eval()
    size = 64 if _cheap(name) else 32
    eo, ir = _inputs(1, size, size)
    with torch.no_grad():
        for e, i, mode in ((eo, ir, Mode.BOTH), (None, ir, Mode.IR), (eo, None, Mode.EO)):
            if not _cheap(name) and mode is not Mode.BOTH:
                continue
            out = model(e, i)
            assert out.mode is mode
            assert out.logits.shape == (1, 5, size, size)
            assert set(out.branch_logits) == {m for m in ("eo", "ir") if mode.uses_eo and m == "eo" or mode.uses_ir and m == "ir"}
            assert torch.isfinite(out.logits).all()


def test_registry_entries_are_not_mutated() -> None:
    before = MODEL_REGISTRY["csknet-tiny"]
    m = create_model("csknet-tiny", num_classes=3, exchange_mode="mix")
    assert m.config.num_classes == 3 and m.config.exchange_mode == "mix"
    assert MODEL_REGISTRY["csknet-tiny"] == before and before.num_classes == 9
    with pytest.raises(ConfigError, match="csknet-nope"):
        create_model("csknet-nope")
    with pytest.raises(ConfigError, match="bogus"):
        create_model("csknet-tiny", bogus=1)


def test_config_roundtrip_and_validation() -> None:
    import json

    cfg = MODEL_REGISTRY["csknet-r18"]
    cfg2 = CSKNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert cfg2 == cfg and isinstance(cfg2.input_norm, InputNorm)
    custom = CSKNetConfig(input_norm=InputNorm(ir_scale=16383, ir_mean=0.3, ir_std=0.1))
    assert CSKNetConfig.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom
    for bad in ({"backbone": "vgg"}, {"exchange_mode": "swap"}, {"output_stride": 4}, {"gsu_stages": [5]},
                {"num_classes": 0}, {"input_norm": {"ir_scale": "auto-magic"}}, {"nope": 1}):
        with pytest.raises(ConfigError):
            CSKNetConfig.from_dict(bad)


def test_convs_are_shared_and_batchnorms_private() -> None:
    model = create_model("csknet-tiny")
    conv_names = [n for n, p in model.named_parameters() if p.ndim == 4]
    assert conv_names and not any(".eo." in n or ".ir." in n for n in conv_names if not n.startswith("heads."))
    # Every BatchNorm in the student is one of the two private copies of a ParallelBN.
    pbn = [m for m in model.modules() if isinstance(m, ParallelBN)]
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert n_bn == 2 * len(pbn) and all(m.modalities == ("eo", "ir") for m in pbn)
    for m in pbn:
        assert m.eo is not m.ir and m.eo.weight.data_ptr() != m.ir.weight.data_ptr()
    # One conv tensor serves both streams: a train-mode forward gives it gradient from each stream.
    model.train()
    eo, ir = _inputs()
    w = model.encoder.layer1[0].conv1.weight
    model(eo, None).logits.sum().backward()
    g_eo = w.grad.clone()
    model.zero_grad()
    model(None, ir).logits.sum().backward()
    g_ir = w.grad.clone()
    assert g_eo.abs().sum() > 0 and g_ir.abs().sum() > 0
    # ...while the BN running statistics track each modality separately.
    model2 = create_model("csknet-tiny").train()
    model2(eo, ir * 5 + 3)
    bn = model2.encoder.layer1[0].bn1
    assert not torch.allclose(bn.eo.paired_mean, bn.ir.paired_mean)  # a paired forward: paired statistics
    assert not torch.allclose(model2.encoder.bn1.eo.running_var, model2.encoder.bn1.ir.running_var)


VARIANTS = {
    "gsu_heads": {},
    "private_decoders": {"decoder_sharing": "private"},
    "sum_heads": {"fusion": "sum_heads"},
    "logit_ensemble": {"fusion": "logit_ensemble", "gsu_stages": (3, 4), "bn_stats": "shared"},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("fine", [0, 4])
@pytest.mark.parametrize("modality", ["ir", "eo"])
def test_single_modality_equals_plain_single_stream_network(modality: str, fine: int, variant: str) -> None:
    model = create_model("csknet-tiny", num_classes=4, fine_skip_channels=fine, **VARIANTS[variant]).eval()
    _randomise_bn(model)
    with torch.no_grad():  # GSU and exchange active, so the full model's branches differ from single runs
        for gsu in model.encoder.gsu.values():
            gsu.gate.weight.normal_(0, 0.3)
        for site in (m for m in model.modules() if isinstance(m, ExchangeBN)):
            site.eo.weight[:2] = 0.0
            site.ir.weight[-2:] = 0.0
    eo, ir = _inputs()
    plain = extract_single_stream(model, modality).eval()
    assert not any(isinstance(m, ParallelBN) for m in plain.modules())
    x = ir if modality == "ir" else eo
    with torch.no_grad():
        out = model(None, ir) if modality == "ir" else model(eo, None)
        ref = plain(x).logits
        both = model(eo, ir).branch_logits[modality]
    assert out.mode.value == modality
    torch.testing.assert_close(out.logits, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.branch_logits[modality], ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(both, ref, atol=1e-3)  # the comparison is not vacuous


def test_fine_skip_decodes_at_stride_two_from_the_stem() -> None:
    plain = create_model("csknet-tiny", num_classes=3)
    fine = create_model("csknet-tiny", num_classes=3, fine_skip_channels=4)
    assert plain.heads["eo"].in_channels == plain.config.decoder_channels
    assert fine.decoder.fine_skip.in_channels == fine.config.base_width  # the stem's channels
    assert all(h.in_channels == fine.config.decoder_channels // 2 for h in fine.heads.values())
    assert {"decoder.fine_skip_bn.eo.weight", "decoder.fine_fuse_bn.ir.running_var"} <= set(fine.state_dict())
    seen = {}
    fine.decoder.fine_fuse.register_forward_hook(lambda m, i, o: seen.update(hw=o.shape[-2:]))
    eo, ir = _inputs()
    out = fine.eval()(eo, ir)
    assert tuple(seen["hw"]) == (eo.shape[-2] // 2, eo.shape[-1] // 2)
    assert out.logits.shape[-2:] == eo.shape[-2:]
    # the stride-2 features reach the logits: a change in the stem skip changes the output
    with torch.no_grad():
        fine.decoder.fine_skip.weight.mul_(3.0)
    assert not torch.allclose(fine(eo, ir).logits, out.logits)
    with pytest.raises(ConfigError):
        create_model("csknet-tiny", fine_skip_channels=-1)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_ir_only_costs_the_same_as_the_single_stream_network(variant: str) -> None:
    model = create_model("csknet-tiny", **VARIANTS[variant]).eval()
    plain = extract_single_stream(model, "ir").eval()
    eo, ir = _inputs(1)

    def flops(fn) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops()

    f_ir, f_plain = flops(lambda: model(None, ir)), flops(lambda: plain(ir))
    f_eo, f_plain_eo = flops(lambda: model(eo, None)), flops(lambda: extract_single_stream(model, "eo")(eo))
    f_both = flops(lambda: model(eo, ir))
    assert f_ir == f_plain and f_eo == f_plain_eo
    assert 2 * f_plain < f_both < 2.75 * f_plain  # two streams, plus the GSU and Fusion head at stride 4


def test_ir_stream_stem_equals_replicating_ir_to_three_channels() -> None:
    model = create_model("csknet-tiny").eval()
    _, ir = _inputs()
    with torch.no_grad():
        a = model.encoder.stem(ir)
        b = model.encoder.stem(ir.expand(-1, 3, -1, -1))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_three_heads_and_the_fusion_head_reads_the_gsu() -> None:
    model = create_model("csknet-tiny", num_classes=5).eval()
    assert set(model.heads) == {"eo", "ir", "fusion"} and not hasattr(model, "fusion_alpha")
    seen = {}
    model.gsu.register_forward_hook(lambda m, i, o: seen.update(h=o[0]))
    model.heads["fusion"].register_forward_hook(lambda m, i, o: seen.update(head_in=i[0]))
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo, ir)
        assert seen["head_in"] is seen["h"]
        for v in model.gsu.value:  # the fused output changes with the GSU, the EO / IR heads do not
            v.weight.mul_(2.0)
        again = model(eo, ir)
    assert not torch.allclose(again.logits, out.logits)
    for m in ("eo", "ir"):
        torch.testing.assert_close(again.branch_logits[m], out.branch_logits[m])
    assert out.logits.shape == out.branch_logits["eo"].shape == (2, 5, 64, 64)


def test_gate_maps_shapes_and_range() -> None:
    model = create_model("csknet-tiny").eval()
    with torch.no_grad():
        model.gsu.gate.weight.normal_(0, 2.0)
    eo, ir = _inputs(2, 64, 96)
    with torch.no_grad():
        out = model(eo, ir, introspect=True)
        quiet = model(eo, ir)
        ir_only = model(None, ir, introspect=True)
    assert set(out.gate_maps) == {"eo", "ir", "sum"}
    for g in out.gate_maps.values():
        assert g.shape == (2, 64 // 4, 96 // 4)  # decoder resolution
        assert g.min() >= 0 and g.max() <= 1 and float(g.std()) > 0  # content-dependent
    assert quiet.gate_maps == {} and quiet.exchanged == {} and quiet.features == {}
    assert ir_only.gate_maps == {} and ir_only.exchanged == {}
    torch.testing.assert_close(out.logits, quiet.logits)
    # Gates with known biases report exactly the channel mean of sigmoid(bias), per input.
    with torch.no_grad():
        gsu = model.gsu
        gsu.gate.weight.zero_()
        bias = torch.linspace(-3, 3, gsu.gate.bias.numel())
        gsu.gate.bias.copy_(bias)
        maps = model(eo, ir, introspect=True).gate_maps
    for k, name in enumerate(("eo", "ir", "sum")):
        want = float(torch.sigmoid(bias.view(3, -1)[k]).mean())
        torch.testing.assert_close(maps[name], torch.full_like(maps[name], want))


def test_sum_fusion_head_reads_the_sum_of_the_decoders() -> None:
    model = create_model("csknet-tiny", fusion="sum_heads").eval()
    assert not hasattr(model, "gsu")
    seen = {}
    model.heads["fusion"].register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    model.heads["eo"].register_forward_hook(lambda m, i, o: seen.update(eo=i[0]))
    model.heads["ir"].register_forward_hook(lambda m, i, o: seen.update(ir=i[0]))
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo, ir, introspect=True)
    torch.testing.assert_close(seen["x"], seen["eo"] + seen["ir"])
    assert out.gate_maps == {}


def test_in_encoder_gate_maps_of_the_ensemble_model() -> None:
    model = create_model("csknet-tiny", **VARIANTS["logit_ensemble"]).eval()
    with torch.no_grad():
        for gsu in model.encoder.gsu.values():
            gsu.gate.weight.normal_(0, 2.0)
    eo, ir = _inputs(2, 64, 96)
    with torch.no_grad():
        out = model(eo, ir, introspect=True)
    assert set(out.gate_maps) == {"layer3", "layer4"}
    for stage, g in out.gate_maps.items():
        h, w = out.stage_features["eo"][int(stage[-1]) - 1].shape[-2:]
        assert g.shape == (2, h, w) and g.min() >= 0 and g.max() <= 1


def test_fused_logits_are_the_softmax_alpha_ensemble() -> None:
    model = create_model("csknet-tiny", **VARIANTS["logit_ensemble"]).eval()
    with torch.no_grad():
        model.fusion_alpha.copy_(torch.tensor([0.3, -0.4]))
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo, ir)
    w = torch.softmax(torch.tensor([0.3, -0.4]), 0)
    torch.testing.assert_close(out.logits, w[0] * out.branch_logits["eo"] + w[1] * out.branch_logits["ir"])


def test_batchnorm_statistics_are_kept_per_mode() -> None:
    """A paired forward moves only the paired statistics, a solo one only the solo ones; scale and
    shift are one per modality for both."""
    model = create_model("csknet-tiny").train()
    eo, ir = _inputs()
    bn = model.encoder.layer3[0].bn2.eo
    solo, paired = bn.running_mean.clone(), bn.paired_mean.clone()
    model(eo, ir)
    assert torch.equal(bn.running_mean, solo) and not torch.equal(bn.paired_mean, paired)
    paired = bn.paired_mean.clone()
    model(eo, None)
    assert not torch.equal(bn.running_mean, solo) and torch.equal(bn.paired_mean, paired)
    assert "encoder.layer3.0.bn2.eo.paired_var" in model.state_dict()
    shared = create_model("csknet-tiny", bn_stats="shared")
    assert not any("paired_" in k for k in shared.state_dict())


def test_solo_affine_gives_a_stream_alone_its_own_scale_never_penalised_nor_exchanged() -> None:
    """With solo_affine, a solo forward at an exchange site uses solo_weight / solo_bias, a paired one
    the paired scale (which alone decides the exchange and alone is penalised); elsewhere nothing
    changes, and solo inference costs the same."""
    model = create_model("csknet-tiny", solo_affine=True).eval()
    _randomise_bn(model)
    eo, ir = _inputs()
    sites = [m for m in model.encoder.modules() if isinstance(m, ExchangeBN)]
    assert sites and all(hasattr(s.ir, "solo_weight") for s in sites)
    assert not any(hasattr(m, "solo_weight") for m in model.modules()
                   if isinstance(m, nn.BatchNorm2d) and not any(m is s.eo or m is s.ir for s in sites))
    before = model(None, ir).logits.clone()
    paired_before = model(eo, ir).logits.clone()
    with torch.no_grad():
        for s in sites:
            s.ir.solo_weight.mul_(3.0)
    assert not torch.allclose(model(None, ir).logits, before)
    torch.testing.assert_close(model(eo, ir).logits, paired_before)  # the paired path ignores them
    masks = [s.masks()["ir"].clone() for s in sites]
    with torch.no_grad():
        for s in sites:
            s.ir.solo_weight.zero_()  # below any threshold: still no exchange, since the paired scale decides
    assert all(torch.equal(s.masks()["ir"], m) for s, m in zip(sites, masks, strict=True))
    penalised = {id(g) for g, _ in model.exchange_gammas()}
    assert not any(id(s.ir.solo_weight) in penalised or id(s.eo.solo_weight) in penalised for s in sites)
    plain = create_model("csknet-tiny").eval()
    flops = []
    for m in (plain, model):
        with FlopCounterMode(display=False) as fc:
            m(None, ir)
        flops.append(fc.get_total_flops())
    assert flops[0] == flops[1]
    with pytest.raises(ConfigError, match="solo_affine"):
        CSKNetConfig(solo_affine=True, bn_stats="shared")


def test_a_checkpoint_config_without_the_new_switches_builds_the_model_it_was() -> None:
    old = CSKNetConfig().to_dict()
    for k in ("fusion", "decoder_sharing", "bn_stats", "exchange_penalised_only"):
        old.pop(k)
    cfg = CSKNetConfig.from_dict(old)
    assert (cfg.fusion, cfg.bn_stats, cfg.exchange_penalised_only) == ("logit_ensemble", "shared", False)
    assert CSKNetConfig.from_dict(CSKNetConfig().to_dict()) == CSKNetConfig()
    with pytest.raises(ConfigError, match="private"):
        CSKNetConfig(fusion="logit_ensemble", decoder_sharing="private")


def test_requested_features_and_stage_features() -> None:
    model = create_model("csknet-tiny").eval()
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo, ir, features=("layer2.0", "layer4"))
    assert set(out.features) == {
        "layer2.0.before/eo", "layer2.0.after/eo", "layer2.0.before/ir", "layer2.0.after/ir", "layer4/eo", "layer4/ir"
    }
    assert [t.shape[1] for t in out.stage_features["eo"]] == list(model.encoder.out_channels)
    with pytest.raises(ModelInputError, match="layer9"):
        model(eo, ir, features=("layer9",))


def test_bad_inputs_raise_model_input_error() -> None:
    model = create_model("csknet-tiny").eval()
    eo, ir = _inputs()
    with pytest.raises(ModelInputError):
        model(None, None)
    with pytest.raises(ModelInputError, match="ir must be"):
        model(eo, eo)
    with pytest.raises(ModelInputError, match="differ"):
        model(eo, ir[:1])


def test_to_tensors_normalises_uint8_uint16_and_batches() -> None:
    norm = InputNorm()
    eo8 = np.full((4, 6, 3), 255, np.uint8)
    ir16 = np.full((4, 6), 65535, np.uint16)
    e, i = to_tensors(eo8, ir16, norm)
    assert e.shape == (1, 3, 4, 6) and i.shape == (1, 1, 4, 6)
    torch.testing.assert_close(e[0, :, 0, 0], torch.tensor([(1 - m) / s for m, s in zip(norm.eo_mean, norm.eo_std, strict=True)]))
    assert torch.allclose(i, torch.tensor((1 - 0.5) / 0.25))
    e16, _ = to_tensors((eo8.astype(np.uint16) * 257), None, norm)
    torch.testing.assert_close(e16, e)
    batch_e, batch_i = to_tensors(np.stack([eo8, eo8]), np.stack([ir16, ir16])[..., None], norm)
    assert batch_e.shape == (2, 3, 4, 6) and batch_i.shape == (2, 1, 4, 6)
    ramp = np.arange(100, dtype=np.float32).reshape(10, 10) * 40 + 7000
    _, p = to_tensors(None, ramp, InputNorm(ir_scale="percentile", ir_mean=0.0, ir_std=1.0))
    assert p.min() == 0 and p.max() == 1
    _, n = to_tensors(None, np.full((2, 2), 8191, np.uint16), InputNorm(ir_scale=16382.0, ir_mean=0.0, ir_std=1.0))
    assert torch.allclose(n, torch.tensor(8191 / 16382))
    with pytest.raises(ModelInputError):
        to_tensors(np.zeros((4, 6)), None, norm)
    with pytest.raises(ModelInputError, match="differ"):
        to_tensors(eo8, np.zeros((5, 6), np.uint8), norm)


def test_model_is_a_csknet_with_its_config() -> None:
    m = create_model("csknet-tiny")
    assert isinstance(m, CSKNet) and m.config == MODEL_REGISTRY["csknet-tiny"]
    assert m.exchange_sites == ["layer2.0", "layer3.0", "layer4.0"]
