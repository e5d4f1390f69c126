"""Channel exchange (CEN rule) and the Gated Spectral Unit, checked channel by channel."""

from __future__ import annotations

import pytest
import torch

from csknet_studio.core.model import create_model
from csknet_studio.core.model.streams import GSU, ExchangeBN

SITE = "layer3.0"


def _model_with_gammas(mode: str = "replace"):
    model = create_model("csknet-tiny", exchange_mode=mode).eval()
    bn: ExchangeBN = dict(model.named_modules())[f"encoder.{SITE}.bn1"]
    c = bn.eo.weight.numel()
    with torch.no_grad():
        bn.eo.weight.fill_(0.5)
        bn.ir.weight.fill_(-0.7)  # |gamma| counts, not the sign
        bn.eo.weight[[0, 3]] = torch.tensor([0.001, -0.0199])
        bn.ir.weight[[c - 1, c - 4]] = torch.tensor([0.0, 0.015])
        bn.eo.weight[5] = 0.02  # exactly at the threshold: kept
    return model, bn, c


def _inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 1, 64, 64, generator=g)


def test_exchange_replaces_exactly_the_channels_under_threshold() -> None:
    model, bn, c = _model_with_gammas()
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo, ir, introspect=True, features=(SITE,))
    f = out.features
    be, bi, ae, ai = (f[f"{SITE}.{k}"] for k in ("before/eo", "before/ir", "after/eo", "after/ir"))
    assert not torch.allclose(be, bi)
    for ch in range(c):
        want_eo = bi if ch in (0, 3) else be
        want_ir = be if ch in (c - 1, c - 4) else bi
        assert torch.equal(ae[:, ch], want_eo[:, ch]), ch
        assert torch.equal(ai[:, ch], want_ir[:, ch]), ch
    assert out.exchanged[SITE]["ir->eo"].tolist() == [0, 3]
    assert out.exchanged[SITE]["eo->ir"].tolist() == sorted([c - 4, c - 1])
    assert out.exchanged[SITE]["ir->eo"].dtype == torch.long
    # Sites left at their initial gammas (1.0) exchange nothing.
    assert all(v.numel() == 0 for v in out.exchanged["layer2.0"].values())


def test_mix_mode_averages_own_and_other() -> None:
    model, bn, c = _model_with_gammas("mix")
    eo, ir = _inputs()
    with torch.no_grad():
        f = model(eo, ir, features=(SITE,)).features
    be, bi, ae = f[f"{SITE}.before/eo"], f[f"{SITE}.before/ir"], f[f"{SITE}.after/eo"]
    torch.testing.assert_close(ae[:, 0], 0.5 * (be[:, 0] + bi[:, 0]))
    assert torch.equal(ae[:, 1], be[:, 1])


@pytest.mark.parametrize("which", ["eo", "ir"])
def test_no_exchange_with_one_modality(which: str) -> None:
    model, _, _ = _model_with_gammas()
    eo, ir = _inputs()
    with torch.no_grad():
        out = model(eo if which == "eo" else None, ir if which == "ir" else None, introspect=True, features=(SITE,))
    assert out.exchanged == {}
    assert torch.equal(out.features[f"{SITE}.before/{which}"], out.features[f"{SITE}.after/{which}"])


