"""Music with ground truth, rendered from real compositions of the music21 corpus.

Scores (Bach chorales, Essen folk songs, Palestrina masses, Monteverdi madrigals, Ryan's Mammoth
fiddle tunes, Haydn and Mozart quartets...) are parsed once into small note arrays
(:func:`load_scores`, cached), then rendered with the synthesised instruments of
:mod:`stimuli.instruments` (:func:`render_excerpt`). Monophonic tunes get a simple diatonic
accompaniment (bass + block chords chosen to fit the melody), so every rendering is harmonic.

Ground truth comes from the rendered notes themselves (after tempo scaling and articulation),
never from the audio: a frame-aligned piano roll, onsets, chord labels per beat (root +
maj/min or N, mir_eval syntax), key and mode (Krumhansl-Kessler on the excerpt's notes), and
track-level tags (collection, ensemble, mode, tempo class) for global probing tasks
(:func:`render_music_set`). The ensemble and tempo class are drawn independently of the score,
so timbre is not confounded with harmony or mode.

:func:`music_source` gives one music source of a random kind (ensemble, solo, sung melody, drum
pattern, band, and sparse/quiet variants) for the AudioSet-like training corpus.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from tqdm.auto import tqdm

from harness.cache import array_manifest, content_key, generated_manifest
from harness.errors import UserError
from stimuli.instruments import (DRUM_CLASS, SINGING_CLASS, TIMBRE_CLASS, TIMBRES, VOWELS,
                                 drum_hit, random_kit, reverb, sung_note, synth_note)

DEFAULT_COLLECTIONS = ("bach", "essenFolksong", "palestrina", "monteverdi", "ryansMammoth",
                       "haydn", "mozart")
DEFAULT_QPM = 100.0
SCORES_VERSION = "music-scores-1"
MUSIC_SET_VERSION = "music-set-1"
SCORE_EXTENSIONS = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
NO_CHORD = "N"
MUSIC_CLASS = "Music"
TARGET_RMS = 0.1

# Ensembles: timbre per part (part i plays ENSEMBLES[name][i % len]); parts are ordered top-down.
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "piano": ("struck",),
    "strings": ("bowed",),
    "winds": ("flute", "blown", "blown", "brass"),
    "brass": ("brass",),
    "organ": ("organ",),
    "guitar": ("plucked",),
    "baroque": ("bowed", "harpsichord", "bowed", "harpsichord"),
    "mallets": ("mallet", "mallet", "plucked"),
    "mixed": ("flute", "bowed", "struck", "plucked"),
    "choir": ("voice",),
}
# quarter notes per minute
TEMPO_CLASSES: dict[str, tuple[float, float]] = {"slow": (50.0, 76.0), "medium": (76.0, 110.0),
                                                 "fast": (110.0, 160.0)}
# Krumhansl & Kessler (1982) key profiles, C major / C minor
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class ScoreNotes:
    """The notes of one score, in seconds at the score's tempo ``qpm``.

    Attributes
    ----------
    score_id : str
        Corpus path stem (plus ``#<number>`` for a tune of a multi-tune file).
    collection : str
        music21 corpus collection (composer) name.
    onset_s, offset_s : np.ndarray, float64, shape (n_notes,)
        Note start and end in seconds at ``qpm`` (ties merged, sorted by onset).
    midi : np.ndarray, int16, shape (n_notes,)
        MIDI pitch.
    part : np.ndarray, int16, shape (n_notes,)
        Part index, 0 = top part.
    qpm : float
        Quarter notes per minute at which the seconds are given (the score's first metronome mark,
        else DEFAULT_QPM).
    key : str
        music21's key analysis of the whole score, e.g. "G major".
    """

    score_id: str
    collection: str
    onset_s: np.ndarray
    offset_s: np.ndarray
    midi: np.ndarray
    part: np.ndarray
    qpm: float
    key: str

    @property
    def n_parts(self) -> int:
        return int(self.part.max()) + 1 if self.part.size else 0

    @property
    def duration_s(self) -> float:
        return float(self.offset_s.max()) if self.offset_s.size else 0.0

    @property
    def beat_s(self) -> float:
        """One quarter note in seconds at ``qpm``."""
        return 60.0 / self.qpm


@dataclass
class NoteList:
    """Rendered notes relative to an excerpt's start (an onset may be negative: a note already
    sounding when the excerpt begins). ``offset_s`` is the sounding end (articulation applied)."""

    onset_s: np.ndarray
    offset_s: np.ndarray
    midi: np.ndarray
    part: np.ndarray
    velocity: np.ndarray
    timbre: list = field(default_factory=list)
    beat_s: float = 0.5
    beat_phase_s: float = 0.0

    def __len__(self) -> int:
        return int(self.onset_s.size)


@dataclass
class MusicSet:
    """Rendered music clips with frame-aligned ground truth.

    Attributes
    ----------
    audio : np.ndarray, float32, shape (n_tracks, n_samples)
    sr : int
    frame_times_s : np.ndarray, shape (n_frames,)
        Frame i covers [frame_times_s[i], frame_times_s[i] + frame_hop_s).
    piano_roll : np.ndarray, bool, shape (n_tracks, n_frames, 128)
        True where onset_s <= frame time < offset_s for a note of that MIDI pitch.
    onsets_s : list of np.ndarray
        Sorted note onsets in [0, clip_s) per track (simultaneous onsets within 30 ms merged).
    chords : list of (np.ndarray [k, 2] seconds, list of str)
        Chord intervals and labels per track in mir_eval syntax ("C:maj", "A:min", "N").
    chord_frames : np.ndarray of str, shape (n_tracks, n_frames)
    key, mode : list of str
        Excerpt key ("Eb major", mir_eval.key syntax) and "major"/"minor".
    tags : dict of str -> np.ndarray of str
        Track-level labels: "collection", "ensemble", "mode", "tempo_class".
    track_ids : list of str
    notes : list of NoteList
    """

    audio: np.ndarray
    sr: int
    frame_times_s: np.ndarray
    piano_roll: np.ndarray
    onsets_s: list
    chords: list
    chord_frames: np.ndarray
    key: list
    mode: list
    tags: dict
    track_ids: list
    notes: list
    qpm: np.ndarray

    def __len__(self) -> int:
        return int(self.audio.shape[0])


# --------------------------------------------------------------------------- score loading

def _music21():
    try:
        import music21
        from music21 import corpus  # noqa: F401
    except ImportError:  # pragma: no cover - hard dependency
        raise UserError("music21 is not installed; install it with `pip install music21`") from None
    return music21


def key_name(tonic_pc: int, mode: str) -> str:
    """mir_eval key label, e.g. key_name(3, "minor") == "Eb minor"."""
    return f"{PITCH_CLASS_NAMES[int(tonic_pc) % 12]} {mode}"


def _score_paths(collection: str) -> list:
    from music21 import corpus

    paths = [p for p in corpus.getComposer(collection) if str(p).lower().endswith(SCORE_EXTENSIONS)]
    if not paths:
        raise UserError(f"music21 corpus collection {collection!r} has no scores; use e.g. "
                        f"{DEFAULT_COLLECTIONS}")
    return sorted(paths, key=str)


def _abc_tune_numbers(path) -> list[int]:
    try:
        text = open(path, encoding="latin-1").read()
    except OSError:
        return []
    return [int(x) for x in re.findall(r"^X:\s*(\d+)", text, flags=re.M)]


def _extract_notes(score, score_id: str, collection: str) -> ScoreNotes | None:
    from music21 import harmony, tempo

    parts = list(score.parts) or [score]
    on, off, midi, part = [], [], [], []
    for pi, p in enumerate(parts):
        flat = p.flatten().stripTies()
        for el in flat.notes:
            if isinstance(el, harmony.Harmony):
                continue
            ql = float(el.quarterLength)
            if ql <= 0 or not getattr(el, "pitches", None):
                continue
            o = float(el.offset)
            for pt in el.pitches:
                on.append(o)
                off.append(o + ql)
                midi.append(pt.midi)
                part.append(pi)
    if len(on) < 16:
        return None
    qpm = DEFAULT_QPM
    for mm in score.flatten().getElementsByClass(tempo.MetronomeMark):
        if mm.number:
            qpm = float(np.clip(mm.getQuarterBPM(), 30.0, 240.0))
            break
    k = score.analyze("key")
    key = key_name(k.tonic.pitchClass, "minor" if k.mode == "minor" else "major")
    on_ql, off_ql = np.asarray(on), np.asarray(off)
    order = np.lexsort((np.asarray(midi), on_ql))
    beat_s = 60.0 / qpm
    # drop empty parts and renumber (a part of only chord symbols or rests)
    part_arr = np.asarray(part)[order]
    _, part_arr = np.unique(part_arr, return_inverse=True)
    return ScoreNotes(score_id=score_id, collection=collection, onset_s=on_ql[order] * beat_s,
                      offset_s=off_ql[order] * beat_s, midi=np.asarray(midi, np.int16)[order],
                      part=part_arr.astype(np.int16), qpm=qpm, key=key)


def _parse_scores(collections, max_scores: int, seed: int, verbose: bool) -> list[ScoreNotes]:
    _music21()
    from music21 import corpus

    rng = np.random.default_rng(seed)
    quota = [max_scores // len(collections) + (i < max_scores % len(collections))
             for i in range(len(collections))]
    out: list[ScoreNotes] = []
    bar = tqdm(total=max_scores, desc="parsing music21 scores", disable=not verbose)
    for collection, q in zip(collections, quota):
        paths = _score_paths(collection)
        got, attempts = 0, 0
        for idx in rng.permutation(len(paths)):
            if got >= q or attempts >= 4 * q + 4:
                break
            attempts += 1
            path = paths[idx]
            stem = str(path).split("/corpus/")[-1].rsplit(".", 1)[0]
            try:
                numbers = _abc_tune_numbers(path) if str(path).endswith(".abc") else []
                if len(numbers) > 1:
                    number = int(rng.choice(numbers))
                    score, sid = corpus.parse(path, number=number), f"{stem}#{number}"
                else:
                    score, sid = corpus.parse(path), stem
                if hasattr(score, "scores"):  # an Opus
                    score = score.scores[0]
                notes = _extract_notes(score, sid, collection)
            except Exception:  # noqa: BLE001 - a corpus file music21 cannot read: skip it
                continue
            if notes is not None:
                out.append(notes)
                got += 1
                bar.update(1)
    bar.close()
    return out


def load_scores(collections=DEFAULT_COLLECTIONS, max_scores: int = 28, seed: int = 0, cache=None,
                verbose: bool = False) -> list[ScoreNotes]:
    """Parse a bounded, seeded selection of music21 corpus scores into note arrays.

    Parameters
    ----------
    collections : sequence of str
        music21 corpus collections (``music21.corpus.getComposer`` names); the quota
        ``max_scores`` is split evenly across them. For multi-tune ABC files (Essen, O'Neill's)
        one random tune is parsed.
    max_scores : int
        Total number of scores to parse (music21 parsing takes ~0.2-3 s per score).
    seed : int
        Seed of the file and tune selection.
    cache : harness.cache.Cache or None
        When given, the parsed note arrays are cached (namespace "music_scores").
    verbose : bool
        Show a progress bar.

    Returns
    -------
    list of ScoreNotes
        Scores that parsed and have at least 16 notes (a file that fails to parse is skipped).
    """
    collections = tuple(collections)
    if not collections:
        raise UserError("load_scores got no collections; pass e.g. collections=('bach',)")
    if int(max_scores) < 1:
        raise UserError(f"max_scores={max_scores!r} must be >= 1")
    music21 = _music21()
    build = lambda: _parse_scores(collections, int(max_scores), int(seed), verbose)  # noqa: E731
    if cache is None:
        return build()
    corpus = generated_manifest("music21-corpus", collections=list(collections), music21=music21.__version__)
    config = content_key(corpus, max_scores=int(max_scores), seed=int(seed))
    return cache.pickle("music_scores", config, build, version=SCORES_VERSION)


def scores_from_arrays(onset_s, offset_s, midi, part=None, qpm: float = DEFAULT_QPM,
                       score_id: str = "arrays", collection: str = "synthetic") -> ScoreNotes:
    """Build a :class:`ScoreNotes` from arrays (for tests and user-supplied note lists)."""
    onset_s = np.asarray(onset_s, np.float64)
    offset_s = np.asarray(offset_s, np.float64)
    midi = np.asarray(midi, np.int16)
    part = np.zeros(midi.size, np.int16) if part is None else np.asarray(part, np.int16)
    if not (onset_s.shape == offset_s.shape == midi.shape == part.shape):
        raise UserError("onset_s, offset_s, midi and part must have the same length")
    if np.any(offset_s <= onset_s):
        raise UserError("every note needs offset_s > onset_s")
    if np.any((midi < 0) | (midi > 127)):
        raise UserError("midi pitches must be in 0..127")
    pc, mode = estimate_key(NoteList(onset_s, offset_s, midi, part, np.ones(midi.size)))
    return ScoreNotes(score_id, collection, onset_s, offset_s, midi, part, float(qpm),
                      key_name(pc, mode))


#: Chord shapes of :func:`note_and_chord_scores` (semitones above the root).
CHORD_SHAPES = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8), (0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11),
                (0, 7), (0, 12), (0, 5, 7))


def note_and_chord_scores(n_scores: int, dur_s: float, seed: int, midi_lo: int = 36, midi_hi: int = 84,
                          chord_p: float = 0.6, event_s=(0.15, 0.6), rest_p: float = 0.1,
                          qpm: float = DEFAULT_QPM) -> list[ScoreNotes]:
    """Scores of random isolated notes and chords: the transcription curriculum of the ci tier.

    Each score is a sequence of events filling ``dur_s`` seconds (at ``qpm``): with probability
    ``chord_p`` a chord (a shape from :data:`CHORD_SHAPES` on a uniform root), else one note, every
    pitch uniform in [``midi_lo``, ``midi_hi``) (chord tones above it dropped); each event lasts a
    uniform ``event_s`` seconds and is followed by a rest of the same length with probability
    ``rest_p``. Chord tones are parts 0..k-1 (top down), so the scores are polyphonic and
    :func:`render_excerpt` does not harmonise them.

    Parameters
    ----------
    n_scores : int
    dur_s : float
        Length of every score in seconds at ``qpm``.
    seed : int
    midi_lo, midi_hi : int
        Pitch range (``midi_hi`` excluded).
    chord_p, event_s, rest_p : float, (float, float), float
        Chord probability, event length range in s, rest probability.
    qpm : float
        The scores' tempo (rendering rescales it).

    Returns
    -------
    list of ScoreNotes (collection ``"notes-and-chords"``)
    """
    if int(n_scores) < 1 or not dur_s > 0 or not (0 <= midi_lo < midi_hi <= 128):
        raise UserError(f"n_scores={n_scores!r}, dur_s={dur_s!r}, midi {midi_lo}-{midi_hi}: need n_scores >= 1, "
                        "dur_s > 0 and 0 <= midi_lo < midi_hi <= 128")
    out = []
    for i in range(int(n_scores)):
        rng = np.random.default_rng([int(seed), i, 61])
        on, off, midi, part = [], [], [], []
        t = 0.0
        while t < dur_s:
            length = float(rng.uniform(*event_s))
            if rng.random() < chord_p:
                shape = np.asarray(CHORD_SHAPES[int(rng.integers(len(CHORD_SHAPES)))])
                root = int(rng.integers(midi_lo, max(midi_lo + 1, midi_hi - shape.max())))
                notes = [root + int(k) for k in shape if root + k < midi_hi]
            else:
                notes = [int(rng.integers(midi_lo, midi_hi))]
            for j, m in enumerate(sorted(notes, reverse=True)):
                on.append(t), off.append(t + length), midi.append(m), part.append(j)
            t += length * (2.0 if rng.random() < rest_p else 1.0)
        o = np.argsort(on, kind="stable")
        out.append(scores_from_arrays(np.asarray(on)[o], np.asarray(off)[o], np.asarray(midi)[o],
                                      np.asarray(part)[o], qpm=qpm, score_id=f"notes-and-chords-{seed}-{i}",
                                      collection="notes-and-chords"))
    return out


# --------------------------------------------------------------------------- harmony analysis

def _chord_templates() -> tuple[np.ndarray, list[str]]:
    tmpl, labels = [], []
    for quality, third in (("maj", 4), ("min", 3)):
        for root in range(12):
            v = np.zeros(12)
            v[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
            tmpl.append(v)
            labels.append(f"{PITCH_CLASS_NAMES[root]}:{quality}")
    return np.array(tmpl), labels


CHORD_TEMPLATES, CHORD_LABELS = _chord_templates()


def _segment_pc_weights(notes: NoteList, edges_s: np.ndarray, bass_weight: float = 0.5):
    """Duration of each pitch class in each segment [edges[i], edges[i+1]), plus a bass bonus."""
    e0, e1 = edges_s[:-1], edges_s[1:]
    ov = np.clip(np.minimum(notes.offset_s[:, None], e1[None]) - np.maximum(notes.onset_s[:, None], e0[None]),
                 0.0, None)  # [n_notes, n_seg]
    onehot = np.zeros((len(notes), 12))
    onehot[np.arange(len(notes)), notes.midi % 12] = 1.0
    w = ov.T @ onehot  # [n_seg, 12]
    if len(notes):
        sounding = ov > 0
        low = np.where(sounding, notes.midi[:, None], 999).argmin(axis=0)
        has = sounding.any(axis=0)
        w[np.nonzero(has)[0], notes.midi[low[has]] % 12] += bass_weight * (e1 - e0)[has]
    return w


def chord_labels(notes: NoteList, edges_s: np.ndarray, min_coverage: float = 0.5,
                 min_fill: float = 0.3) -> list[str]:
    """Root + maj/min (or N) label per segment by triad template matching of sounding notes.

    Parameters
    ----------
    notes : NoteList
        Sounding notes.
    edges_s : np.ndarray, shape (n_seg + 1,)
        Segment boundaries in seconds (e.g. beats).
    min_coverage : float
        Minimum fraction of the segment's pitch-class weight inside the best triad.
    min_fill : float
        Minimum sounding time (summed over notes) as a fraction of the segment length.

    Returns
    -------
    list of str
        mir_eval labels ("C:maj", "A:min"); "N" for silence, a single pitch class or poor fit.
    """
    edges_s = np.asarray(edges_s, np.float64)
    w = _segment_pc_weights(notes, edges_s)
    total = w.sum(axis=1)
    score = w @ CHORD_TEMPLATES.T - 0.5 * (total[:, None] - w @ CHORD_TEMPLATES.T)
    best = score.argmax(axis=1)
    inside = (w * CHORD_TEMPLATES[best]).sum(axis=1)
    present = (w > 0.1 * np.maximum(total[:, None], 1e-12)) & (CHORD_TEMPLATES[best] > 0)
    seg_len = np.diff(edges_s)
    ok = (total >= min_fill * seg_len) & (inside >= min_coverage * total) & (present.sum(axis=1) >= 2)
    return [CHORD_LABELS[b] if k else NO_CHORD for b, k in zip(best, ok)]


def merge_labels(edges_s: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Merge consecutive equal labels into mir_eval intervals [k, 2]."""
    keep = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    starts = np.asarray(edges_s)[keep]
    ends = np.append(starts[1:], edges_s[-1])
    return np.stack([starts, ends], axis=1), [labels[i] for i in keep]


