"""ScaledAdam's adaptive gradient clipping and GradScaler-skipped steps (issue 21, item 5); the
update itself against icefall's equations is in test_optim_icefall.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from uts.train import Eden, ScaledAdam, train_step

LR, SCALE = 0.05, 2.0


def params() -> list[nn.Parameter]:
    """A matrix and a scalar: the two kinds ScaledAdam weights differently in the clip norm."""
    torch.manual_seed(0)
    return [nn.Parameter(torch.randn(6, 4)), nn.Parameter(torch.tensor([0.5]))]


def norm_of(ps: list[nn.Parameter], grads: list[torch.Tensor], opt: ScaledAdam) -> float:
    """The reference normalised norm: each tensor's grad times its RMS as the optimiser last
    recorded it (its current RMS before the first step), scalars' times scale_lr, as icefall's
    ScaledAdam._get_clipping_scale measures it."""
    group = opt.param_groups[0]
    total = 0.0
    for p, g in zip(ps, grads, strict=True):
        if p.numel() == 1:
            total += float((g * group["scale_lr"]).pow(2).sum())
        else:
            state = opt.state.get(p, {})
            rms = state.get("param_rms", p.detach().pow(2).mean().sqrt())
            total += float((g * rms).pow(2).sum())
    return total**0.5


def grads_of_norm(ps: list[nn.Parameter], opt: ScaledAdam, norm: float) -> list[torch.Tensor]:
    """Random gradients scaled so that their normalised norm is exactly `norm`."""
    grads = [torch.randn_like(p) for p in ps]
    return [g * (norm / norm_of(ps, grads, opt)) for g in grads]


def step(opt: ScaledAdam, ps: list[nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(ps, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def test_no_clipping_by_default_and_an_unreached_threshold_changes_nothing() -> None:
    ps_a, ps_b = params(), params()
    plain = ScaledAdam(ps_a, lr=LR)
    clipped = ScaledAdam(ps_b, lr=LR, clipping_scale=1e9, clipping_update_period=4)
    torch.manual_seed(1)
    for _ in range(12):
        grads = [torch.randn_like(p) for p in ps_a]
        step(plain, ps_a, grads)
        step(clipped, ps_b, grads)
    assert plain.clip_threshold() is None and clipped.clip_threshold() is not None
    for a, b in zip(ps_a, ps_b, strict=True):
        assert torch.equal(a, b)


def test_threshold_is_clipping_scale_times_the_median_of_recent_norms() -> None:
    ps = params()
    opt = ScaledAdam(ps, lr=LR, clipping_scale=SCALE, clipping_update_period=5)
    torch.manual_seed(2)
    step(opt, ps, grads_of_norm(ps, opt, 1.0))  # step 1: no RMS history, not recorded (icefall)
    for window in ([1.0, 3.0, 2.0, 9.0, 4.0], [30.0, 10.0, 50.0, 20.0, 40.0]):
        for norm in window:
            step(opt, ps, grads_of_norm(ps, opt, norm))
        median = sorted(window)[2]
        # every norm is below 2 * median except the outliers, which are clipped but recorded
        assert opt.clip_threshold() == pytest.approx(SCALE * median, rel=1e-5)


def test_first_estimate_at_step_ten_uses_a_doubled_threshold() -> None:
    ps = params()
    opt = ScaledAdam(ps, lr=LR, clipping_scale=SCALE)  # period 100: early estimates at 10, 20, 40
    torch.manual_seed(3)
    step(opt, ps, grads_of_norm(ps, opt, 1.0))
    norms = [float(n) for n in torch.rand(10) + 0.5]
    for i, norm in enumerate(norms):
        assert opt.clip_threshold() is None, f"threshold set early, after {i} norms"
        step(opt, ps, grads_of_norm(ps, opt, norm))
    lower_median = sorted(norms)[4]
    assert opt.clip_threshold() == pytest.approx(2 * SCALE * lower_median, rel=1e-5)


def test_a_huge_gradient_is_clipped_to_the_threshold() -> None:
    ps = params()
    opt = ScaledAdam(ps, lr=LR, clipping_scale=SCALE, clipping_update_period=8)
    torch.manual_seed(4)
    for _ in range(1 + 8):  # warm-up: one unrecorded step, then a full period of normal norms
        step(opt, ps, grads_of_norm(ps, opt, 1.0))
    threshold = opt.clip_threshold()
    assert threshold == pytest.approx(SCALE * 1.0, rel=1e-5)
    huge = [g * 1e6 for g in grads_of_norm(ps, opt, 1.0)]
    factor = threshold / norm_of(ps, huge, opt)
    assert factor < 1e-5

    # reference: the same optimiser without clipping, fed the gradient scaled to the threshold
    ref_ps = [nn.Parameter(p.detach().clone()) for p in ps]
    ref = ScaledAdam(ref_ps, lr=LR)
    ref.load_state_dict(copy.deepcopy(opt.state_dict()))  # load_state_dict shares tensors
    ref.param_groups[0]["clipping_scale"] = None
    v_before = [opt.state[p]["exp_avg_sq"].clone() for p in ps]
    measured = norm_of(ps, [g * factor for g in huge], opt)  # with the rms recorded before

    step(opt, ps, huge)
    step(ref, ref_ps, [g * factor for g in huge])

    beta2 = opt.param_groups[0]["betas"][1]
    # the gradient that entered the second moment has the threshold's normalised norm ...
    entered = [
        ((opt.state[p]["exp_avg_sq"] - beta2 * v) / (1 - beta2)).clamp(min=0).sqrt()
        for p, v in zip(ps, v_before, strict=True)
    ]
    assert measured == pytest.approx(threshold, rel=1e-5)
    # (step 9 is no size-update step, so the recorded rms norm_of reads is still the same)
    assert norm_of(ps, entered, opt) == pytest.approx(threshold, rel=1e-4)
    # ... so the update is exactly the reference's (unclipped optimiser, gradient scaled down)
    for p, r in zip(ps, ref_ps, strict=True):
        torch.testing.assert_close(p.detach(), r.detach(), rtol=1e-5, atol=1e-7)


def test_clipping_state_resumes_and_old_state_dicts_load() -> None:
    ps = params()
    opt = ScaledAdam(ps, lr=LR, clipping_scale=SCALE, clipping_update_period=4)
    torch.manual_seed(5)
    for _ in range(6):
        step(opt, ps, grads_of_norm(ps, opt, 1.0))
    resumed = ScaledAdam(params(), lr=LR, clipping_scale=SCALE, clipping_update_period=4)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert resumed.clip_threshold() == opt.clip_threshold()
    old: dict[str, Any] = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:  # as saved before clipping existed
        del group["clipping_scale"], group["clipping_update_period"]
    legacy = ScaledAdam(params(), lr=LR)
    legacy.load_state_dict(old)
    assert legacy.param_groups[0]["clipping_scale"] is None
    step(legacy, legacy.param_groups[0]["params"], [torch.ones(6, 4), torch.ones(1)])


class Linear(nn.Module):
    """The smallest model train_step accepts: forward(batch, with_loss) -> (loss, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((4, 3), 0.1))

    def forward(self, batch: dict[str, Any], with_loss: bool = True) -> Any:
        loss = (batch["feats"] @ self.weight).square().mean()
        return loss, {}


