"""The object a claim function receives: its settings, resources and logging, and its conclusion."""
from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest

from harness.spec import INCONCLUSIVE, PASS, Claim, Evidence, assess_competence, evaluate

REPORT_FIELDS = ("claim_id", "paper", "tier", "statistic", "reported", "value", "ci_low", "ci_high",
                 "comparator", "threshold", "verdict", "expected", "controls", "mlflow_run_id", "seconds")


@dataclass
class Session:
    """Per-process session state shared by every claim (built by the pytest plugin)."""

    session_id: str
    tier: str
    device: Any
    seeds_override: int | None
    cache: Any
    data: Any
    tracker: Any  # harness.tracking.Tracker or None
    session_tags: dict
    report_dir: Path
    parent_run_id: str | None = None
    verbose: bool = True
    settings_override: dict | None = None

    def parent(self) -> str | None:
        if self.tracker is None:
            return None
        if self.parent_run_id is None:
            self.parent_run_id = self.tracker.session_run(self.session_id, self.session_tags)
        return self.parent_run_id


def effective_settings(tier, seeds_override: int | None = None, settings_override: Mapping | None = None) -> dict:
    """A claim's settings at a tier: the tier's, ``seeds`` from ``--seeds``, then the ``--set`` keys it has."""
    settings = dict(tier.settings)
    if seeds_override is not None:
        settings["seeds"] = seeds_override
    settings.update({k: v for k, v in (settings_override or {}).items() if k in tier.settings})
    return settings


class ChildRun:
    """A seed or condition of a claim: a grandchild MLflow run."""

    def __init__(self, run: "ClaimRun", run_id: str | None, name: str):
        self._run, self.run_id, self.name = run, run_id, name

    def log_params(self, params: Mapping) -> None:
        if self.run_id:
            self._run.session.tracker.log(self.run_id, params=params)

    def log_metrics(self, metrics: Mapping, step: int = 0) -> None:
        if self.run_id:
            self._run.session.tracker.log(self.run_id, metrics=metrics, step=step)

    def log_history(self, history: Mapping[str, list]) -> None:
        """Training curves, one metric per key, stepped by epoch."""
        if self.run_id:
            self._run.session.tracker.log_history(self.run_id, history)

    def set_tags(self, tags: Mapping) -> None:
        if self.run_id:
            self._run.session.tracker.log(self.run_id, tags=tags)