def estimate_key(notes: NoteList) -> tuple[int, str]:
    """Krumhansl-Kessler key of duration-weighted pitch classes -> (tonic pitch class, mode)."""
    hist = np.zeros(12)
    np.add.at(hist, np.asarray(notes.midi) % 12, np.asarray(notes.offset_s) - np.asarray(notes.onset_s))
    if hist.sum() <= 0:
        return 0, "major"
    profiles = np.stack([np.roll(KK_MAJOR, r) for r in range(12)] + [np.roll(KK_MINOR, r) for r in range(12)])
    pz = (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)
    hz = (hist - hist.mean()) / (hist.std() + 1e-12)
    best = int(np.argmax(pz @ hz))
    return best % 12, ("major" if best < 12 else "minor")


def harmonise(score: ScoreNotes, beats_per_chord: int = 2) -> ScoreNotes:
    """Add a bass line and block chords to a monophonic score (diatonic triads fitted to the melody).

    Each span of ``beats_per_chord`` quarter notes gets the diatonic triad (I, ii, iii, IV, V, vi in
    major; i, III, iv, V, VI, VII in minor) covering most of the melody's sounding pitch classes
    (ties go to I, then V, then IV). Returns the score with parts 1 (chord, MIDI 55-67) and 2
    (bass, MIDI 40-52) added; polyphonic scores are returned unchanged.
    """
    if score.n_parts != 1:
        return score
    tonic_s, mode = score.key.split()
    tonic = PITCH_CLASS_NAMES.index(tonic_s)
    if mode == "major":
        degrees = [(0, "maj"), (7, "maj"), (5, "maj"), (9, "min"), (2, "min"), (4, "min")]
    else:
        degrees = [(0, "min"), (7, "maj"), (5, "min"), (8, "maj"), (3, "maj"), (10, "maj")]
    span = beats_per_chord * score.beat_s
    edges = np.arange(0.0, score.duration_s + span, span)
    mel = NoteList(score.onset_s, score.offset_s, score.midi, score.part, np.ones(score.midi.size))
    w = _segment_pc_weights(mel, edges, bass_weight=0.0)
    cands = []
    for deg, q in degrees:
        root = (tonic + deg) % 12
        cands.append(CHORD_TEMPLATES[(0 if q == "maj" else 12) + root])
    cands = np.array(cands)  # [6, 12]
    fit = w @ cands.T - 0.01 * np.arange(len(degrees))[None]  # prefer I, V, IV on ties
    choice = fit.argmax(axis=1)
    on, off, midi, part = [score.onset_s], [score.offset_s], [score.midi.astype(np.int64)], [score.part]
    for i, c in enumerate(choice):
        if w[i].sum() <= 0:
            continue
        pcs = np.nonzero(cands[c])[0]
        root = (tonic + degrees[c][0]) % 12
        chord_midi = [55 + ((pc - 55) % 12) for pc in pcs]  # inside 55..66
        bass_midi = 40 + ((root - 40) % 12)
        for m, p in [(cm, 1) for cm in chord_midi] + [(bass_midi, 2)]:
            on.append(np.array([edges[i]]))
            off.append(np.array([edges[i + 1]]))
            midi.append(np.array([m]))
            part.append(np.array([p]))
    on, off = np.concatenate(on), np.concatenate(off)
    midi, part = np.concatenate(midi).astype(np.int16), np.concatenate(part).astype(np.int16)
    order = np.lexsort((midi, on))
    return ScoreNotes(score.score_id, score.collection, on[order], off[order], midi[order],
                      part[order], score.qpm, score.key)


