"""Linear readouts of music from features, and the linear baselines on the log-mel input
(Kim et al. 2024: PCA of the log-mel, and a spectro-temporal Gabor filter bank).
"""
from __future__ import annotations

import numpy as np
import torch

from harness.errors import UserError


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Z-score every column with the training mean and SD (constant columns are left at 0)."""
    train = np.asarray(train, np.float64)
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return tuple((np.asarray(a, np.float64) - mu) / sd for a in (train, *others))


def readout_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, method: str = "linear",
                   ridge: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Fit a linear readout on standardised features and score the test clips.

    Parameters
    ----------
    x_train, x_test : np.ndarray, shape (n, n_features)
    y_train : np.ndarray, shape (n,)
        Binary targets (music 1, non-music 0).
    method : {"linear", "logistic"}
        ``"linear"``: least-squares regression onto 0/1 (the paper's choice), with a tiny ridge
        (``ridge`` times the number of clips) for numerical stability; ``"logistic"``: L2
        logistic regression (C = 1).
    """
    x_train = np.asarray(x_train)
    x_test = np.asarray(x_test)
    y = np.asarray(y_train).astype(np.float64)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1] or len(y) != len(x_train):
        raise UserError(f"readout needs [n, features] arrays with matching features and one target per clip, "
                        f"got {x_train.shape}, {x_test.shape}, {y.shape}")
    xs_train, xs_test = standardise(x_train, x_test)
    if method == "linear":
        a = np.hstack([xs_train, np.ones((len(xs_train), 1))])
        reg = ridge * len(a) * np.eye(a.shape[1])
        reg[-1, -1] = 0.0
        w = np.linalg.solve(a.T @ a + reg, a.T @ y)
        return np.hstack([xs_test, np.ones((len(xs_test), 1))]) @ w
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(xs_train, y.astype(int))
        return clf.decision_function(xs_test)
    raise UserError(f"unknown readout method {method!r}: choose 'linear' or 'logistic'")


def readout_ap(x_train, y_train, x_test, y_test, method: str = "linear") -> float:
    """Average precision of a linear music readout fitted on train and scored on test."""
    from sklearn.metrics import average_precision_score

    y_test = np.asarray(y_test).astype(int)
    if y_test.min() == y_test.max():
        raise UserError("readout test set needs both music and non-music clips: check the split")
    return float(average_precision_score(y_test, readout_scores(x_train, y_train, x_test, method)))


