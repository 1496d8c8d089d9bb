"""KimCNN: exact architecture, width multiplier, hooks, and the training recipe."""
import numpy as np
import pytest
import torch

from harness.errors import UserError
from models.kim_cnn import PAPER_PARAMETER_COUNT, KimCNN, build_kim_cnn, count_parameters
from models.training import TrainConfig, mean_average_precision, one_cycle, train_kim_cnn

torch.set_num_threads(1)


def test_parameter_count_is_the_papers():
    assert count_parameters(KimCNN(n_classes=527, width=1.0)) == PAPER_PARAMETER_COUNT == 1_278_191


def test_quarter_width_has_64_pooled_units_and_shapes():
    m = KimCNN(n_classes=527, width=0.25).eval()
    assert m.n_pooled == 64
    x = torch.randn(3, 64, 161)  # a 2-s clip at hop 275
    assert m(x).shape == (3, 527)
    assert m.pooled_features(x.numpy()).shape == (3, 64)
    # full width on a 10-s clip (64 x 803)
    full = KimCNN(width=1.0).eval()
    assert full.pooled_features(torch.randn(1, 64, 803).numpy()).shape == (1, 256)


def test_bad_input_raises_user_error():
    with pytest.raises(UserError):
        KimCNN(width=0)
    with pytest.raises(UserError):
        KimCNN(width=0.25)(torch.randn(2, 2, 64, 40))


def test_build_is_deterministic_in_seed():
    a, b, c = build_kim_cnn(10, 0.25, seed=1), build_kim_cnn(10, 0.25, seed=1), build_kim_cnn(10, 0.25, seed=2)
    wa, wb, wc = (next(m.parameters()).detach() for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_hook_features_equal_manual_pool():
    m = build_kim_cnn(5, 0.25, seed=0).eval()
    x = torch.randn(7, 64, 80)
    manual = m.pool(m.features(x.unsqueeze(1))).flatten(1).detach().numpy()
    np.testing.assert_allclose(m.pooled_features(x.numpy(), batch_size=3), manual, rtol=1e-5, atol=1e-6)
    assert len(m.pool._forward_hooks) == 0  # hook removed


def test_ablation_hook_zeroes_exactly_the_chosen_units_batched():
    m = build_kim_cnn(5, 0.25, seed=0).eval()
    x = torch.randn(6, 64, 80).numpy()
    feats, logits = m.features_and_logits(x)
    units = [0, 5, 63]
    with m.ablated(units):
        f_abl, l_abl = m.features_and_logits(x, batch_size=4)
    keep = np.setdiff1d(np.arange(64), units)
    assert np.all(f_abl[:, units] == 0)
    np.testing.assert_allclose(f_abl[:, keep], feats[:, keep], rtol=1e-5, atol=1e-6)
    # logits equal a manual head on the masked features
    z = torch.as_tensor(feats).clone()
    z[:, units] = 0
    np.testing.assert_allclose(l_abl, m.head(z).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(l_abl, logits)
    # hook is gone afterwards
    np.testing.assert_allclose(m.features_and_logits(x)[0], feats, rtol=1e-6)
    with pytest.raises(UserError):
        with m.ablated([64]):
            pass


def test_one_cycle_schedule_matches_paper():
    cfg = TrainConfig()
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr_start)
    sched = one_cycle(opt, 1000, cfg)
    lrs = []
    for _ in range(1000):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(4e-5, rel=1e-6)
    assert int(np.argmax(lrs)) in range(295, 305) and max(lrs) == pytest.approx(1e-3, rel=1e-3)
    assert lrs[-1] == pytest.approx(4e-9, rel=0.2)


def test_mean_average_precision_analytic():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], bool)
    perfect = y.astype(float)
    assert mean_average_precision(y, perfect) == pytest.approx(1.0)
    # class 0 ranked [neg, pos, pos, neg]: AP = (1/2 + 2/3) / 2
    s = np.array([[0.8, 0], [0.9, 1], [0.7, 0], [0.1, 0]])
    assert mean_average_precision(y, s) == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)


def test_training_learns_a_separable_toy_task_and_keeps_best_epoch():
    rng = np.random.default_rng(0)
    n, c = 160, 3
    y = rng.random((n, c)) < 0.3
    x = rng.normal(size=(n, 64, 24)).astype(np.float32)
    for k in range(c):  # class k lights up a band
        x[y[:, k], 10 * k:10 * k + 8, :] += 2.0
    tr, va = slice(0, 128), slice(128, None)
    seen = []
    res = train_kim_cnn(x[tr], y[tr], x[va], y[va], TrainConfig(epochs=6, width=0.25, seed=0),
                        on_epoch=lambda e, m: seen.append(e))
    assert seen == list(range(1, 7))
    assert set(res.curves) >= {"train_loss", "val_loss", "val_map", "lr"} and len(res.curves["val_map"]) == 6
    assert res.best_val_map == max(res.curves["val_map"])
    assert res.best_val_map > 0.8  # chance is ~0.3
    assert res.train_clips_per_s > 0
    # the returned weights are the best epoch's: re-evaluating reproduces its validation mAP
    _, logits = res.model.features_and_logits(x[va])
    assert mean_average_precision(y[va], logits) == pytest.approx(res.best_val_map, abs=1e-6)
    # deterministic given the seed
    res2 = train_kim_cnn(x[tr], y[tr], x[va], y[va], TrainConfig(epochs=2, width=0.25, seed=0))
    res3 = train_kim_cnn(x[tr], y[tr], x[va], y[va], TrainConfig(epochs=2, width=0.25, seed=0))
    assert res2.curves["train_loss"] == res3.curves["train_loss"]
    last = train_kim_cnn(x[tr], y[tr], x[va], y[va], TrainConfig(epochs=2, width=0.25, seed=0, keep="last"))
    assert last.best_epoch == 2


def test_training_rejects_bad_shapes():
    with pytest.raises(UserError):
        train_kim_cnn(np.zeros((40, 64)), np.zeros((40, 2)), np.zeros((4, 64, 8)), np.zeros((4, 2)),
                      TrainConfig(epochs=1, width=0.25))