# --------------------------------------------------------------------------- rendering

def _ensemble_timbres(timbre_set) -> tuple[str, ...]:
    if isinstance(timbre_set, str):
        if timbre_set in ENSEMBLES:
            return ENSEMBLES[timbre_set]
        if timbre_set in TIMBRES or timbre_set == "voice":
            return (timbre_set,)
        raise UserError(f"unknown timbre set {timbre_set!r}; use one of {sorted(ENSEMBLES)} "
                        f"or a tuple of timbres from {sorted(TIMBRES) + ['voice']}")
    names = tuple(timbre_set)
    bad = [t for t in names if t not in TIMBRES and t != "voice"]
    if bad or not names:
        raise UserError(f"unknown timbres {bad} in timbre set; use names from {sorted(TIMBRES) + ['voice']}")
    return names


def ensemble_classes(timbre_set) -> list[str]:
    """AudioSet-like class names of an ensemble (always including "Music")."""
    return [MUSIC_CLASS] + sorted({TIMBRE_CLASS[t] for t in _ensemble_timbres(timbre_set)})


def _fit_register(midi: np.ndarray, timbre: str) -> np.ndarray:
    """Octave-shift pitches a timbre cannot play well (voice: MIDI 43-81; others: 28-100)."""
    lo, hi = (43, 81) if timbre == "voice" else (28, 100)
    m = midi.astype(np.int64)
    m = np.where(m < lo, m + 12 * np.ceil((lo - m) / 12), m)
    m = np.where(m > hi, m - 12 * np.ceil((m - hi) / 12), m)
    return m.astype(np.int16)


