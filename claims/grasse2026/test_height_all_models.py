"""grasse2026.height.all_models: every model and condition represents pitch height (RSA)."""
import pytest

from analysis.stats import Estimate
from claims.grasse2026._conditions import (ARCHS, CONDITIONS, SSL_COMPETENCE, TRANSCRIPTION_COMPETENCE, all_runs,
                                           earned, height_estimate, reference, results_by_condition)
from claims.grasse2026._spec import CI_MEASURED, CI_SSL_COMPETENT, CI_TRANSCRIPTION_COMPETENT, tiers
from claims.papers import GRASSE2026
from harness import Claim, Criterion, Evidence, claim

SPEC = Claim(
    id="grasse2026.height.all_models",
    paper=GRASSE2026,
    finding="All models show varying degrees of pitch-height representation.",
    reported=None,
    statistic="for every condition (untouched, SSL, transcription) and seed: the largest Spearman ρ over layers "
              "between the layer's correlation-distance RDM (48 semitones, MIDI 36-83, activations averaged over "
              "time, exemplars and timbres) and the |Δ semitones| RDM; interval = min/max over conditions x seeds; "
              "p = the largest of their permutation p-values (pitch labels permuted)",
    unit="models (conditions x seeds)",
    criteria=[Criterion("height_rho", ">", 0.3, p_max=0.01, source="ours (grasse2026.md proposal)")],
    controls={"log_cqt": "PASS", "shuffled_labels": "FAIL"},
    control_notes={"log_cqt": "positive control: the time-averaged log-CQT spectrum of the same tones",
                   "shuffled_labels": "negative control: the log-CQT RDM with the pitch labels permuted"},
    competence=(TRANSCRIPTION_COMPETENCE, SSL_COMPETENCE),
    tiers=tiers(ci_reason=CI_MEASURED + CI_TRANSCRIPTION_COMPETENT + "; " + CI_SSL_COMPETENT + ". Every model represents height: best-layer height rho 0.783 [0.610, 0.909] (wav2vec2) and 0.806 [0.635, 0.946] (data2vec) over the untouched, SSL and transcription models, PASS"),
    notes="Abstract only: the RSA design and threshold are ours.",
)


def _point(res):
    b = res.best_height_layer
    return Estimate(value=float(res.height_rho[b]), low=float(res.height_rho[b]), high=float(res.height_rho[b]),
                    p=float(res.height_p[b]), n=1, method="single representation; permutation p", level=None)


@pytest.mark.parametrize("arch", ARCHS)
@claim(SPEC)
def test_height_all_models(run, arch):
    runs = all_runs(run, arch)
    by = results_by_condition(runs)
    ref = reference(run.settings, run.cache)
    flat = [r for c in CONDITIONS for r in by[c]]
    run.log_values({f"{arch}.{c}.height_rho": [float(r.height_rho.max()) for r in by[c]] for c in CONDITIONS})
    result = {"main": Evidence({"height_rho": height_estimate(flat)}),
            "log_cqt": Evidence({"height_rho": _point(ref["log_cqt"])}),
            "shuffled_labels": Evidence({"height_rho": _point(ref["shuffled_log_cqt"])})}
    return earned(run, runs, arch, result, ("transcription", "ssl"))
