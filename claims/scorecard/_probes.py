"""The representation probes of the scorecard, for any :class:`models.adapters.AudioModel`.

Each probe reuses the papers' analysis functions and returns a :class:`Cell` for the model and
one for its control (random-weight twin or log-mel baseline). Stimuli come from the harness
cache; activations are memoised per model in a :class:`ScoredModel` (one per spec and session).

Profiles (:data:`PROFILES`): ``ci`` (the default at ``--tier ci``), ``paper`` and ``smoke`` (the
project's own tests: a 96-clip corpus and stimulus subsets; cells say so in ``settings``).

Conventions that a scorecard reader needs:

- Layers are chosen without looking at the test stimuli: the best RSA layer is re-selected inside
  every bootstrap resample; the MS-unit layer is the one whose top-12.5 % MSI units are most
  selective on the corpus (mean MSI), and the 165 sounds and the quilts only test it.
- Ratios and normalised quilt responses need non-negative responses. Every unit's responses are
  shifted by that unit's minimum over the corpus clips (a no-op for rectified layers such as the
  Kim et al. CNN; for signed layers, e.g. transformer hidden states, the ratio is of shifted
  responses, so a ratio > 1 still means music > non-music on the same scale). The same rule is
  applied to the control.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from harness.cache import content_key, generated_manifest
from harness.errors import UserError

SR_CORPUS = 22050
QUILT_SEG_MS = (50, 100, 200, 400, 800, 1600)
#: Settings per profile. corpus_clips: clips generated; msi_music / msi_nonmusic: clips per class used
#: for the MSI (labelled, never quilted); quilt_clips: music clips quilted (test split);
#: natsound_max: sounds of the 165 used (None = all); pitch_*: the Grasse et al. pitch set;
#: music_*: rendered tracks for the SSM / attention probes.
PROFILES = {
    "smoke": dict(corpus_clips=96, corpus_seed=0, msi_music=24, msi_nonmusic=48, quilt_clips=4, natsound_max=44,
                  pitch_timbres=("harmonic", "instrument"), pitch_exemplars=1, pitch_dur_s=0.5, n_boot=200,
                  music_tracks=3, music_clip_s=8.0, n_shifts=200, batch_size=16),
    "ci": dict(corpus_clips=2400, corpus_seed=0, msi_music=120, msi_nonmusic=240, quilt_clips=16, natsound_max=None,
               pitch_timbres=None, pitch_exemplars=1, pitch_dur_s=0.5, n_boot=1000,
               music_tracks=8, music_clip_s=8.0, n_shifts=1000, batch_size=16),
    "paper": dict(corpus_clips=2400, corpus_seed=0, msi_music=400, msi_nonmusic=800, quilt_clips=48,
                  natsound_max=None, pitch_timbres=None, pitch_exemplars=2, pitch_dur_s=0.5, n_boot=2000,
                  music_tracks=24, music_clip_s=8.0, n_shifts=1000, batch_size=16),
}

#: Declared control behaviour: a control verdict in the set contradicts it (the cell is flagged and
#: pytest warns). Only where the project's claims declare it (Kim et al.: untrained MS units do not
#: transfer to the 165 sounds; Grasse et al.: chroma is tested beyond the log-mel acoustic RDM, so the
#: log-mel baseline cannot beat it).
CONTROL_CONTRADICTS = {
    "ms_units.natsound165_ratio": {"random_twin": {"PASS"}},
    "ms_units.natsound165_categories": {"random_twin": {"PASS"}},
    "pitch.chroma_rsa": {"baseline:log_mel": {"PASS"}},
}


@dataclass
class Cell:
    """One model x claim result."""

    claim: str
    status: str                    # "scored" or "n/a"
    statistic: str = ""
    criterion: str = ""
    threshold: float | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    verdict: str = "n/a"
    layer: str | None = None
    reason: str = ""
    values: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def na(claim: str, reason: str) -> Cell:
    return Cell(claim=claim, status="n/a", reason=reason)


def cell_from(claim: str, criterion, est, layer=None, values=None, statistic: str = "") -> Cell:
    """A scored cell: the criterion's verdict on the estimate's interval."""
    return Cell(claim=claim, status="scored", statistic=statistic or criterion.statistic, criterion=criterion.text(),
                threshold=float(criterion.threshold), value=_f(est.value), low=_f(est.low), high=_f(est.high), p=_f(est.p), verdict=criterion.verdict(est),
                layer=layer, values=values or {})


def _f(x):
    return None if x is None or not np.isfinite(x) else float(x)


# ------------------------------------------------------------------------------------- a scored model
class ScoredModel:
    """A zoo entry with memoised activations, for one session.

    Parameters
    ----------
    entry : models.zoo.ZooEntry
    profile : str
    cache : harness.cache.Cache or None
    device : torch.device
    """

    def __init__(self, entry, profile: str, cache=None, device="cpu"):
        if profile not in PROFILES:
            raise UserError(f"unknown scorecard profile {profile!r}: use one of {', '.join(PROFILES)}")
        self.entry = entry
        self.profile = profile
        self.s = PROFILES[profile]
        self.cache = cache
        self.device = torch.device(device)
        self.memo: dict = {}
        self.seconds: dict = {}

    def which(self, control: bool):
        return self.entry.control if control else self.entry.model

    def pooled(self, key: str, audio: np.ndarray, sr: int, control: bool = False) -> dict:
        """Time-averaged activations per layer (memoised by stimulus key)."""
        from models.adapters import activations

        k = ("pooled", key, control)
        if k not in self.memo:
            t0 = time.perf_counter()
            self.memo[k] = activations(self.which(control), audio, sr, batch_size=int(self.s["batch_size"]),
                                       device=self.device)
            self.seconds[k] = time.perf_counter() - t0
        return self.memo[k]

    def sequences(self, key: str, audio: np.ndarray, sr: int, control: bool = False) -> dict:
        """Per-layer ``[n, frames, features]`` float32, or None for layers without a time axis."""
        import torchaudio.functional as AF

        k = ("seq", key, control)
        if k not in self.memo:
            t0 = time.perf_counter()
            model = self.which(control)
            out = {n: [] for n in model.layers}
            bs = max(1, int(self.s["batch_size"]) // 4)
            with torch.no_grad():
                for i in range(0, len(audio), bs):
                    x = torch.as_tensor(audio[i:i + bs], dtype=torch.float32, device=self.device)
                    if int(sr) != int(model.sample_rate):
                        x = AF.resample(x, int(sr), int(model.sample_rate))
                    acts = model(x)
                    for n in model.layers:
                        t = torch.as_tensor(acts[n]).float()
                        out[n].append(t.reshape(t.shape[0], t.shape[1], -1).cpu().numpy() if t.ndim >= 3 else None)
            self.memo[k] = {n: (None if v[0] is None else np.concatenate(v)) for n, v in out.items()}
            self.seconds[k] = time.perf_counter() - t0
        return self.memo[k]


# ------------------------------------------------------------------------------------------ stimuli
def pitch_stimuli(s: dict, cache=None):
    """The Grasse et al. pitch set (MIDI 36-83) and its log-mel acoustic RDM."""
    from analysis.rsa import condition_means, rdm
    from stimuli.pitch import PITCH_TIMBRES, pitch_features, pitch_set

    timbres = tuple(s["pitch_timbres"] or PITCH_TIMBRES)

    def build():
        ps = pitch_set(range(36, 84), timbres=timbres, n_exemplars=int(s["pitch_exemplars"]),
                       dur_s=float(s["pitch_dur_s"]), sr=16000, seed=1234)
        midi, mel = condition_means(pitch_features(ps.audio, ps.sr, "log_mel"), ps.midi)
        return {"audio": ps.audio.astype(np.float32), "midi": ps.midi, "acoustic": rdm(mel)}

    if cache is None:
        return build()
    pitch_set_manifest = generated_manifest("scorecard-pitch-set", midi=[36, 84], timbres=list(timbres),
                                            n=int(s["pitch_exemplars"]), dur=float(s["pitch_dur_s"]), sr=16000,
                                            seed=1234)
    return cache.pickle("scorecard-pitch", content_key(pitch_set_manifest), build, version="scorecard-pitch-1")


def corpus(s: dict, cache=None):
    """The embedded corpus (``stimuli.corpus``; the Kim et al. ci corpus at ``corpus_clips=2400``)."""
    from stimuli.corpus import CorpusConfig, make_corpus

    cfg = CorpusConfig(n_clips=int(s["corpus_clips"]), clip_s=2.0, sr=SR_CORPUS, seed=int(s["corpus_seed"]))
    return make_corpus(cfg, cache, audit=False)


def corpus_sets(s: dict, cache=None) -> dict:
    """Indices of the MSI clips (labelled, not quilted) and the quilted music clips (test split first)."""
    c = corpus(s, cache)
    lab = c.is_music
    music = np.flatnonzero(lab == 1)
    test_first = np.concatenate([music[c.split[music] == "test"], music[c.split[music] != "test"]])
    quilt_idx = test_first[: int(s["quilt_clips"])]
    rest_m = np.setdiff1d(music, quilt_idx)[: int(s["msi_music"])]
    rest_n = np.flatnonzero(lab == 0)[: int(s["msi_nonmusic"])]
    msi_idx = np.concatenate([rest_m, rest_n])
    return {"clips": c, "msi_idx": msi_idx, "msi_music": np.isin(msi_idx, rest_m), "quilt_idx": quilt_idx}


def quilts(s: dict, cache=None, device="cpu") -> dict:
    """Originals and quilts (``"original"``, ``"50"``, ...) of the quilt clips, 1.6 s quilted + 0.4 s silence."""
    from stimuli.quilting import quilt_stimuli

    sets = corpus_sets(s, cache)
    c = sets["clips"]

    def build():
        st = quilt_stimuli(c.audio[sets["quilt_idx"]], c.sr, seg_ms=QUILT_SEG_MS, ordering="kim2024", seed=0,
                           device=device, cut_s=1.6, total_s=2.0)
        return {"original": np.asarray(st["original"], np.float32),
                **{str(ms): np.asarray(st[float(ms)], np.float32) for ms in QUILT_SEG_MS}}

    if cache is None:
        return build()
    key = content_key(c.manifest["data"], n=int(s["quilt_clips"]), seg_ms=list(QUILT_SEG_MS), ordering="kim2024",
                      cut_s=1.6, total_s=2.0, seed=0)
    return cache.arrays("scorecard-quilts", key, build, version="scorecard-quilts-1")


def natsounds(s: dict, root, target_rms: float):
    """The 165 natural sounds at 22,050 Hz, RMS-normalised to ``target_rms`` (a stratified subset when
    ``natsound_max`` is set: every music sound first, then non-music in file order).

    Returns ``(audio, is_music, categories, manifest)``; ``manifest`` is the folder's data manifest
    (activations are memoised under its hash, never under the name alone)."""
    from stimuli.features import rms_normalise
    from stimuli.loaders import load_natsound165

    ns = load_natsound165(root, sr=SR_CORPUS)
    music = ns.is_music == 1
    idx = np.arange(len(music))
    if s["natsound_max"]:
        m, n = np.flatnonzero(music), np.flatnonzero(~music)
        k = int(s["natsound_max"])
        idx = np.sort(np.concatenate([m[: k // 2], n[: k - min(len(m), k // 2)]]))
    return (rms_normalise(ns.audio[idx], target_rms).astype(np.float32), music[idx],
            np.asarray(ns.categories).astype(str)[idx], ns.manifest["data"])


def music_tracks(s: dict, cache=None):
    """Rendered music with chord and onset ground truth (``stimuli.music.render_music_set``), 16 kHz."""
    from stimuli.music import render_music_set

    return render_music_set(n_tracks=int(s["music_tracks"]), clip_s=float(s["music_clip_s"]), sr=16000, seed=7,
                            frame_hop_s=0.02, cache=cache)


# --------------------------------------------------------------------------------------------- RSA
def pitch_rsa(sm: ScoredModel, control: bool = False) -> dict:
    """Height and chroma (given height and the acoustic RDM) RSA cells."""
    from analysis.rsa import bootstrap_over_stimuli, condition_means, rdm, resampled_rhos
    from harness import Criterion

    st = pitch_stimuli(sm.s, sm.cache)
    acts = sm.pooled("pitch", st["audio"], 16000, control)
    layers = list(acts)
    rdms = []
    for n in layers:
        midi, means = condition_means(acts[n].reshape(len(st["midi"]), -1), st["midi"])
        rdms.append(rdm(means))
    rdms = np.stack(rdms)
    k, nb = len(midi), int(sm.s["n_boot"])
    out = {}
    for kind, cov, cid, crit in (
            ("height", (), "pitch.height_rsa", Criterion("height_rho", ">", 0.0, source="ours")),
            ("chroma", (st["acoustic"],), "pitch.chroma_rsa",
             Criterion("chroma_rho", ">", 0.0, source="ours (Grasse et al.: chroma beyond acoustics)"))):
        full = resampled_rhos(rdms, midi, np.arange(k), kind, cov)
        est = bootstrap_over_stimuli(lambda idx: resampled_rhos(rdms, midi, idx, kind, cov).max(), k, nb, seed=4,
                                     method=f"percentile bootstrap over {k} pitches ({nb}), best layer re-selected")
        out[cid] = cell_from(cid, crit, est, layer=layers[int(np.argmax(full))],
                             values={"per_layer": dict(zip(layers, map(float, full)))})
    return out


# ---------------------------------------------------------------------------------------- MS units
def _shift(x: np.ndarray, floor: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(x, np.float64) - floor, 0.0)


def ms_units(sm: ScoredModel, control: bool = False) -> dict:
    """MSI on the corpus per layer; the chosen layer, its MS units and the per-unit shift."""
    from analysis.selectivity import music_selectivity_index, top_units

    k = ("ms_units", control)
    if k in sm.memo:
        return sm.memo[k]
    sets = corpus_sets(sm.s, sm.cache)
    c = sets["clips"]
    acts = sm.pooled("corpus", c.audio[sets["msi_idx"]], c.sr, control)
    per = {}
    for n, a in acts.items():
        floor = a.astype(np.float64).min(0)
        x = _shift(a, floor)
        if int((x.std(0) > 0).sum()) < 8:
            continue
        msi = np.nan_to_num(music_selectivity_index(x, sets["msi_music"]), nan=0.0, posinf=1e6, neginf=-1e6)
        units = top_units(msi)
        per[n] = {"floor": floor, "units": units, "mean_msi": float(np.mean(msi[units]))}
    if not per:
        raise UserError(f"model {sm.entry.name}: no layer has 8 units that vary over the corpus")
    best = max(per, key=lambda n: per[n]["mean_msi"])
    sm.memo[k] = dict(per[best], layer=best, mean_msi_per_layer={n: v["mean_msi"] for n, v in per.items()},
                      train_rms=float(np.sqrt((c.audio[c.split == "train"].astype(np.float64) ** 2).mean(1)).mean()))
    return sm.memo[k]


def natsound_cells(sm: ScoredModel, root, control: bool = False) -> dict:
    """The 165-sound cells of one model (or its control): ``{claim_id: Cell}``.

    ``ms_units.natsound165_ratio``: music / non-music mean response of the MS units, stratified
    bootstrap over sounds (criterion ratio > 1). ``ms_units.natsound165_categories``: Kim et al.'s
    stronger sentence, "both music categories exceed each of the nine non-music categories": the
    lower of the Music and Song category ratios minus the highest non-music category ratio, with a
    bootstrap over sounds within each category (criterion margin > 0).
    """
    from analysis.selectivity import category_margin, category_ratios, mean_response_per_clip
    from claims.kim2024.test_natsound165_ratio import MUSIC_CATEGORIES, bootstrap_ratio
    from harness import Criterion

    ms = ms_units(sm, control)
    audio, music, cats, data = natsounds(sm.s, root, ms["train_rms"])
    acts = sm.pooled(f"natsound165:{data['hash']}", audio, SR_CORPUS, control)[ms["layer"]]
    x = _shift(acts, ms["floor"])
    per_clip = mean_response_per_clip(x, ms["units"])
    est = bootstrap_ratio(per_clip[None], music, seed=0)
    cr = category_ratios(x, cats, ~music, ms["units"])
    values = {"n_sounds": int(len(music)), "category_ratios": {k: float(v) for k, v in cr.items()},
              "mean_msi_per_layer": ms["mean_msi_per_layer"]}
    cells = {"ms_units.natsound165_ratio": cell_from(
        "ms_units.natsound165_ratio", Criterion("ratio", ">", 1.0, source="ours (Kim et al. 1.88; untrained 1.03)"),
        est, layer=ms["layer"], values=values)}
    try:
        m_est = category_margin(per_clip, cats, MUSIC_CATEGORIES, n_boot=int(sm.s["n_boot"]), seed=0)
    except UserError as exc:   # e.g. a subset of the sounds without a music or a non-music category
        cells["ms_units.natsound165_categories"] = na("ms_units.natsound165_categories", str(exc))
        return cells
    crit = Criterion("music_category_margin", ">", 0.0,
                     source="Kim et al.: both music categories exceed each of the nine non-music categories")
    cells["ms_units.natsound165_categories"] = cell_from(
        "ms_units.natsound165_categories", crit, m_est, layer=ms["layer"], values=dict(values),
        statistic="lower of the Music and Song category ratios minus the highest non-music category ratio")
    return cells


def quilt_effect(sm: ScoredModel, control: bool = False, n_boot: int | None = None) -> Cell:
    """Pearson r between log2 segment size and the MS units' normalised quilt response, bootstrap over clips."""
    from analysis.stats import Estimate
    from harness import Criterion

    ms = ms_units(sm, control)
    q = quilts(sm.s, sm.cache, sm.device)
    names = ["original"] + [str(m) for m in QUILT_SEG_MS]
    audio = np.concatenate([q[n] for n in names])
    acts = _shift(sm.pooled("quilts", audio, SR_CORPUS, control)[ms["layer"]], ms["floor"])[:, ms["units"]]
    parts = np.stack(np.split(acts, len(names)))                     # [conditions, clips, units]
    unit_max = parts.max(axis=(0, 1))
    unit_max[unit_max <= 0] = 1.0
    curve = (parts / unit_max).mean(-1).T                            # [clips, conditions]
    x = np.log2(QUILT_SEG_MS)

    def r_of(rows):
        y = curve[rows, 1:].mean(0)
        return float(np.corrcoef(x, y)[0, 1]) if np.std(y) > 0 else 0.0

    nb = int(n_boot or sm.s["n_boot"])
    rng = np.random.default_rng(3)
    n = curve.shape[0]
    boot = np.array([r_of(rng.integers(0, n, n)) for _ in range(nb)])
    value = r_of(np.arange(n))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    est = Estimate(value=value, low=float(min(lo, value)), high=float(max(hi, value)), n=int(n), level=0.95,
                   method=f"percentile bootstrap over {n} quilted clips ({nb}) of r(log2 segment size, mean curve)")
    crit = Criterion("pearson_r", ">", 0.0, source="ours (Kim et al. r = 0.601)")
    mean = curve.mean(0)
    return cell_from("quilts.segment_size", crit, est, layer=ms["layer"],
                     values={"curve": dict(zip(names, map(float, mean))),
                             "original_minus_50ms": float(mean[0] - mean[1]), "n_clips": int(n)})


