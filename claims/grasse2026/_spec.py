"""Tier settings shared by the Grasse & Tata 2026 claims (our operationalisation; thresholds ours)."""
from harness import Tier
from claims.grasse2026._conditions import CI_SETTINGS, LAB_DATA, LAB_REASON, LAB_SETTINGS, PAPER_SETTINGS

PAPER_DATA = ("checkpoints", "speech_audio", "music_audio", "transcription")

#: The ci run the claims' ci reasons were declared from, and its models' competence (one measurement, quoted by
#: every claim that needs those models).
CI_MEASURED = ("measured at ci on 2026-12-07 (2 seeds, 600 updates of 16 clips for wav2vec2 and 8 for data2vec, "
               "notes-and-chords transcription curriculum): ")
CI_TRANSCRIPTION_COMPETENT = (
    "the transcription models learned their task — held-out frame F1 0.247 / 0.296 (wav2vec2) and 0.204 / 0.250 "
    "(data2vec) against the note prior's 0.084 / 0.091 (gain 0.12-0.21, threshold 0.10; note F1 0.11-0.19 against "
    "0.035-0.047)")
CI_SSL_COMPETENT = (
    "the SSL models learned theirs — held-out masked-frame top-1 (64 clips x 4 crops) 0.217 / 0.257 against 0.086 / "
    "0.087 at initialisation (wav2vec2, gain 0.13 / 0.17) and 0.213 / 0.242 against 0.073 / 0.084 (data2vec, gain "
    "0.14 / 0.16), threshold 0.10, chance 0.048")


def tiers(ci_expect: str = "PASS", ci_reason: str = "", paper_expect: str = "PASS", paper_reason: str = "",
          ci_controls=None, ci_controls_reason: str = "", ci_variants=None) -> dict:
    return {
        "ci": Tier(settings=CI_SETTINGS, expect=ci_expect, reason=ci_reason, controls=ci_controls or {},
                   controls_reason=ci_controls_reason, variants=ci_variants or {}),
        "paper": Tier(settings=PAPER_SETTINGS, expect=paper_expect, reason=paper_reason, data=PAPER_DATA),
        "lab": Tier(settings=LAB_SETTINGS, expect="PASS", reason=LAB_REASON, data=LAB_DATA),
    }
