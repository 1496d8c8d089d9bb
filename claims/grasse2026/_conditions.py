"""Shared conditions of the Grasse & Tata 2026 claims: stimuli, training, activations, RSA (cached).

For one architecture and seed: the starting encoder (``untouched``), a copy trained with the
architecture's SSL objective on speech + music (``ssl``) and a copy trained on frame-wise
transcription (``transcription``), same updates, batch, crop and learning rate. Every condition is
run through the same RSA on the same pitch set. Reference representations (log-mel, log-CQT,
chroma-CQT, an oracle pitch-class code, shuffled labels) are run through the identical pipeline.

``ci`` tier: tiny configurations built from a config, trained from a seeded random init on the
embedded speech-like babble (``stimuli.corpus.speech_source``) and music (``stimuli.music``).
``paper`` tier: checkpoints from ``--checkpoints`` (``<root>/wav2vec2`` and ``<root>/data2vec``
folders, or a ``hub_ids.json`` mapping arch -> hub id), speech / music folders of audio files from
``--speech-audio`` / ``--music-audio``, and transcription data from ``--transcription-data`` as
``*.npz`` files with ``audio`` (16 kHz), ``piano_roll`` [frames, 128] and ``frame_times_s``.
``lab`` tier: the paper-like path on open data, sized for one GPU (:data:`LAB_SETTINGS`): speech from
LibriSpeech (``--librispeech``), music from FMA (``--fma``), both decoded once into the cache
(:mod:`stimuli.lab_data`), transcription excerpts from ``--transcription-data`` (MAESTRO converted by
``python -m stimuli.open_data --transcription``), and encoders of a medium size trained from a seeded
random init (``start="random"``; ``--set start=checkpoints`` starts from ``--checkpoints`` as the paper
tier does, recorded as an override: the checkpoint keeps its own shape, so the lab shape settings
:data:`LAB_SHAPE` do not apply and leave the cache key, the time estimate reads the checkpoint's config, and
the lab tier's span masking ``mask_time_prob`` / ``mask_time_length`` still applies).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.stats import Estimate

import numpy as np

from analysis.rsa import RSAResult, condition_means, rdm, rsa_layers
from harness.cache import content_key, data_manifest, folder_manifest, generated_manifest
from harness.errors import UserError
from harness.spec import Competence
from stimuli.pitch import PITCH_TIMBRES, pitch_features, pitch_set

ARCHS = ("wav2vec2", "data2vec")
CONDITIONS = ("untouched", "ssl", "transcription")
SR = 16000
VERSION = "grasse2026-conditions-5"

CI_SETTINGS = dict(seeds=2, steps=600, batch_size=8, batch_size_wav2vec2=16, crop_s=1.0, lr=1e-3, hidden=128,
                   n_layers=3, conv_channels=128, ssl_clips=48, music_tracks=32, clip_s=4.0, n_exemplars=2, dur_s=0.5,
                   n_perm=1000, n_boot=1000, oracle_noise=1.0, pos_weight=10.0, encoder_lr_scale=1.0,
                   transcription_mask_prob=0.0, heldout_tracks=16, heldout_clips=64)
PAPER_SETTINGS = dict(seeds=3, steps=2000, batch_size=8, crop_s=4.0, lr=5e-5, ssl_clips=2000, music_tracks=500,
                      clip_s=10.0, n_exemplars=4, dur_s=1.0, n_perm=10000, n_boot=2000, oracle_noise=1.0,
                      pos_weight=10.0, encoder_lr_scale=0.1, transcription_mask_prob=0.05, hidden=None,
                      n_layers=None, conv_channels=None, heldout_tracks=50, heldout_clips=100)
#: lab tier: encoders of a medium size (6 blocks of 384, conv channels 256, about 12 M parameters) trained
#: from a seeded random init on open data; 8,000 updates of 16 four-second crops per condition, the same for
#: SSL and transcription; 8,000 SSL clips (half LibriSpeech train-clean-100, half FMA small's training split)
#: with 200 held out (LibriSpeech dev-clean, FMA's test split); 4,000 transcription excerpts of 10 s, the last
#: 100 (MAESTRO's test split) held out. The clips are drawn once (data_seed) and shared by the seeds, which vary
#: the initialisation, crops and masks. Sized for one GPU (harness.budget).
LAB_SETTINGS = dict(seeds=3, steps=8000, batch_size=16, crop_s=4.0, lr=5e-4, encoder_lr_scale=1.0, start="random",
                    hidden=384, n_layers=6, n_heads=6, intermediate=1536, conv_channels=256, mask_time_prob=0.65,
                    mask_time_length=10, ssl_clips=8000, music_tracks=4000, clip_s=10.0, heldout_tracks=100,
                    heldout_clips=200, speech_subset="train-clean-100", speech_heldout_subset="dev-clean",
                    fma_subset="small", data_seed=0, n_exemplars=4, dur_s=1.0, n_perm=10000, n_boot=2000,
                    oracle_noise=1.0, pos_weight=10.0, transcription_mask_prob=0.05)
LAB_DATA = ("librispeech", "fma", "transcription")
#: The lab tier's expectation: what the paper claims, not a measurement.
LAB_REASON = ("not yet run on GPU: the expectation is the paper's finding (open data, medium encoders from a "
              "random init); re-declare from the first lab run")


# ------------------------------------------------------------------------------------------ stimuli
PITCH_SEED = 1234


def stimuli_manifest(settings: dict) -> dict:
    """The data manifest of the generated pitch set (:func:`stimuli`): its config and seed."""
    return generated_manifest("grasse2026-pitch-set", midi=[36, 84], timbres=list(PITCH_TIMBRES),
                              n_exemplars=int(settings["n_exemplars"]), dur_s=float(settings["dur_s"]), sr=SR,
                              seed=PITCH_SEED)


def stimuli(settings: dict):
    """The pitch set (every semitone MIDI 36-83, the pitched timbres) and its acoustic RDM."""
    ps = pitch_set(range(36, 84), timbres=PITCH_TIMBRES, n_exemplars=int(settings["n_exemplars"]),
                   dur_s=float(settings["dur_s"]), sr=SR, seed=PITCH_SEED)
    midi, mel = condition_means(pitch_features(ps.audio, ps.sr, "log_mel"), ps.midi)
    return ps, midi, rdm(mel)


def oracle_code(pitch_class, noise: float, rng: np.random.Generator, kappa: float = 1.0) -> np.ndarray:
    """The true labels folded into 12 pitch classes: a von Mises bump over 12 pitch-class channels
    (exp(kappa cos(2π(c - pc)/12)), so its correlation distance grows with circular pitch-class distance)
    plus N(0, noise) per tone and channel."""
    c = np.arange(12)
    pc = np.asarray(pitch_class)[:, None]
    code = np.exp(kappa * np.cos(2 * np.pi * (c[None, :] - pc) / 12))
    return code + rng.normal(0.0, noise, size=code.shape)


def reference(settings: dict, cache=None) -> dict:
    """RSA of reference representations through the same pipeline (cached).

    Keys: ``log_mel``, ``log_cqt``, ``chroma_cqt`` (time-averaged spectra), ``oracle_pitch_class``
    (:func:`oracle_code`), ``shuffled_log_cqt`` (log-CQT with the
    pitch labels permuted across pitches), ``shuffled_within_octave`` (oracle with pitch classes
    permuted within octave). Also ``midi`` and ``acoustic`` (the acoustic-control RDM).
    """
    def build():
        ps, midi, acoustic = stimuli(settings)
        rng = np.random.default_rng(99)
        feats = {k: pitch_features(ps.audio, ps.sr, k) for k in ("log_mel", "log_cqt", "chroma_cqt")}
        onehot = oracle_code(ps.pitch_class, float(settings["oracle_noise"]), rng)
        perm = rng.permutation(midi)
        shuffled_keys = perm[np.searchsorted(midi, ps.midi)]
        pc_perm = ps.midi.copy()
        for o in np.unique(ps.octave):
            m = np.arange(12 * (o + 1), 12 * (o + 2))
            mp = rng.permutation(m)
            sel = ps.octave == o
            pc_perm[sel] = mp[np.searchsorted(m, ps.midi[sel])]
        n_perm = int(settings["n_perm"])
        out = {name: rsa_layers({name: f}, ps.midi, acoustic, n_perm=n_perm, seed=5) for name, f in feats.items()}
        out["oracle_pitch_class"] = rsa_layers({"oracle": onehot}, ps.midi, acoustic, n_perm=n_perm, seed=5)
        out["shuffled_log_cqt"] = rsa_layers({"log_cqt": feats["log_cqt"]}, shuffled_keys, acoustic,
                                             n_perm=n_perm, seed=5)
        out["shuffled_within_octave"] = rsa_layers({"oracle": onehot}, pc_perm, acoustic, n_perm=n_perm, seed=5)
        out["midi"], out["acoustic"] = midi, acoustic
        return out

    if cache is None:
        return build()
    cfg = content_key(stimuli_manifest(settings), n_perm=int(settings["n_perm"]),
                      oracle_noise=float(settings["oracle_noise"]))
    return cache.pickle("grasse2026-reference", cfg, build, version=VERSION)


# ------------------------------------------------------------------------------------- training data
def _picked_files(folder, n_clips: int, seed: int) -> tuple[np.random.Generator, list, int]:
    """The files :func:`_audio_folder` reads (a seeded draw from the sorted listing), the generator
    it goes on with, and the listing's length (which the draw and the later offsets depend on)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
    if not files:
        raise UserError(f"no .wav/.flac/.ogg files under {folder}: point the option at a folder of audio")
    rng = np.random.default_rng(seed)
    return rng, [Path(f) for f in rng.permutation(np.array(files, dtype=object))[:n_clips]], len(files)


