"""Scale-out: reliability rows for the benchmark table, and the CI step against a real server.

``bench_scaleout()`` runs the reliability tests of ``tests/test_scaleout.py`` (toy claims: 4
workers against SQLite and against an MLflow server on PostgreSQL, the server killed and restarted
mid-session, a worker killed mid-build) and turns the figures they record into rows.

``python -m bench.scaleout ci`` is the issue's "CI test against the real thing" (``make
test-server``, called by ``.ci/run``): it starts PostgreSQL and ``mlflow server`` on loopback with
``.ci/tracking-server.sh``, runs the server tests, runs a small real claim subset with ``-n 4``
against the server, and checks that every run and figure arrived, that no lock or connection error
appeared, and that the report built from the server alone lists every claim once.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_SH = REPO / ".ci" / "tracking-server.sh"
# The cheapest claims with a warm cache (after `make test`): 8 tests, 5 figures, ~70 claim-seconds.
CI_SUBSET = ("(kong2025 and (loss or ssm or local)) or (kim2024 and (all_units or speech_units)) "
             "or (grasse2026 and height and all_models)")
ERROR_PATTERNS = ("database is locked", "Connection refused", "MLflow tracking at", "OperationalError",
                  "could not connect to server", "Max retries exceeded", "deadlock detected",
                  "Timeout: The file lock")


def _row(what, value, unit, target="", ok=None, note=""):
    return {"what": what, "value": value, "unit": unit, "target": target, "ok": ok, "note": note}


def bench_scaleout() -> list[dict]:
    """Reliability figures from ``tests/test_scaleout.py`` (PostgreSQL rows need its binaries)."""
    with tempfile.TemporaryDirectory() as d:
        results = Path(d) / "scaleout.jsonl"
        env = {**os.environ, "MEC_TEST_SERVER": "1", "MEC_SCALEOUT_RESULTS": str(results),
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_scaleout.py", "-q", "-p",
                               "no:cacheprovider", "-k", "workers or restarted or killed"],
                              cwd=REPO, env=env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        recs = [json.loads(x) for x in results.read_text().splitlines()] if results.exists() else []
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else ["no output"]
    out = []
    for r in recs:
        if r["name"] == "workers4":
            lost = r["claims"] - r["runs"]
            dup = r["misses"] - r["entries"]
            out.append(_row(f"4 workers × 8 toy claims, {r['backend']}: lost runs / duplicate builds",
                            f"{lost} / {dup}", "runs / builds", "0 / 0", lost == 0 and dup == 0 and r["errors"] == 0,
                            f"{r['runs']} claim runs, {r['conditions']} condition runs, {r['misses']} cache "
                            f"misses for {r['entries']} entries, {r['errors']} lock/connection errors"
                            + (f", {r['figures']} figures" if "figures" in r else "")))
        elif r["name"] == "restart":
            ok = r["returncode"] == 0 and all(c == 2 for c in r["children"]) and all(f == 1 for f in r["figures"])
            out.append(_row(f"tracking server killed and restarted mid-claim, {r['backend']}",
                            r["retries"], "retries", "claim retries and succeeds; nothing lost", ok,
                            f"pytest exit {r['returncode']}; condition runs before+after the kill {r['children']}, "
                            f"figures {r['figures']}"))
        elif r["name"] == "killed_worker":
            ok = r["crashed"] and r["partial_entries"] == 0 and r["rerun_passed"] == r["rerun_tests"]
            out.append(_row("worker SIGKILLed mid-build: partial cache entries", r["partial_entries"], "entries",
                            "0, and a rerun completes", ok,
                            f"rerun {r['rerun_passed']}/{r['rerun_tests']} passed, {r['entries_after']} entry after"))
    out.append(_row("scale-out reliability tests (wall)", round(secs, 1), "s", "", proc.returncode == 0,
                    tail[0][:120]))
    return out


def claims_cmd(k: str, jobs: int, tier: str, uri: str, session: str, report_dir: Path, *extra: str) -> list:
    """``pytest -m claims -k k -n jobs`` at ``tier`` logging to ``uri`` under ``session``."""
    return [sys.executable, "-m", "pytest", "-m", "claims", "-k", k, "-n", str(jobs), "-p", "no:cacheprovider",
            "--tier", tier, "--mlflow-uri", uri, "--session-id", session, "--report-dir", str(report_dir), *extra]


def real_subset(backend: str, jobs: int = 4, k: str = CI_SUBSET, tier: str = "ci") -> dict:
    """The real ``ci`` claim subset on ``jobs`` workers from a cold cache, against ``backend``.

    ``backend`` is ``sqlite`` (a ``sqlite:///`` file, the default store) or ``postgres`` (PostgreSQL
    and ``mlflow server`` started on spare loopback ports for this run). Returns the counts of
    :func:`check_session` plus ``misses`` (cache misses summed over the claims), ``entries`` (complete
    cache entries on disk afterwards: each missed entry built once means ``misses == entries``), the
    wall time and pytest's exit code.
    """
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cache, reports = work / "cache", work / "reports"
        env = {**os.environ, "MEC_CACHE_DIR": str(cache), "MLFLOW_DISABLE_TELEMETRY": "true"}
        senv = {**env, "MEC_SERVER_DIR": str(work / "server"), "MEC_BACKEND": "postgres",
                "MEC_MLFLOW_PORT": "5066", "MEC_PG_PORT": "5434"}
        if backend == "postgres":
            _sh("start", senv)
            uri = "http://127.0.0.1:5066"
        else:
            uri = f"sqlite:///{work / 'mlflow.db'}"
        try:
            session = f"bench-{backend}-{os.getpid()}"
            cmd = claims_cmd(k, jobs, tier, uri, session, reports, "-q", "--cache-dir", str(cache))
            t0 = time.perf_counter()
            r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            secs = time.perf_counter() - t0
            rows_path = reports / "latest" / "claims.json"
            local = json.loads(rows_path.read_text())["claims"] if rows_path.exists() else []
            chk = check_session(uri, tier, session, local, r.stdout + r.stderr)
        finally:
            if backend == "postgres":
                _sh("stop", senv)
        entries = sum(1 for m in cache.glob("*/*/_manifest.json"))
    return {**chk, "backend": backend, "jobs": jobs, "seconds": secs, "returncode": r.returncode,
            "misses": sum(x.get("cache_misses", 0) for x in local), "entries": entries}


def bench_real_subset(backends=("sqlite", "postgres"), jobs: int = 4) -> list[dict]:
    """Rows: the real ci claim subset on 4 workers, cold, against SQLite and PostgreSQL."""
    out = []
    for b in backends:
        c = real_subset(b, jobs)
        lost = c["claims"] - c["claim_runs"]
        dup = c["misses"] - c["entries"]
        ok = (c["returncode"] == 0 and lost == 0 and dup == 0 and not c["missing"] and c["duplicates"] == 0
              and c["n_error_lines"] == 0 and c["figures_arrived"] == c["figures_expected"])
        out.append(_row(f"{jobs} workers × ci claim subset, cold cache, {b}: lost runs / duplicate builds",
                        f"{lost} / {dup}", "runs / builds", "0 / 0", ok,
                        f"{c['claims']} claims, {c['claim_runs']} runs, {c['misses']} misses for {c['entries']} "
                        f"entries, figures {c['figures_arrived']}/{c['figures_expected']}, {c['n_error_lines']} "
                        f"lock/connection errors, {c['seconds']:.0f} s, pytest exit {c['returncode']}"))
    return out


# ---------------------------------------------------------------------------- the CI step
def _server_env(args) -> dict:
    return {**os.environ, "MEC_SERVER_DIR": str(Path(args.server_dir).resolve()), "MEC_BACKEND": args.backend,
            "MEC_MLFLOW_PORT": str(args.port), "MEC_PG_PORT": str(args.pg_port), "MLFLOW_DISABLE_TELEMETRY": "true"}


def _sh(cmd: str, env: dict) -> str:
    r = subprocess.run(["bash", str(SERVER_SH), cmd], env=env, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"error: .ci/tracking-server.sh {cmd} failed: {(r.stderr or r.stdout).strip()}")
    return r.stdout.strip()


def check_session(uri: str, tier: str, session: str, local_rows: list[dict], log_text: str) -> dict:
    """Compare what the claims ran (``local_rows``) with what the server holds for ``session``.

    Returns counts: claims expected, claim runs found, claims missing from / duplicated in the
    report built from the server alone, figures expected and arrived, error lines in the log.
    """
    from harness.report import rows_from_mlflow
    from harness.tracking import Tracker

    _, report_rows = rows_from_mlflow(uri, tier, session)
    names = [(r["claim_id"], r.get("variant", "")) for r in report_rows]
    ran = [r for r in local_rows if r.get("verdict") != "SKIPPED"]
    expected = {(r["claim_id"], r.get("variant", "")) for r in ran}
    tr = Tracker(uri, tier)
    claim_runs = tr.claim_runs(session)
    runs = len(claim_runs)
    figures_arrived = sum(len(tr._call(tr.client.list_artifacts, run.info.run_id, "figures")) for run in claim_runs)
    errors = [line for line in log_text.splitlines() if any(p in line for p in ERROR_PATTERNS)]
    return {"claims": len(expected), "claim_runs": runs, "report_rows": len(report_rows),
            "missing": sorted(map(str, expected - set(names))), "duplicates": len(names) - len(set(names)),
            "figures_expected": sum(len(r.get("figures") or []) for r in ran),
            "figures_arrived": figures_arrived, "error_lines": errors[:5], "n_error_lines": len(errors),
            "verdicts_match": sorted((r["claim_id"], r.get("variant", ""), r["verdict"]) for r in ran) ==
                              sorted((r["claim_id"], r.get("variant", ""), r["verdict"]) for r in report_rows)}


def ci(args) -> int:
    env = _server_env(args)
    uri = f"http://127.0.0.1:{args.port}"
    t0 = time.perf_counter()
    if args.install:
        print(_sh("install", env))
    print(_sh("start", env), flush=True)
    t_server = time.perf_counter() - t0
    status = 0
    try:
        if not args.no_tests:
            t1 = time.perf_counter()
            # the server tests only: `make test` has just run the others
            r = subprocess.run([sys.executable, "-m", "pytest", "tests/test_scaleout.py", "-q", "-p",
                                "no:cacheprovider", "-m", "slow"], cwd=REPO, env={**env, "MEC_TEST_SERVER": "1"})
            print(f"scale-out server tests: exit {r.returncode} in {time.perf_counter() - t1:.0f} s", flush=True)
            status |= r.returncode != 0
        session = f"ci-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        with tempfile.TemporaryDirectory() as d:
            report_dir = Path(d) / "reports"
            cmd = claims_cmd(args.k, args.jobs, args.tier, uri, session, report_dir, *args.pytest_args)
            print("+ " + " ".join(cmd), flush=True)
            t2 = time.perf_counter()
            r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            t_claims = time.perf_counter() - t2
            log_text = r.stdout + r.stderr
            print(log_text[-4000:], flush=True)
            rows_path = report_dir / "latest" / "claims.json"
            local = json.loads(rows_path.read_text())["claims"] if rows_path.exists() else []
        status |= r.returncode != 0
        chk = check_session(uri, args.tier, session, local, log_text)
        ok = (chk["claims"] > 0 and not chk["missing"] and chk["duplicates"] == 0
              and chk["claim_runs"] == chk["claims"] and chk["report_rows"] == chk["claims"]
              and chk["figures_arrived"] == chk["figures_expected"] and chk["n_error_lines"] == 0
              and chk["verdicts_match"])
        print(f"server check (session {session}): {json.dumps(chk)}")
        print(f"server start {t_server:.0f} s; {chk['claims']} claims on {args.jobs} workers in {t_claims:.0f} s "
              f"(pytest exit {r.returncode}); every run, figure and claim once: {'yes' if ok else 'NO'}")
        status |= not ok
    finally:
        if not args.keep_server:
            _sh("stop", env)
    return int(status)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ci", help="start PostgreSQL + mlflow server, run the claim subset with -n 4, check it")
    c.add_argument("-k", default=CI_SUBSET, help="pytest -k expression of the claim subset")
    c.add_argument("--jobs", type=int, default=4)
    c.add_argument("--tier", default="ci")
    c.add_argument("--backend", default=os.environ.get("MEC_BACKEND", "postgres"), choices=("postgres", "sqlite"))
    c.add_argument("--port", type=int, default=int(os.environ.get("MEC_MLFLOW_PORT", 5055)))
    c.add_argument("--pg-port", type=int, default=int(os.environ.get("MEC_PG_PORT", 5433)))
    c.add_argument("--server-dir", default=os.environ.get("MEC_SERVER_DIR", str(REPO / ".ci-server")))
    c.add_argument("--install", action="store_true", help="apt-get install postgresql when missing (root)")
    c.add_argument("--no-tests", action="store_true", help="skip tests/test_scaleout.py")
    c.add_argument("--keep-server", action="store_true", help="leave PostgreSQL and the server running")
    c.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    sub.add_parser("rows", help="print the reliability rows")
    sub.add_parser("subset", help="the real ci claim subset, 4 workers, cold, on SQLite and PostgreSQL")
    args = ap.parse_args(argv)
    if args.cmd in ("rows", "subset"):
        for r in (bench_scaleout() if args.cmd == "rows" else bench_real_subset()):
            print(json.dumps(r))
        return 0
    return ci(args)


if __name__ == "__main__":
    raise SystemExit(main())
