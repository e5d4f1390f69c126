"""Loss terms: CE with ignore, L1 on exchange gammas, contrastive distillation, KD, total."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csknet_studio.core.errors import ConfigError
from csknet_studio.core.losses import (
    ContrastiveDistiller,
    LossConfig,
    class_balance_weights,
    gate_reliability_loss,
    l1_sparsity,
    logit_kd,
    segmentation_ce,
    segmentation_loss,
    soft_dice_loss,
    total_loss,
)
from csknet_studio.core.model import create_model, create_teacher


def test_ce_ignores_255_and_never_nans() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (1, 4, 4))
    labels[0, :2] = 255
    ref = F.cross_entropy(logits[..., 2:, :], labels[:, 2:])
    torch.testing.assert_close(segmentation_ce(logits, labels), ref)
    altered = logits.detach().clone()
    altered[..., :2, :] = 100.0  # garbage where unlabelled: no effect
    torch.testing.assert_close(segmentation_ce(altered, labels), segmentation_ce(logits.detach(), labels))
    none = segmentation_ce(logits, torch.full((1, 4, 4), 255))
    assert none.item() == 0.0
    none.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_l1_sparsity_sums_the_designated_halves() -> None:
    model = create_model("csknet-tiny")
    pairs = model.exchange_gammas()
    with torch.no_grad():
        for g, _ in pairs:
            g.uniform_(-1, 1)
    manual = sum(float(g.detach()[sl].abs().sum()) for g, sl in pairs)
    assert l1_sparsity(pairs).item() == pytest.approx(manual, rel=1e-5)
    l1_sparsity(pairs).backward()
    g0, sl0 = pairs[0]
    c = g0.numel()
    assert (g0.grad[sl0] != 0).all() and (g0.grad[c // 2:] == 0).all()


def test_total_loss_terms_per_mode() -> None:
    model = create_model("csknet-tiny", num_classes=4)
    teacher = create_teacher(model.config).eval()
    cfg = LossConfig(samples=64, kd=0.5)
    distiller = ContrastiveDistiller.for_models(model, teacher, cfg)
    eo, ir = torch.randn(2, 3, 32, 32), torch.randn(2, 1, 32, 32)
    labels = torch.randint(0, 4, (2, 32, 32))
    with torch.no_grad():
        t_out = teacher(eo)
    terms = total_loss(model(eo, ir), labels, model, cfg, distiller=distiller, teacher_out=t_out)
    assert set(terms) == {"ce_eo", "ce_ir", "ce_fused", "l1", "contrastive", "kd", "total"}
    torch.testing.assert_close(terms["total"], sum(v for k, v in terms.items() if k != "total"))
    terms["total"].backward()
    assert model.encoder.layer1[0].conv1.weight.grad is not None
    assert next(distiller.student_proj.parameters()).grad is not None
    # Modality-dropout step: IR only -> CE on IR + L1, even if a teacher output is passed.
    ir_terms = total_loss(model(None, ir), labels, model, cfg, distiller=distiller, teacher_out=t_out)
    assert set(ir_terms) == {"ce_ir", "l1", "total"}
    eo_terms = total_loss(model(eo, None), labels, model, LossConfig(l1=0.0))
    assert set(eo_terms) == {"ce_eo", "total"}


def test_kd_is_zero_for_identical_logits() -> None:
    z = torch.randn(2, 5, 4, 4)
    assert logit_kd(z, z, 4.0).abs().item() < 1e-6
    assert logit_kd(z, -z, 4.0).item() > 0.01


def test_class_aware_contrastive_has_no_negatives_within_one_class() -> None:
    cfg = LossConfig(distill_stages=(1,), samples=32, proj_dim=8)
    d = ContrastiveDistiller((4, 8, 8, 8), (4, 8, 8, 8), cfg)
    s, t = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    one_class = torch.zeros(1, 32, 32, dtype=torch.long)
    assert d([s], [t], one_class).item() == pytest.approx(0.0, abs=1e-6)
    assert d([s], [t], None).item() > 0.5
    unlabelled = torch.full((1, 32, 32), 255)
    assert d([s], [t], unlabelled).item() == 0.0


def test_contrastive_distillation_loss_falls_on_a_toy_problem() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 12, 12)
    teacher = nn.Sequential(nn.Conv2d(6, 16, 1), nn.ReLU(), nn.Conv2d(16, 16, 1)).requires_grad_(False)
    student = nn.Conv2d(6, 12, 1)
    cfg = LossConfig(distill_stages=(1,), samples=128, proj_dim=16, tau=0.1)
    d = ContrastiveDistiller((12, 1, 1, 1), (16, 1, 1, 1), cfg)
    labels = torch.randint(0, 3, (4, 12, 12))
    opt = torch.optim.Adam(list(student.parameters()) + list(d.parameters()), lr=1e-2)
    t_feat = teacher(x)
    losses = []
    for _ in range(60):
        loss = d([student(x)], [t_feat], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_loss_config_roundtrip_and_validation() -> None:
    cfg = LossConfig(tau=0.07, distill_stages=[1, 2])
    assert LossConfig.from_dict(cfg.to_dict()) == cfg and cfg.distill_stages == (1, 2)
    for bad in ({"tau": 0}, {"l1": -1}, {"distill_stages": [0]}, {"typo": 1}):
        with pytest.raises(ConfigError):
            LossConfig.from_dict(bad)


def test_class_weighted_ce_matches_torch_and_counts_rare_pixels_more() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, :2, :2] = 2  # rare class
    labels[:, 0, 7] = 255
    w = (1.0, 1.0, 10.0)
    ref = F.cross_entropy(logits, labels, weight=torch.tensor(w), ignore_index=255)
    torch.testing.assert_close(segmentation_ce(logits, labels, weight=w), ref)
    # a wrong guess on the rare class costs more with its weight up
    bad = torch.zeros(1, 3, 4, 4)
    bad[:, 0] = 5.0  # predicts class 0 everywhere
    lab = torch.zeros(1, 4, 4, dtype=torch.long)
    lab[0, 0, 0] = 2
    assert segmentation_ce(bad, lab, weight=w) > 5 * segmentation_ce(bad, lab)
    with pytest.raises(ConfigError):
        segmentation_ce(logits, labels, weight=(1.0, 2.0))
    # total_loss passes the config's weights to every CE term
    model = create_model("csknet-tiny", num_classes=3).eval()
    eo, ir = torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32)
    lab = torch.zeros(1, 32, 32, dtype=torch.long)
    lab[0, :4] = 2
    out = model(eo, ir)
    plain = total_loss(out, lab, model, LossConfig(l1=0, contrastive=0))
    weighted = total_loss(out, lab, model, LossConfig(l1=0, contrastive=0, class_weights=w))
    for k in ("ce_eo", "ce_ir", "ce_fused"):
        ref = F.cross_entropy(out.branch_logits[k[3:]] if k != "ce_fused" else out.logits, lab, weight=torch.tensor(w))
        torch.testing.assert_close(weighted[k], ref)
        assert not torch.allclose(weighted[k], plain[k])


def test_class_balance_weights() -> None:
    counts = [8400, 400, 100, 9, 0]
    enet = class_balance_weights(counts, "enet")
    p = torch.tensor(counts[:4], dtype=torch.float64) / sum(counts)
    torch.testing.assert_close(torch.tensor(enet[:4], dtype=torch.float64), 1 / torch.log(1.02 + p), atol=1e-4, rtol=0)
    assert enet[0] < enet[1] < enet[2] < enet[3] and enet[4] == enet[3]  # absent class: largest weight
    sqrt = class_balance_weights(counts, "inverse", power=0.5)
    assert abs(sum(sqrt) / len(sqrt) - 1) < 1e-3 and sqrt[0] < sqrt[1] < sqrt[3]
    assert sqrt[3] / sqrt[0] == pytest.approx((8400 / 9) ** 0.5, rel=1e-3)
    quarter = class_balance_weights(counts, "inverse", power=0.25)
    assert quarter[3] / quarter[0] == pytest.approx((8400 / 9) ** 0.25, rel=1e-3)
    for bad_counts, method in (([0, 0], "enet"), ([1, 2], "none"), ([1, 2], "typo")):
        with pytest.raises(ConfigError):
            class_balance_weights(bad_counts, method)
    cfg = LossConfig(class_weights=[1, 2.5], class_balance="inverse", class_balance_power=0.25)
    assert cfg.class_weights == (1.0, 2.5) and LossConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"class_weights": [1, -1]}, {"class_weights": [0, 0]}, {"class_weights": [float("nan")]},
                {"class_balance": "sqrt"}, {"class_balance_power": 0}, {"class_balance_power": 2}):
        with pytest.raises(ConfigError):
            LossConfig.from_dict(bad)


def test_soft_dice_scores_overlap_counts_every_class_and_skips_ignored_pixels() -> None:
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 3, 2:6] = 2  # a thin rare class
    labels[:, :2] = 1
    perfect = F.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 40
    assert soft_dice_loss(perfect, labels).item() == pytest.approx(0.0, abs=1e-4)
    # Missing the thin class entirely costs nearly 1/3 (one class of three; the smoothing term keeps
    # a little), although it is 6 % of the pixels: what makes Dice pull on rare classes.
    miss = perfect.clone()
    miss[:, 0, 3, 2:6], miss[:, 2, 3, 2:6] = 40, 0
    assert 0.28 < soft_dice_loss(miss, labels).item() < 1 / 3
    # False positives cost too: predicting the thin class on a whole row of background.
    fp = perfect.clone()
    fp[:, 0, 5], fp[:, 2, 5] = 0, 40
    assert soft_dice_loss(fp, labels).item() > 0.1
    # Ignored pixels: garbage there changes nothing; all ignored gives 0 with a finite gradient.
    ignored = labels.clone()
    ignored[:, 6:] = 255
    garbage = perfect.clone()
    garbage[:, :, 6:] = torch.randn(2, 3, 2, 8) * 40
    torch.testing.assert_close(soft_dice_loss(garbage, ignored), soft_dice_loss(perfect, ignored))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    none = soft_dice_loss(x, torch.full((2, 8, 8), 255))
    none.backward()
    assert none.item() == 0.0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_soft_dice_under_half_autocast_counts_a_large_class_in_float32(dtype) -> None:
    """A class over more than 65504 pixels of a batch (the road of two 256x256 crops): summed in
    float16 its |P| + |G| would be inf, its Dice term a constant 1 with no gradient."""
    torch.manual_seed(0)
    labels = torch.zeros(2, 256, 256, dtype=torch.long)
    labels[:, :40] = 1
    logits = torch.randn(2, 3, 256, 256)
    logits[:, 0] += 3
    want = soft_dice_loss(logits, labels)
    with torch.autocast("cpu", dtype=dtype):
        got = soft_dice_loss(logits, labels)
    assert torch.isfinite(got)
    torch.testing.assert_close(got.float(), want, rtol=0, atol=1e-4)


def test_dice_weight_adds_to_every_ce_term_and_round_trips() -> None:
    logits = torch.randn(2, 3, 8, 8)
    labels = torch.randint(0, 3, (2, 8, 8))
    cfg = LossConfig(dice=0.5)
    want = segmentation_ce(logits, labels) + 0.5 * soft_dice_loss(logits, labels)
    torch.testing.assert_close(segmentation_loss(logits, labels, cfg), want)
    torch.testing.assert_close(segmentation_loss(logits, labels, LossConfig()), segmentation_ce(logits, labels))
    assert LossConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        LossConfig.from_dict({"dice": -1})
    model = create_model("csknet-tiny", num_classes=3).eval()
    out = model(torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32))
    lab = torch.randint(0, 3, (1, 32, 32))
    plain, dice = (total_loss(out, lab, model, LossConfig(l1=0, dice=d)) for d in (0.0, 1.0))
    for name in ("ce_eo", "ce_ir", "ce_fused"):
        assert dice[name] > plain[name]


def test_the_gate_loss_pulls_each_gate_towards_its_branchs_probability_of_the_truth() -> None:
    """Gates equal to the (detached) probability each branch gives the true class cost the least;
    ignored pixels are left out; the loss reaches the gates only, and only with both modes."""
    lab = torch.zeros(1, 8, 8, dtype=torch.long)
    lab[:, :, 4:] = 1
    eo_logits = torch.zeros(1, 2, 8, 8)
    eo_logits[:, 0] = 4.0  # EO sure of class 0 everywhere: right on the left half, wrong on the right
    ir_logits = torch.zeros(1, 2, 8, 8)
    branch = {"eo": eo_logits, "ir": ir_logits}
    p_eo = torch.softmax(eo_logits, 1).gather(1, lab[:, None])[:, 0]
    right = torch.stack([p_eo, torch.full_like(p_eo, 0.5), torch.full_like(p_eo, 0.5)], 1)[:, :, None]
    wrong = 1 - right
    assert gate_reliability_loss(right, branch, lab) < gate_reliability_loss(wrong, branch, lab)
    g = right.clone().requires_grad_(True)
    gate_reliability_loss(g, branch, lab).backward()
    assert g.grad[:, 2].abs().sum() == 0  # the sum gate is free
    ignored = lab.clone()
    ignored[:, :, 4:] = 255  # only the left half counts: there the "wrong" gates differ most
    assert gate_reliability_loss(right, branch, ignored) < 1e-3 + gate_reliability_loss(right, branch, lab)
    model = create_model("csknet-tiny", num_classes=3).train()
    eo, ir = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    labels = torch.randint(0, 3, (2, 64, 64))
    out = model(eo, ir)
    assert out.gates is not None and out.gates.shape[1] == 3
    assert "gate" in total_loss(out, labels, model, LossConfig(gate=0.2))
    assert "gate" not in total_loss(model(None, ir), labels, model, LossConfig(gate=0.2))
    assert "gate" not in total_loss(out, labels, model, LossConfig())


def test_the_share_gate_target_is_each_branchs_part_of_the_two_probabilities() -> None:
    """With `target="share"` the cheapest EO gate is p_eo / (p_eo + p_ir): 0.5 where both branches
    are equally sure, above 0.5 where EO is right and IR is not; EO and IR gates then sum to 1."""
    lab = torch.zeros(1, 8, 8, dtype=torch.long)
    eo_logits = torch.zeros(1, 2, 8, 8)
    eo_logits[:, 0, :, :4] = 4.0  # EO sure of the truth on the left half, undecided on the right
    ir_logits = torch.zeros(1, 2, 8, 8)  # IR undecided everywhere
    branch = {"eo": eo_logits, "ir": ir_logits}
    p = {m: torch.softmax(lg, 1)[:, 0] for m, lg in branch.items()}
    share_eo = p["eo"] / (p["eo"] + p["ir"])
    assert share_eo[0, 0, 0] > 0.6 and torch.allclose(share_eo[0, :, 4:], torch.tensor(0.5))

    def gates(eo: torch.Tensor) -> torch.Tensor:
        return torch.stack([eo, 1 - eo, torch.full_like(eo, 0.5)], 1)[:, :, None].requires_grad_(True)

    best = gates(share_eo)
    loss = gate_reliability_loss(best, branch, lab, target="share")
    loss.backward()
    assert best.grad[:, :2].abs().max() < 1e-6  # the share is the minimum of the binary CE
    for other in (gates(p["eo"]), gates(torch.full_like(share_eo, 0.5))):
        assert gate_reliability_loss(other, branch, lab, target="share") > loss + 1e-4
    assert not torch.allclose(gate_reliability_loss(best, branch, lab), loss)  # "branch" differs
    with pytest.raises(ConfigError, match="gate_target"):
        LossConfig(gate_target="softmax")


def test_the_disagree_gate_target_is_the_share_where_the_branches_disagree_and_free_elsewhere() -> None:
    """With `target="disagree"` a pixel where both branches are equally sure adds nothing, so any gate
    there costs the same; where EO is right and IR is not, the cheapest EO gate is EO's share."""
    lab = torch.zeros(1, 8, 8, dtype=torch.long)
    eo_logits = torch.zeros(1, 2, 8, 8)
    eo_logits[:, 0] = 4.0  # EO sure of the truth everywhere
    ir_logits = torch.zeros(1, 2, 8, 8)
    ir_logits[:, 0, :, 4:] = 4.0  # IR as sure on the right half, undecided on the left
    branch = {"eo": eo_logits, "ir": ir_logits}
    p = {m: torch.softmax(lg, 1)[:, 0] for m, lg in branch.items()}
    share_eo = p["eo"] / (p["eo"] + p["ir"])

    def gates(eo: torch.Tensor) -> torch.Tensor:
        return torch.stack([eo, 1 - eo, torch.full_like(eo, 0.5)], 1)[:, :, None].requires_grad_(True)

    best = gates(share_eo)
    loss = gate_reliability_loss(best, branch, lab, target="disagree")
    loss.backward()
    assert best.grad[:, :2].abs().max() < 1e-6
    moved = share_eo.clone()
    moved[..., 4:] = 0.9  # where they agree, another gate costs nothing
    assert torch.allclose(gate_reliability_loss(gates(moved), branch, lab, target="disagree"), loss)
    moved[..., :4] = 0.5  # where they disagree, it does
    assert gate_reliability_loss(gates(moved), branch, lab, target="disagree") > loss + 1e-3
    agree = {"eo": eo_logits, "ir": eo_logits.clone()}  # nowhere a disagreement: nothing to learn
    assert gate_reliability_loss(gates(moved), agree, lab, target="disagree") < 1e-6
    assert not LossConfig(contrastive=0, kd=0, gate=0.2, gate_target="disagree").needs_teacher


