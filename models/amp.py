"""Mixed precision for the training loops, on CUDA only.

On a CUDA device, :class:`Amp` runs the forward pass under ``torch.autocast`` (bfloat16 where the GPU
supports it, else float16 with a ``GradScaler``); losses are computed in float32. On any other device
every method is the plain fp32 call (``loss.backward()``, clipping, ``optimizer.step()``), in the same
order, so CPU results stay bit-identical to a loop without it.

Channels-last memory layout applies to 4-D convolution inputs only: the Kim CNN uses it on CUDA
(``models.training``); the ViT-1D and the wav2vec 2.0 / data2vec encoders have 1-D convolutions and
no 4-D activations, so they get AMP alone.
"""
from __future__ import annotations

import contextlib

import torch


class Amp:
    """Autocast, scaled backward and (optionally clipped) optimiser step for one training run.

    Parameters
    ----------
    device : torch.device or str
        Mixed precision is enabled only when ``device.type == "cuda"``.
    """

    def __init__(self, device):
        device = torch.device(device)
        self.enabled = device.type == "cuda"
        bf16 = self.enabled and torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.enabled and not bf16 else None

    def autocast(self):
        """Context of the forward pass (a no-op off CUDA)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, optimizer: torch.optim.Optimizer, params=None, max_norm: float | None = None) -> None:
        """Unscale (float16 only), clip ``params`` to ``max_norm`` when given, then step the optimiser."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
