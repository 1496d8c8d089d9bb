"""Audio front ends: the Kim et al. log-mel, generic mel frames, a log-frequency spectrogram,
resampling and amplitude utilities.

Kim et al. (2024) front end, as stated in the paper: 22,050 Hz mono waveform, 64 mel bands over
0-8 kHz, window = n_fft = 551 samples (25 ms), hop 275 samples (12.5 ms), power 2, converted to
dB (``10 log10(max(power, 1e-10))``, reference 1, no ``top_db`` clipping); a 10-s clip gives
64 x 803 frames.

Centre padding (our decision, so that 10 s -> 803 frames holds): frame ``k`` is centred on
sample ``k * hop_length`` for ``k = 0 ... ceil(n_samples / hop_length)``, i.e. the end of the
clip is zero-padded to a whole number of hops and the result is reflect-padded by
``n_fft // 2`` on both sides (torch's usual ``center=True``). Plain ``center=True`` gives
``1 + floor(n / hop)`` = 802 frames and ``center=False`` gives 800, neither matching the paper.

Mel filterbank (our assumption, the paper does not say): HTK mel scale, unnormalised
triangular filters on the exact rFFT bin frequencies (librosa's ``htk=True, norm=None``),
periodic Hann window.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

from harness.errors import UserError

KIM_SR = 22050
KIM_N_MELS = 64
KIM_N_FFT = 551
KIM_HOP_LENGTH = 275
KIM_F_MAX = 8000.0
AMIN = 1e-10  # power floor before log10 (librosa / torchaudio convention)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device={device!r} is not a torch device: use 'cpu', 'cuda' or 'cuda:0'") from None


def _as_batch(audio, name: str = "audio"):
    """Return (2-D array or tensor [batch, samples], squeeze flag)."""
    if not isinstance(audio, (np.ndarray, torch.Tensor)):
        audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio[None, :], True
    if audio.ndim != 2:
        raise UserError(f"{name} has shape {tuple(audio.shape)}: pass [batch, samples] (or one clip as [samples])")
    return audio, False


def _to_tensor(chunk, device: torch.device) -> torch.Tensor:
    if isinstance(chunk, np.ndarray):
        chunk = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
    return chunk.to(device=device, dtype=torch.float32)


def power_to_db(power: torch.Tensor, amin: float = AMIN) -> torch.Tensor:
    """``10 log10(max(power, amin))`` with reference 1 and no ``top_db`` clipping.

    Parameters
    ----------
    power : torch.Tensor
        Non-negative power values.
    amin : float
        Floor applied before the logarithm (so silence maps to ``10 log10(amin)`` = -100 dB).
    """
    return 10.0 * torch.log10(torch.clamp(power, min=amin))


def n_frames(n_samples: int, hop_length: int = KIM_HOP_LENGTH, pad_to_hop: bool = True) -> int:
    """Number of frames the front end produces for a clip of ``n_samples`` samples.

    ``1 + ceil(n_samples / hop_length)`` with ``pad_to_hop`` (the Kim front end), else torch's
    ``center=True`` count ``1 + n_samples // hop_length``.
    """
    if pad_to_hop:
        return 1 + -(-int(n_samples) // int(hop_length))
    return 1 + int(n_samples) // int(hop_length)


# --------------------------------------------------------------------------------------------
# mel front end
# --------------------------------------------------------------------------------------------
def hz_to_mel(f_hz, mel_scale: str = "htk"):
    """Hz to mel: HTK ``2595 log10(1 + f / 700)`` or Slaney (linear below 1 kHz, log above)."""
    f = np.asarray(f_hz, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if mel_scale == "slaney":
        lin = f / (200.0 / 3.0)
        log = 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)
    raise UserError(f"mel_scale={mel_scale!r} is unknown: use 'htk' or 'slaney'")


def mel_to_hz(mel, mel_scale: str = "htk"):
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if mel_scale == "slaney":
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3.0) * m)
    raise UserError(f"mel_scale={mel_scale!r} is unknown: use 'htk' or 'slaney'")


def mel_filterbank(sr: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                   mel_scale: str = "htk", norm: str | None = None) -> np.ndarray:
    """Triangular mel filters on the rFFT bins, shape ``(n_mels, n_fft // 2 + 1)``.

    Bin ``k`` sits at ``k * sr / n_fft`` Hz (as in librosa). torchaudio's ``melscale_fbanks``
    instead spaces bins as ``linspace(0, sr // 2, n_fft // 2 + 1)``, which is off by 0.18 % for
    Kim's odd ``n_fft = 551``; we use the exact bin frequencies.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    n_fft : int
        FFT size in samples.
    n_mels : int
    f_min, f_max : float
        Band edges in Hz (``f_max=None``: ``sr / 2``).
    mel_scale : {"htk", "slaney"}
    norm : {None, "slaney"}
        ``"slaney"`` divides each triangle by half its bandwidth in Hz (constant energy).
    """
    f_max = sr / 2.0 if f_max is None else float(f_max)
    freqs = np.arange(n_fft // 2 + 1) * float(sr) / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale), n_mels + 2), mel_scale)
    width = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        raise UserError(f"mel norm={norm!r} is unknown: use None or 'slaney'")
    return weights


class LogMel(nn.Module):
    """Batched log-mel spectrogram (dB), by default exactly the Kim et al. front end.

    Parameters
    ----------
    sr : int
        Sample rate in Hz the module expects.
    n_mels : int
        Number of mel bands.
    n_fft : int
        FFT size in samples (= window length).
    hop_length : int
        Hop in samples.
    f_min, f_max : float
        Band edges in Hz (``f_max=None``: ``sr / 2``).
    power : float
        Exponent of the magnitude (2: power spectrogram).
    pad_to_hop : bool
        Zero-pad the end of each clip to a whole number of hops before the centre padding
        (see the module docstring; gives ``1 + ceil(n / hop)`` frames). ``False`` gives torch's
        ``center=True`` framing.
    mel_scale : {"htk", "slaney"}
        Mel formula of the filterbank.
    norm : {None, "slaney"}
        Filter normalisation.
    db : bool
        Convert to dB (``10 log10(max(mel, 1e-10))``); ``False`` returns linear mel power.

    Notes
    -----
    ``forward(audio)`` takes a float tensor ``[batch, samples]`` and returns
    ``[batch, n_mels, frames]`` (float32). The window, DFT basis and filterbank are buffers, so
    ``.to(device)`` moves them. For a non-power-of-two ``n_fft`` the spectrum is one matrix
    product with the windowed real-DFT basis (float32), otherwise ``torch.fft.rfft``.
    """

    def __init__(self, sr: int = KIM_SR, n_mels: int = KIM_N_MELS, n_fft: int = KIM_N_FFT,
                 hop_length: int = KIM_HOP_LENGTH, f_min: float = 0.0, f_max: float | None = KIM_F_MAX,
                 power: float = 2.0, pad_to_hop: bool = True, mel_scale: str = "htk", norm: str | None = None,
                 db: bool = True):
        super().__init__()
        f_max = sr / 2.0 if f_max is None else float(f_max)
        if not 0.0 <= f_min < f_max <= sr / 2.0:
            raise UserError(f"mel band edges f_min={f_min}, f_max={f_max} Hz are invalid at sr={sr}: "
                            f"use 0 <= f_min < f_max <= {sr / 2:g}")
        if hop_length < 1 or n_fft < 2:
            raise UserError(f"n_fft={n_fft}, hop_length={hop_length}: use n_fft >= 2 and hop_length >= 1")
        self.sr, self.n_mels, self.n_fft, self.hop_length = int(sr), int(n_mels), int(n_fft), int(hop_length)
        self.f_min, self.f_max, self.power = float(f_min), f_max, float(power)
        self.pad_to_hop, self.db = bool(pad_to_hop), bool(db)
        n_freqs = self.n_fft // 2 + 1
        fb = mel_filterbank(self.sr, self.n_fft, self.n_mels, self.f_min, self.f_max, mel_scale, norm)
        fb = torch.as_tensor(fb.T, dtype=torch.float32)  # [n_freqs, n_mels]
        # Only the FFT bins some filter uses are computed (0-8 kHz: 200 of 276 bins at 22,050 Hz).
        used = torch.nonzero(fb.sum(dim=1) > 0)
        self.n_bins = int(used.max()) + 1 if used.numel() else 1
        self.register_buffer("fbank", fb[: self.n_bins].contiguous(), persistent=False)  # [n_bins, n_mels]
        window = torch.hann_window(self.n_fft, dtype=torch.float64)
        # A power-of-two FFT is fast; other sizes (Kim's 551 = 19 x 29) are much faster as one
        # matrix product with the windowed real DFT basis, restricted to the bins in use.
        self.use_dft_matmul = (self.n_fft & (self.n_fft - 1)) != 0
        if self.use_dft_matmul:
            basis = torch.fft.rfft(torch.eye(self.n_fft, dtype=torch.float64), dim=-1)[:, : self.n_bins]
            basis = basis * window[:, None]
            self.register_buffer("dft", torch.cat([basis.real, basis.imag], dim=1).float().contiguous(),
                                 persistent=False)  # [n_fft, 2 n_bins]
        else:
            self.register_buffer("dft", torch.empty(0), persistent=False)
        self.register_buffer("window", window.float(), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for a clip of ``n_samples`` samples."""
        return n_frames(n_samples, self.hop_length, self.pad_to_hop)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim != 2:
            raise UserError(f"LogMel input has shape {tuple(audio.shape)}: pass [batch, samples]")
        n = audio.shape[-1]
        half = self.n_fft // 2
        if n <= half:
            raise UserError(f"clip of {n} samples is shorter than half a window ({half + 1} samples): "
                            "use longer clips or a smaller n_fft")
        x = audio.to(self.window.dtype)
        frames = self.n_frames(n)
        # zero-pad the end so that, after reflect padding by n_fft // 2 on both sides, exactly
        # `frames` windows fit (frame k centred on sample k * hop_length)
        extra = (frames - 1) * self.hop_length + self.n_fft - 2 * half - n
        if extra > 0:
            x = torch.nn.functional.pad(x, (0, extra))
        x = torch.nn.functional.pad(x[:, None, :], (half, half), mode="reflect")[:, 0, :]
        windows = x.unfold(-1, self.n_fft, self.hop_length)[:, :frames]  # [batch, frames, n_fft]
        if self.use_dft_matmul:
            y = windows @ self.dft
            pw = y[..., : self.n_bins].square() + y[..., self.n_bins:].square()
        else:
            spec = torch.fft.rfft(windows * self.window, dim=-1)[..., : self.n_bins]
            pw = spec.real.square() + spec.imag.square()
        if self.power != 2.0:
            pw = pw.sqrt().pow(self.power)
        mel = (pw @ self.fbank).transpose(1, 2)  # [batch, n_mels, frames]
        return power_to_db(mel) if self.db else mel


def _run_batched(module: nn.Module, audio, device, batch_size: int, squeeze: bool) -> np.ndarray:
    if batch_size < 1:
        raise UserError(f"batch_size={batch_size}: use a positive batch size, e.g. 256")
    dev = _device(device)
    module = module.to(dev)
    n, n_samples = audio.shape
    out = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            y = module(_to_tensor(audio[start:start + batch_size], dev))
            if out is None:
                out = np.empty((n,) + tuple(y.shape[1:]), dtype=np.float32)
            out[start:start + y.shape[0]] = y.to("cpu", torch.float32).numpy()
    if out is None:  # empty batch
        out = np.empty((0, getattr(module, "n_mels", 0), 0), dtype=np.float32)
    return out[0] if squeeze else out


def logmel(audio, sr: int = KIM_SR, device="cpu", batch_size: int = 256) -> np.ndarray:
    """Kim et al. log-mel spectrogram of a batch of clips.

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape (batch, samples) or (samples,)
        Mono waveforms at 22,050 Hz.
    sr : int
        Sample rate of ``audio`` in Hz; must be 22,050 (resample with
        :func:`stimuli.features.resample` first).
    device : str or torch.device
        Where to compute.
    batch_size : int
        Clips per forward pass.

    Returns
    -------
    np.ndarray, float32, shape (batch, 64, frames) (or (64, frames) for one 1-D clip)
        dB values; ``frames = 1 + ceil(samples / 275)`` (803 for a 10-s clip).
    """
    if int(sr) != KIM_SR:
        raise UserError(f"logmel got audio at sr={sr} Hz but the Kim et al. front end needs {KIM_SR} Hz: "
                        f"resample first with stimuli.features.resample(audio, {sr}, {KIM_SR})")
    audio, squeeze = _as_batch(audio)
    return _run_batched(LogMel(), audio, device, batch_size, squeeze)


def mel_frames(audio, sr: int, n_mels: int = 128, n_fft: int = 1024, hop_length: int | None = None,
               device="cpu", f_min: float = 0.0, f_max: float | None = None, db: bool = True,
               batch_size: int = 256) -> np.ndarray:
    """Generic (log-)mel spectrogram for other models (e.g. Kong et al.: 16 kHz, 128 mel, n_fft 1024).

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape (batch, samples) or (samples,)
    sr : int
        Sample rate in Hz.
    n_mels, n_fft : int
        Mel bands; FFT size (= window length) in samples.
    hop_length : int, optional
        Hop in samples (default ``n_fft // 4``).
    device : str or torch.device
    f_min, f_max : float
        Band edges in Hz (``f_max=None``: ``sr / 2``).
    db : bool
        Return dB (``10 log10(max(power, 1e-10))``) rather than linear mel power.
    batch_size : int

    Returns
    -------
    np.ndarray, float32, shape (batch, n_mels, 1 + samples // hop_length)
        Torch ``center=True`` (reflect) framing, HTK mel, power 2.
    """
    hop_length = n_fft // 4 if hop_length is None else int(hop_length)
    audio, squeeze = _as_batch(audio)
    module = LogMel(sr=sr, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, f_min=f_min, f_max=f_max,
                    pad_to_hop=False, db=db)
    return _run_batched(module, audio, device, batch_size, squeeze)


# --------------------------------------------------------------------------------------------
# log-frequency spectrogram (pitch-height positive control)
# --------------------------------------------------------------------------------------------
def log_frequency_centres(fmin: float = 32.703, n_bins: int = 84, bins_per_octave: int = 12) -> np.ndarray:
    """Centre frequencies in Hz, ``fmin * 2 ** (k / bins_per_octave)`` (C1 = 32.703 Hz by default)."""
    return float(fmin) * 2.0 ** (np.arange(int(n_bins)) / float(bins_per_octave))


class LogFrequencyFilterbank(nn.Module):
    """STFT power summed through triangular filters on a log-frequency axis (a cheap CQT).

    Filter ``k`` is a triangle in Hz centred on ``fmin * 2 ** (k / bins_per_octave)`` with a
    half-width of one bin spacing (``fc * (2 ** (1 / bins_per_octave) - 1)``), widened to at
    least one FFT bin so that low bands are never empty, and normalised to unit sum.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    fmin : float
        Centre of the lowest band in Hz.
    n_bins, bins_per_octave : int
    n_fft, hop_length : int
        STFT size and hop in samples (zero ``center`` padding, so clips shorter than ``n_fft``
        work).
    db : bool
        Return dB.
    """

    def __init__(self, sr: int, fmin: float = 32.703, n_bins: int = 84, bins_per_octave: int = 12,
                 n_fft: int = 8192, hop_length: int = 512, db: bool = True):
        super().__init__()
        centres = log_frequency_centres(fmin, n_bins, bins_per_octave)
        top = centres[-1] * 2.0 ** (1.0 / bins_per_octave)
        if fmin <= 0 or top > sr / 2.0:
            raise UserError(f"log-frequency bands {fmin:g}-{top:.0f} Hz do not fit below Nyquist ({sr / 2:g} Hz): "
                            "lower n_bins or fmin")
        self.sr, self.n_fft, self.hop_length, self.db = int(sr), int(n_fft), int(hop_length), bool(db)
        freqs = np.arange(self.n_fft // 2 + 1) * self.sr / self.n_fft
        half_width = np.maximum(centres * (2.0 ** (1.0 / bins_per_octave) - 1.0), self.sr / self.n_fft)
        w = np.clip(1.0 - np.abs(freqs[None, :] - centres[:, None]) / half_width[:, None], 0.0, None)
        w /= w.sum(axis=1, keepdims=True)
        self.register_buffer("fbank", torch.as_tensor(w, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.n_mels = int(n_bins)  # for _run_batched's empty-batch shape

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio.to(self.window.dtype), self.n_fft, hop_length=self.hop_length, window=self.window,
                          center=True, pad_mode="constant", return_complex=True)
        out = torch.matmul(self.fbank, spec.abs().square())
        return power_to_db(out) if self.db else out


def log_frequency_spectrogram(audio, sr: int, fmin: float = 32.703, n_bins: int = 84,
                              bins_per_octave: int = 12, hop_length: int = 512, method: str = "filterbank",
                              n_fft: int = 8192, device="cpu", batch_size: int = 64) -> np.ndarray:
    """Log-frequency (semitone-spaced) power spectrogram in dB, a positive control for pitch height.

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape (batch, samples) or (samples,)
    sr : int
        Sample rate in Hz.
    fmin : float
        Lowest band centre in Hz (default C1, 32.703 Hz).
    n_bins, bins_per_octave : int
        Default: 7 octaves of semitones (C1 to B7).
    hop_length : int
        Hop in samples.
    method : {"filterbank", "cqt"}
        ``"filterbank"``: :class:`LogFrequencyFilterbank` in torch (batched, on ``device``);
        ``"cqt"``: ``librosa.cqt`` magnitude squared, in dB (CPU; ``n_fft``/``device`` unused).
    n_fft : int
        STFT size of the filterbank method.
    device : str or torch.device
    batch_size : int

    Returns
    -------
    np.ndarray, float32, shape (batch, n_bins, frames)
    """
    audio, squeeze = _as_batch(audio)
    if method == "filterbank":
        module = LogFrequencyFilterbank(sr, fmin, n_bins, bins_per_octave, n_fft, hop_length)
        return _run_batched(module, audio, device, batch_size, squeeze)
    if method == "cqt":
        import librosa

        x = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        c = librosa.cqt(x.astype(np.float32), sr=sr, hop_length=hop_length, fmin=fmin, n_bins=n_bins,
                        bins_per_octave=bins_per_octave)
        out = (10.0 * np.log10(np.maximum(np.abs(c) ** 2, AMIN))).astype(np.float32)
        return out[0] if squeeze else out
    raise UserError(f"log_frequency_spectrogram method={method!r} is unknown: use 'filterbank' or 'cqt'")


# --------------------------------------------------------------------------------------------
# resampling and amplitude
# --------------------------------------------------------------------------------------------
def resample(audio, sr_in: int, sr_out: int, device="cpu", batch_size: int = 256):
    """Band-limited resampling (torchaudio's windowed-sinc), batched.

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape (batch, samples) or (samples,)
    sr_in, sr_out : int
        Sample rates in Hz.
    device : str or torch.device
    batch_size : int

    Returns
    -------
    Same type as ``audio`` (numpy float32, or a tensor on ``device``), with
    ``ceil(samples * sr_out / sr_in)`` samples.
    """
    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in <= 0 or sr_out <= 0:
        raise UserError(f"resample got sample rates {sr_in} -> {sr_out} Hz: both must be positive")
    is_tensor = isinstance(audio, torch.Tensor)
    x, squeeze = _as_batch(audio)
    dev = _device(device)
    if sr_in == sr_out:
        out = x.to(dev, torch.float32) if is_tensor else np.asarray(x, dtype=np.float32)
    else:
        g = math.gcd(sr_in, sr_out)
        parts = []
        for start in range(0, x.shape[0], max(1, batch_size)):
            y = AF.resample(_to_tensor(x[start:start + batch_size], dev), sr_in // g, sr_out // g)
            parts.append(y if is_tensor else y.cpu().numpy())
        out = (torch.cat(parts) if is_tensor else np.concatenate(parts)) if parts else x
    return out[0] if squeeze else out


def power(audio, axis: int = -1):
    """Mean power ``mean(audio ** 2)`` along ``axis`` (numpy or torch)."""
    if isinstance(audio, torch.Tensor):
        return audio.square().mean(dim=axis)
    a = np.asarray(audio, dtype=np.float64)
    return np.mean(a * a, axis=axis)


def rms(audio, axis: int = -1):
    """Root-mean-square amplitude along ``axis`` (numpy or torch)."""
    p = power(audio, axis)
    return p.sqrt() if isinstance(p, torch.Tensor) else np.sqrt(p)


def _scale(audio, gain, axis: int):
    if isinstance(audio, torch.Tensor):
        return audio * torch.as_tensor(gain, dtype=audio.dtype, device=audio.device).unsqueeze(axis)
    a = np.asarray(audio)
    out = a * np.expand_dims(np.asarray(gain), axis)
    return out.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32, copy=False)


def rms_normalise(audio, target_rms: float, axis: int = -1):
    """Scale every clip to the same RMS amplitude.

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape (..., samples)
    target_rms : float or array_like
        Target RMS (e.g. the mean RMS of the training corpus, as in Kim et al.), broadcast over
        clips.
    axis : int
        The sample axis.

    Returns
    -------
    Same type and dtype as ``audio``. Silent clips (RMS 0) stay silent.
    """
    if np.any(np.asarray(target_rms) < 0):
        raise UserError(f"target_rms={target_rms} is negative: pass an RMS amplitude >= 0")
    r = rms(audio, axis)
    r = r.cpu().numpy() if isinstance(r, torch.Tensor) else r
    gain = np.where(r > 0, np.asarray(target_rms, dtype=np.float64) / np.where(r > 0, r, 1.0), 0.0)
    return _scale(audio, gain, axis)


def attenuate_to_power_ratio(music, reference_power: float, power_ratio: float, axis: int = -1):
    """Scale clips so that each has ``power_ratio * reference_power`` mean power.

    Kim et al.'s amplitude control: after RMS normalisation, attenuate only the music clips to
    1/2 ... 1/64 of the non-music mean power (``reference_power = power(non_music).mean()``,
    ``power_ratio = 1 / 64``).

    Parameters
    ----------
    music : np.ndarray or torch.Tensor, shape (..., samples)
    reference_power : float or array_like
        Mean power (squared amplitude) to compare with.
    power_ratio : float
        Wanted power of each clip relative to ``reference_power`` (> 0).
    axis : int
        The sample axis.

    Returns
    -------
    Same type and dtype as ``music``. Silent clips stay silent.
    """
    if not power_ratio > 0:
        raise UserError(f"power_ratio={power_ratio}: pass a positive power ratio such as 1/64")
    if np.any(np.asarray(reference_power) < 0):
        raise UserError(f"reference_power={reference_power} is negative: pass a mean power >= 0")
    return rms_normalise(music, np.sqrt(np.asarray(reference_power, dtype=np.float64) * power_ratio), axis)


__all__ = [
    "KIM_SR", "KIM_N_MELS", "KIM_N_FFT", "KIM_HOP_LENGTH", "KIM_F_MAX", "LogMel", "logmel", "mel_frames",
    "n_frames", "power_to_db", "LogFrequencyFilterbank", "log_frequency_centres", "log_frequency_spectrogram",
    "resample", "power", "rms", "rms_normalise", "attenuate_to_power_ratio",
]
