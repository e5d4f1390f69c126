"""`csknet-studio align SEQUENCE`: estimate the EO/IR homography and store it in the project.

Without --manual, OpenCV's ECC on edge maps of one frame (coarse to fine) estimates it from plain
resizing; with --manual points.json, the clicked pairs give it ({"ir": [[x, y], ...], "eo": [[x, y],
...]}, at least 4 pairs), and --refine then runs ECC from there. The result goes into the project
(`<SEQUENCE>.csknet/`, or --project), which every later read of the sequence applies: the GUI,
infer, export and finetune alike. Exit status: 0 stored, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from csknet_studio.core.errors import ConfigError

from ._frame import frame_number


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", type=Path, help="the sequence (folder, video pair or HDF5 file)")
    p.add_argument("--project", type=Path, default=None, help="project folder (default: <SEQUENCE>.csknet)")
    p.add_argument("--manual", type=Path, default=None, metavar="POINTS.json",
                   help='clicked point pairs, {"ir": [[x, y], ...], "eo": [[x, y], ...]} (4 or more)')
    p.add_argument("--refine", action="store_true", help="with --manual: refine the estimate by ECC")
    p.add_argument("--frame", type=frame_number, default=None, metavar="N",
                   help="frame to register on (1-based, as in the window; default: the middle one)")
    p.add_argument("--dry-run", action="store_true", help="estimate and print, store nothing")
    p.add_argument("--relink", action="store_true", help="accept a project whose sequence was moved")
    p.add_argument("--json", action="store_true",
                   help="end stdout with one JSON line: homography (3x3), residual, correlation, method")


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from csknet_studio.core import registration as reg
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.data.alignment import Alignment
    from csknet_studio.core.session import AnnotationSession

    points = None
    if args.manual is not None:
        try:
            points = reg.load_points(json.loads(args.manual.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--manual {args.manual}: {exc}") from None
    elif args.refine:
        raise ConfigError("--refine needs --manual (ECC refines the clicked estimate)")
    seq = open_sequence(args.sequence, Alignment())  # estimates from IR as decoded: opens whatever the aspect
    try:
        n = len(seq)
        i = n // 2 if args.frame is None else args.frame - 1
        if not 0 <= i < n:
            raise ConfigError(f"--frame {args.frame} is out of range (the sequence has {n} frames, 1-{n})")
        eo, ir = seq.raw_pair(i)
        if eo is None or ir is None:
            raise ConfigError(f"frame {i + 1} of {args.sequence} lacks {'EO' if eo is None else 'IR'}: "
                              "registration needs both")
        if points is not None:
            result = reg.from_points(points[0], points[1], ir.shape[:2], eo.shape[:2])
            if args.refine:
                residual = result.residual
                result = reg.estimate_ecc(eo, ir, init=result.homography)
                result = reg.Registration(result.homography, result.method, result.ir_shape, result.eo_shape,
                                          residual=residual, correlation=result.correlation)
        else:
            result = reg.estimate_ecc(eo, ir)
        reg.check_plausible(result)
        where = "not stored (--dry-run)"
        if not args.dry_run:
            session = AnnotationSession(seq, args.project, relink=args.relink, autosave=False)
            try:
                session.set_alignment(result.to_dict())
                where = f"stored in {session.save()}"
            finally:
                session.close()
        quality = []
        if result.residual is not None:
            quality.append(f"residual {result.residual:.3f} px over {len(points[0])} pairs")  # type: ignore[index]
        if result.correlation is not None:
            quality.append(f"edge correlation {result.correlation:.3f}")
        print(f"{result.method} homography from frame {i + 1} ({seq.names[i]}), IR {ir.shape[1]}x{ir.shape[0]} "
              f"-> EO {eo.shape[1]}x{eo.shape[0]}: " + ", ".join(quality) + f"; {where}")
        for row in result.homography:
            print("  " + "  ".join(f"{v:12.6g}" for v in row))
        if args.json:
            print(json.dumps({"homography": [[float(v) for v in row] for row in result.homography],
                              "residual": result.residual, "correlation": result.correlation,
                              "method": result.method, "frame": i + 1}))
        return 0
    finally:
        seq.close()
