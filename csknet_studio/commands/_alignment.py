"""`--alignment`: how IR lies on the EO grid for this run, when the project's stored one will not do.

IR of another aspect ratio than EO is refused unless an alignment says how it maps onto the EO
grid; `csknet-studio align SEQUENCE` stores one in the project, which every command then applies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from csknet_studio.core.errors import ConfigError

HELP = ("how IR maps onto the EO grid for this run: 'stored' (default: the project's, from `align` or "
        "the GUI), 'plain' (resize IR to the EO size, accepting any stretch), or a JSON file holding "
        '{"homography": [[...], [...], [...]]} (what `align --json` prints) or {"dx": .., "dy": .., "scale": ..}')


def add_alignment_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alignment", default="stored", metavar="stored|plain|FILE.json", help=HELP)


def parse_alignment(spec: str | None) -> Any:
    """The `Alignment` `spec` names, or None for the project's stored one."""
    # the engine, imported here: see the package docstring
    from csknet_studio.core.data.alignment import Alignment

    if spec in (None, "", "stored"):
        return None
    if spec == "plain":
        return Alignment()
    path = Path(spec).expanduser()
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--alignment {spec}: expected 'stored', 'plain' or a JSON file ({type(exc).__name__}: "
                          f"{exc})") from None
    if isinstance(d, dict):
        d = {k: d[k] for k in ("homography", "dx", "dy", "scale") if k in d}
    try:
        if not isinstance(d, dict) or not d:
            raise ValueError('no "homography" nor "dx"/"dy"/"scale" in it')
        return Alignment.from_dict(d)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"--alignment {spec}: not an alignment: {exc}") from None


def alignment_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """open_aligned keywords: the alignment given on the command line (none: the stored one)."""
    a = parse_alignment(getattr(args, "alignment", None))
    return {} if a is None else {"alignment": a}


def reapply_given_alignment(args: argparse.Namespace, sequence: Any) -> None:
    """A session hands its sequence the project's alignment on load; this run's `--alignment`
    (when given) wins over it, without being stored."""
    given = alignment_kwargs(args)
    if given:
        sequence.alignment = given["alignment"]