def test_the_teacher_gate_target_pulls_the_eo_gate_towards_the_teachers_probability() -> None:
    """With `target="teacher"` the cheapest EO gate is the EO teacher's probability of the truth (not
    the student EO head's), the IR gate still IR's own; without a teacher the loss says what it
    needs, and such a loss config asks for a teacher."""
    lab = torch.zeros(1, 8, 8, dtype=torch.long)
    student_eo = torch.zeros(1, 2, 8, 8)
    student_eo[:, 0] = 4.0  # the student's EO head is sure everywhere
    teacher = torch.zeros(1, 2, 8, 8)
    teacher[:, 0, :, :4] = 2.0  # the teacher, seeing EO alone, only on the left half
    ir_logits = torch.zeros(1, 2, 8, 8)
    branch = {"eo": student_eo, "ir": ir_logits}
    p_t = torch.softmax(teacher, 1)[:, 0]
    best = torch.stack([p_t, torch.full_like(p_t, 0.5), torch.full_like(p_t, 0.5)], 1)[:, :, None]
    best.requires_grad_(True)
    loss = gate_reliability_loss(best, branch, lab, target="teacher", teacher_logits=teacher)
    loss.backward()
    assert best.grad[:, :2].abs().max() < 1e-6
    p_s = torch.softmax(student_eo, 1)[:, 0]
    by_student = torch.stack([p_s, torch.full_like(p_s, 0.5), torch.full_like(p_s, 0.5)], 1)[:, :, None]
    assert gate_reliability_loss(by_student, branch, lab, target="teacher", teacher_logits=teacher) > loss + 1e-3
    with pytest.raises(ConfigError, match="teacher"):
        gate_reliability_loss(best, branch, lab, target="teacher")
    assert LossConfig(contrastive=0, kd=0, gate=0.2, gate_target="teacher").needs_teacher
    assert not LossConfig(contrastive=0, kd=0, gate=0.2).needs_teacher
    model = create_model("csknet-tiny", num_classes=3).train()
    eo, ir = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    labels = torch.randint(0, 3, (2, 64, 64))
    t_out = create_teacher(model.config).eval()(eo)
    cfg = LossConfig(contrastive=0, kd=0, gate=0.2, gate_target="teacher")
    assert total_loss(model(eo, ir), labels, model, cfg, teacher_out=t_out)["gate"] > 0


