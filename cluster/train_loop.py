"""The loop every Ray Train worker runs, as named steps read top to bottom:

    setup        model, optimiser, scheduler, precision (autocast dtype, GradScaler for fp16);
                 weights from Ray Train's checkpoint or a warm start, DDP, then the optimiser
                 state (on the device); tokenizers; the dataset shards
    next batch   a duration-bounded group of examples; an epoch ends for every rank at once
    train step   one optimiser step (uts.train.train_step), skipped steps counted
    log          every `log_every` steps: loss, lr, throughput and data-wait (rank 0 prints)
    validate     every `validate_every` steps: loss (and tag mAP) on every rank's held-out clips
    checkpoint   every `checkpoint_every` steps (a multiple of validate_every) and at the end:
                 validation, then every rank reports and rank 0 attaches the checkpoint
                 (uts.train.checkpoint writes it)

Data order: Ray Data hands each epoch's blocks out in a new random order (cluster/train_data.py),
and each rank shuffles its clips within duration buckets with its own seed (config seed, epoch,
rank), so ranks never see the same order and an epoch never repeats the last one. The weights
start the same on every rank (seeded by the config's seed); after that each rank reseeds torch
from (seed, rank, step), so SpecAugment, dropout and layer skipping differ across ranks and a
resumed run does not replay the random draws of its first steps.

Ranks step in lock-step: an epoch ends for everyone when any rank runs out of batches (the others
drain theirs), so DDP never waits on a rank that has stopped. Resume = the same run name and store:
Ray Train hands the latest checkpoint back (`ray.train.get_checkpoint()`), including after a worker
dies mid-run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cluster.collective import Collective
from cluster.tensorboard import Writer
from cluster.train_data import epoch_share, examples
from uts.train import checkpoint as checkpoints
from uts.train.averaging import WeightAverage
from uts.train.config import PretrainConfig, resolve_precision
from uts.train.memory import peak_mb
from uts.train.optim import load_optimizer_state

__all__ = ["train_loop"]


def train_loop(payload: dict[str, Any]) -> None:
    """Every worker runs this. payload: config (dict), lineage (dict), init_from (URI or None),
    run_dir (the run's folder URI), preload (bool), tag_prior (K floats or None)."""
    worker = _Worker(payload)
    config, state = worker.config, worker.state
    while state["step"] < config.max_steps:
        group = worker.next_group()
        if group is None:  # the epoch ended (on every rank)
            continue
        metrics = worker.train_step(group)
        if metrics is None:  # a skipped step (non-finite loss): not counted
            continue
        step, last = state["step"], state["step"] == config.max_steps
        if step % config.log_every == 0 or last:
            worker.log(metrics)
        if step % config.checkpoint_every == 0 or last:  # (a multiple of validate_every)
            worker.checkpoint(metrics)
        elif step % config.validate_every == 0:
            worker.validate()
    worker.close()


@dataclass
class _Window:
    """Wall time, time spent waiting for data, and audio seconds trained since a mark (the last
    log line, or the last checkpoint)."""

    start: float = field(default_factory=time.perf_counter)
    wait: float = 0.0
    seconds: float = 0.0

    def elapsed(self) -> float:
        return max(time.perf_counter() - self.start, 1e-9)


class _Worker:
    """One rank's training state and its steps (see the module docstring for the order)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        """Setup: build, resume or warm start, wrap for DDP, open the data shards."""
        import ray.train
        import ray.train.torch

        from uts.train import SkipGuard

        self.payload = payload
        self.config = config = PretrainConfig(**payload["config"])
        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.collective = Collective(self.world, self.device)
        model, self.optimizer, self.scheduler = _build(
            config, self.rank, self.world, self.collective.gather_padded, payload.get("tag_prior")
        )
        # "fp32", "bf16" (autocast only) or "fp16" (autocast + GradScaler); see resolve_precision.
        self.precision = resolve_precision(config.precision, self.device.type,
                                           bf16_supported=_cuda_bf16(self.device))  # fmt: skip
        self.autocast_dtype = _AUTOCAST[self.precision]
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "skipped": 0, "audio_seconds": 0.0,
                                      "history": []}  # fmt: skip
        # Resume in two halves around prepare_model: weights into the CPU model first, then, once
        # the model sits on its device, the optimiser state, which load_state_dict casts to the
        # device of the parameters it belongs to (loaded before the move, it would stay on CPU).
        saved = ray.train.get_checkpoint()
        training: dict[str, Any] | None = None
        averaged: dict[str, Any] | None = None
        if saved is not None:
            with saved.as_directory() as folder:
                model_state, training, state = checkpoints.load_training(Path(folder))
                if config.average_period and self.rank == 0:  # the only rank that averages
                    averaged = checkpoints.load_average(Path(folder))
            checkpoints.restore(model, model_state, "the run's latest checkpoint")
            self.state.update(state)
        elif payload.get("init_from"):
            source = payload["init_from"]  # a warm start
            checkpoints.restore(model, checkpoints.load_weights(source), source)
        self.model = ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": True}
        )
        if training is not None:
            self._resume_training(training)
        # Rank 0 keeps the running average of the weights, the model the run is evaluated by.
        self.average = (WeightAverage(config.average_period, averaged)
                        if config.average_period and self.rank == 0 else None)  # fmt: skip
        torch.manual_seed(_seed(config.seed, self.rank, self.state["step"]))  # this rank's draws
        self.tokenizers = _tokenizers(config)
        self.train_shard = ray.train.get_dataset_shard("train")
        self.val_shard = ray.train.get_dataset_shard("val")
        self.writer = Writer(payload["run_dir"]) if self.rank == 0 else None
        self.guard = SkipGuard(limit=3)
        self.batches: Iterator[list[dict[str, Any]]] | None = None
        if payload.get("preload"):  # benchmark reference: one epoch in memory, cycled, no data work
            import itertools

            self.batches = itertools.cycle(list(self._epoch_batches(epoch=0)))
        self.window = _Window()  # since the last log line
        self.span = _Window(start=self.window.start)  # since the last checkpoint

    def _resume_training(self, training: Mapping[str, Any]) -> None:
        """Optimiser, scheduler and scaler state of the checkpoint Ray Train handed back; called
        after the model is on its device. A scaler state is kept only by an fp16 run (a run
        resumed at another precision starts a fresh scaler, or none)."""
        load_optimizer_state(self.optimizer, training["optimizer"], "the run's latest checkpoint")
        self.scheduler.load_state_dict(training["scheduler"])
        if self.scaler is not None and training["scaler"] is not None:
            self.scaler.load_state_dict(training["scaler"])

    def _epoch_batches(self, epoch: int) -> Iterator[list[dict[str, Any]]]:
        """The train shard's examples of `epoch` in duration-bounded groups (100 frames per
        second), shuffled within duration buckets by this rank's (seed, rank, epoch) seed."""
        from uts.train.batching import duration_batches

        config = self.config
        clips: Iterable[dict[str, Any]] = examples(self.train_shard)
        if config.reproducible:  # the whole train set: this rank's share of one seeded shuffle
            clips = epoch_share(list(clips), rank=self.rank, world=self.world,
                                seed=_seed(config.seed, epoch))  # fmt: skip
        return duration_batches(clips, lambda e: e["frames"] / 100,
                                max_seconds=config.per_worker_seconds(), window=config.bucket_window,
                                seed=_seed(config.seed, self.rank, epoch))  # fmt: skip

    def next_group(self) -> list[dict[str, Any]] | None:
        """The next group of examples, or None when any rank's epoch ran out (then every rank
        drains its own batches and starts the next epoch together)."""
        if self.batches is None:
            self.scheduler.set_epoch(self.state["epoch"])
            epoch = self.state["epoch"]
            self.batches = self._epoch_batches(epoch)
        waited = time.perf_counter()
        group = next(self.batches, None)
        wait = time.perf_counter() - waited
        self.window.wait += wait
        self.span.wait += wait
        if not self.collective.all_true(group is not None):
            for _ in self.batches:
                pass
            self.batches, self.state["epoch"] = None, self.state["epoch"] + 1
            return None
        return group

    def train_step(self, group: list[dict[str, Any]]) -> dict[str, Any] | None:
        """One optimiser step on a group; its metrics, or None when it was skipped."""
        from uts.train import train_step
        from uts.train.features import collate

        state = self.state
        batch = _to(collate(group, num_tags=self.config.k, **self.tokenizers), self.device)
        metrics: dict[str, Any] = train_step(
            self.model, batch, self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            autocast_dtype=self.autocast_dtype, agree=self.collective.all_true,
            clip_norm=None if self.config.clipping_scale is not None else 5.0,
            batch_count=state["step"] * self.config.batch_count_scale,
        )  # fmt: skip
        self.guard.update(
            bool(metrics["skipped"]), step=state["step"] + 1, clip_ids=batch["clip_ids"]
        )
        if metrics["skipped"]:
            state["skipped"] += 1
            return None
        if not metrics.get("stepped", 1.0):  # fp16: the GradScaler met inf/NaN grads, no update
            state["scaler_skipped"] = state.get("scaler_skipped", 0) + 1  # calibration, not a step
            return None
        seconds = self.collective.sum(float(batch["feat_lens"].sum()) / 100)  # 100 frames/s
        state["step"] += 1
        if self.average is not None:
            self.average.update(self.model, state["step"])
        state["audio_seconds"] += seconds
        self.window.seconds += seconds
        self.span.seconds += seconds
        return metrics

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Loss, lr, throughput and every rank's data-wait share since the last log line."""
        elapsed = self.window.elapsed()
        waits = self.collective.each(self.window.wait / elapsed)  # share of time spent waiting
        line = {**{k: v for k, v in metrics.items() if k != "skipped"},
                "audio_s_per_s": self.window.seconds / elapsed, "data_wait": sum(waits) / self.world,
                **{f"data_wait/rank{r}": w for r, w in enumerate(waits)},
                "peak_mem_mb": peak_mb(self.device.type)}  # since the start; GPU: allocated  # fmt: skip
        if self.writer is not None:
            self.writer.scalars(self.state["step"], line)
            print(f"step {self.state['step']}/{self.config.max_steps} loss {line['loss']:.4f} "
                  f"lr {line['lr']:.2e} {line['audio_s_per_s']:,.0f} audio-s/s data-wait "
                  f"{line['data_wait']:.0%} (max {max(waits):.0%}) peak {line['peak_mem_mb']:,.0f} MB",
                  flush=True)  # fmt: skip
        self.window = _Window()

    def checkpoint(self, metrics: Mapping[str, Any]) -> None:
        """Validate, then report to Ray Train with the checkpoint attached (rank 0)."""
        state, span = self.state, self.span.elapsed()
        report = {"step": state["step"], "epoch": state["epoch"], "loss": metrics["loss"],
                  "skipped_steps": state["skipped"], "audio_hours": state["audio_seconds"] / 3600,
                  "audio_s_per_s": self.span.seconds / span,
                  "data_wait": self.collective.sum(self.span.wait / span) / self.world}  # fmt: skip
        report.update(self.validate())
        state["history"].append(report)
        self._report(report)
        self.window = _Window()
        self.span = _Window(start=self.window.start)

    def validate(self) -> dict[str, float]:
        """Validation loss (and tag mAP) over every rank's held-out clips, logged at this step."""
        metrics = validate_shard(self.model, self.val_shard, self.config, self.tokenizers,
                                 self.collective, self.device)  # fmt: skip
        if self.writer is not None:
            self.writer.scalars(self.state["step"], metrics)
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            print(f"step {self.state['step']}/{self.config.max_steps} {shown}", flush=True)
        return metrics

    def _report(self, metrics: dict[str, Any]) -> None:
        """Every rank reports (Ray Train needs the same number of calls); rank 0 attaches the
        checkpoint: weights, optimiser/scheduler/scaler state, counters, lineage with the metrics."""
        import ray.train

        if self.rank != 0:
            ray.train.report(metrics)
            return
        payload = self.payload
        with tempfile.TemporaryDirectory() as folder:
            checkpoints.save(
                Path(folder),
                model_state=getattr(self.model, "module", self.model).state_dict(),
                training_state={"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                                "scaler": self.scaler.state_dict() if self.scaler is not None else None},
                state=self.state,
                averaged_state=self.average.state_dict() if self.average is not None else None,
                lineage={**payload["lineage"], "config": payload["config"], "metrics": self.state["history"]},
            )  # fmt: skip
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def validate_shard(model: Any, shard: Any, config: PretrainConfig, tokenizers: dict[str, Any],
                   collective: Collective, device: torch.device) -> dict[str, float]:  # fmt: skip
    """Validation loss over every rank's held-out clips; tag mAP for objectives with an MTC head.

    Ranks may hold different numbers of validation batches, so nothing here is collective per
    batch: the model runs in eval mode, where the contrastive loss takes its negatives from the
    rank's own batch (uts/objectives/contrastive.py), and the sums are combined once at the end."""
    from uts.probe.metrics import mean_average_precision
    from uts.train.batching import duration_batches
    from uts.train.features import collate

    pretrainer = getattr(model, "module", model)
    pretrainer.eval()
    total, count = 0.0, 0
    scores, truth = [], []
    with torch.no_grad():
        for group in duration_batches(examples(shard), lambda e: e["frames"] / 100,
                                      max_seconds=config.per_worker_seconds(), window=config.bucket_window):  # fmt: skip
            batch = _to(collate(group, num_tags=config.k, **tokenizers), device)
            outputs = pretrainer(batch)
            loss, _ = pretrainer.objective.loss(batch, outputs)
            total += float(loss) * len(group)
            count += len(group)
            # Tag logits (B, K) come from an MTC head: mtc's "logits", multitask's "mtc_logits".
            # The generative objectives' "logits" are token logits and have no tag scores.
            logits = {"mtc": outputs.get("logits"), "multitask": outputs.get("mtc_logits")}.get(
                config.objective
            )
            if logits is not None:
                scores.append(torch.sigmoid(logits.float()).cpu().numpy())
                truth.append(batch["targets"].cpu().numpy())
    pretrainer.train()
    metrics = {"val_loss": collective.sum(total) / max(collective.sum(float(count)), 1.0)}
    scores, truth = collective.concat_lists(scores, truth)  # every rank's held-out clips
    if scores:
        y, p = np.concatenate(truth), np.concatenate(scores)
        keep = y.sum(0) > 0  # mAP over tags present in the held-out clips
        if keep.any():
            metrics["val_tag_map"] = float(mean_average_precision(y[:, keep], p[:, keep]))
    return metrics


def _build(config: PretrainConfig, rank: int, world: int, gather: Any,
           tag_prior: list[float] | None = None) -> tuple[Any, Any, Any]:  # fmt: skip
    from uts.train import build_optimizer
    from uts.train.model import build_model

    model = build_model(config, rank=rank, world=world, gather=gather, tag_prior=tag_prior)
    optimizer, scheduler = build_optimizer(model, config.optimizer, lr=config.lr, clipping_scale=config.clipping_scale,
                                           head_lr_scale=config.head_lr_scale, stem_lr_scale=config.stem_lr_scale,
                                           warmup_steps=config.warmup_steps, lr_steps=config.lr_steps,
                                           lr_epochs=config.lr_epochs)  # fmt: skip
    return model, optimizer, scheduler


def _seed(*parts: int) -> int:
    """A seed of its own for each tuple of parts: (base seed, rank, epoch or step) gives each rank
    its own draws and never reuses another count's stream; (base seed, epoch) is shared by all
    ranks (the reproducible order's shuffle)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


# The autocast dtype of each resolved precision (None: no autocast).
_AUTOCAST: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def _cuda_bf16(device: torch.device) -> bool:
    """Whether `device` is a CUDA device that computes in bf16 (Ampere and later; not V100)."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _tokenizers(config: PretrainConfig) -> dict[str, Any]:
    from uts.models.text import load_tokenizer

    if config.objective == "contrastive":
        return {"text_tokenizer": load_tokenizer(config.text_model)}
    if config.objective in ("ar", "par", "multitask"):
        return {"tag_tokenizer": load_tokenizer(config.tokenizer)}
    return {}


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }
