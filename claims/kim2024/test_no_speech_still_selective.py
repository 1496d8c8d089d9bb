"""kim2024.no_speech.still_selective: without music and speech in training, MS units still emerge."""
import numpy as np

from analysis.selectivity import response_ratio
from analysis.stats import Estimate
from claims.kim2024._conditions import (COMPETENCE, EPOCHS_NOTE, MS_UNIT_REFERENCES, SELECTION_NOTE, KimConditions,
                                        notebook_references, quilt_correlation, quilt_curve, tier_settings, lab_tier)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Tier, claim

SPEC = Claim(
    id="kim2024.no_speech.still_selective",
    paper=KIM2024,
    finding="Networks trained without music and without speech still have music-selective units (ratio 1.77x); "
            "their quilt sensitivity is weaker.",
    reported="MS ratio 1.77x; quilt sensitivity weaker (no number given)",
    statistic="MS-unit music / non-music ratio (MSI on the test split, ratio on the training split) of networks "
              "trained without music and speech; paired gain over random init of the same seed",
    unit="seeds",
    criteria=[
        Criterion("ratio", ">=", 1.5, source="ours (paper 1.77)", description="every seed"),
        Criterion("gain_vs_random", ">", 0.0, source="ours", description="every seed"),
    ],
    controls={"random_init": "FAIL"},
    control_notes={"random_init": "untrained networks of the same seeds"},
    competence=(COMPETENCE["without_music_and_speech"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="PASS"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS", data=("audioset_audio", "audioset_meta")),
        "lab": lab_tier(),
    },
    notes="Budget: this condition has seeds_other (2) seeds at ci. The quilt-effect difference (with speech minus without speech, Pearson r of the MS-unit quilt curve) "
          "is reported in values, not judged."
          + " " + SELECTION_NOTE + "the ratio is measured on the training split, which the selection never saw. "
          + EPOCHS_NOTE,
    references=notebook_references(*MS_UNIT_REFERENCES),
)


@claim(SPEC)
def test_no_speech_still_selective(run):
    import matplotlib.pyplot as plt

    cond = KimConditions.from_run(run, needs=("without_music", "without_music_and_speech"))
    seeds = cond.seeds("without_music_and_speech")
    ratio, rand = [], []
    for s in seeds:
        sel, sel_r = cond.selectivity("without_music_and_speech", s), cond.selectivity("random_init", s)
        ratio.append(response_ratio(sel["train"], sel["train_music"], sel["ms_units"]))
        rand.append(response_ratio(sel_r["train"], sel_r["train_music"], sel_r["ms_units"]))
    ratio, rand = np.array(ratio), np.array(rand)
    q_ns = [quilt_curve(cond, "without_music_and_speech", s) for s in seeds]
    q_main = [quilt_curve(cond, "without_music", s) for s in cond.seeds("without_music")]
    r_ns, r_main = quilt_correlation(q_ns), quilt_correlation(q_main)
    run.log_values({"ratio_per_seed": ratio.tolist(), "random_ratio_per_seed": rand.tolist(),
                    "quilt_r_no_speech": r_ns.to_dict(), "quilt_r_with_speech": r_main.to_dict(),
                    "quilt_r_difference_with_minus_without_speech": r_main.value - r_ns.value})
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].scatter(np.zeros(len(ratio)), ratio, c="tab:red", label="no music, no speech")
    ax[0].scatter(np.ones(len(rand)), rand, c="tab:gray", label="random init")
    ax[0].axhline(1.5, color="r", ls="--", lw=1)
    ax[0].set_xticks([0, 1], ["trained", "random"])
    ax[0].set(ylabel="MS-unit ratio", title="paper 1.77x")
    for name, curves, colr in (("without music", q_main, "tab:red"), ("without music and speech", q_ns, "tab:blue")):
        y = np.array([[c["original"]] + [c[k] for k in list(c)[1:]] for c in curves])
        ax[1].plot(["orig", "50", "100", "200", "400", "800", "1600"], y.mean(0), "o-", color=colr, label=name)
    ax[1].set(xlabel="segment (ms)", ylabel="normalised MS response")
    ax[1].legend(fontsize=8)
    run.log_figure(fig, "no_speech_ratio_and_quilts.png")
    zero = Estimate.over_seeds(np.zeros(len(seeds)))
    return cond.earned(run, {
        "main": Evidence({"ratio": Estimate.over_seeds(ratio), "gain_vs_random": Estimate.over_seeds(ratio - rand)}),
        "random_init": Evidence({"ratio": Estimate.over_seeds(rand), "gain_vs_random": zero}),
    }, "without_music_and_speech")
