"""Representational similarity analysis of pitch height and chroma (our design for Grasse & Tata 2026).

- RDMs: correlation distance (1 - Pearson) between condition means (e.g. one row per MIDI number:
  time-averaged activations averaged over exemplars and timbres).
- Hypothesis RDMs: height |Δ semitones|; chroma min(d, 12 - d) with d = Δ semitones mod 12.
- Statistics on the upper triangles: Spearman, and partial Spearman (ranks, covariate ranks
  regressed out, Pearson of the residuals).
- Permutation tests, vectorised over permutations and layers: height permutes the pitch labels;
  chroma permutes the pitch-class labels *within each octave, independently per octave*, so the
  height RDM (and the model and acoustic RDMs) stay fixed while octave matching is destroyed.
  One-sided (greater), p = (1 + #null >= observed) / (1 + n_perm). FDR (Benjamini-Hochberg) across layers.
- A bootstrap over stimuli (pitches resampled with replacement; pairs of a pitch with its own copy
  dropped) of the best-layer partial chroma difference between two sets of RDMs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from analysis.stats import Estimate, fdr_bh


# --------------------------------------------------------------------------------------------- RDMs
def condition_means(x: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the rows of ``x`` [n, ...] that share a key; returns (sorted unique keys, means [k, ...])."""
    x = np.asarray(x, dtype=np.float64)
    keys = np.asarray(keys)
    if x.shape[0] != keys.shape[0]:
        raise ValueError(f"condition_means: {x.shape[0]} rows but {keys.shape[0]} keys")
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.zeros((uniq.size,) + x.shape[1:])
    np.add.at(sums, inv, x)
    counts = np.bincount(inv, minlength=uniq.size).reshape((-1,) + (1,) * (x.ndim - 1))
    return uniq, sums / counts


def rdm(x: np.ndarray) -> np.ndarray:
    """Correlation-distance RDM(s): x [k, f] -> [k, k], or x [L, k, f] -> [L, k, k].

    Rows with zero variance give distance 1 to every other row (correlation taken as 0).
    """
    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"rdm expects [k, features] or [layers, k, features], got shape {x.shape}")
    z = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    z = np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)
    corr = np.clip(z @ np.swapaxes(z, -1, -2), -1.0, 1.0)
    d = 1.0 - corr
    d = 0.5 * (d + np.swapaxes(d, -1, -2))
    idx = np.arange(d.shape[-1])
    d[:, idx, idx] = 0.0
    return d[0] if squeeze else d


def upper(m: np.ndarray) -> np.ndarray:
    """Upper triangle (k=1) of [k, k] -> [pairs], or of [..., k, k] -> [..., pairs]."""
    k = m.shape[-1]
    i, j = np.triu_indices(k, 1)
    return m[..., i, j]


def height_rdm(midi) -> np.ndarray:
    """|Δ semitones| between conditions."""
    m = np.asarray(midi, dtype=np.float64)
    return np.abs(m[:, None] - m[None, :])


def chroma_rdm(midi) -> np.ndarray:
    """Circular pitch-class distance min(d, 12 - d), d = |Δ semitones| mod 12 (0 on octaves)."""
    m = np.asarray(midi, dtype=np.int64)
    d = np.abs(m[:, None] - m[None, :]) % 12
    return np.minimum(d, 12 - d).astype(np.float64)


# ---------------------------------------------------------------------------------------- statistics
def _ranks(x: np.ndarray) -> np.ndarray:
    return rankdata(np.asarray(x, dtype=np.float64), axis=-1)


def _standardise(x: np.ndarray) -> np.ndarray:
    z = x - x.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(z, axis=-1, keepdims=True)
    return np.divide(z, n, out=np.zeros_like(z), where=n > 0)


def _covariate_basis(covariates, n: int) -> np.ndarray:
    """Orthonormal basis [n, c+1] of the intercept plus the ranked covariates."""
    cols = [np.ones(n)] + [_ranks(c) for c in covariates]
    q, _ = np.linalg.qr(np.stack(cols, axis=1))
    return q


