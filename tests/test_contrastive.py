"""NT-Xent: hand-computed value, class-token-only invariant, augmentation and a short training run."""
import math

import numpy as np
import pytest
import torch

from harness.errors import UserError
from models.contrastive import (AugmentConfig, PretrainConfig, augment_crops, cls_contrastive_loss, nt_xent,
                                pretrain_vit1d)
from models.vit1d import ViT1DConfig, build_vit1d

torch.set_num_threads(1)


def test_nt_xent_hand_computed():
    # two pairs in 2-D: a0 = (1, 0), b0 = (0.6, 0.8), a1 = (0, 1), b1 = (-1, 0); t = 0.5
    za = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # norms do not matter (cosine)
    zb = torch.tensor([[0.6, 0.8], [-3.0, 0.0]])
    t = 0.5
    # cosine similarities among [a0, a1, b0, b1]
    s = {("a0", "a1"): 0.0, ("a0", "b0"): 0.6, ("a0", "b1"): -1.0,
         ("a1", "b0"): 0.8, ("a1", "b1"): 0.0, ("b0", "b1"): -0.6}
    sim = lambda u, v: s.get((u, v), s.get((v, u)))
    names, pos = ["a0", "a1", "b0", "b1"], {"a0": "b0", "a1": "b1", "b0": "a0", "b1": "a1"}
    losses = []
    for i in names:
        den = sum(math.exp(sim(i, k) / t) for k in names if k != i)
        losses.append(-math.log(math.exp(sim(i, pos[i]) / t) / den))
    expected = sum(losses) / 4
    assert nt_xent(za, zb, temperature=t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_perfect_pairs_lower_than_shuffled():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=g)
    good = nt_xent(z, z + 0.01 * torch.randn(8, 16, generator=g))
    bad = nt_xent(z, z[torch.randperm(8, generator=g)])
    assert good < bad


def test_nt_xent_rejects_bad_input():
    with pytest.raises(UserError):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(UserError):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=0.0)


def _replace_final_sequence(model, values):
    """Hook the last block so its sequence outputs (not the class token) are replaced."""
    def hook(_module, _inp, out):
        x, w = out
        x = torch.cat([x[:, :1], values.expand(x.shape[0], -1, -1)], dim=1)
        return x, w
    return model.blocks[-1].register_forward_hook(hook)


def test_loss_depends_on_final_class_token_only():
    cfg = ViT1DConfig(n_mels=16, dim=32, depth=2, n_heads=4)
    model = build_vit1d(cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    va, vb = torch.randn(4, 30, 16, generator=g), torch.randn(4, 30, 16, generator=g)
    base = cls_contrastive_loss(model, va, vb)
    handle = _replace_final_sequence(model, 100.0 * torch.randn(1, 30, 32, generator=g))
    try:
        replaced = cls_contrastive_loss(model, va, vb)
        seq = model(va).sequence
    finally:
        handle.remove()
    assert replaced.item() == pytest.approx(base.item(), abs=1e-6)
    assert seq.abs().max() > 1.0  # the replacement really happened
    # and the gradient wrt the final sequence outputs is exactly zero
    out = model(va)
    seq_out = out.sequence
    seq_out.retain_grad()
    loss = nt_xent(out.cls, model(vb).cls)
    loss.backward()
    assert seq_out.grad is None or torch.all(seq_out.grad == 0)


def test_a_sequence_based_loss_would_violate_the_invariant():
    """The invariant test can fail: a loss on mean sequence tokens changes under the replacement."""
    cfg = ViT1DConfig(n_mels=16, dim=32, depth=2, n_heads=4)
    model = build_vit1d(cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    va, vb = torch.randn(4, 30, 16, generator=g), torch.randn(4, 30, 16, generator=g)
    seq_loss = lambda: nt_xent(model(va).sequence.mean(1), model(vb).sequence.mean(1))
    base = seq_loss()
    handle = _replace_final_sequence(model, torch.randn(1, 30, 32, generator=g))
    try:
        changed = seq_loss()
    finally:
        handle.remove()
    assert abs(changed.item() - base.item()) > 1e-3


def test_augment_crops_shapes_and_determinism():
    mel = torch.randn(3, 50, 8) * 10 - 40
    a = augment_crops(mel, 20, AugmentConfig(), torch.Generator().manual_seed(0))
    b = augment_crops(mel, 20, AugmentConfig(), torch.Generator().manual_seed(0))
    assert a.shape == (3, 20, 8) and torch.equal(a, b) and torch.isfinite(a).all()
    no_aug = augment_crops(mel, 50, AugmentConfig(gain_db=0, snr_db=(200.0, 200.0), tilt_db=0),
                           torch.Generator().manual_seed(0))
    assert torch.allclose(no_aug, mel, atol=0.05)  # only the 1e-10 power floor differs
    with pytest.raises(UserError):
        augment_crops(mel, 60, AugmentConfig(), torch.Generator().manual_seed(0))


def test_short_pretraining_reduces_loss():
    rng = np.random.default_rng(0)
    # 12 "tracks" with distinct spectral profiles
    profiles = rng.normal(0, 6, size=(12, 1, 16))
    mel = (profiles + rng.normal(0, 2, size=(12, 60, 16)) - 40).astype(np.float32)
    cfg = ViT1DConfig(n_mels=16, dim=32, depth=2, n_heads=4)
    model, hist = pretrain_vit1d(mel, cfg, PretrainConfig(steps=40, batch_size=12, crop_frames=20, lr=3e-3, seed=0))
    assert np.mean(hist["loss"][-5:]) < np.mean(hist["loss"][:5]) - 0.3
    assert not model.training
