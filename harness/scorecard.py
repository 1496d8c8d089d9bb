"""Pytest plugin: ``--model SPEC`` and the scorecard (models x representation claims).

``--model`` is repeatable; a ``.yaml`` file lists many (see :func:`models.zoo.expand_specs`). The
tests in ``claims/scorecard/`` take the ``scored_model`` fixture and are parametrised over the
specs; with no ``--model`` they are collected once and skipped with a one-line reason.

Each test records one cell for the model and one for its control in ``user_properties``
(``mec_scorecard_cell``), so cells travel from pytest-xdist workers to the controller, which
writes at the end of the session:

- ``<report-dir>/<session>/scorecard.{md,json}`` and ``scorecard_effects.png`` (heat map of effect
  sizes: each cell's value divided by its interval half-width), copied into ``<report-dir>/latest/``;
- one MLflow run per model (child of the session run) with the cell values as metrics and the
  scorecard files as artifacts, when tracking is on.

Pytest outcome of a cell: a scored cell passes whatever its verdict (a user's model has no declared
expectation: the verdict is data); a model that cannot be run errors; "not applicable" is a skip
with the reason. A control whose verdict contradicts the project's declared baseline behaviour
(:data:`claims.scorecard._probes.CONTROL_CONTRADICTS`) is flagged in the cell (``control_flag``)
and raises a :class:`ScorecardControlWarning`, visible in pytest's warnings summary.

Registered through the ``pytest11`` entry point in ``pyproject.toml`` (``-p harness.scorecard`` also works
without an installed package).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

CELL_KEY = "mec_scorecard_cell"
_STATE = pytest.StashKey[dict]()


class ScorecardControlWarning(UserWarning):
    """A control's verdict contradicts the declared baseline behaviour."""


def pytest_addoption(parser):
    g = parser.getgroup("music-emergence-claims")
    g.addoption("--model", action="append", default=[], metavar="SPEC",
                help="score this audio model on the representation claims (repeatable; a .yaml file lists "
                     "many): a save_pretrained folder, hf:<id>, torchcrepe[:tiny|:full], pesto, torchfcpe, "
                     "basic-pitch, swift-f0, hear:<module>[@<model file>], module:pkg.mod:factory@layers, "
                     "callable:pkg.mod:function, logmel, kim_cnn")
    g.addoption("--scorecard-profile", default=None, choices=("smoke", "ci", "paper"),
                help="stimulus sizes of the scorecard probes (default: the --tier)")


def pytest_configure(config):
    config.addinivalue_line("markers", "scorecard: a scorecard cell (a model x representation claim)")
    config.stash[_STATE] = {"cells": [], "t0": time.time(), "paths": {}}
    config.pluginmanager.register(_Collector(config), "mec-scorecard-collector")


def specs(config) -> list[str]:
    from harness.errors import UserError
    from models.zoo import expand_specs

    try:
        return expand_specs(config.getoption("model") or [])
    except UserError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_generate_tests(metafunc):
    if "model_spec" not in metafunc.fixturenames:
        return
    sp = specs(metafunc.config)
    if not sp:
        metafunc.parametrize("model_spec", [pytest.param(None, marks=pytest.mark.skip(
            reason="no --model given: pass --model SPEC to score a model on the representation claims"))],
            ids=["no-model"])
        return
    metafunc.parametrize("model_spec", sp, ids=[_id(s) for s in sp], scope="session")


def _id(spec: str) -> str:
    return Path(spec).name if os.sep in spec and Path(spec).exists() else spec


def _claims_state(config) -> dict:
    from harness.plugin import _STATE as CLAIMS

    return config.stash[CLAIMS]


def profile(config) -> str:
    tier = _claims_state(config)["tier"]
    return config.getoption("scorecard_profile") or {"lab": "paper"}.get(tier, tier)  # the lab tier's stimuli: paper sizes


@pytest.fixture(scope="session")
def model_spec():
    """Stands in when the plugin did not parametrise the test (it is not loaded)."""
    pytest.skip("the scorecard plugin is not loaded: reinstall the package (pip install -e .) or pass -p harness.scorecard")


@pytest.fixture(scope="session")
def scored_model(request, model_spec):
    """The :class:`claims.scorecard._probes.ScoredModel` of a spec (built once per session)."""
    from claims.scorecard._probes import ScoredModel
    from harness.errors import UserError
    from models.zoo import parse_spec

    st = _claims_state(request.config)
    t0 = time.perf_counter()
    try:
        entry = parse_spec(model_spec, device=st["device"], cache=st["cache"])
    except UserError as e:
        pytest.fail(str(e), pytrace=False)
    sm = ScoredModel(entry, profile(request.config), st["cache"], st["device"])
    sm.seconds["load"] = time.perf_counter() - t0
    return sm


