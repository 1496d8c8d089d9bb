"""Tiny open-data folders for end-to-end runs of the lab tier on the CPU.

Each builder writes a folder in the layout its dataset ships in (the formats of
``tests/test_open_data.py``, whose helpers it reuses), just large enough for the claims' splits and
batches: FSD50K (168 two-second clips), ESC-50 (one clip per class), LibriSpeech (train-clean-100 and dev-clean), FMA small (24
tracks), MAESTRO converted to ``*.npz`` excerpts, GuitarSet (6 players x 4 excerpts with chords and
notes) and GTZAN (3 genres x 10). The audio is synthetic (tones, chords, noise bursts) and follows
the annotations, so the runs reach verdicts, not meaningful ones.

``python tests/lab_fixtures.py OUT`` builds them all under OUT and prints the options that point at
them (for a manual ``pytest -m claims --tier lab`` run).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_open_data import (FSD_NAMES, TINY_ONTOLOGY, _jams, _ontology_json, _write,  # noqa: E402
                            midi_bytes)

#: Settings that shrink every lab claim to seconds on a CPU (the same code path; passed as --set KEY=VALUE).
TINY_SETTINGS = {
    "kim2024": dict(width=0.125, epochs=1, clip_s=2.0, quilt_cut_s=1.6, quilt_clips=4, shuffled_clips=40,
                    shuffled_epochs=1),
    "grasse2026": dict(steps=2, batch_size=2, crop_s=0.5, hidden=16, n_layers=1, n_heads=2, intermediate=32,
                       conv_channels=8, mask_time_length=2, ssl_clips=8, music_tracks=4, heldout_tracks=2,
                       heldout_clips=4, clip_s=1.0, n_exemplars=1, dur_s=0.25, n_perm=20, n_boot=20),
    "kong2025": dict(n_mels=16, clip_s=4.0, crop_s=1.0, dim=16, depth=1, n_heads=2, mlp_ratio=1.0, steps=2,
                     batch_size=4, max_pretrain_clips=16, probe_frames=400, n_shifts=50, n_boot=50),
}


def set_args(paper: str) -> list:
    """``--set KEY=VALUE`` arguments of :data:`TINY_SETTINGS` for one paper."""
    return [a for k, v in TINY_SETTINGS[paper].items() for a in ("--set", f"{k}={json.dumps(v)}")]


def _noise(rng, dur_s: float, sr: int) -> np.ndarray:
    n = int(round(dur_s * sr))
    env = np.exp(-np.arange(n) / (0.05 * sr))
    burst = np.zeros(n)
    for start in rng.integers(0, max(1, n - int(0.2 * sr)), size=3):
        burst[start:start + env.size] += env[: n - start]
    return (0.2 * rng.normal(size=n) * np.clip(burst, 0, 1)).astype(np.float32)


def _chord(freqs, dur_s: float, sr: int) -> np.ndarray:
    t = np.arange(int(round(dur_s * sr))) / sr
    x = sum(np.sin(2 * np.pi * f * h * t) / h for f in freqs for h in (1, 2, 3))
    return (0.1 * x * np.exp(-t / max(dur_s, 0.1))).astype(np.float32)


def _save(path: Path, x: np.ndarray, sr: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return path


# ----------------------------------------------------------------------------------------- FSD50K
#: (FSD50K labels, kind of audio): music clips are chords, the others noise bursts or tones.
FSD_KINDS = [("Electric_guitar,Guitar,Musical_instrument,Music", "music"), ("Guitar,Musical_instrument,Music", "music"),
             ("Bark,Dog,Animal", "noise"), ("Dog,Animal", "noise"), ("Speech,Human_voice", "tone"),
             ("Bark,Dog,Animal", "noise"), ("Music", "music")]


def make_lab_fsd50k(root: Path, n_train: int = 96, n_val: int = 24, n_eval: int = 48, dur_s: float = 2.0,
                    seed: int = 0) -> Path:
    """FSD50K with ``n_train`` / ``n_val`` dev clips and ``n_eval`` eval clips (44.1 kHz), the tiny ontology."""
    rng = np.random.default_rng(seed)
    name_to_id = {name: i for i, name, _ in TINY_ONTOLOGY}
    mid = {fsd: name_to_id[disp] for fsd, disp in FSD_NAMES.items()}
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "vocabulary.csv").write_text("".join(f"{i},{n},{mid[n]}\n" for i, n in enumerate(FSD_NAMES)))
    rows = {"dev": [], "eval": []}
    sr = 44100
    for k in range(n_train + n_val + n_eval):
        labels, kind = FSD_KINDS[k % len(FSD_KINDS)]
        part = "dev" if k < n_train + n_val else "eval"
        fname = str(1000 + k)
        if kind == "music":
            x = _chord(220 * 2 ** (rng.integers(0, 12, size=3) / 12), dur_s, sr)
        elif kind == "tone":
            x = _chord([120 + 40 * rng.random()], dur_s, sr)
        else:
            x = _noise(rng, dur_s, sr)
        _save(root / f"FSD50K.{part}_audio" / f"{fname}.wav", x, sr)
        mids = ",".join(mid[x] for x in labels.split(","))
        row = f'{fname},"{labels}","{mids}"'
        rows[part].append(row + ("" if part == "eval" else f",{'train' if k < n_train else 'val'}"))
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "\n".join(rows["dev"]) + "\n")
    (gt / "eval.csv").write_text("fname,labels,mids\n" + "\n".join(rows["eval"]) + "\n")
    _ontology_json(root / "ontology.json")
    return root


# ----------------------------------------------------------------------------------------- ESC-50
#: ESC-50's 50 classes in target order (Piczak 2015): five major categories of ten.
ESC50_CLASSES = ("dog rooster pig cow frog cat hen insects sheep crow "
                 "rain sea_waves crackling_fire crickets chirping_birds water_drops wind pouring_water toilet_flush "
                 "thunderstorm crying_baby sneezing clapping breathing coughing footsteps laughing brushing_teeth "
                 "snoring drinking_sipping door_wood_knock mouse_click keyboard_typing door_wood_creaks can_opening "
                 "washing_machine vacuum_cleaner clock_alarm clock_tick glass_breaking helicopter chainsaw siren "
                 "car_horn engine train church_bells airplane fireworks hand_saw").split()


def make_lab_esc50(root: Path, per_class: int = 1, dur_s: float = 1.0, seed: int = 6) -> Path:
    """ESC-50 (the repository layout, ``root`` = ``ESC-50-master/``): ``per_class`` clips of each of the 50
    classes at 44.1 kHz, noise bursts and low tones (no chords), two takes per source recording."""
    rng = np.random.default_rng(seed)
    rows = []
    for target, name in enumerate(ESC50_CLASSES):
        for k in range(per_class):
            fold, src, take = 1 + (target + k) % 5, str(100000 + 10 * target + k // 2), "AB"[k % 2]
            fname = f"{fold}-{src}-{take}-{target}.wav"
            x = _noise(rng, dur_s, 44100) if (target + k) % 2 else _chord([80 + 60 * rng.random()], dur_s, 44100)
            _save(root / "audio" / fname, x, 44100)
            rows.append(f"{fname},{fold},{target},{name},{target < 10 and k == 0},{src},{take}")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n" + "\n".join(rows) + "\n")
    return root


# ----------------------------------------------------------------------------------- LibriSpeech
def make_lab_librispeech(root: Path, subsets=(("train-clean-100", 8), ("dev-clean", 4)), dur_s: float = 1.2) -> Path:
    """LibriSpeech with ``n`` utterances per subset (two speakers each), 16-kHz FLAC with transcripts."""
    rng = np.random.default_rng(1)
    for s_idx, (subset, n) in enumerate(subsets):
        for spk in range(2):
            speaker, chapter = str(100 + 10 * s_idx + spk), str(2000 + spk)
            folder = root / "LibriSpeech" / subset / speaker / chapter
            lines = []
            for u in range(n // 2):
                utt = f"{speaker}-{chapter}-{u:04d}"
                f0 = 100 + 60 * rng.random()
                t = np.arange(int(dur_s * 16000)) / 16000
                x = (0.2 * np.sin(2 * np.pi * f0 * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)))
                     * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(np.float32)
                _save(folder / f"{utt}.flac", x, 16000)
                lines.append(f"{utt} WORDS {u}")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


# ------------------------------------------------------------------------------------------- FMA
def make_lab_fma(root: Path, n_tracks: int = 24, dur_s: float = 4.0) -> Path:
    """FMA small: ``n_tracks`` MP3s (chords) in three genres, 2/3 training, the rest validation and test."""
    from stimuli.open_data import fma_audio_path

    rng = np.random.default_rng(2)
    cols = [("set", "split"), ("set", "subset"), ("track", "genre_top")]
    lines = ["," + ",".join(c[0] for c in cols), "," + ",".join(c[1] for c in cols), "track_id" + "," * len(cols)]
    for k in range(n_tracks):
        tid = 2 + k
        split = "training" if k % 6 < 4 else ("validation" if k % 6 == 4 else "test")
        lines.append(f"{tid},{split},small,{('Rock', 'Folk', 'Pop')[k % 3]}")
        x = np.concatenate([_chord(196 * 2 ** (rng.integers(0, 12, size=3) / 12), dur_s / 4, 44100)
                            for _ in range(4)])
        _save(fma_audio_path(root / "fma_small", tid), x, 44100, format="MP3")
    (root / "fma_metadata").mkdir(parents=True, exist_ok=True)
    (root / "fma_metadata" / "tracks.csv").write_text("\n".join(lines) + "\n")
    return root


# ---------------------------------------------------------------------------------- MAESTRO -> npz
def make_lab_maestro(root: Path, n_per_split: int = 3, dur_s: float = 2.5) -> Path:
    """MAESTRO with ``n_per_split`` performances per split (MIDI + a tone per note)."""
    rng = np.random.default_rng(3)
    lines = ["canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"]
    (root / "2018").mkdir(parents=True, exist_ok=True)
    k = 0
    for split in ("train", "validation", "test"):
        for j in range(n_per_split):
            name = f"MIDI-Unprocessed_{k:02d}_R1_2018_wav--{k}"
            notes = [(0.1 + 0.5 * i, 0.45 + 0.5 * i, int(rng.integers(48, 84)), 70) for i in range(int(dur_s / 0.5))]
            (root / "2018" / f"{name}.midi").write_bytes(midi_bytes(notes))
            sr, t = 44100, np.arange(int(dur_s * 44100)) / 44100
            x = np.zeros_like(t)
            for on, off, p, _ in notes:
                m = (t >= on) & (t < off)
                x[m] += 0.2 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t[m])
            _save(root / "2018" / f"{name}.wav", x.astype(np.float32), sr)
            lines.append(f'Composer {k},"Piece {k}",{split},2018,2018/{name}.midi,2018/{name}.wav,{dur_s}')
            k += 1
    (root / "maestro-v3.0.0.csv").write_text("\n".join(lines) + "\n")
    return root


def make_lab_transcription(out: Path, maestro_root: Path) -> Path:
    """``--transcription-data``: the MAESTRO fixture converted as README's 'Replicate on open data' says."""
    from stimuli.open_data import write_transcription_npz

    write_transcription_npz(maestro_root, out, excerpt_s=1.0)
    return out


