"""kim2024.ablation.ms_units_matter: zeroing MS units hurts non-music detection more than other unit groups."""
import numpy as np
import torch

from analysis.ablation import ablation_groups, ablation_map
from analysis.stats import Estimate
from claims.kim2024._conditions import (CI_MEASURED, COMPETENCE, EPOCHS_NOTE, MS_UNIT_REFERENCES, NOTEBOOK,
                                        SELECTION_NOTE, KimConditions, notebook_references, tier_settings, lab_tier)
from claims.papers import KIM2024
from harness import Claim, Criterion, Evidence, Reference, Tier, claim

GROUPS = ("top_msi", "bottom_msi", "middle_msi", "top_l1")

SPEC = Claim(
    id="kim2024.ablation.ms_units_matter",
    paper=KIM2024,
    finding="Zeroing the 32 top-MSI units lowers the mAP over non-music classes more than zeroing the bottom-MSI, "
            "middle-MSI (43.75-56.25 %) or top-L1-norm units, in every network.",
    reported="notebook run: baseline 0.0802, top-MSI 0.0670, L1-top 0.0697, middle 0.0781, bottom 0.0764; "
             "per-class effect sizes 0.917 (vs others) and 0.719 (vs L1)",
    statistic="non-music-class test mAP drop when zeroing the top-12.5 % MSI units, minus the drop when zeroing "
              "each comparison group of the same size (true top ranks; L1 = conv4 filter-weight L1 norm)",
    unit="seeds",
    criteria=[
        Criterion("vs_bottom_msi", ">", 0.0, source="paper: in every network", description="every seed"),
        Criterion("vs_middle_msi", ">", 0.0, source="paper: in every network", description="every seed"),
        Criterion("vs_top_l1", ">", 0.0, source="paper: in every network", description="every seed"),
    ],
    controls={"middle_as_target": "FAIL", "random_init": "FAIL"},
    control_notes={"middle_as_target": "the middle-MSI group in the MS units' place (its drop minus the others', "
                                       "with the top-MSI group standing in as the middle comparison)",
                   "random_init": "untrained networks (their non-music mAP is near chance; drops ~0)"},
    competence=(COMPETENCE["without_music"],),
    tiers={
        "ci": Tier(settings=tier_settings("ci"), expect="PASS",
                   controls={"random_init": ("FAIL", "INCONCLUSIVE")},
                   controls_reason=f"{CI_MEASURED}: untrained networks sit at chance non-music mAP, so their ablation "
                                   "differences are noise that straddles 0 (INCONCLUSIVE); they must never PASS, and "
                                   "middle_as_target must FAIL strictly"),
        "paper": Tier(settings=tier_settings("paper"), expect="PASS", data=("audioset_audio", "audioset_meta")),
        "lab": lab_tier(),
    },
    references=notebook_references(
        *MS_UNIT_REFERENCES,
        Reference("ablation.map.none", 0.0802, NOTEBOOK,
                  "test mAP over all 527 classes, nothing ablated (one network)"),
        Reference("ablation.map.bottom_msi", 0.0764, NOTEBOOK, "the same with the 32 least-selective units zeroed"),
        Reference("ablation.map.middle_msi", 0.0781, NOTEBOOK, "the same with the middle-MSI 32 units zeroed"),
        Reference("ablation.map.top_msi", 0.0670, NOTEBOOK,
                  "the same with the most-selective slice zeroed (ranks 2-33: the notebook skips rank 1)"),
        Reference("ablation.map.top_l1", 0.0697, NOTEBOOK, "the same with the 32 top-L1-norm units zeroed"),
    ),
    notes=SELECTION_NOTE + "the ablation is scored on the same test split, as in the paper and the notebook (the "
          "selection reads only which test clips are music, the score the non-music class labels). Deliberate "
          "differences from the notebook: the top-MSI group is the true top 32 ranks, the most selective unit "
          "included, where the notebook's ablation slice skips the single most selective unit (ranks 2-33); and the "
          "mAP is over the non-music classes, as the paper's text says, where the notebook's single run "
          "(references ablation.map.*) averages over all 527 classes, so its values are not on this statistic's "
          "scale: its drops order top-MSI 0.0132 > top-L1 0.0105 > bottom 0.0038 > middle 0.0021. " + EPOCHS_NOTE,
)


def drops(cond: KimConditions, condition: str) -> list[dict]:
    c = cond.clips()
    test = np.flatnonzero(c.split == "test")
    x = cond.logmel()[test]
    y = c.labels[test]
    nonmusic_classes = ~np.asarray(c.music_classes)
    out = []
    for seed in cond.seeds(condition):
        model, _ = cond.model(condition, seed)
        model = model.to(cond.device)
        sel = cond.selectivity(condition, seed)
        conv4 = [m for m in model.features if isinstance(m, torch.nn.Conv2d)][-1]
        l1 = conv4.weight.detach().abs().sum(dim=(1, 2, 3)).cpu().numpy()
        groups = ablation_groups(sel["msi"], l1)

        def score_fn(units):
            with model.ablated(units):
                return model.features_and_logits(x, device=cond.device)[1]

        m = ablation_map(score_fn, y, nonmusic_classes, groups)
        out.append({"map": m, "drop": {g: m["none"] - m[g] for g in GROUPS}})
    return out


def evidence(rows: list, target: str = "top_msi") -> Evidence:
    d = {g: np.array([r["drop"][g] for r in rows]) for g in GROUPS}
    middle = "top_msi" if target == "middle_msi" else "middle_msi"
    return Evidence({"vs_bottom_msi": Estimate.over_seeds(d[target] - d["bottom_msi"]),
                     "vs_middle_msi": Estimate.over_seeds(d[target] - d[middle]),
                     "vs_top_l1": Estimate.over_seeds(d[target] - d["top_l1"])},
                    values={"map_per_seed": [r["map"] for r in rows]})


@claim(SPEC)
def test_ablation_ms_units_matter(run):
    import matplotlib.pyplot as plt

    cond = KimConditions.from_run(run)
    rows, rand = drops(cond, "without_music"), drops(cond, "random_init")
    run.log_values({"map_per_seed": [r["map"] for r in rows], "random_map_per_seed": [r["map"] for r in rand]})
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, g in enumerate(GROUPS):
        v = [r["drop"][g] for r in rows]
        ax.bar(i, np.mean(v), color="tab:red" if g == "top_msi" else "tab:gray")
        ax.scatter(np.full(len(v), i), v, c="k", s=10, zorder=3)
    ax.set_xticks(range(len(GROUPS)), [g.replace("_", " ") for g in GROUPS])
    ax.set(ylabel="non-music mAP drop", title="paper: top-MSI 0.013, L1 0.011, middle 0.002, bottom 0.004")
    run.log_figure(fig, "ablation_map_drop.png")
    return cond.earned(run, {"main": evidence(rows), "middle_as_target": evidence(rows, "middle_msi"),
                             "random_init": evidence(rand)})