@pytest.fixture
def record_cell(request):
    """``record_cell(scored_model, main_cell, control_cell)``: store both cells; warn on a contradicted
    control; skip when the main cell is not applicable."""
    def record(sm, main, control=None, seconds: float | None = None):
        import warnings

        from claims.scorecard._probes import CONTROL_CONTRADICTS

        e = sm.entry
        flag = bool(control is not None and control.status == "scored"
                    and control.verdict in CONTROL_CONTRADICTS.get(main.claim, {}).get(e.control_kind, set()))
        row = {"model": e.name, "spec": e.spec, "claim": main.claim, "profile": sm.profile,
               "main": main.to_dict(), "control": None if control is None else control.to_dict(),
               "control_kind": e.control_kind, "control_flag": flag, "info": e.info,
               "seconds": None if seconds is None else round(seconds, 2), "nodeid": request.node.nodeid}
        request.node.user_properties.append((CELL_KEY, json.dumps(row, default=_json_default)))
        if flag:
            warnings.warn(ScorecardControlWarning(
                f"{e.name} / {main.claim}: control ({e.control_kind}) is {control.verdict}, which contradicts the "
                f"declared baseline behaviour"))
        if main.status != "scored":
            pytest.skip(f"not applicable: {main.reason}")
    return record


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class _Collector:
    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for key, value in getattr(report, "user_properties", []):
            if key == CELL_KEY:
                self.config.stash[_STATE]["cells"].append(json.loads(value))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        st = self.config.stash[_STATE]
        if getattr(self.config, "workerinput", None) is not None or not st["cells"]:
            return
        cst = _claims_state(self.config)
        st["paths"] = write_scorecard(st["cells"], Path(cst["report_root"]), cst["session_id"], cst["tier"])
        if cst["mlflow_uri"]:
            try:
                st["paths"]["mlflow_runs"] = log_to_mlflow(st["cells"], st["paths"], cst)
            except Exception as exc:  # tracking must not lose the written scorecard
                st["paths"]["mlflow_error"] = f"{type(exc).__name__}: {exc}"

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        st = config.stash[_STATE]
        if not st["paths"]:
            return
        tr = terminalreporter
        tr.section("scorecard")
        tr.write_line(markdown_table(st["cells"]))
        tr.write_line(f"scorecard: {st['paths'].get('md')}")
        if st["paths"].get("mlflow_error"):
            tr.write_line(f"scorecard: MLflow logging failed: {st['paths']['mlflow_error']}")




# -------------------------------------------------------------------------------------- writing
def _fmt(c: dict | None) -> str:
    if c is None:
        return "-"
    if c["status"] != "scored":
        return "n/a"
    v, lo, hi = c["value"], c["low"], c["high"]
    num = lambda x: "nan" if x is None else f"{x:.3g}"
    return f"{num(v)} [{num(lo)}, {num(hi)}] {c['verdict']}"


def table(cells: list) -> tuple[list, list, dict]:
    """Models, claims (sorted) and ``{(model, claim): row}`` (the last row wins)."""
    models = list(dict.fromkeys(r["model"] for r in cells))
    claims = sorted(dict.fromkeys(r["claim"] for r in cells))
    return models, claims, {(r["model"], r["claim"]): r for r in cells}


def markdown_table(cells: list) -> str:
    models, claims, by = table(cells)
    lines = ["| model | " + " | ".join(claims) + " |", "|---|" + "---|" * len(claims)]
    for m in models:
        row = []
        for c in claims:
            r = by.get((m, c))
            if r is None:
                row.append("-")
                continue
            s = _fmt(r["main"])
            if r["main"]["status"] == "scored" and r["control"] is not None:
                s += f"<br>control ({r['control_kind']}): {_fmt(r['control'])}" + (" ⚠" if r["control_flag"] else "")
            if r["main"]["status"] != "scored":
                s += f" ({r['main']['reason']})"
            row.append(s)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown(cells: list, meta: dict) -> str:
    out = ["# Scorecard", "",
           f"Session {meta['session_id'][:12]}, tier {meta['tier']}, profile(s) {', '.join(meta['profiles'])}. "
           "Each cell: value [95 % interval] and the verdict of the claim's criterion (PASS: the interval "
           "clears the threshold; FAIL: it cannot; else INCONCLUSIVE); below it the control's cell (random-weight "
           "twin, or the log-mel baseline where weights cannot be re-initialised). A verdict is data, not a test "
           "failure. ⚠: the control contradicts the declared baseline behaviour.", "",
           markdown_table(cells), "", "## Criteria", ""]
    seen = {}
    for r in cells:
        if r["main"]["status"] == "scored":
            seen.setdefault(r["claim"], (r["main"]["statistic"], r["main"]["criterion"]))
    out += [f"- `{c}`: {st} — {cr}" for c, (st, cr) in sorted(seen.items())]
    out += ["", "## Cost", "", "| model | claim | seconds |", "|---|---|---|"]
    out += [f"| {r['model']} | {r['claim']} | {r['seconds']} |" for r in cells]
    return "\n".join(out) + "\n"


