"""The README matches the code: its two commands, its options table, its make targets and paths."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, f"README has no section {title!r}"
    return m.group(1)


def test_the_readme_opens_with_exactly_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make replicate", "make test"]


def test_every_make_target_the_readme_names_exists():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README))
    assert named and named <= targets, f"README names make targets the Makefile lacks: {named - targets}"


@pytest.fixture(scope="module")
def pytest_help() -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def test_every_option_in_the_options_table_exists(pytest_help):
    rows = [line for line in _section("Options").splitlines() if line.startswith("| `--")]
    options = {o for line in rows for o in re.findall(r"`(--[a-z0-9-]+)", line.split("|")[1])}
    assert len(options) >= 15
    missing = sorted(o for o in options if not re.search(rf"(^|\s){re.escape(o)}[=\s,]", pytest_help, re.M))
    assert not missing, f"README options unknown to pytest: {missing}"


def test_every_environment_variable_in_the_options_table_is_read_by_the_code():
    rows = [line for line in _section("Options").splitlines() if line.startswith("| `--")]
    env = {v for line in rows for v in re.findall(r"`(MEC_[A-Z0-9_]+)`", line)}
    code = "\n".join(p.read_text() for p in (REPO / "harness").glob("*.py"))
    missing = sorted(v for v in env if v not in code)
    assert env and not missing, f"README environment variables the harness never reads: {missing}"


def test_the_layout_lists_files_that_exist():
    block = re.search(r"```\n(stimuli/.*?)```", _section("Layout"), re.S).group(1)
    missing = []
    for line in block.splitlines():
        folder = line[:12].strip() or folder  # noqa: F821  (continuation lines keep the folder)
        for name in re.findall(r"([a-z0-9_]+\.py|[a-z0-9_]+/)", line[12:]):
            base = REPO / folder.rstrip("/")
            if not ((base / name).exists() or (REPO / "claims" / name).exists()):
                missing.append(f"{folder}{name}")
    assert not missing, f"README layout names missing files: {missing}"