def test_exchange_gammas_are_disjoint_halves_per_modality() -> None:
    model = create_model("csknet-tiny")
    pairs = model.exchange_gammas()
    sites = [m for m in model.modules() if isinstance(m, ExchangeBN)]
    assert len(pairs) == 2 * len(sites) == 2 * len(model.exchange_sites)
    for site, (g_eo, s_eo), (g_ir, s_ir) in zip(sites, pairs[::2], pairs[1::2], strict=True):
        c = g_eo.numel()
        assert g_eo is site.eo.weight and g_ir is site.ir.weight
        assert (s_eo.start, s_eo.stop, s_ir.start, s_ir.stop) == (0, c // 2, c // 2, c)


def test_exchange_share_sets_how_many_channels_each_modality_gives_up() -> None:
    """A quarter: EO its first quarter, IR its last; a channel outside them is never exchanged,
    however small its scale."""
    model = create_model("csknet-tiny", exchange_share=0.25).eval()
    site = next(m for m in model.modules() if isinstance(m, ExchangeBN))
    c = site.eo.weight.numel()
    assert site.penalised("eo") == slice(0, c // 4) and site.penalised("ir") == slice(c - c // 4, c)
    with torch.no_grad():
        site.eo.weight.fill_(1.0)
        site.ir.weight.fill_(1.0)
        site.eo.weight[: c // 2] = 0.0  # half of EO below threshold: only the penalised quarter is taken
    masks = site.masks()
    assert masks["eo"].nonzero().flatten().tolist() == list(range(c // 4)) and not masks["ir"].any()
    from csknet_studio.core.errors import ConfigError

    with pytest.raises(ConfigError, match="exchange_share"):
        create_model("csknet-tiny", exchange_share=0.75)


def test_gradient_reaches_the_borrowed_stream() -> None:
    """A replaced EO channel carries IR's BN output, so IR's BN gets gradient through it (CEN)."""
    model, bn, c = _model_with_gammas()
    model.train()
    eo, ir = _inputs()
    out = model(eo, ir)
    out.branch_logits["eo"].sum().backward()
    assert bn.ir.weight.grad is not None and bn.ir.weight.grad[0].abs() > 0
    assert bn.eo.weight.grad[0] == 0  # its own replaced channel gets no task gradient


def test_gsu_blends_and_injects() -> None:
    gsu = GSU(4)
    eo, ir = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        gsu.gate.bias.fill_(40.0)  # z = 1: fused = eo
        e2, i2, z = gsu(eo, ir)
    torch.testing.assert_close(z, torch.ones_like(z))
    torch.testing.assert_close(e2, 2 * eo)
    torch.testing.assert_close(i2, ir + eo)
    gsu_ir = GSU(4, inject="ir")
    e3, i3, z3 = gsu_ir(eo, ir)  # z = 0.5 at init
    torch.testing.assert_close(z3, torch.full_like(z3, 0.5))
    assert torch.equal(e3, eo)
    torch.testing.assert_close(i3, ir + 0.5 * (eo + ir))


def test_one_way_fusion_leaves_the_ir_stream_as_in_ir_only_mode() -> None:
    """exchange_direction='ir->eo' + gsu_inject='eo' (the bundled model's choice): EO still borrows
    IR's channels, IR never borrows, so the IR branch computes exactly what IR-only inference does."""
    model = create_model("csknet-tiny", exchange_direction="ir->eo", gsu_inject="eo").eval()
    bn: ExchangeBN = dict(model.named_modules())[f"encoder.{SITE}.bn1"]
    c = bn.eo.weight.numel()
    with torch.no_grad():
        bn.eo.weight[[0, 3]] = 0.001
        bn.ir.weight[[c - 1, c - 2]] = 0.001  # would be exchanged under the two-way rule
        for gsu in model.encoder.gsu.values():  # a gate that is not an even blend
            for p in gsu.parameters():
                p.normal_(0, 0.5)
    eo, ir = _inputs()
    with torch.no_grad():
        both = model(eo, ir, introspect=True)
        ir_only = model(None, ir)
    assert both.exchanged[SITE]["ir->eo"].tolist() == [0, 3]
    assert both.exchanged[SITE]["eo->ir"].numel() == 0
    torch.testing.assert_close(both.branch_logits["ir"], ir_only.logits)
    two_way = create_model("csknet-tiny").eval()
    two_way.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(two_way(eo, ir).branch_logits["ir"], two_way(None, ir).logits)


@pytest.mark.parametrize("penalised_only", [True, False])
def test_channels_without_the_sparsity_constraint_are_never_exchanged(penalised_only: bool) -> None:
    """The figure's "no sparsity constraints" part (EO's second half, IR's first half) stays each
    stream's own whatever its gamma; the CEN rule alone (penalised_only=False) would take them."""
    model = create_model("csknet-tiny", exchange_penalised_only=penalised_only).eval()
    eo, ir = _inputs()
    with torch.no_grad():
        for site in (m for m in model.modules() if isinstance(m, ExchangeBN)):
            site.eo.weight.zero_()
            site.ir.weight.zero_()
        out = model(eo, ir, introspect=True)
    for site in (m for m in model.modules() if isinstance(m, ExchangeBN)):
        c = site.eo.weight.numel()
        took = out.exchanged[site.site]
        if penalised_only:
            assert took["ir->eo"].tolist() == list(range(c // 2))
            assert took["eo->ir"].tolist() == list(range(c // 2, c))
        else:
            assert took["ir->eo"].numel() == took["eo->ir"].numel() == c