def effect_size(c: dict | None) -> float | None:
    """(value - threshold) / interval half-width: how many half-widths the value clears the criterion's
    threshold by (a signal-to-noise effect size); None when not scored."""
    if c is None or c["status"] != "scored" or c["value"] is None or c["low"] is None or c["high"] is None:
        return None
    half = (c["high"] - c["low"]) / 2
    return float((c["value"] - (c.get("threshold") or 0.0)) / half) if half > 0 else None


def heatmap(cells: list, path: Path) -> Path:
    """Models (and their controls) x claims heat map of :func:`effect_size` (colour range clipped at the
    90th percentile), values and verdicts annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models, claims, by = table(cells)
    rows, labels = [], []
    for m in models:
        for which in ("main", "control"):
            labels.append(m if which == "main" else f"  control of {m}")
            rows.append([(by.get((m, c)) or {}).get(which) for c in claims])
    z = np.array([[np.nan if effect_size(c) is None else effect_size(c) for c in row] for row in rows], float)
    lim = max(1.0, float(np.nanpercentile(np.abs(z), 90))) if np.isfinite(z).any() else 1.0  # robust colour range
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(claims), 0.9 + 0.45 * len(rows)))
    im = ax.imshow(np.ma.masked_invalid(z), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for i, row in enumerate(rows):
        for j, c in enumerate(row):
            txt = "n/a" if c is not None and c["status"] != "scored" else (
                "-" if c is None else f"{c['value']:.2f}\n{c['verdict'][:4]}")
            ax.text(j, i, txt, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(claims)), claims, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    fig.colorbar(im, ax=ax, label="(value - threshold) / interval half-width", extend="both")
    ax.set_title("scorecard: effect sizes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_scorecard(cells: list, report_root: Path, session_id: str, tier: str) -> dict:
    """Write ``scorecard.{md,json}`` and ``scorecard_effects.png`` to the session folder and ``latest/``."""
    import shutil

    meta = {"session_id": session_id, "tier": tier, "profiles": sorted({r["profile"] for r in cells}),
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    session_dir = Path(report_root) / session_id[:12]
    session_dir.mkdir(parents=True, exist_ok=True)
    models, claims, by = table(cells)
    payload = {"meta": meta, "models": models, "claims": claims,
               "cells": sorted(cells, key=lambda r: (r["model"], r["claim"]))}
    paths = {"json": session_dir / "scorecard.json", "md": session_dir / "scorecard.md",
             "png": session_dir / "scorecard_effects.png"}
    paths["json"].write_text(json.dumps(payload, indent=2, default=_json_default))
    paths["md"].write_text(markdown(cells, meta))
    heatmap(cells, paths["png"])
    latest = Path(report_root) / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for k in ("json", "md", "png"):
        shutil.copy2(paths[k], latest / paths[k].name)
        paths[k] = latest / paths[k].name
    paths["session_dir"] = session_dir
    return paths


def log_to_mlflow(cells: list, paths: dict, cst: dict) -> dict:
    """One MLflow run per model, child of the session run: cell values as metrics, the scorecard as artifacts."""
    from harness.plugin import session_tags
    from harness.tracking import Tracker

    tracker = Tracker(cst["mlflow_uri"], cst["tier"])
    parent = tracker.session_run(cst["session_id"], session_tags(cst))
    runs = {}
    for model in dict.fromkeys(r["model"] for r in cells):
        rows = [r for r in cells if r["model"] == model]
        rid = tracker.start_run(f"scorecard:{model}", parent, tags={"mec.kind": "scorecard", "mec.model": model,
                                                                    "mec.spec": rows[0]["spec"]})
        metrics, params = {}, {"spec": rows[0]["spec"], "control": rows[0]["control_kind"], "profile": rows[0]["profile"]}
        for r in rows:
            for which in ("main", "control"):
                c = r[which]
                if c and c["status"] == "scored":
                    pre = r["claim"] if which == "main" else f"control.{r['claim']}"
                    metrics.update({f"{pre}.value": c["value"], f"{pre}.low": c["low"], f"{pre}.high": c["high"]})
            params[f"verdict.{r['claim']}"] = r["main"]["verdict"]
        tracker.log(rid, params=params, metrics=metrics)
        for k in ("md", "json", "png"):
            tracker.log_artifact(rid, Path(paths[k]), "scorecard")
        tracker.log_json(rid, rows, "cells.json")
        tracker.end_run(rid)
        runs[model] = rid
    return runs
