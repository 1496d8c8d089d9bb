"""Kim et al.'s training recipe on precomputed log-mel features.

Binary cross-entropy over all classes, AdamW (weight decay 0.01), batch 32, a OneCycle schedule
4e-5 -> 1e-3 (first 30 % of steps) -> 4e-9, and the best epoch chosen by validation mean average
precision. On CUDA the loop uses AMP and a channels-last layout; elsewhere plain fp32.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from harness.errors import UserError
from models.kim_cnn import KimCNN, build_kim_cnn

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the paper's defaults).

    Attributes
    ----------
    epochs : int
        Passes over the training set (paper 100; 200 for shuffled labels).
    batch_size : int
        Clips per step (32).
    lr_start, lr_max, lr_end : float
        OneCycle learning rates: start, peak and final (4e-5, 1e-3, 4e-9).
    pct_warmup : float
        Fraction of steps spent rising to ``lr_max`` (0.3).
    weight_decay : float
        AdamW weight decay (0.01).
    width : float
        KimCNN channel multiplier.
    seed : int
        Seeds the initial weights, the batch order and dropout.
    keep : {"best_val", "last"}
        Which epoch's weights to return: the best by validation mAP (the paper's rule) or the last
        (for the shuffled-label memorisation networks, whose validation mAP never improves).
    """

    epochs: int = 100
    batch_size: int = 32
    lr_start: float = 4e-5
    lr_max: float = 1e-3
    lr_end: float = 4e-9
    pct_warmup: float = 0.3
    weight_decay: float = 0.01
    width: float = 1.0
    seed: int = 0
    keep: str = "best_val"


@dataclass
class TrainResult:
    """A trained network and how it got there.

    Attributes
    ----------
    model : KimCNN
        Weights of the best epoch (by validation mAP), on the CPU, in eval mode.
    curves : dict of str -> list of float
        Per-epoch ``train_loss``, ``val_loss``, ``val_map`` and ``lr`` (for logging).
    best_epoch : int
        1-based epoch whose weights were kept.
    best_val_map : float
        Validation mAP of that epoch.
    train_clips_per_s : float
        Measured training throughput.
    seconds : float
        Wall time of the whole run.
    """

    model: KimCNN
    curves: dict = field(default_factory=dict)
    best_epoch: int = 0
    best_val_map: float = float("nan")
    train_clips_per_s: float = float("nan")
    seconds: float = 0.0


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Macro average precision over the classes that have at least one positive clip.

    Parameters
    ----------
    y_true : np.ndarray, bool, shape (n_clips, n_classes)
    scores : np.ndarray, float, shape (n_clips, n_classes)
    """
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true).astype(bool)
    keep = y_true.any(axis=0)
    if not keep.any():
        return float("nan")
    return float(average_precision_score(y_true[:, keep], np.asarray(scores)[:, keep], average="macro"))


def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int, cfg: TrainConfig):
    """The paper's OneCycle schedule: ``lr_start`` -> ``lr_max`` (``pct_warmup``) -> ``lr_end``."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr_max, total_steps=max(2, int(total_steps)), pct_start=cfg.pct_warmup,
        div_factor=cfg.lr_max / cfg.lr_start, final_div_factor=cfg.lr_start / cfg.lr_end,
        anneal_strategy="cos", cycle_momentum=False)


def _check_xy(name: str, x, y) -> None:
    if x.ndim != 3:
        raise UserError(f"{name} features must be [clips, n_mels, frames], got shape {x.shape}: pass log-mel arrays")
    if y.ndim != 2 or len(y) != len(x):
        raise UserError(f"{name} labels must be [clips, classes] with one row per clip, got {y.shape} for {len(x)} clips")


@torch.no_grad()
def _evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int,
              channels_last: bool) -> tuple[float, float]:
    model.eval()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total, scores = 0.0, []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device).unsqueeze(1)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = torch.as_tensor(y[start:start + batch_size], dtype=torch.float32, device=device)
        with torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
            logits = model(xb)
        total += float(loss_fn(logits.float(), yb))
        scores.append(logits.float().cpu())
    s = torch.cat(scores).numpy() if scores else np.zeros(y.shape, np.float32)
    return total / max(1, y.size), mean_average_precision(y, s)


