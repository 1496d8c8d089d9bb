"""The lab tier's data: the open datasets of :mod:`stimuli.open_data`, decoded once into the cache.

Decoding a dataset (FSD50K is 108 h of 44.1-kHz audio) takes longer than a claim's analysis, and
every claim test runs in its own process, so the lab tier keeps the decoded arrays as a cache entry
(:func:`cached_clipset`). That entry's *key* is a stat manifest (every file's relative path, size and
mtime: :func:`harness.cache.folder_manifest` with ``content=False``) plus the loader's parameters, so a
second claim finds it without reading the dataset again. What is *downstream* of it (log-mels,
networks, features) is keyed by the content manifest the loader made while decoding (every file read,
by SHA-256: ``manifest["data"]``), stored in the entry. An edit that keeps a file's size and mtime is the
one change the stat key misses; :func:`harness.cache.folder_manifest` documents the same trade.

Kong et al.'s analysis sets are built here too: :func:`guitarset_analysis_set` (GuitarSet: chords,
note onsets and track-level tags, a leave-players-out split) and :func:`gtzan_analysis_set` (GTZAN:
the genre tag), both :class:`AnalysisSet`, which has the attributes of :class:`stimuli.music.MusicSet`
that the Kong et al. claims read.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness.cache import content_key, folder_manifest, remember_manifest
from harness.errors import UserError
from stimuli.dataset import ClipSet

LAB_DATA_VERSION = "lab-data-1"


def stat_manifest(root, patterns, name: str) -> dict:
    """Paths, sizes and mtimes of the files under ``root`` matching ``patterns`` (no file is read)."""
    return folder_manifest(Path(root).expanduser(), pattern=tuple(patterns), name=f"{name}.stat", content=False)


def _str_array(values) -> np.ndarray:
    values = [str(v) for v in values]
    return np.array(values, dtype=f"<U{max([1] + [len(v) for v in values])}")


def cached_clipset(cache, name: str, stat_parts: list, load: Callable[[], ClipSet], **params) -> ClipSet:
    """A :class:`ClipSet` decoded once by ``load()`` and kept in the cache.

    Parameters
    ----------
    cache : harness.cache.Cache or None
        Without a cache, ``load()`` is called.
    name : str
        The entry's namespace is ``lab-<name>``.
    stat_parts : list of dict
        :func:`stat_manifest` (and any small content manifests, e.g. an ontology) of what ``load`` reads.
    load : callable
        Returns the ClipSet (an :mod:`stimuli.open_data` loader with its parameters).
    **params
        The loader's parameters (part of the key).

    Returns
    -------
    ClipSet
        Audio memory-mapped from the entry; ``manifest`` as the loader made it (``manifest["data"]`` by
        content), with ``manifest["decoded_entry"] = True`` when read back from the cache.
    """
    if cache is None:
        return load()

    def build():
        c = load()
        cats = c.categories if c.categories is not None else []
        return {"audio": np.asarray(c.audio, np.float32), "labels": np.asarray(c.labels, bool),
                "split": _str_array(c.split), "clip_ids": _str_array(c.clip_ids),
                "class_names": _str_array(c.class_names), "music_classes": np.asarray(c.music_classes, bool),
                "speech_classes": np.asarray(c.speech_classes, bool), "categories": _str_array(cats),
                "has_categories": np.array(c.categories is not None),
                "sr": np.array(int(c.sr)), "manifest": np.array(json.dumps(c.manifest, default=str))}

    a = cache.arrays(f"lab-{name}", content_key(*stat_parts, **params), build, version=LAB_DATA_VERSION, mmap=True)
    manifest = json.loads(str(a["manifest"]))
    if isinstance(manifest.get("data"), dict):
        remember_manifest(manifest["data"])
    manifest["decoded_entry"] = True
    audio = a["audio"]
    if getattr(audio, "filename", None):  # copy-on-write: writable for the analyses, the entry is never changed
        audio = np.load(audio.filename, mmap_mode="c", allow_pickle=False)
    return ClipSet(audio=audio, sr=int(a["sr"]), labels=np.asarray(a["labels"]),
                   class_names=[str(x) for x in a["class_names"]], music_classes=np.asarray(a["music_classes"]),
                   speech_classes=np.asarray(a["speech_classes"]), split=np.asarray(a["split"]).astype(str),
                   clip_ids=[str(x) for x in a["clip_ids"]],
                   categories=np.asarray(a["categories"]).astype(str) if bool(a["has_categories"]) else None,
                   manifest=manifest)


# ----------------------------------------------------------------------------- the datasets' stat keys
def fsd50k_stat(root) -> dict:
    return stat_manifest(root, [f"{p}FSD50K.{d}/*" for p in ("", "FSD50K/")
                                for d in ("ground_truth", "dev_audio", "eval_audio")]
                         + ["ontology.json", "FSD50K/ontology.json"], "fsd50k")


def esc50_stat(root) -> dict:
    """Stat manifest of ESC-50's clips and metadata (the repository folder, or its parent holding
    ``ESC-50-master/``)."""
    return stat_manifest(root, [f"{p}{f}" for p in ("", "ESC-50-master/") for f in ("audio/*", "meta/esc50.csv")],
                         "esc50")


def librispeech_stat(root, subset: str) -> dict:
    return stat_manifest(root, [f"{subset}/*/*/*", f"LibriSpeech/{subset}/*/*/*"], f"librispeech-{subset}")


def fma_stat(root, subset: str) -> dict:
    from stimuli.open_data import FMA_SUBSETS

    subs = FMA_SUBSETS[: FMA_SUBSETS.index(subset) + 1] if subset in FMA_SUBSETS else (subset,)
    return stat_manifest(root, ["fma_metadata/tracks.csv"] + [f"fma_{s}/*/*.mp3" for s in subs], f"fma-{subset}")


def load_fsd50k_cached(cache, root, ontology=None, kim_lists=None, **params) -> ClipSet:
    """:func:`stimuli.open_data.load_fsd50k` through :func:`cached_clipset` (``params`` as the loader's)."""
    from stimuli.open_data import load_fsd50k

    parts = [fsd50k_stat(root)]
    if ontology is not None:
        parts.append(folder_manifest(Path(ontology).parent, files=[Path(ontology)], name="fsd50k.ontology"))
    if kim_lists is not None:
        parts.append(folder_manifest(Path(kim_lists).parent, files=[Path(kim_lists)], name="kim_music_names"))
    return cached_clipset(cache, "fsd50k", parts, lambda: load_fsd50k(root, ontology=ontology,
                                                                     kim_music_names_path=kim_lists, **params),
                          **{k: v for k, v in params.items() if k != "progress"})


def load_esc50_cached(cache, root, **params) -> ClipSet:
    """:func:`stimuli.open_data.load_esc50` through :func:`cached_clipset` (``params`` as the loader's)."""
    from stimuli.open_data import load_esc50

    return cached_clipset(cache, "esc50", [esc50_stat(root)], lambda: load_esc50(root, **params),
                          **{k: v for k, v in params.items() if k != "progress"})


def load_librispeech_cached(cache, root, subset: str, **params) -> ClipSet:
    from stimuli.open_data import load_librispeech

    return cached_clipset(cache, "librispeech", [librispeech_stat(root, subset)],
                          lambda: load_librispeech(root, subset=subset, **params), subset=subset,
                          **{k: v for k, v in params.items() if k != "progress"})


def load_fma_cached(cache, root, subset: str, **params) -> ClipSet:
    from stimuli.open_data import load_fma

    return cached_clipset(cache, "fma", [fma_stat(root, subset)], lambda: load_fma(root, subset=subset, **params),
                          subset=subset, **{k: v for k, v in params.items() if k != "progress"})


# ----------------------------------------------------------------------------- Kong et al.'s analysis sets
@dataclass
class AnalysisSet:
    """Tracks with the ground truth the Kong et al. claims read (the attributes they use of a MusicSet).

    Attributes
    ----------
    audio : np.ndarray, float32 [tracks, samples]
    sr : int
    onsets_s : list of np.ndarray
        Note onsets per track (simultaneous onsets within 30 ms merged, as :func:`stimuli.music.note_onsets`);
        empty arrays where the dataset has none.
    chords : list of (np.ndarray [k, 2], list of str)
        Chord intervals and mir_eval labels per track; ``(zeros [0, 2], [])`` where the dataset has none.
    tags : dict of str -> np.ndarray of str
        Track-level labels (the global tasks).
    track_ids : list of str
    splits : dict or None
        ``fit`` / ``val`` / ``pre`` / ``test`` track indices when the dataset defines a split, else None
        (the pipeline's seeded split is used).
    manifest : dict
        The loader's manifest; ``manifest["data"]`` by content.
    """

    audio: np.ndarray
    sr: int
    onsets_s: list
    chords: list
    tags: dict
    track_ids: list
    splits: dict | None = None
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.audio.shape[0])


