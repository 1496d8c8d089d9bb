"""The pytest plugin: options, markers, the ``claim_run`` fixture, verdict → outcome, report.

Loaded through the ``pytest11`` entry point (and by the repository's ``conftest.py``).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.options import (DATA_ROOTS, DATA_TIERS, DEFAULT_MLFLOW_URI, REPO_ROOT, DataRoots,
                             check_tracking_reachable, parse_shard, resolve_device, resolve_mlflow_uri,
                             shard_members, threads_per_worker, validate_session_id, worker_device)
from harness.spec import TIERS

ROW_KEY = "mec_claim_row"
_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser):
    g = parser.getgroup("music-emergence-claims")
    g.addoption("--tier", choices=TIERS, default=os.environ.get("MEC_TIER", "ci"),
                help="claim tier: ci (CPU, minutes, embedded corpora), paper (paper sizes, your data) or lab "
                     "(the paper-like path on open datasets, sized for one GPU)")
    g.addoption("--device", default=os.environ.get("MEC_DEVICE", "auto"),
                help="torch device: auto, cpu, cuda or cuda:N (default auto)")
    g.addoption("--seeds", type=int, default=None, help="override the tier's number of seeds")
    g.addoption("--set", action="append", default=[], metavar="KEY=VALUE", dest="mec_set",
                help="override a tier setting of every selected claim that has it (JSON value, e.g. "
                     "--set epochs=2 --set lr=0); recorded in the report and MLflow: not the tier's run")
    g.addoption("--mlflow-uri", default=os.environ.get("MEC_MLFLOW_URI", DEFAULT_MLFLOW_URI),
                help=f"MLflow tracking URI (default {DEFAULT_MLFLOW_URI}); 'none' disables tracking")
    g.addoption("--cache-dir", default=None,
                help="cache root (default $MEC_CACHE_DIR, else $XDG_CACHE_HOME/music-emergence-claims)")
    g.addoption("--session-id", default=os.environ.get("MEC_SESSION_ID") or None,
                help="session id shared by shards on several machines (env MEC_SESSION_ID; default: a new uuid)")
    g.addoption("--shard", default=os.environ.get("MEC_SHARD") or None, metavar="I/N",
                help="run shard I of N of the collected claims (round-robin over sorted node ids); "
                     "non-claim tests run in shard 1 only (env MEC_SHARD)")
    g.addoption("--report-dir", default=os.environ.get("MEC_REPORT_DIR", "reports"),
                help="where reports/<session>/ and reports/latest/ are written (default reports)")
    for root in DATA_ROOTS.values():
        g.addoption(root.option, default=None, help=f"{root.what} (env {root.env})")


def pytest_configure(config):
    for line in ("claims: a replication claim (trains or loads models, logs to MLflow)",
                 "slow: takes more than a few seconds",
                 "needs_data: reads data from ../shared or a user data root",
                 "gpu: needs a CUDA device"):
        config.addinivalue_line("markers", line)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    _isolate_numba_cache(config)
    try:
        state = _build_state(config)
    except UserError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_STATE] = state
    config.pluginmanager.register(ClaimsReporter(config, state), "mec-claims-reporter")


def _build_state(config) -> dict:
    from harness.cache import Cache, default_cache_root

    worker = getattr(config, "workerinput", None)
    if worker:
        session_id = worker["mec_session_id"]
    elif config.getoption("session_id"):
        session_id = validate_session_id(config.getoption("session_id"))
    else:
        session_id = uuid.uuid4().hex
    shard = parse_shard(config.getoption("shard")) if config.getoption("shard") else None
    device = resolve_device(config.getoption("device"))
    threads = None
    if worker:
        device, threads = _worker_resources(device, worker.get("workerid"))
    uri = config.getoption("mlflow_uri")
    uri = None if uri.lower() == "none" else resolve_mlflow_uri(uri)
    if uri and worker is None:
        check_tracking_reachable(uri)
    cache_dir = config.getoption("cache_dir")
    report_root = Path(config.getoption("report_dir"))
    if not report_root.is_absolute():
        report_root = REPO_ROOT / report_root
    return {"session_id": session_id, "tier": config.getoption("tier"), "device": device,
            "seeds": config.getoption("seeds"), "mlflow_uri": uri,
            "cache": Cache(cache_dir) if cache_dir else Cache(default_cache_root()),
            "data": DataRoots.from_config(config), "report_root": report_root,
            "session": None, "rows": [], "t0": time.time(), "is_worker": worker is not None,
            "shard": shard, "threads": threads,
            "settings_override": parse_settings_override(config.getoption("mec_set"))}


def parse_settings_override(items) -> dict:
    """``["epochs=2", "lr=0"]`` → ``{"epochs": 2, "lr": 0}`` (JSON values, else the string)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE (e.g. --set epochs=2)")
        if key == "seeds":
            raise UserError("--set seeds=...: use --seeds N for the number of seeds")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _worker_resources(device, worker_id: str | None):
    """One device per xdist worker (``cuda:K mod n_gpus``); CPU workers share the cores.

    CPU workers set ``torch.set_num_threads(max(1, cores // workers))`` unless ``OMP_NUM_THREADS``
    is set (then torch already follows it). Returns ``(device, threads or None)``.
    """
    import torch

    n_gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    device = worker_device(device, worker_id, n_gpus)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        return device, None
    if os.environ.get("OMP_NUM_THREADS"):
        return device, None
    n_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads_per_worker(n_cores, n_workers)
    torch.set_num_threads(threads)
    return device, threads


