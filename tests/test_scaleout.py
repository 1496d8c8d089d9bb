"""Scale-out: xdist workers, shards across machines, an MLflow tracking server on PostgreSQL.

Toy claims run through pytester subprocesses (seconds, not real claims). The server tests start a
real ``mlflow server`` with ``.ci/tracking-server.sh`` on free loopback ports, against SQLite and,
when PostgreSQL's binaries are installed, against PostgreSQL (``.ci/run`` installs them on CI).
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from harness.options import (parse_shard, shard_members, threads_per_worker, validate_session_id,
                             worker_device)
from harness.report import merge_claim_rows
from harness.tracking import Tracker, backoff_delays, is_transient
# Imported here, not inside the tests: pytester drops the modules a test imported when it ends,
# and a half-dropped sqlalchemy then breaks the next in-process MLflow store of the session
# ("'InternalTraversal' object is not callable" in tests/test_harness_plugin.py).
import mlflow.store.artifact.local_artifact_repo  # noqa: E402,F401
import mlflow.store.artifact.mlflow_artifacts_repo  # noqa: E402,F401
import mlflow.store.tracking.rest_store  # noqa: E402,F401
import mlflow.store.tracking.sqlalchemy_store  # noqa: E402,F401
from mlflow.tracking import MlflowClient  # noqa: E402

BACKENDS = os.environ.get("MEC_TEST_SERVER_BACKENDS", "postgres").split(",")

pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parent.parent
SERVER_SH = REPO / ".ci" / "tracking-server.sh"
PYTHON = sys.executable

# A toy claim family: each variant logs a child run and a figure, and loads one shared "model"
# from the cache (built in BUILD_S seconds) so that concurrent workers race for the same entry.
SCALE_CLAIM = '''
import os, time
from pathlib import Path
import pytest
from analysis.stats import Estimate
from harness import Claim, Criterion, Evidence, Paper, Tier, claim, FAIL

SPEC = Claim(id="toy.scale{tag}", paper=Paper("toy", "Toy"), finding="f", statistic="ratio", unit="seeds",
             criteria=[Criterion("ratio", ">=", 1.5, source="ours")], controls={{"random_init": FAIL}},
             tiers={{"ci": Tier({{"seeds": 1}})}})

def _build(tmp):
    pids = Path(os.environ["TOY_PIDS"])
    pids.mkdir(exist_ok=True)
    first = not any(pids.iterdir())  # only the first builder is slow (the kill test kills it)
    (pids / str(os.getpid())).write_text("building")
    (tmp / "weights.bin").write_bytes(b"x" * 1000)
    time.sleep(float(os.environ.get("TOY_BUILD_S", "1")) if first else 0.2)
    (tmp / "more.bin").write_bytes(b"y" * 1000)

@pytest.mark.parametrize("k", range({n}))
@claim(SPEC)
def test_scale{tag}(run, k):
    run.cache.directory("toy-model", {{"group": k % {groups}}}, _build, version="toy-1")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with run.child("seed-0", params={{"seed": 0, "k": k}}) as child:
        child.log_history({{"loss": [1.0, 0.5]}})
    gate = os.environ.get("TOY_GATE")
    if gate:  # pause between two loggings while the test kills and restarts the server
        Path(gate, f"logged-{{k}}").write_text("")
        t0 = time.time()
        while not Path(gate, "go").exists() and time.time() - t0 < 60:
            time.sleep(0.1)
        with run.child("seed-1", params={{"seed": 1}}) as child:
            child.log_metrics({{"after_restart": 1.0}})
        Path(gate, f"retries-{{k}}").write_text(str(run.session.tracker.retries))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    run.log_figure(fig, "toy.png")
    return {{"main": Evidence({{"ratio": Estimate.over_seeds([1.8, 2.0])}}),
            "random_init": Evidence({{"ratio": Estimate.over_seeds([1.0, 1.1])}})}}
'''

PLAIN_TEST = '''
def test_plain():
    assert True
'''


def write_scale_claims(pytester, n=8, groups=2, tag=""):
    pytester.makepyfile(**{f"test_scale{tag}": SCALE_CLAIM.format(n=n, groups=groups, tag=tag)})


def run_pytest(pytester, uri, *args, env=None):
    base = ["-p", "harness.plugin", "-p", "no:cacheprovider", f"--mlflow-uri={uri}",
            f"--cache-dir={pytester.path / 'cache'}", f"--report-dir={pytester.path / 'reports'}"]
    for k, v in (env or {}).items():
        os.environ[k] = v
    try:
        return pytester.runpytest_subprocess(*base, *args, timeout=240)
    finally:
        for k in (env or {}):
            os.environ.pop(k, None)


def rows_of(pytester):
    return json.loads((pytester.path / "reports" / "latest" / "claims.json").read_text())["claims"]


def report_from_store(uri, session, tmp):
    """``python -m harness.report`` in a subprocess: the report built from the store alone."""
    out = subprocess.run([PYTHON, "-m", "harness.report", "--mlflow-uri", uri, "--session", session,
                          "--out", str(tmp)], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert out.returncode == 0, out.stderr
    return json.loads((Path(tmp) / "claims.json").read_text())["claims"], out.stdout


def claim_runs(uri, session):
    """Claim runs, their condition children and figure artifacts in the store (read back)."""
    tr = Tracker(uri, "ci")
    c = MlflowClient(tracking_uri=uri)
    parents = tr.session_runs(session)
    claims = []
    for p in parents:
        claims += c.search_runs([tr.experiment_id], f"tags.`mlflow.parentRunId` = '{p.info.run_id}'",
                                max_results=1000)
    out = []
    for r in claims:
        kids = c.search_runs([tr.experiment_id], f"tags.`mlflow.parentRunId` = '{r.info.run_id}'")
        figs = [a.path for a in c.list_artifacts(r.info.run_id, "figures")]
        out.append({"name": r.info.run_name, "status": r.info.status, "verdict": r.data.tags.get("mec.verdict"),
                    "children": len(kids), "figures": figs})
    return parents, out


def record(name: str, **values) -> None:
    """Append a measured reliability figure for ``python -m bench --only scaleout`` (when asked)."""
    path = os.environ.get("MEC_SCALEOUT_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"name": name, **values}) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- pure functions
def test_parse_shard_accepts_i_of_n_and_rejects_the_rest():
    assert parse_shard("1/1") == (1, 1) and parse_shard("3/4") == (3, 4)
    for bad in ("0/3", "4/3", "1/0", "x/2", "2", "1/2/3", ""):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


@given(st.lists(st.text("abcxyz/[]-_:0123", min_size=1, max_size=12), max_size=60), st.integers(1, 7))
@settings(max_examples=80, deadline=None)
def test_shards_partition_the_claims_and_balance_them(ids, n):
    parts = [shard_members(ids, i, n) for i in range(1, n + 1)]
    assert set().union(*parts) == set(ids)
    assert sum(len(p) for p in parts) == len(set(ids))  # disjoint
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    # order of collection does not matter: every machine computes the same split
    assert shard_members(list(reversed(ids)), 1, n) == parts[0]


def test_worker_device_maps_workers_round_robin_over_gpus():
    import torch

    cuda = torch.device("cuda")
    assert [str(worker_device(cuda, f"gw{k}", 2)) for k in range(5)] == \
        ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert str(worker_device(cuda, "gw7", 8)) == "cuda:7"
    assert str(worker_device(torch.device("cuda:1"), "gw0", 4)) == "cuda:1"  # explicit index kept
    assert str(worker_device(torch.device("cpu"), "gw3", 2)) == "cpu"
    assert str(worker_device(cuda, None, 2)) == "cuda"  # the controller does not run claims
    assert threads_per_worker(2, 2) == 1 and threads_per_worker(2, 4) == 1 and threads_per_worker(16, 4) == 4
    assert threads_per_worker(8, 1) == 8


def test_session_id_is_checked():
    assert validate_session_id("lab-20261122.a_1") == "lab-20261122.a_1"
    for bad in ("", "a'b", "x" * 65, "a b", "a/b"):
        with pytest.raises(UserError, match="--session-id"):
            validate_session_id(bad)


def test_transient_errors_are_told_from_permanent_ones():
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST,
                                              TEMPORARILY_UNAVAILABLE)

    assert is_transient(requests.ConnectionError("Connection refused"))
    assert is_transient(MlflowException("API request to http://h/api failed with exception "
                                        "HTTPConnectionPool(...): Max retries exceeded with url"))
    assert is_transient(MlflowException("...", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_transient(MlflowException("Run 'abc' not found", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient(MlflowException("bad param", error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(ValueError("x"))
    d = backoff_delays(60.0)
    assert d[0] == 0.5 and sum(d) <= 60.0 and max(d) <= 8.0 and sum(d) > 40
    assert backoff_delays(0.0) == []


def test_a_dead_server_gives_one_line_naming_it_after_retrying():
    port = free_port()  # nothing listens there
    tr = Tracker(f"http://127.0.0.1:{port}", "ci", retry_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(UserError) as e:
        tr.log("0" * 32, metrics={"x": 1.0})
    msg = str(e.value)
    assert "\n" not in msg and f"http://127.0.0.1:{port}" in msg and "attempts" in msg
    assert "mlflow server" in msg and "--mlflow-uri" in msg
    assert tr.retries >= 2 and time.monotonic() - t0 < 60


def test_merge_lists_each_claim_once_preferring_a_concluded_latest_run():
    rows = [{"claim_id": "a", "variant": "", "verdict": "PASS", "_start_time": 1, "value": 1},
            {"claim_id": "a", "variant": "", "verdict": "ERROR", "_start_time": 3, "value": None},
            {"claim_id": "a", "variant": "", "verdict": "FAIL", "_start_time": 2, "value": 2},
            {"claim_id": "a", "variant": "k1", "verdict": "ERROR", "_start_time": 1, "value": None},
            {"claim_id": "b", "variant": "", "verdict": "PASS", "_start_time": 5, "value": 3}]
    out = merge_claim_rows(rows)
    assert [(r["claim_id"], r["variant"]) for r in out] == [("a", ""), ("a", "k1"), ("b", "")]
    assert out[0]["value"] == 2 and out[0]["attempts"] == 3 and "_start_time" not in out[0]
    assert out[1]["verdict"] == "ERROR" and out[2]["attempts"] == 1


# ------------------------------------------------------------------ SQLite: workers and shards
@pytest.fixture
def sqlite_uri(pytester):
    db = pytester.path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    return f"sqlite:///{db}"


def test_four_workers_lose_no_run_and_build_each_entry_once_sqlite(pytester, sqlite_uri):
    write_scale_claims(pytester, n=8, groups=2)
    pids = pytester.path / "pids"
    result = run_pytest(pytester, sqlite_uri, "-n", "4", "--session-id", "sqlite-4w",
                        env={"TOY_PIDS": str(pids), "TOY_BUILD_S": "1.5"})
    result.assert_outcomes(passed=8)
    out = result.stdout.str() + result.stderr.str()
    rows = rows_of(pytester)
    con = sqlite3.connect(pytester.path / "mlruns" / "mlflow.db")
    n = dict(con.execute("select value, count(*) from tags where key='mec.level' group by value").fetchall())
    record("workers4", backend="sqlite", claims=8, runs=n.get("claim", 0), conditions=n.get("condition", 0),
           misses=sum(r["cache_misses"] for r in rows), entries=2, errors=out.count("database is locked"))
    assert "database is locked" not in out and "Traceback" not in out
    assert len(rows) == 8 and len({r["variant"] for r in rows}) == 8
    assert sum(r["cache_misses"] for r in rows) == 2  # two shared entries, each built once
    assert sum(r["cache_hits"] for r in rows) == 6
    assert len(list(pids.iterdir())) <= 2
    assert n == {"session": 1, "claim": 8, "condition": 8}


def test_shards_split_the_claims_and_one_report_lists_each_once(pytester, sqlite_uri, tmp_path):
    write_scale_claims(pytester, n=5, groups=1)
    pytester.makepyfile(test_plain=PLAIN_TEST)
    env = {"TOY_PIDS": str(pytester.path / "pids"), "TOY_BUILD_S": "0.2"}
    r1 = run_pytest(pytester, sqlite_uri, "--shard", "1/2", "--session-id", "lab-1", env=env)
    r1.assert_outcomes(passed=4)  # claims 0, 2, 4 (sorted node ids) and the plain test
    r1.stdout.fnmatch_lines(["*shard 1/2*python -m harness.report --session lab-1*"])
    r2 = run_pytest(pytester, sqlite_uri, "--shard", "2/2", "--session-id", "lab-1", env=env)
    r2.assert_outcomes(passed=2)
    rows, text = report_from_store(sqlite_uri, "lab-1", tmp_path)
    assert sorted(r["variant"] for r in rows) == [str(k) for k in range(5)]
    assert all(r["verdict"] == "PASS" and r["attempts"] == 1 for r in rows)
    assert "session lab-1: 5 claims" in text
    parents, runs = claim_runs(sqlite_uri, "lab-1")
    assert len(parents) == 1 and len(runs) == 5
    assert all(r["figures"] == ["figures/toy.png"] and r["children"] == 1 for r in runs)


def test_a_single_process_gets_its_own_numba_cache_too(pytester, sqlite_uri, monkeypatch):
    """2 of 2 single-process runs of kong2025.ssm.chord_changes segfaulted in librosa's numba
    kernels while other sessions wrote the shared site-packages cache."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    pytester.makepyfile(test_numba_main='''
