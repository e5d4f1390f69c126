"""The bundled recipe's full training step: the engine's losses vs the same losses written out plainly.

A step is what `csknet-studio train --config configs/default_model.toml` runs on a both-modality
batch: the frozen EO teacher's forward, the student forward, CE + soft Dice on the EO, IR and Fusion
heads, the gate term, pixel-contrast distillation at stages 1, 2 and 4, logit KD, backward, gradient
clipping and AdamW. The baseline, in the same process and interleaved with it, computes the same
terms the plain way: a softmax and a one-hot target per Dice term beside the CE's own log-softmax,
and the distillation's projection heads run on every pixel of each map before sampling. The
engine's form takes one log-softmax per head, a scatter-add instead of the one-hot, and projects
only the sampled pixels.

    .venv/bin/python bench/train_losses.py --threads 2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _timing import report_steps, step_parser

from csknet_studio.core import losses
from csknet_studio.core.losses import ContrastiveDistiller, LossConfig, total_loss
from csknet_studio.core.model import create_model, create_teacher
from csknet_studio.core.model.teacher import freeze

ENGINE = "engine's losses"
RECIPE = LossConfig(l1=0.002, contrastive=0.1, distill_stages=(1, 2, 4), samples=512, dice=1.0, kd=1.0, gate=0.2)


def plain_segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """CE, then a separate softmax and a one-hot target for the Dice term."""
    keep = labels != cfg.ignore_index
    loss = F.cross_entropy(logits, labels, ignore_index=cfg.ignore_index)
    k = logits.shape[1]
    prob = logits.float().softmax(1) * keep.unsqueeze(1)
    target = F.one_hot(torch.where(keep, labels, 0).clamp(0, k - 1), k).permute(0, 3, 1, 2) * keep.unsqueeze(1)
    inter = (prob * target).sum((0, 2, 3))
    total = prob.sum((0, 2, 3)) + target.sum((0, 2, 3))
    return loss + cfg.dice * (1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean())


class PlainDistiller(ContrastiveDistiller):
    """Projection heads over every pixel of the student and teacher maps, then sampling."""

    def stage_loss(self, s_feat, t_feat, stage, labels):
        s = F.normalize(self.student_proj[f"layer{stage}"](s_feat), dim=1)
        t = F.normalize(self.teacher_proj[f"layer{stage}"](t_feat.detach()), dim=1)
        b, d, h, w = s.shape
        idx, lab = self._sample(labels, b, h, w, s.device)
        sv = s.permute(0, 2, 3, 1).reshape(-1, d)[idx]
        tv = t.permute(0, 2, 3, 1).reshape(-1, d)[idx]
        sim = sv @ tv.T / self.cfg.tau
        same = (lab[:, None] == lab[None, :]) & ~torch.eye(lab.numel(), dtype=torch.bool)
        return F.cross_entropy(sim.masked_fill(same, float("-inf")), torch.arange(sim.shape[0]))


def _step_fn(plain: bool, batch: int, h: int, w: int):
    torch.manual_seed(0)
    model = create_model("csknet-r18s", num_classes=9, exchange_share=0.25,
                         input_norm={"ir_scale": "percentile"}).train()
    teacher = freeze(create_teacher(model.config))
    distiller = (PlainDistiller if plain else ContrastiveDistiller).for_models(model, teacher, RECIPE)
    params = list(model.parameters()) + list(distiller.parameters())
    opt = torch.optim.AdamW(params, 2e-3, weight_decay=1e-4)
    eo, ir = torch.randn(batch, 3, h, w), torch.randn(batch, 1, h, w)
    labels = torch.randint(0, 9, (batch, h, w))
    labels[:, :8] = 255

    def step() -> None:
        with torch.no_grad():
            t_out = teacher(eo)
        out = model(eo, ir)
        seg = losses.segmentation_loss
        if plain:
            losses.segmentation_loss = plain_segmentation_loss
        try:
            loss = total_loss(out, labels, model, RECIPE, distiller=distiller, teacher_out=t_out)["total"]
        finally:
            losses.segmentation_loss = seg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    args = step_parser(__doc__, warmup=2, repeats=8).parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = {"losses written out (baseline)": _step_fn(True, args.batch, *args.size),
             ENGINE: _step_fn(False, args.batch, *args.size)}
    med = report_steps("bundled recipe's training step, csknet-r18s", cases, args)
    base = med["losses written out (baseline)"]
    print(f"RATIO engine/plain = {med[ENGINE] / base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
