"""The install's disk check (harness/preflight.py, run by the Makefile before the venv exists)."""
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

from harness.preflight import disk_shortfall, existing_parent

Usage = namedtuple("Usage", "total used free")


def test_existing_parent_walks_up_to_a_directory(tmp_path):
    assert existing_parent(str(tmp_path / "a" / "b" / ".venv")) == str(tmp_path)
    assert existing_parent(str(tmp_path)) == str(tmp_path)


def test_shortfall_names_the_disk_the_free_space_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda d: Usage(100 * 2**30, 97 * 2**30, 3 * 2**30))
    msg = disk_shortfall(str(tmp_path / ".venv"), 9)
    assert f"disk of {tmp_path}" in msg and "3.0 GB" in msg and "about 9 GB" in msg
    assert "VENV=" in msg and "\n" not in msg
    assert disk_shortfall(str(tmp_path / ".venv"), 2) is None


def test_runs_as_a_file_with_one_line_and_exit_1(tmp_path):
    script = Path(__file__).resolve().parents[1] / "harness" / "preflight.py"
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / ".venv"), "1e9"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "free some space" in bad.stderr
    ok = subprocess.run([sys.executable, str(script), str(tmp_path / ".venv"), "0"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stderr == ""


def test_pip_check_keeps_all_but_the_declared_no_deps_installs():
    from harness.preflight import PIP_CHECK_EXEMPT, pip_check_problems

    report = ("basic-pitch 0.4.0 requires tensorflow, which is not installed.\n"
              "basic-pitch 0.4.0 has requirement resampy<0.4.3,>=0.2.2, but you have resampy 0.4.3.\n"
              "torchfcpe 0.0.4 requires einops, which is not installed.\n")
    assert "basic-pitch" in PIP_CHECK_EXEMPT
    assert pip_check_problems(report) == ["torchfcpe 0.0.4 requires einops, which is not installed."]
    assert pip_check_problems("No broken requirements found.\n") == []