@pytest.hookimpl(optionalhook=True)
def _isolate_numba_cache(config) -> None:
    """Give each pytest process (controller or xdist worker) its own numba cache directory.

    librosa compiles its kernels with ``numba.jit(cache=True)`` into ``site-packages``; two
    processes writing and loading the same cache file at once can segfault (reproduced here:
    1 crash in 9 concurrent cold starts of ``librosa.onset.onset_detect``; and 2 of 2 single-process
    runs of ``kong2025.ssm.chord_changes`` while other sessions ran on the machine). A directory per
    host and worker (``<cache>/numba/<host>-<gwK|main>``) under the harness cache removes the race,
    also for shards on several machines sharing one cache, and stays warm across sessions.
    An explicit ``NUMBA_CACHE_DIR`` is respected.
    """
    import socket

    auto = os.environ.get("MEC_NUMBA_CACHE_AUTO")
    if os.environ.get("NUMBA_CACHE_DIR") and os.environ.get("NUMBA_CACHE_DIR") != auto:
        return  # the user's choice
    from harness.cache import default_cache_root

    worker = getattr(config, "workerinput", None)
    name = str(worker.get("workerid", "gw")) if worker is not None else "main"
    root = config.getoption("cache_dir")
    root = Path(root).expanduser() if root else default_cache_root()
    path = root / "numba" / f"{socket.gethostname()}-{name}"
    os.environ["NUMBA_CACHE_DIR"] = os.environ["MEC_NUMBA_CACHE_AUTO"] = str(path)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba imported already: its config reads the env only once
        numba_config.CACHE_DIR = str(path)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest -p no:xdist must still load the plugin
def pytest_configure_node(node):
    """pytest-xdist: every worker joins the controller's session."""
    node.workerinput["mec_session_id"] = node.config.stash[_STATE]["session_id"]


def _session(config):
    from harness.claimrun import Session
    from harness.tracking import Tracker

    st = config.stash[_STATE]
    if st["session"] is None:
        tracker = Tracker(st["mlflow_uri"], st["tier"]) if st["mlflow_uri"] else None
        st["session"] = Session(
            session_id=st["session_id"], tier=st["tier"], device=st["device"],
            seeds_override=st["seeds"], cache=st["cache"], data=st["data"], tracker=tracker,
            settings_override=st["settings_override"],
            session_tags=session_tags(st), report_dir=st["report_root"] / st["session_id"][:12],
            verbose=config.getoption("verbose") >= 0)
    return st["session"]