# --------------------------------------------------------------------------------------- GuitarSet
GS_STYLES = ("BN", "Funk", "Jazz", "Rock", "SS")
GS_CHORDS = (("C:maj", (261.6, 329.6, 392.0)), ("A:min", (220.0, 261.6, 329.6)), ("G:maj", (196.0, 246.9, 293.7)),
             ("F:maj", (174.6, 220.0, 261.6)))


def make_lab_guitarset(root: Path, per_player: int = 4, dur_s: float = 4.0) -> Path:
    """GuitarSet: 6 players x ``per_player`` excerpts (JAMS with notes and chords, microphone WAV)."""
    rng = np.random.default_rng(4)
    (root / "annotation").mkdir(parents=True)
    sr = 44100
    for player in range(6):
        for j in range(per_player):
            style = GS_STYLES[j % len(GS_STYLES)]
            tid = f"{player:02d}_{style}{1 + j % 3}-{(90, 130)[(j + player) % 2]}-C_{('comp', 'solo')[j % 2]}"
            seq = [GS_CHORDS[i] for i in rng.integers(0, len(GS_CHORDS), size=int(dur_s))]
            chords = [(float(i), 1.0, lab) for i, (lab, _) in enumerate(seq)]
            notes = {s: [] for s in range(6)}
            x = np.zeros(int(dur_s * sr), np.float32)
            for i, (_, freqs) in enumerate(seq):
                for s, f in enumerate(freqs):
                    on = i + 0.05 * s
                    notes[s].append((on, 0.8, float(69 + 12 * np.log2(f / 440))))
                    a = int(on * sr)
                    seg = _chord([f], 0.8, sr)
                    x[a:a + seg.size] += seg[: x.size - a]
            (root / "annotation" / f"{tid}.jams").write_text(json.dumps(_jams(notes, chords, chords, dur_s)))
            _save(root / "audio_mono-mic" / f"{tid}_mic.wav", x, sr)
    return root


