"""Ablations of the default-model recipe, every row at one shared budget and over training seeds.

    python scripts/default_model_ablations.py --epochs 90 --threads 2 --seeds 7,8,9 [--only no_gsu,ir_single]

`--epochs 90` is the bundled model's full budget (docs/model.md, Ablations); fewer epochs give a
quicker, shorter-budget table.

Every row trains with configs/default_model.toml changed in exactly one way, for the same number of
steps, and reuses the EO teacher the main run trained (runs/default_model/teacher.pt), so the rows
differ only in what they name (and in the training seed, `--seeds`):
  ref               the recipe itself (paper architecture: two decoders sharing convs, three heads, GSU)
  private_decoders  decoder_sharing = "private": two separate decoders
  no_distill        loss.contrastive = 0, loss.kd = 0 (no EO-teacher distillation)
  no_exchange       exchange_stages = [] (no channel exchange)
  no_gsu            fusion = "sum_heads": the Fusion head reads Fo + Fi
  ensemble          the model before the figure: one decoder, in-encoder GSU at stages 3-4, the fused
                    output a weighted average of the branch logits, one-way exchange as it was bundled
  ir_single         modality_dropout = 1: every step IR only, i.e. a single-stream IR network
  eo_single         eo_only_dropout = 1: every step EO only, a single-stream EO network
Runs are sequential (one training at a time). Each final checkpoint (last.pt: the end of the budget,
not a validation-picked epoch) is scored on the held-out clip of scripts/default_model_report.py;
results go to runs/ablations/results.json (one entry per variant and seed) and a Markdown table of
mean +- std over seeds on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from default_model_report import evaluate_groups, heldout_frames  # noqa: E402

from csknet_studio.core.checkpoint import load_checkpoint  # noqa: E402
from csknet_studio.core.modes import Mode  # noqa: E402
from csknet_studio.core.training import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ref", "private_decoders", "no_distill", "no_exchange", "no_gsu", "ensemble", "ir_single", "eo_single")


def config_copy(cfg: TrainConfig, **changes) -> TrainConfig:
    """dataclasses.replace that also takes nested `section__field=value` keys."""
    nested: dict[str, dict] = {}
    flat = {}
    for k, v in changes.items():
        if "__" in k:
            sec, name = k.split("__", 1)
            nested.setdefault(sec, {})[name] = v
        else:
            flat[k] = v
    for sec, vals in nested.items():
        flat[sec] = dataclasses.replace(getattr(cfg, sec), **vals)
    return dataclasses.replace(cfg, **flat)


def variant_config(base: TrainConfig, name: str, epochs: int, teacher: Path, out_root: Path, seed: int) -> TrainConfig:
    model_over = dict(base.model.overrides)
    changes: dict = {"optim__epochs": epochs, "teacher__checkpoint": str(teacher), "teacher__epochs": 0,
                     "output_dir": str(out_root / f"{name}-s{seed}"), "val_every": 1000, "checkpoint_every": 1000,
                     "seed": seed}
    if name == "private_decoders":
        model_over["decoder_sharing"] = "private"
    elif name == "no_distill":
        changes.update(loss__contrastive=0.0, loss__kd=0.0)
    elif name == "no_exchange":
        model_over["exchange_stages"] = []
    elif name == "no_gsu":
        model_over["fusion"] = "sum_heads"
    elif name == "ensemble":
        model_over.update(fusion="logit_ensemble", gsu_stages=[3, 4], bn_stats="shared", exchange_penalised_only=False,
                          exchange_direction="ir->eo", gsu_inject="eo")
    elif name == "ir_single":
        changes.update(modality_dropout=1.0, eo_only_dropout=0.0, loss__contrastive=0.0, loss__kd=0.0,
                       val_modes=("ir",), select_mode="ir")
    elif name == "eo_single":
        changes.update(modality_dropout=0.0, eo_only_dropout=1.0, loss__contrastive=0.0, loss__kd=0.0,
                       val_modes=("eo",), select_mode="eo")
    elif name != "ref":
        raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    changes["model__overrides"] = model_over
    return config_copy(base, **changes)


SINGLE = {"ir_single": Mode.IR, "eo_single": Mode.EO}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default_model.toml")
    ap.add_argument("--epochs", type=int, default=1, help="student epochs per row (default %(default)s)")
    ap.add_argument("--teacher", type=Path, default=ROOT / "runs" / "default_model" / "teacher.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ablations")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--frames", type=int, default=24, help="held-out frames (default %(default)s)")
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", default="7", help="comma-separated training seeds (default %(default)s, the recipe's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = TrainConfig.from_toml(args.config)
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    frames = heldout_frames(args.frames, tuple(args.size))
    seeds = [int(x) for x in args.seeds.split(",") if x]
    for name in names:
        for seed in seeds:
            key = f"{name}/s{seed}"
            cfg = variant_config(base, name, args.epochs, args.teacher.resolve(), args.out.resolve(), seed)
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            res = train(cfg, log=lambda s, k=key: print(f"[{k}] {s}", flush=True))
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            ck = load_checkpoint(res.last_checkpoint)
            modes = [SINGLE[name]] if name in SINGLE else [Mode.BOTH, Mode.IR, Mode.EO]
            groups = evaluate_groups(ck.model, frames, modes)
            results[key] = {
                "variant": name, "seed": seed, "steps": cfg.optim.epochs * cfg.max_steps_per_epoch,
                "wall_s": round(wall), "cpu_s": round(cpu), "params": sum(p.numel() for p in ck.model.parameters()),
                **{g: {m.value: {"miou": r.miou, "iou": r.iou.tolist()} for m, r in res_g.items()}
                   for g, res_g in groups.items()},
            }
            args.out.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
            print(f"[{key}] done in {wall:.0f} s wall, {cpu:.0f} s CPU: "
                  + ", ".join(f"{g} {m} {100 * v['miou']:.1f}" for g in ("day", "night+fog")
                              for m, v in results[key][g].items()), flush=True)
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    """Mean +- std (over the seeds run) of each variant's held-out mIoU per mode, day vs night+fog."""
    cols = [("day", "both"), ("day", "ir"), ("day", "eo"), ("night+fog", "both"), ("night+fog", "ir"),
            ("night+fog", "eo")]
    lines = ["| variant | seeds | steps | " + " | ".join(f"{g} {m.replace('ir', 'IR').replace('eo', 'EO')}"
                                                          for g, m in cols) + " |",
             "|---|---:|---:|" + "---:|" * len(cols)]
    for name in VARIANTS:
        runs = [r for r in results.values() if isinstance(r, dict) and r.get("variant") == name]
        if not runs:
            continue
        cells = []
        for g, m in cols:
            vals = [100 * r[g][m]["miou"] for r in runs if m in r.get(g, {})]
            if not vals:
                cells.append("-")
            elif len(vals) == 1:
                cells.append(f"{vals[0]:.1f}")
            else:
                cells.append(f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}")
        lines.append(f"| {name} | {len(runs)} | {runs[0]['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