def session_tags(st: dict) -> dict:
    """Tags of the session's parent run: commit, tier, device, versions."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "torchaudio", "transformers", "mlflow", "numpy", "scipy", "scikit-learn",
                "librosa", "mir_eval", "music21"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "absent"
    tags = {"mec.tier": st["tier"], "mec.device": str(st["device"]), "mec.git_commit": git_commit(),
            "mec.git_dirty": str(git_dirty()), "mec.python": platform.python_version(),
            "mec.versions": json.dumps(versions), "mec.cache_root": str(st["cache"].root),
            "mec.data_roots": json.dumps(st["data"].describe()), "mlflow.runType": "test"}
    est = st.get("estimate")
    if est is not None:  # the time estimate, made before any training (harness.budget)
        gpu = st.get("gpu_estimate") or est
        tags["mec.estimate_h"] = f"{est['total_h']:.2f}"
        tags["mec.estimate_gpu_h"] = f"{gpu['total_h']:.2f}"
        tags["mec.estimate"] = json.dumps({"device": est["device"], "total_h": est["total_h"],
                                           "one_gpu_total_h": gpu["total_h"],
                                           "papers_h": {k: v["hours"] for k, v in est["papers"].items()},
                                           "one_gpu_papers_h": {k: v["hours"] for k, v in gpu["papers"].items()},
                                           "rate": est["rate"]["source"]})[:4900]
    return tags


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_dirty() -> bool:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=5).stdout
        return bool(out.strip())
    except (OSError, subprocess.SubprocessError):
        return False


def pytest_collection_modifyitems(config, items):
    """Keep this shard's claims; at the paper tier, stop at once (one line) when a selected claim's
    data root is missing."""
    st = config.stash[_STATE]
    if st["shard"] is not None:
        _select_shard(config, items, *st["shard"])
    if st["settings_override"]:
        _check_settings_override(items, st["tier"], st["settings_override"])
    if st["device"].type != "cuda":
        skip_gpu = pytest.mark.skip(reason=f"needs a CUDA device (running on {st['device']})")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
    tier = st["tier"]
    if tier in DATA_TIERS:
        for item in items:
            spec = getattr(getattr(item, "function", None), "__claim_spec__", None)
            if spec is None or tier not in spec.tiers:
                continue
            for key in spec.tiers[tier].data:
                reason = st["data"].missing_reason(key)
                if reason:
                    raise pytest.UsageError(f"{spec.id} at --tier {tier}: {reason}")
    if tier == "lab":
        selection = [(spec, item.callspec.id if hasattr(item, "callspec") else "")
                     for item in items
                     for spec in [getattr(getattr(item, "function", None), "__claim_spec__", None)] if spec is not None]
        _announce_estimate(config, st, selection)


def _announce_estimate(config, st: dict, selection: list) -> None:
    """Estimate the session's time from the selected claims' settings (``harness.budget``), before any
    training: printed by the process that runs or dispatches the claims, logged by every process (the
    ``mec.budget`` logger, the MLflow session tags, ``estimate.json`` in the session's report folder)."""
    from harness import budget
    from harness.claimrun import effective_settings

    if st.get("estimate") is not None or not selection:
        return
    chosen = [(spec, variant, effective_settings(spec.tiers[st["tier"]], st["seeds"], st["settings_override"]))
              for spec, variant in selection if st["tier"] in spec.tiers]
    try:
        est = budget.estimate(chosen, st["tier"], st["device"].type, st["data"])
        gpu = est if st["device"].type == "cuda" else budget.gpu_estimate(chosen, st["tier"], st["data"])
    except (UserError, OSError, ValueError, KeyError, TypeError) as e:   # an estimate never stops a session
        budget.log.warning("time estimate failed: %s", e)
        return
    st["estimate"], st["gpu_estimate"] = est, gpu
    text = budget.lines(est, gpu)
    for line in text:
        budget.log.info(line)
    if not st["is_worker"]:
        folder = st["report_root"] / st["session_id"][:12]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "estimate.json").write_text(json.dumps({"estimate": est, "one_gpu": gpu}, indent=1, default=str))
        tr = config.pluginmanager.get_plugin("terminalreporter")
        for line in text:
            if tr is not None:
                tr.write_line(line)
            else:
                print(line)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """pytest-xdist: the controller collects nothing itself; it estimates from the first worker's node ids."""
    st = node.config.stash[_STATE]
    if st["tier"] != "lab" or st.get("estimate") is not None:
        return
    _announce_estimate(node.config, st, _claims_of_nodeids(ids))


def _claims_of_nodeids(ids) -> list:
    """(spec, variant) of every claim test among pytest node ids (importing their modules)."""
    import importlib

    out = []
    for nid in ids:
        path, _, rest = nid.partition("::")
        if not (path.startswith("claims/") and path.endswith(".py")):   # claim modules only
            continue
        name, _, variant = rest.partition("[")
        try:
            module = importlib.import_module(path[:-3].replace("/", "."))
        except (Exception, pytest.skip.Exception):  # noqa: BLE001 - the estimate must never stop a session
            continue
        spec = getattr(getattr(module, name, None), "__claim_spec__", None)
        if spec is not None:
            out.append((spec, variant.rstrip("]")))
    return out


