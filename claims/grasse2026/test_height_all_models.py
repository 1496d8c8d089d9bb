"""grasse2026.height.all_models: every model and condition represents pitch height (RSA)."""
import pytest

from analysis.stats import Estimate
from claims.grasse2026._conditions import (ARCHS, CONDITIONS, SSL_COMPETENCE, TRANSCRIPTION_COMPETENCE, all_runs,
                                           earned, height_estimate, reference, results_by_condition)
from claims.grasse2026._spec import tiers
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
    tiers=tiers(ci_expect="INCONCLUSIVE",
                ci_reason="measured at ci on 2026-12-06 (2 seeds, 200 updates): the transcription models did not learn their task — held-out frame F1 0.295-0.299 against the note prior's 0.303-0.304 (gain -0.009 to -0.005, threshold 0.10) and note F1 0.07-0.12 against the prior's 0.16-0.18, for both architectures: INCONCLUSIVE (undertrained); the wav2vec2 SSL models did not learn their task either: held-out masked-frame top-1 0.049 / 0.055 against 0.057 / 0.074 at initialisation (chance 0.048; gain -0.020 to -0.008, threshold 0.10). Before the gate every model represents height: best-layer height rho "
                          "0.431-0.737 (wav2vec2) and 0.387-0.456 (data2vec), p = 0.001, PASS"),
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