def _audio_folder(folder, n_clips: int, clip_s: float, seed: int, n_heldout: int = 0) -> tuple:
    """(training clips, held-out clips) [n, samples] at 16 kHz: one random crop of each drawn file;
    the held-out clips come from the ``n_heldout`` files drawn after the training ones."""
    rng, picked, _ = _picked_files(folder, n_clips + n_heldout, seed)
    if n_heldout and len(picked) <= n_clips:
        raise UserError(f"{folder} has {len(picked)} audio files: the paper tier trains on {n_clips} and holds "
                        f"out {n_heldout} more; add files or lower ssl_clips (--set ssl_clips=N)")
    train = _read_crops(folder, picked[:n_clips], clip_s, rng)
    held = _read_crops(folder, picked[n_clips:], clip_s, rng) if n_heldout else np.zeros((0, int(round(clip_s * SR))))
    return train, held


def _read_crops(folder, picked, clip_s: float, rng) -> np.ndarray:
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    n = int(round(clip_s * SR))
    clips = []
    for f in picked:
        x, sr = sf.read(str(f), dtype="float32", always_2d=True)
        x = AF.resample(torch.from_numpy(x.mean(1)), sr, SR).numpy() if sr != SR else x.mean(1)
        if x.size >= n:
            s = rng.integers(0, x.size - n + 1)
            clips.append(x[s:s + n])
    if not clips:
        raise UserError(f"no file under {folder} is at least {clip_s} s long: use longer recordings")
    return np.stack(clips)


