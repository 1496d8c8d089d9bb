"""The bench's claim rows count verdicts from the report, so a bench table shows what the timed run concluded."""
from bench.rows import verdict_tally


def test_the_verdict_tally_counts_the_claim_tests_of_a_report_by_verdict():
    rep = {"claims": [{"verdict": "PASS"}, {"verdict": "FAIL"}, {"verdict": "PASS"}, {"verdict": "INCONCLUSIVE"}]}
    assert verdict_tally(rep) == "FAIL 1, INCONCLUSIVE 1, PASS 2"


def test_no_report_gives_an_empty_tally():
    assert verdict_tally(None) == "" and verdict_tally({"claims": []}) == ""
