"""Shared, cached networks and features for every Kim et al. (2024) claim.

Every claim of the paper analyses the same networks, so they are trained once per (condition,
seed) and stored in the harness cache; features of every stimulus set are extracted once per
network with a forward hook on the pooled layer and cached too. A claim builds
:class:`KimConditions` from its run and asks for what it needs; the first claim pays, the others
hit the cache.

Conditions (Kim et al.): ``without_music`` (the main networks), ``with_music``,
``random_init`` (untrained), ``shuffled_labels`` (memorisation) and
``without_music_and_speech``.

Tier settings live here (:data:`CI_SETTINGS`, :data:`PAPER_SETTINGS`, :data:`LAB_SETTINGS`) so that every
claim requests exactly the same networks; a claim may only change ``seeds``. The ``lab`` tier trains the
paper's network on FSD50K (open, AudioSet-ontology labels) instead of AudioSet (:func:`lab_tier`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from analysis.stats import Estimate
from harness.cache import array_manifest, content_key, entry_ref
from harness.errors import UserError
from harness.spec import Competence, Reference, Tier

log = logging.getLogger(__name__)

CONDITIONS = ("without_music", "with_music", "random_init", "shuffled_labels", "without_music_and_speech")
QUILT_SEG_MS = (50, 100, 200, 400, 800, 1600)
MODEL_VERSION = "kim2024-model-1"
FEATURE_VERSION = "kim2024-features-1"
COMPETENCE_VERSION = "kim2024-competence-1"
LOGMEL_VERSION = "logmel-1"
AMPLITUDE_VERSION = "logmel-amp-1"
NATSOUND_VERSION = "natsound-2"
ESC50_VERSION = "esc50-1"
QUILTS_VERSION = "quilts-1"

#: ci tier: the embedded corpus, 1/4-width CNN, 2-s clips. Seeds: main and random init use
#: ``seeds``; the other trained conditions use ``seeds_other`` (budget, declared in each spec).
#: How the ci declarations below were measured (cite it in every ``reason``; re-measure after changing
#: the corpus or the ci settings).
CI_MEASURED = ("measured at ci (3 seeds main/random, 2 other; 2,400-clip embedded corpus corpus-2 with the "
               "drum-kit and music-kind mix and the +-4-semitone music varispeed of 2026-11-29)")

CI_SETTINGS = dict(
    corpus="embedded", clips=2400, clip_s=2.0, corpus_seed=0, width=0.25, epochs=20,
    seeds=3, seeds_other=2,
    shuffled_clips=480, shuffled_epochs=40,      # memorisation: a subset it can memorise within budget
    quilt_clips=48, quilt_cut_s=1.6, quilt_ordering="kim2024",
)
#: paper tier: AudioSet from the user's disk, the full CNN, 10-s clips, 100 epochs, 5 seeds.
PAPER_SETTINGS = dict(
    corpus="audioset", clip_s=10.0, width=1.0, epochs=100,
    seeds=5, seeds_other=5, shuffled_clips=None, shuffled_epochs=200,
    quilt_clips=200, quilt_cut_s=8.0, quilt_ordering="kim2024",
)
#: lab tier: FSD50K (dev + eval, 51,197 clips; AudioSet-ontology labels) instead of AudioSet, the full CNN
#: (width 1), the notebook's 30 epochs and 5-s clips (FSD50K's clips are 0.3-30 s, most shorter than 10 s:
#: 5 s keeps most of each clip and halves the zero padding); 5 main seeds as the paper, 3 for the other
#: conditions; the memorisation network on 5,000 clips for 100 epochs. Sized for one GPU (harness.budget).
LAB_SETTINGS = dict(
    corpus="fsd50k", fsd50k_split="all", max_clips=None, clip_s=5.0, width=1.0, epochs=30,
    seeds=5, seeds_other=3, shuffled_clips=5000, shuffled_epochs=100,
    quilt_clips=200, quilt_cut_s=4.8, quilt_ordering="kim2024",
)
#: Data every Kim et al. claim reads at the lab tier.
LAB_DATA = ("fsd50k",)
#: A ci expectation on data the ci tier does not embed (ESC-50): what the paper's finding implies, not a
#: measurement, as :data:`LAB_REASON` is at the lab tier.
CI_UNMEASURED = ("not measured at ci: the data is not embedded, so the claim is skipped unless its option is given; "
                 "the expectation is the paper's finding it generalises; re-declare from the first ci run with the data")
#: The lab tier's expectation: what the paper claims, not a measurement.
LAB_REASON = ("not yet run on GPU: the expectation is the paper's finding (FSD50K in place of AudioSet); "
              "re-declare from the first lab run")


# ------------------------------------------------------------------------------------ competence
#: How the ci competence thresholds were set (re-measure after changing the corpus or ci settings).
CI_COMPETENCE_MEASURED = ("0.20, ours, from measurement on 2026-12-05 (corpus-2 with varispeed, 1/4 width, 20 "
                          "epochs): test mAP without_music 0.308 / 0.344 / 0.385 (seeds 0-2), with_music 0.357 / "
                          "0.383, without_music_and_speech 0.316 / 0.335; chance 0.059-0.077; random init "
                          "0.088-0.139. 0.20 is 2.6-3.4x chance and above every random-init network")
_MAP_METRIC = ("macro average precision over the classes the network was trained on (its training variant's "
               "labels), on the held-out test split (never used for training or epoch selection)")
_PAPER_MAP_SOURCE = ("paper: 0.20, ours = 3/4 of the validation mAP of Kim et al.'s notebook network (26.7 % on "
                     "AudioSet); their paper gives no per-condition test mAP")
_LAB_MAP_SOURCE = ("lab: 0.20, ours, set before measuring (no lab run exists): the paper tier's value, under half of "
                   "the FSD50K baselines' eval mAP (CRNN 0.417, VGG-like 0.434; Fonseca et al. 2022) and about 10x "
                   "the chance mAP of FSD50K's 200 classes; FSD50K's eval labels are exhaustive, its dev labels not")


def _map_competence(condition: str, ci: float, measured: str) -> Competence:
    return Competence(name=f"{condition}.test_map", condition=condition, metric=_MAP_METRIC, comparator=">=",
                      thresholds={"ci": ci, "paper": 0.20, "lab": 0.20},
                      source=f"ci: {measured}; {_PAPER_MAP_SOURCE}; {_LAB_MAP_SOURCE}",
                      baseline="chance (each class's prevalence in the test split; values.chance_map) and "
                               "random init (values.random_init_map)")


#: The trained conditions' competences, one per condition (every claim on that condition cites it).
COMPETENCE = {
    "without_music": _map_competence("without_music", 0.20, CI_COMPETENCE_MEASURED),
    "with_music": _map_competence("with_music", 0.20, CI_COMPETENCE_MEASURED),
    "without_music_and_speech": _map_competence("without_music_and_speech", 0.20, CI_COMPETENCE_MEASURED),
}


# ------------------------------------------------------------------------------------ references
#: Kim et al.'s code release, a single notebook. Its figures are references (shown beside the criteria, never
#: judged); this project's code follows the paper's text and, where it deliberately differs from the notebook,
#: each spec's notes say so. Values as issue 17 quotes the notebook's text (the notebook is not read here).
NOTEBOOK = "Kim et al. notebook kgspiano/Music (CC BY 4.0)"
PAPER_TEXT = "Kim et al. 2024, the paper's text"

#: The networks every Kim et al. claim analyses: the notebook's own training run and the two epoch counts.
NETWORK_REFERENCES = (
    Reference("network.val_map", 0.267, NOTEBOOK,
              "validation mAP of the notebook's network on AudioSet (26.7 %); the paper tier's competence "
              "threshold (test mAP >= 0.20) is 3/4 of it"),
    Reference("training.epochs.paper", 100, PAPER_TEXT,
              "epochs in the paper's text (200 for shuffled labels); the paper tier trains this many "
              "(PAPER_SETTINGS epochs = 100)"),
    Reference("training.epochs.notebook", 30, NOTEBOOK,
              "epochs the notebook trains; the paper tier follows the paper's 100 instead"),
    Reference("clips.definition", None, NOTEBOOK,
              "an analysis clip is music only if all its labels are music-related and non-music only if none is; "
              "mixed clips are left out (the paper's rule too; stimuli.dataset.ClipSet.is_music follows it)"),
    Reference("training.batch_size", 32, NOTEBOOK,
              "clips per step, with binary cross-entropy over the 527 classes, AdamW and a OneCycle schedule "
              "(paper and notebook alike; models.training.TrainConfig)"),
)
#: Claims that select music-selective units.
MS_UNIT_REFERENCES = (
    Reference("ms_units.count", 32, NOTEBOOK,
              "MS units = the top 32 of the 256 pooled units (12.5 %) by MSI, the per-unit Welch t of music "
              "against non-music responses"),
)

#: What every Kim et al. spec's notes say about the epochs (the paper tier's deliberate choice).
EPOCHS_NOTE = ("Kim et al.'s notebook trains 30 epochs, the paper's text says 100: the paper tier trains 100 "
               "(references training.epochs.paper and training.epochs.notebook record both).")
#: How every MS-unit claim chooses its units, against the notebook.
SELECTION_NOTE = ("MS units are chosen by MSI on the test split, as in the paper and the notebook (which selects "
                  "units on test-set statistics); ")


def notebook_references(*extra: Reference) -> tuple:
    """The references of a Kim et al. claim: :data:`NETWORK_REFERENCES` and the claim's own."""
    return NETWORK_REFERENCES + tuple(extra)


