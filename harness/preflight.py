"""Checks run before the install, with the system Python alone (stdlib only; run as a file).

``python harness/preflight.py VENV NEED_GB`` exits with a one-line message when the disk that
will hold ``VENV`` has less than ``NEED_GB`` GiB free. The Makefile runs it before it creates the
virtual environment, so a full disk is named before pip starts, not by an ``OSError`` halfway
through the install.

``python harness/preflight.py --pip-check`` (run with the venv's Python, after the install) is
``pip check`` less the declared exemptions (:data:`PIP_CHECK_EXEMPT`): packages installed
``--no-deps`` on purpose, whose unmet requirements are not used.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

#: Distributions whose unmet requirements ``pip check`` may report: why each is installed without them.
PIP_CHECK_EXEMPT = {
    "basic-pitch": "installed --no-deps: the zoo runs only its ONNX file (nmp.onnx) with onnxruntime, never "
                   "its TensorFlow / TFLite / CoreML back ends, pretty-midi or resampy",
    "hearbaseline": "installed --no-deps for the tests: only its torchcrepe wrapper is used (torch, torchcrepe); "
                    "its pins (numpy 1.19, numba 0.48) and TensorFlow / speechbrain / torchopenl3 are not",
}


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


def pip_check_problems(report: str) -> list[str]:
    """The lines of a ``pip check`` report that no :data:`PIP_CHECK_EXEMPT` entry covers.

    ``pip check`` lines start with the distribution's name and version (``basic-pitch 0.4.0 requires
    tensorflow, which is not installed.``); "No broken requirements found." is no problem.
    """
    out = []
    for line in report.splitlines():
        line = line.strip()
        if not line or line.startswith("No broken requirements"):
            continue
        if line.split(" ", 1)[0].lower().replace("_", "-") in PIP_CHECK_EXEMPT:
            continue
        out.append(line)
    return out


def pip_check() -> str | None:
    """Run ``pip check`` with this interpreter; the one-line message of its unexempted problems, or None."""
    r = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    problems = pip_check_problems(r.stdout + r.stderr)
    if not problems:
        return None
    return (f"make: pip check found {len(problems)} broken requirement(s): {'; '.join(p.rstrip('.') for p in problems)} (fix "
            f"requirements.lock, or declare an intended --no-deps install in harness/preflight.py PIP_CHECK_EXEMPT)")


if __name__ == "__main__":
    if sys.argv[1:] == ["--pip-check"]:
        sys.exit(pip_check())
    if len(sys.argv) != 3:
        sys.exit("usage: python harness/preflight.py VENV NEED_GB | --pip-check")
    message = disk_shortfall(sys.argv[1], float(sys.argv[2]))
    sys.exit(message)          # None: exit 0
