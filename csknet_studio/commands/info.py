"""`csknet-studio info PATH [--eo-topic T --ir-topic T] [--ir-scale GAIN,OFFSET|UNIT] [--split S] [--no-scan]
[--json]`.

Says what a sequence holds: the detected layout, frame count and sizes, dtypes and bit depths,
whether the IR is radiometric (and how its values read as °C), labels and bad frames; for a recording also its image topics, the pairs, the unpaired and dropped
frames and the offset between the two cameras' clocks. `--json` ends stdout with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._alignment import alignment_kwargs
from ._ir_scale import add_ir_scale_argument, ir_scale_kwargs
from ._topics import add_topic_arguments, topic_kwargs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", help="a sequence folder, a video pair folder, an HDF5 file or a recording "
                                    "(.bag, ROS 2 bag folder, .mcap)")
    add_topic_arguments(p)
    add_ir_scale_argument(p)
    p.add_argument("--split", default=None, help="split list or folder to read (MFNet test, PST900 train, ...)")
    p.add_argument("--no-scan", action="store_true",
                   help="do not decode every frame: faster, but bad frames are only those met while opening")
    p.add_argument("--json", action="store_true", help="end stdout with the report as one JSON line")


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from csknet_studio.core.data.imaging import noticing_colour_mapped_ir
    from csknet_studio.core.data.report import report_lines, sequence_report
    from csknet_studio.core.registration import open_aligned

    kw = {**topic_kwargs(args), **ir_scale_kwargs(args), **alignment_kwargs(args)}
    if args.split:
        kw["split"] = args.split
    with noticing_colour_mapped_ir() as colour_mapped, open_aligned(args.sequence, prefetch=0, **kw) as seq:
        bar = None
        if not args.no_scan and sys.stderr.isatty() and len(seq) > 200:
            from tqdm import tqdm  # only for a long scan on a terminal

            bar = tqdm(total=len(seq), desc="checking frames", unit="frame", leave=False)
        try:
            report = sequence_report(seq, scan=not args.no_scan,
                                     progress=None if bar is None else (lambda d, _t: bar.update(d - bar.n)))
        finally:
            if bar is not None:
                bar.close()
    report["ir_colour_mapped"] = bool(colour_mapped)
    for line in report_lines(report):
        print(line)
    if args.json:
        print(json.dumps(report))
    return 0