import os, pathlib, socket
def test_env():
    path = pathlib.Path(os.environ["NUMBA_CACHE_DIR"])
    assert path.parent.name == "numba" and path.name == socket.gethostname() + "-main"
''')
    run_pytest(pytester, sqlite_uri).assert_outcomes(passed=1)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(pytester.path / "mine"))  # the user's choice wins
    pytester.makepyfile(test_numba_main='''
import os
def test_env():
    assert os.environ["NUMBA_CACHE_DIR"].endswith("mine")
''')
    run_pytest(pytester, sqlite_uri).assert_outcomes(passed=1)


def test_bad_shard_and_session_id_are_one_line_errors(pytester, sqlite_uri):
    write_scale_claims(pytester, n=1)
    r = run_pytest(pytester, sqlite_uri, "--shard", "3/2")
    assert r.ret != 0 and "--shard '3/2': expected i/n" in r.stderr.str() and "Traceback" not in r.stderr.str()
    r = run_pytest(pytester, sqlite_uri, "--session-id", "a'b")
    assert r.ret != 0 and "--session-id" in r.stderr.str()


def test_a_worker_killed_mid_build_leaves_no_entry_and_a_rerun_completes(pytester, sqlite_uri):
    write_scale_claims(pytester, n=2, groups=1)
    pids = pytester.path / "pids"
    cache = pytester.path / "cache"
    args = ["-p", "harness.plugin", "-p", "no:cacheprovider", f"--mlflow-uri={sqlite_uri}",
            f"--cache-dir={cache}", f"--report-dir={pytester.path / 'reports'}", "-n", "2", "-q"]
    env = {**os.environ, "TOY_PIDS": str(pids), "TOY_BUILD_S": "60", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([PYTHON, "-m", "pytest", *args], cwd=pytester.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.time()
        while not (pids.exists() and any(pids.iterdir())) and time.time() - t0 < 120:
            time.sleep(0.2)
        builders = list(pids.iterdir())
        assert len(builders) == 1, "exactly one worker builds the shared entry"
        os.kill(int(builders[0].name), signal.SIGKILL)  # the worker dies mid-build
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the other worker took the lock after the OS released it and built the entry itself
    assert "crashed" in out.lower(), out[-2000:]
    ns = cache / "toy-model"
    entries = [p for p in ns.iterdir() if not p.name.startswith(".")]
    for e in entries:  # whatever is in place is complete
        assert (e / "_manifest.json").is_file() and (e / "more.bin").stat().st_size == 1000
    stale = [p for p in ns.iterdir() if ".tmp-" in p.name]
    partial = [e for e in entries if not (e / "_manifest.json").is_file()]
    # rerun: completes, and leaves exactly one verified entry and no temporary directory
    shutil.rmtree(pids)
    result = run_pytest(pytester, sqlite_uri, "-n", "2", env={"TOY_PIDS": str(pids), "TOY_BUILD_S": "0.2"})
    entries = [p for p in ns.iterdir() if not p.name.startswith(".")]
    record("killed_worker", crashed="crashed" in out.lower(), partial_entries=len(partial),
           rerun_passed=result.parseoutcomes().get("passed", 0), rerun_tests=2, entries_after=len(entries))
    result.assert_outcomes(passed=2)
    assert len(entries) == 1 and (entries[0] / "_manifest.json").is_file()
    assert not [p for p in ns.iterdir() if ".tmp-" in p.name], f"stale after rerun (before: {stale})"


# --------------------------------------------------------------- a real MLflow tracking server
def _pg_available() -> bool:
    r = subprocess.run(["bash", "-c", "command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl"],
                       capture_output=True)
    return r.returncode == 0 and (os.geteuid() != 0 or shutil.which("runuser") is not None)


class Server:
    def __init__(self, backend: str, root: Path):
        self.backend = backend
        self.env = {**os.environ, "MEC_SERVER_DIR": str(root), "MEC_PG_PORT": str(free_port()),
                    "MEC_MLFLOW_PORT": str(free_port()), "MEC_BACKEND": backend, "MEC_MLFLOW_WORKERS": "2",
                    "MEC_MLFLOW_BIN": str(Path(PYTHON).parent / "mlflow")}
        self.uri = f"http://127.0.0.1:{self.env['MEC_MLFLOW_PORT']}"

    def sh(self, cmd: str, check=True) -> subprocess.CompletedProcess:
        r = subprocess.run(["bash", str(SERVER_SH), cmd], env=self.env, capture_output=True, text=True,
                           timeout=240, cwd=REPO)
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
        return r


@pytest.fixture(scope="module", params=BACKENDS)
def server(request):
    if os.environ.get("MEC_TEST_SERVER") != "1":
        pytest.skip("tracking-server tests start mlflow server (and PostgreSQL): run them with "
                    "`make test-server` or MEC_TEST_SERVER=1")
    if request.param == "postgres" and not _pg_available():
        pytest.skip("PostgreSQL binaries (pg_ctl) not found: .ci/run installs them "
                    "(apt-get install -y postgresql); run `.ci/tracking-server.sh install` as root")
    import tempfile

    # directly under /tmp: as root, PostgreSQL runs as `postgres`, which cannot enter pytest's 0700 tmp dirs
    root = Path(tempfile.mkdtemp(prefix=f"mec-srv-{request.param}-"))
    srv = Server(request.param, root)
    try:
        srv.sh("start")
        yield srv
    finally:
        srv.sh("stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_four_workers_against_the_server_lose_nothing(pytester, server, tmp_path):
    write_scale_claims(pytester, n=8, groups=2)
    pids = pytester.path / "pids"
    sid = f"srv-{server.backend}-{int(time.time())}"
    result = run_pytest(pytester, server.uri, "-n", "4", "--session-id", sid,
                        env={"TOY_PIDS": str(pids), "TOY_BUILD_S": "1.5"})
    out = result.stdout.str() + result.stderr.str()
    local = rows_of(pytester)
    rows, text = report_from_store(server.uri, sid, tmp_path)
    parents, runs = claim_runs(server.uri, sid)
    record("workers4", backend=f"{server.backend} server", claims=8, runs=len(runs),
           conditions=sum(r["children"] for r in runs), misses=sum(r["cache_misses"] for r in local), entries=2,
           errors=sum(out.count(b) for b in ("database is locked", "Connection refused", "MLflow tracking at")),
           figures=sum(len(r["figures"]) for r in runs))
    result.assert_outcomes(passed=8)
    for bad in ("database is locked", "Traceback", "Connection refused", "MLflow tracking at"):
        assert bad not in out
    assert sum(r["cache_misses"] for r in local) == 2 and len(local) == 8
    assert sorted(r["variant"] for r in rows) == [str(k) for k in range(8)]
    assert all(r["verdict"] == "PASS" and r["attempts"] == 1 for r in rows)
    assert len(parents) == 1, "one session run per session id"
    assert len(runs) == 8 and all(r["status"] == "FINISHED" and r["children"] == 1 for r in runs)
    assert all(r["figures"] == ["figures/toy.png"] for r in runs)


@pytest.mark.slow
def test_server_killed_and_restarted_mid_session_loses_nothing(pytester, server, tmp_path):
    write_scale_claims(pytester, n=1, groups=1, tag="r")
    gate = pytester.path / "gate"
    gate.mkdir()
    sid = f"restart-{server.backend}-{int(time.time())}"
    args = ["-p", "harness.plugin", "-p", "no:cacheprovider", f"--mlflow-uri={server.uri}",
            f"--cache-dir={pytester.path / 'cache'}", f"--report-dir={pytester.path / 'reports'}",
            "--session-id", sid, "-q"]
    env = {**os.environ, "TOY_PIDS": str(pytester.path / "pids"), "TOY_BUILD_S": "0.1", "TOY_GATE": str(gate),
           "MLFLOW_DISABLE_TELEMETRY": "true", "MEC_MLFLOW_RETRY_S": "90"}
    proc = subprocess.Popen([PYTHON, "-m", "pytest", *args], cwd=pytester.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.time()
        while not list(gate.glob("logged-*")) and time.time() - t0 < 120 and proc.poll() is None:
            time.sleep(0.2)
        assert list(gate.glob("logged-*")), "the claim logged before the kill"
        server.sh("stop")  # kills the MLflow server (and PostgreSQL) mid-session
        (gate / "go").write_text("")  # the claims now log against a dead server and retry
        time.sleep(3)
        server.sh("start")
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    runs_after = claim_runs(server.uri, sid)[1]
    record("restart", backend=f"{server.backend} server", returncode=proc.returncode,
           retries=int((gate / "retries-0").read_text()) if (gate / "retries-0").exists() else None,
           children=[r["children"] for r in runs_after], figures=[len(r["figures"]) for r in runs_after])
    assert proc.returncode == 0, out[-3000:]
    retries = int((gate / "retries-0").read_text())
    assert retries >= 1, "the claim met the dead server and retried"
    rows, _ = report_from_store(server.uri, sid, tmp_path)
    assert [r["variant"] for r in rows] == ["0"] and rows[0]["verdict"] == "PASS"
    parents, runs = claim_runs(server.uri, sid)
    assert len(parents) == 1 and len(runs) == 1
    # seed-0 (logged before the kill) and seed-1 (after the restart) are both there
    assert all(r["children"] == 2 and r["figures"] == ["figures/toy.png"] for r in runs)
