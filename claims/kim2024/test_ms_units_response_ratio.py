"""kim2024.ms_units.response_ratio: the top-12.5 % MSI units respond about twice as much to music."""
import numpy as np

from analysis.linear_readout import band_power
from analysis.selectivity import music_selectivity_index, response_ratio, top_units
from analysis.stats import Estimate
from claims.kim2024._conditions import (CI_MEASURED, COMPETENCE, EPOCHS_NOTE, MS_UNIT_REFERENCES, SELECTION_NOTE,
                                        KimConditions, notebook_references, seed_params, tier_settings, lab_tier)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Tier, claim

SPEC = Claim(
    id="kim2024.ms_units.response_ratio",
    paper=KIM2024,
    finding="Music-selective units (top 12.5 % by MSI on the test set) respond 2.07x more to music than to "
            "non-music on the independent training set, in networks trained without music; untrained "
            "networks show no such units (about 1x).",
    reported="2.07x (mean of 5 networks trained without music); untrained 1.03x",
    statistic="music / non-music mean response of the top-12.5 % MSI units (MSI = Welch t on the test split), "
              "measured on the training split; and the paired gain over the random-init network of the same seed",
    unit="seeds",
    criteria=[
        Criterion("ratio", ">=", 1.5, source="ours (paper 2.07; untrained 1.03)",
                  description="holds in every seed (min over seeds)"),
        Criterion("gain_vs_random", ">", 0.0, source="ours",
                  description="trained minus random-init ratio, same seed and architecture, > 0 in every seed"),
        Criterion("gain_vs_logmel", ">", 0.0, source="ours",
                  description="trained ratio minus the same pipeline on the input's mel band power, > 0 in every "
                              "seed: the units must be more music-selective than the corpus's own spectra"),
    ],
    controls={"random_init": "FAIL"},
    control_notes={
        "random_init": "untrained networks of the same seeds (gain 0 by construction; ratio should be ~1)",
    },
    competence=(COMPETENCE["without_music"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="FAIL",
                   reason=f"{CI_MEASURED}: trained networks reach 1.49-1.83x (interval straddles 1.5) and beat random "
                          "init by 0.44-0.66 in every seed, but the same pipeline on the input's mel band power "
                          "does better, so the gain over the log-mel baseline is -0.52 to -0.18 (FAIL): on the "
                          "embedded corpus the music-selectivity of MS units does not exceed the corpus's own "
                          "spectral statistics (linear band AP 0.56-0.58 on 1,200 clips; at the 165 sounds' size "
                          "0.38-0.40 against their 0.48). With the previous corpus (no music varispeed) the gain "
                          "was -0.22 to 0.09 (INCONCLUSIVE)"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS", data=("audioset_audio", "audioset_meta")),
        "lab": lab_tier(),
    },
    notes="The ratio is a ratio of means over the MS units and clips. The log-mel baseline uses band power "
          "(non-negative, like a post-ReLU unit), one deterministic value. Measured at ci on an earlier corpus "
          "(3 seeds): trained 1.99-2.38x, random init 1.24-1.46x, paired gain 0.61-1.07 (main PASS); but the "
          "log-mel input itself reached 1.69x: on the embedded corpus the 1.5x threshold alone is beaten by the "
          "input (music is denser than non-music, as in real audio). A first version declared the log-mel pipeline a control "
          "that must FAIL; it PASSed the ratio criterion, which showed the ratio alone cannot separate trained "
          "networks from the corpus's statistics. The claim therefore also requires the paired gain over the "
          "log-mel baseline (a stricter rule; the baseline's ratio is reported in values.json and the figure)."
          + " " + SELECTION_NOTE + "the ratio is measured on the training split, which the selection never saw (the "
          "paper's design). " + EPOCHS_NOTE,
    references=notebook_references(*MS_UNIT_REFERENCES),
)


def ms_ratio(sel: dict) -> float:
    return response_ratio(sel["train"], sel["train_music"], sel["ms_units"])


def logmel_baseline(cond: KimConditions) -> float:
    x = cond.logmel()
    te, tr = cond.split("test"), cond.split("train")
    bp_te, bp_tr = band_power(x[te.idx]), band_power(x[tr.idx])
    units = top_units(music_selectivity_index(bp_te, te.is_music))
    return response_ratio(bp_tr, tr.is_music, units)


@claim(SPEC)
def test_ms_units_response_ratio(run):
    import matplotlib.pyplot as plt

    cond = KimConditions.from_run(
        run, needs=("without_music", "with_music", "shuffled_labels", "without_music_and_speech"))
    seeds = cond.seeds("without_music")
    ratios, rand, msis = [], [], {}
    for seed in run.progress(seeds, "seeds"):
        sel = cond.selectivity("without_music", seed)
        sel_r = cond.selectivity("random_init", seed)
        _, meta = cond.model("without_music", seed)
        ratios.append(ms_ratio(sel))
        rand.append(ms_ratio(sel_r))
        msis[seed] = (sel["msi"], sel_r["msi"])
        with run.child(f"without_music-seed{seed}", params=seed_params(cond, "without_music", seed)) as child:
            child.log_history(meta["curves"])
            child.log_metrics({"ms_ratio": ratios[-1], "random_ms_ratio": rand[-1],
                               "best_val_map": meta["best_val_map"], "best_epoch": meta["best_epoch"],
                               "train_clips_per_s": meta["train_clips_per_s"], "train_seconds": meta["seconds"]})
    ratios, rand = np.array(ratios), np.array(rand)
    gain = ratios - rand
    lm = logmel_baseline(cond)
    other = {c: [ms_ratio(cond.selectivity(c, s)) for s in cond.seeds(c)]
             for c in ("with_music", "without_music_and_speech", "shuffled_labels")}
    run.log_values({"ratio_per_seed": ratios.tolist(), "random_ratio_per_seed": rand.tolist(),
                    "logmel_ratio": lm, "other_conditions": other})

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    s0 = seeds[0]
    bins = np.linspace(min(msis[s0][0].min(), msis[s0][1].min()), max(msis[s0][0].max(), msis[s0][1].max()), 30)
    axes[0].hist(msis[s0][0], bins=bins, alpha=0.6, label="trained without music")
    axes[0].hist(msis[s0][1], bins=bins, alpha=0.6, label="random init")
    axes[0].axvline(np.sort(msis[s0][0])[::-1][len(sel["ms_units"]) - 1], color="k", ls="--", lw=1)
    axes[0].set(xlabel="MSI (Welch t, test split)", ylabel="units", title=f"MSI, seed {s0}")
    axes[0].legend(fontsize=8)
    groups = {"without music": ratios, "random init": rand, **{k.replace("_", " "): v for k, v in other.items()},
              "log-mel input": [lm]}
    for i, (k, v) in enumerate(groups.items()):
        axes[1].scatter(np.full(len(v), i), v)
    axes[1].axhline(1.5, color="r", ls="--", lw=1, label="threshold 1.5")
    axes[1].axhline(2.07, color="g", ls=":", lw=1, label="paper 2.07")
    axes[1].set_xticks(range(len(groups)), list(groups), rotation=30, ha="right", fontsize=8)
    axes[1].set(ylabel="MS-unit music / non-music ratio")
    axes[1].legend(fontsize=8)
    run.log_figure(fig, "msi_hist_and_ratio.png")

    zero = Estimate.over_seeds(np.zeros(len(seeds)))
    return cond.earned(run, {
        "main": Evidence({"ratio": Estimate.over_seeds(ratios), "gain_vs_random": Estimate.over_seeds(gain),
                          "gain_vs_logmel": Estimate.over_seeds(ratios - lm)},
                         values={"logmel_ratio": lm}),
        "random_init": Evidence({"ratio": Estimate.over_seeds(rand), "gain_vs_random": zero,
                                 "gain_vs_logmel": Estimate.over_seeds(rand - lm)}),
    })
