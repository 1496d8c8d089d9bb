"""Time estimates of a claim session, from the selected claims' settings and data sizes.

Printed (and logged: MLflow session tags, ``estimate.json`` beside the report, the ``mec.budget``
logger) after collection, before any claim trains. Each paper registers an estimator
(:func:`register`) that turns one claim's settings into :class:`Work` items: a network trained, a
corpus decoded, an analysis run. Work shared by several claims (the same network, cached once)
carries the same ``key`` and is counted once.

The seconds of a work item on a device are ``flops / rate + steps * step_overhead + host_s``:
device FLOPs (forward and backward passes, from each model's analytic count:
:func:`models.kim_cnn.forward_flops`, :func:`models.ssl_audio.forward_flops`,
:func:`models.vit1d.forward_flops`), a per-optimiser-step overhead, and host seconds that no
device speeds up (decoding audio, CPU-side statistics). The rates are :data:`RATES`, each with its
source: an estimate, not a measurement of the run it precedes.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

log = logging.getLogger("mec.budget")

#: The lab tier's budget (issue 16): every claim on one recent GPU.
LAB_BUDGET_S = 6 * 3600.0
#: A backward pass costs about twice the forward pass: one training step = 3 forward passes.
TRAIN_FACTOR = 3.0
#: Audio decoding and resampling (libsndfile / torchaudio, one process), in seconds of audio per second:
#: measured here on 10-s 44.1-kHz WAV, FLAC and MP3 files read to 16 and 22.05 kHz (235-339x, 2026-12-07).
DECODE_X_REALTIME = 250.0
#: Host seconds of a paper's imports and start-up in one process (measured here: transformers' import ~10 s).
STARTUP_S = 20.0


@dataclass(frozen=True)
class DeviceRate:
    """How fast a device runs this suite's small models."""

    name: str
    flops_per_s: float
    step_overhead_s: float
    source: str


RATES = {
    "cuda": DeviceRate(
        "one recent GPU (H100-class)", 60e12, 8e-3,
        "assumed, not measured here: 60 TFLOP/s sustained, about 6 % of an H100's dense bf16 peak (989 TFLOP/s), "
        "what small convolutional and transformer models at batch 8-128 under AMP typically reach; plus 8 ms per "
        "optimiser step (kernel launches, optimiser, host-side batch assembly and masking)"),
    "cpu": DeviceRate(
        "the CPU", 60e9, 2e-3,
        "measured on the 2-core CI machine: the Kim CNN at 1/4 width trains 567 two-second clips/s (README "
        "benchmarks), 3 x 39 MFLOP per clip = 66 GFLOP/s; plus 2 ms per optimiser step"),
}


@dataclass(frozen=True)
class Work:
    """One unit of work of a session (counted once per ``key``).

    Parameters
    ----------
    key : str
        Identity of the work: two claims whose work has the same key share it (the cache builds it once).
    what : str
        In words, for the printed estimate.
    flops : float
        Device FLOPs (training steps count :data:`TRAIN_FACTOR` forward passes).
    steps : int
        Optimiser steps (each costs the device's ``step_overhead_s``).
    host_s : float
        Seconds no device speeds up (decoding audio, CPU statistics).
    """

    key: str
    what: str
    flops: float = 0.0
    steps: int = 0
    host_s: float = 0.0

    def seconds(self, rate: DeviceRate) -> float:
        return self.flops / rate.flops_per_s + self.steps * rate.step_overhead_s + self.host_s


#: paper key -> estimator(claim_id, variant, tier, settings, data) -> iterable of Work (``data``: the session's
#: harness.options.DataRoots or None; an estimator counts the datasets it finds there, else assumes their full size)
ESTIMATORS: dict[str, Callable] = {}


def register(paper: str, estimator: Callable) -> None:
    """Declare the estimator of a paper's claims (called by the paper's conditions module)."""
    ESTIMATORS[paper] = estimator


def counted(fn: Callable) -> Callable:
    """Memoise a dataset-counting function by its arguments (it runs once per session, not once per claim)."""
    memo: dict = {}

    def wrapper(*args):
        key = tuple(str(a) for a in args)
        if key not in memo:
            memo[key] = fn(*args)
        return memo[key]

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


def count_files(root, *patterns) -> int:
    """Files under ``root`` matching any of the glob ``patterns`` (0 when ``root`` is None or absent)."""
    from pathlib import Path

    if root is None or not Path(root).is_dir():
        return 0
    return len({p for pat in patterns for p in Path(root).glob(pat)})


def decode_seconds(audio_s: float) -> float:
    """Host seconds to decode and resample ``audio_s`` seconds of audio (:data:`DECODE_X_REALTIME`)."""
    return float(audio_s) / DECODE_X_REALTIME