# ------------------------------------------------------------------------------------------- GTZAN
def make_lab_gtzan(root: Path, genres=("blues", "jazz", "rock"), per_genre: int = 10, dur_s: float = 4.0) -> Path:
    """GTZAN (the Kaggle layout with features_30_sec.csv): ``per_genre`` excerpts of each genre at 22,050 Hz."""
    rng = np.random.default_rng(5)
    data = root / "Data"
    rows = []
    for g_idx, g in enumerate(genres):
        for n in range(per_genre):
            base = (110, 165, 247)[g_idx % 3]
            x = np.concatenate([_chord(base * 2 ** (rng.integers(0, 7, size=2) / 12), dur_s / 4, 22050)
                                for _ in range(4)])
            _save(data / "genres_original" / g / f"{g}.{n:05d}.wav", x, 22050)
            rows.append(f"{g}.{n:05d}.wav,{x.size},0.3,{g}")
    (data / "features_30_sec.csv").write_text("filename,length,chroma_stft_mean,label\n" + "\n".join(rows) + "\n")
    return root


def build_all(out: Path) -> dict:
    """Every lab fixture under ``out``; returns option -> folder."""
    out = Path(out)
    maestro = make_lab_maestro(out / "maestro-v3.0.0")
    return {"--fsd50k": make_lab_fsd50k(out / "FSD50K"), "--esc50": make_lab_esc50(out / "ESC-50-master"),
            "--librispeech": make_lab_librispeech(out / "librispeech"),
            "--fma": make_lab_fma(out / "fma"), "--transcription-data": make_lab_transcription(out / "maestro-npz", maestro),
            "--guitarset": make_lab_guitarset(out / "GuitarSet"), "--gtzan": make_lab_gtzan(out / "gtzan")}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/lab_fixtures.py OUT")
    roots = build_all(Path(sys.argv[1]))
    print(" ".join(f"{k} {v}" for k, v in roots.items()))