def _check_settings_override(items, tier: str, override: dict) -> None:
    """Every ``--set`` key must be a setting of at least one selected claim at the tier (a typo is
    one line, not a silently ignored option)."""
    known = set()
    for item in items:
        spec = getattr(getattr(item, "function", None), "__claim_spec__", None)
        if spec is not None and tier in spec.tiers:
            known |= set(spec.tiers[tier].settings)
    unknown = sorted(set(override) - known)
    if unknown and known:
        raise pytest.UsageError(f"--set {', '.join(unknown)}: no selected claim has such a setting at tier {tier}; "
                                f"known settings: {', '.join(sorted(known))}")


def _select_shard(config, items, index: int, count: int) -> None:
    """Deselect the claims of other shards (and, outside shard 1, every non-claim test)."""
    is_claim = lambda item: getattr(getattr(item, "function", None), "__claim_spec__", None) is not None
    mine = shard_members([it.nodeid for it in items if is_claim(it)], index, count)
    keep = [it for it in items if (it.nodeid in mine if is_claim(it) else index == 1)]
    kept = {id(it) for it in keep}
    dropped = [it for it in items if id(it) not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def claim_run(request):
    """The :class:`~harness.claimrun.ClaimRun` of the claim under test."""
    from harness.claimrun import ClaimRun

    spec = getattr(request.function, "__claim_spec__", None)
    if spec is None:
        raise TypeError("claim_run is only available to functions decorated with @claim")
    variant = request.node.callspec.id if hasattr(request.node, "callspec") else ""
    session = _session(request.config)
    tier = spec.tiers.get(session.tier)
    for key in (tier.data if tier else ()):
        reason = session.data.missing_reason(key)
        if reason:  # at the paper tier collection already stopped; at ci this is a clear skip
            pytest.skip(f"{spec.id}: {reason}")
    run = ClaimRun(spec, session, request.node.nodeid, variant)
    request.node._mec_run = run
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    exc = call.excinfo
    if exc is not None and exc.errisinstance(UserError):
        report.longrepr = f"UserError: {exc.value}"  # one line, no traceback
    spec = getattr(getattr(item, "function", None), "__claim_spec__", None)
    if spec is not None and report.skipped and not hasattr(report, "wasxfail") and call.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.user_properties.append((ROW_KEY, json.dumps(skipped_row(item, spec, reason))))
        run = getattr(item, "_mec_run", None)
        if run is not None and run.run_id:
            run.session.tracker.log(run.run_id, tags={"mec.verdict": "SKIPPED", "mec.skip_reason": reason})
            run.session.tracker.end_run(run.run_id, "KILLED")
        return
    if call.when != "call":
        return
    run = getattr(item, "_mec_run", None)
    if run is None:
        return
    row = getattr(run, "row", None)
    if row is None and exc is not None:
        row = run.abort(exc.value)
    if row is None:
        return
    # verdict → pytest outcome
    if exc is None:
        if row["outcome"] == "failed":
            report.outcome = "failed"
            report.longrepr = _failure_text(row)
        elif row["outcome"] == "xfailed":
            report.outcome = "skipped"
            report.wasxfail = f"declared non-replication at {row['tier']}: {row['expected_reason']}"
        elif row["outcome"] == "xpassed-strict":
            report.outcome = "failed"
            report.longrepr = (f"[XPASS(strict)] {row['claim_id']} was declared {row['expected']} at "
                               f"{row['tier']} ({row['expected_reason']}) but PASSED: update the spec")
    report.user_properties.append((ROW_KEY, json.dumps(row, default=str)))


def skipped_row(item, spec, reason: str) -> dict:
    st = item.config.stash[_STATE]
    tier = spec.tiers.get(st["tier"])
    variant = item.callspec.id if hasattr(item, "callspec") else ""
    return {"claim_id": spec.id, "variant": variant,
            "paper": spec.paper.key, "tier": st["tier"], "statistic": spec.statistic,
            "reported": spec.reported_text, "value": None, "ci_low": None, "ci_high": None, "p": None,
            "comparator": spec.headline.comparator, "threshold": spec.headline.threshold,
            "verdict": "SKIPPED", "expected": tier.expect_for(variant)[0] if tier else None, "controls": {},
            "control_mismatches": [], "mlflow_run_id": None, "seconds": 0.0,
            "spec_sha256": spec.sha256(), "nodeid": item.nodeid, "outcome": "skipped",
            "skip_reason": reason.removeprefix("Skipped: ")}


def _failure_text(row: dict) -> str:
    lines = [f"{row['claim_id']}{'[' + row['variant'] + ']' if row.get('variant') else ''}: "
             f"verdict {row['verdict']}, expected {row['expected']}"]
    if row.get("inconclusive_reason"):
        lines.append(f"  {row['inconclusive_reason']} (measured verdict {row.get('measured_verdict')})")
    for stat, d in row.get("criteria", {}).items():
        e = d["estimate"]
        lines.append(f"  {stat} = {_f(e['value'])} [{_f(e['low'])}, {_f(e['high'])}] "
                     f"{d['comparator']} {d['threshold']:g} -> {d['verdict']}"
                     + (f" (p={_f(e['p'])})" if e.get("p") is not None else ""))
    for m in row.get("control_mismatches", []):
        lines.append(f"  {m}: the claim cannot be trusted to fail")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.0f} s"


