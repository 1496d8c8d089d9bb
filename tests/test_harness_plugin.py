"""The pytest plugin itself, exercised on small throwaway claims with pytester."""
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

CLAIM_TEMPLATE = '''
from analysis.stats import Estimate
from harness import Claim, Criterion, Evidence, Paper, Tier, claim, FAIL, PASS

PAPER = Paper("toy", "Toy, A. (2026). A toy paper.")

SPEC = Claim(
    id="toy.{name}", paper=PAPER, finding="Toy networks prefer music.",
    statistic="ratio", unit="seeds", reported={reported},
    criteria=[Criterion("ratio", ">=", 1.5, source="ours")],
    controls={{"random_init": FAIL}},
    tiers={{"ci": Tier({{"seeds": 3}}, expect="{expect}", reason="{reason}")}},
)

@claim(SPEC)
def test_{name}(run):
    with run.child("seed-0", params={{"seed": 0}}) as child:
        child.log_history({{"loss": [1.0, 0.5, 0.25]}})
    main = Estimate.over_seeds({main})
    control = Estimate.over_seeds({control})
    return {{"main": Evidence({{"ratio": main}}), "random_init": Evidence({{"ratio": control}})}}
'''


def write_claim(pytester, name, main, control, expect="PASS", reason="", reported="'2.07'"):
    pytester.makepyfile(**{f"test_{name}": CLAIM_TEMPLATE.format(
        name=name, main=main, control=control, expect=expect, reason=reason, reported=reported)})


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An initialised MLflow SQLite store, copied into each test (schema creation is slow)."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture(autouse=True)
def _fresh_store(pytester, mlflow_template):
    (pytester.path / "mlruns").mkdir()
    shutil.copy(mlflow_template, pytester.path / "mlruns" / "mlflow.db")


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch):
    """The subprocesses import this checkout's harness (not another one an editable install points at)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def run(pytester, *args):
    db = pytester.path / "mlruns" / "mlflow.db"
    base = ["-p", "harness.plugin", "-p", "no:cacheprovider", f"--mlflow-uri=sqlite:///{db}",
            f"--cache-dir={pytester.path / 'cache'}", f"--report-dir={pytester.path / 'reports'}"]
    # subprocess: MLflow's imports do not survive pytester's in-process module snapshots
    return pytester.runpytest_subprocess(*base, *args)


def report(pytester):
    return json.loads((pytester.path / "reports" / "latest" / "claims.json").read_text())


def test_a_claim_whose_controls_fail_passes_and_is_reported(pytester):
    write_claim(pytester, "good", main=[1.8, 2.0, 2.2], control=[1.0, 1.02, 1.05])
    result = run(pytester)
    result.assert_outcomes(passed=1)
    rows = report(pytester)["claims"]
    assert len(rows) == 1
    row = rows[0]
    for field in ("claim_id", "paper", "tier", "statistic", "reported", "value", "ci_low", "ci_high",
                  "comparator", "threshold", "verdict", "expected", "controls", "mlflow_run_id", "seconds"):
        assert field in row, field
    assert row["verdict"] == "PASS" and row["controls"] == {"random_init": "FAIL"}
    assert row["tier"] == "ci" and row["ci_low"] == 1.8 and row["ci_high"] == 2.2
    result.stdout.fnmatch_lines(["*claims: ci tier (smoke test, not a replication)*", "*toy.good*PASS*",
                                 "*mlflow ui --backend-store-uri*"])
    # the run ends with where the report and the runs are, after pytest's own summary line
    tail = [line for line in result.outlines if line.strip()][-3:]
    assert tail[0].startswith("report: ") and tail[2].startswith("runs:   mlflow ui"), tail
    # the MLflow store holds session -> claim -> condition runs with verdict tags
    con = sqlite3.connect(pytester.path / "mlruns" / "mlflow.db")
    tags = con.execute("select key, value from tags").fetchall()
    assert ("mec.verdict", "PASS") in tags and ("mec.level", "session") in tags
    assert ("mec.level", "condition") in tags and ("mlflow.runType", "test") in tags
    assert sum(1 for k, v in tags if k == "mlflow.parentRunId") == 2


def test_a_control_that_does_not_fail_fails_the_claim(pytester):
    write_claim(pytester, "leaky", main=[1.8, 2.0, 2.2], control=[1.6, 1.7, 1.9])
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*control 'random_init' got PASS, declared FAIL*"])
    assert report(pytester)["claims"][0]["control_mismatches"]


def test_an_interval_straddling_the_threshold_is_inconclusive(pytester):
    write_claim(pytester, "straddle", main=[1.3, 1.6, 1.9], control=[1.0, 1.0, 1.1])
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert report(pytester)["claims"][0]["verdict"] == "INCONCLUSIVE"
    result.stdout.fnmatch_lines(["*verdict INCONCLUSIVE, expected PASS*"])


def test_a_declared_non_replication_is_a_strict_xfail(pytester):
    write_claim(pytester, "weak", main=[1.0, 1.1, 1.2], control=[0.9, 1.0, 1.0], expect="FAIL",
                reason="the embedded corpus lacks real music")
    result = run(pytester)
    result.assert_outcomes(xfailed=1)
    row = report(pytester)["claims"][0]
    assert row["verdict"] == "FAIL" and row["outcome"] == "xfailed"


def test_an_unexpected_pass_of_a_declared_non_replication_fails(pytester):
    write_claim(pytester, "surprise", main=[1.8, 2.0, 2.2], control=[0.9, 1.0, 1.0], expect="FAIL",
                reason="we thought it would not replicate")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*update the spec*"])


def test_unknown_tier_is_a_one_line_error(pytester):
    write_claim(pytester, "good", main=[2.0], control=[1.0])
    result = run(pytester, "--tier", "full")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*argument --tier: invalid choice: 'full'*"])


def test_unreachable_tracking_server_is_a_one_line_error(pytester):
    write_claim(pytester, "good", main=[2.0], control=[1.0])
    result = pytester.runpytest_subprocess("-p", "harness.plugin", "--mlflow-uri", "http://127.0.0.1:9")
    assert result.ret != 0
    err = [line for line in result.stderr.lines if line.strip()]
    assert len(err) == 1 and "MLflow tracking server http://127.0.0.1:9 is unreachable" in err[0]
    assert "--mlflow-uri" in err[0] and "Traceback" not in result.stderr.str()


def test_missing_data_root_at_paper_tier_is_a_one_line_error(pytester, tmp_path):
    pytester.makepyfile(test_needs="""