# ------------------------------------------------------------------------------------ SSM, attention
def _event_estimate(curves: np.ndarray, ref: np.ndarray, tol_frames: int, hop_s: float, n_shifts: int,
                    peak_kwargs: dict | None):
    from analysis.attention import layerwise_event_test
    from claims.kong2025.pipeline import surrogate_estimate

    res = layerwise_event_test(curves, ref.ravel(), tol_frames, n_shifts=n_shifts,
                               min_shift_frames=max(1, int(round(2.0 / hop_s))), seed=0, peak_kwargs=peak_kwargs)
    best = res["per_layer"][res["best_layer"]]
    return surrogate_estimate(best, res["p_corrected"], len(curves)), res


def ssm_chord_changes(sm: ScoredModel, control: bool = False) -> Cell:
    """Checkerboard novelty of every time-resolved layer's cosine SSM vs chord changes (Kong et al. probe)."""
    from analysis.attention import events_to_frames
    from analysis.ssm import checkerboard_novelty, chord_change_times, cosine_ssm
    from harness import Criterion

    cid = "ssm.chord_changes"
    ms = music_tracks(sm.s, sm.cache)
    seq = sm.sequences("music", np.asarray(ms.audio, np.float32), ms.sr, control)
    layers = [n for n, v in seq.items() if v is not None and v.shape[1] >= 20]
    if not layers:
        return na(cid, "no layer keeps a time axis of >= 20 frames over an 8-s track")
    n_frames = seq[layers[0]].shape[1]
    hop_s = float(sm.s["music_clip_s"]) / n_frames
    half = max(1, int(round(0.5 / hop_s)))
    curves = np.stack([np.concatenate([checkerboard_novelty(cosine_ssm(seq[n][i].astype(np.float32)), half)
                                       for i in range(len(ms.audio))]) for n in layers if seq[n].shape[1] == n_frames])
    layers = [n for n in layers if seq[n].shape[1] == n_frames]
    ref = np.concatenate([events_to_frames(chord_change_times(*ms.chords[i], t_max_s=n_frames * hop_s), n_frames, hop_s)
                          for i in range(len(ms.audio))])
    peaks = dict(max_frames=max(1, int(round(0.2 / hop_s))), avg_frames=max(2, int(round(1.0 / hop_s))), delta_std=0.5)
    est, res = _event_estimate(curves, ref, int(np.floor(0.1 / hop_s + 1e-9)), hop_s, int(sm.s["n_shifts"]), peaks)
    crit = Criterion("f_excess", ">", 0.05, p_max=0.01, source="ours (Kong et al. probe)")
    return cell_from(cid, crit, est, layer=layers[res["best_layer"]],
                     values={"hop_s": hop_s, "n_chord_changes": int(ref.sum()), "p_corrected": res["p_corrected"]})


