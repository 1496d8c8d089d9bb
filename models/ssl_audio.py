"""Wav2Vec 2.0 and Data2Vec-audio: configurations, loading, SSL objectives, transcription head, training.

Conditions of Grasse & Tata 2026 (our operationalisation), all from the same starting encoder:

- ``untouched``: the starting weights (a checkpoint at the ``paper`` tier, a seeded random init at ``ci``);
- ``ssl``: self-supervised on speech + music with the architecture's own objective —
  wav2vec 2.0: ``Wav2Vec2ForPreTraining`` (span masking, sampled distractors, contrastive loss plus
  the codebook diversity loss, Gumbel temperature annealed);
  data2vec: an EMA teacher sees the unmasked input, the student the masked one; a linear head
  regresses the student's output at masked frames onto the mean of the teacher's top-K hidden
  states, each instance-normalised over time (L2 loss; teacher decay annealed linearly);
- ``transcription``: a frame-wise 128-note piano-roll head (linear on the last hidden state) with
  binary cross-entropy.

SSL and transcription use the same optimiser, learning rate, batch size, crop length and number
of updates. Simplifications (documented): the data2vec teacher tracks every encoder parameter
(fairseq shares the CNN between teacher and student), and its targets are the blocks' outputs
(fairseq takes the FFN output before the final layer norm).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import UserError
from models.amp import Amp

ARCHS = ("wav2vec2", "data2vec")
SAMPLE_RATE = 16000


def tiny_config(arch: str, hidden: int = 64, n_layers: int = 3, n_heads: int = 4, conv_channels: int = 32,
                mask_time_prob: float = 0.5, mask_time_length: int = 5, **overrides):
    """A small configuration of the real transformers class (the ``ci`` tier).

    The conv feature encoder keeps wav2vec 2.0's 7 layers, strides and kernels (20 ms frames,
    25 ms receptive field at 16 kHz) with ``conv_channels`` channels; dropout and layer drop are off.

    Parameters
    ----------
    arch : {"wav2vec2", "data2vec"}
    hidden, n_layers, n_heads, conv_channels : int
        Transformer width, depth, heads; conv channels per layer.
    mask_time_prob, mask_time_length : float, int
        Span-masking settings used by the SSL objectives.
    **overrides
        Any other config field.
    """
    from transformers import Data2VecAudioConfig, Wav2Vec2Config

    common = dict(
        hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=n_heads,
        intermediate_size=2 * hidden, conv_dim=(conv_channels,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2), hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, final_dropout=0.0, layerdrop=0.0, mask_time_prob=mask_time_prob,
        mask_time_length=mask_time_length, mask_time_min_masks=2, feat_extract_norm="group",
        do_stable_layer_norm=False,
    )
    if arch == "wav2vec2":
        common.update(num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, codevector_dim=32,
                      proj_codevector_dim=32, num_codevector_groups=2, num_codevectors_per_group=32,
                      num_negatives=20, diversity_loss_weight=0.1, feat_quantizer_dropout=0.0)
        common.update(overrides)
        return Wav2Vec2Config(**common)
    if arch == "data2vec":
        common.update(num_conv_pos_embeddings=2, conv_pos_kernel_size=5, num_conv_pos_embedding_groups=4)
        common.update(overrides)
        return Data2VecAudioConfig(**common)
    raise UserError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHS)}")


def forward_flops(hidden: int, n_layers: int, conv_channels: int, n_samples: int, intermediate: int | None = None,
                  pos_kernel: int = 16, pos_groups: int = 4) -> float:
    """FLOPs (2 per multiply-add) of one forward pass of a wav2vec 2.0 / data2vec encoder on ``n_samples`` at 16 kHz.

    The 7-layer convolutional feature encoder (kernels 10, 3, 3, 3, 3, 2, 2; strides 5, 2, ..., 2;
    ``conv_channels`` channels: 20-ms frames), the feature projection, the convolutional positional
    embedding (``pos_kernel`` taps in ``pos_groups`` groups) and ``n_layers`` transformer blocks of width
    ``hidden`` with an ``intermediate`` feed-forward width (default ``2 * hidden``, :func:`tiny_config`).
    Used by the lab tier's time estimate (:mod:`harness.budget`).
    """
    c = int(conv_channels)
    length, macs = int(n_samples), 0.0
    for k, (kernel, stride) in enumerate(zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))):
        length = (length - kernel) // stride + 1
        macs += length * kernel * (1 if k == 0 else c) * c
    t, h = max(int(length), 1), int(hidden)
    ff = int(intermediate or 2 * h)
    macs += t * c * h + t * h * (h // max(1, pos_groups)) * pos_kernel
    macs += n_layers * t * (4 * h * h + 2 * h * ff + 2 * t * h)
    return 2.0 * macs


def arch_of(encoder) -> str:
    """``"wav2vec2"`` or ``"data2vec"`` from a built encoder or config."""
    mt = getattr(getattr(encoder, "config", encoder), "model_type", "")
    if mt == "wav2vec2":
        return "wav2vec2"
    if mt == "data2vec-audio":
        return "data2vec"
    raise UserError(f"model type {mt!r} is not wav2vec2 or data2vec-audio: pass one of those encoders")


def build_encoder(config, seed: int = 0):
    """A freshly initialised base encoder (``Wav2Vec2Model`` / ``Data2VecAudioModel``), seeded."""
    from transformers import Data2VecAudioModel, Wav2Vec2Model

    cls = Wav2Vec2Model if arch_of(config) == "wav2vec2" else Data2VecAudioModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config).eval()


def load_encoder(id_or_folder, local_files_only: bool = False):
    """A pretrained wav2vec2 / data2vec-audio encoder from a hub id or a ``save_pretrained`` folder."""
    from pathlib import Path

    from transformers import AutoModel

    src = str(id_or_folder)
    local = local_files_only or Path(src).is_dir()
    try:
        model = AutoModel.from_pretrained(src, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load checkpoint {src!r} ({type(exc).__name__}): pass a local folder written by "
                        f"save_pretrained or a reachable hub id such as facebook/wav2vec2-base") from None
    model = getattr(model, "base_model", model)
    arch_of(model)
    return model.eval()


def frame_count(encoder, n_samples: int) -> int:
    """Number of encoder frames for a clip of ``n_samples``."""
    return int(encoder._get_feat_extract_output_lengths(torch.tensor(n_samples)).item())


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)


def span_mask(batch: int, n_frames: int, mask_prob: float, mask_length: int, rng: np.random.Generator,
              min_masks: int = 2) -> np.ndarray:
    """wav2vec 2.0 span masking: about ``mask_prob * n_frames / mask_length`` spans of ``mask_length`` frames
    start at distinct random frames (spans may overlap), at least ``min_masks`` spans; bool [batch, n_frames]."""
    mask_length = max(1, min(int(mask_length), n_frames))
    n_starts = n_frames - mask_length + 1
    mask = np.zeros((batch, n_frames), dtype=bool)
    for b in range(batch):
        n_spans = int(mask_prob * n_frames / mask_length + rng.random())
        n_spans = min(max(n_spans, min_masks), n_starts)
        starts = rng.choice(n_starts, size=n_spans, replace=False)
        idx = (starts[:, None] + np.arange(mask_length)[None, :]).ravel()
        mask[b, idx] = True
    return mask


def sample_negatives(mask: np.ndarray, num_negatives: int, rng: np.random.Generator) -> np.ndarray:
    """Distractor indices [batch, n_frames, K] into the flattened (batch * n_frames) features: for every
    masked frame, K other masked frames of the same clip drawn uniformly with replacement (the
    ``sampled_negative_indices`` format of ``Wav2Vec2ForPreTraining``)."""
    batch, n_frames = mask.shape
    out = np.zeros((batch, n_frames, num_negatives), dtype=np.int64)
    for b in range(batch):
        pos = np.flatnonzero(mask[b])
        if pos.size < 2:
            continue
        draw = rng.integers(0, pos.size - 1, size=(pos.size, num_negatives))
        draw = draw + (draw >= np.arange(pos.size)[:, None])          # skip the frame itself
        out[b, pos] = pos[draw] + b * n_frames
    return out


def _crops(audio: np.ndarray, batch_size: int, crop: int, rng: np.random.Generator):
    idx = rng.integers(0, audio.shape[0], size=batch_size)
    starts = rng.integers(0, audio.shape[1] - crop + 1, size=batch_size)
    return idx, starts


def _check_audio(audio: np.ndarray, crop: int, name: str) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] < crop:
        raise UserError(f"{name} must be [n, samples] with at least crop_s of audio per clip, got {audio.shape}")
    return audio


def _optimizer(params, lr: float, steps: int, encoder_params=None, encoder_lr_scale: float = 1.0):
    """AdamW with linear warm-up and cosine decay; ``encoder_params`` (a subset of ``params``) get
    ``lr * encoder_lr_scale``."""
    if encoder_params is not None and encoder_lr_scale != 1.0:
        ids = {id(p) for p in encoder_params}
        groups = [{"params": [p for p in params if id(p) not in ids], "lr": lr},
                  {"params": [p for p in params if id(p) in ids], "lr": lr * encoder_lr_scale}]
    else:
        groups = [{"params": list(params), "lr": lr}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    return opt, sched


def train_ssl(encoder, audio: np.ndarray, sr: int, steps: int = 200, batch_size: int = 8, crop_s: float = 2.0,
              lr: float = 5e-4, seed: int = 0, device="cpu", top_k: int | None = None,
              ema_decay: tuple = (0.99, 0.999), encoder_lr_scale: float = 1.0, heldout_audio: np.ndarray | None = None,
              verbose: bool = False):
    """Self-supervised training with the architecture's own objective; returns (trained copy, losses, held-out).

    Parameters
    ----------
    encoder : Wav2Vec2Model or Data2VecAudioModel
        The starting encoder (not modified).
    audio : np.ndarray, shape (n, n_samples)
        Speech + music waveforms at ``sr`` (must equal 16000, the encoders' rate).
    steps, batch_size, crop_s, lr, seed
        Updates, clips per update, random crop length in s, peak learning rate, seed.
    top_k : int, optional
        data2vec: number of top teacher layers averaged into the target (default: all layers).
    ema_decay : (float, float)
        data2vec: teacher decay at the first and last update (linear in between).
    encoder_lr_scale : float
        The encoder's learning rate is ``lr * encoder_lr_scale`` (objective heads use ``lr``).
    heldout_audio : np.ndarray, shape (m, n_samples), optional
        Clips never trained on: the objective's own task is scored on them before the first update
        and after the last (:func:`masked_frame_top1`).

    Returns
    -------
    encoder : the trained copy (eval mode, on ``device``)
    losses : np.ndarray [steps]
    heldout : dict
        Empty without ``heldout_audio``; else ``init`` and ``trained`` (per-clip top-1 arrays [m], identical
        distractors dropped), ``init_strict`` / ``trained_strict`` (identical distractors beat the frame),
        ``init_loss`` / ``trained_loss`` (the objective's held-out loss per clip), ``chance``
        (1 / (distractors + 1)) and ``n_distractors``.
    """
    from tqdm.auto import tqdm

    if sr != SAMPLE_RATE:
        raise UserError(f"SSL audio at {sr} Hz: resample to {SAMPLE_RATE} Hz (the encoders' rate)")
    arch = arch_of(encoder)
    device = torch.device(device)
    crop = int(round(crop_s * sr))
    audio = _check_audio(audio, crop, "SSL audio")
    rng = np.random.default_rng(seed)
    gen_state = torch.random.fork_rng(devices=[])
    gen_state.__enter__()
    try:
        torch.manual_seed(seed)
        cfg = encoder.config
        losses = np.zeros(steps)
        if arch == "wav2vec2":
            from transformers import Wav2Vec2ForPreTraining

            model = Wav2Vec2ForPreTraining(cfg)
            model.wav2vec2.load_state_dict(encoder.state_dict())
            model.to(device).train()
            student, teacher, head = model, None, None
            params = list(model.parameters())
            enc_params = list(model.wav2vec2.parameters())
        else:
            student = copy.deepcopy(encoder).to(device).train()
            teacher = copy.deepcopy(encoder).to(device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            head = torch.nn.Linear(cfg.hidden_size, cfg.hidden_size).to(device)
            params = list(student.parameters()) + list(head.parameters())
            enc_params = list(student.parameters())
            k = int(top_k or cfg.num_hidden_layers)
        opt, sched = _optimizer(params, lr, steps, enc_params, encoder_lr_scale)
        amp = Amp(device)  # AMP on CUDA only; on the CPU the plain fp32 calls, bit-identical
        n_frames = frame_count(encoder, crop)
        k_neg = int(getattr(cfg, "num_negatives", 20) or 20)

        def score_heldout():
            return masked_frame_top1(arch, heldout, crop, cfg.mask_time_prob, cfg.mask_time_length, k_neg, seed,
                                     device, model=model if arch == "wav2vec2" else None, student=student,
                                     teacher=teacher, head=head, top_k=None if arch == "wav2vec2" else k,
                                     details=True)

        heldout = None if heldout_audio is None else _check_audio(heldout_audio, crop, "held-out SSL audio")
        scores = {}
        if heldout is not None:
            scores.update(_named(score_heldout(), "init"))
        for step in tqdm(range(steps), disable=not verbose, desc=f"ssl {arch}"):
            idx, starts = _crops(audio, batch_size, crop, rng)
            xb = torch.from_numpy(np.stack([audio[i, s:s + crop] for i, s in zip(idx, starts)])).to(device)
            xb = _normalize(xb)
            mask_np = span_mask(batch_size, n_frames, cfg.mask_time_prob, cfg.mask_time_length, rng)
            mask = torch.from_numpy(mask_np).to(device)
            if arch == "wav2vec2":
                frac = step / max(1, steps - 1)
                model.set_gumbel_temperature(max(2.0 * (0.5 / 2.0) ** frac, 0.5))
                neg = sample_negatives(mask_np, cfg.num_negatives, rng)
                with amp.autocast():
                    out = model(xb, mask_time_indices=mask, sampled_negative_indices=torch.from_numpy(neg).to(device))
                loss = out.loss.float() / mask.sum()
            else:
                with torch.no_grad(), amp.autocast():
                    hs = teacher(xb, output_hidden_states=True).hidden_states[-k:]
                target = torch.stack([F.instance_norm(h.float().transpose(1, 2)).transpose(1, 2) for h in hs]).mean(0)
                with amp.autocast():
                    pred = head(student(xb, mask_time_indices=mask).last_hidden_state)
                loss = F.mse_loss(pred[mask].float(), target[mask])
            opt.zero_grad(set_to_none=True)
            amp.backward(loss)
            amp.step(opt, params, 5.0)
            sched.step()
            if arch == "data2vec":
                tau = ema_decay[0] + (ema_decay[1] - ema_decay[0]) * step / max(1, steps - 1)
                with torch.no_grad():
                    for pt, ps in zip(teacher.parameters(), student.parameters()):
                        pt.mul_(tau).add_(ps.detach(), alpha=1 - tau)
            losses[step] = float(loss.detach())
        if heldout is not None:
            scores.update(_named(score_heldout(), "trained"))
            scores.update(chance=1.0 / (k_neg + 1), n_distractors=k_neg)
    finally:
        gen_state.__exit__(None, None, None)
    trained = model.wav2vec2 if arch == "wav2vec2" else student
    return trained.eval(), losses, scores


def _named(scores: dict, when: str) -> dict:
    """``{top1, top1_strict, loss}`` of :func:`masked_frame_top1` as ``{when, when_strict, when_loss}``."""
    return {when: scores["top1"], f"{when}_strict": scores["top1_strict"], f"{when}_loss": scores["loss"]}


def _top1_among_distractors(pred: torch.Tensor, target: torch.Tensor, mask: np.ndarray, neg: np.ndarray,
                            ties: str = "drop") -> np.ndarray:
    """Per clip: the fraction of masked frames whose prediction is strictly closer (cosine) to its own
    target than to every distractor.

    ``ties="drop"`` (the declared measure): a distractor identical to the frame's target (for wav2vec 2.0
    the same quantised code) is not a distractor, it *is* the target, so it is dropped, as wav2vec 2.0's
    contrastive loss drops it (fairseq's ``neg_is_pos``; ``Wav2Vec2ForPreTraining`` sets its logit to
    -inf). A frame left with no distractor counts as wrong, so a collapsed target, the same at every
    frame, still identifies nothing. ``ties="lose"``: identical distractors stay and beat the frame
    (stricter; reported for information).
    """
    if ties not in ("drop", "lose"):
        raise ValueError(f"ties must be 'drop' or 'lose', got {ties!r}")
    b, t, d = target.shape
    k = neg.shape[-1]
    negs = target.reshape(-1, d)[torch.from_numpy(neg.reshape(-1)).to(target.device)].reshape(b, t, k, d)
    pos = F.cosine_similarity(pred, target, dim=-1)                       # [b, t]
    sim = F.cosine_similarity(pred[:, :, None], negs, dim=-1)             # [b, t, k]
    m = torch.from_numpy(mask).to(target.device)
    if ties == "drop":
        same = (negs == target[:, :, None]).all(-1)
        correct = (pos > sim.masked_fill(same, -math.inf).amax(-1)) & ~same.all(-1)
    else:
        correct = pos > sim.amax(-1)
    correct = (correct & m).sum(1).float()
    return (correct / m.sum(1).clamp(min=1).float()).cpu().numpy()


def _objective_loss(arch: str, pred: torch.Tensor, target: torch.Tensor, mask: np.ndarray, neg: np.ndarray,
                    temperature: float = 0.1) -> np.ndarray:
    """Per clip: the SSL objective's loss at masked frames, averaged over them. wav2vec 2.0: the contrastive
    cross-entropy of the positive among the distractors (cosine / ``temperature``; distractors identical to
    the target dropped, as in its loss); data2vec: the mean squared error of the prediction."""
    m = torch.from_numpy(mask).to(target.device)
    if arch == "wav2vec2":
        b, t, d = target.shape
        negs = target.reshape(-1, d)[torch.from_numpy(neg.reshape(-1)).to(target.device)].reshape(b, t, -1, d)
        cand = torch.cat([target[:, :, None], negs], 2)
        logits = F.cosine_similarity(pred[:, :, None], cand, dim=-1) / temperature
        same = torch.cat([torch.zeros_like(m[:, :, None]), (negs == target[:, :, None]).all(-1)], 2)
        per_frame = -torch.log_softmax(logits.masked_fill(same, -math.inf), -1)[..., 0]
    else:
        per_frame = ((pred - target) ** 2).mean(-1)
    per_frame = per_frame.masked_fill(~m, 0.0)
    return (per_frame.sum(1) / m.sum(1).clamp(min=1).float()).cpu().numpy()


@torch.no_grad()
def masked_frame_top1(arch: str, audio: np.ndarray, crop: int, mask_prob: float, mask_length: int,
                      n_distractors: int, seed: int, device, model=None, student=None, teacher=None, head=None,
                      top_k: int | None = None, batch_size: int = 8, details: bool = False):
    """The SSL objective's own task on clips: identify each masked frame's target among distractors.

    Both objectives predict something at masked frames: wav2vec 2.0 its quantised latent (the
    positive of the contrastive loss), data2vec the teacher's averaged top-K target. Every clip is cut
    into its whole, non-overlapping crops of ``crop`` samples (the training crop length; a remainder
    shorter than a crop is left out), and in each crop, with span masks and ``n_distractors``
    distractors per masked frame (other masked frames of the same crop) drawn from a generator seeded
    by ``seed`` (the same draws for every model scored with that seed), a frame counts as correct when
    the prediction's cosine similarity to its own target beats every distractor that differs from the
    target (:func:`_top1_among_distractors`, ``ties="drop"``). Chance is about
    ``1 / (n_distractors + 1)``; a collapsed target (all frames alike) scores 0.

    Returns
    -------
    np.ndarray [n_clips]: the fraction of masked frames identified, per clip (the mean over its crops);
    with ``details``, a dict of per-clip arrays ``top1`` (that), ``top1_strict`` (identical distractors
    beat the frame) and ``loss`` (:func:`_objective_loss`).
    """
    rng = np.random.default_rng([int(seed), 7919])
    n_clips, n_crops = audio.shape[0], max(1, audio.shape[1] // crop)
    audio = np.ascontiguousarray(audio[:, :n_crops * crop]).reshape(n_clips * n_crops, crop)
    out = {"top1": [], "top1_strict": [], "loss": []}
    mods = [m for m in (model, student, teacher, head) if m is not None]
    was = [m.training for m in mods]
    for m in mods:
        m.eval()
    try:
        for i in range(0, audio.shape[0], batch_size):
            xb = _normalize(torch.from_numpy(audio[i:i + batch_size]).to(device))
            enc = model.wav2vec2 if arch == "wav2vec2" else student
            n_frames = frame_count(enc, crop)
            mask_np = span_mask(xb.shape[0], n_frames, mask_prob, mask_length, rng)
            neg = sample_negatives(mask_np, n_distractors, rng)
            mask = torch.from_numpy(mask_np).to(device)
            if arch == "wav2vec2":
                o = model(xb, mask_time_indices=mask)
                pred, target = o.projected_states, o.projected_quantized_states
                temperature = float(getattr(model.config, "contrastive_logits_temperature", 0.1))
            else:
                hs = teacher(xb, output_hidden_states=True).hidden_states[-int(top_k):]
                target = torch.stack([F.instance_norm(h.transpose(1, 2)).transpose(1, 2) for h in hs]).mean(0)
                pred = head(student(xb, mask_time_indices=mask).last_hidden_state)
                temperature = 0.1
            pred, target = pred.float(), target.float()
            out["top1"].append(_top1_among_distractors(pred, target, mask_np, neg))
            if details:
                out["top1_strict"].append(_top1_among_distractors(pred, target, mask_np, neg, ties="lose"))
                out["loss"].append(_objective_loss(arch, pred, target, mask_np, neg, temperature))
    finally:
        for m, w in zip(mods, was):
            m.train(w)
    per_clip = {k: np.concatenate(v).reshape(n_clips, n_crops).mean(1) for k, v in out.items() if v}
    return per_clip if details else per_clip["top1"]


def encoder_frame_times(n_frames: int, sr: int, hop: int = 320, receptive: int = 400) -> np.ndarray:
    """Centre of every encoder frame in s (frame k covers samples [k*hop, k*hop + receptive))."""
    return (np.arange(n_frames) * hop + receptive / 2) / sr


def roll_at_frames(piano_roll: np.ndarray, frame_times_s: np.ndarray, n_frames: int, start_s: np.ndarray,
                   sr: int, hop: int = 320, receptive: int = 400) -> np.ndarray:
    """Piano-roll targets [b, n_frames, 128] at the encoder's frame centres for crops starting at ``start_s``.

    Encoder frame k covers samples [k*hop, k*hop + receptive); its centre is mapped to the nearest
    piano-roll frame.
    """
    centres = encoder_frame_times(n_frames, sr, hop, receptive)                  # [T] s within the crop
    t = np.asarray(start_s)[:, None] + centres[None, :]                          # [b, T]
    j = np.clip(np.searchsorted(frame_times_s, t), 1, len(frame_times_s) - 1)
    left = frame_times_s[j - 1]
    j = np.where(np.abs(t - left) <= np.abs(frame_times_s[j] - t), j - 1, j)
    return np.asarray(piano_roll)[np.arange(t.shape[0])[:, None], j]


class TranscriptionModel(torch.nn.Module):
    """Encoder plus a frame-wise linear piano-roll head (128 MIDI notes, logits)."""

    def __init__(self, encoder, n_notes: int = 128):
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, n_notes)

    def forward(self, x: torch.Tensor, mask_time_indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(_normalize(x), mask_time_indices=mask_time_indices).last_hidden_state)


def train_transcription(encoder, audio: np.ndarray, piano_roll: np.ndarray, frame_times_s: np.ndarray, sr: int,
                        steps: int = 200, batch_size: int = 8, crop_s: float = 2.0, lr: float = 5e-4,
                        seed: int = 0, device="cpu", pos_weight: float | None = None,
                        encoder_lr_scale: float = 1.0, mask_time_prob: float | None = 0.0,
                        verbose: bool = False):
    """Supervised frame-wise transcription (BCE on a 128-note piano roll); returns (encoder copy, model, losses).

    Parameters
    ----------
    encoder : Wav2Vec2Model or Data2VecAudioModel
        The starting encoder (not modified).
    audio : np.ndarray, shape (n, n_samples)
        Music at ``sr`` (16000).
    piano_roll : np.ndarray of bool, shape (n, n_roll_frames, 128)
    frame_times_s : np.ndarray, shape (n_roll_frames,)
        Time of every piano-roll frame in s.
    steps, batch_size, crop_s, lr, seed
        As in :func:`train_ssl` (keep them equal across conditions).
    pos_weight : float, optional
        BCE weight of positive (sounding) frames.
    encoder_lr_scale : float
        The encoder's learning rate is ``lr * encoder_lr_scale`` (the head uses ``lr``).
    mask_time_prob : float or None
        SpecAugment time masking while fine-tuning: 0.0 (default) turns it off, None keeps the encoder's
        own ``config.mask_time_prob`` (the ci configs carry the SSL objective's 0.5, which hides half the
        frames a frame-wise transcriber is scored on; wav2vec 2.0's fine-tuning recipes use about 0.05).
        The spans are drawn by :func:`span_mask` from this run's seeded generator and passed to the
        encoder (transformers' own masking draws from numpy's global state, so a rebuild would differ).
    """
    from tqdm.auto import tqdm

    if sr != SAMPLE_RATE:
        raise UserError(f"transcription audio at {sr} Hz: resample to {SAMPLE_RATE} Hz (the encoders' rate)")
    crop = int(round(crop_s * sr))
    audio = _check_audio(audio, crop, "transcription audio")
    piano_roll = np.asarray(piano_roll)
    if piano_roll.ndim != 3 or piano_roll.shape[0] != audio.shape[0] or piano_roll.shape[2] != 128:
        raise UserError(f"piano_roll must be [n_clips, frames, 128] matching audio, got {piano_roll.shape}")
    frame_times_s = np.asarray(frame_times_s, dtype=np.float64)
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TranscriptionModel(copy.deepcopy(encoder)).to(device).train()
        cfg = model.encoder.config
        p_mask = float(cfg.mask_time_prob if mask_time_prob is None else mask_time_prob)
        cfg.mask_time_prob = 0.0        # masks come from span_mask and this run's rng, not numpy's global state
        params = list(model.parameters())
        opt, sched = _optimizer(params, lr, steps, list(model.encoder.parameters()), encoder_lr_scale)
        n_frames = frame_count(encoder, crop)
        pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=device)
        amp = Amp(device)  # AMP on CUDA only; on the CPU the plain fp32 calls, bit-identical
        losses = np.zeros(steps)
        for step in tqdm(range(steps), disable=not verbose, desc="transcription"):
            idx, starts = _crops(audio, batch_size, crop, rng)
            xb = torch.from_numpy(np.stack([audio[i, s:s + crop] for i, s in zip(idx, starts)])).to(device)
            yb = roll_at_frames(piano_roll[idx], frame_times_s, n_frames, starts / sr, sr)
            yb = torch.from_numpy(yb.astype(np.float32)).to(device)
            mask = None
            if p_mask > 0:
                mask = torch.from_numpy(span_mask(batch_size, n_frames, p_mask, cfg.mask_time_length, rng,
                                                  min_masks=cfg.mask_time_min_masks)).to(device)
            with amp.autocast():
                logits = model(xb, mask)
            loss = F.binary_cross_entropy_with_logits(logits.float(), yb, pos_weight=pw)
            opt.zero_grad(set_to_none=True)
            amp.backward(loss)
            amp.step(opt, params, 5.0)
            sched.step()
            losses[step] = float(loss.detach())
        cfg.mask_time_prob = p_mask     # the value it was fine-tuned with
    model.eval()
    return model.encoder, model, losses


@torch.no_grad()
def predict_roll_logits(model: TranscriptionModel, audio: np.ndarray, device="cpu", batch_size: int = 8) -> np.ndarray:
    """Piano-roll logits [n_clips, encoder frames, 128] of whole clips."""
    model = model.to(device).eval()
    audio = np.asarray(audio, dtype=np.float32)
    return np.concatenate([model(torch.from_numpy(audio[i:i + batch_size]).to(device)).cpu().numpy()
                           for i in range(0, audio.shape[0], batch_size)])


def transcription_heldout(model: TranscriptionModel, train_audio: np.ndarray, train_roll: np.ndarray,
                          heldout_audio: np.ndarray, heldout_roll: np.ndarray, frame_times_s: np.ndarray, sr: int,
                          device="cpu", n_threshold_clips: int = 16,
                          thresholds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> dict:
    """The transcription model's own task on held-out clips, beside the note-prior baseline.

    The decision threshold on the sigmoid is the one with the best mean frame F1 on (up to
    ``n_threshold_clips``) training clips; the note prior (:func:`analysis.transcription.note_prior`)
    comes from every training clip's roll. Both are then scored on the held-out clips at the
    encoder's frames (frame F1 and onset-only note F1, :func:`analysis.transcription.transcription_scores`).

    Parameters
    ----------
    model : TranscriptionModel
    train_audio, train_roll : np.ndarray
        The training clips [n, samples] and rolls [n, roll frames, 128] (threshold and prior).
    heldout_audio, heldout_roll : np.ndarray
        Clips never trained on, same layout and ``frame_times_s``.
    frame_times_s : np.ndarray
        Times of the roll frames in s.
    sr : int
        Sample rate (16000).

    Returns
    -------
    dict with per-clip arrays ``frame_f1``, ``note_f1``, ``prior_frame_f1``, ``prior_note_f1`` and
    ``frame_f1_gain`` (model - prior), the chosen ``threshold``, ``prior_notes`` (MIDI numbers) and
    ``n_clips``.
    """
    from analysis.transcription import note_prior, prior_roll, transcription_scores

    frame_times_s = np.asarray(frame_times_s, dtype=np.float64)
    held = np.asarray(heldout_audio, dtype=np.float32)
    logits = predict_roll_logits(model, held, device)
    n_frames = logits.shape[1]
    enc_t = encoder_frame_times(n_frames, sr)
    y_held = roll_at_frames(heldout_roll, frame_times_s, n_frames, np.zeros(len(held)), sr)
    n_tr = min(int(n_threshold_clips), len(train_audio))
    y_train = roll_at_frames(train_roll, frame_times_s, n_frames, np.zeros(len(train_roll)), sr)
    train_logits = predict_roll_logits(model, np.asarray(train_audio[:n_tr], dtype=np.float32), device)
    best = max(thresholds, key=lambda th: transcription_scores(
        y_train[:n_tr], train_logits > math.log(th / (1 - th)), enc_t)["frame_f1"].mean())
    est = transcription_scores(y_held, logits > math.log(best / (1 - best)), enc_t)
    prior = note_prior(y_train)
    base = transcription_scores(y_held, prior_roll(prior, n_frames)[None].repeat(len(held), 0), enc_t)
    return {"frame_f1": est["frame_f1"], "note_f1": est["note_f1"], "prior_frame_f1": base["frame_f1"],
            "prior_note_f1": base["note_f1"], "frame_f1_gain": est["frame_f1"] - base["frame_f1"],
            "threshold": float(best), "prior_notes": np.flatnonzero(prior).tolist(), "n_clips": int(len(held))}
