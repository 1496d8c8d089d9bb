"""Contrastive (NT-Xent) pre-training of the ViT-1D on music audio (Kong et al. 2025).

Positives are two augmented crops of the same track; the other tracks of the batch are the
negatives. The loss sees the final class token only (no projection head), so sequence tokens get
gradient only through shared weights.

Augmentations (ours; the paper's are unknown) are applied to log-mel crops in the mel-power domain,
batched: independent crop offsets (time shift), gain (+/- ``gain_db``), additive white-ish noise
at a random SNR, and a random spectral tilt (a first-order filter approximated per mel bin).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from harness.errors import UserError
from models.amp import Amp
from models.vit1d import ViT1D, ViT1DConfig, build_vit1d


def log_mel_frames(
    audio: np.ndarray,
    sr: int,
    n_mels: int = 64,
    n_fft: int = 1024,
    hop_length: int = 320,
    device="cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """Log-mel frames (dB of power, floor 1e-10) of a batch of clips, time-major.

    Parameters
    ----------
    audio : np.ndarray [n_clips, n_samples]
        Mono waveforms at ``sr``.
    sr : int
        Sample rate in Hz.
    n_mels, n_fft, hop_length : int
        Mel bands, FFT/window size and hop in samples (centred frames).
    device : str or torch.device
    batch_size : int
        Clips per STFT batch.

    Returns
    -------
    np.ndarray float32 [n_clips, frames, n_mels]
        ``frames = 1 + n_samples // hop_length``.
    """
    import torchaudio

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise UserError(f"audio must be [n_clips, n_samples]; got shape {audio.shape}")
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0, center=True
    ).to(device)
    out = []
    with torch.no_grad():
        for i in range(0, len(audio), batch_size):
            x = torch.as_tensor(audio[i : i + batch_size], device=device)
            out.append((10.0 * torch.log10(mel(x) + 1e-10)).transpose(1, 2).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy (SimCLR) over a batch of positive pairs.

    Parameters
    ----------
    z_a, z_b : Tensor [batch, dim]
        Embeddings of the two views; row i of ``z_a`` and row i of ``z_b`` are positives, every other
        row of both views is a negative.
    temperature : float
        Softmax temperature applied to cosine similarities.

    Returns
    -------
    Tensor, scalar
        Mean over the 2 * batch anchors of ``-log(exp(s_ip / t) / sum_{k != i} exp(s_ik / t))``.
    """
    if z_a.shape != z_b.shape or z_a.ndim != 2 or z_a.shape[0] < 2:
        raise UserError(f"NT-Xent needs two [batch>=2, dim] views of equal shape; got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if temperature <= 0:
        raise UserError(f"NT-Xent temperature must be positive; got {temperature}")
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def cls_contrastive_loss(model: ViT1D, view_a: torch.Tensor, view_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent on the final class tokens of two views (the only place the loss touches the model)."""
    return nt_xent(model(view_a).cls, model(view_b).cls, temperature)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (ours).

    Attributes
    ----------
    gain_db : float
        Uniform gain in [-gain_db, +gain_db].
    snr_db : tuple of float
        Additive noise SNR range in dB relative to the crop's mean mel power.
    tilt_db : float
        Spectral tilt: a linear ramp over mel bins from -tilt_db to +tilt_db (random sign/size).
    """

    gain_db: float = 6.0
    snr_db: tuple = (10.0, 40.0)
    tilt_db: float = 6.0


def augment_crops(
    mel: torch.Tensor, crop_frames: int, aug: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Random crops of whole-track log-mels with gain, noise and tilt, batched.

    Parameters
    ----------
    mel : Tensor [batch, frames, n_mels]
        Log-mel (dB) of whole tracks.
    crop_frames : int
        Crop length in frames.
    aug : AugmentConfig
    generator : torch.Generator
        Source of all randomness (on the CPU).

    Returns
    -------
    Tensor [batch, crop_frames, n_mels], dB.
    """
    b, t, m = mel.shape
    if t < crop_frames:
        raise UserError(f"tracks have {t} frames, shorter than the {crop_frames}-frame crop; use longer clips or shorter crops")
    dev = mel.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    start = (rand(b) * (t - crop_frames + 1)).long().clamp_max(t - crop_frames)
    idx = start[:, None] + torch.arange(crop_frames, device=dev)[None]
    crops = torch.gather(mel, 1, idx[:, :, None].expand(b, crop_frames, m))
    power = 10.0 ** (crops / 10.0)
    gain = 10.0 ** ((2 * rand(b, 1, 1) - 1) * aug.gain_db / 10.0)
    ramp = torch.linspace(-1.0, 1.0, m, device=dev)[None, None, :]
    tilt = 10.0 ** ((2 * rand(b, 1, 1) - 1) * aug.tilt_db * ramp / 10.0)
    snr_db = aug.snr_db[0] + rand(b, 1, 1) * (aug.snr_db[1] - aug.snr_db[0])
    noise_level = power.mean(dim=(1, 2), keepdim=True) * 10.0 ** (-snr_db / 10.0)
    # exponential (chi-square, 2 dof) fluctuation per bin-frame, like a periodogram of white noise
    noise = noise_level * (-torch.log(rand(b, crop_frames, m).clamp_min(1e-12)))
    return 10.0 * torch.log10(power * gain * tilt + noise + 1e-10)


@dataclass(frozen=True)
class PretrainConfig:
    """Contrastive pre-training settings.

    Attributes
    ----------
    steps : int
        Optimiser steps.
    batch_size : int
        Tracks per batch (2 views each).
    crop_frames : int
        Crop length in frames.
    lr : float
        Peak AdamW learning rate (linear warm-up over 10 % of steps, cosine decay).
    weight_decay : float
    temperature : float
        NT-Xent temperature (0.1 by default, as in the group's public implementation).
    seed : int
    """

    steps: int = 300
    batch_size: int = 32
    crop_frames: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.05
    temperature: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def pretrain_vit1d(
    mel: np.ndarray,
    model_config: ViT1DConfig,
    train_config: PretrainConfig,
    aug: AugmentConfig = AugmentConfig(),
    device="cpu",
    verbose: bool = False,
) -> tuple[ViT1D, dict]:
    """Pre-train a ViT-1D with NT-Xent on the class token.

    Parameters
    ----------
    mel : np.ndarray [tracks, frames, n_mels]
        Log-mel frames of the pre-training tracks.
    model_config : ViT1DConfig
    train_config : PretrainConfig
    aug : AugmentConfig
    device : str or torch.device
    verbose : bool
        Show a progress bar.

    Returns
    -------
    model : ViT1D
        Trained encoder (eval mode, on ``device``), with input statistics set from ``mel``.
    history : dict
        ``loss`` (per step), ``positive_top1`` (fraction of anchors whose nearest neighbour is
        their positive, per step, on the training batch) and ``seconds`` (training wall time).
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 3 or mel.shape[-1] != model_config.n_mels:
        raise UserError(f"pre-training mel must be [tracks, frames, {model_config.n_mels}]; got {mel.shape}")
    if len(mel) < 2:
        raise UserError("contrastive pre-training needs at least 2 tracks; render more tracks")
    tc = train_config
    model = build_vit1d(model_config, seed=tc.seed, device=device)
    model.set_input_stats(mel.mean(axis=(0, 1)), mel.std(axis=(0, 1)))
    model.train()
    gen = torch.Generator().manual_seed(tc.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    warm = max(1, tc.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, tc.steps) / tc.steps))
    )
    mel_t = torch.as_tensor(mel, device=device)
    bsz = min(tc.batch_size, len(mel))
    history = {"loss": [], "positive_top1": []}
    amp = Amp(device)  # AMP on CUDA only; on the CPU the plain fp32 calls, bit-identical
    t0 = time.perf_counter()
    for _ in tqdm(range(tc.steps), disable=not verbose, desc="NT-Xent pre-training"):
        idx = torch.randperm(len(mel), generator=gen)[:bsz].to(device)
        batch = mel_t[idx]
        va = augment_crops(batch, tc.crop_frames, aug, gen)
        vb = augment_crops(batch, tc.crop_frames, aug, gen)
        with amp.autocast():
            za, zb = model(torch.cat([va, vb])).cls.float().split(bsz)
        loss = nt_xent(za, zb, tc.temperature)
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.step(opt, model.parameters(), 1.0)
        sched.step()
        with torch.no_grad():
            z = F.normalize(torch.cat([za, zb]), dim=1)
            s = (z @ z.T).fill_diagonal_(-2.0)
            target = torch.cat([torch.arange(bsz, 2 * bsz), torch.arange(bsz)]).to(s.device)
            top1 = (s.argmax(1) == target).float().mean().item()
        history["loss"].append(float(loss.item()))
        history["positive_top1"].append(top1)
    history["seconds"] = time.perf_counter() - t0
    model.eval()
    return model, history


def random_init_like(mel: np.ndarray, model_config: ViT1DConfig, seed: int, device="cpu") -> ViT1D:
    """The random-init control: same shape and input standardisation, no training."""
    model = build_vit1d(model_config, seed=seed, device=device)
    mel = np.asarray(mel, dtype=np.float32)
    model.set_input_stats(mel.mean(axis=(0, 1)), mel.std(axis=(0, 1)))
    return model.eval()


def heldout_retrieval(
    model: ViT1D,
    mel: np.ndarray,
    crop_frames: int,
    aug: AugmentConfig = AugmentConfig(),
    n_repeats: int = 4,
    seed: int = 0,
    device="cpu",
    batch_size: int = 64,
) -> dict:
    """Top-1 retrieval of positives on held-out tracks: the NT-Xent task, scored without training.

    For each repeat, every track gives two augmented crops (views ``a`` and ``b``, as in
    pre-training). Each view-``a`` class token queries the view-``b`` tokens of all tracks by cosine
    similarity, and each view-``b`` token queries the view-``a`` tokens; a query is correct when its
    nearest neighbour is its own track's other view.

    Parameters
    ----------
    model : ViT1D
    mel : np.ndarray [tracks, frames, n_mels]
        Log-mel frames of held-out tracks (never seen in pre-training).
    crop_frames : int
        Crop length in frames (the pre-training crop).
    aug : AugmentConfig
    n_repeats : int
        Independent augmentation draws.
    seed : int
        Seed of the crops and augmentations (the same draws for every model scored with it).
    device : str or torch.device
    batch_size : int
        Crops per forward pass.

    Returns
    -------
    dict
        ``per_track`` (fraction of each track's ``2 * n_repeats`` queries retrieving their
        positive, list of float), ``top1`` (their mean), ``chance`` (``1 / tracks``), ``n_tracks``,
        ``n_repeats``.
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 3 or len(mel) < 2:
        raise UserError(f"held-out retrieval needs mel [tracks>=2, frames, n_mels]; got shape {mel.shape}")
    if n_repeats < 1:
        raise UserError(f"held-out retrieval needs n_repeats >= 1; got {n_repeats}")
    gen = torch.Generator().manual_seed(int(seed) + 104729)
    n = len(mel)
    mel_t = torch.as_tensor(mel, device=device)
    was_training = model.training
    model.eval()
    hits = np.zeros(n)
    try:
        with torch.no_grad():
            for _ in range(n_repeats):
                va = augment_crops(mel_t, crop_frames, aug, gen)
                vb = augment_crops(mel_t, crop_frames, aug, gen)
                z = torch.cat([model(v[i : i + batch_size]).cls for v in (va, vb) for i in range(0, n, batch_size)])
                za, zb = F.normalize(z[:n], dim=1), F.normalize(z[n:], dim=1)
                s = za @ zb.T
                target = torch.arange(n, device=s.device)
                hits += (s.argmax(1) == target).cpu().numpy().astype(float) + (s.argmax(0) == target).cpu().numpy().astype(float)
    finally:
        model.train(was_training)
    per_track = hits / (2 * n_repeats)
    return {"per_track": per_track.tolist(), "top1": float(per_track.mean()), "chance": 1.0 / n,
            "n_tracks": n, "n_repeats": int(n_repeats)}
