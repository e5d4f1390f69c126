"""Ablations of the default-model recipe, every row at one shared budget (issue 7).

    python scripts/default_model_ablations.py --epochs 90 --threads 2 [--only no_gsu,ir_single]

`--epochs 90` is the bundled model's full budget (docs/model.md, Ablations); fewer epochs give a
quicker, shorter-budget table.

Every row trains with configs/default_model.toml changed in exactly one way, for the same number of
steps, from the same seed, and reuses the EO teacher the main run trained
(runs/default_model/teacher.pt), so the rows differ only in what they name:
  ref          the recipe itself at the short budget (the row the others compare against)
  no_distill   loss.contrastive = 0 (no EO-teacher distillation)
  no_exchange  exchange_stages = [] (no channel exchange)
  no_gsu       gsu_stages = [] (no Gated Spectral Unit; both-mode fusion is the logit ensemble only)
  ir_single    modality_dropout = 1: every step IR only, i.e. a single-stream IR network
Runs are sequential (one training at a time). Each final checkpoint (last.pt: the end of the budget,
not a validation-picked epoch) is scored on the held-out clip of scripts/default_model_report.py;
results go to runs/ablations/results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from default_model_report import evaluate_groups, heldout_frames  # noqa: E402

from csknet_studio.core.checkpoint import load_checkpoint  # noqa: E402
from csknet_studio.core.modes import Mode  # noqa: E402
from csknet_studio.core.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ref", "ir_single", "no_exchange", "no_gsu", "no_distill")


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


def variant_config(base: TrainConfig, name: str, epochs: int, teacher: Path, out_root: Path) -> TrainConfig:
    model_over = dict(base.model.overrides)
    changes: dict = {"optim__epochs": epochs, "teacher__checkpoint": str(teacher), "teacher__epochs": 0,
                     "output_dir": str(out_root / name), "val_every": 1000, "checkpoint_every": 1000}
    if name == "no_distill":
        changes["loss__contrastive"] = 0.0
    elif name == "no_exchange":
        model_over["exchange_stages"] = []
    elif name == "no_gsu":
        model_over["gsu_stages"] = []
    elif name == "ir_single":
        changes.update(modality_dropout=1.0, eo_only_dropout=0.0, loss__contrastive=0.0,
                       val_modes=("ir",), select_mode="ir")
    elif name != "ref":
        raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    changes["model__overrides"] = model_over
    return config_copy(base, **changes)


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
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = TrainConfig.from_toml(args.config)
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    frames = heldout_frames(args.frames, tuple(args.size))
    for name in names:
        cfg = variant_config(base, name, args.epochs, args.teacher.resolve(), args.out.resolve())
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        res = train(cfg, log=lambda s, n=name: print(f"[{n}] {s}", flush=True))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ck = load_checkpoint(res.last_checkpoint)
        modes = [Mode.IR] if name == "ir_single" else [Mode.BOTH, Mode.IR, Mode.EO]
        groups = evaluate_groups(ck.model, frames, modes)
        results[name] = {
            "steps": cfg.optim.epochs * cfg.max_steps_per_epoch, "wall_s": round(wall), "cpu_s": round(cpu),
            "params": sum(p.numel() for p in ck.model.parameters()),
            **{g: {m.value: {"miou": r.miou, "iou": r.iou.tolist()} for m, r in res_g.items()}
               for g, res_g in groups.items()},
        }
        args.out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(f"[{name}] done in {wall:.0f} s wall, {cpu:.0f} s CPU: "
              + ", ".join(f"{g} {m} {100 * v['miou']:.1f}" for g in ("day", "night+fog")
                          for m, v in results[name][g].items()), flush=True)
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    cols = [("day", "both"), ("day", "ir"), ("day", "eo"), ("night+fog", "both"), ("night+fog", "ir"),
            ("night+fog", "eo")]
    lines = ["| variant | steps | " + " | ".join(f"{g} {m.replace('ir', 'IR').replace('eo', 'EO')}"
                                                  for g, m in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for name in VARIANTS:
        if name not in results:
            continue
        r = results[name]
        cells = []
        for g, m in cols:
            v = r.get(g, {}).get(m)
            cells.append(f"{100 * v['miou']:.1f}" if v else "-")
        lines.append(f"| {name} | {r['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
