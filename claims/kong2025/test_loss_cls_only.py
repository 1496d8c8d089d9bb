"""Kong et al. 2025, implementation invariant: the NT-Xent loss sees the final class token only."""
import torch

from analysis.stats import Estimate
from claims.kong2025.pipeline import CI_SETTINGS, PAPER_SETTINGS, bundle_for, lab_tier
from claims.papers import KONG2025
from harness import Claim, Criterion, Evidence, Tier, claim
from models.contrastive import AugmentConfig, augment_crops, nt_xent, random_init_like

SPEC = Claim(
    id="kong2025.loss.cls_only",
    paper=KONG2025,
    finding="Training uses the NT-Xent loss computed on the class token only.",
    reported=None,
    statistic="on the pre-trained model and held-out crops: |loss change| when the final block's sequence "
              "outputs are replaced by random values, and the norm of the loss gradient at those outputs",
    unit="exact (one deterministic batch)",
    criteria=[
        Criterion("loss_change", "<=", 1e-6, source="ours (implementation invariant)"),
        Criterion("sequence_grad_norm", "<=", 0.0, source="ours (implementation invariant)"),
    ],
    controls={"sequence_mean_loss": "FAIL"},
    control_notes={"sequence_mean_loss": "the same NT-Xent on time-averaged final sequence tokens: it must "
                                         "depend on the sequence outputs"},
    tiers={
        "ci": Tier(settings=CI_SETTINGS, expect="PASS"),
        "paper": Tier(settings=PAPER_SETTINGS, expect="PASS", data=("music_audio",)),
        "lab": lab_tier(),
    },
    notes="an invariant of our implementation, shown in the ledger",
)


def invariant(model, va, vb, embed, seed: int) -> dict:
    """Loss change under replaced final sequence outputs, and the gradient norm at them."""
    g = torch.Generator().manual_seed(seed)
    captured = {}

    def keep(_m, _i, out):
        captured["x"] = out[0]
        out[0].retain_grad()

    h = model.blocks[-1].register_forward_hook(keep)
    try:
        oa = model(va)
        x_a = captured["x"]
        loss = nt_xent(embed(oa), embed(model(vb)))
        loss.backward()
    finally:
        h.remove()
    grad = x_a.grad[:, 1:] if x_a.grad is not None else torch.zeros(1)
    noise = 10.0 * torch.randn(x_a.shape[0], x_a.shape[1] - 1, x_a.shape[2], generator=g)

    def replace(_m, _i, out):
        x, w = out
        return torch.cat([x[:, :1], noise.to(x.dtype)], dim=1), w

    h = model.blocks[-1].register_forward_hook(replace)
    try:
        with torch.no_grad():
            replaced = nt_xent(embed(model(va)), embed(model(vb)))
    finally:
        h.remove()
    with torch.no_grad():
        base = nt_xent(embed(model(va)), embed(model(vb)))
    return {"loss": float(base), "loss_change": abs(float(replaced) - float(base)),
            "sequence_grad_norm": float(grad.norm())}


@claim(SPEC)
def test_loss_cls_only(run):
    bundle = bundle_for(run)
    cfg = bundle.cfg
    model = random_init_like(bundle.mel[bundle.splits["pre"]], bundle.model_config, cfg.seed)
    model.load_state_dict(bundle.trained_state)
    mel = torch.as_tensor(bundle.mel[bundle.splits["test"][:16]])
    gen = torch.Generator().manual_seed(cfg.seed)
    va = augment_crops(mel, cfg.crop_frames, AugmentConfig(), gen)
    vb = augment_crops(mel, cfg.crop_frames, AugmentConfig(), gen)
    main = invariant(model, va, vb, lambda o: o.cls, cfg.seed)
    model.zero_grad(set_to_none=True)
    ctrl = invariant(model, va, vb, lambda o: o.sequence.mean(1), cfg.seed)
    run.log_values({"cls_loss": main, "sequence_mean_loss": ctrl})

    def ev(d):
        return Evidence({"loss_change": Estimate.point(d["loss_change"]),
                         "sequence_grad_norm": Estimate.point(d["sequence_grad_norm"])}, values=d)

    return {"main": ev(main), "sequence_mean_loss": ev(ctrl)}
