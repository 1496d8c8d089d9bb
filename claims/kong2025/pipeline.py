"""Shared pipeline of the Kong et al. 2025 claims: music, log-mels, pre-training, layer outputs.

Every expensive step goes through the cache, so the six claims share one rendered music set, one
pre-trained ViT-1D and one extraction per model (trained, and the same network at initialisation).

Splits (by track, seeded): ``pre`` = the tracks used for contrastive pre-training and for fitting
probes (``fit``) and choosing probe layers (``val``); ``test`` = held-out tracks, never seen in
pre-training, on which every claim statistic is computed.

At the ``lab`` tier the ViT-1D is pre-trained on FMA (``--fma``, :func:`fma_pretrain_mel`, decoded once into
the cache) and the claims analyse open datasets with annotations instead of rendered music
(:mod:`stimuli.lab_data`): GuitarSet (``--guitarset``: chords, note onsets and track tags, split by player)
for the local, attention and SSM claims, GTZAN (``--gtzan``: genre) for the global one.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from analysis.attention import events_to_frames, received_attention
from harness.cache import content_key, data_manifest, digest_manifest, entry_ref, folder_manifest
from harness.errors import UserError
from harness.spec import Competence
from models.contrastive import (AugmentConfig, PretrainConfig, heldout_retrieval, log_mel_frames, pretrain_vit1d,
                                  random_init_like)
from models.vit1d import ViT1DConfig, extract_layers

VERSION = "kong2025-pipeline-1"
RETRIEVAL_VERSION = "kong2025-retrieval-1"  # held-out retrieval (competence) entries
TAGS = ("collection", "ensemble", "mode", "tempo_class")


@dataclass(frozen=True)
class KongConfig:
    """All settings of the Kong et al. pipeline (a tier's ``settings`` override the defaults).

    Attributes (units in names)
    ---------------------------
    sr, n_mels, n_fft, hop_length : front end (16 kHz, 64 bands, 1024-sample window, 20-ms hop)
    clip_s : length of each rendered track
    crop_s : pre-training crop and analysis window length
    n_tracks : rendered tracks; test_fraction of them are held out, val_fraction of the rest
        choose probe layers
    dim, depth, n_heads, mlp_ratio : ViT-1D shape
    steps, batch_size, lr, temperature : NT-Xent pre-training
    pretrain_source : "rendered" (ci), "music_audio" (the user's folder, paper tier) or "fma" (lab tier)
    max_pretrain_clips : cap on clips cut from the user's folder (or drawn from FMA)
    analysis_set : "rendered" (ci, paper) or an open dataset of :data:`stimuli.lab_data.ANALYSIS_SETS` (lab)
    fma_subset : FMA subset of the lab tier's pre-training (its training split)
    probe_frames : training frames subsampled for the frame-wise probes
    n_shifts : circular-shift surrogates
    onset_tol_s, chord_tol_s : event matching tolerances
    checker_half_s : checkerboard kernel half width
    n_boot : bootstrap resamples
    seed : one seed for rendering, splits, init and training
    """

    sr: int = 16000
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 320
    clip_s: float = 8.0
    crop_s: float = 2.0
    n_tracks: int = 192
    test_fraction: float = 1 / 3
    val_fraction: float = 0.25
    dim: int = 64
    depth: int = 4
    n_heads: int = 4
    mlp_ratio: float = 2.0
    steps: int = 250
    batch_size: int = 32
    lr: float = 1e-3
    temperature: float = 0.1
    pretrain_source: str = "rendered"
    max_pretrain_clips: int = 20000
    probe_frames: int = 20000
    n_shifts: int = 1000
    onset_tol_s: float = 0.05
    chord_tol_s: float = 0.1
    checker_half_s: float = 0.5
    n_boot: int = 10000
    seed: int = 0
    analysis_set: str = "rendered"
    fma_subset: str = "small"

    @classmethod
    def from_settings(cls, settings: dict) -> "KongConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - names - {"seeds"})
        if unknown:
            raise UserError(f"unknown Kong et al. settings {unknown}; valid keys are {sorted(names)}")
        return cls(**{k: v for k, v in settings.items() if k in names})

    @property
    def hop_s(self) -> float:
        return self.hop_length / self.sr

    @property
    def crop_frames(self) -> int:
        return int(round(self.crop_s / self.hop_s))

    def model_config(self) -> ViT1DConfig:
        return ViT1DConfig(n_mels=self.n_mels, dim=self.dim, depth=self.depth, n_heads=self.n_heads,
                           mlp_ratio=self.mlp_ratio)

    def to_dict(self) -> dict:
        return asdict(self)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:20]


def render_tracks(cfg: KongConfig, cache=None):
    """The rendered music set with ground truth (stimuli.music.render_music_set)."""
    from stimuli.music import render_music_set

    return render_music_set(n_tracks=cfg.n_tracks, clip_s=cfg.clip_s, sr=cfg.sr, seed=cfg.seed,
                            frame_hop_s=cfg.hop_s, cache=cache)


def split_tracks(n_tracks: int, test_fraction: float, val_fraction: float, seed: int) -> dict:
    """Seeded track split: ``fit``, ``val`` (together ``pre``) and ``test`` index arrays (sorted)."""
    rng = np.random.default_rng(seed + 7919)
    perm = rng.permutation(n_tracks)
    n_test = int(round(n_tracks * test_fraction))
    test, pre = np.sort(perm[:n_test]), perm[n_test:]
    n_val = int(round(len(pre) * val_fraction))
    if n_test < 4 or n_val < 2 or len(pre) - n_val < 4:
        raise UserError(f"{n_tracks} tracks are too few for the Kong et al. splits; render at least 24")
    return {"fit": np.sort(pre[n_val:]), "val": np.sort(pre[:n_val]), "pre": np.sort(pre), "test": test}


def music_folder_clips(root: Path, sr: int, clip_s: float, max_clips: int) -> tuple[np.ndarray, dict]:
    """Every audio file under ``root`` cut into non-overlapping ``clip_s`` clips at ``sr`` (mono), and the
    data manifest of the files it read (``name="music_audio"``,
    by content: :func:`harness.cache.folder_manifest`)."""
    clips, files = _music_folder(root, sr, clip_s, max_clips)
    return clips, folder_manifest(root, files=files, name="music_audio")


def _music_folder(root: Path, sr: int, clip_s: float, max_clips: int) -> tuple[np.ndarray, list]:
    import librosa

    exts = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aiff", ".aif"}
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in exts)
    if not files:
        raise UserError(f"no audio files in {root}; point --music-audio at a folder of music (wav/flac/mp3)")
    n = int(round(clip_s * sr))
    clips, used = [], []
    for f in files:
        y, _ = librosa.load(f, sr=sr, mono=True)
        used.append(f)
        for i in range(len(y) // n):
            clips.append(y[i * n : (i + 1) * n])
            if len(clips) >= max_clips:
                return np.stack(clips).astype(np.float32), used
    if len(clips) < 2:
        raise UserError(f"the music in {root} gives fewer than 2 clips of {clip_s} s; add more audio")
    return np.stack(clips).astype(np.float32), used


@dataclass
class KongBundle:
    """Everything the Kong et al. claims read."""

    cfg: KongConfig
    music: object
    mel: np.ndarray
    splits: dict
    outputs: dict  # "trained" / "random_init" -> arrays from extract_layers (tokens float16)
    history: dict
    trained_state: dict
    model_config: ViT1DConfig
    data_hash: str
    pretrain_hash: str
    retrieval: dict = None  # "trained" / "random_init" -> models.contrastive.heldout_retrieval on test tracks


def load_bundle(cfg: KongConfig, cache=None, device="cpu", music_audio_root: Path | None = None,
                verbose: bool = False, analysis=None, pretrain: tuple | None = None) -> KongBundle:
    """Render, featurise, pre-train and extract (each step cached when ``cache`` is given).

    Parameters
    ----------
    cfg : KongConfig
    cache : harness.cache.Cache or None
    device : str or torch.device
    music_audio_root : Path, optional
        The user's music folder (required when ``cfg.pretrain_source == "music_audio"``).
    verbose : bool
    analysis : stimuli.lab_data.AnalysisSet, optional
        The tracks to analyse (default: the rendered music set); its ``splits``, when given, replace the
        seeded split.
    pretrain : (np.ndarray, dict), optional
        Pre-training log-mel [clips, frames, n_mels] and the data manifest it came from (required when
        ``cfg.pretrain_source == "fma"``: :func:`fma_pretrain_mel`).
    """
    music = render_tracks(cfg, cache) if analysis is None else analysis
    audio = np.asarray(music.audio, dtype=np.float32)
    data_hash = _sha(audio)
    music_input = digest_manifest("kong2025-music", data_hash)     # the rendered tracks, by content
    if analysis is not None and isinstance(getattr(analysis, "manifest", {}).get("data"), dict):
        music_input = data_manifest("kong2025-analysis", analysis.manifest["data"], music_input)  # + its files
    feat_conf = content_key(music_input, sr=cfg.sr, n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop_length)

    def build_mel():
        return {"mel": log_mel_frames(audio, cfg.sr, cfg.n_mels, cfg.n_fft, cfg.hop_length, device=device)}

    mel = (cache.arrays("kong2025-logmel", feat_conf, build_mel, version=VERSION) if cache else build_mel())["mel"]
    splits = getattr(music, "splits", None) or split_tracks(len(audio), cfg.test_fraction, cfg.val_fraction, cfg.seed)

    sources = []
    if cfg.pretrain_source == "rendered":
        pre_mel = mel[splits["pre"]]
    elif cfg.pretrain_source == "music_audio":
        if music_audio_root is None:
            raise UserError("pretrain_source='music_audio' needs a music folder; set --music-audio PATH")
        clips, folder = music_folder_clips(music_audio_root, cfg.sr, cfg.clip_s, cfg.max_pretrain_clips)
        sources.append(folder)                                      # the user's files, by content
        pre_mel = log_mel_frames(clips, cfg.sr, cfg.n_mels, cfg.n_fft, cfg.hop_length, device=device)
    elif cfg.pretrain_source == "fma":
        if pretrain is None:
            raise UserError("pretrain_source='fma' needs the FMA pre-training log-mel; set --fma PATH")
        pre_mel, manifest = pretrain
        sources.append(manifest)                                    # FMA's files, by content
    else:
        raise UserError(f"pretrain_source={cfg.pretrain_source!r} is unknown; use 'rendered', 'music_audio' or 'fma'")
    pretrain_hash = _sha(pre_mel)
    mcfg = cfg.model_config()
    tcfg = PretrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, crop_frames=cfg.crop_frames, lr=cfg.lr,
                          temperature=cfg.temperature, seed=cfg.seed)
    train_conf = content_key(digest_manifest("kong2025-pretrain-mel", pretrain_hash), *sources, model=mcfg.to_dict(),
                             train=tcfg.to_dict(), aug=asdict(AugmentConfig()))

    def build_model():
        model, history = pretrain_vit1d(pre_mel, mcfg, tcfg, device=device, verbose=verbose)
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "history": history}

    trained = cache.pickle("kong2025-vit1d", train_conf, build_model, version=VERSION) if cache else build_model()
    models = {
        "trained": random_init_like(pre_mel, mcfg, seed=cfg.seed, device=device),
        "random_init": random_init_like(pre_mel, mcfg, seed=cfg.seed, device=device),
    }
    models["trained"].load_state_dict(trained["state_dict"])
    mel_ref = entry_ref("kong2025-logmel", feat_conf, version=VERSION)
    net_ref = entry_ref("kong2025-vit1d", train_conf, version=VERSION)
    test_conf = content_key(net_ref, train_conf, mel_ref,
                            test=_sha(splits["test"]))   # the trained network, its random init, the test tracks

    def build_retrieval():
        test_mel = mel[splits["test"]]
        return {kind: heldout_retrieval(m, test_mel, cfg.crop_frames, seed=cfg.seed, device=device)
                for kind, m in models.items()}

    retrieval = (cache.json("kong2025-retrieval", test_conf, build_retrieval, version=RETRIEVAL_VERSION) if cache
                 else build_retrieval())
    outputs = {}
    for kind, model in models.items():
        net = net_ref if kind == "trained" else train_conf
        conf = content_key(net, mel_ref, kind=kind, window=cfg.crop_frames)

        def build_out(model=model):
            res = extract_layers(model, mel, cfg.crop_frames, device=device, attention_reducer=received_attention,
                                 keep_attention_windows=0)
            res["tokens"] = res["tokens"].astype(np.float16)
            res["final_sequence"] = res["final_sequence"].astype(np.float16)
            return res

        outputs[kind] = cache.arrays("kong2025-layers", conf, build_out, version=VERSION) if cache else build_out()
    return KongBundle(cfg=cfg, music=music, mel=mel, splits=splits, outputs=outputs, history=trained["history"],
                      trained_state=trained["state_dict"], model_config=mcfg, data_hash=data_hash, pretrain_hash=pretrain_hash,
                      retrieval=retrieval)


# --------------------------------------------------------------------------------- track views
def n_windows(bundle: KongBundle) -> int:
    return bundle.mel.shape[1] // bundle.cfg.crop_frames


def track_frames(bundle: KongBundle) -> int:
    """Frames per track covered by whole windows."""
    return n_windows(bundle) * bundle.cfg.crop_frames


def tokens_by_track(out: dict, n_tracks: int, n_win: int) -> np.ndarray:
    """Window tokens [layers, windows, T, D] -> per-track frames [layers, tracks, n_win * T, D] (float32)."""
    tok = out["tokens"]
    layers, _, t, d = tok.shape
    return tok.reshape(layers, n_tracks, n_win * t, d)


def onset_frames(bundle: KongBundle, tracks) -> np.ndarray:
    """Boolean onset indicators [len(tracks), track_frames]."""
    nf = track_frames(bundle)
    return np.stack([events_to_frames(bundle.music.onsets_s[i], nf, bundle.cfg.hop_s) for i in tracks])


def concat_windows(x: np.ndarray, tracks, n_win: int) -> np.ndarray:
    """Per-window curves [layers, windows, T] of all tracks -> concatenated over ``tracks`` [layers, len*n_win*T]."""
    layers, _, t = x.shape
    per_track = x.reshape(layers, -1, n_win * t)
    return per_track[:, np.asarray(tracks)].reshape(layers, -1)


# --------------------------------------------------------------------------------- tiers
CI_SETTINGS = dict(sr=16000, n_mels=64, n_fft=1024, hop_length=320, clip_s=8.0, crop_s=2.0, n_tracks=192,
                   dim=64, depth=4, n_heads=4, mlp_ratio=2.0, steps=250, batch_size=32, lr=1e-3, temperature=0.1,
                   pretrain_source="rendered", probe_frames=20000, n_shifts=1000, n_boot=10000, seed=0)
# Paper tier: the user's music for pre-training and a larger model; Kong et al.'s public sibling code
# uses 16 kHz, 4-s crops, 128 mel bands and n_fft 1024. Sizes are placeholders for the user to set.
PAPER_SETTINGS = dict(sr=16000, n_mels=128, n_fft=1024, hop_length=320, clip_s=16.0, crop_s=4.0, n_tracks=1200,
                      dim=192, depth=6, n_heads=6, mlp_ratio=4.0, steps=20000, batch_size=128, lr=5e-4,
                      temperature=0.1, pretrain_source="music_audio", probe_frames=200000, n_shifts=10000,
                      n_boot=10000, seed=0)
#: Lab tier: the paper tier's ViT-1D (192 x 6, 4-s crops, 128 mel bands) pre-trained for 20,000 steps of 128
#: tracks on FMA small's training split (6,400 tracks of 30 s); analysed on GuitarSet (chords, onsets; the
#: global claim on GTZAN's genres, :data:`LAB_GTZAN_SETTINGS`). Sized for one GPU (harness.budget).
LAB_SETTINGS = dict(sr=16000, n_mels=128, n_fft=1024, hop_length=320, clip_s=30.0, crop_s=4.0, dim=192, depth=6,
                    n_heads=6, mlp_ratio=4.0, steps=20000, batch_size=128, lr=5e-4, temperature=0.1,
                    pretrain_source="fma", fma_subset="small", max_pretrain_clips=6400, analysis_set="guitarset",
                    probe_frames=200000, n_shifts=10000, n_boot=10000, seed=0)
LAB_GTZAN_SETTINGS = dict(LAB_SETTINGS, analysis_set="gtzan")
#: The lab tier's expectation: what the paper claims, not a measurement.
LAB_REASON = ("not yet run on GPU: the expectation is the paper's finding (pre-trained on FMA, analysed on "
              "GuitarSet / GTZAN); re-declare from the first lab run")


def lab_tier(analysis_set: str = "guitarset"):
    """A Kong et al. claim's ``lab`` tier: pre-training on FMA, analysis on ``analysis_set`` (both data roots
    required), expected to replicate (:data:`LAB_REASON`)."""
    from harness.spec import Tier

    settings = LAB_GTZAN_SETTINGS if analysis_set == "gtzan" else dict(LAB_SETTINGS, analysis_set=analysis_set)
    return Tier(settings=settings, expect="PASS", reason=LAB_REASON, data=("fma", analysis_set))


def bundle_for(run) -> KongBundle:
    """The shared bundle for a claim run (cached across the six claims)."""
    cfg = KongConfig.from_settings(run.settings)
    root = run.require_data("music_audio") if cfg.pretrain_source == "music_audio" else None
    verbose = bool(getattr(run.session, "verbose", False))
    pretrain = fma_pretrain_mel(cfg, run.require_data("fma"), run.cache, run.device, verbose) \
        if cfg.pretrain_source == "fma" else None
    analysis = None
    if cfg.analysis_set != "rendered":
        from stimuli.lab_data import ANALYSIS_SETS

        if cfg.analysis_set not in ANALYSIS_SETS:
            raise UserError(f"analysis_set={cfg.analysis_set!r} is unknown; use 'rendered' or one of "
                            f"{', '.join(ANALYSIS_SETS)}")
        analysis = ANALYSIS_SETS[cfg.analysis_set](run.require_data(cfg.analysis_set), cfg.sr, cfg.clip_s, verbose)
        run.log_values({"analysis_set": {k: v for k, v in analysis.manifest.items()
                                         if not (isinstance(v, (list, dict)) and len(v) > 64)}})
    return load_bundle(cfg, cache=run.cache, device=run.device, music_audio_root=root, verbose=verbose,
                       analysis=analysis, pretrain=pretrain)


FMA_MEL_VERSION = "kong2025-fma-mel-1"


def fma_pretrain_mel(cfg: KongConfig, root: Path, cache=None, device="cpu", verbose: bool = False) -> tuple:
    """The lab tier's pre-training log-mel: up to ``max_pretrain_clips`` tracks of FMA's ``fma_subset`` training
    split (a seeded draw), their first ``clip_s`` seconds, as [clips, frames, n_mels].

    Decoded once: the cache entry is keyed by the files' sizes and mtimes (:func:`stimuli.lab_data.fma_stat`)
    and the settings; it holds the log-mel and the loader's content manifest, which is what the pre-trained
    network's key reads. Returns ``(mel, data manifest)``.
    """
    import json
    import tempfile

    from stimuli.lab_data import fma_stat
    from stimuli.open_data import load_fma

    params = dict(subset=cfg.fma_subset, split="train", sr=cfg.sr, clip_s=float(cfg.clip_s),
                  max_clips=int(cfg.max_pretrain_clips), seed=cfg.seed)

    def build():
        with tempfile.TemporaryDirectory(dir=cache.root if cache is not None else None) as tmp:
            clips = load_fma(root, progress=verbose, memmap_path=Path(tmp) / "audio.npy", **params)
            mel = log_mel_frames(np.asarray(clips.audio), cfg.sr, cfg.n_mels, cfg.n_fft, cfg.hop_length, device=device)
            return {"mel": mel, "manifest": np.array(json.dumps(clips.manifest["data"], default=str))}

    if cache is None:
        out = build()
    else:
        key = content_key(fma_stat(root, cfg.fma_subset), n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop_length,
                          **params)
        out = cache.arrays("kong2025-fma-mel", key, build, version=FMA_MEL_VERSION)
    from harness.cache import remember_manifest

    return np.asarray(out["mel"]), remember_manifest(json.loads(str(out["manifest"])))


def tag_tasks(bundle: KongBundle) -> tuple:
    """The global (track-level) tasks of a bundle: :data:`TAGS` for rendered music, else the analysis set's tags."""
    tags = bundle.music.tags
    return TAGS if set(TAGS) <= set(tags) else tuple(tags)


def surrogate_estimate(res: dict, p_corrected: float, n_layers: int, level: float = 0.99):
    """Estimate of an event F-measure's excess over circular-shift surrogates.

    ``value = F - mean(null)``; the interval is ``F - quantile(null, [1 - a, a])`` with
    ``a = (1 - level) / 2``, so ``low > t`` means F beats the surrogates' upper quantile by ``t``.
    """
    from analysis.stats import Estimate

    a = (1 - level) / 2
    null = np.asarray(res["null"])
    return Estimate(value=res["f"] - null.mean(), low=res["f"] - np.quantile(null, 1 - a),
                    high=res["f"] - np.quantile(null, a), p=p_corrected, n=len(null), level=level,
                    method=f"circular-shift surrogates ({len(null)}), best of {n_layers} layers, Bonferroni p")


def excess_over(a, b):
    """Trained minus random-init excess, with the conservative interval ``[a.low - b.high, a.high - b.low]``.

    Each input's interval comes from its own surrogates; the difference interval is wider than a
    paired test's, so a PASS on it is safe and an INCONCLUSIVE may be conservative.
    """
    from analysis.stats import Estimate

    return Estimate(value=a.value - b.value, low=a.low - b.high, high=a.high - b.low, n=a.n, level=a.level,
                    method="difference of two surrogate intervals (conservative)")


def layer_ssms(bundle: KongBundle, kind: str, track: int) -> np.ndarray:
    """Cosine SSMs of one track's sequence tokens, per layer [layers, frames, frames]."""
    from analysis.ssm import cosine_ssm

    out = bundle.outputs[kind]
    nw = n_windows(bundle)
    sel = out["tokens"][:, track * nw : (track + 1) * nw]  # [L, nw, T, D]
    return cosine_ssm(sel.reshape(sel.shape[0], -1, sel.shape[-1]).astype(np.float32))


def reference_features(bundle: KongBundle, tracks) -> dict:
    """Chroma, MFCC (timbre) and onset-context features [len(tracks), frames, dims] of whole windows."""
    from analysis.ssm import chroma_features, mfcc_from_log_mel, onset_context_features

    cfg, nf = bundle.cfg, track_frames(bundle)
    tracks = np.asarray(tracks)
    mel = bundle.mel[tracks, :nf]
    chroma = chroma_features(np.asarray(bundle.music.audio)[tracks], cfg.sr, cfg.n_fft, cfg.hop_length)[:, :nf]
    return {"chroma": chroma, "timbre_mfcc": mfcc_from_log_mel(mel), "onsets": onset_context_features(mel)}


# --------------------------------------------------------------------------------- competence
#: How the ci threshold was set (re-measure after changing the corpus or the ci recipe).
CI_RETRIEVAL_MEASURED = ("0.40, ours, from measurement on 2026-12-06 (ci recipe: 128 pre-training tracks, 250 steps, "
                         "54 s of training): held-out top-1 0.580 [0.512, 0.646] over 64 test tracks for the trained "
                         "network, 0.230 [0.189, 0.271] for the same network at initialisation, chance 0.016. 0.40 "
                         "is about 1.5x the random-init network's upper bound; on its training batches the network "
                         "reaches 0.80, so part of what it learned is memorisation of its tracks")

#: The pre-trained ViT-1D's own task, on held-out tracks (every Kong claim about the trained model cites it).
VIT1D_RETRIEVAL = Competence(
    name="vit1d.heldout_top1",
    condition="trained",
    metric="top-1 retrieval of the positive view by class-token cosine similarity among the held-out test "
           "tracks (two augmented crops per track, 4 augmentation draws; the NT-Xent task on tracks never "
           "seen in pre-training); interval: bootstrap over tracks",
    comparator=">=",
    thresholds={"ci": 0.40, "paper": 0.5},
    source=f"ci: {CI_RETRIEVAL_MEASURED}; paper: 0.5, ours (no paper value: Kong et al. give only the abstract)",
    baseline="chance 1 / test tracks (values.competence.chance) and the same network at initialisation "
             "(values.competence.random_init_top1)",
)


VIT1D_RETRIEVAL = VIT1D_RETRIEVAL.with_tier(
    "lab", 0.30, "0.30, ours, set before measuring (no lab run exists): 18x chance on GuitarSet's 60 test excerpts "
                 "(1/60) and 100x on GTZAN's 333; below the paper tier's 0.5 because GuitarSet's test player plays "
                 "every progression twice at one tempo (comp and solo), and the two views are independent 4-s crops")


def competence(bundle: KongBundle, n_boot: int = 10000) -> dict:
    """``{VIT1D_RETRIEVAL.name: Estimate}``: held-out top-1 over test tracks, bootstrap interval."""
    from analysis.stats import bootstrap_ci

    per = bundle.retrieval["trained"]["per_track"]
    return {VIT1D_RETRIEVAL.name: bootstrap_ci(per, n_boot=n_boot, seed=bundle.cfg.seed)}


def earned(run, bundle: KongBundle, result: dict) -> dict:
    """Attach the trained model's competence, its training time and learning curve to ``result["main"]``.

    Logs the held-out top-1 of the trained and the random-init model, chance, and the pre-training
    curves (loss and training-batch top-1 per step) as a figure.
    """
    r = bundle.retrieval
    run.log_values({"competence": {"trained_top1": r["trained"]["top1"], "random_init_top1": r["random_init"]["top1"],
                                   "chance": r["trained"]["chance"], "n_tracks": r["trained"]["n_tracks"],
                                   "n_repeats": r["trained"]["n_repeats"],
                                   "train_seconds": bundle.history.get("seconds")}})
    run.log_learning_curves({"trained": {"nt_xent_loss": bundle.history["loss"],
                                         "train_batch_top1": bundle.history["positive_top1"]}}, name="vit1d")
    result["main"].competence = competence(bundle, bundle.cfg.n_boot)
    secs = bundle.history.get("seconds")
    result["main"].training_s = {VIT1D_RETRIEVAL.name: float(secs)} if secs is not None else {}
    return result


# --------------------------------------------------------------------------------- time estimate
#: FMA's tracks are 30 s (the whole MP3 is decoded); the analysis sets' track counts.
FMA_TRACK_S = 30.0
ANALYSIS_TRACKS = {"guitarset": 360, "gtzan": 1000}
#: Host seconds per claim for probes, surrogates, SSMs and figures (CPU), a rough allowance.
CLAIM_HOST_S = 180.0


def estimate_work(claim_id: str, variant: str, tier: str, s: dict, data=None) -> list:
    """The work of one Kong et al. claim at the lab tier (:mod:`harness.budget`): decoding FMA and pre-training
    the ViT-1D once (shared by every claim), extracting the analysis set's layer outputs once per analysis set
    (trained and random-init networks, and the held-out retrieval), and per claim decoding the analysis set and
    its statistics."""
    from harness.budget import TRAIN_FACTOR, Work, count_files, decode_seconds
    from models.vit1d import forward_flops

    if tier != "lab":
        return []
    cfg = KongConfig.from_settings(s)
    get = (lambda key: data.get(key)) if data is not None else (lambda key: None)
    n_pre = int(cfg.max_pretrain_clips)
    if get("fma") is not None:                                      # FMA's training split: 80 % of a subset
        n_pre = min(n_pre, int(0.8 * count_files(get("fma"), f"fma_{cfg.fma_subset}/*/*.mp3")) or n_pre)
    counts = {"guitarset": lambda r: count_files(r, "annotation/*.jams", "GuitarSet/annotation/*.jams"),
              "gtzan": lambda r: count_files(r, "*/*/*.wav", "*/*/*/*.wav", "*/*/*.au")}
    fwd = forward_flops(cfg.model_config(), cfg.crop_frames)
    model = f"{cfg.model_config().to_dict()}:{cfg.crop_frames}"
    pre = f"{cfg.fma_subset}:{cfg.max_pretrain_clips}:{cfg.clip_s}:{cfg.steps}:{cfg.batch_size}:{model}"
    n = ANALYSIS_TRACKS.get(cfg.analysis_set, cfg.n_tracks)
    if cfg.analysis_set in counts and get(cfg.analysis_set) is not None:
        n = counts[cfg.analysis_set](get(cfg.analysis_set)) or n
    windows = int(cfg.clip_s // cfg.crop_s)
    n_test = n // 6 if cfg.analysis_set == "guitarset" else int(round(n * cfg.test_fraction))
    return [
        Work(f"kong:fma:{cfg.fma_subset}:{n_pre}:{cfg.clip_s}", f"decode FMA {cfg.fma_subset} ({n_pre} tracks), log-mel",
             host_s=decode_seconds(n_pre * FMA_TRACK_S)),
        Work(f"kong:pretrain:{pre}", f"pre-train the ViT-1D: {cfg.steps} steps of {cfg.batch_size} x 2 crops",
             flops=cfg.steps * 2 * cfg.batch_size * fwd * TRAIN_FACTOR, steps=cfg.steps),
        Work(f"kong:extract:{cfg.analysis_set}:{pre}", f"layer outputs of {n} {cfg.analysis_set} tracks, retrieval",
             flops=2 * n * windows * fwd + 2 * n_test * 2 * 4 * fwd),
        Work(f"kong:claim:{claim_id}", f"{claim_id}: decode {cfg.analysis_set}, statistics (CPU)",
             host_s=decode_seconds(n * cfg.clip_s) + 5.0 + CLAIM_HOST_S * min(1.0, cfg.n_shifts / 10000)),
    ]


def _register_estimator() -> None:
    from harness import budget

    budget.register("kong2025", estimate_work)


_register_estimator()
