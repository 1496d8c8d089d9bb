"""Figures of the Kong et al. 2025 claims (matplotlib, Agg backend)."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def attention_maps_with_onsets(maps: np.ndarray, onsets_s: np.ndarray, hop_s: float, novelty: np.ndarray):
    """Head-averaged attention per layer (sequence part) with true onsets, and the novelty curves.

    Parameters
    ----------
    maps : np.ndarray [layers, heads, 1 + T, 1 + T]
        Attention of one window.
    onsets_s : np.ndarray
        True onsets within the window (seconds from the window start).
    hop_s : float
    novelty : np.ndarray [layers, T]
    """
    plt = _plt()
    n_layers, _, t1, _ = maps.shape
    t = t1 - 1
    fig, axes = plt.subplots(2, n_layers, figsize=(3.2 * n_layers, 6), squeeze=False)
    ext = [0, t * hop_s, t * hop_s, 0]
    for layer in range(n_layers):
        ax = axes[0, layer]
        ax.imshow(maps[layer].mean(0)[1:, 1:], aspect="auto", extent=ext, cmap="magma")
        for o in onsets_s:
            ax.axvline(o, color="c", lw=0.6, alpha=0.8)
        ax.set(title=f"layer {layer + 1}: attention (key →)", xlabel="key time (s)", ylabel="query time (s)")
        ax = axes[1, layer]
        ax.plot(np.arange(t) * hop_s, novelty[layer], lw=0.8)
        for o in onsets_s:
            ax.axvline(o, color="c", lw=0.6, alpha=0.8)
        ax.set(xlabel="time (s)", ylabel="novelty", title="received-attention novelty")
    fig.tight_layout()
    return fig


def ssm_panels(layer_ssms: np.ndarray, ref_ssms: dict, hop_s: float, chord_changes_s=()):
    """Per-layer SSMs of one track beside the reference SSMs, with chord changes marked."""
    plt = _plt()
    n_layers = layer_ssms.shape[0]
    n = n_layers + len(ref_ssms)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    t = layer_ssms.shape[-1] * hop_s
    panels = [(f"layer {i + 1}", layer_ssms[i]) for i in range(n_layers)] + list(ref_ssms.items())
    for ax, (name, m) in zip(axes[0], panels):
        ax.imshow(m, extent=[0, t, t, 0], cmap="viridis")
        for c in chord_changes_s:
            ax.axvline(c, color="w", lw=0.4, alpha=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def profile_plot(profiles: np.ndarray, ref_names, random_profiles: np.ndarray | None = None):
    """SSM correlation against layer for each reference (trained solid, random-init dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    layers = np.arange(1, profiles.shape[0] + 1)
    for j, name in enumerate(ref_names):
        line, = ax.plot(layers, profiles[:, j], "o-", label=name)
        if random_profiles is not None:
            ax.plot(layers, random_profiles[:, j], "--", color=line.get_color(), alpha=0.6)
    ax.set(xlabel="layer", ylabel="mean SSM correlation", title="layer SSM vs references (dashed: random init)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
