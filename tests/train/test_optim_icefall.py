"""ScaledAdam's update against icefall's, step for step (issue 21, item 5).

The reference below is written out from the equations of icefall's
egs/librispeech/ASR/zipformer/optim.py (basic_step, scaling_step, momentum_step, ScaledAdam.step
and _get_clipping_scale), one tensor at a time in plain torch, without the stacking of
same-shaped tensors (which only saves kernel launches)."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import pytest
import torch
from torch import nn

from uts.train.optim import Eden, ScaledAdam, build_optimizer

STEPS = 13
HP: dict[str, Any] = {
    "lr": 0.5, "betas": (0.9, 0.98), "scale_lr": 0.1, "eps": 1e-8, "min_rms": 1e-5,
    "max_rms": 3.0, "scalar_max": 10.0, "size_update_period": 4, "clipping_update_period": 4,
}  # fmt: skip


def initial() -> list[torch.Tensor]:
    """A matrix, a vector above max_rms, a matrix below min_rms, a scalar, a scalar near its cap."""
    torch.manual_seed(0)
    return [
        0.5 * torch.randn(6, 4),
        3.2 + 0.05 * torch.randn(5),
        1e-6 * torch.randn(3, 3),
        torch.tensor([0.5]),
        torch.tensor(9.9),
    ]


def gradients(values: list[torch.Tensor], step: int) -> list[torch.Tensor]:
    """Gradients that vary in size from step to step (so clipping bites), that shrink the first
    matrix, grow the vector, and push the second scalar up against scalar_max."""
    gen = torch.Generator().manual_seed(100 + step)
    size = math.exp(2.0 * float(torch.randn(1, generator=gen)))
    noise = [torch.randn(v.shape, generator=gen) for v in values]
    return [
        size * (noise[0] + 2.0 * values[0]),
        size * (0.1 * noise[1] - values[1]),
        size * noise[2],
        size * noise[3],
        -torch.ones(()),
    ]


def reference(hp: dict[str, Any]) -> tuple[list[list[torch.Tensor]], dict[str, int]]:
    """icefall's ScaledAdam on `initial()` fed `gradients()`: the values after every step, and
    how often each limiting branch was taken (so the test can tell they were exercised)."""
    lr, eps, slr, clipping_scale = hp["lr"], hp["eps"], hp["scale_lr"], hp["clipping_scale"]
    beta1, beta2 = hp["betas"]
    period, clip_period = hp["size_update_period"], hp["clipping_update_period"]
    p = [v.clone() for v in initial()]
    scalar = [v.numel() == 1 for v in p]
    exp_avg_sq = [torch.zeros_like(v) for v in p]
    momentum = [torch.zeros_like(v) for v in p]
    rms: list[torch.Tensor] = [torch.zeros(()) for _ in p]
    scale_grads = [torch.zeros(period) for _ in p]
    scale_sq = [torch.zeros(()) for _ in p]
    model_norms = torch.zeros(clip_period)
    threshold: float | None = None
    hits = {"clipped": 0, "scale_clamp": 0, "max_rms": 0, "too_small": 0, "scalar_max": 0}
    history = []
    for step in range(STEPS):
        grads = gradients(p, step)
        # --- _get_clipping_scale: nothing on step 0; the rms is the recorded one
        factor = 1.0
        if clipping_scale is not None and step > 0:
            sumsq = torch.zeros(())
            for i, g in enumerate(grads):
                sumsq += (g**2).sum() * slr**2 if scalar[i] else ((g * rms[i]) ** 2).sum()
            norm = sumsq.sqrt()
            model_norms[step % clip_period] = norm
            irregular = [s for s in (10, 20, 40) if s < clip_period]
            if step % clip_period == 0 or step in irregular:
                ranked = model_norms.sort().values
                if step in irregular:
                    ranked = ranked[-step:]
                median = float(ranked[min(ranked.numel() - 1, (ranked.numel() // 4) * 2)])
                threshold = clipping_scale * median * (2.0 if step in irregular else 1.0)
            if threshold is not None:
                factor = min(1.0, threshold / (float(norm) + 1e-20))
                hits["clipped"] += factor < 1.0
        for i in range(len(p)):
            g = grads[i] * factor
            # --- basic_step
            exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1 - beta2) * g * g
            bias = 1 - beta2 ** (step + 1)
            second = exp_avg_sq[i] / bias if bias < 0.99 else exp_avg_sq[i]
            change = -(lr * slr if scalar[i] else lr) * g / (second.sqrt() + eps)
            # --- scaling_step
            if not scalar[i]:
                if step == 0:
                    rms[i] = (p[i] ** 2).mean().sqrt()
                scale_grads[i][step % period] = (p[i] * g).sum()
                window_end = step % period == period - 1
                if window_end:
                    rms[i] = (p[i] ** 2).mean().sqrt()
                change = change * torch.clamp(rms[i], min=hp["min_rms"])
                if window_end and step > 0:
                    decay = beta2**period
                    scale_sq[i] = decay * scale_sq[i] + (1 - decay) * (scale_grads[i] ** 2).mean()
                    windows = (step + 1) // period
                    bias = 1 - decay**windows
                    size = -lr * slr * math.sqrt(bias) * scale_grads[i].sum()
                    size = size / (scale_sq[i].sqrt() + eps)
                    if rms[i] < hp["min_rms"]:
                        size = torch.zeros(())
                        hits["too_small"] += 1
                    hits["scale_clamp"] += abs(float(size)) > 0.1
                    size = torch.clamp(size, -0.1, 0.1)
                    cap = (hp["max_rms"] - rms[i]) / rms[i]
                    hits["max_rms"] += bool(size > cap)
                    size = torch.minimum(size, cap)
                    change = change + p[i] * size
            # --- momentum_step, then ScaledAdam.step's clamp of scalars
            momentum[i] = beta1 * momentum[i] + (1 - beta1) * change
            p[i] = p[i] + momentum[i]
            if scalar[i]:
                hits["scalar_max"] += bool(p[i].abs() > hp["scalar_max"])
                p[i] = p[i].clamp(-hp["scalar_max"], hp["scalar_max"])
        history.append([v.clone() for v in p])
    return history, hits


def ours(hp: dict[str, Any], steps: int = STEPS) -> list[list[torch.Tensor]]:
    params = [nn.Parameter(v.clone()) for v in initial()]
    opt = ScaledAdam(params, **hp)
    history = []
    for step in range(steps):
        for p, g in zip(params, gradients([p.detach() for p in params], step), strict=True):
            p.grad = g
        opt.step()
        history.append([p.detach().clone() for p in params])
    return history


CASES = {
    "defaults": {"clipping_scale": None},
    "clipping": {"clipping_scale": 2.0},
    # beta2 0.5: Adam's bias correction stops at step 6 (1 - 0.5^7 > 0.99); a size update
    # every step (but never on step 0); a clipping period of 12, so the first threshold is
    # the doubled early estimate at step 10
    "fast": {
        "lr": 1.0,
        "clipping_scale": 2.0,
        "betas": (0.9, 0.5),
        "size_update_period": 1,
        "clipping_update_period": 12,
    },
}


@pytest.mark.parametrize("case", CASES)
def test_the_update_matches_icefalls_step_for_step(case: str) -> None:
    hp = HP | CASES[case]
    expected, hits = reference(hp)
    # every limiting branch was taken: size updates hit the +-0.1 clamp, the max_rms cap and
    # the min_rms freeze, clipping bit, and the capped scalar sits at scalar_max
    assert hits["scale_clamp"] and hits["max_rms"] and hits["too_small"], hits
    assert hits["scalar_max"] and (hp["clipping_scale"] is None or hits["clipped"]), hits
    for step, (got, want) in enumerate(zip(ours(hp), expected, strict=True)):
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            # to 1e-6, and for the tensor far below 1 to 1e-6 of its own RMS
            scale = min(1.0, float(b.pow(2).mean().sqrt()))
            torch.testing.assert_close(
                a, b, rtol=1e-6, atol=1e-6 * scale,
                msg=lambda m, s=step, i=i: f"step {s}, tensor {i}: {m}",
            )  # fmt: skip


def test_scalars_stay_within_scalar_max() -> None:
    scalar = nn.Parameter(torch.tensor(9.0))
    opt = ScaledAdam([scalar], lr=5.0, scalar_max=10.0)
    for sign in (-1.0, 1.0):  # pushed up for 80 steps, then down for 80
        for _ in range(80):
            scalar.grad = torch.tensor(sign)
            opt.step()
            assert abs(float(scalar.detach())) <= 10.0
        assert float(scalar.detach()) == sign * -10.0


def _run(opt: ScaledAdam, params: list[nn.Parameter], steps: range) -> None:
    for step in steps:
        for p, g in zip(params, gradients([p.detach() for p in params], step), strict=True):
            p.grad = g
        opt.step()


def test_state_dict_round_trip_resumes_bit_exactly() -> None:
    params = [nn.Parameter(v.clone()) for v in initial()]
    opt = ScaledAdam(params, clipping_scale=2.0, **HP)
    _run(opt, params, range(6))  # stop mid-way through a size-update window
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    copies = [nn.Parameter(p.detach().clone()) for p in params]
    resumed = ScaledAdam(copies, clipping_scale=2.0, **HP)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    _run(opt, params, range(6, 14))
    _run(resumed, copies, range(6, 14))
    for a, b in zip(params, copies, strict=True):
        assert torch.equal(a, b)
    assert opt.clip_threshold() == resumed.clip_threshold() is not None


def legacy_state(params: list[nn.Parameter], *, clipping: bool) -> dict[str, Any]:
    """A state dict as the paper-based ScaledAdam saved it: per tensor step, m, v and the 0-d
    scale_m, scale_v (clipping statistics in the first); groups without the newer keys."""
    torch.manual_seed(9)
    state: dict[int, dict[str, Any]] = {
        i: {"step": 6, "m": torch.randn_like(p), "v": torch.rand_like(p),
            "scale_m": torch.randn(()), "scale_v": torch.rand(())}
        for i, p in enumerate(params)
    }  # fmt: skip
    group: dict[str, Any] = {"lr": 0.05, "betas": (0.9, 0.98), "scale_lr": 0.1, "eps": 1e-8,
                             "min_rms": 1e-5, "max_rms": 3.0, "params": list(range(len(params)))}  # fmt: skip
    if clipping:
        group |= {"clipping_scale": 2.0, "clipping_update_period": 4}
        state[0] |= {"clip_norms": torch.rand(4), "clip_count": 5, "clip_threshold": 1.5}
    return {"state": state, "param_groups": [group]}


@pytest.mark.parametrize("clipping", [False, True])
def test_state_saved_by_the_earlier_optimiser_loads(clipping: bool) -> None:
    params = [nn.Parameter(v.clone()) for v in initial()]
    old = legacy_state(params, clipping=clipping)
    opt = ScaledAdam(params, lr=0.05)
    opt.load_state_dict(copy.deepcopy(old))
    group = opt.param_groups[0]
    assert group["size_update_period"] == 4 and group["scalar_max"] == 10.0
    assert group["clipping_scale"] == (2.0 if clipping else None)
    for i, p in enumerate(params):
        state, was = opt.state[p], old["state"][i]
        assert not {"m", "v", "scale_m", "scale_v"} & state.keys()
        assert state["step"] == 6 and torch.equal(state["exp_avg_sq"], was["v"])  # the same
        assert not state["delta"].any()  # momentum restarts
        if p.numel() > 1:
            assert torch.equal(state["scale_exp_avg_sq"], was["scale_v"])
            assert torch.equal(state["param_rms"], p.detach().pow(2).mean().sqrt())
            assert state["scale_grads"].shape == (4,) and not state["scale_grads"].any()
    if clipping:
        assert opt.clip_threshold() == 1.5 and opt.state[params[0]]["clip_count"] == 5
    # it steps like an optimiser that had reached that state itself, and saves in today's layout
    before = [p.detach().clone() for p in params]
    _run(opt, params, range(6, 10))
    assert all(
        torch.isfinite(p).all() and not torch.equal(p, b)
        for p, b in zip(params, before, strict=True)
    )
    saved = opt.state_dict()["state"][0]
    assert "delta" in saved and "m" not in saved and saved["step"] == 10


def test_build_optimizer_and_the_public_names_are_unchanged() -> None:
    model = nn.Linear(3, 2)
    opt, schedule = build_optimizer(model, "scaled_adam", clipping_scale=2.0, warmup_steps=1)
    assert isinstance(opt, ScaledAdam) and isinstance(schedule, Eden)
    group = opt.param_groups[0]
    assert group["initial_lr"] == 0.045 and group["clipping_scale"] == 2.0