#: GuitarSet excerpt ids: <player>_<style><progression>-<bpm>-<key>_<comp|solo>
GUITARSET_ID = re.compile(r"^(\d\d)_([A-Za-z]+)(\d+)-(\d+)-([A-G][b#]?)_(comp|solo)$")
#: GuitarSet has no official split; ours is the one stimuli.open_data.guitarset_tracks uses (by player).
GUITARSET_SPLIT = {"00": "fit", "01": "fit", "02": "fit", "03": "fit", "04": "val", "05": "test"}


def guitarset_tags(track_ids: list) -> dict:
    """Track-level tags from GuitarSet's ids: ``style`` (BN, Funk, Jazz, Rock, SS), ``playing`` (comp or solo),
    ``tempo_class`` (fast when the excerpt's bpm is at least the median of its style's, else slow) and
    ``key`` (the tonic)."""
    parsed = []
    for tid in track_ids:
        m = GUITARSET_ID.match(tid)
        if m is None:
            raise UserError(f"GuitarSet excerpt id {tid!r} is not <player>_<style><n>-<bpm>-<key>_<comp|solo>: "
                            "name the JAMS files as GuitarSet ships them")
        parsed.append(m.groups())
    style = np.array([p[1] for p in parsed])
    bpm = np.array([int(p[3]) for p in parsed])
    median = {s: float(np.median(bpm[style == s])) for s in set(style)}
    tempo = np.array(["fast" if b >= median[s] else "slow" for s, b in zip(style, bpm)])
    return {"style": style, "playing": np.array([p[5] for p in parsed]), "tempo_class": tempo,
            "key": np.array([p[4] for p in parsed])}