from analysis.stats import Estimate
from harness import Claim, Criterion, Evidence, Paper, Tier, claim, FAIL
SPEC = Claim(id="toy.needs", paper=Paper("toy", "Toy"), finding="f", statistic="s", unit="seeds",
             criteria=[Criterion("x", ">", 0)], controls={"random_init": FAIL},
             tiers={"ci": Tier({}), "paper": Tier({}, data=("audioset_audio",))})
@claim(SPEC)
def test_needs(run):
    return {"main": Evidence({"x": Estimate.point(1.0)}), "random_init": Evidence({"x": Estimate.point(-1.0)})}
""")
    missing = tmp_path / "nowhere"
    result = run(pytester, "--tier", "paper", f"--audioset-audio={missing}")
    assert result.ret != 0
    result.stderr.fnmatch_lines([f"*toy.needs at --tier paper*{missing} does not exist; set --audioset-audio PATH*"])
    assert "Traceback" not in result.stderr.str()


def test_user_error_inside_a_claim_is_one_line(pytester):
    pytester.makepyfile(test_bad="""
from harness import Claim, Criterion, Paper, Tier, claim, FAIL, UserError
SPEC = Claim(id="toy.bad", paper=Paper("toy", "Toy"), finding="f", statistic="s", unit="seeds",
             criteria=[Criterion("x", ">", 0)], controls={"random_init": FAIL}, tiers={"ci": Tier({})})
@claim(SPEC)
def test_bad(run):
    raise UserError("clip /data/x.wav is corrupt: re-download it or remove it from labels.csv")
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["UserError: clip /data/x.wav is corrupt*"])
    assert "raise UserError" not in result.stdout.str()
    assert report(pytester)["claims"][0]["verdict"] == "ERROR"


