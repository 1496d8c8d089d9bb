"""grasse2026.height.varies: the degree of pitch-height representation differs across models and conditions."""
import numpy as np
import pytest

from analysis.rsa import bootstrap_over_stimuli, resampled_rhos
from claims.grasse2026._conditions import (ARCHS, CONDITIONS, SSL_COMPETENCE, TRANSCRIPTION_COMPETENCE, all_runs,
                                           earned, reference, results_by_condition, stack_rdms)
from claims.grasse2026._spec import CI_MEASURED, CI_SSL_COMPETENT, CI_TRANSCRIPTION_COMPETENT, tiers
from claims.papers import GRASSE2026
from harness import Claim, Criterion, Evidence, claim

SPEC = Claim(
    id="grasse2026.height.varies",
    paper=GRASSE2026,
    finding="All models show varying degrees of pitch-height representation.",
    reported=None,
    statistic="spread of best-layer height ρ across conditions: (condition with the highest mean over seeds) "
              "minus (the lowest), both chosen on the full stimulus set; percentile bootstrap over the 48 pitches "
              "with the best layer re-selected in each resample",
    unit="stimuli",
    criteria=[Criterion("height_spread", ">", 0.0, source="ours: interval excludes 0")],
    controls={"identical_models": "FAIL"},
    control_notes={"identical_models": "the untouched model compared with itself (spread 0 by construction)"},
    competence=(TRANSCRIPTION_COMPETENCE, SSL_COMPETENCE),
    tiers=tiers(ci_reason=CI_MEASURED + CI_TRANSCRIPTION_COMPETENT + "; " + CI_SSL_COMPETENT + ". The conditions differ in height: spread of best-layer height rho 0.257 [0.141, 0.371] (wav2vec2) and 0.296 [0.192, 0.406] (data2vec) (bootstrap over the 48 pitches), PASS"),
)


def _spread(groups: dict, midi, n_boot: int):
    """groups: name -> [S, L, k, k]; contrast of the best and worst group on the full set, bootstrapped."""
    names = list(groups)
    stack = np.concatenate([g.reshape(-1, *g.shape[-2:]) for g in groups.values()])
    shapes = [g.shape[:2] for g in groups.values()]

    def per_group(idx):
        rho = resampled_rhos(stack, midi, idx, "height")
        out, i = [], 0
        for s, l in shapes:
            out.append(rho[i:i + s * l].reshape(s, l).max(1).mean())
            i += s * l
        return np.array(out)

    full = per_group(np.arange(len(midi)))
    hi, lo = int(np.argmax(full)), int(np.argmin(full))
    est = bootstrap_over_stimuli(lambda idx: (lambda v: v[hi] - v[lo])(per_group(idx)), len(midi), n_boot, seed=4,
                                 method=f"percentile bootstrap over stimuli ({n_boot}); {names[hi]} - {names[lo]}")
    return est, dict(zip(names, map(float, full)))


@pytest.mark.parametrize("arch", ARCHS)
@claim(SPEC)
def test_height_varies(run, arch):
    runs = all_runs(run, arch)
    by = results_by_condition(runs)
    ref = reference(run.settings, run.cache)
    n_boot = int(run.settings["n_boot"])
    est, per = _spread({c: stack_rdms(by[c]) for c in CONDITIONS}, ref["midi"], n_boot)
    run.log_values({f"{arch}.best_layer_height_rho": per})
    untouched = stack_rdms(by["untouched"])
    ctrl, _ = _spread({"untouched": untouched, "untouched_again": untouched.copy()}, ref["midi"], n_boot)
    result = {"main": Evidence({"height_spread": est}), "identical_models": Evidence({"height_spread": ctrl})}
    return earned(run, runs, arch, result, ("transcription", "ssl"))