def guitarset_analysis_set(root, sr: int, clip_s: float, progress: bool = False) -> AnalysisSet:
    """GuitarSet's excerpts (microphone audio cut or padded to ``clip_s``) with the performed chords, the note
    onsets of the six strings and the tags of :func:`guitarset_tags`; split by player (00-03 fit, 04 val,
    05 test), so no player is in two splits."""
    from stimuli.music import note_onsets
    from stimuli.open_data import guitarset_notes, guitarset_tracks, load_guitarset_chords

    ct = load_guitarset_chords(root, sr=sr, clip_s=clip_s, which="performed", progress=progress)
    _, tracks, _ = guitarset_tracks(root)
    ann = {t["id"]: t["annotation"] for t in tracks}
    length_s = ct.audio.shape[1] / sr
    onsets = [note_onsets(guitarset_notes(ann[tid]), length_s) for tid in ct.track_ids]
    tags = guitarset_tags(ct.track_ids)
    split = np.array([GUITARSET_SPLIT.get(tid[:2], "fit") for tid in ct.track_ids])
    splits = {k: np.flatnonzero(split == k) for k in ("fit", "val", "test")}
    splits["pre"] = np.sort(np.concatenate([splits["fit"], splits["val"]]))
    short = [k for k in ("fit", "val", "test") if len(splits[k]) < 2]
    if short:
        raise UserError(f"GuitarSet at {root} has fewer than 2 excerpts in the {', '.join(short)} split(s) "
                        f"(players 00-03 fit, 04 val, 05 test): download the whole annotation and audio_mono-mic sets")
    return AnalysisSet(audio=ct.audio, sr=sr, onsets_s=onsets, chords=list(ct.chords), tags=tags,
                       track_ids=list(ct.track_ids), splits=splits, manifest=ct.manifest)


def gtzan_analysis_set(root, sr: int, clip_s: float, progress: bool = False) -> AnalysisSet:
    """GTZAN's excerpts with one global tag, ``genre`` (no chords or onsets); the pipeline's seeded split
    by track (GTZAN has no official split; its known artist repetitions are documented in docs/open_data.md)."""
    from stimuli.open_data import load_gtzan

    c = load_gtzan(root, sr=sr, clip_s=clip_s, progress=progress)
    n = len(c)
    return AnalysisSet(audio=c.audio, sr=sr, onsets_s=[np.zeros(0)] * n, chords=[(np.zeros((0, 2)), [])] * n,
                       tags={"genre": np.asarray(c.categories).astype(str)}, track_ids=list(c.clip_ids),
                       splits=None, manifest=c.manifest)


ANALYSIS_SETS = {"guitarset": guitarset_analysis_set, "gtzan": gtzan_analysis_set}
