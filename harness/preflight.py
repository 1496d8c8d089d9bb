"""Checks run before the install, with the system Python alone (stdlib only; run as a file).

``python harness/preflight.py VENV NEED_GB`` exits with a one-line message when the disk that
will hold ``VENV`` has less than ``NEED_GB`` GiB free. The Makefile runs it before it creates the
virtual environment, so a full disk is named before pip starts, not by an ``OSError`` halfway
through the install.
"""
from __future__ import annotations

import os
import shutil
import sys


def existing_parent(path: str) -> str:
    """The nearest directory at or above ``path`` that exists (``path`` itself may not yet)."""
    d = os.path.abspath(path)
    while not os.path.isdir(d):
        d = os.path.dirname(d)
    return d


def disk_shortfall(venv: str, need_gb: float) -> str | None:
    """The message naming the shortfall, or None when the disk of ``venv`` has ``need_gb`` GiB free.

    Parameters
    ----------
    venv : str
        Where the virtual environment will be made.
    need_gb : float
        GiB the install needs at its peak.
    """
    d = existing_parent(venv)
    free_gb = shutil.disk_usage(d).free / 2**30
    if free_gb >= need_gb:
        return None
    return (f"make: the install needs about {need_gb:.0f} GB free on the disk of {d}, which has "
            f"{free_gb:.1f} GB; free some space, or set VENV= to a directory on a larger disk "
            f"(INSTALL_GB= overrides the check)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python harness/preflight.py VENV NEED_GB")
    message = disk_shortfall(sys.argv[1], float(sys.argv[2]))
    sys.exit(message)          # None: exit 0