def tier_settings(tier: str, **overrides) -> dict:
    """The shared settings of a tier (a claim passes the result as its ``Tier.settings``)."""
    base = {"ci": CI_SETTINGS, "paper": PAPER_SETTINGS, "lab": LAB_SETTINGS}[tier]
    return dict(base, **overrides)


def lab_tier(data: tuple = (), **overrides) -> Tier:
    """A Kim et al. claim's ``lab`` tier: :data:`LAB_SETTINGS` on FSD50K (plus ``data``), expected to replicate
    (:data:`LAB_REASON`: not yet run on GPU)."""
    return Tier(settings=tier_settings("lab", **overrides), expect="PASS", reason=LAB_REASON,
                data=tuple(data) + LAB_DATA)


@dataclass
class Split:
    """Indices of analysis clips (music or non-music, never mixed) in one split."""

    idx: np.ndarray
    is_music: np.ndarray


class KimConditions:
    """Cached networks and features for one claim run.

    Parameters
    ----------
    settings : dict
        Tier settings (see :data:`CI_SETTINGS`).
    cache : harness.cache.Cache
    device : torch.device
    data : harness.options.DataRoots, optional
        For the paper tier (AudioSet) and the 165 natural sounds.
    verbose : bool
        Progress bars.
    """

    def __init__(self, settings: dict, cache, device, data=None, verbose: bool = False):
        self.s = dict(settings)
        self.cache = cache
        self.device = torch.device(device)
        self.data = data
        self.verbose = verbose
        self._clips = None
        self._logmel = None
        self._esc50 = None        # (root, ClipSet) of the last ESC-50 folder read
        self.timings: dict = {}

    @classmethod
    def from_run(cls, run, needs: tuple = ("without_music",)) -> "KimConditions":
        """The conditions of a claim run, with the trained networks it ``needs`` built first.

        ``needs`` names the trained conditions the claim analyses (every seed of each); they are
        built through :meth:`prefetch`, so parallel workers share the training.
        """
        cond = cls(run.settings, run.cache, run.device, run.data, verbose=getattr(run.session, "verbose", False))
        cond.prefetch(needs)
        run.log_values({"corpus": cond.corpus_record()})
        return cond

    def corpus_record(self) -> dict:
        """What every claim run records of its training corpus: the manifest without its long lists
        (source, version, config, hash, counts and, for the embedded corpus, the confound audit)."""
        m = self.clips().manifest
        return {k: v for k, v in m.items() if not (isinstance(v, (list, tuple, set, dict)) and len(v) > 64)}

    def prefetch(self, conditions) -> list:
        """Make sure every seed of ``conditions`` is trained, cooperating with parallel workers.

        Networks that another process is training right now are skipped and picked up last, so
        two pytest-xdist workers that need the same six networks train three each instead of
        queueing on the same lock. Returns the ``(condition, seed)`` pairs in the order they were
        resolved.
        """
        pending = [(c, s) for c in conditions if c != "random_init" for s in self.seeds(c)]
        done = []
        while pending:
            free = [cs for cs in pending
                    if not self.cache.busy("kim2024-model", self.model_config(*cs), version=MODEL_VERSION)]
            cs = free[0] if free else pending[0]  # nothing free: wait for the first one being built
            self.model(*cs)
            pending.remove(cs)
            done.append(cs)
        return done

    # ------------------------------------------------------------------ seeds
    def seeds(self, condition: str) -> list[int]:
        """Seeds of a condition: ``seeds`` for the main and random-init networks, else ``seeds_other``."""
        n_main = self.s["seeds"]
        main = list(range(n_main)) if isinstance(n_main, int) else list(n_main)
        if condition in ("without_music", "random_init"):
            return main
        n = min(int(self.s.get("seeds_other", len(main))), len(main))
        return main[:n]

    # ------------------------------------------------------------------ corpus
    def clips(self):
        """The training corpus (:class:`stimuli.dataset.ClipSet`), built once and cached."""
        if self._clips is None:
            t0 = time.perf_counter()
            if self.s["corpus"] == "embedded":
                from stimuli.corpus import CorpusConfig, make_corpus

                cfg = CorpusConfig(n_clips=int(self.s["clips"]), clip_s=float(self.s["clip_s"]), sr=22050,
                                   seed=int(self.s.get("corpus_seed", 0)))
                self._clips = make_corpus(cfg, self.cache, progress=self.verbose)
            elif self.s["corpus"] == "audioset":
                self._clips = self._audioset()
            elif self.s["corpus"] == "fsd50k":
                self._clips = self._fsd50k()
            else:
                raise UserError(f"unknown Kim et al. corpus {self.s['corpus']!r}: use 'embedded', 'audioset' or "
                                f"'fsd50k'")
            self.timings["corpus_s"] = time.perf_counter() - t0
        return self._clips

    def _audioset(self):
        from stimuli.loaders import load_audioset

        if self.data is None:
            raise UserError("the paper tier needs AudioSet: pass --audioset-audio and --audioset-meta")
        clips, _ = load_audioset(self.data.require("audioset_meta"), self.data.require("audioset_audio"),
                                 sr=22050, clip_s=float(self.s["clip_s"]), kim_dir=self.data.get("kim2024_lists"),
                                 progress=self.verbose)
        return clips

    def _fsd50k(self):
        """FSD50K at 22,050 Hz (the lab tier), decoded once into the cache (:mod:`stimuli.lab_data`).

        The ontology is ``<fsd50k>/ontology.json``, else ``ontology.json`` of ``--audioset-meta``; Kim et al.'s
        ``music_categories.txt`` joins the music mask when ``--kim2024-lists`` is given explicitly.
        """
        from stimuli.lab_data import load_fsd50k_cached

        if self.data is None:
            raise UserError("the lab tier needs FSD50K: pass --fsd50k DIR")
        root = self.data.require("fsd50k")
        onto = next((p for p in (root / "ontology.json", root / "FSD50K" / "ontology.json") if p.is_file()), None)
        if onto is None and self.data.get("audioset_meta") is not None:
            onto = self.data.get("audioset_meta") / "ontology.json"
        kim = self.data.get("kim2024_lists") if self.data.explicit("kim2024_lists") else None
        lists = kim / "music_categories.txt" if kim is not None and (kim / "music_categories.txt").is_file() else None
        return load_fsd50k_cached(self.cache, root, ontology=onto, kim_lists=lists, sr=22050,
                                  clip_s=float(self.s["clip_s"]), split=str(self.s.get("fsd50k_split", "all")),
                                  max_clips=self.s.get("max_clips"), seed=int(self.s.get("corpus_seed", 0)),
                                  progress=self.verbose)

    def corpus_input(self) -> dict:
        """The training corpus's data manifest, the input of every entry computed from the corpus.

        ``clips().manifest["data"]``: the embedded corpus's content hash (audio and labels), or the
        AudioSet manifest (every audio file read, by content, plus the metadata files); a clip set
        without one is keyed by its arrays.
        """
        c = self.clips()
        data = c.manifest.get("data")
        if data is None:
            data = array_manifest("corpus", c.audio, c.labels, c.split, clip_ids=list(c.clip_ids),
                                  class_names=list(c.class_names))
        return data

    def logmel_key(self) -> dict:
        """Key of the corpus log-mel entry (the input of every network trained on it)."""
        return content_key(self.corpus_input(), sr=int(self.clips().sr), features="kim2024 log-mel")

    def logmel_ref(self) -> dict:
        return entry_ref("kim2024-logmel", self.logmel_key(), version=LOGMEL_VERSION)

    def logmel(self) -> np.ndarray:
        """Kim et al. log-mel of every corpus clip, ``[n, 64, frames]`` float32 (cached)."""
        if self._logmel is None:
            from stimuli.features import logmel

            c = self.clips()
            t0 = time.perf_counter()
            self._logmel = self.cache.arrays(
                "kim2024-logmel", self.logmel_key(),
                lambda: {"x": logmel(c.audio, sr=c.sr, device=self.device)}, version=LOGMEL_VERSION)["x"]
            self.timings["logmel_s"] = time.perf_counter() - t0
        return self._logmel

    def split(self, name: str) -> Split:
        """Music (1) and non-music (0) clips of a split; mixed clips are excluded."""
        c = self.clips()
        lab = c.is_music
        idx = np.flatnonzero((c.split == name) & (lab >= 0))
        return Split(idx=idx, is_music=lab[idx] == 1)

    def mean_training_rms(self) -> float:
        """Mean RMS of the training split (Kim et al. normalise external sounds to it)."""
        c = self.clips()
        a = c.audio[c.split == "train"].astype(np.float64)
        return float(np.sqrt((a ** 2).mean(axis=1)).mean())

    # ------------------------------------------------------------------ models
    def model_config(self, condition: str, seed: int) -> dict:
        """The network's key: its training data (corpus and log-mel entry) and training settings."""
        if condition not in CONDITIONS:
            raise UserError(f"unknown Kim et al. condition {condition!r}: choose one of {', '.join(CONDITIONS)}")
        cfg = dict(condition=condition, seed=int(seed), width=float(self.s["width"]))
        if condition != "random_init":
            cfg["epochs"] = int(self.s["shuffled_epochs"] if condition == "shuffled_labels" else self.s["epochs"])
        if condition == "shuffled_labels":
            cfg["shuffled_clips"] = self.s.get("shuffled_clips")
            cfg["keep"] = "last"  # memorisation: keep the memorised weights, not the best-validation epoch
        return content_key(self.corpus_input(), self.logmel_ref(), **cfg)

    def model_input(self, condition: str, seed: int) -> dict:
        """What entries computed from a network are keyed by: its cache entry (trained conditions) or,
        for ``random_init`` (never cached), its key."""
        cfg = self.model_config(condition, seed)
        return cfg if condition == "random_init" else entry_ref("kim2024-model", cfg, version=MODEL_VERSION)

    def model(self, condition: str, seed: int):
        """The network of a condition and seed (trained, or freshly initialised for ``random_init``).

        Returns
        -------
        model : models.kim_cnn.KimCNN
            In eval mode on the CPU.
        meta : dict
            ``curves``, ``best_epoch``, ``best_val_map``, ``train_clips_per_s``, ``seconds``,
            ``n_train`` (empty for random init) and, for shuffled labels, ``train_map``.
        """
        from models.kim_cnn import build_kim_cnn

        n_classes = self.clips().labels.shape[1]
        if condition == "random_init":
            return build_kim_cnn(n_classes, float(self.s["width"]), seed=int(seed)).eval(), {}
        blob = self.cache.pickle("kim2024-model", self.model_config(condition, seed),
                                 lambda: self._train(condition, seed), version=MODEL_VERSION)
        model = build_kim_cnn(n_classes, float(self.s["width"]), seed=int(seed))
        model.load_state_dict(blob["state_dict"])
        return model.eval(), blob["meta"]

    def _train(self, condition: str, seed: int) -> dict:
        from models.training import TrainConfig, mean_average_precision, train_kim_cnn
        from stimuli.dataset import training_variant

        c = self.clips()
        x = self.logmel()
        excluded = self._excluded_ids()
        variant = training_variant(c, condition, seed=seed, excluded_ids=excluded)
        keep_ids = {cid: i for i, cid in enumerate(c.clip_ids)}
        rows = np.array([keep_ids[cid] for cid in variant.clip_ids])
        labels = variant.labels
        tr = variant.split == "train"
        va = variant.split == "val"
        if condition == "shuffled_labels" and self.s.get("shuffled_clips"):
            tr_idx = np.flatnonzero(tr)[: int(self.s["shuffled_clips"])]
            tr = np.zeros_like(tr)
            tr[tr_idx] = True
        epochs = int(self.s["shuffled_epochs"] if condition == "shuffled_labels" else self.s["epochs"])
        cfg = TrainConfig(epochs=epochs, width=float(self.s["width"]), seed=int(seed),
                          keep="last" if condition == "shuffled_labels" else "best_val")
        log.info("training KimCNN %s seed %d on %d clips for %d epochs", condition, seed, int(tr.sum()), epochs)
        cpu0 = time.process_time()
        res = train_kim_cnn(x[rows[tr]], labels[tr], x[rows[va]], labels[va], cfg, device=self.device,
                            verbose=self.verbose)
        meta = {"cpu_seconds": time.process_time() - cpu0, "torch_threads": torch.get_num_threads(),
                "curves": res.curves, "best_epoch": res.best_epoch, "best_val_map": res.best_val_map,
                "train_clips_per_s": res.train_clips_per_s, "seconds": res.seconds, "n_train": int(tr.sum()),
                "epochs": epochs}
        if condition == "shuffled_labels":  # memorisation check: AP on its own (shuffled) training labels
            _, logits = res.model.features_and_logits(x[rows[tr]], device=self.device)
            meta["train_map"] = mean_average_precision(labels[tr], logits)
        return {"state_dict": {k: v.cpu() for k, v in res.model.state_dict().items()}, "meta": meta}

    def test_map(self, condition: str, seed: int, task: str | None = None) -> dict:
        """A network on its own task, held out: macro AP on the test split of a training variant.

        Parameters
        ----------
        condition : str
            The network (any of :data:`CONDITIONS`).
        seed : int
        task : str, optional
            The training variant whose labels and test clips define the task (default: the
            network's own condition). ``test_map("shuffled_labels", s, task="with_music")`` scores
            the memorisation network on the true labels.

        Returns
        -------
        dict
            ``map`` (the network), ``chance_map`` (each class's test prevalence, the AP of a random
            ranking), ``random_init_map`` (the same-seed untrained network), ``n_test``, ``n_classes``.
            Cached, keyed by the network's own cache config and the task.
        """
        from models.training import mean_average_precision
        from stimuli.dataset import training_variant

        task = task or condition
        if task not in COMPETENCE:
            raise UserError(f"no competence is defined for the Kim et al. task {task!r}: "
                            f"choose one of {', '.join(COMPETENCE)}")

        def build():
            c = self.clips()
            variant = training_variant(c, task, seed=seed, excluded_ids=self._excluded_ids())
            pos = {cid: i for i, cid in enumerate(c.clip_ids)}
            te = variant.split == "test"
            rows = np.array([pos[cid] for cid in np.asarray(variant.clip_ids)[te]])
            y = variant.labels[te].astype(bool)
            x = self.logmel()[rows]
            out = {"n_test": int(te.sum()), "n_classes": int(y.any(axis=0).sum())}
            for name, cond in (("map", condition), ("random_init_map", "random_init")):
                model, _ = self.model(cond, seed)
                _, logits = model.features_and_logits(x, device=self.device)
                out[name] = mean_average_precision(y, logits)
            out["chance_map"] = float(y[:, y.any(axis=0)].mean(axis=0).mean())
            return out

        key = content_key(self.model_input(condition, seed), self.model_input("random_init", seed),
                          self.logmel_ref(), task=task)
        return self.cache.json("kim2024-competence", key, build, version=COMPETENCE_VERSION)

    def competence(self, condition: str, run=None) -> dict:
        """``{competence name: Estimate over seeds}`` of a trained condition, for ``Evidence.competence``.

        With ``run``, the per-seed values (and chance / random-init baselines) and the training curves
        are logged too.
        """
        seeds = self.seeds(condition)
        per = [self.test_map(condition, s) for s in seeds]
        name = COMPETENCE[condition].name
        if run is not None:
            run.log_values({f"competence.{name}": {
                "seeds": seeds, "map": [d["map"] for d in per], "chance_map": [d["chance_map"] for d in per],
                "random_init_map": [d["random_init_map"] for d in per], "n_test": per[0]["n_test"],
                "n_classes": per[0]["n_classes"],
                "train_seconds": [self.model(condition, s)[1].get("seconds") for s in seeds]}})
            curves = {f"{condition} seed {s}": self.model(condition, s)[1].get("curves") or {} for s in seeds}
            if any(curves.values()):
                run.log_learning_curves(curves, name=condition)
        return {name: Estimate.over_seeds([d["map"] for d in per])}

    def earned(self, run, result: dict, *conditions: str) -> dict:
        """``result`` with the main evidence's competence filled in from ``conditions`` (default the
        main networks, ``without_music``): the networks the claim's verdict rests on."""
        comp, secs = {}, {}
        for c in conditions or ("without_music",):
            comp.update(self.competence(c, run))
            secs[COMPETENCE[c].name] = float(sum(self.model(c, s)[1].get("seconds") or 0.0 for s in self.seeds(c)))
        result["main"].competence, result["main"].training_s = comp, secs
        return result

    def _excluded_ids(self) -> set:
        """Kim et al.'s hand-excluded clips (AudioSet only; the loader stores them in the manifest)."""
        return set(self.clips().manifest.get("excluded_ids", ()))

    # ------------------------------------------------------------------ features
    def _features(self, condition: str, seed: int, stimulus: str, source: dict, make_x) -> dict:
        """Cached pooled features and logits of a network on a stimulus set.

        Keyed by the network (:meth:`model_input`) and ``source``, the key of the stimulus set's own
        cache entry (:func:`harness.cache.entry_ref`), so another set of sounds under the same
        ``stimulus`` name is another entry.
        """
        def build():
            model, _ = self.model(condition, seed)
            model = model.to(self.device)
            feats, logits = model.features_and_logits(make_x(), batch_size=256, device=self.device)
            return {"features": feats, "logits": logits}

        key = content_key(self.model_input(condition, seed), source, stimulus=stimulus)
        return self.cache.arrays("kim2024-features", key, build, version=FEATURE_VERSION)

    def features(self, condition: str, seed: int) -> dict:
        """Features ``[n_clips, n_pooled]`` and logits of every corpus clip."""
        return self._features(condition, seed, "corpus", self.logmel_ref(), self.logmel)

    def transformed_logmel(self, transform: str) -> dict:
        """Log-mel of the training split's analysis clips after an amplitude manipulation.

        ``transform``: ``"rms"`` (every clip RMS-normalised to the mean training RMS) or
        ``"music_1_64"`` (then music attenuated to 1/64 of the mean non-music power).
        Returns ``{"x": log-mel, "idx": corpus indices, "is_music": bool}``.
        """
        from stimuli.features import attenuate_to_power_ratio, logmel, power, rms_normalise

        sp = self.split("train")
        if transform not in ("rms", "music_1_64"):
            raise UserError(f"unknown amplitude transform {transform!r}: use 'rms' or 'music_1_64'")

        def build():
            c = self.clips()
            a = rms_normalise(c.audio[sp.idx], self.mean_training_rms())
            if transform == "music_1_64":
                ref = float(np.mean(power(a[~sp.is_music])))
                a = np.array(a, copy=True)
                a[sp.is_music] = attenuate_to_power_ratio(a[sp.is_music], ref, 1.0 / 64.0)
            return {"x": logmel(a, sr=c.sr, device=self.device), "idx": sp.idx, "is_music": sp.is_music}

        return self.cache.arrays("kim2024-logmel-amplitude", self._amplitude_key(transform), build,
                                 version=AMPLITUDE_VERSION)

    def _amplitude_key(self, transform: str) -> dict:
        return content_key(self.corpus_input(), transform=transform, split="train")

    def transformed_features(self, condition: str, seed: int, transform: str) -> np.ndarray:
        source = entry_ref("kim2024-logmel-amplitude", self._amplitude_key(transform), version=AMPLITUDE_VERSION)
        return self._features(condition, seed, f"train-{transform}", source,
                              lambda: self.transformed_logmel(transform)["x"])["features"]

    # ------------------------------------------------------------------ 165 natural sounds
    def natsound_key(self, root) -> dict:
        """Key of the 165 sounds' log-mel entry: the folder's content (labels file and every sound it
        lists, :func:`stimuli.loaders.natsound165_manifest`) and the corpus (its training RMS)."""
        from stimuli.loaders import natsound165_manifest

        return content_key(natsound165_manifest(root), self.corpus_input(), sr=22050, clip_s=2.0,
                           normalise="mean training RMS")

    def natsound_logmel(self, root) -> dict:
        """The 165 sounds at 22,050 Hz, RMS-normalised to the mean training RMS, as log-mel.

        Returns ``{"x", "is_music", "categories", "stems"}``; cached by the folder's content
        (:meth:`natsound_key`), so another folder, an edited labels file or permuted audio files
        are another entry.
        """
        from stimuli.features import logmel, rms_normalise
        from stimuli.loaders import load_natsound165

        def build():
            ns = load_natsound165(root, sr=22050)
            a = rms_normalise(ns.audio, self.mean_training_rms())
            return {"x": logmel(a, sr=22050, device=self.device), "is_music": ns.is_music == 1,
                    "categories": np.asarray(ns.categories).astype(str), "stems": np.asarray(ns.clip_ids).astype(str)}

        return self.cache.arrays("kim2024-natsound165", self.natsound_key(root), build, version=NATSOUND_VERSION)

    def natsound_features(self, condition: str, seed: int, root) -> np.ndarray:
        source = entry_ref("kim2024-natsound165", self.natsound_key(root), version=NATSOUND_VERSION)
        return self._features(condition, seed, "natsound165", source,
                              lambda: self.natsound_logmel(root)["x"])["features"]

    # ------------------------------------------------------------------ ESC-50
    def esc50_clips(self, root):
        """ESC-50 at 22,050 Hz, cut or padded to the corpus's clip length (``clip_s``), decoded once into the
        cache (:func:`stimuli.lab_data.load_esc50_cached`); ``manifest["data"]`` is by content."""
        from stimuli.lab_data import load_esc50_cached

        cached = self._esc50
        if cached is None or cached[0] != str(root):
            clips = load_esc50_cached(self.cache, root, sr=22050, clip_s=float(self.s["clip_s"]),
                                      progress=self.verbose)
            self._esc50 = cached = (str(root), clips)
        return cached[1]

    def esc50_key(self, root) -> dict:
        """Key of ESC-50's log-mel entry: the content manifest the loader made (every clip read and
        ``meta/esc50.csv``, with its sample rate and clip length) and the corpus (its training RMS)."""
        return content_key(self.esc50_clips(root).manifest["data"], self.corpus_input(), sr=22050,
                           clip_s=float(self.s["clip_s"]), normalise="mean training RMS")

    def esc50_logmel(self, root) -> dict:
        """ESC-50's clips, RMS-normalised to the mean training RMS (as the 165 sounds), as log-mel.

        Returns ``{"x", "target", "major", "categories", "src_file", "clip_ids"}``: the target id (0-49), its
        major category (:data:`stimuli.open_data.ESC50_MAJOR_CATEGORIES`), the class name and the source
        recording of every clip. Cached by the loader's content manifest (:meth:`esc50_key`).
        """
        from stimuli.features import logmel, rms_normalise
        from stimuli.open_data import esc50_major_category

        def build():
            c = self.esc50_clips(root)
            target = np.asarray(c.manifest["target"], dtype=np.int64)
            a = rms_normalise(np.asarray(c.audio, np.float32), self.mean_training_rms())
            return {"x": logmel(a, sr=c.sr, device=self.device), "target": target,
                    "major": esc50_major_category(target), "categories": np.asarray(c.categories).astype(str),
                    "src_file": np.asarray(c.manifest["src_file"]).astype(str),
                    "clip_ids": np.asarray(c.clip_ids).astype(str)}

        return self.cache.arrays("kim2024-esc50", self.esc50_key(root), build, version=ESC50_VERSION)

    def esc50_features(self, condition: str, seed: int, root) -> np.ndarray:
        """Pooled features ``[n_clips, n_pooled]`` of one network on ESC-50 (:meth:`esc50_logmel`)."""
        source = entry_ref("kim2024-esc50", self.esc50_key(root), version=ESC50_VERSION)
        return self._features(condition, seed, "esc50", source, lambda: self.esc50_logmel(root)["x"])["features"]

    # ------------------------------------------------------------------ quilts
    def quilt_logmel(self, kind: str) -> dict:
        """Log-mel of the originals and quilts of ``quilt_clips`` training clips of one kind.

        ``kind``: ``"music"`` or ``"nonmusic"``. Clips are cut to ``quilt_cut_s`` (a whole number of
        every segment size) and zero-padded back to the clip length, originals included (Kim et
        al.: 8 s of 10). Returns ``{"original": x, "50": x, ...}``.
        """
        from stimuli.features import logmel
        from stimuli.quilting import quilt_stimuli

        if kind not in ("music", "nonmusic"):
            raise UserError(f"quilt kind must be 'music' or 'nonmusic', got {kind!r}")
        sp = self.split("train")
        want = sp.is_music if kind == "music" else ~sp.is_music
        n = int(self.s["quilt_clips"])
        idx = sp.idx[want][:n]
        key = self._quilt_key(kind)

        def build():
            c = self.clips()
            st = quilt_stimuli(c.audio[idx], c.sr, seg_ms=QUILT_SEG_MS, ordering=self.s["quilt_ordering"],
                               seed=0, device=self.device, cut_s=float(self.s["quilt_cut_s"]),
                               total_s=float(self.s["clip_s"]))
            out = {"original": logmel(st["original"], sr=c.sr, device=self.device)}
            for ms in QUILT_SEG_MS:
                out[str(ms)] = logmel(st[float(ms)], sr=c.sr, device=self.device)
            return out

        return self.cache.arrays("kim2024-quilts", key, build, version=QUILTS_VERSION)

    def _quilt_key(self, kind: str) -> dict:
        return content_key(self.corpus_input(), kind=kind, n=int(self.s["quilt_clips"]), seg_ms=list(QUILT_SEG_MS),
                           cut_s=self.s["quilt_cut_s"], ordering=self.s["quilt_ordering"],
                           total_s=float(self.s["clip_s"]), split="train")

    def quilt_features(self, condition: str, seed: int, kind: str) -> dict:
        """Pooled features for the original and every quilt size: ``{"original": [n, units], 50: ...}``."""
        def make_x():
            q = self.quilt_logmel(kind)
            return np.concatenate([q["original"]] + [q[str(ms)] for ms in QUILT_SEG_MS])

        source = entry_ref("kim2024-quilts", self._quilt_key(kind), version=QUILTS_VERSION)
        f = self._features(condition, seed, f"quilts-{kind}", source, make_x)["features"]
        parts = np.split(f, 1 + len(QUILT_SEG_MS))
        return {"original": parts[0], **{ms: p for ms, p in zip(QUILT_SEG_MS, parts[1:])}}

    # ------------------------------------------------------------------ the MS units
    def selectivity(self, condition: str, seed: int, positive: str = "music") -> dict:
        """MSI on the test split and the train-split features, for one network.

        Returns
        -------
        dict
            ``msi`` (per unit, test split), ``ms_units`` (top 12.5 %), ``train`` /
            ``test`` features of the analysis clips and their ``*_music`` masks.
        """
        from analysis.selectivity import music_selectivity_index, top_units

        f = self.features(condition, seed)["features"]
        te, tr = self.split("test"), self.split("train")
        msi = music_selectivity_index(f[te.idx], te.is_music)
        return {"msi": msi, "ms_units": top_units(msi), "train": f[tr.idx], "train_music": tr.is_music,
                "test": f[te.idx], "test_music": te.is_music}


