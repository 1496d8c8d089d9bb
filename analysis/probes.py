"""Linear probes: batched softmax regression, chord (majmin) and onset scoring with mir_eval.

The probe is an L2-regularised multinomial logistic regression fitted by full-batch L-BFGS in
torch, batched over groups (e.g. layers): features ``[groups, n, dim]`` share targets ``[n]``.
Features are standardised with the training mean and standard deviation of each group.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import UserError

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NO_CHORD = "N"


def chord_vocabulary() -> list:
    """The 25 majmin classes: 12 major, 12 minor, then no-chord (class 24)."""
    return [f"{p}:maj" for p in PITCH_CLASSES] + [f"{p}:min" for p in PITCH_CLASSES] + [NO_CHORD]


def chord_labels_to_classes(labels) -> np.ndarray:
    """Map mir_eval chord labels to majmin classes (0-11 maj, 12-23 min, 24 N, -1 other/unknown).

    Chords whose quality is neither a major nor a minor triad (e.g. "X", "C:dim") map to -1 so
    they are left out of training, as mir_eval's majmin comparison leaves them out of scoring.
    """
    import mir_eval

    out = np.full(len(labels), -1, dtype=np.int64)
    cache = {}
    for i, lab in enumerate(labels):
        if lab not in cache:
            root, bitmap, _ = mir_eval.chord.encode(lab)
            if root < 0:
                cache[lab] = 24 if lab == NO_CHORD else -1
            elif bitmap[4] and bitmap[7] and not bitmap[3]:
                cache[lab] = int(root)
            elif bitmap[3] and bitmap[7] and not bitmap[4]:
                cache[lab] = 12 + int(root)
            else:
                cache[lab] = -1
        out[i] = cache[lab]
    return out


def classes_to_chord_labels(classes) -> list:
    """Inverse of :func:`chord_labels_to_classes` for 0..24."""
    vocab = chord_vocabulary()
    classes = np.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() > 24):
        raise UserError("chord classes must be in 0..24 (12 maj, 12 min, N)")
    return [vocab[int(c)] for c in classes]


def frames_to_intervals(frame_classes, hop_s: float) -> tuple[np.ndarray, list]:
    """Merge per-frame chord classes into mir_eval (intervals, labels); frame i covers [i*hop, (i+1)*hop)."""
    c = np.asarray(frame_classes)
    if c.ndim != 1 or len(c) == 0:
        raise UserError("frame_classes must be a non-empty 1-D array")
    change = np.flatnonzero(np.diff(c)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(c)]])
    intervals = np.stack([starts * hop_s, ends * hop_s], axis=1)
    return intervals, classes_to_chord_labels(c[starts])


def labels_at_frames(intervals, labels, n_frames: int, hop_s: float) -> list:
    """Chord label sounding at each (centred) frame time ``i * hop_s`` (``N`` outside all intervals)."""
    import mir_eval

    t = np.arange(n_frames) * hop_s
    return [str(v) for v in mir_eval.util.interpolate_intervals(np.asarray(intervals, dtype=float), list(labels), t, fill_value=NO_CHORD)]


def chord_majmin_score(ref_intervals, ref_labels, est_intervals, est_labels) -> float:
    """mir_eval duration-weighted majmin accuracy of an estimate over the reference's time span.

    The reference is clipped to the estimate's span first (the estimate may cover only whole
    analysis windows); NaN when no reference chord in the span is majmin-comparable.
    """
    import mir_eval

    ref_intervals = np.asarray(ref_intervals, dtype=float)
    est_intervals = np.asarray(est_intervals, dtype=float)
    t0, t1 = est_intervals.min(), est_intervals.max()
    keep = (ref_intervals[:, 1] > t0) & (ref_intervals[:, 0] < t1)
    ri = np.clip(ref_intervals[keep], t0, t1)
    rl = [lab for lab, k in zip(ref_labels, keep) if k]
    if len(rl) == 0:
        return float("nan")
    ri, rl = mir_eval.util.adjust_intervals(ri, rl, t0, t1, NO_CHORD, NO_CHORD)
    ei, el = mir_eval.util.adjust_intervals(est_intervals, list(est_labels), t0, t1, NO_CHORD, NO_CHORD)
    merged, r, e = mir_eval.util.merge_labeled_intervals(ri, rl, ei, el)
    durations = mir_eval.util.intervals_to_durations(merged)
    comparisons = mir_eval.chord.majmin(r, e)
    valid = comparisons >= 0
    if not np.any(valid) or durations[valid].sum() <= 0:
        return float("nan")
    return float(mir_eval.chord.weighted_accuracy(comparisons, durations))


@dataclass
class SoftmaxProbe:
    """Fitted batched probe. ``weight`` [groups, dim, classes], ``bias`` [groups, classes]."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for features ``x`` [groups, n, dim] -> [groups, n, classes]."""
        x = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        return np.einsum("gnd,gdc->gnc", x, self.weight) + self.bias[:, None, :]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(-1)

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)