class ClaimRun:
    """Everything a claim function needs, and the place it reports to.

    Attributes
    ----------
    spec : Claim
    tier : str
    settings : dict
        The tier's settings, with ``seeds`` overridden by ``--seeds``.
    seeds : list of int
    device : torch.device
    cache : harness.cache.Cache
    data : harness.options.DataRoots
    variant : str
        The pytest parameter id for parametrised claims ("" otherwise).
    """

    def __init__(self, spec: Claim, session: Session, nodeid: str, variant: str = ""):
        self.spec = spec
        self.session = session
        self.nodeid = nodeid
        self.variant = variant
        self.tier = session.tier
        tier = spec.tiers.get(session.tier)
        if tier is None:
            pytest.skip(f"{spec.id} declares no '{session.tier}' tier")
        self.tier_spec = tier
        self.settings = effective_settings(tier, session.seeds_override, session.settings_override)
        #: ``--set`` overrides that apply to this claim (keys it has); recorded everywhere
        self.overridden = {k: v for k, v in (session.settings_override or {}).items() if k in tier.settings}
        n_seeds = self.settings.get("seeds", 1)
        self.seeds = list(range(n_seeds)) if isinstance(n_seeds, int) else list(n_seeds)
        self.device = session.device
        self.cache = session.cache
        self.data = session.data
        self.values: dict = {}
        self.figures: list[Path] = []
        self._t0 = time.perf_counter()
        self._cache_events0 = len(self.cache.events)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.id + (f"[{variant}]" if variant else ""))
        self.out_dir = session.report_dir / "claims" / slug
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = None
        if session.tracker is not None:
            name = spec.id + (f"[{variant}]" if variant else "")
            self.run_id = session.tracker.start_run(name, session.parent(), tags={
                "mec.level": "claim", "mec.claim_id": spec.id, "mec.paper": spec.paper.key,
                "mec.tier": self.tier, "mec.variant": variant, "mec.spec_sha256": spec.sha256(),
                "mec.pytest_nodeid": nodeid, "mlflow.runType": "test", "mec.verdict": "RUNNING",
                **({"mec.settings_overridden": json.dumps(self.overridden)} if self.overridden else {})})

    # ----------------------------------------------------------- resources
    def require_data(self, key: str):
        """The data root ``key``; skips (ci) or raises a one-line error (paper) when absent."""
        reason = self.data.missing_reason(key)
        if reason is not None:
            if self.tier == "ci":
                pytest.skip(f"{self.spec.id}: {reason}")
            from harness.errors import UserError

            raise UserError(reason)
        return self.data.require(key)

    def progress(self, iterable: Iterable, desc: str = "", total: int | None = None):
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=f"{self.spec.id} {desc}".strip(), total=total, leave=False,
                    disable=not self.session.verbose, mininterval=2.0)

    # ------------------------------------------------------------- logging
    @contextlib.contextmanager
    def child(self, name: str, params: Mapping | None = None, tags: Mapping | None = None):
        """A grandchild run for one seed or condition."""
        rid = None
        if self.session.tracker is not None and self.run_id:
            rid = self.session.tracker.start_run(f"{self.spec.id} · {name}", self.run_id, tags={
                "mec.level": "condition", "mec.claim_id": self.spec.id, "mec.tier": self.tier,
                **(tags or {})})
        child = ChildRun(self, rid, name)
        if params:
            child.log_params(params)
        status = "FAILED"
        try:
            yield child
            status = "FINISHED"
        finally:
            if rid:
                self.session.tracker.end_run(rid, status)

    def log_values(self, values: Mapping) -> None:
        """Numbers worth keeping beside the verdict (JSON-able); written to values.json."""
        self.values.update(values)

    def log_figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as PNG to the report folder and the claim's MLflow run."""
        import matplotlib.pyplot as plt

        name = name if name.endswith(".png") else name + ".png"
        path = self.out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path)
        if self.run_id:
            self.session.tracker.log_artifact(self.run_id, path, "figures")
        return path

    def log_learning_curves(self, curves: Mapping[str, Mapping[str, list]], name: str = "learning_curves") -> Path:
        """One figure of training curves: a panel per metric, a line per seed or condition.

        Parameters
        ----------
        curves : mapping
            ``{"seed 0": {"train_loss": [...], "val_map": [...]}, ...}``; each list is one value per
            epoch (or logging step). Metrics missing from a line are skipped.
        name : str
            Figure name (``learning_curves_<name>.png`` unless it already starts with it).
        """
        fig = learning_curves_figure(curves, title=f"{self.spec.id}: {name}")
        stem = name if name.startswith("learning_curves") else f"learning_curves_{name}"
        return self.log_figure(fig, stem)

    # ---------------------------------------------------------- conclusion
    def conclude(self, result: Mapping[str, Evidence]) -> dict:
        """Evaluate the claim and its controls, log everything and build the report row."""
        spec = self.spec
        if not isinstance(result, Mapping) or "main" not in result:
            raise TypeError(f"{spec.id}: the claim function must return {{'main': Evidence, <control>: Evidence}}")
        verdict, per = evaluate(spec, result["main"], require_all=True)
        measured_verdict = verdict
        competence, inconclusive_reason = assess_competence(spec, result["main"], self.tier)
        if inconclusive_reason:  # a model that did not learn its task earns no verdict
            verdict = INCONCLUSIVE
        controls, control_detail, mismatches = {}, {}, []
        for name, declared in spec.declared_controls(self.tier).items():
            accepted = (declared,) if isinstance(declared, str) else tuple(declared)
            shown = " or ".join(accepted)
            ev = result.get(name)
            if ev is None:
                controls[name] = "MISSING"
                mismatches.append(f"control {name!r} was declared ({shown}) but not computed")
                continue
            got, detail = evaluate(spec, ev, require_all=False)
            controls[name] = got
            control_detail[name] = {"declared": shown, "verdict": got, "criteria": detail,
                                    "values": ev.values, "note": ev.note}
            if got not in accepted:
                mismatches.append(f"control {name!r} got {got}, declared {shown}")
        undeclared = sorted(set(result) - set(spec.controls) - {"main"})
        head = spec.headline
        head_est = result["main"].estimates[head.statistic]
        expected, expected_reason = self.tier_spec.expect_for(self.variant)
        row = {
            "claim_id": spec.id, "variant": self.variant, "paper": spec.paper.key, "tier": self.tier,
            "statistic": spec.statistic, "unit": spec.unit, "reported": spec.reported_text,
            "value": head_est.value, "ci_low": head_est.low, "ci_high": head_est.high, "p": head_est.p,
            "comparator": head.comparator, "threshold": head.threshold, "threshold_source": head.source,
            "verdict": verdict, "expected": expected,
            "expected_reason": expected_reason, "controls": controls,
            "competence": competence, "competent": (not inconclusive_reason) if competence else None,
            "inconclusive_reason": inconclusive_reason, "measured_verdict": measured_verdict,
            "controls_redeclared": ({k: list(v) if not isinstance(v, str) else v
                                     for k, v in self.tier_spec.controls.items()} | {"reason": self.tier_spec.controls_reason}
                                    if self.tier_spec.controls else {}),
            "control_mismatches": mismatches, "criteria": per,
            "mlflow_run_id": self.run_id, "seconds": round(time.perf_counter() - self._t0, 2),
            "spec_sha256": spec.sha256(), "nodeid": self.nodeid, "device": str(self.device),
            "settings": self.settings, "seeds": self.seeds, "settings_overridden": self.overridden,
            "cache_hits": sum(e.outcome == "hit" for e in self.cache.events[self._cache_events0:]),
            "cache_misses": sum(e.outcome != "hit" for e in self.cache.events[self._cache_events0:]),
            "data_manifests": self.data_manifests(),
            "figures": [str(p) for p in self.figures],
        }
        row["outcome"] = self._outcome(verdict, expected, mismatches)
        values = {"row": row, "main": {"criteria": per, "values": result["main"].values,
                                       "note": result["main"].note},
                  "controls": control_detail, "undeclared_conditions": undeclared, "extra": self.values,
                  "cache_events": [e.to_dict() for e in self.cache.events[self._cache_events0:]]}
        (self.out_dir / "values.json").write_text(json.dumps(values, indent=2, default=_json_default))
        (self.out_dir / "spec.json").write_text(json.dumps(spec.canonical(), indent=2))
        if self.run_id:
            self._log_to_mlflow(row, per, controls)
        self.row = row
        return row

    def data_manifests(self) -> list[dict]:
        """The data manifests under every cache entry this claim read or built (one per name and hash:
        ``name``, ``hash``, and ``kind``, ``n_files``, ``bytes``, ``root`` when made in this process)."""
        from harness.cache import data_used

        return data_used(self.cache.events[self._cache_events0:])

    def _outcome(self, verdict: str, expected: str, mismatches: list) -> str:
        if mismatches:
            return "failed"
        if expected == PASS:
            return "passed" if verdict == PASS else "failed"
        return "xpassed-strict" if verdict == PASS else "xfailed"

    def _log_to_mlflow(self, row: dict, per: dict, controls: dict) -> None:
        from harness.report import manifests_text

        tr, rid, spec = self.session.tracker, self.run_id, self.spec
        metrics = {"statistic": row["value"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                   "threshold": row["threshold"], "seconds": row["seconds"],
                   "cache_hits": row["cache_hits"], "cache_misses": row["cache_misses"]}
        if row["p"] is not None:
            metrics["p"] = row["p"]
        for stat, d in per.items():
            e = d["estimate"]
            for k in ("value", "low", "high", "p"):
                if e.get(k) is not None:
                    metrics[f"{stat}.{k}"] = e[k]
        for c in row["competence"]:
            for k in ("value", "low", "high"):
                if c.get(k) is not None:
                    metrics[f"competence.{c['name']}.{k}"] = c[k]
            metrics[f"competence.{c['name']}.threshold"] = c["threshold"]
        tags = {"mec.verdict": row["verdict"], "mec.expected": row["expected"],
                "mec.competent": "n/a" if row["competent"] is None else str(row["competent"]),
                "mec.inconclusive_reason": row["inconclusive_reason"] or "",
                "mec.measured_verdict": row["measured_verdict"],
                "mec.outcome": row["outcome"], "mec.controls": json.dumps(controls),
                "mec.data_manifests": manifests_text(row.get("data_manifests"))[:4900],
                "mec.controls_ok": str(not row["control_mismatches"]),
                "mlflow.note.content": _note(spec, row)}
        tr.log(rid, params={"spec": spec.canonical(), "settings": self.settings}, metrics=metrics, tags=tags)
        for name in ("values.json", "spec.json"):
            tr.log_artifact(rid, self.out_dir / name)
        status = "FINISHED" if row["outcome"] in ("passed", "xfailed") else "FAILED"
        tr.end_run(rid, status)

    def abort(self, exc: BaseException) -> dict:
        """Record a claim that raised before concluding (verdict ERROR)."""
        row = {"claim_id": self.spec.id, "variant": self.variant, "paper": self.spec.paper.key,
               "tier": self.tier, "statistic": self.spec.statistic, "reported": self.spec.reported_text,
               "value": None, "ci_low": None, "ci_high": None, "p": None,
               "comparator": self.spec.headline.comparator, "threshold": self.spec.headline.threshold,
               "verdict": "ERROR", "expected": self.tier_spec.expect_for(self.variant)[0], "controls": {},
               "control_mismatches": [], "mlflow_run_id": self.run_id,
               "seconds": round(time.perf_counter() - self._t0, 2), "spec_sha256": self.spec.sha256(),
               "nodeid": self.nodeid, "outcome": "error", "error": f"{type(exc).__name__}: {exc}"[:500],
               "data_manifests": self.data_manifests()}
        if self.run_id:
            try:
                self.session.tracker.log(self.run_id, tags={"mec.verdict": "ERROR", "mec.error": row["error"]})
                self.session.tracker.end_run(self.run_id, "FAILED")
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        self.row = row
        return row


def learning_curves_figure(curves: Mapping[str, Mapping[str, list]], title: str = ""):
    """A matplotlib figure of ``curves`` (see :meth:`ClaimRun.log_learning_curves`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = sorted({m for c in curves.values() for m, v in c.items() if v is not None and len(v)})
    if not metrics:
        raise ValueError("learning curves: no metric has any values")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 2.8), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for label, c in curves.items():
            v = c.get(m)
            if v is not None and len(v):
                ax.plot(range(1, len(v) + 1), list(v), label=label, lw=1.2)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("epoch / step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _note(spec: Claim, row: dict) -> str:
    lo, hi = row["ci_low"], row["ci_high"]
    return (f"**{row['verdict']}** (expected {row['expected']}) — {spec.finding}\n\n"
            f"{spec.statistic}: {_fmt(row['value'])} [{_fmt(lo)}, {_fmt(hi)}] "
            f"{row['comparator']} {row['threshold']:g}; paper: {spec.reported_text}.\n\n"
            f"Controls: {', '.join(f'{k}={v}' for k, v in row['controls'].items())}"
            + (f"\n\n**{row['inconclusive_reason']}** (measured verdict {row['measured_verdict']})"
               if row.get("inconclusive_reason") else ""))


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)