def seed_params(cond: KimConditions, condition: str, seed: int) -> dict:
    """Parameters to log on a per-seed child run."""
    return dict(condition=condition, seed=seed, width=cond.s["width"], epochs=cond.s["epochs"],
                clips=cond.s.get("clips"), clip_s=cond.s["clip_s"])


def worst_case_over_seeds(estimates) -> "Estimate":
    """Combine per-seed estimates into one that holds only if it holds in every seed.

    ``value`` is the mean of the per-seed values, ``low``/``high`` the lowest low and the highest
    high, ``p`` the largest p (so a p-value criterion must hold in every seed).
    """
    from analysis.stats import Estimate

    est = list(estimates)
    ps = [e.p for e in est if e.p is not None]
    return Estimate(value=float(np.mean([e.value for e in est])), low=min(e.low for e in est),
                    high=max(e.high for e in est), p=max(ps) if len(ps) == len(est) else None, n=len(est),
                    method=f"per-seed intervals, worst case over {len(est)} seeds ({est[0].method})", level=None,
                    samples=[e.value for e in est])


def quilt_curve(cond: KimConditions, condition: str, seed: int, kind: str = "music", group: str = "ms") -> dict:
    """Normalised response of a unit group to the originals and quilts (``{"original": v, 50: v, ...}``).

    ``group``: ``"ms"`` (top 12.5 % MSI) or ``"non_ms"`` (all other units).
    """
    from analysis.selectivity import normalised_quilt_curve

    sel = cond.selectivity(condition, seed)
    units = sel["ms_units"]
    if group == "non_ms":
        units = np.setdiff1d(np.arange(len(sel["msi"])), units)
    elif group != "ms":
        raise UserError(f"unit group must be 'ms' or 'non_ms', got {group!r}")
    return normalised_quilt_curve(cond.quilt_features(condition, seed, kind), units)


