"""ViT-1D: a transformer over mel-spectrogram frames (Kong et al. 2025).

One token per time frame (all mel bins of the frame, linearly embedded), fixed sinusoidal positional
encoding, a learnable class token, and a standard pre-norm transformer encoder. The encoder returns
the per-layer tokens and, when asked, the per-layer attention maps.

Attention runs through ``F.scaled_dot_product_attention`` (the fast path) unless weights are
requested, in which case it is computed explicitly so the softmax weights can be returned.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.errors import UserError


@dataclass(frozen=True)
class ViT1DConfig:
    """Shape of a ViT-1D.

    Attributes
    ----------
    n_mels : int
        Mel bins per input frame (the token input size).
    dim : int
        Token width.
    depth : int
        Number of transformer blocks.
    n_heads : int
        Attention heads per block; must divide ``dim``.
    mlp_ratio : float
        Hidden width of the feed-forward block relative to ``dim``.
    dropout : float
        Dropout in attention output and MLP (0 for the ci tier).
    """

    n_mels: int = 64
    dim: int = 64
    depth: int = 4
    n_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ViT1DOutput:
    """Everything the analyses need from one forward pass.

    Attributes
    ----------
    cls : Tensor [batch, dim]
        Final class token (after the final LayerNorm). The contrastive loss sees only this.
    sequence : Tensor [batch, frames, dim]
        Final sequence tokens (after the final LayerNorm).
    hidden : list of Tensor [batch, 1 + frames, dim]
        Residual stream after the embedding (index 0) and after every block (1..depth); index 0 of
        the token axis is the class token.
    attentions : list of Tensor [batch, heads, 1 + frames, 1 + frames] or None
        Softmax attention weights of every block (rows = queries), only when requested.
    """

    cls: torch.Tensor
    sequence: torch.Tensor
    hidden: list
    attentions: list | None


def sinusoidal_positions(n_positions: int, dim: int, device=None) -> torch.Tensor:
    """Fixed sinusoidal positional encoding (Vaswani et al. 2017), shape [n_positions, dim]."""
    position = torch.arange(n_positions, dtype=torch.float32, device=device)[:, None]
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=device) / max(half, 1))
    angles = position * freq[None, :]
    enc = torch.zeros(n_positions, dim, device=device)
    enc[:, 0 : 2 * half : 2] = torch.sin(angles)
    enc[:, 1 : 2 * half : 2] = torch.cos(angles)
    return enc


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention that returns its weights only when asked.

    Parameters
    ----------
    dim : int
        Token width.
    n_heads : int
        Number of heads; must divide ``dim``.
    dropout : float
        Dropout on the output projection.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads != 0:
            raise UserError(f"ViT-1D dim={dim} is not divisible by n_heads={n_heads}; choose heads that divide the width")
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        """Attend over ``x`` [batch, tokens, dim]; return (output, weights or None)."""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [b, h, t, hd]
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            weights = scores.softmax(dim=-1)
            out = weights @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, t, d)
        return self.drop(self.proj(out)), weights


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, n_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, w = self.attn(self.norm1(x), need_weights=need_weights)
        x = x + a
        x = x + self.mlp(self.norm2(x))
        return x, w


class ViT1D(nn.Module):
    """ViT with one-dimensional (one-frame) patches over a log-mel spectrogram.

    Parameters
    ----------
    config : ViT1DConfig
        Shape (depth, width, heads are tier settings).

    Notes
    -----
    Inputs are log-mel frames ``[batch, frames, n_mels]``. They are standardised per mel bin with
    the buffers ``input_mean``/``input_std`` (set with :meth:`set_input_stats`, identity by default),
    so trained and random-init models see identically scaled inputs.
    """

    def __init__(self, config: ViT1DConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.n_mels, config.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            EncoderBlock(config.dim, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.register_buffer("input_mean", torch.zeros(config.n_mels))
        self.register_buffer("input_std", torch.ones(config.n_mels))

    def set_input_stats(self, mean, std) -> None:
        """Set the per-bin standardisation of the log-mel input (arrays of length ``n_mels``)."""
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32).clamp_min(1e-6)
        if mean.shape != self.input_mean.shape or std.shape != self.input_std.shape:
            raise UserError(f"input stats must have {self.config.n_mels} values (one per mel bin); got {tuple(mean.shape)}")
        self.input_mean.copy_(mean.to(self.input_mean.device))
        self.input_std.copy_(std.to(self.input_std.device))

    def forward(self, mel: torch.Tensor, need_weights: bool = False) -> ViT1DOutput:
        """Encode log-mel frames.

        Parameters
        ----------
        mel : Tensor [batch, frames, n_mels]
            Log-mel frames (time-major).
        need_weights : bool
            Return the attention weights of every block (slower explicit attention).

        Returns
        -------
        ViT1DOutput
        """
        if mel.ndim != 3 or mel.shape[-1] != self.config.n_mels:
            raise UserError(
                f"ViT-1D input must be [batch, frames, {self.config.n_mels}] log-mel frames; got shape {tuple(mel.shape)}"
            )
        b, t, _ = mel.shape
        x = self.embed((mel - self.input_mean) / self.input_std)
        x = x + sinusoidal_positions(t, self.config.dim, device=x.device)[None]
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        hidden = [x]
        attentions = [] if need_weights else None
        for block in self.blocks:
            x, w = block(x, need_weights=need_weights)
            hidden.append(x)
            if need_weights:
                attentions.append(w)
        out = self.norm(x)
        return ViT1DOutput(cls=out[:, 0], sequence=out[:, 1:], hidden=hidden, attentions=attentions)


def build_vit1d(config: ViT1DConfig, seed: int, device="cpu") -> ViT1D:
    """Build a ViT-1D with weights drawn from a seeded generator (deterministic for a seed)."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = ViT1D(config)
    finally:
        torch.random.set_rng_state(state)
    return model.to(device)


