"""The claims harness: specs, verdicts, cache, MLflow tracking, the pytest plugin and reports.

Claim authors need only::

    from harness import Claim, Criterion, Tier, Evidence, claim
"""
from analysis.stats import Estimate
from harness.errors import UserError
from harness.registry import REGISTRY, claim, discover
from harness.spec import FAIL, INCONCLUSIVE, PASS, Claim, Competence, Criterion, Evidence, Paper, Reference, Tier

__all__ = ["Claim", "Competence", "Criterion", "Tier", "Evidence", "Paper", "Reference", "Estimate", "claim",
           "discover", "REGISTRY", "UserError", "PASS", "FAIL", "INCONCLUSIVE"]