def fit_softmax_probe(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, max_iter: int = 100, device="cpu"
) -> SoftmaxProbe:
    """Fit one L2-regularised multinomial logistic regression per group, all at once.

    Parameters
    ----------
    x : np.ndarray [groups, n, dim] or [n, dim]
        Training features (a 2-D input is one group).
    y : np.ndarray int [n]
        Class indices in ``0..n_classes-1``; entries < 0 are ignored.
    n_classes : int
    l2 : float
        Penalty on the squared weights (per sample, i.e. added to the mean cross-entropy).
    max_iter : int
        L-BFGS iterations.
    device : str or torch.device

    Returns
    -------
    SoftmaxProbe
        Deterministic (full-batch L-BFGS from zero weights).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    y = np.asarray(y)
    if x.ndim != 3 or x.shape[1] != len(y):
        raise UserError(f"probe features must be [groups, n, dim] with n = len(y) = {len(y)}; got {x.shape}")
    keep = y >= 0
    x, y = x[:, keep], y[keep]
    if len(y) == 0:
        raise UserError("probe has no labelled training samples; check the labels")
    mean = x.mean(1, keepdims=True)
    std = x.std(1, keepdims=True) + 1e-6
    xt = torch.as_tensor((x - mean) / std, device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    g, n, d = xt.shape
    w = torch.zeros(g, d, n_classes, device=device, requires_grad=True)
    b = torch.zeros(g, n_classes, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = torch.einsum("gnd,gdc->gnc", xt, w) + b[:, None, :]
        loss = F.cross_entropy(logits.reshape(g * n, n_classes), yt.repeat(g), reduction="sum") / n
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return SoftmaxProbe(mean=mean, std=std, weight=w.detach().cpu().numpy(), bias=b.detach().cpu().numpy())


def probe_accuracy_per_item(x_train, y_train, x_test, y_test, n_classes: int, l2: float = 1e-3, device="cpu") -> np.ndarray:
    """Fit on train, return per-test-item correctness [groups, n_test] (float 0/1)."""
    probe = fit_softmax_probe(x_train, y_train, n_classes, l2=l2, device=device)
    x_test = np.asarray(x_test, dtype=np.float32)
    if x_test.ndim == 2:
        x_test = x_test[None]
    return (probe.predict(x_test) == np.asarray(y_test)[None]).astype(np.float64)


def encode_tags(train_values, test_values) -> tuple[np.ndarray, np.ndarray, list]:
    """Integer-encode string tags using the training vocabulary (unseen test values -> -1)."""
    vocab = sorted(set(map(str, train_values)))
    index = {v: i for i, v in enumerate(vocab)}
    tr = np.array([index[str(v)] for v in train_values])
    te = np.array([index.get(str(v), -1) for v in test_values])
    return tr, te, vocab


def global_features(final_cls: np.ndarray, final_sequence: np.ndarray, track: np.ndarray, n_tracks: int) -> dict:
    """Track-level features for the global tasks, averaged over each track's windows.

    Returns ``{"cls": [tracks, dim], "avg": [tracks, dim]}`` where ``avg`` is the mean of the class
    token and the time-averaged sequence tokens (Kong et al.'s (b)).
    """
    per_window = {"cls": final_cls, "avg": 0.5 * (final_cls + final_sequence.mean(axis=1))}
    out = {}
    for k, v in per_window.items():
        sums = np.zeros((n_tracks, v.shape[-1]))
        np.add.at(sums, track, v)
        out[k] = (sums / np.bincount(track, minlength=n_tracks)[:, None]).astype(np.float32)
    return out
