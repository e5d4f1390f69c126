"""`--ir-scale`: how a sequence's IR counts read as °C, when its files do not say (or say wrongly)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("how IR values read as °C: GAIN,OFFSET (°C = value × GAIN + OFFSET, e.g. 0.01,-273.15) or a unit "
        "(centikelvin, decikelvin, kelvin, celsius, ...); wins over what FLIR R-JPEGs, TIFF metadata or a "
        "sidecar JSON state. Kept in the sequence's project, which applies it when it is not given")


def add_ir_scale_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ir-scale", default=None, metavar="GAIN,OFFSET|UNIT", help=HELP)


def ir_scale_kwargs(args: argparse.Namespace) -> dict[str, str]:
    """open_sequence keywords for the scale given on the command line."""
    v = getattr(args, "ir_scale", None)
    return {"ir_scale": v} if v else {}


def remember_ir_scale(args: argparse.Namespace, project: Path | None) -> bool:
    """Keep the scale given on the command line in the project (when there is one), so the next
    run, the app and every reader of the sequence apply it without being told again."""
    # the engine (OpenCV, numpy): see the package docstring
    from csknet_studio.core.project import ProjectStore
    from csknet_studio.core.project_settings import store_ir_scale

    text = getattr(args, "ir_scale", None)
    if not text or project is None or not ProjectStore(project).exists():
        return False
    store_ir_scale(project, text)
    return True
