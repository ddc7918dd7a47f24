"""The search space of a sweep: vocabulary size K (categorical) and, for multitask, the weight lambda.

    space = SweepSpace(objective="multitask", ks=(800, 1500), lam_range=(0.1, 10.0), lam_log=True)
    params = space.suggest(trial)          # {"k": 1500, "lam": 0.73}
    GridSampler(space.grid())              # {"k": [800, 1500], "lam": [0.1, 1.0, 10.0]}

The lambda grid of `--sampler grid` is `lam_points` values from the range's low end to its high end,
geometrically spaced when the low end is positive (0.1, 1, 10 for 0.1..10 and 3 points: lambda is a
ratio of two losses, so equal ratios between neighbours), linearly when it is 0. Midpoints are rounded
to 4 significant digits so they read well in run names and command lines; the ends are exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import optuna

__all__ = ["OBJECTIVES", "SweepSpace", "parse_ks", "parse_range"]

OBJECTIVES = ("mtc", "multitask")  # the objectives the paper's K / lambda ablation sweeps


def parse_ks(text: str) -> tuple[int, ...]:
    """`800,1000,1500` -> (800, 1000, 1500). Raises ValueError naming the bad entry."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or not any(items):
        raise ValueError("--k is empty: give vocabulary sizes such as 800,1000,1500")
    ks: list[int] = []
    for item in items:
        if not item:
            raise ValueError(f"--k {text!r} has an empty entry")
        try:
            k = int(item)
        except ValueError:
            raise ValueError(f"--k entry {item!r} is not an integer") from None
        if k <= 0:
            raise ValueError(f"--k entry {k} must be positive")
        if k in ks:
            raise ValueError(f"--k lists {k} twice")
        ks.append(k)
    return tuple(ks)


def parse_range(text: str) -> tuple[float, float]:
    """`0.1,10` -> (0.1, 10.0). Raises ValueError when it is not two numbers with min < max."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2:
        raise ValueError(f"--lam-range {text!r} must be two numbers: MIN,MAX")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"--lam-range {text!r} must be two numbers: MIN,MAX") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"--lam-range {text!r} must be finite")
    return low, high


@dataclass(frozen=True, kw_only=True)
class SweepSpace:
    """What a trial chooses. Raises ValueError on construction when the space is invalid."""

    objective: str
    ks: tuple[int, ...]
    lam_range: tuple[float, float] = (0.1, 10.0)
    lam_log: bool = False
    lam_points: int = 3  # lambda values in the grid (--sampler grid)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"--objective {self.objective!r}: sweeps know {', '.join(OBJECTIVES)}")
        if not self.ks:
            raise ValueError("--k is empty: give vocabulary sizes such as 800,1000,1500")
        if any(not isinstance(k, int) or k <= 0 for k in self.ks) or len(set(self.ks)) != len(
            self.ks
        ):
            raise ValueError(f"--k {list(self.ks)} must be distinct positive integers")
        if not self.searches_lam:
            return
        low, high = self.lam_range
        if low >= high:
            raise ValueError(f"--lam-range {low:g},{high:g}: the minimum must be below the maximum")
        if low < 0:
            raise ValueError(
                f"--lam-range {low:g},{high:g}: lambda weighs a loss and cannot be negative"
            )
        if self.lam_log and low <= 0:
            raise ValueError(
                f"--lam-range {low:g},{high:g} with --lam-log: the minimum must be > 0"
            )
        if self.lam_points < 1:
            raise ValueError(f"--lam-grid must be >= 1, got {self.lam_points}")

    @property
    def searches_lam(self) -> bool:
        """Only multitask has a lambda (L = L_mtc + lambda * L_gen); mtc's is absent."""
        return self.objective == "multitask"

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """The trial's parameters: {"k": K} or {"k": K, "lam": lambda}."""
        params: dict[str, Any] = {"k": int(trial.suggest_categorical("k", list(self.ks)))}
        if self.searches_lam:
            low, high = self.lam_range
            params["lam"] = float(trial.suggest_float("lam", low, high, log=self.lam_log))
        return params

    def lam_grid(self) -> list[float]:
        """The lambda values of the grid (see the module docstring)."""
        low, high = self.lam_range
        n = self.lam_points
        if n == 1:  # the middle of the range
            return [float(f"{math.sqrt(low * high) if low > 0 else (low + high) / 2:.4g}")]
        if low > 0:
            inner = [low * (high / low) ** (i / (n - 1)) for i in range(1, n - 1)]
        else:
            inner = [low + (high - low) * i / (n - 1) for i in range(1, n - 1)]
        return [low, *(float(f"{v:.4g}") for v in inner), high]

    def grid(self) -> dict[str, list[Any]]:
        """The search space of `optuna.samplers.GridSampler`."""
        space: dict[str, list[Any]] = {"k": list(self.ks)}
        if self.searches_lam:
            space["lam"] = self.lam_grid()
        return space

    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ks"], out["lam_range"] = list(self.ks), list(self.lam_range)
        return out
