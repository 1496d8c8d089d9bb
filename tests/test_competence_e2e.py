"""A crippled model turns a real claim INCONCLUSIVE: Kim et al.'s separability with one-epoch networks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_one_epoch_networks_make_a_real_claim_inconclusive(tmp_path):
    """``--set epochs=1``: the networks stay near chance on their own task (test mAP ~0.1 < 0.2), so
    kim2024.separability earns no verdict, whatever its statistic says."""
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    cmd = [sys.executable, "-m", "pytest", "-m", "claims", "claims/kim2024/test_separability.py", "-p", "no:cacheprovider",
           "-p", "no:xdist", "--set", "epochs=1", "--mlflow-uri", "none", f"--report-dir={tmp_path}", "-q"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    row = json.loads((tmp_path / "latest" / "claims.json").read_text())["claims"][0]
    assert row["verdict"] == "INCONCLUSIVE" and row["competent"] is False, row
    assert row["settings_overridden"] == {"epochs": 1}
    assert row["inconclusive_reason"].startswith("model did not learn its task: without_music.test_map")
    assert all(c["value"] < c["threshold"] for c in row["competence"])
    assert "undertrained: kim2024.separability" in out.stdout
