"""Tests of music rendered from real scores with ground truth (stimuli/music.py)."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import mir_eval
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from scipy import stats

from harness.errors import UserError
from stimuli import music
from stimuli.music import (ENSEMBLES, MUSIC_SOURCE_KINDS, NoteList, chord_labels, estimate_key,
                           frame_labels, load_scores, merge_labels, music_source, note_onsets,
                           piano_roll, render_excerpt, render_music_set, scores_from_arrays)

SR = 22050
REPO = Path(__file__).resolve().parents[1]


def _notes(onset, offset, midi, part=None):
    onset, offset, midi = (np.asarray(x, float) for x in (onset, offset, midi))
    part = np.zeros(midi.size, np.int16) if part is None else np.asarray(part, np.int16)
    return NoteList(onset, offset, midi.astype(np.int16), part, np.ones(midi.size))


def median_logmel_db(x: np.ndarray, sr: int) -> float:
    """Median log-mel level (dB re 1) after RMS normalisation to 0.05 at 22,050 Hz, 64 HTK mel bands
    0-8 kHz, n_fft 551, hop 275, no filter normalisation (Kim et al.'s front end). On the 165
    natural sounds this gives -7.7 dB for music (+song) and -14.7 dB for the rest."""
    import librosa

    x = np.asarray(x, np.float64)
    if sr != 22050:
        x = librosa.resample(x, orig_sr=sr, target_sr=22050)
    x = x / np.sqrt(np.mean(x**2)) * 0.05
    mel = librosa.feature.melspectrogram(y=x, sr=22050, n_mels=64, n_fft=551, hop_length=275,
                                         fmax=8000, norm=None, htk=True)
    return float(np.median(librosa.power_to_db(mel, ref=1.0)))


@pytest.fixture(scope="module")
def real_scores():
    """Four real corpus scores: two Bach chorales (4 parts) and two Ryan's Mammoth tunes (1 part)."""
    t0 = time.process_time()
    scores = load_scores(("bach", "ryansMammoth"), max_scores=4, seed=0)
    print(f"\nparsed {len(scores)} music21 scores in {time.process_time() - t0:.1f} s CPU")
    assert len(scores) == 4
    return scores


@pytest.fixture(scope="module")
def small_set(real_scores):
    return render_music_set(8, 4.0, SR, seed=3, frame_hop_s=0.05, scores=real_scores)


# ----------------------------------------------------------------- ground-truth primitives

def test_piano_roll_frames_analytical():
    hop = 0.05
    notes = _notes([0.1, -0.2, 0.449, 0.95], [0.3, 0.05, 0.5, 2.0], [60, 64, 67, 72])
    roll = piano_roll(notes, 20, hop)
    t = np.arange(20) * hop
    assert roll.shape == (20, 128) and roll.dtype == bool
    assert np.array_equal(np.nonzero(roll[:, 60])[0], [2, 3, 4, 5])  # 0.10 <= t < 0.30
    assert np.array_equal(np.nonzero(roll[:, 64])[0], [0])  # sounding at the start
    assert np.array_equal(np.nonzero(roll[:, 67])[0], [9])  # 0.449 <= 0.45 < 0.5
    assert np.array_equal(np.nonzero(roll[:, 72])[0], np.arange(19, 20))  # cut at the clip end
    assert roll.sum() == 7 and np.all(t[roll[:, 60]] >= 0.1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-1.0, 3.0), st.floats(0.01, 2.0), st.integers(0, 127)),
                min_size=1, max_size=20))