def render_excerpt(score_notes: ScoreNotes, start_s: float, dur_s: float, sr: int, timbre_set,
                   tempo_scale: float, rng: np.random.Generator, reverb_s: float, *,
                   articulation: str = "legato", rms: float = TARGET_RMS, accompany: bool = True,
                   parts=None) -> tuple[np.ndarray, NoteList]:
    """Render an excerpt of a score with an ensemble of synthesised instruments.

    Parameters
    ----------
    score_notes : ScoreNotes
        The score (monophonic scores get a bass + chord accompaniment when ``accompany``).
    start_s, dur_s : float
        Excerpt start and length in seconds of *rendered* time (after tempo scaling).
    sr : int
        Sample rate in Hz.
    timbre_set : str or tuple of str
        An :data:`ENSEMBLES` name, a timbre name, or a tuple of timbres (part i plays entry
        i % len); "voice" sings with formant synthesis.
    tempo_scale : float
        Rendered tempo / score tempo (2 = twice as fast).
    rng : np.random.Generator
        Source of velocities, synthesis randomness and the reverb IR.
    reverb_s : float
        RT60 of the room in seconds; 0 = dry.
    articulation : {"legato", "staccato"}
        Staccato shortens each note to min(0.15 s, 40 % of its length); ``notes`` reports the
        sounding offsets.
    rms : float
        RMS of the returned audio (then scaled down if the peak would exceed 0.99).
    accompany : bool
        Harmonise monophonic scores (see :func:`harmonise`).
    parts : sequence of int, optional
        Keep only these parts (after accompaniment), e.g. (0,) for the top line.

    Returns
    -------
    audio : np.ndarray, float32, shape (round(dur_s * sr),)
    notes : NoteList
        The rendered notes relative to ``start_s`` (MIDI after register fitting).
    """
    if not (np.isfinite(tempo_scale) and tempo_scale > 0):
        raise UserError(f"tempo_scale={tempo_scale!r} must be a positive number")
    if not (np.isfinite(dur_s) and dur_s > 0) or not (np.isfinite(start_s) and start_s >= 0):
        raise UserError(f"excerpt start_s={start_s!r}, dur_s={dur_s!r} must be >= 0 and > 0 seconds")
    if articulation not in ("legato", "staccato"):
        raise UserError(f"articulation={articulation!r}; use 'legato' or 'staccato'")
    if reverb_s < 0:
        raise UserError(f"reverb_s={reverb_s!r} must be >= 0 (0 = dry)")
    timbres = _ensemble_timbres(timbre_set)
    score = harmonise(score_notes) if accompany else score_notes
    on = score.onset_s / tempo_scale
    off = score.offset_s / tempo_scale
    if articulation == "staccato":
        off = on + np.minimum(0.15, 0.4 * (off - on))
    pre_s = min(start_s, reverb_s)
    end_s = start_s + dur_s
    sel = (on < end_s) & (off > start_s - pre_s)
    if parts is not None:
        sel &= np.isin(score.part, np.asarray(parts))
    on, off, part = on[sel] - start_s, off[sel] - start_s, score.part[sel].astype(np.int16)
    note_timbres = [timbres[p % len(timbres)] for p in part]
    midi = score.midi[sel].copy()
    for t in set(note_timbres):
        m = np.array([nt == t for nt in note_timbres], dtype=bool)
        midi[m] = _fit_register(midi[m], t)
    base_vel = np.where(part == 0, 0.85, 0.7)
    velocity = np.clip(base_vel + 0.08 * rng.standard_normal(part.size), 0.3, 1.0)

    n_pre = int(round(pre_s * sr))
    n_out = int(round(dur_s * sr))
    buf = np.zeros(n_pre + n_out, dtype=np.float32)
    for i in range(on.size):
        f0 = 440.0 * 2.0 ** ((int(midi[i]) - 69) / 12.0)
        first = int(round((on[i] + pre_s) * sr))
        skip = max(0, -first)
        held = float(off[i] - on[i])
        if note_timbres[i] == "voice":
            y = sung_note(f0, held, VOWELS[int(rng.integers(len(VOWELS)))], sr, rng, velocity[i])
        else:
            y = synth_note(f0, held, sr, note_timbres[i], velocity[i], rng)
        y = y[skip: buf.size - max(first, 0) + skip]
        buf[max(first, 0): max(first, 0) + y.size] += y
    if reverb_s > 0:
        buf = reverb(buf, sr, reverb_s, rng)
    audio = _normalise(buf[n_pre:], rms)
    keep = off > 0
    notes = NoteList(on[keep], off[keep], midi[keep], part[keep], velocity[keep],
                     [t for t, k in zip(note_timbres, keep) if k],
                     beat_s=score.beat_s / tempo_scale,
                     beat_phase_s=(-start_s) % (score.beat_s / tempo_scale))
    return audio, notes


