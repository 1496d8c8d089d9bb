"""Scorecard: the representation claims of the three papers, on every ``--model`` (and its control).

Run with ``pytest -m claims --model SPEC [--model SPEC ...]``. Without
``--model`` every test here is skipped with a one-line reason. A scored cell passes whatever its
verdict (the verdict is data); "not applicable" is a skip; see ``harness/scorecard.py``.
"""
import time

import pytest

from claims.scorecard import _probes as P
from harness.scorecard import model_spec, record_cell, scored_model  # noqa: F401  (fixtures)

pytestmark = pytest.mark.claims


def _both(fn, sm):
    t0 = time.perf_counter()
    return fn(sm, False), fn(sm, True), time.perf_counter() - t0


@pytest.mark.parametrize("claim_id", ["pitch.height_rsa", "pitch.chroma_rsa"])
def test_pitch_rsa(scored_model, record_cell, claim_id):
    """Grasse et al.: pitch height / chroma (beyond height and log-mel acoustics) in the best layer's RDM."""
    main, ctrl, s = _both(P.pitch_rsa, scored_model)
    record_cell(scored_model, main[claim_id], ctrl[claim_id], s)


@pytest.mark.parametrize("claim_id", ["ms_units.natsound165_ratio", "ms_units.natsound165_categories"])
def test_ms_units_natsound165(scored_model, record_cell, request, claim_id):
    """Kim et al.: units most music-selective on the embedded corpus prefer music among the 165 sounds
    (the ratio), and both music categories out-rank every non-music category (the margin)."""
    from harness.plugin import _STATE

    data = request.config.stash[_STATE]["data"]
    root = data.get("natsound165")
    if root is None:
        record_cell(scored_model, P.na(claim_id, f"165 natural sounds absent: {data.missing_reason('natsound165')}"))
    main, ctrl, s = _both(lambda sm, c: P.natsound_cells(sm, root, c), scored_model)
    record_cell(scored_model, main[claim_id], ctrl[claim_id], s)


def test_quilts_segment_size(scored_model, record_cell):
    """Kim et al.: the MS units' response to music quilts rises with segment size."""
    main, ctrl, s = _both(P.quilt_effect, scored_model)
    record_cell(scored_model, main, ctrl, s)


def test_ssm_chord_changes(scored_model, record_cell):
    """Kong et al.: chord changes from layer-wise self-similarity (time-resolved layers only)."""
    main, ctrl, s = _both(P.ssm_chord_changes, scored_model)
    record_cell(scored_model, main, ctrl if main.status == "scored" else None, s)


def test_attention_onsets(scored_model, record_cell):
    """Kong et al.: onsets from the attention each frame receives (models exposing attention only)."""
    main, ctrl, s = _both(P.attention_onsets, scored_model)
    record_cell(scored_model, main, ctrl if main.status == "scored" else None, s)
