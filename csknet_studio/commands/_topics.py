"""`--eo-topic` / `--ir-topic`: which image topics of a recording are EO and IR."""

from __future__ import annotations

import argparse


def add_topic_arguments(p: argparse.ArgumentParser) -> None:
    """The image topics of a recording (ROS 1 / ROS 2 bag, MCAP); ignored for other sequences."""
    p.add_argument("--eo-topic", default=None, metavar="TOPIC",
                   help="a recording's EO image topic (default: picked when it has two image topics)")
    p.add_argument("--ir-topic", default=None, metavar="TOPIC",
                   help="a recording's IR image topic (default: the single-channel one of two)")


def topic_kwargs(args: argparse.Namespace) -> dict[str, str]:
    """open_sequence keywords for the topics given on the command line."""
    return {k: v for k in ("eo_topic", "ir_topic") if (v := getattr(args, k, None))}