def training_data(tier: str, settings: dict, seed: int, data=None) -> dict:
    """Training and held-out data at 16 kHz.

    Keys: ``ssl_audio`` [n, samples] (speech + music) and ``heldout_ssl_audio`` (clips never trained on);
    ``music_audio`` / ``piano_roll`` [n, frames, 128] / ``frame_times_s`` for transcription and
    ``heldout_music_audio`` / ``heldout_piano_roll`` (clips never trained on, same frames).

    ``ci``: the transcription condition learns from rendered random notes and chords
    (:func:`stimuli.music.note_and_chord_scores`, MIDI 36-83, the ensembles of
    :func:`stimuli.music.render_music_set`), and is held out on more of the same (other seeds); it
    is also scored, for information, on rendered score excerpts (``excerpt_music_audio`` /
    ``excerpt_piano_roll``). ``paper``: the user's transcription excerpts (no ``excerpt_*`` keys).
    """
    clip_s = float(settings["clip_s"])
    n_ho_clips, n_ho_tracks = int(settings["heldout_clips"]), int(settings["heldout_tracks"])
    if tier == "lab":
        return lab_training_data(settings, data)
    if tier == "paper":
        speech, speech_ho = _audio_folder(data.require("speech_audio"), settings["ssl_clips"] // 2, clip_s, seed,
                                          n_ho_clips // 2)
        music, music_ho = _audio_folder(data.require("music_audio"), settings["ssl_clips"] // 2, clip_s, seed,
                                        n_ho_clips - n_ho_clips // 2)
        return dict(ssl_audio=np.concatenate([speech, music]).astype(np.float32),
                    heldout_ssl_audio=np.concatenate([speech_ho, music_ho]).astype(np.float32),
                    **_transcription_arrays(data.require("transcription"), settings))
    from stimuli.corpus import speech_source
    from stimuli.music import music_source, note_and_chord_scores, render_music_set

    rng = np.random.default_rng(10_000 + seed)
    n_half = int(settings["ssl_clips"]) // 2

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    def fit(x):
        n = int(round(clip_s * SR))
        x = np.asarray(x, dtype=np.float32)[:n]
        x = np.pad(x, (0, n - x.size))
        return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-8) * 0.05

    ssl = [fit(first(speech_source(rng, clip_s, SR))) for _ in range(n_half)]
    ssl += [fit(first(music_source(rng, clip_s, SR))) for _ in range(n_half)]
    ho_rng = np.random.default_rng(50_000 + seed)
    ssl_ho = [fit(first(speech_source(ho_rng, clip_s, SR))) for _ in range(n_ho_clips // 2)]
    ssl_ho += [fit(first(music_source(ho_rng, clip_s, SR))) for _ in range(n_ho_clips - n_ho_clips // 2)]
    n_tracks = int(settings["music_tracks"])
    score_len_s = 4 * clip_s                       # room for the slowest tempo class and a random start
    ms = render_music_set(n_tracks=n_tracks, clip_s=clip_s, sr=SR, seed=20_000 + seed, frame_hop_s=0.01,
                          scores=note_and_chord_scores(n_tracks, score_len_s, seed=20_000 + seed))
    ho = render_music_set(n_tracks=n_ho_tracks, clip_s=clip_s, sr=SR, seed=30_000 + seed, frame_hop_s=0.01,
                          scores=note_and_chord_scores(n_ho_tracks, score_len_s, seed=30_000 + seed))
    ex = render_music_set(n_tracks=n_ho_tracks, clip_s=clip_s, sr=SR, seed=40_000 + seed, frame_hop_s=0.01)
    return dict(ssl_audio=np.stack(ssl), heldout_ssl_audio=np.stack(ssl_ho),
                music_audio=np.asarray(ms.audio, dtype=np.float32), piano_roll=np.asarray(ms.piano_roll, dtype=bool),
                heldout_music_audio=np.asarray(ho.audio, dtype=np.float32),
                heldout_piano_roll=np.asarray(ho.piano_roll, dtype=bool),
                excerpt_music_audio=np.asarray(ex.audio, dtype=np.float32),
                excerpt_piano_roll=np.asarray(ex.piano_roll, dtype=bool),
                frame_times_s=np.asarray(ms.frame_times_s, dtype=np.float64))


def _lab_sets(settings: dict, data, cache=None) -> dict:
    """The lab tier's SSL clip sets (:mod:`stimuli.lab_data`, decoded once into the cache): ``speech`` /
    ``speech_heldout`` from LibriSpeech, ``music`` / ``music_heldout`` from FMA's training and test splits."""
    from stimuli.lab_data import load_fma_cached, load_librispeech_cached

    clip_s, n_half = float(settings["clip_s"]), int(settings["ssl_clips"]) // 2
    n_ho = int(settings["heldout_clips"])
    draw = int(settings.get("data_seed", 0))
    ls, fma = data.require("librispeech"), data.require("fma")
    common = dict(sr=SR, clip_s=clip_s, seed=draw, progress=False)
    return {"speech": load_librispeech_cached(cache, ls, settings["speech_subset"], max_clips=n_half, **common),
            "speech_heldout": load_librispeech_cached(cache, ls, settings["speech_heldout_subset"],
                                                      max_clips=n_ho // 2, **common),
            "music": load_fma_cached(cache, fma, settings["fma_subset"], split="train", max_clips=n_half, **common),
            "music_heldout": load_fma_cached(cache, fma, settings["fma_subset"], split="test",
                                             max_clips=n_ho - n_ho // 2, **common)}


def _transcription_arrays(root, settings: dict) -> dict:
    """The transcription excerpts (``*.npz``) of ``root``: training and held-out audio and rolls, cut to the
    shortest excerpt."""
    train_files, held_files = _transcription_split(root, settings)
    items = [np.load(f) for f in train_files + held_files]
    n = min(int(it["audio"].shape[0]) for it in items)
    f = min(int(it["piano_roll"].shape[0]) for it in items)
    audio = np.stack([it["audio"][:n] for it in items]).astype(np.float32)
    roll = np.stack([it["piano_roll"][:f] for it in items]).astype(bool)
    k = len(train_files)
    return dict(music_audio=audio[:k], piano_roll=roll[:k], heldout_music_audio=audio[k:],
                heldout_piano_roll=roll[k:], frame_times_s=np.asarray(items[0]["frame_times_s"][:f], dtype=np.float64))


def lab_training_data(settings: dict, data, cache=None) -> dict:
    """:func:`training_data` at the lab tier (the same keys): LibriSpeech + FMA for SSL, the ``*.npz``
    transcription excerpts as the paper tier reads them."""
    sets = _lab_sets(settings, data, cache)
    out = _transcription_arrays(data.require("transcription"), settings)
    out["ssl_audio"] = np.concatenate([np.asarray(sets["speech"].audio), np.asarray(sets["music"].audio)]).astype(np.float32)
    out["heldout_ssl_audio"] = np.concatenate([np.asarray(sets["speech_heldout"].audio),
                                               np.asarray(sets["music_heldout"].audio)]).astype(np.float32)
    return out


def lab_training_inputs(arch: str, settings: dict, seed: int, data, cache=None) -> list:
    """:func:`training_inputs` at the lab tier: the pitch set, the decoded clip sets by content (their loaders'
    manifests), the transcription excerpts and, with ``start="checkpoints"``, the starting checkpoint (checked
    first, before anything is decoded)."""
    start = _lab_start(settings)
    ckpt = _checkpoint(arch, data, "--set start=checkpoints: ")[1] if start == "checkpoints" else None
    out = [stimuli_manifest(settings)]
    out += [c.manifest["data"] for c in _lab_sets(settings, data, cache).values()]
    root = data.require("transcription")
    out.append(folder_manifest(root, files=sum(_transcription_split(root, settings), []), name="transcription"))
    return out + ([ckpt] if ckpt is not None else [])


#: How the lab tier's encoders start (``--set start=...``).
LAB_STARTS = ("random", "checkpoints")
#: The lab settings of a random start's shape; with ``start="checkpoints"`` the checkpoint has its own.
LAB_SHAPE = ("hidden", "n_layers", "n_heads", "intermediate", "conv_channels")


def _lab_start(settings: dict) -> str:
    start = settings.get("start", "random")
    if start not in LAB_STARTS:
        raise UserError(f"start={start!r}: the lab tier starts its encoders from 'random' (a seeded init) or "
                        f"'checkpoints' (--set start=checkpoints with --checkpoints DIR)")
    return start


def _checkpoint(arch: str, data, why: str = "") -> tuple:
    """(source, manifest) of ``arch``'s starting checkpoint under ``--checkpoints``: the hub id of
    ``<root>/hub_ids.json`` (keyed by that file), else the ``<root>/<arch>`` save_pretrained folder (keyed by its
    files' content, not its path)."""
    try:
        root = Path(data.require("checkpoints"))
    except UserError as e:
        raise UserError(f"{why}{e}") from None
    ids = root / "hub_ids.json"
    if ids.exists():
        try:
            hub = json.loads(ids.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{ids} is not JSON ({e.msg}): write {{\"wav2vec2\": HUB_ID, \"data2vec\": HUB_ID}}") \
                from None
        if not isinstance(hub, dict) or not hub.get(arch):
            raise UserError(f"{ids} has no {arch!r} hub id: add \"{arch}\": HUB_ID (e.g. facebook/wav2vec2-base, "
                            f"facebook/data2vec-audio-base), or remove the file to read {root}/{arch}/")
        return str(hub[arch]), folder_manifest(root, files=[ids], name="checkpoints")
    folder = root / arch
    if not (folder / "config.json").is_file():
        raise UserError(f"--checkpoints {root} has no {arch}/ folder with a config.json, nor a hub_ids.json: save the "
                        f"{arch} encoder there with save_pretrained, or map architectures to hub ids in "
                        f"{root}/hub_ids.json")
    return folder, folder_manifest(folder, name=f"checkpoints/{arch}")


def lab_encoder_config(arch: str, settings: dict):
    """The lab tier's medium encoder: :func:`models.ssl_audio.tiny_config` at the lab sizes (wav2vec 2.0's span
    masking, 2 x 160 codevectors of 128 dimensions)."""
    from models.ssl_audio import tiny_config

    extra = dict(codevector_dim=128, proj_codevector_dim=128, num_codevectors_per_group=160) if arch == "wav2vec2" else {}
    return tiny_config(arch, hidden=int(settings["hidden"]), n_layers=int(settings["n_layers"]),
                       n_heads=int(settings["n_heads"]), conv_channels=int(settings["conv_channels"]),
                       mask_time_prob=float(settings["mask_time_prob"]), mask_time_length=int(settings["mask_time_length"]),
                       intermediate_size=int(settings["intermediate"]), **extra)


def _transcription_split(root, settings: dict) -> tuple[list, list]:
    """(training files, held-out files): the last ``heldout_tracks`` excerpts (sorted by path) are held
    out, the training files are up to ``music_tracks`` of the others."""
    files = sorted(Path(root).rglob("*.npz"))
    if not files:
        raise UserError("no *.npz under --transcription-data: write audio (16 kHz), piano_roll [frames, 128] "
                        "and frame_times_s per excerpt (e.g. from MAESTRO)")
    n_ho = int(settings["heldout_tracks"])
    if len(files) <= n_ho:
        raise UserError(f"--transcription-data has {len(files)} excerpts: {n_ho} are held out to score the "
                        f"model, so add excerpts or lower heldout_tracks (--set heldout_tracks=N)")
    return files[:-n_ho][: int(settings["music_tracks"])], files[-n_ho:]


def training_inputs(arch: str, tier: str, settings: dict, seed: int, data=None) -> list:
    """The data manifests of what one (architecture, seed) run reads, the inputs of its cache key.

    ``ci``: the generated training audio and pitch set (config and seed). ``paper``: the files read
    from the user's folders, by content (:func:`harness.cache.folder_manifest`): the speech and music
    clips drawn (with the listing's length, which the draw depends on), the transcription excerpts and
    the starting checkpoint (``<root>/<arch>`` or ``hub_ids.json``; a hub id is keyed by its name).
    """
    pitch = stimuli_manifest(settings)
    if tier != "paper":
        return [pitch, generated_manifest("grasse2026-training-audio", seed=int(seed), clip_s=float(settings["clip_s"]),
                                          ssl_clips=int(settings["ssl_clips"]),
                                          music_tracks=int(settings["music_tracks"]),
                                          transcription="notes-and-chords",
                                          heldout_tracks=int(settings["heldout_tracks"]),
                                          heldout_clips=int(settings["heldout_clips"]))]
    out = [pitch]
    for key in ("speech_audio", "music_audio"):
        root = data.require(key)
        n_ho = int(settings["heldout_clips"]) // 2 if key == "speech_audio" else \
            int(settings["heldout_clips"]) - int(settings["heldout_clips"]) // 2
        _, picked, n_listed = _picked_files(root, int(settings["ssl_clips"]) // 2 + n_ho, seed)
        out.append(data_manifest(key, folder_manifest(root, files=picked, name=f"{key}.drawn"), listed=n_listed))
    root = data.require("transcription")
    out.append(folder_manifest(root, files=sum(_transcription_split(root, settings), []), name="transcription"))
    out.append(_checkpoint(arch, data)[1])
    return out


def _start_encoder(arch: str, tier: str, settings: dict, seed: int, data=None):
    """The starting encoder (the untouched condition). ``ci``: a tiny config, seeded. ``paper``: the checkpoint of
    ``--checkpoints``. ``lab``: :func:`lab_encoder_config`, seeded, or with ``start="checkpoints"`` the checkpoint,
    whose own shape it keeps (the lab shape settings, :data:`LAB_SHAPE`, do not apply) with the lab tier's span
    masking (``mask_time_prob``, ``mask_time_length``: the SSL objective's, as for a random start)."""
    from models.ssl_audio import build_encoder, load_encoder, tiny_config

    if tier == "lab":
        if _lab_start(settings) == "random":
            return build_encoder(lab_encoder_config(arch, settings), seed=seed)
        enc = load_encoder(_checkpoint(arch, data, "--set start=checkpoints: ")[0])
        enc.config.mask_time_prob = float(settings["mask_time_prob"])
        enc.config.mask_time_length = int(settings["mask_time_length"])
        return enc
    if tier == "paper":
        return load_encoder(_checkpoint(arch, data)[0])
    cfg = tiny_config(arch, hidden=int(settings["hidden"]), n_layers=int(settings["n_layers"]),
                      conv_channels=int(settings["conv_channels"]))
    return build_encoder(cfg, seed=seed)


def batch_size(settings: dict, arch: str) -> int:
    """Clips per update of ``arch``'s SSL and transcription training: ``batch_size_<arch>`` when the tier sets
    it (ci: wav2vec 2.0 trains on 16, data2vec on 8), else ``batch_size``. Both conditions of an architecture
    always share it."""
    return int(settings.get(f"batch_size_{arch}", settings["batch_size"]))


# ------------------------------------------------------------------------------------------ one run
def condition_run(arch: str, seed: int, tier: str, settings: dict, device="cpu", cache=None, data=None) -> dict:
    """Train the three conditions of one (architecture, seed) and run the RSA on each (cached).

    Returns
    -------
    dict with ``results`` {condition: RSAResult}, ``losses`` {ssl, transcription} (per update),
    ``competence`` {``transcription``: :func:`models.ssl_audio.transcription_heldout` on the held-out
    excerpts, ``ssl``: the objective's held-out masked-frame top-1 at init and after training} and
    ``train_seconds`` {ssl, transcription}.
    """
    import time

    from models.adapters import TransformersAudioModel, activations
    from models.ssl_audio import train_ssl, train_transcription, transcription_heldout

    if arch not in ARCHS:
        raise UserError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHS)}")

    def build():

        ps, midi, acoustic = stimuli(settings)
        d = lab_training_data(settings, data, cache) if tier == "lab" else training_data(tier, settings, seed, data)
        start = _start_encoder(arch, tier, settings, seed, data)
        common = dict(steps=int(settings["steps"]), batch_size=batch_size(settings, arch),
                      crop_s=float(settings["crop_s"]), lr=float(settings["lr"]), seed=seed, device=device,
                      encoder_lr_scale=float(settings.get("encoder_lr_scale", 1.0)))
        t0 = time.perf_counter()
        ssl_enc, ssl_loss, ssl_heldout = train_ssl(start, d["ssl_audio"], SR, heldout_audio=d["heldout_ssl_audio"],
                                                   **common)
        t1 = time.perf_counter()
        tr_enc, tr_model, tr_loss = train_transcription(start, d["music_audio"], d["piano_roll"],
                                                        d["frame_times_s"], SR,
                                                        pos_weight=settings.get("pos_weight"),
                                                        mask_time_prob=settings.get("transcription_mask_prob"),
                                                        **common)
        t2 = time.perf_counter()
        tr_heldout = transcription_heldout(tr_model, d["music_audio"], d["piano_roll"], d["heldout_music_audio"],
                                           d["heldout_piano_roll"], d["frame_times_s"], SR, device=device)
        if "excerpt_music_audio" in d:
            tr_heldout["score_excerpts"] = transcription_heldout(
                tr_model, d["music_audio"], d["piano_roll"], d["excerpt_music_audio"], d["excerpt_piano_roll"],
                d["frame_times_s"], SR, device=device)
        results = {}
        for name, enc in (("untouched", start), ("ssl", ssl_enc), ("transcription", tr_enc)):
            acts = activations(TransformersAudioModel(enc, sample_rate=SR, normalize=True, device=device),
                               ps.audio, ps.sr, batch_size=64, device=device)
            results[name] = rsa_layers(acts, ps.midi, acoustic, n_perm=int(settings["n_perm"]), seed=11 + seed)
        return {"results": results, "losses": {"ssl": ssl_loss, "transcription": tr_loss},
                "competence": {"transcription": tr_heldout, "ssl": ssl_heldout},
                "train_seconds": {"ssl": t1 - t0, "transcription": t2 - t1}}

    if cache is None:
        return build()
    return cache.pickle("grasse2026-condition", condition_config(arch, seed, tier, settings, device, data, cache),
                        build, version=VERSION)


def condition_config(arch: str, seed: int, tier: str, settings: dict, device="cpu", data=None, cache=None) -> dict:
    """The cache key config of :func:`condition_run`: what it reads, by content, and its settings."""
    inputs = (lab_training_inputs(arch, settings, seed, data, cache) if tier == "lab"
              else training_inputs(arch, tier, settings, seed, data))
    unused = ("seeds", "n_boot") + tuple(f"batch_size_{a}" for a in ARCHS)     # batch_size= below: this arch's
    unused += LAB_SHAPE if tier == "lab" and settings.get("start") == "checkpoints" else ()
    return content_key(*inputs, arch=arch, seed=int(seed), tier=tier, device_type=str(getattr(device, "type", device)),
                       settings={k: v for k, v in settings.items() if k not in unused},
                       batch_size=batch_size(settings, arch))


def all_runs(run, arch: str) -> list:
    """``condition_run`` for every seed of the tier, logging a child run per seed (in seed order).

    Seeds are built in :func:`harness.cache.cooperative_order` (rotated by the xdist worker, an entry
    another worker is building taken last), so two workers on the same architecture train different
    seeds at once instead of one waiting on the other's lock.
    """
    from harness.cache import cooperative_order
    from harness.options import worker_index

    by_seed = {}
    if run.cache is not None:
        def busy(seed):
            return run.cache.busy("grasse2026-condition", condition_config(arch, seed, run.tier, run.settings,
                                                                           run.device, run.data, run.cache),
                                  version=VERSION)
        start = worker_index(os.environ.get("PYTEST_XDIST_WORKER")) or 0
        for seed in cooperative_order(run.seeds, busy, start):
            by_seed[seed] = condition_run(arch, seed, run.tier, run.settings, run.device, run.cache, run.data)
    out = []
    for seed in run.seeds:
        r = by_seed[seed] if seed in by_seed else condition_run(arch, seed, run.tier, run.settings, run.device,
                                                                run.cache, run.data)
        with run.child(f"{arch}-seed-{seed}", params={"arch": arch, "seed": seed}) as child:
            c = r["competence"]
            metrics = {"transcription_heldout_frame_f1": float(np.mean(c["transcription"]["frame_f1"])),
                       "transcription_heldout_note_f1": float(np.mean(c["transcription"]["note_f1"])),
                       "note_prior_heldout_frame_f1": float(np.mean(c["transcription"]["prior_frame_f1"])),
                       "note_prior_heldout_note_f1": float(np.mean(c["transcription"]["prior_note_f1"])),
                       **({"transcription_score_excerpts_frame_f1":
                           float(np.mean(c["transcription"]["score_excerpts"]["frame_f1"])),
                           "note_prior_score_excerpts_frame_f1":
                           float(np.mean(c["transcription"]["score_excerpts"]["prior_frame_f1"]))}
                          if "score_excerpts" in c["transcription"] else {}),
                       "ssl_heldout_top1_init": float(np.mean(c["ssl"]["init"])),
                       "ssl_heldout_top1_trained": float(np.mean(c["ssl"]["trained"])),
                       "ssl_heldout_top1_strict_init": float(np.mean(c["ssl"]["init_strict"])),
                       "ssl_heldout_top1_strict_trained": float(np.mean(c["ssl"]["trained_strict"])),
                       "ssl_heldout_loss_init": float(np.mean(c["ssl"]["init_loss"])),
                       "ssl_heldout_loss_trained": float(np.mean(c["ssl"]["trained_loss"])),
                       "ssl_final_loss": float(np.mean(r["losses"]["ssl"][-10:])),
                       "transcription_final_loss": float(np.mean(r["losses"]["transcription"][-10:]))}
            for cond, res in r["results"].items():
                for k, v in res.summary().items():
                    if isinstance(v, (int, float)):
                        metrics[f"{cond}.{k}"] = v
            child.log_metrics(metrics)
        out.append(r)
    return out


def results_by_condition(runs: list) -> dict:
    """{condition: [RSAResult per seed]}."""
    return {c: [r["results"][c] for r in runs] for c in CONDITIONS}


def stack_rdms(results: list) -> np.ndarray:
    """[S, L, k, k] from a list of RSAResult (one per seed)."""
    return np.stack([r.rdms for r in results])


def is_rsa(x) -> bool:
    return isinstance(x, RSAResult)


# ------------------------------------------------------------------------------------ estimates
def _best_layer_estimate(results: list, rho_attr: str, p_attr: str, layer_attr: str, method: str) -> Estimate:
    """Each result's ρ at its best layer: mean, min/max interval, p = the largest p at those layers."""
    from analysis.stats import Estimate

    layers = [getattr(r, layer_attr) for r in results]
    rho = np.array([getattr(r, rho_attr)[k] for r, k in zip(results, layers)])
    p = max(float(getattr(r, p_attr)[k]) for r, k in zip(results, layers))
    return Estimate(value=float(rho.mean()), low=float(rho.min()), high=float(rho.max()), p=p, n=len(results),
                    method=method, level=None, samples=tuple(rho))


def height_estimate(results: list) -> Estimate:
    """Best-layer height ρ of each result (conditions x seeds): min/max interval, p = largest best-layer p."""
    return _best_layer_estimate(results, "height_rho", "height_p", "best_height_layer",
                                "min/max over models; p = largest permutation p at the best layers")


def chroma_estimate(results: list) -> Estimate:
    """Best-layer partial chroma ρ (| height, acoustic) over seeds; p = largest FDR q at those layers."""
    return _best_layer_estimate(results, "chroma_acoustic_rho", "chroma_acoustic_q", "best_chroma_layer",
                                "min/max over seeds; p = largest BH q (across layers) at the best layers")


def detected_layers(results: list, rho_min: float = 0.1, q_max: float = 0.05) -> Estimate:
    """Number of layers with partial chroma ρ > rho_min and FDR q < q_max, min/max over seeds."""
    from analysis.stats import Estimate

    counts = [int(np.sum((r.chroma_acoustic_rho > rho_min) & (r.chroma_acoustic_q < q_max))) for r in results]
    return Estimate.over_seeds(counts)


def log_profiles(run, by_condition: dict, arch: str, reference_results: dict | None = None) -> None:
    """Log the ρ-against-layer figure and the best chroma layer's RDM (transcription, first seed)."""
    import matplotlib.pyplot as plt

    from analysis.rsa import plot_layer_profiles, plot_rdm

    fig = plot_layer_profiles(by_condition, title=f"{arch}: height and partial chroma per layer")
    run.log_figure(fig, f"profiles_{arch}.png")
    plt.close(fig)
    if "transcription" in by_condition:
        r = by_condition["transcription"][0]
        b = r.best_chroma_layer
        fig = plot_rdm(r.rdms[b], r.midi, title=f"{arch} transcription, {r.layers[b]}")
        run.log_figure(fig, f"rdm_best_{arch}.png")
        plt.close(fig)


# ------------------------------------------------------------------------------------ competence
#: The transcription condition's own task, on excerpts it never trained on.
TRANSCRIPTION_COMPETENCE = Competence(
    name="transcription.heldout_frame_f1_gain",
    condition="transcription",
    metric="frame-level F1 of the piano-roll head on held-out clips of its own training distribution (ci: 16 "
           "rendered clips of random notes and chords of other seeds, the curriculum it trained on; paper: the "
           "last heldout_tracks files of --transcription-data; decision threshold chosen on training clips) "
           "minus the note prior's frame F1 on the same clips (the training rolls' most frequent notes at "
           "every frame); mean over clips, interval min/max over seeds. At ci the model is also scored, for "
           "information only, on 16 rendered score excerpts (values.competence score_excerpts_*)",
    comparator=">=",
    thresholds={"ci": 0.10, "paper": 0.20},
    source="ours, set before measuring: ci 0.10 (a clear margin over a model that ignores the audio); paper "
           "0.20 (fine-tuned wav2vec 2.0 transcribes piano well above any prior)",
    baseline="the note prior (gain 0): its held-out frame and note F1 are in values.competence "
             "(prior_frame_f1, prior_note_f1)",
)

#: The SSL condition's own task (its objective's masked-frame prediction), on clips it never trained on.
SSL_COMPETENCE = Competence(
    name="ssl.heldout_masked_top1_gain",
    condition="ssl",
    metric="masked-frame identification on held-out speech + music clips, each cut into its whole crops of "
           "the training crop length (ci: 64 clips of 4 crops): a masked frame counts when the "
           "objective's prediction there (wav2vec 2.0: context projection vs its quantised latent; data2vec: "
           "the regression head vs the teacher's top-K target) is closer by cosine to its own target than to "
           "every one of its 20 distractors (other masked frames) that differs from the target; a distractor "
           "identical to the target (wav2vec 2.0: the same quantised code) is dropped, as the contrastive loss "
           "drops it, and a frame left with none counts as wrong (a collapsed target scores 0); trained minus "
           "the same network and heads at initialisation, same clips, masks and distractors; mean over clips, "
           "interval min/max over seeds. Reported beside it: the strict top-1 (identical distractors beat the "
           "frame) and the objective's held-out loss, at init and trained",
    comparator=">=",
    thresholds={"ci": 0.10, "paper": 0.20},
    source="ours, set before measuring: 0.10 at ci is twice chance (1/21) above the starting network; 0.20 "
           "at paper. The measure was revised on 2026-12-07 (conditions-4), the threshold not: until then a "
           "distractor identical to the target counted against the frame, which no predictor can avoid (it is "
           "the target) and which the objective itself excludes; 18-19 % of wav2vec2's masked frames had one. "
           "The revision came after wav2vec2 had missed the gate under the stricter measure, so the strict "
           "values stay in the report (values.competence ssl_top1_strict_*). Second revision, the same day "
           "(conditions-5), the threshold again not: the ci estimate was 16 clips scored on their first crop "
           "(about 16 masked frames each), so a seed's mean had a standard error of 0.03-0.04 over clips, "
           "against a 0.001 miss; it is now 64 clips over all their crops (4 x the frames per clip, 16 x in "
           "all). Under it the unchanged wav2vec2 recipe measured 0.090 / 0.088, further below the gate; the recipe "
           "then changed (wav2vec2 trains on 16 clips per update, not 8, its transcription too: 0.131 / 0.170 "
           "in the probe), which the claims' values were re-measured and re-declared from",
    baseline="the same network at initialisation (gain 0) and chance 1/21; both in values.competence",
)


#: The lab tier's thresholds (no lab run exists: set before measuring, never tuned to pass).
TRANSCRIPTION_COMPETENCE = TRANSCRIPTION_COMPETENCE.with_tier(
    "lab", 0.10, "0.10, ours, set before measuring: the ci tier's margin over a model that ignores the audio, below "
                 "the paper tier's 0.20 because the lab encoders start from a random init, not a pre-trained "
                 "checkpoint; held-out = the last heldout_tracks excerpts (MAESTRO's test split)")
SSL_COMPETENCE = SSL_COMPETENCE.with_tier(
    "lab", 0.10, "0.10, ours, set before measuring: twice chance (1/21) above the same network at initialisation, "
                 "as at ci; held-out = LibriSpeech dev-clean and FMA's test split")

#: Each trained condition's declaration, by condition.
COMPETENCES = {"transcription": TRANSCRIPTION_COMPETENCE, "ssl": SSL_COMPETENCE}


def _per_seed(runs: list, condition: str) -> list:
    c = [r["competence"][condition] for r in runs]
    if condition == "transcription":
        return [float(np.mean(x["frame_f1_gain"])) for x in c]
    return [float(np.mean(x["trained"]) - np.mean(x["init"])) for x in c]


def competence(runs: list, conditions=("transcription", "ssl")) -> dict:
    """``{Competence.name: Estimate over seeds}`` of the given trained conditions."""
    from analysis.stats import Estimate

    return {COMPETENCES[c].name: Estimate.over_seeds(_per_seed(runs, c)) for c in conditions}


def earned(run, runs: list, arch: str, result: dict, conditions=("transcription", "ssl")) -> dict:
    """Attach the trained conditions' competence and training time to ``result["main"]``; log the
    held-out scores (model, note prior, init, chance) per seed and the learning curves per condition."""
    values = {}
    for seed, r in zip(run.seeds, runs):
        t, s = r["competence"]["transcription"], r["competence"]["ssl"]
        values[f"seed {seed}"] = {
            "transcription_frame_f1": float(np.mean(t["frame_f1"])), "transcription_note_f1": float(np.mean(t["note_f1"])),
            "prior_frame_f1": float(np.mean(t["prior_frame_f1"])), "prior_note_f1": float(np.mean(t["prior_note_f1"])),
            "threshold": t["threshold"], "prior_notes": t["prior_notes"], "heldout_excerpts": t["n_clips"],
            **({"score_excerpts_frame_f1": float(np.mean(t["score_excerpts"]["frame_f1"])),
                "score_excerpts_prior_frame_f1": float(np.mean(t["score_excerpts"]["prior_frame_f1"])),
                "score_excerpts_note_f1": float(np.mean(t["score_excerpts"]["note_f1"]))}
               if "score_excerpts" in t else {}),
            "ssl_top1_trained": float(np.mean(s["trained"])), "ssl_top1_init": float(np.mean(s["init"])),
            "ssl_top1_strict_trained": float(np.mean(s["trained_strict"])),
            "ssl_top1_strict_init": float(np.mean(s["init_strict"])),
            "ssl_loss_trained": float(np.mean(s["trained_loss"])), "ssl_loss_init": float(np.mean(s["init_loss"])),
            "ssl_chance": s["chance"], "heldout_clips": int(len(s["trained"])),
            "train_seconds": {k: float(v) for k, v in r["train_seconds"].items()}}
    run.log_values({"competence": {arch: values}})
    run.log_learning_curves({f"{c} seed {seed}": {f"{c}_loss": list(r["losses"][c])}
                             for c in ("ssl", "transcription") for seed, r in zip(run.seeds, runs)},
                            name=f"grasse_{arch}")
    result["main"].competence = competence(runs, conditions)
    result["main"].training_s = {COMPETENCES[c].name: float(sum(r["train_seconds"][c] for r in runs)) for c in conditions}
    return result


# ------------------------------------------------------------------------------------ time estimate
#: Mean utterance length of LibriSpeech's training subsets in s (a whole FLAC is decoded to take its start).
LIBRISPEECH_MEAN_S = 12.7
#: FMA's clips are 30 s (the whole MP3 is decoded).
FMA_CLIP_S = 30.0
#: Host seconds per (architecture, seed) run: the RSA permutations of three conditions and the figures.
RUN_HOST_S = 60.0
#: Host seconds per claim test: its figures and learning curves (measured on the CPU fixtures: about 10 s),
#: plus its bootstraps (scaled by n_boot).
CLAIM_HOST_S = 10.0


def estimate_work(claim_id: str, variant: str, tier: str, s: dict, data=None) -> list:
    """The work of one Grasse & Tata claim test at the lab tier (:mod:`harness.budget`): decoding the SSL clips
    once, and per seed of its architecture the SSL and transcription trainings (same updates, batch and crop),
    the held-out scoring and the activations of the pitch set. Runs are shared by every claim of one
    architecture (one cache entry per architecture and seed)."""
    from harness.budget import TRAIN_FACTOR, Work, count_files, decode_seconds
    from models.ssl_audio import forward_flops

    if tier != "lab":
        return []
    arch = variant if variant in ARCHS else "wav2vec2"
    shape, start_note = _estimate_shape(arch, s, data)
    crop = forward_flops(n_samples=int(round(float(s["crop_s"]) * SR)), **shape)
    clip = forward_flops(n_samples=int(round(float(s["clip_s"]) * SR)), **shape)
    second = forward_flops(n_samples=SR, **shape)
    steps, batch = int(s["steps"]), batch_size(s, arch)
    n_half, n_ho = int(s["ssl_clips"]) // 2, int(s["heldout_clips"])
    n_speech, n_music = n_half + n_ho // 2, n_half + n_ho - n_ho // 2
    if data is not None and data.get("librispeech") is not None:    # at most what is there
        root = data.get("librispeech")
        n_speech = min(n_speech, count_files(root, f"{s['speech_subset']}/*/*/*.flac",
                                             f"LibriSpeech/{s['speech_subset']}/*/*/*.flac")
                       + count_files(root, f"{s['speech_heldout_subset']}/*/*/*.flac",
                                     f"LibriSpeech/{s['speech_heldout_subset']}/*/*/*.flac"))
    if data is not None and data.get("fma") is not None:
        n_music = min(n_music, count_files(data.get("fma"), f"fma_{s['fma_subset']}/*/*.mp3"))
    audio_s = n_speech * LIBRISPEECH_MEAN_S + n_music * FMA_CLIP_S
    key = json.dumps({k: v for k, v in s.items() if k not in ("seeds", "n_boot")}, sort_keys=True, default=str)
    work = [Work(f"grasse:decode:{s['ssl_clips']}:{s['clip_s']}:{s['heldout_clips']}",
                 f"decode the SSL clips ({2 * n_half} LibriSpeech + FMA, {n_ho} held out)",
                 host_s=decode_seconds(audio_s)),
            Work(f"grasse:stimuli:{s['n_exemplars']}:{s['dur_s']}:{s['n_perm']}", "pitch set, reference representations",
                 host_s=5.0 + 60.0 * int(s["n_exemplars"]) * float(s["dur_s"]) / 4 + 40.0 * int(s["n_perm"]) / 10000)]
    work.append(Work(f"grasse:claim:{claim_id}:{arch}", f"{claim_id}[{arch}]: bootstraps, figures (CPU)",
                     host_s=CLAIM_HOST_S + 30.0 * int(s["n_boot"]) / 2000))
    n_seeds = s["seeds"] if isinstance(s["seeds"], int) else len(s["seeds"])
    n_pitch_s = 48 * len(PITCH_TIMBRES) * int(s["n_exemplars"]) * float(s["dur_s"])
    teacher = 1.0 if arch == "data2vec" else 0.0                    # data2vec: the EMA teacher's forward pass
    for seed in range(n_seeds):
        ssl = steps * batch * crop * (TRAIN_FACTOR + teacher)
        trans = steps * batch * crop * TRAIN_FACTOR
        scoring = 2 * n_ho * clip + int(s["heldout_tracks"]) * clip + 16 * clip     # init + trained, held out
        acts = 3 * n_pitch_s * second
        work.append(Work(f"grasse:{arch}:{seed}:{key}",
                         f"{arch} seed {seed}: SSL + transcription, {steps} updates of {batch} x {s['crop_s']} s each"
                         f"{start_note}",
                         flops=ssl + trans + scoring + acts, steps=2 * steps,
                         host_s=2.0 + RUN_HOST_S * min(1.0, int(s["n_perm"]) / 10000)))
    return work


def _estimate_shape(arch: str, s: dict, data=None) -> tuple[dict, str]:
    """The encoder shape :func:`estimate_work` counts, and a note for its description: the lab settings' (a random
    start), or with ``start="checkpoints"`` the checkpoint's config (a local folder, or a hub id in the local
    transformers cache; else the settings', said so)."""
    shape = dict(hidden=int(s["hidden"]), n_layers=int(s["n_layers"]), conv_channels=int(s["conv_channels"]),
                 intermediate=int(s["intermediate"]))
    if s.get("start", "random") != "checkpoints":
        return shape, ""
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(str(_checkpoint(arch, data)[0]), local_files_only=True)
        shape = dict(hidden=int(cfg.hidden_size), n_layers=int(cfg.num_hidden_layers),
                     conv_channels=int(max(cfg.conv_dim)), intermediate=int(cfg.intermediate_size))
    except (UserError, OSError, ValueError, AttributeError, TypeError):      # e.g. a hub id not downloaded yet
        return shape, ", from a checkpoint not read here (shape of the lab settings)"
    return shape, f", from the checkpoint ({shape['n_layers']} x {shape['hidden']})"


def _register_estimator() -> None:
    from harness import budget

    budget.register("grasse2026", estimate_work)


_register_estimator()
