"""Claim reports: ``reports/<session>/claims.{json,md}``, ``reports/latest/``, the terminal table.

Also ``python -m harness.report [--session ID] [--mlflow-uri URI] [--tier ci]`` rebuilds the report of
a session from the MLflow store alone.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from harness.spec import TIERS

COLUMNS = ("claim", "paper value", "our value [interval]", "threshold", "verdict", "expected", "competence",
           "controls")


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    try:
        return f"{float(x):.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def _claim_name(row: dict) -> str:
    return row["claim_id"] + (f"[{row['variant']}]" if row.get("variant") else "")


def _cells(row: dict) -> list[str]:
    if row["verdict"] == "SKIPPED":
        value = "skipped: " + row.get("skip_reason", "")[:60]
    elif row["verdict"] == "ERROR":
        value = "error: " + row.get("error", "")[:60]
    else:
        value = f"{_fmt(row['value'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
    thr = f"{row['comparator']} {_fmt(row['threshold'])}"
    controls = ", ".join(f"{k}={v}" for k, v in (row.get("controls") or {}).items()) or "—"
    if row.get("control_mismatches"):
        controls += "  (MISMATCH)"
    mark = {"passed": "", "xfailed": " (declared)", "failed": " ✗", "xpassed-strict": " ✗ unexpected",
            "error": " ✗", "skipped": ""}.get(row.get("outcome", ""), "")
    reported = row.get("reported") or "—"
    return [_claim_name(row), reported[:38], value, thr, row["verdict"] + mark, str(row.get("expected")),
            _competence_cell(row), controls]


def _competence_cell(row: dict) -> str:
    """``met``, ``undertrained`` or ``—`` (no trained condition declared, or no verdict)."""
    if row.get("competent") is None:
        return "—"
    return "met" if row["competent"] else "undertrained"


def _competence_lines(row: dict) -> list[str]:
    out = []
    for c in row.get("competence") or []:
        out.append(f"`{c['name']}` ({c['condition']}) = {_fmt(c['value'])} [{_fmt(c['low'])}, {_fmt(c['high'])}] "
                   f"{c['comparator']} {c['threshold']:g} → {'met' if c['met'] else 'NOT met'}"
                   + (f"; trained in {c['training_s']:.0f} s" if c.get("training_s") is not None else "")
                   + (f"; baseline: {c['baseline']}" if c.get("baseline") else ""))
    return out


def terminal_table(rows: list[dict]) -> list[str]:
    """Fixed-width lines: claim, paper value, our value [interval], threshold, verdict, controls."""
    body = [_cells(r) for r in sorted(rows, key=lambda r: (r["claim_id"], r.get("variant", "")))]
    widths = [max(len(c) for c in col) for col in zip(COLUMNS, *body)]
    widths = [min(w, 60) for w in widths]
    line = lambda cells: "  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(COLUMNS), line(["-" * w for w in widths])]
    out += [line(c) for c in body]
    counts = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    out.append("")
    under = [r for r in rows if r.get("inconclusive_reason")]
    for r in sorted(under, key=lambda r: (r["claim_id"], r.get("variant", ""))):
        out.append(f"undertrained: {_claim_name(r)}: {r['inconclusive_reason']} "
                   f"(measured verdict {r.get('measured_verdict')})")
    if under:
        out.append("")
    out.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) +
               f"; controls mismatched: {sum(bool(r.get('control_mismatches')) for r in rows)}; "
               f"undertrained: {len(under)}")
    hits = sum(r.get("cache_hits", 0) for r in rows)
    misses = sum(r.get("cache_misses", 0) for r in rows)
    out.append(f"cache: {hits} hits, {misses} misses (built); claim time {sum(r.get('seconds') or 0 for r in rows):.0f} s")
    for r in sorted(rows, key=lambda r: (r["claim_id"], r.get("variant", ""))):
        if r.get("data_manifests"):
            out.append(f"  data of {_claim_name(r)}: {manifests_text(r['data_manifests'])}")
    return out


def manifests_text(manifests, detail: bool = False) -> str:
    """A claim's data manifests as the report shows them: ``natsound165 cb009d40522c, corpus 1f0e...``;
    with ``detail``, each also with its file count, size and folder when known."""
    parts = []
    for m in manifests or ():
        text = f"{m['name']} {str(m['hash'])[:12]}"
        if detail:
            extra = [f"{m['n_files']} files" if m.get("n_files") else None,
                     f"{m['bytes'] / 1e6:.1f} MB" if m.get("bytes") else None, m.get("root")]
            extra = [e for e in extra if e]
            text = f"`{m['name']}` `{str(m['hash'])[:12]}`" + (f" ({', '.join(extra)})" if extra else "")
        parts.append(text)
    return ", ".join(parts) or "none"


def markdown(rows: list[dict], meta: dict) -> str:
    tier = meta.get("tier", "?")
    kind = {"paper": "a replication at the paper's sizes",
            "lab": "a replication on open datasets at sizes for one GPU (the lab tier)"}.get(
        tier, "a smoke test on embedded corpora and reduced models: NOT a replication")
    lines = [f"# Claims report: `{tier}` tier", "",
             f"This run is {kind}.", ""]
    overridden = sorted({json.dumps(r["settings_overridden"], sort_keys=True) for r in rows
                         if r.get("settings_overridden")})
    if overridden:
        lines += [f"**Settings overridden by `--set`: {', '.join(overridden)}**: not the tier's declared settings.", ""]
    lines += [f"- session: `{meta.get('session_id', '?')}`",
              f"- git commit: `{meta.get('git_commit', '?')}`",
              f"- device: `{meta.get('device', '?')}`",
              *([f"- estimated before training: {meta['estimate']['total_h']:.2f} h on "
                 f"{meta['estimate']['device']} (one GPU: {meta['estimate'].get('one_gpu_total_h', '?')} h; "
                 f"`estimate.json`)"] if meta.get("estimate") else []),
              f"- written: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", "",
              "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in sorted(rows, key=lambda r: (r["claim_id"], r.get("variant", ""))):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    lines += ["", "## Details", ""]
    for r in sorted(rows, key=lambda r: (r["claim_id"], r.get("variant", ""))):
        lines.append(f"### {_claim_name(r)}: {r['verdict']}")
        lines.append("")
        lines.append(f"- statistic: {r.get('statistic')}; unit: {r.get('unit', '—')}")
        lines.append(f"- paper: {r.get('reported')}; threshold source: {r.get('threshold_source', '—')}")
        if r.get("expected") and r["expected"] != "PASS":
            lines.append(f"- declared non-replication at this tier: {r.get('expected_reason', '')}")
        for stat, d in (r.get("criteria") or {}).items():
            e = d["estimate"]
            lines.append(f"- `{stat}` = {_fmt(e['value'])} [{_fmt(e['low'])}, {_fmt(e['high'])}]"
                         f"{' p=' + _fmt(e['p']) if e.get('p') is not None else ''} "
                         f"{d['comparator']} {d['threshold']:g} → {d['verdict']} ({e.get('method', '')})")
        for c in _competence_lines(r):
            lines.append(f"- competence {c}")
        if r.get("inconclusive_reason"):
            lines.append(f"- **INCONCLUSIVE: {r['inconclusive_reason']}** (measured verdict "
                         f"{r.get('measured_verdict')})")
        for name, v in (r.get("controls") or {}).items():
            lines.append(f"- control `{name}`: {v}")
        if r.get("controls_redeclared"):
            red = {k: v for k, v in r["controls_redeclared"].items() if k != "reason"}
            lines.append(f"- controls re-declared at this tier: {red} ({r['controls_redeclared'].get('reason', '')})")
        for m in r.get("control_mismatches") or []:
            lines.append(f"- **{m}**")
        if r.get("skip_reason"):
            lines.append(f"- skipped: {r['skip_reason']}")
        if r.get("error"):
            lines.append(f"- error: {r['error']}")
        if "cache_hits" in r or r.get("data_manifests"):
            lines.append(f"- cache: {r.get('cache_hits', 0)} hits, {r.get('cache_misses', 0)} misses; data: "
                         f"{manifests_text(r.get('data_manifests'), detail=True)}")
        lines.append(f"- spec sha256 `{r.get('spec_sha256', '')[:16]}…`, MLflow run `{r.get('mlflow_run_id')}`, "
                     f"{_fmt(r.get('seconds'))} s")
        for fig in r.get("figures") or []:
            lines.append(f"- figure: `{fig}`")
        lines.append("")
    return "\n".join(lines)


def write_reports(rows: list[dict], st: dict) -> dict:
    """Write claims.json and claims.md for the session and copy them to ``latest/``."""
    from harness.plugin import git_commit

    root = Path(st["report_root"])
    session_dir = root / st["session_id"][:12]
    session_dir.mkdir(parents=True, exist_ok=True)
    meta = {"session_id": st["session_id"], "tier": st["tier"], "device": str(st["device"]),
            "git_commit": git_commit(), "mlflow_uri": st["mlflow_uri"], "cache_root": str(st["cache"].root),
            "seconds": round(time.time() - st["t0"], 1)}
    if st.get("estimate") is not None:
        gpu = st.get("gpu_estimate") or st["estimate"]
        meta["estimate"] = {"device": st["estimate"]["device"], "total_h": st["estimate"]["total_h"],
                            "papers_h": {k: v["hours"] for k, v in st["estimate"]["papers"].items()},
                            "one_gpu_total_h": gpu["total_h"],
                            "one_gpu_papers_h": {k: v["hours"] for k, v in gpu["papers"].items()}}
    payload = {"meta": meta, "claims": sorted(rows, key=lambda r: (r["claim_id"], r.get("variant", "")))}
    _atomic_write(session_dir / "claims.json", json.dumps(payload, indent=2, default=str))
    _atomic_write(session_dir / "claims.md", markdown(rows, meta))
    latest = root / "latest"
    tmp = root / f".latest-{st['session_id'][:12]}"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(session_dir, tmp)
    if latest.exists():
        shutil.rmtree(latest)
    tmp.rename(latest)
    return {"json": latest / "claims.json", "md": latest / "claims.md", "session_dir": session_dir, "meta": meta}


def finalise_session_run(rows: list[dict], st: dict, paths: dict) -> None:
    """Attach the reports to the session's parent run and close it."""
    from harness.plugin import session_tags
    from harness.tracking import Tracker

    tracker = Tracker(st["mlflow_uri"], st["tier"])
    run_id = tracker.session_run(st["session_id"], session_tags(st))
    counts = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    tracker.log(run_id, metrics={f"n_{k.lower()}": v for k, v in counts.items()},
                tags={"mec.n_claims": len(rows), "mec.verdicts": json.dumps(counts)})
    tracker.log_artifact(run_id, paths["session_dir"] / "claims.json", "report")
    tracker.log_artifact(run_id, paths["session_dir"] / "claims.md", "report")
    ok = all(r.get("outcome") in ("passed", "xfailed", "skipped") for r in rows)
    tracker.end_run(run_id, "FINISHED" if ok else "FAILED")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _row_of_run(client, run) -> dict:
    """The report row a claim run logged (``values.json``), or a stub from its tags."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as d:
            path = client.download_artifacts(run.info.run_id, "values.json", d)
            row = json.loads(Path(path).read_text())["row"]
    except Exception:  # noqa: BLE001 - a run that died before concluding
        tags = run.data.tags
        row = {"claim_id": tags.get("mec.claim_id", "?"), "variant": tags.get("mec.variant", ""),
               "paper": tags.get("mec.paper"), "verdict": tags.get("mec.verdict", "ERROR"), "value": None,
               "ci_low": None, "ci_high": None, "comparator": "?", "threshold": None, "expected": None,
               "controls": {}, "outcome": "error", "reported": None, "mlflow_run_id": run.info.run_id,
               "error": tags.get("mec.error", f"the run ended {run.info.status} without a logged verdict")}
    row["mlflow_run_id"] = run.info.run_id
    row["_start_time"] = run.info.start_time
    return row


def merge_claim_rows(rows: list[dict]) -> list[dict]:
    """One row per claim (id and variant): a concluded verdict beats ERROR/RUNNING, then the latest run.

    A claim rerun in the same session (a shard restarted after a crash, a retried worker) leaves
    several claim runs; the report lists the claim once, with ``attempts`` counting its runs.
    """
    by_key: dict[tuple, list[dict]] = {}
    for r in rows:
        by_key.setdefault((r["claim_id"], r.get("variant", "")), []).append(r)
    out = []
    for key, group in by_key.items():
        concluded = lambda r: r.get("verdict") not in ("ERROR", "RUNNING", None)
        best = max(group, key=lambda r: (concluded(r), r.get("_start_time") or 0))
        best = {k: v for k, v in best.items() if k != "_start_time"}
        best["attempts"] = len(group)
        out.append(best)
    return sorted(out, key=lambda r: (r["claim_id"], r.get("variant", "")))


def rows_from_mlflow(uri: str, tier: str, session: str | None) -> tuple[str, list[dict]]:
    """Rebuild report rows from the tracking store alone (the claim runs' ``values.json``).

    Merges every session-level run tagged with the session id (shards on several machines,
    or a duplicate left by a race) and lists each claim once (:func:`merge_claim_rows`).
    """
    import os

    from harness.errors import UserError
    from harness.tracking import Tracker

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per claim otherwise
    tr = Tracker(uri, tier)
    client = tr.client
    exp = tr.experiment_id
    if session is None:
        found = tr._call(client.search_runs, [exp], "tags.`mec.level` = 'session'", max_results=1,
                         order_by=["attributes.start_time DESC"])
        if not found:
            raise UserError(f"no session runs in {uri} for tier {tier}; run the claims first or pass --tier")
        session = found[0].data.tags["mec.session_id"]
    from harness.options import validate_session_id

    validate_session_id(session)
    if not tr.session_runs(session):
        raise UserError(f"session {session} not found in {uri} (tier {tier}); check --session, --tier "
                        f"and --mlflow-uri")
    runs = tr.claim_runs(session)
    return session, merge_claim_rows([tr._call(_row_of_run, client, run) for run in runs])


def main(argv=None) -> int:
    import os

    from harness.options import DEFAULT_MLFLOW_URI, resolve_mlflow_uri

    ap = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.splitlines()[0])
    ap.add_argument("--mlflow-uri", default=os.environ.get("MEC_MLFLOW_URI", DEFAULT_MLFLOW_URI))
    ap.add_argument("--tier", default=os.environ.get("MEC_TIER", "ci"), choices=TIERS)
    ap.add_argument("--session", default=os.environ.get("MEC_SESSION_ID") or None,
                    help="session id (default: $MEC_SESSION_ID, else the latest session)")
    ap.add_argument("--out", default=None, help="also write claims.json and claims.md into this folder")
    args = ap.parse_args(argv)
    from harness.errors import UserError

    try:
        session, rows = rows_from_mlflow(resolve_mlflow_uri(args.mlflow_uri), args.tier, args.session)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in terminal_table(rows):
        print(line)
    reruns = sum(r.get("attempts", 1) - 1 for r in rows)
    print(f"\nsession {session}: {len(rows)} claims" + (f" ({reruns} reruns merged)" if reruns else ""))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"session_id": session, "tier": args.tier, "mlflow_uri": args.mlflow_uri, "source": "mlflow"}
        _atomic_write(out / "claims.json", json.dumps({"meta": meta, "claims": rows}, indent=2, default=str))
        _atomic_write(out / "claims.md", markdown(rows, meta))
        print(f"report: {out / 'claims.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
