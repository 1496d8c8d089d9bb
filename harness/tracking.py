"""MLflow tracking: session → claim → seed/condition runs, through an explicit MlflowClient.

No fluent (global) MLflow state is used: every call names its run id, so nested runs from several
pytest-xdist workers cannot get tangled. With a SQLite store, writes from all processes are
serialised by a file lock next to the database, so parallel workers never see
"database is locked". With an HTTP tracking server (``mlflow server``, e.g. on PostgreSQL), a call
that meets a refused connection, a 5xx or a timeout is retried with backoff for up to
``retry_s`` seconds (``MEC_MLFLOW_RETRY_S``, default 60) before a one-line :class:`UserError`
naming the server and the fix.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from harness.errors import UserError

EXPERIMENT_PREFIX = "music-emergence-claims"
MAX_PARAM_CHARS = 500
DEFAULT_RETRY_S = 60.0
# Substrings of errors a restarting or briefly overloaded tracking server produces.
TRANSIENT_MARKERS = ("connection refused", "connectionerror", "max retries exceeded", "remotedisconnected",
                     "connection aborted", "connection reset", "read timed out", "timed out", "bad gateway",
                     "service unavailable", "gateway timeout", "temporarily_unavailable",
                     "too many 500 error responses", "too many 502 error responses",
                     "too many 503 error responses", "too many 504 error responses",
                     "server closed the connection", "could not connect to server", "operationalerror")


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can cure: refused or reset connections, timeouts, 5xx answers.

    A 4xx answer (bad parameter, run not found...) is permanent and is not retried.
    """
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    if any(m in text for m in TRANSIENT_MARKERS):
        return True
    code = getattr(exc, "error_code", "")
    return code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR") and "sqlite" not in text


def backoff_delays(budget_s: float, first_s: float = 0.5, cap_s: float = 8.0) -> list[float]:
    """Sleeps between attempts: doubling from ``first_s``, capped at ``cap_s``, summing to ≤ ``budget_s``."""
    out, d, total = [], first_s, 0.0
    while total + d <= budget_s + 1e-9:
        out.append(d)
        total += d
        d = min(2 * d, cap_s)
    return out


def experiment_name(tier: str) -> str:
    """One experiment per tier, so a ci smoke pass never sits beside a paper replication."""
    return f"{EXPERIMENT_PREFIX}/{tier}"


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            for i, x in enumerate(v):
                out.update(_flatten(x, f"{key}.{i}."))
        else:
            s = v if isinstance(v, str) else json.dumps(v, default=str)
            out[key] = s[:MAX_PARAM_CHARS]
    return out


