"""kim2024.esc50.music_above_environmental: MS units prefer held-out music to ESC-50's environmental sounds."""
import numpy as np

from analysis.selectivity import mean_response_per_clip, plot_category_ratios
from analysis.stats import Estimate
from claims.kim2024._conditions import (CI_UNMEASURED, COMPETENCE, EPOCHS_NOTE, MS_UNIT_REFERENCES, SELECTION_NOTE,
                                        KimConditions, lab_tier, notebook_references, tier_settings)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Tier, claim
from stimuli.open_data import ESC50_MAJOR_CATEGORIES, require_esc50_categories

N_BOOT = 2000
#: Bootstrap replicates drawn at once (bounds memory: seeds x chunk x music clips).
BOOT_CHUNK = 100

SPEC = Claim(
    id="kim2024.esc50.music_above_environmental",
    paper=KIM2024,
    finding="Generalising the paper's 165-sound test (MS units respond 1.88 +- 0.13 times more to music than to "
            "non-music, untrained 1.03 +- 0.004; both music categories above each of the nine non-music "
            "categories) to a second held-out set: the MS units respond more to held-out music than to ESC-50's "
            "environmental sounds, and music exceeds each of ESC-50's five major categories.",
    reported=None,
    statistic="mean response of the MS units (top 12.5 % MSI, chosen on the corpus test split) to the music clips "
              "of the corpus's training split over that to ESC-50's 2,000 clips, both RMS-normalised to the mean "
              "training RMS and cut or padded to the corpus clip length, seed-averaged, bootstrap over music clips "
              "and ESC-50 source recordings; paired gain over random init; margin of music over the strongest of "
              "ESC-50's five major categories (Animals, Natural soundscapes & water, Human non-speech, "
              "Interior/domestic, Exterior/urban; targets 0-9 ... 40-49), each as a ratio to all ESC-50 clips",
    unit="music clips and ESC-50 source recordings (bootstrap, stratified) for the ratio; seeds for the gain and "
         "the category margin",
    criteria=[
        Criterion("ratio", ">", 1.0, source="ours (the paper has no ESC-50 value; on the 165 sounds 1.88, "
                                            "untrained 1.03)",
                  description="95 % bootstrap interval (music clips; ESC-50 clips clustered by source recording) "
                              "excludes 1"),
        Criterion("gain_vs_random", ">", 0.0, source="ours (165 sounds: 1.88 trained vs 1.03 untrained)",
                  description="ratio of the trained network minus that of the same-seed random network, every seed"),
        Criterion("major_category_margin", ">", 0.0,
                  source="ours, from the paper's 165-sound finding: both music categories above all nine others",
                  description="music ratio minus the highest of the five major categories' ratios, every seed"),
    ],
    controls={"random_init": "FAIL"},
    control_notes={"random_init": "untrained networks: MS units of a random network should not prefer music to "
                                  "ESC-50 (gain 0 by construction; its ratio and margin are reported)"},
    competence=(COMPETENCE["without_music"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="PASS", data=("esc50",),
                   reason=f"{CI_UNMEASURED} (ESC-50, --esc50 DIR; the 165 sounds' ratio at ci is 0.70-1.51). At ci "
                          "the music is the generated corpus's and ESC-50 is real recordings: a dataset confound "
                          "this tier cannot remove (values.corpus_nonmusic_over_esc50 shows its size)"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS",
                      data=("esc50", "audioset_audio", "audioset_meta")),
        "lab": lab_tier(data=("esc50",)),
    },
    notes=SELECTION_NOTE + "the ratio is measured on ESC-50 against the music of the corpus's training split. "
          "Music from the training split, not the test split: the MS units are chosen on the test split, so its "
          "music would favour them by selection, and the without_music networks never heard any music clip of "
          "either split. Both sets are RMS-normalised to the mean training RMS (as the 165 sounds). Limitation: "
          "music and environmental sounds come from different datasets, so a recording-chain difference between "
          "them can pass for music selectivity; at the lab tier both are Freesound recordings (FSD50K, ESC-50), "
          "at the paper tier the music is AudioSet's (YouTube), at ci generated. values.corpus_nonmusic_over_esc50 "
          "(the corpus's own non-music over ESC-50, same units) measures that confound, the random-init gain "
          "removes what an untrained network already shows. ESC-50 has no music class, though a few classes "
          "(church bells, clock tick) are tonal or rhythmic; its clips are 5 s with silence padded in, cut to 2 s "
          "at ci and padded to 10 s at the paper tier. " + EPOCHS_NOTE,
    references=notebook_references(*MS_UNIT_REFERENCES),
)


def per_seed(cond: KimConditions, condition: str, root) -> dict:
    """Per-seed MS-unit responses of one condition to the training split's music and to ESC-50.

    Returns
    -------
    dict
        ``ratio``, ``margin``, ``majors`` (major category -> ratio to all ESC-50 clips), ``classes``
        (ESC-50 class -> ratio), ``corpus_nonmusic`` (the corpus's own non-music over ESC-50), one entry per
        seed; ``music`` / ``esc50`` (per-clip responses ``[seeds, clips]``) and ``src_file``.
    """
    esc = cond.esc50_logmel(root)
    major, classes = esc["major"].astype(str), esc["categories"].astype(str)
    is_music = cond.transformed_logmel("rms")["is_music"].astype(bool)
    rows = {"ratio": [], "margin": [], "majors": [], "classes": [], "corpus_nonmusic": [], "music": [], "esc50": []}
    for seed in cond.seeds(condition):
        units = cond.selectivity(condition, seed)["ms_units"]
        corpus = mean_response_per_clip(cond.transformed_features(condition, seed, "rms"), units)
        env = mean_response_per_clip(cond.esc50_features(condition, seed, root), units)
        ref = env.mean()
        ratio = float(corpus[is_music].mean() / ref)
        majors = {c: float(env[major == c].mean() / ref) for c in ESC50_MAJOR_CATEGORIES}
        rows["ratio"].append(ratio)
        rows["majors"].append(majors)
        rows["margin"].append(ratio - max(majors.values()))
        rows["classes"].append({c: float(env[classes == c].mean() / ref) for c in np.unique(classes)})
        rows["corpus_nonmusic"].append(float(corpus[~is_music].mean() / ref))
        rows["music"].append(corpus[is_music])
        rows["esc50"].append(env)
    rows["music"], rows["esc50"] = np.array(rows["music"]), np.array(rows["esc50"])
    rows["src_file"] = esc["src_file"].astype(str)
    return rows