def test_an_fp16_overflow_step_is_reported_as_not_stepped() -> None:
    model = Linear()
    optimizer = ScaledAdam(model.parameters(), lr=LR, clipping_scale=SCALE)
    scheduler = Eden(optimizer, warmup_steps=2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    # the loss (~1.6e35) is finite in fp32; its scaled gradient (~65536 * 1e35) is not
    overflow = {"feats": torch.full((2, 4), 1e18)}
    before = model.weight.detach().clone()
    metrics = train_step(model, overflow, optimizer, scheduler=scheduler, scaler=scaler)
    assert torch.isfinite(torch.tensor(metrics["loss"]))
    assert metrics["stepped"] == 0.0 and metrics["skipped"] == 0.0
    assert metrics["grad_scale"] == 2.0**15  # GradScaler's backoff after an overflow
    assert torch.equal(model.weight.detach(), before) and not optimizer.state
    assert scheduler.last_epoch == 0  # the schedule did not advance either

    good = {"feats": torch.randn(2, 4)}
    metrics = train_step(model, good, optimizer, scheduler=scheduler, scaler=scaler)
    assert metrics["stepped"] == 1.0 and metrics["grad_scale"] == 2.0**15
    assert not torch.equal(model.weight.detach(), before) and scheduler.last_epoch == 1


def test_steps_without_a_scaler_report_stepped() -> None:
    model = Linear()
    optimizer = ScaledAdam(model.parameters(), lr=LR)
    metrics = train_step(model, {"feats": torch.randn(2, 4)}, optimizer)
    assert metrics["stepped"] == 1.0 and "grad_scale" not in metrics
    nan = train_step(model, {"feats": torch.full((2, 4), float("nan"))}, optimizer)
    assert nan["skipped"] == 1.0 and nan["stepped"] == 0.0
