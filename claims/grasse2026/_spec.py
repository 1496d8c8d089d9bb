"""Tier settings shared by the Grasse & Tata 2026 claims (our operationalisation; thresholds ours)."""
from harness import Tier
from claims.grasse2026._conditions import CI_SETTINGS, LAB_DATA, LAB_REASON, LAB_SETTINGS, PAPER_SETTINGS

PAPER_DATA = ("checkpoints", "speech_audio", "music_audio", "transcription")


def tiers(ci_expect: str = "PASS", ci_reason: str = "", paper_expect: str = "PASS", paper_reason: str = "",
          ci_controls=None, ci_controls_reason: str = "", ci_variants=None) -> dict:
    return {
        "ci": Tier(settings=CI_SETTINGS, expect=ci_expect, reason=ci_reason, controls=ci_controls or {},
                   controls_reason=ci_controls_reason, variants=ci_variants or {}),
        "paper": Tier(settings=PAPER_SETTINGS, expect=paper_expect, reason=paper_reason, data=PAPER_DATA),
        "lab": Tier(settings=LAB_SETTINGS, expect="PASS", reason=LAB_REASON, data=LAB_DATA),
    }