def quilt_correlation(curves: list) -> "Estimate":
    """Pearson r between log2 segment size and normalised response, pooled over seeds x sizes."""
    from analysis.stats import pearson_ci

    x = np.concatenate([np.log2(QUILT_SEG_MS) for _ in curves])
    y = np.concatenate([[c[ms] for ms in QUILT_SEG_MS] for c in curves])
    return pearson_ci(x, y)


# ------------------------------------------------------------------------------------ time estimate
#: FSD50K's size (Fonseca et al. 2022): clips, hours of audio and the share of each split (dev = train + val).
FSD50K_CLIPS, FSD50K_HOURS = 51197, 108.3
FSD50K_SHARES = {"train": 36796 / 51197, "val": 4170 / 51197, "test": 10231 / 51197}
#: Assumed for the estimate (not counted): the share of FSD50K's clips left without music (Music subtree and
#: singing), and without music and speech.
ESTIMATE_SHARES = {"with_music": 1.0, "without_music": 0.65, "without_music_and_speech": 0.55, "shuffled_labels": 1.0}
#: The trained conditions each claim asks for (its ``KimConditions.from_run(needs=...)``; default the main networks).
CLAIM_NEEDS = {
    "kim2024.ms_units.response_ratio": ("without_music", "with_music", "shuffled_labels", "without_music_and_speech"),
    "kim2024.natsound165.ratio": ("without_music", "with_music"),
    "kim2024.no_speech.still_selective": ("without_music", "without_music_and_speech"),
    "kim2024.quilts.segment_size": ("without_music", "shuffled_labels"),
}
#: Claims that read ESC-50 (2,000 clips of 5 s; Piczak 2015), for the estimate.
ESC50_CLAIMS = ("kim2024.esc50.music_above_environmental",)
ESC50_CLIPS = 2000
#: Host seconds per claim for its CPU-side statistics (t-SNE, readouts, bootstraps, figures), a rough allowance.
ANALYSIS_HOST_S = 120.0
_FSD50K_COUNTS = None