def _dice_by_one_hot(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """The soft Dice loss written out with a one-hot target: the definition the fast form must match."""
    keep = labels != 255
    k = logits.shape[1]
    prob = logits.softmax(1) * keep.unsqueeze(1)
    target = F.one_hot(torch.where(keep, labels, 0), k).permute(0, 3, 1, 2) * keep.unsqueeze(1)
    inter = (prob * target).sum((0, 2, 3))
    total = prob.sum((0, 2, 3)) + target.sum((0, 2, 3))
    return 1.0 - ((2 * inter + smooth) / (total + smooth)).mean()


def test_segmentation_loss_equals_ce_plus_dice_written_out_in_value_and_gradient() -> None:
    torch.manual_seed(3)
    labels = torch.randint(0, 5, (2, 12, 10))
    labels[0, :3] = 255
    weights = (1.0, 2.0, 0.5, 1.0, 3.0)
    cfg = LossConfig(dice=0.7, class_weights=weights)
    x = torch.randn(2, 5, 12, 10, dtype=torch.float64, requires_grad=True)
    fast = segmentation_loss(x, labels, cfg)
    (g_fast,) = torch.autograd.grad(fast, x)
    ref = F.cross_entropy(x, labels, weight=torch.tensor(weights, dtype=torch.float64), ignore_index=255) \
        + 0.7 * _dice_by_one_hot(x, labels)
    (g_ref,) = torch.autograd.grad(ref, x)
    torch.testing.assert_close(fast.double(), ref)
    torch.testing.assert_close(g_fast.double(), g_ref)
    torch.testing.assert_close(soft_dice_loss(x, labels).double(), _dice_by_one_hot(x, labels))


def test_the_distiller_projects_sampled_pixels_as_its_heads_project_the_whole_map() -> None:
    torch.manual_seed(5)
    d = ContrastiveDistiller((12, 1, 1, 1), (16, 1, 1, 1), LossConfig(distill_stages=(1,), proj_dim=8))
    feat = torch.randn(2, 12, 6, 7)
    idx = torch.tensor([0, 5, 41, 83])
    head = d.student_proj["layer1"].eval()
    whole = F.normalize(head(feat), dim=1).permute(0, 2, 3, 1).reshape(-1, 8)[idx]
    torch.testing.assert_close(ContrastiveDistiller._project(head, feat, idx), whole)
    # training: the projection BN learns its running statistics from the sampled pixels
    head.train()
    before = head[1].running_mean.clone()
    ContrastiveDistiller._project(head, feat, idx)
    assert not torch.equal(head[1].running_mean, before) and int(head[1].num_batches_tracked) == 1


def test_a_gate_temperature_softens_the_targets_so_sure_and_very_sure_differ() -> None:
    """At temperature 1 two pixels the EO branch is sure of (margins 8 and 12) give almost the same
    target; at 4 the cheapest EO gate is higher where the margin is wider, and it is the tempered
    probability itself."""
    lab = torch.zeros(1, 4, 8, dtype=torch.long)
    eo_logits = torch.zeros(1, 2, 4, 8)
    eo_logits[:, 0, :, :4], eo_logits[:, 0, :, 4:] = 8.0, 12.0
    branch = {"eo": eo_logits, "ir": eo_logits.clone()}
    plain = torch.softmax(eo_logits, 1)[:, 0]
    soft = torch.softmax(eo_logits / 4, 1)[:, 0]
    assert float(plain[..., 4:].mean() - plain[..., :4].mean()) < 1e-3
    assert float(soft[..., 4:].mean() - soft[..., :4].mean()) > 0.05

    def gates(p: torch.Tensor) -> torch.Tensor:
        return torch.stack([p, p, torch.full_like(p, 0.5)], 1)[:, :, None].requires_grad_(True)

    best = gates(soft)
    loss = gate_reliability_loss(best, branch, lab, temperature=4.0)
    loss.backward()
    assert best.grad[:, :2].abs().max() < 1e-6
    assert gate_reliability_loss(gates(plain), branch, lab, temperature=4.0) > loss + 1e-3
    with pytest.raises(ConfigError, match="gate_temperature"):
        LossConfig(gate_temperature=0.0)
