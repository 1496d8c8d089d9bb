"""The committed claim ledger (docs/claims.md) matches the specs, and every spec is well formed."""
from harness.ledger import LEDGER_PATH, render
from harness.registry import discover


def test_every_claim_declares_the_essentials():
    specs = discover()
    assert len(specs) >= 20
    for s in specs.values():
        assert s.id.startswith(s.paper.key + "."), s.id
        assert s.finding and s.statistic and s.unit
        assert "FAIL" in s.controls.values(), f"{s.id}: needs a negative control"
        for name, t in s.tiers.items():
            if t.expect != "PASS":
                assert len(t.reason) > 20, f"{s.id} at {name}: a declared non-replication needs its reason"


def test_ledger_is_in_sync_with_the_specs():
    assert LEDGER_PATH.read_text() == render(), "run: python -m harness.ledger --write"