def _normalise(x: np.ndarray, rms: float) -> np.ndarray:
    cur = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if cur > 0:
        x = x * (rms / cur)
        peak = float(np.abs(x).max())
        if peak > 0.99:
            x = x * (0.99 / peak)
    return x.astype(np.float32)


# --------------------------------------------------------------------------- ground truth

def piano_roll(notes: NoteList, n_frames: int, frame_hop_s: float) -> np.ndarray:
    """[n_frames, 128] bool: frame i (time i * hop) is on for a pitch when onset <= t < offset.

    Times are compared in frames with a tolerance of 1e-9 frame (``frame_hop_s * 1e-9`` s), so an onset that
    is a frame time up to float rounding starts on that frame."""
    i0 = np.clip(np.ceil(notes.onset_s / frame_hop_s - 1e-9), 0, n_frames).astype(np.int64)
    i1 = np.clip(np.ceil(notes.offset_s / frame_hop_s - 1e-9), 0, n_frames).astype(np.int64)
    count = np.zeros((n_frames + 1, 128), dtype=np.int32)
    np.add.at(count, (i0, notes.midi.astype(np.int64)), 1)
    np.add.at(count, (i1, notes.midi.astype(np.int64)), -1)
    return np.cumsum(count, axis=0)[:n_frames] > 0