@example([(4.323846241544402e-11, 1.0, 0)])   # found by CI: 1.7e-9 frame after frame 0, so frame 0 is off
def test_property_piano_roll_counts(notes_spec):
    hop, n_frames = 0.025, 100
    on = np.array([a for a, _, _ in notes_spec])
    off = on + np.array([d for _, d, _ in notes_spec])
    midi = np.array([m for _, _, m in notes_spec])
    roll = piano_roll(_notes(on, off, midi), n_frames, hop)
    t = np.arange(n_frames) * hop
    expected = np.zeros((n_frames, 128), bool)
    for a, b, m in zip(on, off, midi):
        tol = 1e-9 * hop                                  # piano_roll's tolerance: 1e-9 frame
        expected[(t >= a - tol) & (t < b - tol), m] = True
    assert np.array_equal(roll, expected)


def test_note_onsets_merge_and_window():
    notes = _notes([-0.5, 0.0, 0.01, 0.5, 0.52, 0.56, 3.0], [1] * 7, [60] * 7)
    assert np.allclose(note_onsets(notes, 2.0), [0.0, 0.5, 0.56])


@pytest.mark.parametrize("pcs, bass, expected", [
    ([60, 64, 67], 48, "C:maj"),
    ([57, 60, 64], 45, "A:min"),
    ([61, 65, 68], 49, "C#:maj"),
    ([63, 66, 70], 51, "Eb:min"),
    ([64, 67, 71, 74], 40, "E:min"),  # E minor 7: bass decides between G:maj and E:min
    ([67, 71, 74, 77], 43, "G:maj"),  # dominant seventh -> major triad
    ([60], 48, "N"),  # one pitch class: no chord
])
def test_chord_labels_analytical(pcs, bass, expected):
    notes = _notes([0.0] * (len(pcs) + 1), [1.0] * (len(pcs) + 1), pcs + [bass])
    labels = chord_labels(notes, np.array([0.0, 1.0]))
    assert labels == [expected]
    mir_eval.chord.encode(labels[0])


def test_chord_labels_silence_and_merge():
    notes = _notes([0.0, 0.0, 0.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 3.0, 3.0, 3.0],
                   [60, 64, 67, 57, 60, 64])
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    labels = chord_labels(notes, edges)
    assert labels == ["C:maj", "C:maj", "A:min", "N"]
    iv, lab = merge_labels(edges, labels)
    assert lab == ["C:maj", "A:min", "N"] and np.allclose(iv, [[0, 2], [2, 3], [3, 4]])
    fr = frame_labels(iv, lab, np.array([0.0, 1.99, 2.0, 3.5, 4.5]))
    assert list(fr) == ["C:maj", "C:maj", "A:min", "N", "N"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.05, 2.0), st.integers(21, 108)),
                min_size=0, max_size=30))
def test_property_chord_labels_parse_in_mir_eval(spec):
    on = np.array([a for a, _, _ in spec], float)
    off = on + np.array([d for _, d, _ in spec], float)
    midi = np.array([m for _, _, m in spec], int)
    labels = chord_labels(_notes(on, off, midi), np.linspace(0.0, 4.0, 9))
    for lab in labels:
        mir_eval.chord.encode(lab)
    mir_eval.chord.validate(labels, labels)


@pytest.mark.parametrize("scale, expected", [
    ([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60], "C major"),
    ([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57], "A minor"),
    ([63, 65, 67, 68, 70, 72, 74, 75, 70, 67, 63], "Eb major"),
])
def test_estimate_key(scale, expected):
    n = len(scale)
    pc, mode = estimate_key(_notes(np.arange(n), np.arange(n) + 1.0, scale))
    assert music.key_name(pc, mode) == expected
    mir_eval.key.validate_key(expected)


def test_harmonise_adds_bass_and_chords():
    melody = [64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 64, 62, 62]  # Ode to Joy, C major
    sc = scores_from_arrays(np.arange(15) * 0.5, np.arange(15) * 0.5 + 0.5, melody, qpm=120)
    h = music.harmonise(sc)
    assert h.n_parts == 3 and sc.key == "C major"
    assert np.all(h.midi[h.part == 2] < 53) and np.all((h.midi[h.part == 1] >= 55) & (h.midi[h.part == 1] < 67))
    labels = chord_labels(NoteList(h.onset_s, h.offset_s, h.midi, h.part, np.ones(h.midi.size)),
                          np.arange(0, 7.5 + 1e-9, 0.5))
    assert labels.count("N") == 0
    assert set(labels) <= {"C:maj", "G:maj", "F:maj", "A:min", "D:min", "E:min"}