def _f(x) -> str:
    return "—" if x is None else f"{x:.4g}"


class ClaimsReporter:
    """Per-session collector of claim rows; writes the reports and finalises the session run."""

    def __init__(self, config, state: dict):
        self.config, self.state = config, state
        self.rows: list[dict] = []
        self.paths: dict = {}

    def pytest_runtest_logreport(self, report):
        # rows travel in user_properties, so this works in-process and under pytest-xdist
        for key, value in getattr(report, "user_properties", []):
            if key == ROW_KEY:
                self.rows.append(json.loads(value))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        st = self.state
        if st["is_worker"] or not self.rows:
            return
        from harness.report import finalise_session_run, write_reports

        self.paths = write_reports(self.rows, st)
        if st["mlflow_uri"]:
            try:
                finalise_session_run(self.rows, st, self.paths)
            except UserError as e:
                self.paths["mlflow_error"] = str(e)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        st = self.state
        if st["is_worker"] or not self.rows:
            return
        from harness.report import terminal_table

        tr = terminalreporter
        kind = {"paper": "REPLICATION", "lab": "REPLICATION on open data at one-GPU sizes"}.get(
            st["tier"], "smoke test, not a replication")
        tr.section(f"claims: {st['tier']} tier ({kind})")
        if st["settings_override"]:
            tr.write_line(f"settings overridden by --set: {json.dumps(st['settings_override'])} "
                          f"(not the tier's declared settings)")
        for line in terminal_table(self.rows):
            tr.write_line(line)
        est = st.get("estimate")
        if est is not None:
            took = sum(float(r.get("seconds") or 0.0) for r in self.rows)
            tr.write_line(f"estimated before training: {_duration(est['total_s'])} on {est['device']}; the claims took "
                          f"{_duration(took)} (sum of claim seconds)")
        tr.write_line("")
        # where the report and the runs are goes last, after pytest's own summary (pytest_unconfigure)

    def where_lines(self) -> list[str]:
        """The report paths and the command that opens the runs (and, for a shard, the whole session)."""
        from harness.tracking import experiment_name

        st, out = self.state, []
        if self.paths:
            out += [f"report: {self.paths['md']}", f"        {self.paths['json']}"]
        if "mlflow_error" in self.paths:
            out.append(f"MLflow: {self.paths['mlflow_error']}")
        elif st["mlflow_uri"]:
            out.append(f"runs:   mlflow ui --backend-store-uri {display_uri(st['mlflow_uri'])}   "
                       f"(experiment {experiment_name(st['tier'])}, session {st['session_id'][:12]})")
        if st["shard"] is not None:
            i, n = st["shard"]
            uri = "" if not st["mlflow_uri"] else f" --mlflow-uri {display_uri(st['mlflow_uri'])}"
            out.append(f"shard {i}/{n}: this report holds this shard's claims; the whole session: "
                       f"python -m harness.report --session {st['session_id']} --tier {st['tier']}{uri}")
        return out

    def pytest_unconfigure(self, config):
        if self.state["is_worker"] or not self.rows:
            return
        tr = config.pluginmanager.get_plugin("terminalreporter")
        for line in self.where_lines():
            if tr is not None:
                tr.write_line(line)
            else:
                print(line)


def display_uri(uri: str) -> str:
    """Show a SQLite URI relative to the repository when it lives inside it."""
    if uri.startswith("sqlite:////"):
        p = Path(uri[len("sqlite:///"):])
        try:
            return f"sqlite:///{p.relative_to(REPO_ROOT)}"
        except ValueError:
            return uri
    return uri