def note_onsets(notes: NoteList, dur_s: float, merge_s: float = 0.03) -> np.ndarray:
    """Sorted onsets in [0, dur_s), merging onsets closer than ``merge_s`` (keeps the first)."""
    t = np.unique(notes.onset_s[(notes.onset_s >= 0) & (notes.onset_s < dur_s)])
    if t.size == 0:
        return t
    out = [t[0]]
    for x in t[1:]:
        if x - out[-1] >= merge_s:
            out.append(x)
    return np.asarray(out)


def excerpt_chords(notes: NoteList, dur_s: float) -> tuple[np.ndarray, list[str]]:
    """Chord intervals/labels of an excerpt, one decision per beat (beats from the score grid)."""
    beat, phase = notes.beat_s, notes.beat_phase_s
    inner = np.arange(phase, dur_s, beat)
    edges = np.unique(np.concatenate([[0.0], inner[inner > 1e-9], [dur_s]]))
    return merge_labels(edges, chord_labels(notes, edges))


def frame_labels(intervals: np.ndarray, labels: list[str], frame_times_s: np.ndarray) -> np.ndarray:
    """Label of the interval containing each frame time ("N" outside all intervals)."""
    idx = np.searchsorted(intervals[:, 0], frame_times_s, side="right") - 1
    lab = np.asarray(labels + [NO_CHORD], dtype=object)
    inside = (idx >= 0) & (frame_times_s < intervals[np.clip(idx, 0, None), 1])
    return lab[np.where(inside, idx, len(labels))].astype(str)


def tempo_class(qpm: float) -> str:
    """"slow" / "medium" / "fast" from quarter notes per minute (see TEMPO_CLASSES)."""
    for name, (lo, hi) in TEMPO_CLASSES.items():
        if lo <= qpm < hi:
            return name
    return "slow" if qpm < TEMPO_CLASSES["slow"][0] else "fast"


def sounding_fraction(score: ScoreNotes, tempo_scale: float, start_s: float, dur_s: float,
                      grid_s: float = 0.02) -> float:
    """Fraction of [start_s, start_s + dur_s) (rendered time) in which at least one note sounds."""
    n = max(1, int(round(dur_s / grid_s)))
    i0 = np.clip(np.floor((score.onset_s / tempo_scale - start_s) / grid_s), 0, n).astype(np.int64)
    i1 = np.clip(np.ceil((score.offset_s / tempo_scale - start_s) / grid_s), 0, n).astype(np.int64)
    count = np.zeros(n + 1, dtype=np.int64)
    np.add.at(count, i0, 1)
    np.add.at(count, i1, -1)
    return float(np.mean(np.cumsum(count)[:n] > 0))


def pick_start(score: ScoreNotes, tempo_scale: float, dur_s: float, rng: np.random.Generator,
               n_tries: int = 4, min_fraction: float = 0.9) -> float:
    """A random excerpt start (s, rendered time); up to ``n_tries`` draws, keeping the first whose
    sounding fraction is >= ``min_fraction`` (else the best), so long rests are rarely chosen."""
    latest = max(0.0, score.duration_s / tempo_scale - dur_s)
    best, best_frac = 0.0, -1.0
    for _ in range(n_tries):
        start = float(rng.uniform(0.0, latest))
        frac = sounding_fraction(score, tempo_scale, start, dur_s)
        if frac > best_frac:
            best, best_frac = start, frac
        if frac >= min_fraction:
            break
    return best


def _interleave_by_collection(scores: list[ScoreNotes], rng: np.random.Generator) -> list[int]:
    groups: dict[str, list[int]] = {}
    for i in rng.permutation(len(scores)):
        groups.setdefault(scores[i].collection, []).append(int(i))
    order, lists = [], [groups[c] for c in sorted(groups)]
    for j in range(max(len(g) for g in lists)):
        order += [g[j] for g in lists if j < len(g)]
    return order


def render_music_set(n_tracks: int, clip_s: float, sr: int, seed: int, frame_hop_s: float = 0.05,
                     timbre_sets=tuple(ENSEMBLES), cache=None, *, scores=None,
                     collections=DEFAULT_COLLECTIONS, max_scores: int = 28,
                     verbose: bool = False) -> MusicSet:
    """Render ``n_tracks`` clips of real scores with frame-aligned ground truth.

    Each track takes the next score (round-robin over collections, seeded order), an ensemble
    drawn uniformly from ``timbre_sets``, a tempo class drawn uniformly (then a tempo inside it),
    a random RT60 in [0.4, 1.6] s and a random start (avoiding long rests, see :func:`pick_start`);
    ensemble and tempo are drawn independently of the score, so they are not confounded with
    chords, key or mode.

    Parameters
    ----------
    n_tracks : int
    clip_s : float
        Clip length in seconds.
    sr : int
        Sample rate in Hz.
    seed : int
        Seed of everything (score selection, ensembles, tempi, synthesis).
    frame_hop_s : float
        Hop of the ground-truth frames in seconds.
    timbre_sets : sequence of str
        Ensemble names from :data:`ENSEMBLES`.
    cache : harness.cache.Cache or None
        Caches the parsed scores and the rendered set.
    scores : list of ScoreNotes, optional
        Use these instead of :func:`load_scores` (``collections``, ``max_scores``, ``seed``).

    Returns
    -------
    MusicSet
    """
    if int(n_tracks) < 1:
        raise UserError(f"n_tracks={n_tracks!r} must be >= 1")
    if not (clip_s > 0 and frame_hop_s > 0 and frame_hop_s < clip_s):
        raise UserError(f"clip_s={clip_s!r} and frame_hop_s={frame_hop_s!r} must be positive, hop < clip")
    timbre_sets = tuple(timbre_sets)
    for ts in timbre_sets:
        _ensemble_timbres(ts)
    if scores is None:
        scores = load_scores(collections, max_scores, seed, cache=cache, verbose=verbose)
    if not scores:
        raise UserError("no scores to render; check the music21 corpus / collections")

    def build() -> MusicSet:
        return _render_set(int(n_tracks), float(clip_s), int(sr), int(seed), float(frame_hop_s),
                           timbre_sets, scores, verbose)

    if cache is None:
        return build()
    config = content_key(scores_manifest(scores), n_tracks=int(n_tracks), clip_s=float(clip_s), sr=int(sr),
                         seed=int(seed), frame_hop_s=float(frame_hop_s), timbre_sets=list(timbre_sets))
    return cache.pickle("music_set", config, build, version=MUSIC_SET_VERSION)


