"""Labelled clip collections shared by the embedded corpus and the real-data loaders.

A :class:`ClipSet` is the one data object every corpus produces (the embedded generator, the
AudioSet loader, the 165 natural sounds, a user's folder), so models and analyses never care
where the audio came from.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "val", "test")
TRAINING_VARIANTS = ("with_music", "without_music", "without_music_and_speech", "shuffled_labels")


@dataclass
class ClipSet:
    """Clips of equal length with multi-label targets.

    Attributes
    ----------
    audio : np.ndarray, float32, shape (n_clips, n_samples)
        Mono waveforms at ``sr``.
    sr : int
        Sample rate in Hz.
    labels : np.ndarray, bool, shape (n_clips, n_classes)
        Multi-hot label vectors.
    class_names : list of str
        One name per label column.
    music_classes, speech_classes : np.ndarray, bool, shape (n_classes,)
        Which columns count as music (Kim et al.: the Music subtree plus singing) or speech.
    split : np.ndarray of str, shape (n_clips,)
        ``"train"``, ``"val"`` or ``"test"``.
    clip_ids : list of str
        Stable identifiers (file stems, or generated ids).
    categories : np.ndarray of str, shape (n_clips,), optional
        A coarse category per clip (e.g. the 165 sounds' 11 categories), for reporting.
    manifest : dict
        Provenance: config, file list hash, confound audit; ``manifest["hash"]`` identifies the data.
    """

    audio: np.ndarray
    sr: int
    labels: np.ndarray
    class_names: list
    music_classes: np.ndarray
    speech_classes: np.ndarray
    split: np.ndarray
    clip_ids: list
    categories: np.ndarray | None = None
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    @property
    def music_label_count(self) -> np.ndarray:
        return self.labels[:, self.music_classes].sum(axis=1)

    @property
    def is_music(self) -> np.ndarray:
        """1 if every label of the clip is music-related, 0 if none is, -1 if mixed (Kim et al.)."""
        n_music = self.labels[:, self.music_classes].sum(axis=1)
        n_all = self.labels.sum(axis=1)
        out = np.full(len(self), -1, dtype=np.int8)
        out[(n_music == n_all) & (n_all > 0)] = 1
        out[n_music == 0] = 0
        return out

    @property
    def has_speech(self) -> np.ndarray:
        return self.labels[:, self.speech_classes].any(axis=1)

    def subset(self, mask: np.ndarray) -> "ClipSet":
        """Return the clips selected by a boolean mask or an index array."""
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return ClipSet(
            audio=self.audio[idx], sr=self.sr, labels=self.labels[idx],
            class_names=list(self.class_names), music_classes=self.music_classes,
            speech_classes=self.speech_classes, split=self.split[idx],
            clip_ids=[self.clip_ids[i] for i in idx],
            categories=None if self.categories is None else self.categories[idx],
            manifest=dict(self.manifest, subset_of=self.manifest.get("hash")),
        )

    def content_hash(self) -> str:
        """SHA-256 over ids, labels and split (not the audio, which the manifest pins)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.clip_ids, self.class_names], sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        h.update("\n".join(map(str, self.split)).encode())
        h.update(str(self.manifest.get("hash", "")).encode())
        return h.hexdigest()


def training_variant(clips: ClipSet, variant: str, seed: int = 0, excluded_ids: set | None = None) -> ClipSet:
    """Select (and for ``shuffled_labels`` relabel) the training material of a Kim et al. condition.

    Parameters
    ----------
    clips : ClipSet
        The full corpus (all splits).
    variant : {"with_music", "without_music", "without_music_and_speech", "shuffled_labels"}
        ``without_music`` drops every clip with any music-related label (and ``excluded_ids``,
        e.g. Kim et al.'s hand-excluded clips); ``shuffled_labels`` keeps each clip's number of
        labels but draws them at random (the memorisation condition).
    seed : int
        Seed for the label shuffle.
    excluded_ids : set of str, optional
        Clip ids to drop from the no-music variants.
    """
    from harness.errors import UserError

    if variant not in TRAINING_VARIANTS:
        raise UserError(f"unknown training variant {variant!r}: choose one of {', '.join(TRAINING_VARIANTS)}")
    if variant == "with_music":
        return clips
    if variant == "shuffled_labels":
        rng = np.random.default_rng(seed)
        n_labels = clips.labels.sum(axis=1)
        new = np.zeros_like(clips.labels)
        n_classes = clips.labels.shape[1]
        for i, k in enumerate(n_labels):
            new[i, rng.choice(n_classes, size=int(k), replace=False)] = True
        out = clips.subset(np.arange(len(clips)))
        out.labels = new
        out.manifest = dict(out.manifest, variant=variant, shuffle_seed=seed)
        return out
    keep = clips.music_label_count == 0
    if excluded_ids:
        keep &= np.array([cid not in excluded_ids for cid in clips.clip_ids])
    if variant == "without_music_and_speech":
        keep &= ~clips.has_speech
    out = clips.subset(keep)
    out.manifest = dict(out.manifest, variant=variant)
    return out