@torch.no_grad()
def extract_layers(
    model: ViT1D,
    mel: np.ndarray,
    window_frames: int,
    device="cpu",
    batch_size: int = 32,
    attention_reducer=None,
    keep_attention_windows: int = 0,
) -> dict:
    """Run a ViT-1D over non-overlapping windows of whole tracks and collect per-layer outputs.

    Parameters
    ----------
    model : ViT1D
        Trained or random-init encoder.
    mel : np.ndarray [tracks, frames, n_mels]
        Log-mel frames of whole tracks.
    window_frames : int
        Window length in frames (the pre-training crop length); trailing frames that do not fill a
        window are dropped.
    device : str or torch.device
    batch_size : int
        Windows per forward pass.
    attention_reducer : callable or None
        When given, attention weights are computed and ``attention_reducer(weights)`` is stored
        under ``attention_reduced``; ``weights`` is a Tensor [layers, batch, heads, 1 + T, 1 + T]
        and the reducer returns an array whose axis 1 is the window axis (e.g.
        :func:`analysis.attention.received_attention`). Full maps are too large to keep.
    keep_attention_windows : int
        Keep the full attention maps of the first this-many windows (for figures).

    Returns
    -------
    dict of np.ndarray
        ``tokens`` [layers=depth, windows, window_frames, dim] (block outputs 1..depth, class token
        removed), ``cls`` [layers, windows, dim] (class token after each block),
        ``final_cls`` [windows, dim], ``final_sequence`` [windows, window_frames, dim],
        ``attention_reduced`` (see ``attention_reducer``), ``attention_maps`` [layers, k, heads,
        1 + window_frames, 1 + window_frames] for the first ``k = keep_attention_windows`` windows,
        ``track`` [windows] (track index) and ``start_frame`` [windows].
    """
    n_tracks, n_frames, n_mels = mel.shape
    n_win = n_frames // window_frames
    if n_win < 1:
        raise UserError(f"tracks have {n_frames} frames, fewer than one window of {window_frames}; use longer clips or shorter crops")
    windows = mel[:, : n_win * window_frames].reshape(n_tracks * n_win, window_frames, n_mels)
    model = model.to(device).eval()
    need_weights = attention_reducer is not None or keep_attention_windows > 0
    toks, clss, fcls, fseq, atts, maps = [], [], [], [], [], []
    for i in range(0, len(windows), batch_size):
        xb = torch.as_tensor(windows[i : i + batch_size], dtype=torch.float32, device=device)
        out = model(xb, need_weights=need_weights)
        hid = torch.stack(out.hidden[1:])  # [L, b, 1+T, D]
        toks.append(hid[:, :, 1:].cpu().numpy())
        clss.append(hid[:, :, 0].cpu().numpy())
        fcls.append(out.cls.cpu().numpy())
        fseq.append(out.sequence.cpu().numpy())
        if need_weights:
            w = torch.stack(out.attentions)  # [L, b, H, 1+T, 1+T]
            if attention_reducer is not None:
                atts.append(np.asarray(attention_reducer(w)))
            n_keep = min(max(keep_attention_windows - i, 0), w.shape[1])
            if n_keep:
                maps.append(w[:, :n_keep].cpu().numpy().astype(np.float32))
    result = {
        "tokens": np.concatenate(toks, axis=1).astype(np.float32),
        "cls": np.concatenate(clss, axis=1).astype(np.float32),
        "final_cls": np.concatenate(fcls).astype(np.float32),
        "final_sequence": np.concatenate(fseq).astype(np.float32),
        "track": np.repeat(np.arange(n_tracks), n_win),
        "start_frame": np.tile(np.arange(n_win) * window_frames, n_tracks),
    }
    if attention_reducer is not None:
        result["attention_reduced"] = np.concatenate(atts, axis=1)
    if maps:
        result["attention_maps"] = np.concatenate(maps, axis=1)
    return result


def forward_flops(config: ViT1DConfig, frames: int) -> float:
    """FLOPs (2 per multiply-add) of one forward pass of a :class:`ViT1D` on ``frames`` frames.

    Per token and block: the qkv and output projections (``4 dim^2``), the MLP
    (``2 mlp_ratio dim^2``) and attention over ``frames + 1`` tokens (``2 (frames + 1) dim``); plus the
    frame embedding (``n_mels dim`` per frame). Used by the lab tier's time estimate (:mod:`harness.budget`).
    """
    t, d = int(frames) + 1, int(config.dim)
    per_token = 4 * d * d + 2 * config.mlp_ratio * d * d + 2 * t * d
    return 2.0 * (t * config.depth * per_token + int(frames) * config.n_mels * d)
