"""Multi-task: L = L_mtc + lambda * L_gen, with L_gen AR for each clip with probability p_ar (0.25)
and PAR otherwise (0.75), drawn per clip per step. L_gen averages token cross-entropy over the
real target tokens of both groups together; L_mtc averages over clips and tags (see mtc.py)."""

from __future__ import annotations

import torch
from torch import nn

from uts.objectives.base import Batch, Outputs
from uts.objectives.generative import Generative, token_loss_sum
from uts.objectives.mtc import MTC

__all__ = ["MultiTask"]


class MultiTask(nn.Module):
    name = "multitask"

    def __init__(
        self, mtc: MTC, generative: Generative, *, lam: float = 1.0, p_ar: float = 0.25
    ) -> None:
        super().__init__()
        if not 0.0 <= p_ar <= 1.0:
            raise ValueError(f"p_ar must be in [0, 1], got {p_ar}")
        self.mtc, self.generative, self.lam, self.p_ar = mtc, generative, lam, p_ar

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> Outputs:
        outputs = {"mtc_logits": self.mtc(frames, lengths, batch)["logits"]}
        use_ar = torch.rand(frames.shape[0], device=frames.device) < self.p_ar
        outputs["use_ar"] = use_ar
        for mode, rows in (("ar", use_ar), ("par", ~use_ar)):
            if rows.any():
                part = self.generative.decode(
                    frames[rows],
                    lengths[rows],
                    batch["tag_ids"][rows],
                    batch["tag_lens"][rows],
                    mode,
                )
                outputs[f"{mode}_logits"], outputs[f"{mode}_targets"] = (
                    part["logits"],
                    part["targets"],
                )
        return outputs

    def loss(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, float]]:
        mtc, metrics = self.mtc.loss(batch, {"logits": outputs["mtc_logits"]})
        total = outputs["mtc_logits"].new_zeros(())
        count = 0
        for mode in ("ar", "par"):
            if f"{mode}_logits" in outputs:
                part, n = token_loss_sum(outputs[f"{mode}_logits"], outputs[f"{mode}_targets"])
                total, count = total + part, count + n
        generative = total / max(count, 1)
        loss = mtc + self.lam * generative
        metrics.update(
            loss_gen=float(generative.detach()),
            loss=float(loss.detach()),
            ar_share=float(outputs["use_ar"].float().mean()),
        )
        return loss, metrics
