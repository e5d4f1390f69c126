"""`csknet-studio [SEQUENCE] [--frame N] [--checkpoint FILE] [--device ...] [--screenshot PNG] [--theme ...]
[--read-only] [--ir-scale GAIN,OFFSET|UNIT]`."""

from __future__ import annotations

import argparse

from ._frame import frame_number
from ._ir_scale import add_ir_scale_argument
from ._topics import add_topic_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sequence", nargs="?", default=None,
                        help="sequence folder, video, HDF5 file or recording (default: the bundled demo sequence)")
    parser.add_argument("--frame", type=frame_number, default=None, metavar="N",
                        help="open on frame N (1-based, as in the window; default: the first frame)")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="model weights (.pt); default: the bundled checkpoint")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where the model runs (default: auto)")
    parser.add_argument("--screenshot", default=None, metavar="PNG",
                        help="render the main window once the first frame is segmented, save it and exit "
                             "(works with QT_QPA_PLATFORM=offscreen or under xvfb-run)")
    parser.add_argument("--theme", default=None, choices=("dark", "light"),
                        help="colour theme (default: the last one used, else dark)")
    add_topic_arguments(parser)  # a recording opened without them gets the topic picker
    add_ir_scale_argument(parser)
    parser.add_argument("--read-only", action="store_true",
                        help="open the sequence's project without writing to it (e.g. while another copy "
                             "of the app has it open)")
    parser.add_argument("--take-over-lock", action="store_true",
                        help="take over the project's lock when its holder runs on another machine and "
                             "cannot be checked (a copy still running on this machine must be closed)")


def run(args: argparse.Namespace) -> int:
    # Qt and the engine, imported here: see the package docstring
    from csknet_studio.ui.app import run_app

    return run_app(args)