def bootstrap_ratio(music: np.ndarray, env: np.ndarray, clusters: np.ndarray, seed: int = 0,
                    n_boot: int = N_BOOT) -> Estimate:
    """Seed-averaged ratio of mean responses with a stratified bootstrap: music clips, ESC-50 source recordings.

    Parameters
    ----------
    music : np.ndarray, shape (n_seeds, n_music)
        Per-clip responses to the music clips (resampled clip by clip).
    env : np.ndarray, shape (n_seeds, n_env)
        Per-clip responses to the ESC-50 clips (resampled by source recording: clips cut from one
        recording are not independent).
    clusters : np.ndarray of str, shape (n_env,)
        The source recording of each ESC-50 clip.
    seed : int
    n_boot : int

    Returns
    -------
    Estimate
        The mean over seeds of music mean / ESC-50 mean, with a 95 % percentile interval.
    """
    rng = np.random.default_rng(seed)
    per = music.mean(1) / env.mean(1)
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    n_c = int(inv.max()) + 1
    sums = np.stack([np.bincount(inv, weights=e, minlength=n_c) for e in env])     # [seeds, clusters]
    counts = np.bincount(inv, minlength=n_c).astype(np.float64)
    boot = []
    for start in range(0, n_boot, BOOT_CHUNK):
        k = min(BOOT_CHUNK, n_boot - start)
        bm = rng.integers(0, music.shape[1], size=(k, music.shape[1]))
        bc = rng.integers(0, n_c, size=(k, n_c))
        boot.append((music[:, bm].mean(-1) / (sums[:, bc].sum(-1) / counts[bc].sum(-1))).mean(0))
    lo, hi = np.percentile(np.concatenate(boot), [2.5, 97.5])
    return Estimate(value=float(per.mean()), low=float(lo), high=float(hi), n=int(music.shape[1] + env.shape[1]),
                    level=0.95, samples=per,
                    method=f"stratified percentile bootstrap ({n_boot}) over music clips and ESC-50 source "
                           f"recordings ({n_c}), mean over seeds")


@claim(SPEC)
def test_esc50_music_above_environmental(run):
    root = require_esc50_categories(run.require_data("esc50"), what=SPEC.id)   # one line, before any training
    cond = KimConditions.from_run(run)
    main, rand = per_seed(cond, "without_music", root), per_seed(cond, "random_init", root)
    gain = np.array(main["ratio"]) - np.array(rand["ratio"])
    seed_mean = {c: float(np.mean([d[c] for d in main["classes"]])) for c in main["classes"][0]}
    run.log_values({
        "ratio_per_seed": main["ratio"], "random_ratio_per_seed": rand["ratio"],
        "major_category_ratios": main["majors"], "random_major_category_ratios": rand["majors"],
        "class_ratios_seed_mean": dict(sorted(seed_mean.items(), key=lambda kv: -kv[1])),
        "corpus_nonmusic_over_esc50": main["corpus_nonmusic"],
        "random_corpus_nonmusic_over_esc50": rand["corpus_nonmusic"],
        "n_music_clips": int(main["music"].shape[1]), "n_esc50_clips": int(main["esc50"].shape[1]),
        "n_esc50_sources": int(len(np.unique(main["src_file"]))),
        "esc50_manifest": cond.esc50_clips(root).manifest["data"]["hash"]})
    names = ["music (corpus train)"] + list(ESC50_MAJOR_CATEGORIES)
    trained = [np.mean(main["ratio"])] + [np.mean([d[c] for d in main["majors"]]) for c in ESC50_MAJOR_CATEGORIES]
    untrained = [np.mean(rand["ratio"])] + [np.mean([d[c] for d in rand["majors"]]) for c in ESC50_MAJOR_CATEGORIES]
    fig = plot_category_ratios(names, trained, untrained, [True] + [False] * len(ESC50_MAJOR_CATEGORIES),
                               "MS-unit response / ESC-50 mean",
                               "ESC-50 (165 sounds in the paper: 1.88 vs untrained 1.03)", rotation=30, height_in=3.8)
    run.log_figure(fig, "esc50_categories.png")
    return cond.earned(run, {
        "main": Evidence({"ratio": bootstrap_ratio(main["music"], main["esc50"], main["src_file"]),
                          "gain_vs_random": Estimate.over_seeds(gain),
                          "major_category_margin": Estimate.over_seeds(main["margin"])}),
        "random_init": Evidence({"ratio": bootstrap_ratio(rand["music"], rand["esc50"], rand["src_file"]),
                                 "gain_vs_random": Estimate.over_seeds(np.zeros(len(gain))),
                                 "major_category_margin": Estimate.over_seeds(rand["margin"])}),
    })
