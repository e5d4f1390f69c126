"""The `csknet-studio` command line.

`csknet-studio [SEQUENCE] [--checkpoint FILE] [--device ...]` opens the GUI; the sub-commands
(`train`, `eval`, `infer`, `demo`, `info`, `export`, `finetune`, `align`) run headless. Each sub-command lives in its own
module under `csknet_studio.commands` exposing `add_arguments(parser)` and `run(args) -> int`,
imported lazily so `csknet-studio demo` never loads Qt and the GUI never loads training code.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from csknet_studio import __version__
from csknet_studio.commands._alignment import add_alignment_argument
from csknet_studio.commands._topics import add_topic_arguments
from csknet_studio.core.errors import CancelledError, CSKNetError

SUBCOMMANDS: dict[str, str] = {
    "train": "Train CSK-Net from a TOML config (DDP-aware: run under torchrun to scale out).",
    "eval": "Print per-class IoU for each modality mode (both / IR only / EO only).",
    "infer": "Segment a sequence in batches and write label PNGs or HDF5.",
    "demo": "Write the procedural EO/IR demo sequence with ground truth.",
    "info": "Say what a sequence or recording holds: layout, frames, sizes, bit depth, labels, bad frames, "
            "topics and clocks.",
    "export": "Export a sequence's labels and corrections: HDF5, indexed PNG masks, COCO JSON or a CVAT mask folder.",
    "finetune": "Fine-tune a checkpoint on a project's corrections (or ground-truth labels), judged on "
                "held-out corrections (DDP-aware).",
    "align": "Estimate the EO/IR homography (ECC on edge maps, or clicked point pairs) and store it in the "
             "project.",
}


# Sub-commands that open a sequence, so may be given a recording and its EO / IR topics.
TOPIC_COMMANDS = ("eval", "infer", "export", "finetune")
# Sub-commands that read IR onto the EO grid, so may be told how (`--alignment`).
ALIGNMENT_COMMANDS = ("eval", "infer", "export", "finetune", "info")


def _command_module(name: str):
    return importlib.import_module(f"csknet_studio.commands.{name}")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser; sub-command modules are imported only for the one being run."""
    parser = argparse.ArgumentParser(
        prog="csknet-studio",
        description="CSKNet Studio: EO/IR segmentation, correction and export.",
        epilog="Sub-commands: " + ", ".join(SUBCOMMANDS) + ". Run `csknet-studio CMD --help`.",
    )
    parser.add_argument("--version", action="version", version=f"csknet-studio {__version__}")
    if argv and argv[0] in SUBCOMMANDS:
        sub = parser.add_subparsers(dest="command", required=True)
        name = argv[0]
        p = sub.add_parser(name, help=SUBCOMMANDS[name], description=SUBCOMMANDS[name])
        _command_module(name).add_arguments(p)
        if name in TOPIC_COMMANDS:
            add_topic_arguments(p)
        if name in ALIGNMENT_COMMANDS:
            add_alignment_argument(p)
    else:
        parser.set_defaults(command="gui")
        _command_module("gui").add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command != "gui":
        _honour_sigint()
    try:
        return int(_command_module(args.command).run(args) or 0)
    except CancelledError as exc:  # a job stopped on the user's request: the status a shell expects
        print(f"csknet-studio {args.command}: interrupted: {exc}", file=sys.stderr)
        return 130
    except CSKNetError as exc:  # errors a user can act on: one clear line, no traceback
        print(f"csknet-studio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"csknet-studio {args.command}: interrupted", file=sys.stderr)
        return 130


def _honour_sigint() -> None:
    """Make SIGINT raise KeyboardInterrupt even when the parent ignored it.

    A shell without job control starts `cmd &` with SIGINT ignored, and Python then never installs
    its handler: `kill -INT` would be swallowed and a long export or training would run on and
    replace its output. A headless job that writes files should stop when asked to.
    """
    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread (main() called from a worker): leave signals alone
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