def pca_baseline(logmel_train: np.ndarray, logmel_test: np.ndarray, n_components: int = 256,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Project flattened log-mel spectrograms on their top principal components (fitted on train).

    Returns
    -------
    train_pcs, test_pcs : np.ndarray, shape (n, k)
        ``k = min(n_components, n_train - 1, n_features)``.
    explained : float
        Fraction of training variance the components keep (paper: 0.965 with 256).
    """
    from sklearn.decomposition import PCA

    a = np.asarray(logmel_train, np.float32).reshape(len(logmel_train), -1)
    b = np.asarray(logmel_test, np.float32).reshape(len(logmel_test), -1)
    k = int(min(n_components, len(a) - 1, a.shape[1]))
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(a)
    return pca.transform(a), pca.transform(b), float(pca.explained_variance_ratio_.sum())


def gabor_bank(spectral_cyc_per_band=(0.0, 0.0625, 0.125, 0.25), temporal_hz=(0.0, 1.0, 2.0, 4.0, 8.0),
               frame_rate_hz: float = 20.0, size=(13, 21)) -> torch.Tensor:
    """Spectro-temporal Gabor kernels over (mel band, frame).

    The defaults suit :func:`gabor_features`' input: the log-mel pooled 2x in frequency (32 bands)
    and 4x in time (20 frames per second for Kim et al.'s 12.5-ms hop).

    Every combination of spectral modulation (cycles per band), temporal modulation (Hz), both
    sweep directions for joint modulations, and two phases (cosine, sine) is one filter; the
    all-zero combination keeps only its cosine (a Gaussian blob).

    Returns
    -------
    torch.Tensor, shape (n_filters, 1, size[0], size[1])
        Zero-mean (except the DC blob), unit-L2 kernels.
    """
    fh, ft = size
    f = torch.arange(fh, dtype=torch.float64) - fh // 2
    t = (torch.arange(ft, dtype=torch.float64) - ft // 2) / frame_rate_hz
    ff, tt = torch.meshgrid(f, t, indexing="ij")
    kernels = []
    for om in spectral_cyc_per_band:
        for wt in temporal_hz:
            sigma_f = fh / 6 if om == 0 else min(fh / 6, 0.5 / om)
            sigma_t = (ft / frame_rate_hz) / 6 if wt == 0 else min((ft / frame_rate_hz) / 6, 0.5 / wt)
            env = torch.exp(-0.5 * (ff / sigma_f) ** 2 - 0.5 * (tt / sigma_t) ** 2)
            for direction in ((1, -1) if om > 0 and wt > 0 else (1,)):
                phase = 2 * np.pi * (om * ff + direction * wt * tt)
                for carrier in ((torch.cos,) if om == 0 and wt == 0 else (torch.cos, torch.sin)):
                    k = env * carrier(phase)
                    if not (om == 0 and wt == 0):
                        k = k - env * (k.sum() / env.sum())  # zero mean under the envelope
                    kernels.append(k / k.norm())
    return torch.stack(kernels).unsqueeze(1).float()


@torch.no_grad()
def gabor_features(logmel: np.ndarray, bank: torch.Tensor | None = None, pool=(2, 4), batch_size: int = 64,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Gabor baseline: convolve each log-mel with every kernel, ReLU, average over bands and frames.

    Parameters
    ----------
    logmel : np.ndarray, shape (n, n_mels, frames)
    bank : torch.Tensor, optional
        Kernels from :func:`gabor_bank` (default bank when None).
    pool : tuple of 2 int
        Average-pooling of (bands, frames) before filtering (default 2 x 4: 32 bands at 20 frames/s),
        which keeps the modulations the default bank covers and costs 8x less.

    Returns
    -------
    np.ndarray, shape (n, n_filters)
    """
    from scipy.fft import next_fast_len

    bank = (gabor_bank() if bank is None else bank).to(device)
    x = np.asarray(logmel, np.float32)
    if x.ndim != 3:
        raise UserError(f"gabor_features needs [n, n_mels, frames], got {x.shape}")
    kf, kt = bank.shape[-2:]
    f0, t0 = kf // 2, kt // 2
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[s:s + batch_size], device=device)
            xb = torch.nn.functional.avg_pool2d(xb[:, None], pool, ceil_mode=True)[:, 0]
            xb = xb - xb.mean(dim=(1, 2), keepdim=True)  # per-clip level: a filter bank sees modulations
            # 'same'-size linear convolution through the FFT
            n_f, n_t = next_fast_len(xb.shape[1] + kf - 1), next_fast_len(xb.shape[2] + kt - 1)
            k_hat = torch.fft.rfft2(bank[:, 0], s=(n_f, n_t))
            y = torch.fft.irfft2(torch.fft.rfft2(xb, s=(n_f, n_t))[:, None] * k_hat[None], s=(n_f, n_t))
            y = y[:, :, f0:f0 + xb.shape[1], t0:t0 + xb.shape[2]]
            out.append(torch.relu(y).mean(dim=(2, 3)).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, bank.shape[0]), np.float32)


def band_power(logmel_db: np.ndarray) -> np.ndarray:
    """Time-averaged mel power per band (``[n, n_mels]``) from a dB log-mel: the "log-mel input"
    baseline of the selectivity pipeline, non-negative like a post-ReLU unit."""
    x = np.asarray(logmel_db, np.float64)
    return (10.0 ** (x / 10.0)).mean(axis=-1)