def rate_for(device_type: str) -> DeviceRate:
    return RATES["cuda" if str(device_type).startswith("cuda") else "cpu"]


def estimate(selection: Iterable, tier: str, device_type: str, data=None) -> dict:
    """The estimated seconds of the selected claims at ``tier`` on ``device_type``.

    Parameters
    ----------
    selection : iterable of (Claim, variant, settings)
        The selected claims with their effective settings (the tier's, after ``--seeds`` and ``--set``).
    tier : str
    device_type : str
        ``"cuda"`` or ``"cpu"`` (the session's device).
    data : harness.options.DataRoots, optional
        Where the datasets are: estimators count what they find (clips, hours), else assume the full datasets.

    Returns
    -------
    dict
        ``tier``, ``device`` (type and name), ``rate`` (:class:`DeviceRate` as a dict), ``papers``
        (paper key -> ``seconds``, ``hours``, ``claims``, ``work`` [what, seconds]), ``total_s``,
        ``total_h``, ``budget_s`` (the lab tier's 6 h on a GPU, else None), ``within_budget`` and
        ``unestimated`` (claims whose paper has no estimator).
    """
    rate = rate_for(device_type)
    work: dict[str, dict[str, Work]] = {}
    claims: dict[str, list] = {}
    missing = []
    for spec, variant, settings in selection:
        fn = ESTIMATORS.get(spec.paper.key)
        name = spec.id + (f"[{variant}]" if variant else "")
        if fn is None:
            missing.append(name)
            continue
        items = list(fn(spec.id, variant, tier, dict(settings), data) or ())
        claims.setdefault(spec.paper.key, []).append(name)
        for w in items:
            work.setdefault(spec.paper.key, {}).setdefault(w.key, w)
    for paper in work:  # per paper in one process: its imports (torch, transformers, librosa) and start-up
        work[paper].setdefault("startup", Work("startup", "imports and start-up", host_s=STARTUP_S))
    papers = {}
    for paper, items in work.items():
        rows = [{"what": w.what, "seconds": round(w.seconds(rate), 1), "flops": w.flops, "steps": w.steps,
                 "host_s": round(w.host_s, 1)} for w in items.values()]
        secs = sum(r["seconds"] for r in rows)
        papers[paper] = {"seconds": round(secs, 1), "hours": round(secs / 3600, 2), "claims": claims[paper],
                         "work": rows}
    total = sum(p["seconds"] for p in papers.values())
    on_gpu = rate is RATES["cuda"]
    budget = LAB_BUDGET_S if tier == "lab" and on_gpu else None
    return {"tier": tier, "device": str(device_type), "rate": asdict(rate), "papers": papers,
            "total_s": round(total, 1), "total_h": round(total / 3600, 2), "budget_s": budget,
            "within_budget": None if budget is None else total <= budget, "unestimated": missing}


def gpu_estimate(selection: Iterable, tier: str, data=None) -> dict:
    """:func:`estimate` on one recent GPU, whatever the session's device (what the README's table states)."""
    return estimate(selection, tier, "cuda", data)


def lines(est: dict, gpu: dict | None = None) -> list[str]:
    """The estimate as terminal lines: one per paper and a total, with the rate's source."""
    out = [f"time estimate, {est['tier']} tier on {est['rate']['name']} ({est['device']}), before any training:"]
    for paper, p in est["papers"].items():
        g = f"; on one GPU {duration(gpu['papers'][paper]['seconds'])}" if gpu and paper in gpu["papers"] else ""
        out.append(f"  {paper}: {duration(p['seconds'])} for {len(p['claims'])} claim tests{g}")
        for w in sorted(p["work"], key=lambda r: -r["seconds"])[:4]:
            out.append(f"      {w['seconds']:>9.0f} s  {w['what']}")
    tail = f"  total: {duration(est['total_s'])}"
    if est["budget_s"]:
        tail += (f" (budget {est['budget_s'] / 3600:.0f} h on one GPU: "
                 f"{'within' if est['within_budget'] else 'OVER'})")
    if gpu is not None and gpu is not est:
        tail += f"; on one GPU: {duration(gpu['total_s'])}"
    out.append(tail)
    if est["unestimated"]:
        out.append(f"  not estimated: {', '.join(est['unestimated'][:5])}")
    out.append(f"  rate: {est['rate']['source']}")
    return out


def duration(seconds: float) -> str:
    """``"2.41 h (8676 s)"``, or ``"95 s"`` under six minutes."""
    return f"{seconds / 3600:.2f} h ({seconds:.0f} s)" if seconds >= 360 else f"{seconds:.0f} s"


def to_json(est: dict) -> str:
    return json.dumps(est, sort_keys=True, default=str)