def fsd50k_counts(root) -> dict | None:
    """Clips per split (``train``, ``val``, ``test``) and hours of audio of an FSD50K folder, from its ground-truth
    CSVs and its audio files' sizes (16-bit mono 44.1-kHz WAV, as FSD50K ships); None when it is absent."""
    import csv
    from pathlib import Path

    if root is None:
        return None
    root = Path(root)
    root = root / "FSD50K" if (root / "FSD50K" / "FSD50K.ground_truth").is_dir() else root
    gt = root / "FSD50K.ground_truth"
    if not (gt / "dev.csv").is_file():
        return None
    counts = {"train": 0, "val": 0, "test": 0}
    with (gt / "dev.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            counts["train" if r.get("split") == "train" else "val"] += 1
    if (gt / "eval.csv").is_file():
        with (gt / "eval.csv").open(newline="", encoding="utf-8") as f:
            counts["test"] = sum(1 for _ in csv.DictReader(f))
    size = sum(e.stat().st_size for d in ("FSD50K.dev_audio", "FSD50K.eval_audio") if (root / d).is_dir()
               for e in os.scandir(root / d) if e.is_file())
    counts["hours"] = size / (2 * 44100) / 3600
    return counts


def esc50_count(root) -> int | None:
    """Clips listed in an ESC-50 folder's ``meta/esc50.csv`` (the repository or its parent); None when absent."""
    from pathlib import Path

    if root is None:
        return None
    root = Path(root)
    meta = next((m for m in (root / "meta" / "esc50.csv", root / "ESC-50-master" / "meta" / "esc50.csv")
                 if m.is_file()), None)
    if meta is None:
        return None
    with meta.open(encoding="utf-8-sig") as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def estimate_work(claim_id: str, variant: str, tier: str, s: dict, data=None) -> list:
    """The work of one Kim et al. claim at the lab tier (:mod:`harness.budget`): decoding FSD50K, every network
    it needs (training epochs with their validation passes) and their features (and ESC-50's, decoded once, for the
    claims in :data:`ESC50_CLAIMS`), and its CPU analysis. FSD50K's
    clips and hours are counted when ``--fsd50k`` is there (:func:`fsd50k_counts`), else its published size."""
    import math

    from harness.budget import TRAIN_FACTOR, Work, counted, decode_seconds
    from models.kim_cnn import forward_flops

    if s.get("corpus") != "fsd50k":
        return []
    global _FSD50K_COUNTS
    _FSD50K_COUNTS = _FSD50K_COUNTS or counted(fsd50k_counts)
    found = _FSD50K_COUNTS(data.get("fsd50k") if data is not None else None)
    total = sum(found[k] for k in FSD50K_SHARES) if found else FSD50K_CLIPS
    shares = {k: found[k] / max(total, 1) for k in FSD50K_SHARES} if found else FSD50K_SHARES
    hours_all = found["hours"] if found else FSD50K_HOURS
    n = min(int(s.get("max_clips") or total), total)
    clip_s, width = float(s["clip_s"]), float(s["width"])
    frames = 1 + math.ceil(clip_s * 22050 / 275)
    fwd = forward_flops(width, 64, frames, n_classes=200)
    tag = f"{n}:{clip_s}:{width}"
    hours = hours_all * n / max(total, 1)
    work = [Work(f"kim:decode:{tag}", f"decode FSD50K ({n} clips {'counted' if found else 'assumed'}, "
                                      f"{hours:.1f} h of audio), log-mel", host_s=decode_seconds(hours * 3600))]
    n_main = s["seeds"] if isinstance(s["seeds"], int) else len(s["seeds"])
    for cond in ("random_init",) + tuple(CLAIM_NEEDS.get(claim_id, ("without_music",))):
        n_seeds = n_main if cond in ("without_music", "random_init") else min(int(s.get("seeds_other", n_main)), n_main)
        for seed in range(n_seeds):
            work.append(Work(f"kim:features:{cond}:{seed}:{tag}", f"KimCNN {cond} features", flops=n * fwd * 1.1))
            if cond == "random_init":
                continue
            share = ESTIMATE_SHARES[cond]
            n_tr = n * shares["train"] * share
            epochs = int(s["epochs"])
            if cond == "shuffled_labels":
                n_tr = min(float(s.get("shuffled_clips") or n_tr), n_tr)
                epochs = int(s["shuffled_epochs"])
            n_val = n * shares["val"] * share
            work.append(Work(f"kim:train:{cond}:{seed}:{tag}:{epochs}",
                             f"train KimCNN {cond} seed {seed}: {epochs} epochs of {n_tr:.0f} clips",
                             flops=epochs * (n_tr * TRAIN_FACTOR * fwd + n_val * fwd), steps=epochs * int(n_tr // 32)))
    if claim_id in ESC50_CLAIMS:          # ESC-50 at the corpus clip length: the same forward pass per clip
        n_esc = esc50_count(data.get("esc50") if data is not None else None)
        n_esc, how = (n_esc, "counted") if n_esc else (ESC50_CLIPS, "assumed")
        work.append(Work(f"kim:decode-esc50:{n_esc}:{clip_s}", f"decode ESC-50 ({n_esc} clips {how}, "
                                                               f"{n_esc * 5 / 3600:.1f} h of audio), log-mel",
                         host_s=decode_seconds(n_esc * 5.0)))
        for seed in range(n_main):
            for cond in ("without_music", "random_init"):
                work.append(Work(f"kim:esc50-features:{cond}:{seed}:{n_esc}:{tag}", f"KimCNN {cond} ESC-50 features",
                                 flops=n_esc * fwd * 1.1))
    work.append(Work(f"kim:analysis:{claim_id}", f"{claim_id}: statistics (CPU)",
                     host_s=5.0 + ANALYSIS_HOST_S * min(1.0, n / FSD50K_CLIPS)))
    return work


def _register_estimator() -> None:
    from harness import budget

    budget.register("kim2024", estimate_work)


_register_estimator()
