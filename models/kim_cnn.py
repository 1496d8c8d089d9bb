"""The CNN of Kim, Kim & Jeong (2024), with a width multiplier and batched hooks.

Every conv is 5x5 without bias, followed by BatchNorm and ReLU::

    conv 1->32  stride (2 freq, 4 time), maxpool 2, dropout 0.2
    conv 32->64,  maxpool(2, stride 1)
    conv 64->128, maxpool(2, stride 1), dropout 0.2
    conv 128->256, dropout 0.2
    adaptive average pool -> 256-d pooled features (the analysed layer)
    Linear 256->256, ReLU, dropout 0.2; Linear 256->527 (logits)

At ``width=1`` and 527 outputs the network has exactly 1,278,191 parameters. ``width`` scales
every channel count and the hidden linear layer (``width=0.25`` gives 64 pooled units).

Feature extraction and channel ablation both work through a forward hook on the pooled layer
(:meth:`KimCNN.pooled_features`, :meth:`KimCNN.ablated`), always on whole batches.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from harness.errors import UserError

BASE_CHANNELS = (32, 64, 128, 256)
N_AUDIOSET_CLASSES = 527
PAPER_PARAMETER_COUNT = 1_278_191


def _channels(width: float) -> tuple[int, ...]:
    if not (isinstance(width, (int, float)) and width > 0):
        raise UserError(f"KimCNN width must be a positive number, got {width!r}: use e.g. 1 or 0.25")
    chans = tuple(max(1, int(round(c * width))) for c in BASE_CHANNELS)
    return chans


def _conv_block(c_in: int, c_out: int, stride=1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=5, stride=stride, padding=2, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class KimCNN(nn.Module):
    """Kim et al.'s sound-event CNN on a log-mel spectrogram.

    Parameters
    ----------
    n_classes : int
        Output classes (527 for AudioSet).
    width : float
        Channel multiplier; 1 is the paper's network, 0.25 gives 64 pooled units.
    dropout : float
        Dropout probability (0.2 in the paper).

    Notes
    -----
    Input is ``[batch, n_mels, frames]`` or ``[batch, 1, n_mels, frames]`` (dB log-mel). Output is
    logits ``[batch, n_classes]``; the sigmoid lives in the loss.
    """

    def __init__(self, n_classes: int = N_AUDIOSET_CLASSES, width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        if int(n_classes) < 1:
            raise UserError(f"KimCNN n_classes must be >= 1, got {n_classes}: pass the number of label columns")
        c1, c2, c3, c4 = _channels(width)
        self.width = float(width)
        self.n_classes = int(n_classes)
        self.n_pooled = c4
        self.features = nn.Sequential(
            *_conv_block(1, c1, stride=(2, 4)), nn.MaxPool2d(2), nn.Dropout(dropout),
            *_conv_block(c1, c2), nn.MaxPool2d(2, stride=1),
            *_conv_block(c2, c3), nn.MaxPool2d(2, stride=1), nn.Dropout(dropout),
            *_conv_block(c3, c4), nn.Dropout(dropout),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Sequential(
            nn.Linear(c4, c4), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(c4, self.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] != 1:
            raise UserError(f"KimCNN input must be [batch, n_mels, frames] or [batch, 1, n_mels, frames], "
                            f"got {tuple(x.shape)}: pass a batch of log-mel spectrograms")
        h = self.features(x)
        z = self.flatten(self.pool(h))
        return self.head(z)

    # ------------------------------------------------------------------ hooks
    @contextlib.contextmanager
    def ablated(self, channels) -> Iterator["KimCNN"]:
        """Context in which the given pooled units are zeroed by a forward hook on the pool.

        Parameters
        ----------
        channels : sequence of int or bool mask of length ``n_pooled``
            Units to zero. The hook multiplies the pooled output by a 0/1 mask, so a whole batch
            is ablated at once.
        """
        mask = torch.ones(self.n_pooled)
        idx = np.asarray(channels)
        if idx.dtype == bool:
            if idx.shape != (self.n_pooled,):
                raise UserError(f"ablation mask must have {self.n_pooled} entries, got {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_pooled):
            raise UserError(f"ablation channel indices must lie in [0, {self.n_pooled}), got {idx.min()}..{idx.max()}")
        mask[torch.as_tensor(idx)] = 0.0

        def hook(_module, _inputs, output):
            return output * mask.to(device=output.device, dtype=output.dtype).view(1, -1, 1, 1)

        handle = self.pool.register_forward_hook(hook)
        try:
            yield self
        finally:
            handle.remove()

    @torch.no_grad()
    def pooled_features(self, x, batch_size: int = 256, device: torch.device | str | None = None,
                        verbose: bool = False) -> np.ndarray:
        """Pooled-layer activations (``[n, n_pooled]``) captured by a forward hook, in eval mode.

        Parameters
        ----------
        x : np.ndarray or torch.Tensor, shape (n, n_mels, frames)
            Log-mel inputs.
        batch_size : int
            Clips per forward pass.
        device : torch.device or str, optional
            Where to run; defaults to the model's device.
        """
        out, _ = self.features_and_logits(x, batch_size=batch_size, device=device, verbose=verbose)
        return out

    @torch.no_grad()
    def features_and_logits(self, x, batch_size: int = 256, device: torch.device | str | None = None,
                            verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features ``[n, n_pooled]`` (via a forward hook) and logits ``[n, n_classes]``."""
        from tqdm.auto import tqdm

        device = torch.device(device) if device is not None else next(self.parameters()).device
        was_training = self.training
        self.eval()
        captured: list[torch.Tensor] = []
        handle = self.pool.register_forward_hook(lambda _m, _i, o: captured.append(o.flatten(1).float().cpu()))
        logits = []
        try:
            n = len(x)
            for start in tqdm(range(0, n, batch_size), disable=not verbose, desc="forward"):
                xb = torch.as_tensor(np.asarray(x[start:start + batch_size]), dtype=torch.float32).to(device)
                logits.append(self(xb).float().cpu())
        finally:
            handle.remove()
            self.train(was_training)
        if not captured:
            return np.zeros((0, self.n_pooled), np.float32), np.zeros((0, self.n_classes), np.float32)
        return torch.cat(captured).numpy(), torch.cat(logits).numpy()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def build_kim_cnn(n_classes: int = N_AUDIOSET_CLASSES, width: float = 1.0, seed: int = 0) -> KimCNN:
    """A freshly initialised :class:`KimCNN` whose weights depend only on ``seed``."""
    devnull = torch.random.fork_rng(devices=[])
    with devnull:
        torch.manual_seed(int(seed))
        model = KimCNN(n_classes=n_classes, width=width)
    return model


