"""Reading audio files: any format libsndfile reads, any sample rate in, mono at the model's rate out."""
from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np

from harness.errors import UserError

#: File extensions the folder loaders look for (what libsndfile >= 1.1 reads).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def resample_audio(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser window) along the last axis.

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
    sr_in, sr_out : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray, float32, shape (..., ceil(n_samples * sr_out / sr_in))
    """
    if sr_in <= 0 or sr_out <= 0:
        raise UserError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, int(sr_out) // g, int(sr_in) // g, axis=-1).astype(np.float32)


def read_audio(path, sr: int | None = 22050) -> np.ndarray:
    """Read one audio file as a mono float32 waveform at ``sr``.

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1, AIFF).
    sr : int or None
        Output sample rate in Hz (resampled with :func:`resample_audio`); ``None`` keeps the file's.

    Returns
    -------
    np.ndarray, float32, shape (n_samples,)
        Channels are averaged (mono mixdown); integer PCM is scaled to [-1, 1).

    Raises
    ------
    UserError
        Naming the file when it is missing, unreadable, corrupt, empty or contains non-finite samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file {path} does not exist: check the path or remove it from the label list")
    try:
        data, sr_file = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises LibsndfileError/RuntimeError/TypeError on bad files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"audio file {path} is corrupt or unreadable ({msg}): re-encode it as WAV or FLAC, "
                        "or remove it") from None
    if data.shape[0] == 0:
        raise UserError(f"audio file {path} contains no samples: re-export it or remove it")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise UserError(f"audio file {path} contains NaN or infinite samples: re-export it or remove it")
    return mono if sr is None else resample_audio(mono, int(sr_file), int(sr))


def fit_length(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad or cut the last axis to exactly ``n_samples``."""
    x = np.asarray(x)
    if x.shape[-1] >= n_samples:
        return x[..., :n_samples]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n_samples - x.shape[-1])]
    return np.pad(x, pad)