# ----------------------------------------------------------------- rendering

def test_rendered_pitch_matches_piano_roll():
    """Monophonic organ scale: the YIN pitch of each frame is the piano roll's note (>= 90 % of frames)."""
    import librosa

    midi = [60, 62, 64, 65, 67, 69, 71, 72]
    sc = scores_from_arrays(np.arange(8) * 0.5, np.arange(8) * 0.5 + 0.5, midi, qpm=120)
    audio, notes = render_excerpt(sc, 0.0, 4.0, SR, "organ", 1.0, np.random.default_rng(0), 0.0,
                                  accompany=False)
    hop_s = 256 / SR
    roll = piano_roll(notes, int(4.0 / hop_s), hop_s)
    f0 = librosa.yin(audio.astype(float), fmin=200, fmax=600, sr=SR, frame_length=1024, hop_length=256,
                     center=False)
    t_center = np.arange(f0.size) * hop_s + 512 / SR
    frame = np.minimum((t_center / hop_s).astype(int), roll.shape[0] - 1)
    truth = roll[frame].argmax(axis=1)
    # ignore frames within 30 ms of a note change
    near = np.min(np.abs(t_center[:, None] - notes.onset_s[None]), axis=1) < 0.03
    est = np.round(librosa.hz_to_midi(f0))
    agree = np.mean(est[~near] == truth[~near])
    assert agree >= 0.9, agree


def test_onsets_match_audio_energy_rise():
    """Onset detection on the audio finds the ground-truth onsets (mir_eval F >= 0.8, +-50 ms)."""
    import librosa

    rng = np.random.default_rng(1)
    on = np.cumsum(rng.choice([0.25, 0.5, 0.75], 24))
    sc = scores_from_arrays(on, on + 0.2, rng.integers(55, 80, 24), qpm=120)
    audio, notes = render_excerpt(sc, 0.0, 8.0, SR, "piano", 1.0, rng, 0.3, accompany=False)
    truth = note_onsets(notes, 8.0)
    est = librosa.onset.onset_detect(y=audio.astype(float), sr=SR, hop_length=256, units="time")
    f, p, r = mir_eval.onset.f_measure(truth, est, window=0.05)
    print(f"\nonset F (piano melody) = {f:.2f} (P {p:.2f}, R {r:.2f}, {truth.size} onsets)")
    assert f >= 0.8