def forward_flops(width: float = 1.0, n_mels: int = 64, frames: int = 803, n_classes: int = N_AUDIOSET_CLASSES) -> float:
    """FLOPs (2 per multiply-add) of one forward pass of :class:`KimCNN` on a ``[n_mels, frames]`` log-mel.

    Counts the four 5x5 convolutions and the two linear layers (BatchNorm, ReLU and pooling are
    negligible); the time estimate of the lab tier (:mod:`harness.budget`) uses it. A 10-s clip at
    22,050 Hz has 803 frames: about 3.1 GFLOP at ``width=1``.
    """
    c1, c2, c3, c4 = _channels(width)
    h1, w1 = (n_mels + 4 - 5) // 2 + 1, (frames + 4 - 5) // 4 + 1        # conv 1, stride (2, 4)
    h2, w2 = h1 // 2, w1 // 2                                             # max pool 2
    macs = 25 * c1 * h1 * w1 + 25 * c1 * c2 * h2 * w2                     # conv 1, conv 2 (same size)
    macs += 25 * c2 * c3 * (h2 - 1) * (w2 - 1)                            # max pool (2, stride 1), conv 3
    macs += 25 * c3 * c4 * (h2 - 2) * (w2 - 2)                            # max pool (2, stride 1), conv 4
    macs += c4 * c4 + c4 * int(n_classes)                                 # the head
    return 2.0 * macs
