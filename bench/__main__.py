"""Benchmarks: ``python -m bench [--only NAME ...] [--with-claims] [--threads N]``.

Prints a table (what, measured, unit, target, ok) and writes ``reports/bench.json``. Each row
comes from a small function in :mod:`bench.rows`; the speed and memory targets of the issues are
shown here, not asserted in timed tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from bench import rows as R

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of: {', '.join(R.BENCHES)} (default: all but {', '.join(R.SLOW_BENCHES)})")
    ap.add_argument("--with-claims", action="store_true",
                    help="also time the ci claims: each paper cold (own empty cache, 2 workers), then all warm")
    ap.add_argument("--claims-k", default="", help="-k expression for --with-claims, e.g. kong2025 (default: each paper in turn)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: 'one core')")
    ap.add_argument("--out", default=str(REPO / "reports" / "bench.json"))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    names = args.only or [n for n in R.BENCHES if n not in R.SLOW_BENCHES]
    unknown = [n for n in names if n not in R.BENCHES and n != "claims"]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(R.BENCHES)}",
              file=sys.stderr)
        return 2
    results = []
    for name in names:
        if name == "claims":
            continue
        t0 = time.perf_counter()
        try:
            got = R.BENCHES[name]()
        except ImportError as e:  # a part not built yet: say so, do not hide it
            got = [R.row(name, None, "", note=f"not available: {e}")]
        for r in got:
            r["bench"] = name
            r["bench_seconds"] = round(time.perf_counter() - t0, 2)
        results += got
        for r in got:
            print(R.format_row(r), flush=True)
    if args.with_claims or (args.only and "claims" in args.only):
        got = R.claims_cold_warm(args.claims_k)
        results += got
        for r in got:
            print(R.format_row(r), flush=True)
    print()
    print(R.table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "threads": args.threads,
            "torch": torch.__version__, "cpu_count": __import__("os").cpu_count(),
            "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    out.write_text(json.dumps({"meta": meta, "rows": results}, indent=2, default=str))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