def _residualise(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    return y - (y @ q) @ q.T


def spearman(x, y) -> float:
    """Spearman ρ of two vectors (average ranks for ties)."""
    return float(np.sum(_standardise(_ranks(x)) * _standardise(_ranks(y))))


def partial_spearman(x, y, covariates=()) -> float:
    """Partial Spearman ρ of x and y given covariates (ranks; covariate ranks regressed out of both)."""
    x = np.asarray(x, dtype=np.float64)
    q = _covariate_basis(covariates, x.shape[0])
    rx = _standardise(_residualise(_ranks(x), q))
    ry = _standardise(_residualise(_ranks(y), q))
    return float(np.sum(rx * ry))


def _partial_many(model_vecs: np.ndarray, hyp_vecs: np.ndarray, covariates) -> np.ndarray:
    """Partial Spearman of every model vector [L, p] with every hypothesis vector [P, p] -> [L, P]."""
    q = _covariate_basis(covariates, model_vecs.shape[-1])
    a = _standardise(_residualise(_ranks(model_vecs), q))
    b = _standardise(_residualise(_ranks(hyp_vecs), q))
    return a @ b.T


def _perm_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided p with the +1 correction; observed [L], null [L, P]."""
    return (1.0 + np.sum(null >= observed[:, None] - 1e-12, axis=1)) / (1.0 + null.shape[1])


def height_test(model_rdms: np.ndarray, midi, n_perm: int = 1000, seed: int = 0) -> dict:
    """Spearman ρ of each model RDM with the height RDM, permutation p (pitch labels permuted).

    Parameters
    ----------
    model_rdms : np.ndarray, shape (L, k, k) or (k, k)
    midi : array of int, shape (k,)
        MIDI number of each condition.

    Returns
    -------
    dict with ``rho`` [L], ``p`` [L], ``null`` [L, n_perm].
    """
    model_rdms = np.asarray(model_rdms, dtype=np.float64)
    model_rdms = model_rdms[None] if model_rdms.ndim == 2 else model_rdms
    midi = np.asarray(midi)
    rng = np.random.default_rng(seed)
    mv = _standardise(_ranks(upper(model_rdms)))
    obs = mv @ _standardise(_ranks(upper(height_rdm(midi))))
    perms = rng.permuted(np.tile(np.arange(midi.size), (n_perm, 1)), axis=1)
    mp = midi[perms].astype(np.float64)                                  # [P, k]
    i, j = np.triu_indices(midi.size, 1)
    hyp = np.abs(mp[:, i] - mp[:, j])
    null = mv @ _standardise(_ranks(hyp)).T
    return {"rho": obs, "p": _perm_p(obs, null), "null": null}


def within_octave_permutations(midi, n_perm: int, seed: int = 0) -> np.ndarray:
    """Permuted pitch classes [n_perm, k]: pitch-class labels shuffled within each octave independently."""
    midi = np.asarray(midi, dtype=np.int64)
    pc, octave = midi % 12, midi // 12
    rng = np.random.default_rng(seed)
    out = np.tile(pc, (n_perm, 1))
    for o in np.unique(octave):
        cols = np.flatnonzero(octave == o)
        out[:, cols] = rng.permuted(np.tile(pc[cols], (n_perm, 1)), axis=1)
    return out


def chroma_test(model_rdms: np.ndarray, midi, covariate_rdms=(), n_perm: int = 1000, seed: int = 0,
                alpha: float = 0.05) -> dict:
    """Partial Spearman ρ of each model RDM with the chroma RDM given height and ``covariate_rdms``.

    Height is always a covariate. The null permutes pitch-class labels within octaves.

    Returns
    -------
    dict with ``rho`` [L], ``p`` [L], ``q`` [L] (BH across layers), ``reject`` [L], ``null`` [L, n_perm].
    """
    model_rdms = np.asarray(model_rdms, dtype=np.float64)
    model_rdms = model_rdms[None] if model_rdms.ndim == 2 else model_rdms
    midi = np.asarray(midi, dtype=np.int64)
    covs = [upper(height_rdm(midi))] + [upper(np.asarray(c, dtype=np.float64)) for c in covariate_rdms]
    mv = upper(model_rdms)
    obs = _partial_many(mv, upper(chroma_rdm(midi))[None], covs)[:, 0]
    pcs = within_octave_permutations(midi, n_perm, seed)
    i, j = np.triu_indices(midi.size, 1)
    d = np.abs(pcs[:, i] - pcs[:, j]) % 12
    hyp = np.minimum(d, 12 - d).astype(np.float64)
    null = _partial_many(mv, hyp, covs)
    p = _perm_p(obs, null)
    reject, q = fdr_bh(p, alpha)
    return {"rho": obs, "p": p, "q": np.asarray(q), "reject": np.asarray(reject), "null": null}


@dataclass
class RSAResult:
    """Per-layer RSA of one model (one condition, one seed)."""

    layers: list
    midi: np.ndarray
    rdms: np.ndarray                  # [L, k, k]
    height_rho: np.ndarray
    height_p: np.ndarray
    chroma_rho: np.ndarray            # partial chroma given height
    chroma_p: np.ndarray
    chroma_acoustic_rho: np.ndarray   # partial chroma given height and the acoustic RDM
    chroma_acoustic_p: np.ndarray
    chroma_acoustic_q: np.ndarray
    chroma_acoustic_reject: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def best_chroma_layer(self) -> int:
        return int(np.argmax(self.chroma_acoustic_rho))

    @property
    def best_height_layer(self) -> int:
        return int(np.argmax(self.height_rho))

    def summary(self) -> dict:
        b, h = self.best_chroma_layer, self.best_height_layer
        return {"best_height_layer": self.layers[h], "height_rho": float(self.height_rho[h]),
                "height_p": float(self.height_p[h]), "best_chroma_layer": self.layers[b],
                "chroma_acoustic_rho": float(self.chroma_acoustic_rho[b]),
                "chroma_acoustic_q": float(self.chroma_acoustic_q[b]),
                "chroma_rho_max": float(np.max(self.chroma_rho)),
                "n_fdr_significant": int(np.sum(self.chroma_acoustic_reject))}


def rsa_layers(acts: dict, keys, acoustic: np.ndarray | None = None, n_perm: int = 1000, seed: int = 0,
               alpha: float = 0.05) -> RSAResult:
    """Run the full RSA on per-layer activations.

    Parameters
    ----------
    acts : dict of layer name -> np.ndarray [n, features]
        Time-pooled activations of every stimulus.
    keys : array of int, shape (n,)
        MIDI number of every stimulus (rows sharing a key are averaged: exemplars, timbres).
    acoustic : np.ndarray [k, k], optional
        The acoustic-control RDM over the sorted unique keys (e.g. of the stimuli's log-mel spectra).
    n_perm, seed, alpha
        Permutations, their seed, FDR level.
    """
    layers = list(acts)
    if not layers:
        raise ValueError("rsa_layers: no layers")
    rdms = []
    for name in layers:
        midi, means = condition_means(np.asarray(acts[name]).reshape(len(keys), -1), keys)
        rdms.append(rdm(means))
    rdms = np.stack(rdms)
    h = height_test(rdms, midi, n_perm, seed)
    c = chroma_test(rdms, midi, (), n_perm, seed + 1, alpha)
    ca = chroma_test(rdms, midi, () if acoustic is None else (acoustic,), n_perm, seed + 1, alpha)
    return RSAResult(layers, midi, rdms, h["rho"], h["p"], c["rho"], c["p"], ca["rho"], ca["p"], ca["q"],
                     ca["reject"], meta={"n_perm": n_perm, "seed": seed, "alpha": alpha,
                                          "acoustic_control": acoustic is not None})


def resampled_rhos(rdms: np.ndarray, midi, idx, kind: str = "chroma", covariate_rdms=()) -> np.ndarray:
    """ρ of every RDM [M, k, k] on the stimuli ``idx`` (a resample of 0..k-1; self-pairs dropped).

    ``kind="height"``: Spearman with the height RDM; ``kind="chroma"``: partial Spearman with the
    chroma RDM given height and ``covariate_rdms``.
    """
    rdms = np.asarray(rdms, dtype=np.float64)
    midi = np.asarray(midi)
    idx = np.asarray(idx)
    i, j = np.triu_indices(idx.size, 1)
    keep = idx[i] != idx[j]
    ii, jj = idx[i][keep], idx[j][keep]
    vecs = rdms[:, ii, jj]
    if kind == "height":
        return _partial_many(vecs, height_rdm(midi)[ii, jj][None], ())[:, 0]
    if kind == "chroma":
        covs = [height_rdm(midi)[ii, jj]] + [np.asarray(c, dtype=np.float64)[ii, jj] for c in covariate_rdms]
        return _partial_many(vecs, chroma_rdm(midi)[ii, jj][None], covs)[:, 0]
    raise ValueError(f"kind must be 'height' or 'chroma', got {kind!r}")


def bootstrap_over_stimuli(stat, k: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                           method: str = "") -> Estimate:
    """Percentile bootstrap of ``stat(idx)`` over stimuli (idx = k indices drawn with replacement).

    The point value is ``stat(arange(k))``; ``p`` is the one-sided bootstrap tail (1 + #samples <= 0) / (1 + n_boot).
    """
    value = float(stat(np.arange(k)))
    rng = np.random.default_rng(seed)
    samples = np.array([stat(np.sort(rng.integers(0, k, size=k))) for _ in range(n_boot)], dtype=np.float64)
    lo, hi = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2])
    lo, hi = min(lo, value), max(hi, value)
    p = (1.0 + np.sum(samples <= 0)) / (1.0 + n_boot)
    return Estimate(value=value, low=float(lo), high=float(hi), p=float(p), n=int(k),
                    method=method or f"percentile bootstrap over stimuli ({n_boot})", level=level)


def bootstrap_best_chroma_diff(rdms_a, rdms_b, midi, covariate_rdms=(), n_boot: int = 1000, seed: int = 0,
                               level: float = 0.95) -> Estimate:
    """Bootstrap over stimuli of (best-layer partial chroma ρ of A) - (that of B), averaged over seeds.

    Parameters
    ----------
    rdms_a, rdms_b : np.ndarray, shape (S, L, k, k)
        RDMs of the two models for S seeds and L layers (the best layer is re-selected in every
        resample, so layer selection is part of the interval).
    midi : array of int, shape (k,)
    covariate_rdms : sequence of [k, k]
        Covariates besides height (e.g. the acoustic RDM).
    """
    a = np.asarray(rdms_a, dtype=np.float64)
    b = np.asarray(rdms_b, dtype=np.float64)
    k = np.asarray(midi).size
    stack = np.concatenate([a.reshape(-1, k, k), b.reshape(-1, k, k)])
    n_a = a.shape[0] * a.shape[1]

    def stat(idx):
        rho = resampled_rhos(stack, midi, idx, "chroma", covariate_rdms)
        return rho[:n_a].reshape(a.shape[:2]).max(1).mean() - rho[n_a:].reshape(b.shape[:2]).max(1).mean()

    return bootstrap_over_stimuli(stat, k, n_boot, seed, level,
                                  f"percentile bootstrap over stimuli ({n_boot}), best layer re-selected")


# ------------------------------------------------------------------------------------------- figures
def plot_rdm(m: np.ndarray, midi, title: str = ""):
    """Heat map of one RDM with MIDI tick labels; returns a matplotlib Figure."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(m, cmap="viridis")
    midi = np.asarray(midi)
    ticks = np.flatnonzero(midi % 12 == 0)
    ax.set_xticks(ticks, [f"C{int(midi[t]) // 12 - 1}" for t in ticks])
    ax.set_yticks(ticks, [f"C{int(midi[t]) // 12 - 1}" for t in ticks])
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="1 - Pearson r")
    fig.tight_layout()
    return fig


def plot_layer_profiles(results: dict, title: str = ""):
    """ρ against layer for height and partial chroma (given height + acoustic) per condition.

    Parameters
    ----------
    results : dict of condition name -> RSAResult or list of RSAResult (seeds; mean plotted, range shaded)
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    for name, res in results.items():
        res = res if isinstance(res, (list, tuple)) else [res]
        for ax, attr in zip(axes, ("height_rho", "chroma_acoustic_rho")):
            y = np.stack([getattr(r, attr) for r in res])
            x = np.arange(y.shape[1])
            line, = ax.plot(x, y.mean(0), marker="o", label=name)
            if y.shape[0] > 1:
                ax.fill_between(x, y.min(0), y.max(0), alpha=0.2, color=line.get_color())
    axes[0].set_title("height ρ")
    axes[1].set_title("partial chroma ρ | height, acoustic")
    for ax in axes:
        ax.set_xlabel("layer")
        ax.axhline(0, color="k", lw=0.5)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