def scores_manifest(scores) -> dict:
    """The data manifest of parsed scores: every score's id, tempo, key and note arrays (by content, so
    scores passed in by a caller under a known id but with other notes are another entry)."""
    arrays = [a for s in scores for a in (s.onset_s, s.offset_s, s.midi, s.part)]
    return array_manifest("scores", *arrays, scores=[[s.score_id, s.collection, float(s.qpm), s.key] for s in scores])


def _render_set(n_tracks, clip_s, sr, seed, frame_hop_s, timbre_sets, scores, verbose) -> MusicSet:
    order = _interleave_by_collection(scores, np.random.default_rng([seed, 7]))
    n_frames = int(np.floor(clip_s / frame_hop_s + 1e-9))
    frame_times = np.arange(n_frames) * frame_hop_s
    n_samples = int(round(clip_s * sr))
    audio = np.zeros((n_tracks, n_samples), dtype=np.float32)
    roll = np.zeros((n_tracks, n_frames, 128), dtype=bool)
    onsets, chords, cframes, keys, modes, ids, notes_all = [], [], [], [], [], [], []
    tags = {k: [] for k in ("collection", "ensemble", "mode", "tempo_class")}
    qpms = np.zeros(n_tracks)
    for i in tqdm(range(n_tracks), desc="rendering music", disable=not verbose):
        rng = np.random.default_rng([seed, i])
        ensemble = str(timbre_sets[int(rng.integers(len(timbre_sets)))])
        tclass = list(TEMPO_CLASSES)[int(rng.integers(len(TEMPO_CLASSES)))]
        qpm = float(rng.uniform(*TEMPO_CLASSES[tclass]))
        rt60 = float(rng.uniform(0.4, 1.6))
        score = scores[order[i % len(order)]]
        scale = qpm / score.qpm
        start = pick_start(score, scale, clip_s, rng)
        x, notes = render_excerpt(score, start, clip_s, sr, ensemble, scale, rng, rt60)
        audio[i] = x
        roll[i] = piano_roll(notes, n_frames, frame_hop_s)
        onsets.append(note_onsets(notes, clip_s))
        iv, lab = excerpt_chords(notes, clip_s)
        chords.append((iv, lab))
        cframes.append(frame_labels(iv, lab, frame_times))
        inside = NoteList(np.clip(notes.onset_s, 0, clip_s), np.clip(notes.offset_s, 0, clip_s),
                          notes.midi, notes.part, notes.velocity)
        pc, mode = estimate_key(inside)
        keys.append(key_name(pc, mode))
        modes.append(mode)
        tags["collection"].append(score.collection)
        tags["ensemble"].append(ensemble)
        tags["mode"].append(mode)
        tags["tempo_class"].append(tclass)
        qpms[i] = qpm
        ids.append(f"{score.score_id}@{start:.2f}s/{ensemble}/{qpm:.0f}qpm")
        notes_all.append(notes)
    return MusicSet(audio=audio, sr=sr, frame_times_s=frame_times, piano_roll=roll, onsets_s=onsets,
                    chords=chords, chord_frames=np.array(cframes, dtype=str).reshape(n_tracks, n_frames),
                    key=keys, mode=modes, tags={k: np.array(v, dtype=str) for k, v in tags.items()},
                    track_ids=ids, notes=notes_all, qpm=qpms)


# --------------------------------------------------------------------------- corpus sources

MUSIC_SOURCE_KINDS = {"ensemble": 0.3, "band": 0.12, "solo": 0.12, "sung": 0.16, "drums": 0.1,
                      "sparse": 0.1, "quiet": 0.1}
DRUM_PATTERNS = {  # 16 steps per bar: kick, snare, hat step lists
    "rock": ((0, 8), (4, 12), tuple(range(0, 16, 2))),
    "disco": ((0, 4, 8, 12), (4, 12), (2, 6, 10, 14)),
    "halftime": ((0, 10), (8,), tuple(range(0, 16, 2))),
    "funk": ((0, 3, 10), (4, 12), tuple(range(16))),
    "march": ((0, 8), (4, 6, 12, 14, 15), (0, 4, 8, 12)),
}


@lru_cache(maxsize=2)
def default_scores(max_scores: int = 21) -> tuple:
    """A small, fixed (seed 0) selection of scores, parsed once per process (memoised)."""
    return tuple(load_scores(DEFAULT_COLLECTIONS, max_scores, seed=0))