def test_xdist_two_workers_log_to_one_store_without_lock_errors(pytester):
    for i in range(4):
        write_claim(pytester, f"par{i}", main=[1.8, 2.0, 2.2], control=[1.0, 1.02, 1.05])
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    out = result.stdout.str() + result.stderr.str()
    assert "database is locked" not in out
    rows = report(pytester)["claims"]
    assert sorted(r["claim_id"] for r in rows) == [f"toy.par{i}" for i in range(4)]
    con = sqlite3.connect(pytester.path / "mlruns" / "mlflow.db")
    sessions = con.execute("select count(*) from tags where key='mec.level' and value='session'").fetchone()[0]
    claims = con.execute("select count(*) from tags where key='mec.level' and value='claim'").fetchone()[0]
    assert sessions == 1 and claims == 4


def test_xdist_workers_get_their_own_numba_cache(pytester, monkeypatch):
    """Concurrent numba cache writes segfaulted a CI worker (librosa's cache=True kernels)."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    pytester.makepyfile(test_numba_env='''
import os, pathlib
import pytest

@pytest.mark.parametrize("i", range(4))
def test_env(i):
    path = pathlib.Path(os.environ["NUMBA_CACHE_DIR"])
    assert path.parent.name == "numba" and path.name.endswith("-" + os.environ["PYTEST_XDIST_WORKER"])
''')
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)


COMPETENT_TEMPLATE = '''
import numpy as np
import torch
from analysis.stats import Estimate
from harness import Claim, Competence, Criterion, Evidence, Paper, Tier, claim, FAIL

ACC = Competence("logreg.test_acc", "logreg", "held-out accuracy of a logistic regression on its own labels",
                 ">=", {"ci": 0.8}, source="ours (toy)", baseline="chance 0.5")
SPEC = Claim(id="toy.learned", paper=Paper("toy", "Toy"), finding="A trained toy separates its classes.",
             statistic="weight norm", unit="seeds", criteria=[Criterion("norm", ">", 0.5)],
             controls={"random_init": FAIL}, competence=(ACC,),
             tiers={"ci": Tier({"seeds": 2, "lr": 0.5, "steps": 200})})

def train(seed, lr, steps):
    g = np.random.default_rng(seed)
    x = g.normal(size=(400, 2)); y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    w = torch.zeros(2, requires_grad=True)
    xt, yt = torch.tensor(x[:300], dtype=torch.float32), torch.tensor(y[:300])
    opt = torch.optim.SGD([w], lr=lr)
    for _ in range(steps):
        opt.zero_grad(); torch.nn.functional.binary_cross_entropy_with_logits(xt @ w, yt).backward(); opt.step()
    pred = (torch.tensor(x[300:], dtype=torch.float32) @ w).detach().numpy() > 0
    return float(w.norm()), float((pred == y[300:].astype(bool)).mean())

@claim(SPEC)
def test_learned(run):
    res = [train(s, run.settings["lr"], run.settings["steps"]) for s in run.seeds]
    run.log_learning_curves({f"seed {s}": {"acc": [a]} for s, (_, a) in zip(run.seeds, res)}, name="logreg")
    return {"main": Evidence({"norm": Estimate.over_seeds([n for n, _ in res])},
                             competence={"logreg.test_acc": Estimate.over_seeds([a for _, a in res])}),
            "random_init": Evidence({"norm": Estimate.over_seeds([0.0, 0.0])})}
'''


def test_a_crippled_model_turns_its_claim_inconclusive_through_the_plugin(pytester):
    pytester.makepyfile(test_learned=COMPETENT_TEMPLATE)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    row = report(pytester)["claims"][0]
    assert row["verdict"] == "PASS" and row["competent"] is True and row["competence"][0]["met"]
    assert any(f.endswith("learning_curves_logreg.png") for f in row["figures"])
    # learning rate 0: the weights stay at zero, accuracy is chance: the claim earns no verdict
    result = run(pytester, "--set", "lr=0")
    result.assert_outcomes(failed=1)
    row = report(pytester)["claims"][0]
    assert row["verdict"] == "INCONCLUSIVE" and row["measured_verdict"] == "FAIL" and row["competent"] is False
    assert row["inconclusive_reason"].startswith("model did not learn its task: logreg.test_acc")
    assert row["settings_overridden"] == {"lr": 0}
    result.stdout.fnmatch_lines(["*settings overridden by --set: {\"lr\": 0}*",
                                 "*undertrained: toy.learned: model did not learn its task*",
                                 "*undertrained: 1*"])
    md = (pytester.path / "reports" / "latest" / "claims.md").read_text()
    assert "INCONCLUSIVE: model did not learn its task" in md and "Settings overridden" in md
    con = sqlite3.connect(pytester.path / "mlruns" / "mlflow.db")
    tags = dict(con.execute("select key, value from tags where key like 'mec.%' and run_uuid = ?",
                            (row["mlflow_run_id"],)).fetchall())
    assert tags["mec.competent"] == "False" and tags["mec.inconclusive_reason"].startswith("model did not learn")
    assert tags["mec.settings_overridden"] == '{"lr": 0}'


def test_an_unknown_set_key_is_a_one_line_error(pytester):
    pytester.makepyfile(test_learned=COMPETENT_TEMPLATE)
    result = run(pytester, "--set", "learning_rate=0")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--set learning_rate: no selected claim has such a setting at tier ci*"])
    assert "Traceback" not in result.stderr.str()


DATA_TEMPLATE = '''
import os
import numpy as np
from analysis.stats import Estimate
from harness import Claim, Criterion, Evidence, Paper, Tier, claim, FAIL
from harness.cache import content_key, folder_manifest

SPEC = Claim(id="toy.sounds", paper=Paper("toy", "Toy"), finding="f", statistic="s", unit="seeds",
             criteria=[Criterion("x", ">", 0.0, source="ours")], controls={"random_init": FAIL},
             tiers={"ci": Tier({"seeds": 1})})

@claim(SPEC)
def test_sounds(run):
    root = os.environ["TOY_SOUNDS"]
    m = folder_manifest(root, name="toy_sounds")
    x = run.cache.arrays("toy-sizes", content_key(m, what="sizes"),
                         lambda: {"n": np.array([f[1] for f in m["files"]], float)}, version="1")["n"]
    return {"main": Evidence({"x": Estimate.over_seeds([x.mean(), x.mean()])}),
            "random_init": Evidence({"x": Estimate.over_seeds([-1.0, -1.0])})}
'''


def test_the_report_shows_each_claims_data_manifests(pytester, monkeypatch):
    """claims.json, claims.md, the terminal's cache line and MLflow show which data a claim used."""
    sounds = pytester.path / "sounds"
    sounds.mkdir()
    (sounds / "a.wav").write_bytes(b"a" * 100)
    (sounds / "b.wav").write_bytes(b"b" * 50)
    monkeypatch.setenv("TOY_SOUNDS", str(sounds))
    pytester.makepyfile(test_sounds=DATA_TEMPLATE)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    row = report(pytester)["claims"][0]
    [m] = row["data_manifests"]
    assert m["name"] == "toy_sounds" and m["n_files"] == 2 and m["bytes"] == 150 and m["root"] == str(sounds)
    result.stdout.fnmatch_lines(["cache: 0 hits, 1 misses*", f"  data of toy.sounds: toy_sounds {m['hash'][:12]}"])
    md = (pytester.path / "reports" / "latest" / "claims.md").read_text()
    assert f"- cache: 0 hits, 1 misses; data: `toy_sounds` `{m['hash'][:12]}` (2 files" in md
    con = sqlite3.connect(pytester.path / "mlruns" / "mlflow.db")
    tags = dict(con.execute("select key, value from tags where key like 'mec.%' and run_uuid = ?",
                            (row["mlflow_run_id"],)).fetchall())
    assert tags["mec.data_manifests"] == f"toy_sounds {m['hash'][:12]}"
    # other sounds of the same size: another manifest, the entry is rebuilt
    (sounds / "a.wav").write_bytes(b"c" * 100)
    result = run(pytester)
    row2 = report(pytester)["claims"][0]
    assert row2["data_manifests"][0]["hash"] != m["hash"] and row2["cache_misses"] == 1
    result = run(pytester)
    assert report(pytester)["claims"][0]["cache_hits"] == 1