def train_kim_cnn(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  cfg: TrainConfig, device: torch.device | str = "cpu", verbose: bool = False,
                  on_epoch=None) -> TrainResult:
    """Train a :class:`KimCNN` with the paper's recipe on precomputed log-mel features.

    Parameters
    ----------
    x_train, x_val : np.ndarray, float32, shape (n, n_mels, frames)
        Log-mel (dB) inputs.
    y_train, y_val : np.ndarray, bool, shape (n, n_classes)
        Multi-hot targets.
    cfg : TrainConfig
        Epochs, width, seed and the optimiser settings.
    device : torch.device or str
        Where to train. AMP and channels-last are used only when ``device.type == "cuda"``.
    verbose : bool
        Show a tqdm bar per epoch.
    on_epoch : callable, optional
        ``on_epoch(epoch, metrics_dict)`` after every epoch (e.g. to log to MLflow).

    Returns
    -------
    TrainResult
    """
    from tqdm.auto import tqdm

    x_train = np.asarray(x_train, np.float32)
    x_val = np.asarray(x_val, np.float32)
    y_train = np.asarray(y_train, bool)
    y_val = np.asarray(y_val, bool)
    _check_xy("training", x_train, y_train)
    _check_xy("validation", x_val, y_val)
    if cfg.keep not in ("best_val", "last"):
        raise UserError(f"TrainConfig.keep={cfg.keep!r}: use 'best_val' or 'last'")
    if cfg.epochs < 1:
        raise UserError(f"epochs must be >= 1, got {cfg.epochs}: set the tier's epochs setting")
    if len(x_train) < cfg.batch_size:
        raise UserError(f"training set has {len(x_train)} clips, fewer than one batch of {cfg.batch_size}: use a bigger corpus")

    device = torch.device(device)
    cuda = device.type == "cuda"
    t0 = time.perf_counter()
    model = build_kim_cnn(n_classes=y_train.shape[1], width=cfg.width, seed=cfg.seed).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr_start, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(x_train) // cfg.batch_size  # drop_last: BatchNorm needs > 1 clip
    sched = one_cycle(opt, steps_per_epoch * cfg.epochs, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(int(cfg.seed) + 1)
    x_all = torch.from_numpy(x_train)
    y_all = torch.from_numpy(y_train.astype(np.float32))

    curves = {"train_loss": [], "val_loss": [], "val_map": [], "lr": []}
    best_state, best_map, best_epoch, clips_per_s = None, -np.inf, 0, float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed) + 2)  # dropout
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            perm = torch.randperm(len(x_train), generator=gen)
            running, t_epoch = 0.0, time.perf_counter()
            for step in tqdm(range(steps_per_epoch), disable=not verbose, desc=f"epoch {epoch}/{cfg.epochs}",
                             leave=False):
                idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                xb = x_all[idx].to(device, non_blocking=True).unsqueeze(1)
                if cuda:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                yb = y_all[idx].to(device, non_blocking=True)
                with torch.autocast(device_type=device.type, enabled=cuda):
                    loss = loss_fn(model(xb).float(), yb)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                running += float(loss.detach())
                if epoch == 1 and step + 1 == min(5, steps_per_epoch):
                    probe_s = time.perf_counter() - t_epoch
                    probe_rate = (step + 1) * cfg.batch_size / max(probe_s, 1e-9)
                    log.info("KimCNN width %.3g seed %d: %.0f train clips/s on the first %d steps, estimated "
                             "%.0f s for %d epochs of %d clips", cfg.width, cfg.seed, probe_rate, step + 1,
                             estimate_training_seconds(steps_per_epoch * cfg.batch_size, cfg.epochs, probe_rate),
                             cfg.epochs, steps_per_epoch * cfg.batch_size)
            train_s = time.perf_counter() - t_epoch
            if epoch == 1:
                clips_per_s = steps_per_epoch * cfg.batch_size / max(train_s, 1e-9)
                log.info("KimCNN width %.3g seed %d: epoch 1 at %.0f train clips/s, estimated %.0f s to go",
                         cfg.width, cfg.seed, clips_per_s, train_s * (cfg.epochs - 1))
            val_loss, val_map = _evaluate(model, x_val, y_val, device, 256, cuda)
            metrics = {"train_loss": running / max(1, steps_per_epoch), "val_loss": val_loss,
                       "val_map": val_map, "lr": float(sched.get_last_lr()[0])}
            for k, v in metrics.items():
                curves[k].append(v)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            score = val_map if np.isfinite(val_map) else -val_loss
            if score > best_map or (cfg.keep == "last" and epoch == cfg.epochs):
                best_map, best_epoch = score, epoch
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})

    final = build_kim_cnn(n_classes=y_train.shape[1], width=cfg.width, seed=cfg.seed)
    final.load_state_dict(best_state)
    final.eval()
    return TrainResult(model=final, curves=curves, best_epoch=best_epoch,
                       best_val_map=float(curves["val_map"][best_epoch - 1]),
                       train_clips_per_s=float(clips_per_s), seconds=time.perf_counter() - t0)


def estimate_training_seconds(n_clips: int, epochs: int, clips_per_s: float) -> float:
    """Wall time a run will take at a measured training throughput (clips per second)."""
    if clips_per_s <= 0:
        raise UserError(f"throughput must be positive, got {clips_per_s}: measure it on a few batches first")
    return float(n_clips) * float(epochs) / float(clips_per_s)
