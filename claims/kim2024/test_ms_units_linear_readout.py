"""kim2024.ms_units.linear_readout: the 12.5 % MS units alone classify music better than the next MSI bands."""
import numpy as np

from analysis.linear_readout import readout_ap
from analysis.selectivity import index_bands
from analysis.stats import Estimate
from claims.kim2024._conditions import (CI_MEASURED, COMPETENCE, EPOCHS_NOTE, MS_UNIT_REFERENCES, NOTEBOOK,
                                        SELECTION_NOTE, KimConditions, notebook_references, tier_settings, lab_tier)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Reference, Tier, claim

SPEC = Claim(
    id="kim2024.ms_units.linear_readout",
    paper=KIM2024,
    finding="The 32 MS units alone give a linear music classifier with AP 0.832 +- 0.007, higher than each of "
            "the next three 32-unit MSI bands (12.5-25 %, 25-37.5 %, 37.5-50 %) in every network.",
    reported="AP 0.832 +- 0.007 for the MS units; higher than each next band in every network",
    statistic="AP difference between a least-squares readout of the top-12.5 % MSI units and one of each next "
              "12.5 % band (MSI from the test split; readout fitted on the training split, scored on the "
              "validation split, which the selection never saw)",
    unit="seeds",
    criteria=[
        Criterion("ms_minus_band2", ">", 0.0, source="paper: higher in every network", description="every seed"),
        Criterion("ms_minus_band3", ">", 0.0, source="paper: higher in every network", description="every seed"),
        Criterion("ms_minus_band4", ">", 0.0, source="paper: higher in every network", description="every seed"),
    ],
    controls={"reversed_bands": "FAIL"},
    control_notes={"reversed_bands": "the 37.5-50 % band in place of the MS units (must not beat the bands above it)"},
    notes="Untrained networks are reported in values (random_ap_per_seed_band), not judged (no paper number). "
          "Measured at ci: their top band also beats the next bands (by 0.097 / 0.091 / 0.020 on average, against "
          "0.116 / 0.198 / 0.064 for trained networks), so at ci part of this readout advantage is not specific "
          "to training. " + SELECTION_NOTE + "the readout is fitted on the training split and scored on the "
          "validation split, which neither the selection nor the fit saw: a readout scored on the test split would "
          "be scored on the clips its units were chosen on, so the project keeps this cleaner split. The notebook's "
          "band APs (references readout.ap.band1-4, about 0.82 / 0.79 / 0.66 / 0.41) are one network's. "
          + EPOCHS_NOTE,
    competence=(COMPETENCE["without_music"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="INCONCLUSIVE",
                   reason=f"{CI_MEASURED}, 1 torch thread per worker as in make test: the MS band's readout AP is "
                          "0.635 / 0.689 / 0.508 against 0.576 / 0.501 / 0.563 for the 37.5-50 % band, so in seed 2 "
                          "the fourth band beats the MS units and ms_minus_band4 is 0.064 [-0.055, 0.188] over 3 seeds "
                          "(bands 2 and 3: 0.116 [0.023, 0.208] and 0.198 [0.122, 0.300], PASS). A ci network has 64 "
                          "units, so a band is 8 units and its AP moves by about 0.1 between seeds; the verdict is "
                          "fragile (an earlier ci run of this recipe with 2 torch threads measured PASS)",
                   controls={"reversed_bands": ("FAIL", "INCONCLUSIVE")},
                   controls_reason=f"{CI_MEASURED}: the 37.5-50 % band beats bands 2 and 3 but not the MS band "
                                   "(-0.064 [-0.188, 0.055]), so the reversed readout is INCONCLUSIVE, like the main "
                                   "result; it must still never PASS"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS", data=("audioset_audio", "audioset_meta")),
        "lab": lab_tier(),
    },
    references=notebook_references(
        *MS_UNIT_REFERENCES,
        Reference("readout.ap.band1", 0.82, NOTEBOOK, "music AP of a linear readout of the 32-unit MSI block 0-12.5 % "
                  "(the MS units; about 0.82; the paper: 0.832 +- 0.007 over 5 networks)"),
        Reference("readout.ap.band2", 0.79, NOTEBOOK, "the same for the block 12.5-25 % (about 0.79)"),
        Reference("readout.ap.band3", 0.66, NOTEBOOK, "the same for the block 25-37.5 % (about 0.66)"),
        Reference("readout.ap.band4", 0.41, NOTEBOOK, "the same for the block 37.5-50 % (about 0.41)"),
    ),
)


def band_aps(cond: KimConditions, condition: str) -> np.ndarray:
    """AP per seed (rows) and band (columns 0..3)."""
    va = cond.split("val")
    out = []
    for seed in cond.seeds(condition):
        sel = cond.selectivity(condition, seed)
        fv = cond.features(condition, seed)["features"][va.idx]
        out.append([readout_ap(sel["train"][:, b], sel["train_music"], fv[:, b], va.is_music)
                    for b in index_bands(sel["msi"], n_bands=4)])
    return np.array(out)


def evidence(aps: np.ndarray, top: int = 0) -> Evidence:
    others = [b for b in range(4) if b != top]
    return Evidence({f"ms_minus_band{k + 2}": Estimate.over_seeds(aps[:, top] - aps[:, b])
                     for k, b in enumerate(others)}, values={"ap_per_seed_band": aps.tolist()})


@claim(SPEC)
def test_ms_units_linear_readout(run):
    import matplotlib.pyplot as plt

    cond = KimConditions.from_run(run)
    aps, rand = band_aps(cond, "without_music"), band_aps(cond, "random_init")
    run.log_values({"ap_per_seed_band": aps.tolist(), "random_ap_per_seed_band": rand.tolist()})
    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = ["0-12.5 %", "12.5-25 %", "25-37.5 %", "37.5-50 %"]
    for row in aps:
        ax.plot(labels, row, "o-", color="tab:red", alpha=0.7)
    for row in rand:
        ax.plot(labels, row, "o--", color="tab:gray", alpha=0.7)
    ax.set(xlabel="MSI band", ylabel="music AP (validation split)", title="red: trained, grey: random (paper MS 0.832)")
    run.log_figure(fig, "band_readout_ap.png")
    return cond.earned(run, {"main": evidence(aps), "reversed_bands": evidence(aps, top=3)})
