"""KimConditions scheduling: parallel workers split the trainings instead of queueing."""
from claims.kim2024._conditions import KimConditions


class FakeCache:
    def __init__(self, busy):
        self._busy = set(busy)

    def busy(self, namespace, config, *, version):
        return (config["condition"], config["seed"]) in self._busy


def conditions(busy):
    cond = KimConditions(dict(seeds=3, seeds_other=2), FakeCache(busy), "cpu")
    built = []
    cond.model_config = lambda c, s: {"condition": c, "seed": s}
    cond.model = lambda c, s: (built.append((c, s)), cond.cache._busy.discard((c, s)))
    return cond, built


def test_prefetch_builds_what_nobody_else_is_building_first():
    cond, built = conditions(busy={("without_music", 0)})
    order = cond.prefetch(["without_music", "random_init", "with_music"])
    assert order == [("without_music", 1), ("without_music", 2), ("with_music", 0), ("with_music", 1),
                     ("without_music", 0)]
    assert built == order  # random init is never trained


def test_prefetch_waits_for_the_first_when_everything_is_busy():
    cond, built = conditions(busy={("without_music", 0), ("without_music", 1), ("without_music", 2)})
    assert cond.prefetch(["without_music"]) == [("without_music", 0), ("without_music", 1), ("without_music", 2)]


def test_every_claim_run_records_its_corpus_manifest_and_audit(monkeypatch):
    """from_run logs the corpus manifest (audit included, long id lists left out) into the run's values."""
    from types import SimpleNamespace

    class Run(SimpleNamespace):
        def log_values(self, v):
            self.values.update(v)

    manifest = {"source": "stimuli.corpus.make_corpus", "hash": "abc", "audit": {"linear_ap": 0.7},
                "excluded_ids": [f"id{i}" for i in range(500)], "counts": {"music": 3}}
    run = Run(settings=dict(seeds=1), cache=FakeCache(()), device="cpu", data=None, session=None, values={})
    monkeypatch.setattr(KimConditions, "clips", lambda self: SimpleNamespace(manifest=manifest))
    KimConditions.from_run(run, needs=())
    assert run.values["corpus"] == {"source": "stimuli.corpus.make_corpus", "hash": "abc",
                                    "audit": {"linear_ap": 0.7}, "counts": {"music": 3}}


def test_untrained_and_shuffled_label_networks_are_marked_incompetent(tmp_path):
    """The competence check can fail: an untrained network and one trained on shuffled targets score
    near chance on the held-out task and miss the ci threshold that the claims' networks must meet."""
    from analysis.stats import Estimate
    from claims.kim2024._conditions import COMPETENCE, tier_settings
    from harness.cache import Cache

    s = tier_settings("ci", clips=1200, epochs=2, seeds=1, seeds_other=1, shuffled_clips=96, shuffled_epochs=2)
    cond = KimConditions(s, Cache(tmp_path), "cpu")
    gate = COMPETENCE["without_music"]
    d = cond.test_map("random_init", 0, task="without_music")
    assert d["n_test"] > 10 and 0 < d["chance_map"] < 0.5 and d["map"] == d["random_init_map"]
    assert not gate.judge(Estimate.over_seeds([d["map"]]), "ci")["met"]
    shuffled = cond.test_map("shuffled_labels", 0, task="with_music")
    assert not COMPETENCE["with_music"].judge(Estimate.over_seeds([shuffled["map"]]), "ci")["met"]
    assert abs(shuffled["map"] - shuffled["chance_map"]) < 0.15
    # cached, keyed by the network and the task
    assert cond.test_map("random_init", 0, task="without_music") == d and cond.cache.hits >= 1
