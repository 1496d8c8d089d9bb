"""kim2024.esc50.music_above_environmental (issue 16): ESC-50 as Kim et al.'s second held-out set.

The spec's declarations, the major-category check and the clustered bootstrap, the cached ESC-50 path of
KimConditions (keyed by content), the skip or one-line stop without ``--esc50``, and the claim end to end on a
tiny ESC-50 in its shipped layout (tests/lab_fixtures.py), at the lab tier and at ci.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from harness.cache import Cache
from harness.errors import UserError
from harness.options import DATA_ROOTS, DataRoots
from harness.registry import discover
from harness.spec import VERDICTS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab_fixtures  # noqa: E402

torch.set_num_threads(1)
CLAIM_ID = "kim2024.esc50.music_above_environmental"
TARGET = "claims/kim2024/test_esc50_heldout.py"
SR = 22050


@pytest.fixture(scope="module")
def spec():
    return discover()[CLAIM_ID]


@pytest.fixture(scope="module")
def esc50(tmp_path_factory):
    return lab_fixtures.make_lab_esc50(tmp_path_factory.mktemp("esc") / "ESC-50-master", per_class=2, dur_s=0.5)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MEC_ESC50"}
    return dict(env, MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")


# ------------------------------------------------------------------------------------------- the spec
def test_the_spec_needs_esc50_at_every_tier_and_declares_its_controls(spec):
    assert DATA_ROOTS["esc50"].option == "--esc50" and DATA_ROOTS["esc50"].env == "MEC_ESC50"
    assert all("esc50" in t.data for t in spec.tiers.values()) and set(spec.tiers) == {"ci", "paper", "lab"}
    assert spec.tiers["lab"].data == ("esc50", "fsd50k") and "not yet run on GPU" in spec.tiers["lab"].reason
    ci = spec.tiers["ci"]
    assert ci.expect == "PASS" and ci.reason.startswith("not measured at ci") and "--esc50 DIR" in ci.reason
    assert spec.controls == {"random_init": "FAIL"} and spec.reported is None
    assert [c.statistic for c in spec.criteria] == ["ratio", "gain_vs_random", "major_category_margin"]
    assert all(c.comparator == ">" and c.source.startswith("ours") for c in spec.criteria)
    assert [c.name for c in spec.competence] == ["without_music.test_map"]
    assert "training split" in spec.notes and "Freesound" in spec.notes and "MSI on the test split" in spec.notes


def test_major_categories_and_the_stand_in_check(tmp_path, esc50):
    from stimuli.open_data import ESC50_MAJOR_CATEGORIES, esc50_major_category, load_esc50, require_esc50_categories

    assert list(esc50_major_category([0, 9, 10, 29, 30, 49])) == [
        ESC50_MAJOR_CATEGORIES[0], ESC50_MAJOR_CATEGORIES[0], ESC50_MAJOR_CATEGORIES[1], ESC50_MAJOR_CATEGORIES[2],
        ESC50_MAJOR_CATEGORIES[3], ESC50_MAJOR_CATEGORIES[4]]
    with pytest.raises(UserError, match="0-49"):
        esc50_major_category([50])
    assert require_esc50_categories(esc50.parent) == esc50                       # the parent of ESC-50-master/
    clips = load_esc50(esc50, sr=SR, clip_s=0.5, progress=False)
    assert clips.manifest["target"] == [t for t in range(50) for _ in range(2)]
    assert len(set(clips.manifest["src_file"])) == 50                            # two takes per recording
    standin = tmp_path / "standin"
    shutil.copytree(esc50, standin)
    meta = standin / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(ln for ln in lines if not ln.split(",")[2].isdigit() or int(ln.split(",")[2]) < 40) + "\n")
    with pytest.raises(UserError) as e:
        require_esc50_categories(standin, what=CLAIM_ID)
    msg = str(e.value)
    assert "\n" not in msg and "'Exterior/urban noises'" in msg and str(meta) in msg and "--esc50 DIR" in msg
    with pytest.raises(UserError) as e:
        require_esc50_categories(tmp_path / "absent")
    assert "\n" not in str(e.value) and "github.com/karolpiczak/ESC-50" in str(e.value)


def test_the_bootstrap_resamples_esc50_by_source_recording():
    from claims.kim2024.test_esc50_heldout import bootstrap_ratio

    rng = np.random.default_rng(0)
    music = 2.0 + 0.1 * rng.standard_normal((2, 40))
    per_source = 1.0 + 0.5 * rng.standard_normal(10)
    env = np.tile(np.repeat(per_source, 4), (2, 1))                 # 4 identical takes per recording
    clustered = bootstrap_ratio(music, env, np.repeat(np.arange(10), 4).astype(str), n_boot=400)
    by_clip = bootstrap_ratio(music, env, np.arange(40).astype(str), n_boot=400)
    expect = float(np.mean(music.mean(1) / env.mean(1)))
    assert clustered.value == pytest.approx(expect) == by_clip.value
    assert clustered.low < expect < clustered.high
    assert clustered.high - clustered.low > 1.5 * (by_clip.high - by_clip.low)   # takes are not independent
    assert "source recordings (10)" in clustered.method


# ------------------------------------------------------------------------------ the cached ESC-50 path
@pytest.fixture
def corpus_clips(tmp_path):
    """A tiny training corpus (``load_folder``) with music and non-music in the train and test splits."""
    from stimuli.loaders import load_folder

    root = tmp_path / "corpus"
    rows = []
    for k in range(8):
        root.mkdir(parents=True, exist_ok=True)
        sf.write(root / f"c{k}.wav", (0.1 * np.random.default_rng(50 + k).standard_normal(SR)).astype(np.float32), SR)
        rows.append(f"c{k}.wav,{'Music' if k % 2 else 'Dog'},{'train' if k < 6 else 'test'}\n")
    (root / "labels.csv").write_text("file,labels,split\n" + "".join(rows))
    return load_folder(root, "labels.csv", sr=SR, clip_s=1.0)


def _kim(tmp_path, corpus_clips):
    from claims.kim2024._conditions import KimConditions, tier_settings

    cond = KimConditions(tier_settings("ci", seeds=1, clip_s=1.0), Cache(tmp_path / "cache"), "cpu")
    cond._clips = corpus_clips
    return cond


def _outcomes(cache, since=0) -> dict:
    out = {}
    for e in cache.events[since:]:
        out.setdefault(e.namespace, []).append(e.outcome)
    return out


def test_esc50_features_are_keyed_by_content_not_by_the_folder(tmp_path, corpus_clips, esc50):
    from stimuli.open_data import ESC50_MAJOR_CATEGORIES

    cond = _kim(tmp_path, corpus_clips)
    f = cond.esc50_features("random_init", 0, esc50)
    ns = cond.esc50_logmel(esc50)
    assert f.shape[0] == 100 == len(ns["major"]) and set(ns["major"]) == set(ESC50_MAJOR_CATEGORIES)
    assert ns["x"].shape[-1] == cond.logmel().shape[-1]                 # cut or padded to the corpus clip length
    moved = tmp_path / "moved" / "ESC-50-master"
    shutil.copytree(esc50, moved)
    again = _kim(tmp_path, corpus_clips)                                 # a later run: new process state
    n0 = len(again.cache.events)
    np.testing.assert_array_equal(again.esc50_features("random_init", 0, moved), f)
    assert _outcomes(again.cache, n0)["kim2024-features"] == ["hit"]
    clip = sorted((moved / "audio").glob("*.wav"))[0]
    sf.write(clip, 0.3 * np.ones(4410, np.float32), 44100)              # another sound under the same name
    edited = _kim(tmp_path, corpus_clips)
    n0 = len(edited.cache.events)
    f2 = edited.esc50_features("random_init", 0, moved)
    got = _outcomes(edited.cache, n0)
    assert got["kim2024-esc50"] == ["miss"] and got["kim2024-features"] == ["miss"], got
    assert not np.allclose(f2[0], f[0]) and np.allclose(f2[1:], f[1:], atol=1e-5)


def test_the_lab_estimate_counts_esc50(spec, esc50):
    from claims.kim2024._conditions import estimate_work
    from harness.claimrun import effective_settings

    s = effective_settings(spec.tiers["lab"])
    work = estimate_work(CLAIM_ID, "", "lab", s, DataRoots({"esc50": str(esc50)}))
    [decode] = [w for w in work if w.what.startswith("decode ESC-50")]
    assert "100 clips counted" in decode.what
    assert len([w for w in work if "ESC-50 features" in w.what]) == 2 * s["seeds"]
    assert "2000 clips assumed" in " ".join(w.what for w in estimate_work(CLAIM_ID, "", "lab", s, DataRoots({})))
    assert not [w for w in estimate_work("kim2024.separability", "", "lab", s) if "ESC-50" in w.what]


# ------------------------------------------------------------------------------------- without --esc50
def test_without_esc50_the_claim_is_skipped_at_ci_and_stops_the_lab_tier(tmp_path):
    base = [sys.executable, "-m", "pytest", "-m", "claims", TARGET, "-p", "no:cacheprovider", "-p", "no:xdist",
            "--mlflow-uri", "none", f"--report-dir={tmp_path / 'reports'}", f"--cache-dir={tmp_path / 'cache'}",
            f"--shared-data={tmp_path / 'empty'}", "-q", "-rs"]
    out = subprocess.run(base, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    [row] = json.loads((tmp_path / "reports" / "latest" / "claims.json").read_text())["claims"]
    assert row["claim_id"] == CLAIM_ID and row["outcome"] == "skipped", row
    reason = row["skip_reason"]
    assert "\n" not in reason and reason.startswith(CLAIM_ID) and "ESC-50" in reason and "--esc50" in reason
    lab = subprocess.run(base + ["--tier", "lab", "--fsd50k", str(tmp_path)], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert lab.returncode != 0
    [line] = [ln for ln in (lab.stdout + lab.stderr).splitlines() if "--esc50" in ln]
    assert CLAIM_ID in line and "at --tier lab" in line and "MEC_ESC50" in line


# ----------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def lab_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-esc50")
    (root / "empty").mkdir()
    return {"--fsd50k": lab_fixtures.make_lab_fsd50k(root / "FSD50K"),
            "--esc50": lab_fixtures.make_lab_esc50(root / "ESC-50-master"), "empty": root / "empty"}


def _run(tmp_path, args: list) -> tuple[subprocess.CompletedProcess, dict]:
    cmd = [sys.executable, "-m", "pytest", "-m", "claims", TARGET, "--device", "cpu", "--seeds", "1",
           "-p", "no:cacheprovider", "-p", "no:xdist", "--mlflow-uri", "none", f"--report-dir={tmp_path / 'reports'}",
           f"--cache-dir={tmp_path / 'cache'}", "-q", *args]
    out = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    log = out.stdout[-4000:] + out.stderr[-3000:]
    assert out.returncode in (0, 1), log                     # 1: the fixtures' verdict need not be the paper's
    [row] = json.loads((tmp_path / "reports" / "latest" / "claims.json").read_text())["claims"]
    return out, row


def _check_row(row, spec, tier: str, report_dir: Path) -> dict:
    """Check a report row of the claim; returns what the claim logged (values.json ``extra``)."""
    assert row["claim_id"] == CLAIM_ID and row["tier"] == tier and row["verdict"] in VERDICTS, row.get("error", row)
    assert set(row["criteria"]) == {"ratio", "gain_vs_random", "major_category_margin"}
    assert row["controls"].keys() == spec.declared_controls(tier).keys() == {"random_init"}
    assert row["controls"]["random_init"] == "FAIL" and not row["control_mismatches"], row["controls"]
    assert [c["name"] for c in row["competence"]] == ["without_music.test_map"]
    assert "esc50" in {m["name"] for m in row["data_manifests"]}, row["data_manifests"]
    extra = json.loads((report_dir / "latest" / "claims" / CLAIM_ID / "values.json").read_text())["extra"]
    assert [len(d) for d in extra["major_category_ratios"]] == [5] and len(extra["corpus_nonmusic_over_esc50"]) == 1
    assert extra["n_esc50_clips"] == 50 and extra["n_music_clips"] > 0
    return extra


@pytest.mark.slow
def test_the_claim_reaches_a_verdict_at_the_lab_tier_on_open_data_fixtures(spec, lab_roots, tmp_path):
    """``--tier lab --fsd50k DIR --esc50 DIR`` on tiny folders and tiny settings: a verdict, the random_init
    control evaluated (it must FAIL), the competence judged, and ESC-50's manifest among the data."""
    out, row = _run(tmp_path, ["--tier", "lab", *lab_fixtures.set_args("kim2024"), f"--shared-data={lab_roots['empty']}",
                               "--fsd50k", str(lab_roots["--fsd50k"]), "--esc50", str(lab_roots["--esc50"])])
    assert "decode ESC-50 (50 clips counted" in out.stdout, out.stdout[-3000:]
    _check_row(row, spec, "lab", tmp_path / "reports")


@pytest.mark.slow
def test_the_claim_reaches_a_verdict_at_ci_with_esc50(spec, lab_roots, tmp_path):
    """At ci (the embedded corpus, shrunk by --set) with --esc50: the same verdict machinery."""
    _, row = _run(tmp_path, ["--set", "clips=240", "--set", "epochs=1", "--set", "width=0.125",
                             "--esc50", str(lab_roots["--esc50"])])
    _check_row(row, spec, "ci", tmp_path / "reports")
    assert row["expected"] == "PASS" and row["expected_reason"].startswith("not measured at ci")
