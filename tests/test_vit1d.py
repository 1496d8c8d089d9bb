"""ViT-1D shapes, attention fast/slow path agreement, determinism and input checks."""
import numpy as np
import pytest
import torch

from harness.errors import UserError
from models.vit1d import ViT1DConfig, build_vit1d, extract_layers, sinusoidal_positions

torch.set_num_threads(1)
CFG = ViT1DConfig(n_mels=16, dim=32, depth=3, n_heads=4, mlp_ratio=2.0)


def test_shapes_and_layers():
    model = build_vit1d(CFG, seed=0)
    out = model(torch.randn(2, 25, 16), need_weights=True)
    assert out.cls.shape == (2, 32)
    assert out.sequence.shape == (2, 25, 32)
    assert len(out.hidden) == CFG.depth + 1 and all(h.shape == (2, 26, 32) for h in out.hidden)
    assert len(out.attentions) == CFG.depth
    for w in out.attentions:
        assert w.shape == (2, 4, 26, 26)
        assert torch.allclose(w.sum(-1), torch.ones(2, 4, 26), atol=1e-5)
    assert model(torch.randn(2, 25, 16)).attentions is None


def test_fast_path_matches_weights_path():
    model = build_vit1d(CFG, seed=1).eval()
    x = torch.randn(3, 40, 16)
    a, b = model(x), model(x, need_weights=True)
    assert torch.allclose(a.cls, b.cls, atol=1e-5)
    assert torch.allclose(a.sequence, b.sequence, atol=1e-5)


def test_seed_determinism_and_difference():
    x = torch.randn(1, 10, 16)
    a = build_vit1d(CFG, seed=3)(x).cls
    b = build_vit1d(CFG, seed=3)(x).cls
    c = build_vit1d(CFG, seed=4)(x).cls
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_class_token_is_position_aware_and_learnable():
    model = build_vit1d(CFG, seed=0)
    assert model.cls_token.requires_grad
    pos = sinusoidal_positions(50, 32)
    assert pos.shape == (50, 32)
    assert not torch.allclose(pos[0], pos[1])
    # the model is not permutation invariant over frames (positions are encoded)
    x = torch.randn(1, 12, 16)
    assert not torch.allclose(model(x).cls, model(x.flip(1)).cls, atol=1e-5)


def test_bad_input_raises_user_error():
    model = build_vit1d(CFG, seed=0)
    with pytest.raises(UserError):
        model(torch.randn(2, 10, 17))
    with pytest.raises(UserError):
        build_vit1d(ViT1DConfig(n_mels=16, dim=30, depth=1, n_heads=4), seed=0)


def test_extract_layers_windows():
    model = build_vit1d(CFG, seed=0)
    mel = np.random.default_rng(0).standard_normal((3, 47, 16)).astype(np.float32)
    res = extract_layers(model, mel, window_frames=20, batch_size=4,
                         attention_reducer=lambda w: w.mean(dim=(-3, -2))[..., 1:].numpy(), keep_attention_windows=2)
    n_win = 3 * 2
    assert res["tokens"].shape == (3, n_win, 20, 32)
    assert res["final_sequence"].shape == (n_win, 20, 32)
    assert res["attention_reduced"].shape == (3, n_win, 20)
    assert res["attention_maps"].shape == (3, 2, 4, 21, 21)
    np.testing.assert_array_equal(res["track"], [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(res["start_frame"], [0, 20] * 3)
    # the windowed run equals a direct forward pass on the same window
    direct = model(torch.as_tensor(mel[1:2, 20:40])).sequence.detach().numpy()
    np.testing.assert_allclose(res["final_sequence"][3], direct[0], atol=1e-5)