def test_excerpt_window_and_tempo_scale():
    sc = scores_from_arrays([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [60, 62, 64, 65], qpm=60)
    audio, notes = render_excerpt(sc, 1.5, 1.0, 8000, "organ", 2.0, np.random.default_rng(0), 0.0,
                                  accompany=False)
    assert audio.shape == (8000,) and audio.dtype == np.float32
    # at tempo x2 the notes are at 0, .5, 1, 1.5 s: the window [1.5, 2.5) holds only the last one
    assert list(notes.midi) == [65] and np.allclose(notes.onset_s, [0.0])
    assert notes.beat_s == pytest.approx(0.5)
    st = render_excerpt(sc, 0.0, 2.0, 8000, "organ", 1.0, np.random.default_rng(0), 0.0,
                        accompany=False, articulation="staccato")[1]
    assert np.all(st.offset_s - st.onset_s <= 0.15 + 1e-9)


def test_real_scores_parsed(real_scores):
    for s in real_scores:
        assert s.onset_s.size == s.offset_s.size == s.midi.size == s.part.size >= 16
        assert np.all(np.diff(s.onset_s) >= 0) and np.all(s.offset_s > s.onset_s)
        assert s.midi.min() >= 21 and s.midi.max() <= 108
        mir_eval.key.validate_key(s.key)
    assert {s.collection for s in real_scores} == {"bach", "ryansMammoth"}
    assert sorted(s.n_parts for s in real_scores) == [1, 1, 4, 4]


def test_load_scores_uses_cache(tmp_path):
    from harness.cache import Cache

    cache = Cache(tmp_path)
    a = load_scores(("bach",), max_scores=1, seed=5, cache=cache)
    b = load_scores(("bach",), max_scores=1, seed=5, cache=cache)
    assert cache.misses == 1 and cache.hits == 1
    assert a[0].score_id == b[0].score_id and np.array_equal(a[0].midi, b[0].midi)


def test_music_set_fields_and_labels(small_set):
    ms = small_set
    n, n_frames = 8, 80
    assert ms.audio.shape == (n, 4 * SR) and ms.audio.dtype == np.float32
    assert np.all(np.isfinite(ms.audio)) and np.all(np.abs(ms.audio) <= 1.0)
    assert ms.piano_roll.shape == (n, n_frames, 128) and ms.chord_frames.shape == (n, n_frames)
    assert np.allclose(ms.frame_times_s, np.arange(n_frames) * 0.05)
    for i in range(n):
        iv, lab = ms.chords[i]
        mir_eval.chord.validate(lab, lab)
        assert iv[0, 0] == 0.0 and iv[-1, 1] == pytest.approx(4.0) and np.all(iv[:, 1] > iv[:, 0])
        assert set(ms.chord_frames[i]) <= set(lab)
        mir_eval.key.validate_key(ms.key[i])
        assert ms.mode[i] == ms.tags["mode"][i] == ms.key[i].split()[1]
        assert np.all((ms.onsets_s[i] >= 0) & (ms.onsets_s[i] < 4.0))
        # the piano roll is the rendered notes
        assert np.array_equal(ms.piano_roll[i], piano_roll(ms.notes[i], n_frames, 0.05))
    assert set(ms.tags) == {"collection", "ensemble", "mode", "tempo_class"}
    assert set(ms.tags["ensemble"]) <= set(ENSEMBLES)
    n_chord = np.mean(ms.chord_frames != "N")
    print(f"\nfraction of frames with a chord: {n_chord:.2f}; mean polyphony "
          f"{ms.piano_roll.sum(-1).mean():.1f}")
    assert n_chord > 0.6


def test_music_set_deterministic(real_scores, small_set):
    again = render_music_set(8, 4.0, SR, seed=3, frame_hop_s=0.05, scores=real_scores)
    assert np.array_equal(again.audio, small_set.audio)
    assert again.track_ids == small_set.track_ids and again.chords[2][1] == small_set.chords[2][1]
    other = render_music_set(2, 4.0, SR, seed=4, frame_hop_s=0.05, scores=real_scores)
    assert not np.array_equal(other.audio[0], small_set.audio[0])


def test_ensemble_independent_of_labels(real_scores):
    """Ensembles are drawn independently of scores: identical ensemble/tempo sequences for a different
    score list, and no association of ensemble with mode or collection (chi-square p > 0.01)."""
    ms = render_music_set(120, 0.3, 8000, seed=11, frame_hop_s=0.1, scores=real_scores)
    swapped = render_music_set(120, 0.3, 8000, seed=11, frame_hop_s=0.1, scores=real_scores[::-1])
    assert np.array_equal(ms.tags["ensemble"], swapped.tags["ensemble"])
    assert np.array_equal(ms.tags["tempo_class"], swapped.tags["tempo_class"])
    for label in ("mode", "collection"):
        ens, lab = ms.tags["ensemble"], ms.tags[label]
        table = np.array([[np.sum((ens == e) & (lab == v)) for v in np.unique(lab)] for e in np.unique(ens)])
        if table.shape[1] < 2:
            continue
        p = stats.chi2_contingency(table).pvalue
        print(f"\nensemble x {label}: chi-square p = {p:.3f}")
        assert p > 0.01
    counts = np.unique(ms.tags["ensemble"], return_counts=True)[1]
    assert len(counts) == len(ENSEMBLES) and counts.min() >= 4


def test_music_sources(real_scores):
    rng = np.random.default_rng(2)
    levels = {}
    for kind in MUSIC_SOURCE_KINDS:
        audio, classes = music_source(rng, 3.0, 16000, scores=real_scores, kind=kind)
        assert audio.shape == (48000,) and audio.dtype == np.float32 and np.all(np.isfinite(audio))
        assert classes[0] == "Music" and len(classes) >= 2 and len(set(classes)) == len(classes)
        levels[kind] = median_logmel_db(audio, 16000)
        if kind == "sung":
            assert "Singing" in classes
        if kind in ("drums", "band"):
            assert "Drum kit" in classes
    print("\nmedian log-mel dB by kind:", {k: round(v, 1) for k, v in levels.items()})
    assert levels["sparse"] < levels["ensemble"] - 8.0


def test_music_is_dense_like_real_music(real_scores):
    """Median log-mel level of rendered ensembles vs a white-noise reference and the real 165 sounds."""
    ms = render_music_set(10, 5.0, SR, seed=21, scores=real_scores)
    ours = np.array([median_logmel_db(x, SR) for x in ms.audio])
    noise = median_logmel_db(np.random.default_rng(0).standard_normal(5 * SR), SR)
    print(f"\nrendered ensembles: median {np.median(ours):.1f} dB (range {ours.min():.1f}..{ours.max():.1f}); "
          f"white noise {noise:.1f} dB; real music (165 sounds) -7.7 dB, non-music -14.7 dB")
    assert -12.0 < np.median(ours) < noise


def test_level_matches_natural_music_if_available(real_scores):
    root = Path(os.environ.get("MEC_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve() / "natsound165"
    if not (root / "category_labels.csv").exists():
        pytest.skip(f"165 natural sounds not found at {root}; set MEC_SHARED_DATA to the shared data folder")
    import soundfile as sf

    rows = list(csv.reader(open(root / "category_labels.csv")))
    real = []
    for stem, cat in rows:
        if cat in ("Music", "Song"):
            x, sr = sf.read(root / "wav" / f"{stem}.wav")
            real.append(median_logmel_db(x if x.ndim == 1 else x.mean(1), sr))
    ours = [median_logmel_db(x, SR) for x in render_music_set(6, 2.0, SR, seed=5, scores=real_scores).audio]
    print(f"\nreal music median {np.median(real):.1f} dB, rendered {np.median(ours):.1f} dB")
    assert abs(np.median(ours) - np.median(real)) < 6.0




@pytest.mark.parametrize("call", [
    lambda s: render_excerpt(s, 0.0, 1.0, SR, "kazoo band", 1.0, np.random.default_rng(0), 0.0),
    lambda s: render_excerpt(s, 0.0, 1.0, SR, "piano", 0.0, np.random.default_rng(0), 0.0),
    lambda s: render_excerpt(s, 0.0, 1.0, SR, "piano", 1.0, np.random.default_rng(0), -1.0),
    lambda s: render_excerpt(s, 0.0, 1.0, SR, "piano", 1.0, np.random.default_rng(0), 0.0,
                             articulation="marcato"),
    lambda s: render_music_set(0, 1.0, SR, 0, scores=[s]),
    lambda s: render_music_set(2, 1.0, SR, 0, timbre_sets=("jazz",), scores=[s]),
    lambda s: load_scores((), 2),
    lambda s: music_source(np.random.default_rng(0), 1.0, SR, scores=[s], kind="opera"),
    lambda s: scores_from_arrays([0.0], [0.0], [60]),
])
def test_bad_input_raises_user_error(call):
    sc = scores_from_arrays(np.arange(16) * 0.25, np.arange(16) * 0.25 + 0.25, [60, 64, 67, 72] * 4)
    with pytest.raises(UserError):
        call(sc)


def test_pick_start_avoids_rests():
    # notes sound in [0, 2) and [6, 8) only; a 2 s window must land inside a sounding part
    sc = scores_from_arrays([0.0, 1.0, 6.0, 7.0], [1.0, 2.0, 7.0, 8.0], [60, 64, 67, 72], qpm=60)
    assert music.sounding_fraction(sc, 1.0, 0.0, 2.0) == pytest.approx(1.0)
    assert music.sounding_fraction(sc, 1.0, 3.0, 2.0) == pytest.approx(0.0)
    assert music.sounding_fraction(sc, 2.0, 0.0, 2.0) == pytest.approx(0.5)  # x2 tempo: notes end at 1 s
    rng = np.random.default_rng(0)
    fracs = [music.sounding_fraction(sc, 1.0, music.pick_start(sc, 1.0, 2.0, rng, n_tries=8), 2.0)
             for _ in range(20)]
    assert np.mean(fracs) > 0.8


def test_chord_labels_agree_with_music21_chordify():
    """On Bach chorales, our per-beat triad labels match music21's chordify (root + quality of the
    sonority at each beat, on beats where it is a major/minor triad or a 7th chord) on >= 85 %."""
    from music21 import corpus

    agree = []
    for name in ("bach/bwv347", "bach/bwv10.7"):
        score = corpus.parse(name)
        sn = music._extract_notes(score, name, "bach")
        beats = np.arange(0.0, sn.duration_s / sn.beat_s + 1e-9, 1.0)  # quarter-note grid
        flat = score.chordify().flatten().getElementsByClass("Chord")
        starts = np.array([float(c.offset) for c in flat])
        notes = NoteList(sn.onset_s / sn.beat_s, sn.offset_s / sn.beat_s, sn.midi, sn.part, np.ones(sn.midi.size))
        ours = chord_labels(notes, beats)
        for b, est in zip(beats[:-1], ours):
            c = flat[int(np.searchsorted(starts, b + 1e-6)) - 1]
            if not (c.isTriad() or c.isSeventh()) or c.quality not in ("major", "minor"):
                continue
            quality = "maj" if c.quality == "major" else "min"
            agree.append(est == f"{music.PITCH_CLASS_NAMES[c.root().pitchClass]}:{quality}")
    print(f"\nagreement with chordify: {np.mean(agree):.2f} over {len(agree)} beats")
    assert len(agree) > 80 and np.mean(agree) >= 0.85


def test_note_and_chord_scores_are_seeded_polyphonic_and_in_range():
    """The ci transcription curriculum: same seed same notes, pitches in [lo, hi), every chord tone its
    own part (so rendering does not harmonise), events back to back over the whole length."""
    a = music.note_and_chord_scores(3, 8.0, seed=5, midi_lo=40, midi_hi=70)
    b = music.note_and_chord_scores(3, 8.0, seed=5, midi_lo=40, midi_hi=70)
    c = music.note_and_chord_scores(3, 8.0, seed=6, midi_lo=40, midi_hi=70)
    assert all(np.array_equal(x.midi, y.midi) and np.array_equal(x.onset_s, y.onset_s) for x, y in zip(a, b))
    assert not all(np.array_equal(x.midi, y.midi) for x, y in zip(a, c))
    for s in a:
        assert s.midi.min() >= 40 and s.midi.max() < 70
        assert s.n_parts > 1 and music.harmonise(s) is s
        assert np.all(np.diff(s.onset_s) >= 0) and s.duration_s >= 8.0
        onsets = np.unique(s.onset_s)
        assert np.any([np.sum(s.onset_s == t) > 1 for t in onsets])          # some chords
        assert np.any([np.sum(s.onset_s == t) == 1 for t in onsets])         # some single notes
    with pytest.raises(UserError, match="n_scores"):
        music.note_and_chord_scores(0, 8.0, seed=0)
