"""CSK-Net training losses: segmentation CE (ignore 255), L1 sparsity on exchange gammas, pixel
contrastive (InfoNCE) distillation teacher -> student EO branch, optional logit KD, and the total.

Typical step (both modalities):
    out = model(eo, ir)
    with torch.no_grad():
        t = teacher(eo)                        # frozen EO teacher (core/model/teacher.py)
    terms = total_loss(out, labels, model, cfg, distiller=distiller, teacher_out=t)
    terms["total"].backward()
IR-only (modality dropout) step: `out = model(None, ir)`; `total_loss(out, labels, model, cfg)` then
uses CE on the IR branch + L1 only. `distiller` holds trainable projection heads: give its
parameters to the optimiser and save its state_dict alongside the student's if resuming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csknet_studio.core.dataclass_io import dataclass_from_mapping
from csknet_studio.core.errors import ConfigError
from csknet_studio.core.modes import Mode

CLASS_BALANCE = ("none", "enet", "inverse")
GATE_TARGETS = ("branch", "share", "teacher", "disagree")
NO_GATE_TEACHER = 'loss.gate_target = "teacher" needs an EO teacher: set teacher.epochs > 0 or teacher.checkpoint'


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (design doc 1.2). `distill_stages` are 1-based ResNet stages (layer1..layer4)."""

    ce_eo: float = 1.0
    ce_ir: float = 1.0
    ce_fused: float = 1.0
    l1: float = 2e-4
    contrastive: float = 0.1
    tau: float = 0.1
    distill_stages: tuple[int, ...] = (1, 2, 4)
    proj_dim: int = 128
    samples: int = 1024
    class_aware: bool = True
    kd: float = 0.0
    kd_temperature: float = 4.0
    ignore_index: int = 255
    # Per-class CE weights (empty = uniform). `class_balance` other than "none" fills them from the
    # training labels' pixel frequencies when training starts (`class_balance_weights`); the run's
    # config.json and checkpoints then record the numbers used.
    class_weights: tuple[float, ...] = ()
    class_balance: str = "none"
    class_balance_power: float = 0.5  # "inverse": w = p ** -power (1 = plain inverse frequency)
    # Soft Dice added to every CE term (weight relative to that CE): an IoU-like objective in which
    # a thin class counts as much as the road, and false positives cost as much as misses.
    dice: float = 0.0
    # > 0: each GSU gate's channel mean on EO and on IR is pulled (binary CE) towards the probability
    # that branch gives the true class at that pixel (detached), so the gate maps show where the
    # fusion can trust each camera: high EO gate on a lit, textured street, low in fog.
    gate: float = 0.0
    # What the gate loss pulls each gate towards. "branch": that branch's own probability of the
    # true class (high wherever the branch is right, so both gates sit near 1 on easy pixels).
    # "share": that branch's part of the two, p_eo / (p_eo + p_ir) for EO, so the EO gate reads
    # how much more the EO camera can be trusted than the IR one there (0.5 where both are sure).
    # "teacher": the EO gate towards the frozen EO teacher's probability of the true class (the
    # teacher sees EO alone, so it reads what the EO image by itself tells there), IR as "branch".
    # "disagree": the share, but only where the two branches disagree, each pixel weighted by
    # |p_eo - p_ir|; where both are sure (most pixels) the gates are left free, so the share's
    # 0.5 there does not swamp the pixels where one camera sees what the other cannot.
    gate_target: str = "branch"
    # The branch logits are divided by this before the softmax that gives the gate targets. On the
    # training frames every branch is sure of nearly every pixel, so at 1 the targets sit at ~1
    # by day and at night alike; a higher temperature keeps "sure" and "very sure" apart, so the
    # gates can follow how far ahead the true class is (the margin), not only whether it wins.
    gate_temperature: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "distill_stages", tuple(int(s) for s in self.distill_stages))
        object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        if any(not (w >= 0 and math.isfinite(w)) for w in self.class_weights) or \
                (self.class_weights and not any(w > 0 for w in self.class_weights)):
            raise ConfigError(f"loss.class_weights must be finite, >= 0 and not all 0, got {list(self.class_weights)}")
        if not 0 < self.class_balance_power <= 1:
            raise ConfigError(f"loss.class_balance_power must be in (0, 1], got {self.class_balance_power}")
        if self.gate_target not in GATE_TARGETS:
            raise ConfigError(f"loss.gate_target must be one of {GATE_TARGETS}, got {self.gate_target!r}")
        if self.class_balance not in CLASS_BALANCE:
            raise ConfigError(f"loss.class_balance must be one of {CLASS_BALANCE}, got {self.class_balance!r}")
        for name in ("ce_eo", "ce_ir", "ce_fused", "l1", "contrastive", "kd", "dice", "gate"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if not self.tau > 0 or not self.kd_temperature > 0 or not self.gate_temperature > 0:
            raise ConfigError("loss.tau, loss.kd_temperature and loss.gate_temperature must be > 0")
        if any(s not in (1, 2, 3, 4) for s in self.distill_stages):
            raise ConfigError(f"loss.distill_stages: values in 1..4, got {self.distill_stages}")
        if self.samples < 2 or self.proj_dim < 1:
            raise ConfigError("loss.samples must be >= 2 and loss.proj_dim >= 1")

    @property
    def needs_teacher(self) -> bool:
        """Whether a term of this loss reads the frozen EO teacher's output."""
        return self.contrastive > 0 or self.kd > 0 or (self.gate > 0 and self.gate_target == "teacher")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["distill_stages"] = list(self.distill_stages)
        d["class_weights"] = list(self.class_weights)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossConfig:
        return dataclass_from_mapping(cls, d, "loss config")


def class_balance_weights(counts, method: str = "enet", power: float = 0.5, c: float = 1.02) -> tuple[float, ...]:
    """CE weights from per-class pixel counts.

    "enet": w = 1 / ln(c + p) (ENet, Paszke et al. 2016; the weighting many MFNet papers use): a
    class at 84 % of the pixels gets ~1.6, one at 0.1 % ~48. "inverse": w = p ** -power, scaled to a
    mean of 1; power 0.25 gives a 0.1 % class ~5x the weight of an 84 % one. Strong weights buy
    recall of rare thin classes (guardrail, bike) with false positives on background (measured on
    the default model: docs/model.md). A class absent from the counts gets the largest weight seen.
    """
    if method not in CLASS_BALANCE or method == "none":
        raise ConfigError(f"class balance method must be one of {CLASS_BALANCE[1:]}, got {method!r}")
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.numel() == 0 or not bool((counts > 0).any()):
        raise ConfigError("class balance: the training labels contain no labelled pixel")
    p = counts / counts.sum()
    w = 1.0 / torch.log(c + p) if method == "enet" else p.clamp_min(1e-12) ** -power
    present = counts > 0
    w = torch.where(present, w, w[present].max())
    if method == "inverse":
        w = w / w.mean()
    return tuple(round(float(x), 4) for x in w)


def _class_weight(weight: Sequence[float] | Tensor | None, like: Tensor) -> Tensor | None:
    if weight is None or not len(weight):
        return None
    w = torch.as_tensor(weight, dtype=like.dtype, device=like.device)
    if w.numel() != like.shape[1]:
        raise ConfigError(f"loss.class_weights has {w.numel()} values for {like.shape[1]} classes")
    return w


def segmentation_ce(logits: Tensor, labels: Tensor, ignore_index: int = 255,
                    weight: Sequence[float] | Tensor | None = None) -> Tensor:
    """Mean CE over labelled pixels (weighted by class when `weight` is given, normalised by the
    weights of the labelled pixels); exactly 0 (with a graph) when no pixel is labelled, never NaN."""
    labels = labels.long()
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return _ce_from_logp(logits.log_softmax(1), labels, ignore_index, weight)


def _ce_from_logp(logp: Tensor, labels: Tensor, ignore_index: int, weight: Sequence[float] | Tensor | None) -> Tensor:
    """CE from log-probabilities, so one log-softmax can serve CE and Dice (`segmentation_loss`)."""
    return F.nll_loss(logp, labels, weight=_class_weight(weight, logp), ignore_index=ignore_index)


def _dice_from_prob(prob: Tensor, labels: Tensor, keep: Tensor, smooth: float) -> Tensor:
    """Soft Dice loss from class probabilities (B,K,H,W) without a one-hot tensor: |P.G| per class
    is the probability of the true class summed per class (a scatter-add), |G| a bincount."""
    k = prob.shape[1]
    lab = torch.where(keep, labels, 0).clamp_(0, k - 1)
    keep_f = keep.to(prob.dtype)
    true_prob = prob.gather(1, lab.unsqueeze(1)).squeeze(1) * keep_f
    inter = torch.zeros(k, dtype=prob.dtype, device=prob.device).scatter_add_(0, lab.flatten(), true_prob.flatten())
    count = torch.bincount(lab.flatten(), weights=keep_f.flatten(), minlength=k).to(prob.dtype)
    with torch.autocast(prob.device.type, enabled=False):  # autocast would sum in half: > 65504 pixels is inf
        total = torch.einsum("bkhw,bhw->k", prob.float(), keep_f.float()).to(prob.dtype) + count
    return 1.0 - ((2 * inter + smooth) / (total + smooth)).mean()


def soft_dice_loss(logits: Tensor, labels: Tensor, ignore_index: int = 255, smooth: float = 1.0) -> Tensor:
    """1 - mean over classes of the soft Dice 2|P.G| / (|P| + |G|), pooled over the batch.

    Every class of the scheme counts equally (one absent from the labels and not predicted scores
    ~1), so rare thin classes weigh as much as the background, yet unlike a class-weighted CE a
    false positive costs as much as a miss. Ignored pixels take no part; 0 (with a graph) when no
    pixel is labelled.
    """
    labels = labels.long()
    keep = labels != ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return _dice_from_prob(logits.float().softmax(1), labels, keep, smooth)


def segmentation_loss(logits: Tensor, labels: Tensor, cfg: LossConfig) -> Tensor:
    """The per-output segmentation term: CE (class-weighted when configured) + `cfg.dice` x Dice.
    One log-softmax serves both, and the Dice term builds no one-hot target: both were
    full-resolution passes repeated on every head."""
    labels = labels.long()
    keep = labels != cfg.ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    logp = logits.float().log_softmax(1)
    loss = _ce_from_logp(logp, labels, cfg.ignore_index, cfg.class_weights)
    if cfg.dice > 0:
        loss = loss + cfg.dice * _dice_from_prob(logp.exp(), labels, keep, 1.0)
    return loss


def l1_sparsity(gammas: list[tuple[Tensor, slice]]) -> Tensor:
    """sum |gamma[channels]| over `model.exchange_gammas()`."""
    if not gammas:
        return torch.zeros(())
    return torch.stack([g[sl].abs().sum() for g, sl in gammas]).sum()


def logit_kd(student: Tensor, teacher: Tensor, temperature: float, labels: Tensor | None = None,
             ignore_index: int = 255) -> Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over (labelled, if labels given) pixels."""
    t = temperature
    kl = F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher.detach() / t, 1),
                  reduction="none", log_target=True).sum(1)
    if labels is not None:
        valid = labels != ignore_index
        return (kl * valid).sum() / valid.sum().clamp_min(1) * t * t
    return kl.mean() * t * t


class _Projection(nn.Sequential):
    """Conv1x1 -> BN -> ReLU -> Conv1x1 to `dim` (per pixel); output is L2-normalised by the caller."""

    def __init__(self, cin: int, dim: int):
        hidden = max(dim, min(cin, 256))
        super().__init__(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, dim, 1))


class ContrastiveDistiller(nn.Module):
    """Pixel InfoNCE between student EO features and teacher features at chosen stages.

    Per stage: sample `samples` labelled pixel positions, project both there to `proj_dim`,
    L2-normalise; anchor = student pixel i, positive = teacher pixel i, negatives = teacher pixels j at the other
    sampled positions (with `class_aware`, only those of a different class).
        L = -mean_i log( exp(s_i.t_i/tau) / sum_j exp(s_i.t_j/tau) ),  summed over stages.
    """

    def __init__(self, student_channels: tuple[int, ...], teacher_channels: tuple[int, ...], cfg: LossConfig):
        super().__init__()
        self.cfg = cfg
        self.stages = cfg.distill_stages
        self.student_proj = nn.ModuleDict({f"layer{s}": _Projection(student_channels[s - 1], cfg.proj_dim) for s in self.stages})
        self.teacher_proj = nn.ModuleDict({f"layer{s}": _Projection(teacher_channels[s - 1], cfg.proj_dim) for s in self.stages})

    @classmethod
    def for_models(cls, student: nn.Module, teacher: nn.Module, cfg: LossConfig) -> ContrastiveDistiller:
        return cls(tuple(student.encoder.out_channels), tuple(teacher.encoder.out_channels), cfg)

    def _sample(self, labels: Tensor | None, b: int, h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
        n = b * h * w
        if labels is None:
            idx = torch.randperm(n, device=device)[: self.cfg.samples]
            return idx, None
        lab = F.interpolate(labels[:, None].float(), size=(h, w), mode="nearest").long().flatten()
        valid = (lab != self.cfg.ignore_index).nonzero().flatten()
        idx = valid[torch.randperm(valid.numel(), device=device)[: self.cfg.samples]]
        return idx, lab[idx]

    @staticmethod
    def _project(head: _Projection, feat: Tensor, idx: Tensor) -> Tensor:
        """The head applied to the feature vectors at flat (b, y, x) positions `idx`, as matrix
        products on (N, C) rows (the same 1x1 convs and BN), L2-normalised: (N, proj_dim)."""
        conv1, bn, _, conv2 = head
        x = feat.permute(0, 2, 3, 1).reshape(-1, feat.shape[1])[idx]
        x = F.linear(x, conv1.weight.flatten(1))
        if bn.training and bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
        x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training, bn.momentum, bn.eps)
        x = F.linear(F.relu(x), conv2.weight.flatten(1), conv2.bias)
        return F.normalize(x, dim=1)

    def stage_loss(self, s_feat: Tensor, t_feat: Tensor, stage: int, labels: Tensor | None) -> Tensor:
        """Positions are sampled before projecting: the 1x1 projection heads then run on `samples`
        pixels instead of every pixel of the map (the projection BN's statistics come from the
        samples); in the bundled recipe's step that took the term from 182 to 48 ms."""
        t_feat = t_feat.detach()
        if t_feat.shape[-2:] != s_feat.shape[-2:]:
            t_feat = F.interpolate(t_feat, size=s_feat.shape[-2:], mode="bilinear", align_corners=False)
        b, _, h, w = s_feat.shape
        idx, lab = self._sample(labels, b, h, w, s_feat.device)
        if idx.numel() < 2:
            return s_feat.sum() * 0.0
        sv = self._project(self.student_proj[f"layer{stage}"], s_feat, idx)
        tv = self._project(self.teacher_proj[f"layer{stage}"], t_feat, idx)
        sim = sv @ tv.T / self.cfg.tau
        if lab is not None and self.cfg.class_aware:
            same = (lab[:, None] == lab[None, :]) & ~torch.eye(lab.numel(), dtype=torch.bool, device=sim.device)
            sim = sim.masked_fill(same, float("-inf"))
        target = torch.arange(sim.shape[0], device=sim.device)
        return F.cross_entropy(sim, target)

    def forward(self, student_feats: list[Tensor], teacher_feats: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """`student_feats` = out.stage_features["eo"], `teacher_feats` = teacher(eo).stage_features."""
        losses = [self.stage_loss(student_feats[s - 1], teacher_feats[s - 1], s, labels) for s in self.stages]
        return torch.stack(losses).sum()


def gate_reliability_loss(gates: Tensor, branch_logits: dict[str, Tensor], labels: Tensor,
                          ignore_index: int = 255, target: str = "branch",
                          teacher_logits: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Binary CE of the channel-mean GSU gate on EO (input 0) and on IR (input 1) against the
    probability, detached, that the EO / IR head gives the true class there (`target="branch"`),
    against that probability's share of the two (`target="share"`), against the share weighted by
    |p_eo - p_ir| (`target="disagree"`: only where the branches disagree), or, for EO, against the EO
    teacher's probability (`target="teacher"`); at the gates' resolution, ignored pixels left out.
    Probabilities are of the logits / `temperature`. The sum gate (input 2) stays free."""
    if target == "teacher":
        if teacher_logits is None:
            raise ConfigError(NO_GATE_TEACHER)
        branch_logits = {"eo": teacher_logits, "ir": branch_logits["ir"]}
    h, w = gates.shape[-2:]
    lab = F.interpolate(labels[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
    valid = lab != ignore_index
    if not bool(valid.any()):
        return gates.sum() * 0.0
    right = {}
    for m in ("eo", "ir"):
        lg = F.interpolate(branch_logits[m].detach().float(), size=(h, w), mode="bilinear", align_corners=False)
        prob = torch.softmax(lg / temperature, 1)
        right[m] = prob.gather(1, lab.clamp(0, prob.shape[1] - 1)[:, None])[:, 0]
    weight = None
    if target == "disagree":
        weight = (right["eo"] - right["ir"]).abs()[valid]
    if target in ("share", "disagree"):
        both = (right["eo"] + right["ir"]).clamp_min(1e-6)
        right = {m: p / both for m, p in right.items()}
    terms = []
    for k, m in enumerate(("eo", "ir")):
        g = gates[:, k].float().mean(1).clamp(1e-6, 1 - 1e-6)
        with torch.autocast(gates.device.type, enabled=False):  # binary CE refuses autocast
            if weight is None:
                terms.append(F.binary_cross_entropy(g[valid], right[m][valid].clamp(0, 1)))
            else:  # a weighted mean: a batch where the branches agree everywhere adds nothing
                bce = F.binary_cross_entropy(g[valid], right[m][valid].clamp(0, 1), reduction="none")
                terms.append((weight * bce).sum() / weight.sum().clamp_min(1.0))
    return torch.stack(terms).sum()


def total_loss(
    out: Any,
    labels: Tensor,
    model: nn.Module,
    cfg: LossConfig,
    *,
    distiller: ContrastiveDistiller | None = None,
    teacher_out: Any = None,
) -> dict[str, Tensor]:
    """Named loss terms (weighted) and their sum under "total".

    CE on every branch that ran (+ the fused output when both ran), L1 sparsity always, contrastive
    distillation and logit KD when the EO branch ran and a teacher output is given. An IR-only step
    (modality dropout) therefore gives CE(ir) + L1.
    """
    ig = cfg.ignore_index
    terms: dict[str, Tensor] = {}
    weights = {"eo": cfg.ce_eo, "ir": cfg.ce_ir}
    for m, lg in out.branch_logits.items():
        if weights[m] > 0:
            terms[f"ce_{m}"] = weights[m] * segmentation_loss(lg, labels, cfg)
    if out.mode is Mode.BOTH and cfg.ce_fused > 0:
        terms["ce_fused"] = cfg.ce_fused * segmentation_loss(out.logits, labels, cfg)
    if cfg.gate > 0 and getattr(out, "gates", None) is not None:
        terms["gate"] = cfg.gate * gate_reliability_loss(
            out.gates, out.branch_logits, labels, ig, cfg.gate_target,
            None if teacher_out is None else teacher_out.logits, cfg.gate_temperature)
    if cfg.l1 > 0:
        terms["l1"] = cfg.l1 * l1_sparsity(model.exchange_gammas()).to(out.logits.device)
    if teacher_out is not None and "eo" in out.branch_logits:
        if distiller is not None and cfg.contrastive > 0:
            terms["contrastive"] = cfg.contrastive * distiller(out.stage_features["eo"], teacher_out.stage_features, labels)
        if cfg.kd > 0:
            terms["kd"] = cfg.kd * logit_kd(out.branch_logits["eo"], teacher_out.logits, cfg.kd_temperature, labels, ig)
    terms["total"] = torch.stack(list(terms.values())).sum() if terms else out.logits.sum() * 0.0
    return terms
