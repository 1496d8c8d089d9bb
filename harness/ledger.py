"""The claim ledger: every registered claim as data, rendered to ``docs/claims.md``.

``python -m harness.ledger`` prints it; ``python -m harness.ledger --write`` rewrites the file
(a test checks that the committed file matches the specs).
"""
from __future__ import annotations

import argparse

from harness.options import REPO_ROOT
from harness.registry import discover

LEDGER_PATH = REPO_ROOT / "docs" / "claims.md"


def _variants(t) -> str:
    return "".join(f" ([{v}] {e})" for v, (e, _) in t.variants.items()) if t is not None else ""


def _controls(spec, tier: str) -> str:
    out = []
    for name, v in spec.declared_controls(tier).items():
        shown = v if isinstance(v, str) else " or ".join(v)
        out.append(f"`{name}` → {shown}")
    return "; ".join(out)


def render() -> str:
    specs = sorted(discover().values(), key=lambda s: s.id)
    lines = ["# Claim ledger", "",
             "Generated from the specs by `python -m harness.ledger --write`; do not edit by hand.", "",
             "| claim | paper | criteria | competence (ci) | controls (ci) | ci | paper tier | lab tier |",
             "|---|---|---|---|---|---|---|---|"]
    for s in specs:
        crit = "; ".join(f"`{c.text()}`" for c in s.criteria)
        ci = s.tiers["ci"]
        paper, lab = s.tiers.get("paper"), s.tiers.get("lab")
        comp = "; ".join(f"`{c.text('ci')}`" for c in s.competence) or "—"
        lines.append(f"| `{s.id}` | {s.paper.key} | {crit} | {comp} | {_controls(s, 'ci')} | expect {ci.expect}{_variants(ci)} | "
                     f"{'expect ' + paper.expect if paper else '—'} | {'expect ' + lab.expect if lab else '—'} |")
    lines += [""]
    for s in specs:
        lines += [f"## `{s.id}`", "", f"> {s.finding}", "",
                  f"- paper: {s.paper.citation}",
                  f"- reported: {s.reported_text}",
                  f"- statistic: {s.statistic} (unit: {s.unit}; α = {s.alpha:g})"]
        for c in s.criteria:
            lines.append(f"- criterion `{c.text()}` — threshold source: {c.source}"
                         + (f"; {c.description}" if c.description else ""))
        for c in s.competence:
            per_tier = ", ".join(f"{c.comparator} {thr:g} at {t}" for t, thr in c.thresholds.items())
            lines.append(f"- competence `{c.name}` of `{c.condition}`: {c.metric}, {per_tier} — source: {c.source}"
                         + (f"; baseline: {c.baseline}" if c.baseline else "")
                         + " (below it the claim is INCONCLUSIVE: model did not learn its task)")
        for name, v in s.controls.items():
            note = s.control_notes.get(name, "")
            lines.append(f"- control `{name}` must get {v}" + (f": {note}" if note else ""))
        for tname, t in s.tiers.items():
            line = f"- tier `{tname}`: expect {t.expect}"
            if t.reason:
                line += f" — {t.reason}"
            for vname, (vexp, vreason) in t.variants.items():
                line += f"; `[{vname}]` expect {vexp}" + (f" — {vreason}" if vreason else "")
            if t.controls:
                line += f" (controls re-declared: {_controls(s, tname)} — {t.controls_reason})"
            if t.data:
                line += f"; needs data: {', '.join(t.data)}"
            lines.append(line)
        for r in s.references:
            lines.append(f"- reference `{r.name}` = {r.value_text()} — source: {r.source}"
                         + (f"; {r.text}" if r.text else "") + " (for comparison, not judged)")
        if s.notes:
            lines.append(f"- notes: {s.notes}")
        lines.append(f"- spec sha256: `{s.sha256()[:16]}…`")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.ledger", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {LEDGER_PATH.relative_to(REPO_ROOT)}")
    args = ap.parse_args(argv)
    text = render()
    if args.write:
        LEDGER_PATH.write_text(text)
        print(f"written: {LEDGER_PATH}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