def drum_pattern(dur_s: float, sr: int, qpm: float, rng: np.random.Generator,
                 style: str | None = None, vary_kit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A drum-kit groove: 16th-note grid, a style from DRUM_PATTERNS, ghost notes and tom fills.

    With ``vary_kit`` every groove is played on its own :func:`stimuli.instruments.random_kit`
    (tuning, damping, cymbal brightness), otherwise on the standard kit.

    Returns
    -------
    audio : np.ndarray, float32, shape (round(dur_s * sr),)
    onsets_s : np.ndarray
        Hit times in seconds (all kinds, sorted).
    """
    style = style or list(DRUM_PATTERNS)[int(rng.integers(len(DRUM_PATTERNS)))]
    if style not in DRUM_PATTERNS:
        raise UserError(f"unknown drum style {style!r}; use one of {sorted(DRUM_PATTERNS)}")
    kicks, snares, hats = DRUM_PATTERNS[style]
    step_s = 60.0 / qpm / 4.0
    n = int(round(dur_s * sr))
    out = np.zeros(n + sr, dtype=np.float32)
    kit = random_kit(rng) if vary_kit else None
    bank = {k: [drum_hit(k, sr, rng, kit=kit) for _ in range(3)] for k in ("kick", "snare", "hat", "tom")}
    hits = []
    n_steps = int(np.ceil(dur_s / step_s))
    for s in range(n_steps):
        pos, bar = s % 16, s // 16
        fill = bar % 4 == 3 and pos >= 12
        if fill:
            hits.append(("tom", s, 0.8))
            continue
        if pos in kicks:
            hits.append(("kick", s, 0.95))
        if pos in snares:
            hits.append(("snare", s, 0.9))
        elif rng.random() < 0.08:
            hits.append(("snare", s, 0.25))  # ghost note
        if pos in hats:
            hits.append(("hat", s, 0.5 + 0.2 * (pos % 4 == 0)))
    times = []
    for kind, s, vel in hits:
        t = s * step_s + 0.004 * rng.standard_normal()  # a little human timing
        i = max(0, int(round(t * sr)))
        y = bank[kind][int(rng.integers(3))] * np.float32(vel * np.exp(0.1 * rng.standard_normal()))
        out[i: i + y.size] += y[: out.size - i]
        times.append(i / sr)
    return out[:n], np.unique(np.asarray(times))


def music_source(rng: np.random.Generator, dur_s: float, sr: int, scores=None,
                 kind: str | None = None) -> tuple[np.ndarray, list[str]]:
    """One music source of a random kind for the AudioSet-like corpus.

    Kinds (probabilities in MUSIC_SOURCE_KINDS): "ensemble" (a real score, random ensemble,
    reverb), "band" (ensemble + drum kit), "solo" (top line, one instrument), "sung" (the top line
    sung with formant synthesis, with or without accompaniment), "drums" (a groove alone),
    "sparse" (solo staccato, dry, RMS 0.03) and "quiet" (ensemble at RMS 0.02). Dense kinds
    have RMS 0.1.

    Parameters
    ----------
    rng : np.random.Generator
    dur_s : float
        Length in seconds.
    sr : int
        Sample rate in Hz.
    scores : sequence of ScoreNotes, optional
        Scores to draw from; default :func:`default_scores` (parsed once per process; pass
        ``load_scores(..., cache=cache)`` to avoid the ~15 s parse).
    kind : str, optional
        Force a kind.

    Returns
    -------
    audio : np.ndarray, float32, shape (round(dur_s * sr),)
    class_names : list of str
        "Music" plus the instrument classes (e.g. "Piano", "Singing", "Drum kit").
    """
    if kind is None:
        kinds, p = zip(*MUSIC_SOURCE_KINDS.items())
        kind = kinds[int(rng.choice(len(kinds), p=np.asarray(p) / sum(p)))]
    if kind not in MUSIC_SOURCE_KINDS:
        raise UserError(f"unknown music source kind {kind!r}; use one of {sorted(MUSIC_SOURCE_KINDS)}")
    qpm = float(rng.uniform(60.0, 150.0))
    if kind == "drums":
        audio, _ = drum_pattern(dur_s, sr, qpm, rng)
        return _normalise(reverb(audio, sr, float(rng.uniform(0.4, 1.2)), rng, wet=0.3), TARGET_RMS), \
            [MUSIC_CLASS, DRUM_CLASS]
    scores = list(scores) if scores is not None else list(default_scores())
    score = scores[int(rng.integers(len(scores)))]
    scale = qpm / score.qpm
    start = pick_start(score, scale, dur_s, rng)
    instrumental = [e for e in ENSEMBLES if e != "choir"]
    rt60 = float(rng.uniform(0.5, 2.0))
    if kind in ("ensemble", "band", "quiet"):
        ens = instrumental[int(rng.integers(len(instrumental)))] if kind != "ensemble" else \
            list(ENSEMBLES)[int(rng.integers(len(ENSEMBLES)))]
        audio, _ = render_excerpt(score, start, dur_s, sr, ens, scale, rng, rt60)
        classes = ensemble_classes(ens)
        if kind == "band":
            drums, _ = drum_pattern(dur_s, sr, qpm, rng)
            audio = _normalise(audio + 0.7 * _normalise(drums, TARGET_RMS), TARGET_RMS)
            classes = sorted(set(classes) | {DRUM_CLASS})
        if kind == "quiet":
            audio = _normalise(audio, 0.02)
        return audio, _music_first(classes)
    if kind in ("solo", "sparse"):
        timbre = list(TIMBRES)[int(rng.integers(len(TIMBRES)))]
        audio, _ = render_excerpt(score, start, dur_s, sr, timbre, scale, rng,
                                  rt60 if kind == "solo" else 0.0, parts=(0,), accompany=False,
                                  articulation="legato" if kind == "solo" else "staccato",
                                  rms=TARGET_RMS if kind == "solo" else 0.03)
        return audio, [MUSIC_CLASS, TIMBRE_CLASS[timbre]]
    # sung: top line sung, optionally with an instrumental accompaniment of the other parts
    voice, _ = render_excerpt(score, start, dur_s, sr, "voice", scale, rng, rt60, parts=(0,))
    classes = [MUSIC_CLASS, SINGING_CLASS]
    if rng.random() < 0.5:
        ens = instrumental[int(rng.integers(len(instrumental)))]
        acc, notes = render_excerpt(score, start, dur_s, sr, ens, scale, rng, rt60,
                                    parts=tuple(range(1, 8)))
        if len(notes):
            voice = _normalise(voice + 0.5 * acc, TARGET_RMS)
            classes = sorted(set(classes) | set(ensemble_classes(ens)))
    return voice, _music_first(classes)


def _music_first(classes) -> list[str]:
    rest = sorted(c for c in set(classes) if c != MUSIC_CLASS)
    return [MUSIC_CLASS] + rest
