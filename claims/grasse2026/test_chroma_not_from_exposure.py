"""grasse2026.chroma.not_from_exposure: self-supervised exposure to music does not give chroma equivalence."""
import pytest

from claims.grasse2026._conditions import (ARCHS, SSL_COMPETENCE, all_runs, detected_layers, earned, reference,
                                           results_by_condition)
from claims.grasse2026._spec import CI_MEASURED, CI_SSL_COMPETENT, tiers
from claims.papers import GRASSE2026
from harness import Claim, Criterion, Evidence, claim

SPEC = Claim(
    id="grasse2026.chroma.not_from_exposure",
    paper=GRASSE2026,
    finding="Mere exposure to music through self-supervised learning is not sufficient [for chroma equivalence].",
    reported=None,
    statistic="number of layers of the SSL-trained model with partial chroma ρ (| height, acoustic) > 0.1 and "
              "BH-FDR q < 0.05 (null: pitch classes permuted within octave); interval = min/max over seeds",
    unit="seeds",
    criteria=[Criterion("chroma_layers", "<", 1.0, source="ours (grasse2026.md proposal: no layer)")],
    controls={"oracle_pitch_class": "FAIL"},
    control_notes={"oracle_pitch_class": "negative control: a representation that has chroma must fail "
                                         "'no chroma' (pitch-class code + noise)"},
    competence=(SSL_COMPETENCE,),
    tiers=tiers(ci_reason=CI_MEASURED + CI_SSL_COMPETENT + "; no layer of theirs shows chroma (0 layers in every seed of both architectures): PASS"),
    notes="Abstract only: design and thresholds are ours. The transcription model's count is logged for comparison.",
)


@pytest.mark.parametrize("arch", ARCHS)
@claim(SPEC)
def test_chroma_not_from_exposure(run, arch):
    runs = all_runs(run, arch)
    by = results_by_condition(runs)
    ref = reference(run.settings, run.cache)
    run.log_values({f"{c}.chroma_layers": list(detected_layers(by[c]).samples) for c in by})
    result = {"main": Evidence({"chroma_layers": detected_layers(by["ssl"])}),
            "oracle_pitch_class": Evidence({"chroma_layers": detected_layers([ref["oracle_pitch_class"]])})}
    return earned(run, runs, arch, result, ("ssl",))
