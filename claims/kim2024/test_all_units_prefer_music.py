"""kim2024.all_units_prefer_music: averaged over all pooled units, music drives the network harder."""
import numpy as np

from analysis.selectivity import mean_response_per_clip
from analysis.stats import ranksum_cles
from claims.kim2024._conditions import (CI_MEASURED, COMPETENCE, EPOCHS_NOTE, KimConditions, notebook_references,
                                        tier_settings, worst_case_over_seeds, lab_tier)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Tier, claim

SPEC = Claim(
    id="kim2024.all_units_prefer_music",
    paper=KIM2024,
    finding="The mean response over all units is larger for music than for non-music "
            "(one-tailed Wilcoxon rank-sum, p = 4.9e-276, effect size 0.689).",
    reported="common-language effect size 0.689 (U = 30,340,954, p = 4.9e-276; 3,999 music vs 11,010 non-music)",
    statistic="common-language effect size U/(n1 n2) of the clip-wise mean response over all pooled units, "
              "music vs non-music clips of the held-out test split (one-sided rank-sum)",
    unit="clips (DeLong interval per seed; worst case over seeds)",
    criteria=[Criterion("cles", ">", 0.5, p_max=0.01, source="ours (paper 0.689, p = 4.9e-276)",
                        description="interval above 0.5 and one-sided p <= 0.01 in every seed")],
    controls={"random_init": "FAIL"},
    control_notes={"random_init": "untrained networks of the same seeds (ours: no preference expected)"},
    competence=(COMPETENCE["without_music"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="INCONCLUSIVE",
                   reason=f"{CI_MEASURED}: the mean response over all units is not higher for music (CLES 0.28, 0.44, 0.36 "
                          "per seed, interval [0.20, 0.53]: INCONCLUSIVE), so the whole-network music preference does "
                          "not replicate; the corpus's non-music (broadband noise beds, machinery, rain) drives the "
                          "average unit harder than its synthetic music"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS", data=("audioset_audio", "audioset_meta")),
        "lab": lab_tier(),
    },
    notes="No units are selected in this claim. " + EPOCHS_NOTE,
    references=notebook_references(),
)


def cles_for(cond: KimConditions, condition: str):
    out = []
    for seed in cond.seeds(condition):
        sel = cond.selectivity(condition, seed)
        m = mean_response_per_clip(sel["test"])
        music = sel["test_music"]
        out.append(ranksum_cles(m[music], m[~music], alternative="greater"))
    return out


@claim(SPEC)
def test_all_units_prefer_music(run):
    import matplotlib.pyplot as plt

    cond = KimConditions.from_run(run)
    main, rand = cles_for(cond, "without_music"), cles_for(cond, "random_init")
    run.log_values({"cles_per_seed": [e.to_dict() for e in main], "random_cles_per_seed": [e.to_dict() for e in rand]})
    sel = cond.selectivity("without_music", cond.seeds("without_music")[0])
    m = mean_response_per_clip(sel["test"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(m.min(), m.max(), 30)
    ax.hist(m[~sel["test_music"]], bins=bins, alpha=0.6, density=True, label="non-music")
    ax.hist(m[sel["test_music"]], bins=bins, alpha=0.6, density=True, label="music")
    ax.set(xlabel="mean response over all units", ylabel="density",
           title=f"seed 0: CLES {main[0].value:.3f} (paper 0.689)")
    ax.legend()
    run.log_figure(fig, "mean_response_music_vs_nonmusic.png")
    return cond.earned(run, {"main": Evidence({"cles": worst_case_over_seeds(main)}),
                             "random_init": Evidence({"cles": worst_case_over_seeds(rand)})})
