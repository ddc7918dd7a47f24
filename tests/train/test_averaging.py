"""The averaged model (uts.train.averaging, PretrainConfig.average_period): the running average
is the plain mean of the snapshots at P, 2P, ... as Auden's update_averaged_model makes it, a
resumed average continues exactly, checkpoints carry it and evaluation loads it in preference to
the last weights (as Auden's generate_model_checkpoint_from_trainer_checkpoints does)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from uts.train import checkpoint
from uts.train.averaging import WeightAverage
from uts.train.config import PretrainConfig, preset


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.register_buffer("count", torch.tensor(0))  # an integer buffer: not averaged


def snapshots(n: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [{"linear.weight": torch.randn(3, 4, generator=generator), "linear.bias": torch.randn(3, generator=generator),
             "count": torch.tensor(i)} for i in range(n)]  # fmt: skip


def averaged_over(period: int, steps: int, states: list[dict[str, torch.Tensor]],
                  average: WeightAverage | None = None, start: int = 1) -> WeightAverage:  # fmt: skip
    """Steps start..steps of a model whose weights at step t are states[t - 1]."""
    net, average = Net(), average or WeightAverage(period)
    for step in range(start, steps + 1):
        net.load_state_dict(states[step - 1])
        assert average.update(net, step) == (step % period == 0)
    return average


def test_the_average_is_the_mean_of_every_periods_snapshot() -> None:
    states = snapshots(12)
    assert WeightAverage(3).state_dict() is None  # nothing before the first period
    average = averaged_over(3, 12, states).state_dict()
    assert average is not None
    for key in ("linear.weight", "linear.bias"):
        mean = torch.stack([states[t - 1][key] for t in (3, 6, 9, 12)]).mean(0)
        torch.testing.assert_close(average[key], mean, rtol=0, atol=1e-6)
        assert average[key].dtype == torch.float32
    assert int(average["count"]) == 11  # the current value, not a mean
    # at step 13 the average is still that of step 12
    assert torch.equal(averaged_over(3, 13, states + snapshots(13)[-1:]).state_dict()["linear.bias"], average["linear.bias"])  # fmt: skip


def test_a_resumed_average_continues_exactly_and_the_model_may_be_ddp_wrapped() -> None:
    states = snapshots(12)
    whole = averaged_over(3, 12, states).state_dict()
    first = averaged_over(3, 6, states).state_dict()
    assert first is not None
    resumed = averaged_over(3, 12, states, WeightAverage(3, first), start=7).state_dict()
    assert whole is not None and resumed is not None
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)

    class Wrapped(torch.nn.Module):  # what DDP looks like to the average: a .module
        def __init__(self) -> None:
            super().__init__()
            self.module = Net()

    wrapped = Wrapped()
    average = WeightAverage(2)
    average.update(wrapped, 2)
    assert set(average.state_dict() or {}) == {"linear.weight", "linear.bias", "count"}


def test_the_period_is_refused_unless_positive_and_the_presets_average() -> None:
    with pytest.raises(ValueError, match="positive number of steps"):
        WeightAverage(0)
    with pytest.raises(ValueError, match="average_period"):
        PretrainConfig(average_period=-1)
    assert PretrainConfig().average_period == 0  # off unless asked
    # Auden's examples/uts/configs/train.yaml: use_averaged_model True, average_period 200
    assert preset("m").average_period == 200
    assert preset("demo").average_period == 50  # snapshots at 50, 100, 150 of its 150 steps


def test_checkpoints_carry_the_average_and_evaluation_loads_it(tmp_path: Path) -> None:
    net = Net()
    trained, averaged = snapshots(2)
    net.load_state_dict(trained)
    plain, with_average = tmp_path / "plain", tmp_path / "averaged"
    for folder, average in ((plain, None), (with_average, averaged)):
        folder.mkdir()
        checkpoint.save(folder, model_state=net.state_dict(), training_state=None, state=None,
                        lineage={"config": {}}, averaged_state=average)  # fmt: skip
    assert checkpoint.load_average(plain) is None
    loaded = checkpoint.load_average(with_average)
    assert loaded is not None and all(torch.equal(loaded[k], averaged[k]) for k in averaged)
    # evaluation, serving and warm starts: the averaged weights where they exist
    assert torch.equal(
        checkpoint.load_weights(str(with_average))["linear.weight"], averaged["linear.weight"]
    )
    assert torch.equal(
        checkpoint.load_weights(str(plain))["linear.weight"], trained["linear.weight"]
    )
    # the embedding space is named by the weights evaluated
    assert checkpoint.weights_digest(str(plain)) != checkpoint.weights_digest(str(with_average))
    (with_average / "averaged.pt").unlink()
    assert checkpoint.weights_digest(str(plain)) == checkpoint.weights_digest(str(with_average))