class Tracker:
    """Thin wrapper around ``MlflowClient`` bound to one tracking URI and tier.

    Parameters
    ----------
    uri : str
        Tracking URI (``sqlite:////abs/path.db`` or ``http://host:port``).
    tier : str
    artifact_root : Path, optional
        Where a new experiment stores artifacts (default: ``mlruns/artifacts`` beside a SQLite DB).
    """

    def __init__(self, uri: str, tier: str, artifact_root: Path | None = None, retry_s: float | None = None):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.uri = uri
        self.tier = tier
        self.is_server = uri.startswith(("http://", "https://"))
        if retry_s is None:
            retry_s = float(os.environ.get("MEC_MLFLOW_RETRY_S", DEFAULT_RETRY_S))
        self.retry_s = retry_s if self.is_server else 0.0
        self.retries = 0  # transient failures survived (for tests and the benchmark)
        self._lock_path = None
        if uri.startswith("sqlite:///"):
            db = Path(uri[len("sqlite:///"):])
            self._lock_path = str(db) + ".lock"
            artifact_root = artifact_root or db.parent / "artifacts"
        self.artifact_root = artifact_root
        self._client = None
        self._experiment_id = None
        self._lock = None
        if self._lock_path is not None:
            from filelock import FileLock

            # one reentrant lock object per tracker: nested calls do not deadlock
            self._lock = FileLock(self._lock_path, timeout=600)

    # -------------------------------------------------------------- plumbing
    @contextlib.contextmanager
    def _locked(self):
        if self._lock is None:
            yield
            return
        with self._lock:
            yield

    def _call(self, fn, *args, **kwargs):
        delays = backoff_delays(self.retry_s)
        t0 = time.monotonic()
        attempt = 0
        while True:
            try:
                with self._locked():
                    return fn(*args, **kwargs)
            except UserError:
                raise
            except Exception as e:  # one line naming the store and the fix
                if attempt < len(delays) and is_transient(e):
                    time.sleep(delays[attempt])
                    attempt += 1
                    self.retries += 1
                    continue
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                tried = (f" after {attempt + 1} attempts over {time.monotonic() - t0:.0f} s"
                         if attempt else "")
                fix = ("check that `mlflow server` runs there (README, 'Running on several GPUs or machines': .ci/tracking-server.sh start) "
                       "and rerun, or pass --mlflow-uri sqlite:///mlruns/mlflow.db") if self.is_server else \
                    "check the store or pass --mlflow-uri sqlite:///mlruns/mlflow.db"
                raise UserError(f"MLflow tracking at {self.uri} failed{tried} ({type(e).__name__}: {msg}); "
                                f"{fix}") from e

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = self._call(MlflowClient, tracking_uri=self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._call(self._get_or_create_experiment)
        return self._experiment_id

    def _get_or_create_experiment(self) -> str:
        name = experiment_name(self.tier)
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        loc = None
        if self.artifact_root is not None:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            loc = Path(self.artifact_root).resolve().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=loc, tags={"mec.tier": self.tier})
        except Exception:  # created concurrently by another process
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    # ------------------------------------------------------------------ runs
    def _search_all(self, filter_string: str, order_by=None) -> list:
        """Every run of this tier's experiment matching ``filter_string`` (follows page tokens; no retry)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000,
                                           order_by=order_by, page_token=token)
            runs += list(page)
            token = getattr(page, "token", None)
            if not token:
                return runs

    def _session_runs(self, session_id: str) -> list:
        runs = self._search_all(f"tags.`mec.session_id` = '{session_id}' and tags.`mec.level` = 'session'")
        return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))

    def session_runs(self, session_id: str) -> list:
        """Every live session-level run tagged with ``session_id``, oldest first."""
        return self._call(self._session_runs, session_id)

    def claim_runs(self, session_id: str) -> list:
        """Every claim run under every session-level run of ``session_id`` (shards, or a duplicate
        parent left by a race)."""
        def _all():
            return [run for parent in self._session_runs(session_id)
                    for run in self._search_all(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                                                f"and tags.`mec.level` = 'claim'")]
        return self._call(_all)

    def session_run(self, session_id: str, tags: Mapping[str, str]) -> str:
        """Find or create the parent run of a pytest session (one per session id).

        Workers and shards on other machines call this at the same time. With SQLite the file lock
        serialises them; against a server two may both create a run. Each creator then re-reads,
        and every process adopts the oldest run (ties by run id) and deletes its own duplicate
        before attaching anything to it. The report also merges every run of the session, so a
        duplicate that survives a race loses no claim.
        """

        def _find_or_create():
            found = self._session_runs(session_id)
            if found:
                return found[0].info.run_id
            all_tags = {"mec.session_id": session_id, "mec.level": "session", **tags}
            run = self.client.create_run(self.experiment_id, tags={k: str(v) for k, v in all_tags.items()},
                                         run_name=f"session {session_id[:8]} ({self.tier})")
            mine = run.info.run_id
            if self._lock is not None:
                return mine
            now = self._session_runs(session_id)
            oldest = now[0].info.run_id if now else mine
            if oldest != mine:
                self.client.delete_run(mine)
            return oldest

        return self._call(_find_or_create)

    def start_run(self, name: str, parent_id: str | None, tags: Mapping[str, Any] | None = None) -> str:
        t = {k: str(v) for k, v in (tags or {}).items()}
        if parent_id:
            t["mlflow.parentRunId"] = parent_id
        run = self._call(self.client.create_run, self.experiment_id, tags=t, run_name=name)
        return run.info.run_id

    def log(self, run_id: str, *, params: Mapping | None = None, metrics: Mapping | None = None,
            tags: Mapping | None = None, step: int = 0) -> None:
        from mlflow.entities import Metric, Param, RunTag

        ts = int(time.time() * 1000)
        p = [Param(k, v) for k, v in _flatten(params or {}).items()]
        m = [Metric(k, float(v), ts, step) for k, v in (metrics or {}).items()
             if v is not None and _finite(v)]
        t = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        for i in range(0, max(len(p), 1), 100):  # MLflow caps params per batch at 100
            self._call(self.client.log_batch, run_id, metrics=m if i == 0 else [],
                       params=p[i:i + 100], tags=t if i == 0 else [])

    def log_history(self, run_id: str, history: Mapping[str, list]) -> None:
        """Log training curves: ``{"train_loss": [...], "val_ap": [...]}`` as stepped metrics."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        metrics = [Metric(k, float(v), ts, i) for k, vals in history.items()
                   for i, v in enumerate(vals) if v is not None and _finite(v)]
        for i in range(0, len(metrics), 1000):
            self._call(self.client.log_batch, run_id, metrics=metrics[i:i + 1000])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self._call(self.client.log_artifact, run_id, str(path), artifact_path)

    def log_json(self, run_id: str, obj: Any, name: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / name
            p.write_text(json.dumps(obj, indent=2, default=str))
            self.log_artifact(run_id, p)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._call(self.client.set_terminated, run_id, status)


def _finite(v) -> bool:
    try:
        import math

        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
