"""`--frame N`: frame numbers on the command line count from 1, as the window's counter does."""

from __future__ import annotations

import argparse


def frame_number(text: str) -> int:
    """argparse type: a frame number, 1 or more (the first frame is 1)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a frame number is 1 or more, got {text!r}")
    return n
