"""argparse value types shared by the command lines (one wording for every bad flag)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number > 0, or a usage error that says what arrived."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (0 usually switches something off), or a usage error that says what arrived."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value