def attention_onsets(sm: ScoredModel, control: bool = False) -> Cell:
    """Absolute difference of the attention each frame receives vs note onsets (transformers models only)."""
    from analysis.attention import absolute_difference, events_to_frames
    from harness import Criterion
    from models.adapters import TransformersAudioModel

    cid = "attention.onsets"
    model = sm.which(control)
    if not isinstance(model, TransformersAudioModel):
        return na(cid, f"{type(model).__name__} exposes no attention maps")
    ms = music_tracks(sm.s, sm.cache)
    k = ("attention", control)
    if k not in sm.memo:
        import torchaudio.functional as AF

        recv = []
        impl = getattr(model.model.config, "_attn_implementation", None)
        if impl not in (None, "eager") and hasattr(model.model, "set_attn_implementation"):
            try:  # sdpa / flash kernels return no weights; eager computes the same attention
                model.model.set_attn_implementation("eager")
            except (ValueError, ImportError, AttributeError):
                impl = None
        with torch.no_grad():
            for i in range(len(ms.audio)):
                x = torch.as_tensor(np.asarray(ms.audio[i:i + 1], np.float32), device=model.device)
                if ms.sr != model.sample_rate:
                    x = AF.resample(x, ms.sr, model.sample_rate)
                if model.normalize:
                    x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
                try:
                    out = model.model(x, output_attentions=True, return_dict=True)
                except (TypeError, ValueError) as exc:
                    sm.memo[k] = f"{type(model.model).__name__} cannot return attentions ({type(exc).__name__})"
                    break
                att = getattr(out, "attentions", None)
                if not att or att[0] is None:
                    sm.memo[k] = f"{type(model.model).__name__} returns no attention weights (sdpa/flash?)"
                    break
                recv.append(np.stack([a[0].float().mean(dim=(0, 1)).cpu().numpy() for a in att]))  # [L, T]
            else:
                sm.memo[k] = np.stack(recv, axis=1)                  # [L, tracks, T]
        if impl not in (None, "eager"):
            model.model.set_attn_implementation(impl)
    if isinstance(sm.memo[k], str):
        return na(cid, sm.memo[k])
    recv = sm.memo[k]
    n_frames = recv.shape[-1]
    hop_s = float(sm.s["music_clip_s"]) / n_frames
    curves = absolute_difference(recv.astype(np.float64)).reshape(recv.shape[0], -1)
    ref = np.concatenate([events_to_frames(ms.onsets_s[i], n_frames, hop_s) for i in range(len(ms.audio))])
    tol = max(1, int(np.floor(0.05 / hop_s + 1e-9)))
    est, res = _event_estimate(curves, ref, tol, hop_s, int(sm.s["n_shifts"]), None)
    crit = Criterion("f_excess", ">", 0.05, p_max=0.01, source="ours (Kong et al. probe)")
    return cell_from(cid, crit, est, layer=f"attention_{res['best_layer'] + 1}",
                     values={"hop_s": hop_s, "n_onsets": int(ref.sum()), "p_corrected": res["p_corrected"]})
