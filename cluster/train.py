"""Pretraining on Ray Train (Train V2): the data pipeline, the per-worker loop, and the trainer.

Data: corpus shards -> (Ray Data, CPU) decode + fbank + vocabulary columns -> each worker's
`get_dataset_shard` -> batches bounded by audio seconds (uts.train.batching) -> collate -> step.
Ranks step in lock-step: an epoch ends for everyone when any rank runs out of batches (the others
drain theirs), so DDP never waits on a rank that has stopped.

Checkpoints (rank 0, every `checkpoint_every` steps and at the end): model, optimiser, scheduler,
scaler, step, epoch, and lineage.json. Resume = the same run name and store: Ray Train hands the
latest checkpoint back (`ray.train.get_checkpoint()`), including after a worker dies mid-run.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cluster.runtime import store_env
from uts.train.batching import is_validation
from uts.train.config import PretrainConfig

__all__ = ["fit", "make_datasets", "read_unit", "read_units", "train_loop"]

CORPUS_COLUMNS = ["clip_id", "audio", "duration_s", "partition"]


# --- data ----------------------------------------------------------------------------------


def read_units(shards: list[str]) -> list[dict[str, Any]]:
    """One read unit per parquet row group (64 clips) of every shard: Ray Data's blocks follow its
    inputs, so units this small let every data worker take part even on a corpus of one shard.
    Footers are read in parallel threads (one small ranged read each on an object store)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from uts.store import open_fs

    def groups(uri: str) -> list[dict[str, Any]]:
        fs, path = open_fs(uri)
        with fs.open(path, "rb") as f:
            count = pq.ParquetFile(f).num_row_groups
        return [{"source": uri, "row_group": g} for g in range(count)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        return [unit for part in pool.map(groups, shards) for unit in part]


def read_unit(item: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """The rows of one read unit (a row group of a shard), some columns."""
    import pyarrow.parquet as pq

    from uts.store import open_fs

    fs, path = open_fs(item["source"])
    with fs.open(path, "rb") as f:
        table = pq.ParquetFile(f).read_row_group(item["row_group"], columns=columns)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _read_unit(item: dict[str, Any], *, fraction: float, split: str) -> list[dict[str, Any]]:
    rows = read_unit(item, CORPUS_COLUMNS)
    want_val = split == "val"
    return [
        r
        for r in rows
        if r["partition"] == "pretrain" and is_validation(r["clip_id"], fraction) == want_val
    ]


class Featurize:
    """A Ray Data actor: holds the tags and the vocabulary, turns clips into examples."""

    def __init__(self, tags_ref: Any, vocab_uri: str, k: int) -> None:
        import ray

        from uts.audio.fbank import Fbank
        from uts.tags import load_vocab

        self.tags = ray.get(tags_ref[0])
        self.vocab = load_vocab(vocab_uri, k=k)
        self.fbank = Fbank()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from uts.train.features import featurize

        rows = [r for r in batch.to_pylist() if self.tags.get(r["clip_id"])]
        examples = [e for e in featurize(rows, self.tags, self.vocab, self.fbank) if e["targets"]]
        schema = pa.schema([("clip_id", pa.string()), ("feats", pa.binary()), ("frames", pa.int64()),
                            ("duration_s", pa.float64()), ("targets", pa.list_(pa.int64())),
                            ("tag_string", pa.string())])  # fmt: skip
        return pa.Table.from_pylist(examples, schema=schema)


def make_datasets(
    shards: list[str], tags: Mapping[str, list[str]], vocab_uri: str, config: PretrainConfig
) -> dict[str, Any]:
    """The train and validation datasets (streaming; features are computed on CPU workers)."""
    import functools

    import ray
    import ray.data

    # In a list: Ray would resolve a bare object ref before the actor's constructor sees it.
    tags_ref = [ray.put(dict(tags))]
    runtime_env = {"env_vars": store_env()}
    units = read_units(shards)
    pool = ray.data.ActorPoolStrategy(min_size=1, max_size=config.data_workers)
    out = {}
    for split in ("train", "val"):
        ds = ray.data.from_items(units, override_num_blocks=len(units))
        ds = ds.flat_map(
            functools.partial(_read_unit, fraction=config.val_fraction, split=split),
            runtime_env=runtime_env,
        )
        ds = ds.map_batches(
            Featurize, fn_constructor_kwargs={"tags_ref": tags_ref, "vocab_uri": vocab_uri, "k": config.k},
            batch_size=32, batch_format="pyarrow", compute=pool,
            runtime_env=runtime_env,
        )  # fmt: skip
        # A small corpus is featurised once, before training, on every core; a large one streams
        # (features are recomputed each epoch while the GPUs train).
        out[split] = ds.materialize() if config.cache_features else ds
    return out


def _examples(shard: Any) -> Iterator[dict[str, Any]]:
    for batch in shard.iter_batches(batch_size=64, batch_format="pyarrow", prefetch_batches=4):
        yield from batch.to_pylist()


# --- the loop on every worker ----------------------------------------------------------------


class _Collective:
    """The few all-reduces the loop needs; plain values on one process."""

    def __init__(self, world: int, device: torch.device) -> None:
        self.world, self.device = world, device

    def _reduce(self, value: float, op: Any) -> float:
        if self.world == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return float(tensor.item())

    def all_true(self, flag: bool) -> bool:
        import torch.distributed as dist

        return self._reduce(1.0 if flag else 0.0, dist.ReduceOp.MIN if self.world > 1 else None) > 0

    def sum(self, value: float) -> float:
        import torch.distributed as dist

        return self._reduce(value, dist.ReduceOp.SUM if self.world > 1 else None)

    def each(self, value: float) -> list[float]:
        """Every rank's value, in rank order."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        slots = torch.zeros(self.world, dtype=torch.float64, device=self.device)
        slots[dist.get_rank()] = value
        dist.all_reduce(slots, op=dist.ReduceOp.SUM)
        return [float(v) for v in slots.tolist()]

    def gather_padded(self, x: torch.Tensor) -> torch.Tensor:
        """All ranks' rows (each padded with zero rows to the largest batch); this rank's rows
        keep their gradient. (B, D) -> (B_max * world, D)."""
        if self.world == 1:
            return x
        import torch.distributed as dist

        size = int(self._reduce(float(x.shape[0]), dist.ReduceOp.MAX))
        padded = torch.cat([x, x.new_zeros(size - x.shape[0], *x.shape[1:])])
        parts = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.detach().contiguous())
        parts[dist.get_rank()] = padded
        return torch.cat(parts)


def _build(config: PretrainConfig, rank: int, world: int, gather: Any,
           tag_prior: list[float] | None = None) -> tuple[Any, Any, Any]:  # fmt: skip
    from uts.train import build_optimizer
    from uts.train.model import build_model

    model = build_model(config, rank=rank, world=world, gather=gather, tag_prior=tag_prior)
    optimizer, scheduler = build_optimizer(model, config.optimizer, lr=config.lr, warmup_steps=config.warmup_steps,
                                           lr_steps=config.lr_steps, lr_epochs=config.lr_epochs)  # fmt: skip
    return model, optimizer, scheduler


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


def _validate(model: Any, shard: Any, config: PretrainConfig, tokenizers: dict[str, Any],
              collective: _Collective, device: torch.device) -> dict[str, float]:  # fmt: skip
    """Validation loss over every rank's held-out clips; tag mAP for objectives with an MTC head."""
    from uts.probe.metrics import mean_average_precision
    from uts.train.batching import duration_batches
    from uts.train.features import collate

    pretrainer = getattr(model, "module", model)
    pretrainer.eval()
    total, count = 0.0, 0
    scores, truth = [], []
    with torch.no_grad():
        for group in duration_batches(_examples(shard), lambda e: e["frames"] / 100,
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
    if collective.world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * collective.world
        dist.all_gather_object(gathered, (scores, truth))
        scores = [s for part in gathered for s in part[0]]
        truth = [t for part in gathered for t in part[1]]
    if scores:
        y, p = np.concatenate(truth), np.concatenate(scores)
        keep = y.sum(0) > 0  # mAP over tags present in the held-out clips
        if keep.any():
            metrics["val_tag_map"] = float(mean_average_precision(y[:, keep], p[:, keep]))
    return metrics


def train_loop(payload: dict[str, Any]) -> None:
    """Every worker runs this. payload: config (dict), lineage (dict), init_from (URI or None)."""
    import ray.train
    import ray.train.torch

    from uts.train import SkipGuard, train_step
    from uts.train.batching import duration_batches
    from uts.train.features import collate

    config = PretrainConfig(**payload["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    collective = _Collective(world, device)
    model, optimizer, scheduler = _build(
        config, rank, world, collective.gather_padded, payload.get("tag_prior")
    )
    use_fp16 = config.fp16 and device.type == "cuda"
    scaler = torch.amp.GradScaler() if use_fp16 else None
    state = {"step": 0, "epoch": 0, "skipped": 0, "audio_seconds": 0.0, "history": []}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            _load(Path(folder), model, optimizer, scheduler, scaler, state)
    elif payload.get("init_from"):
        _load_weights(payload["init_from"], model)
    model = ray.train.torch.prepare_model(
        model, parallel_strategy_kwargs={"find_unused_parameters": True}
    )
    tokenizers = _tokenizers(config)
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    writer = _Writer(payload["run_dir"]) if rank == 0 else None
    guard = SkipGuard(limit=3)
    batches: Iterator[list[dict[str, Any]]] | None = None
    if payload.get("preload"):  # benchmark reference: one epoch in memory, cycled, no data work
        import itertools

        memory = list(duration_batches(_examples(train_shard), lambda e: e["frames"] / 100,
                                       max_seconds=config.per_worker_seconds(), window=config.bucket_window))  # fmt: skip
        batches = itertools.cycle(memory)
    window_start, window_wait, window_seconds = time.perf_counter(), 0.0, 0.0
    span_start, span_wait, span_seconds = window_start, 0.0, 0.0  # since the last report
    while state["step"] < config.max_steps:
        if batches is None:
            scheduler.set_epoch(state["epoch"])
            batches = duration_batches(_examples(train_shard), lambda e: e["frames"] / 100,
                                       max_seconds=config.per_worker_seconds(), window=config.bucket_window,
                                       seed=config.seed + state["epoch"])  # fmt: skip
        waited = time.perf_counter()
        group = next(batches, None)
        window_wait += time.perf_counter() - waited
        span_wait += time.perf_counter() - waited
        if not collective.all_true(group is not None):  # an epoch ends for every rank at once
            for _ in batches:
                pass
            batches, state["epoch"] = None, state["epoch"] + 1
            continue
        assert group is not None
        batch = _to(collate(group, num_tags=config.k, **tokenizers), device)
        metrics = train_step(model, batch, optimizer, scheduler=scheduler, scaler=scaler,
                             autocast_dtype=torch.float16 if use_fp16 else None, agree=collective.all_true)  # fmt: skip
        guard.update(bool(metrics["skipped"]), step=state["step"] + 1, clip_ids=batch["clip_ids"])
        if metrics["skipped"]:
            state["skipped"] += 1
            continue
        seconds = collective.sum(float(batch["feat_lens"].sum()) / 100)
        state["step"] += 1
        state["audio_seconds"] += seconds
        window_seconds += seconds
        span_seconds += seconds
        step = state["step"]
        if step % config.log_every == 0 or step == config.max_steps:
            elapsed = time.perf_counter() - window_start
            waits = collective.each(window_wait / max(elapsed, 1e-9))  # share of time spent waiting
            line = {**{k: v for k, v in metrics.items() if k != "skipped"},
                    "audio_s_per_s": window_seconds / max(elapsed, 1e-9), "data_wait": sum(waits) / world,
                    **{f"data_wait/rank{r}": w for r, w in enumerate(waits)}}  # fmt: skip
            if writer is not None:
                writer.scalars(step, line)
                print(f"step {step}/{config.max_steps} loss {line['loss']:.4f} lr {line['lr']:.2e} "
                      f"{line['audio_s_per_s']:,.0f} audio-s/s data-wait {line['data_wait']:.0%} "
                      f"(max {max(waits):.0%})", flush=True)  # fmt: skip
            window_start, window_wait, window_seconds = time.perf_counter(), 0.0, 0.0
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            span = max(time.perf_counter() - span_start, 1e-9)
            report = {"step": step, "epoch": state["epoch"], "loss": metrics["loss"],
                      "skipped_steps": state["skipped"], "audio_hours": state["audio_seconds"] / 3600,
                      "audio_s_per_s": span_seconds / span, "data_wait": collective.sum(span_wait / span) / world}  # fmt: skip
            report.update(_validate(model, val_shard, config, tokenizers, collective, device))
            state["history"].append(report)
            if writer is not None:
                writer.scalars(step, {k: v for k, v in report.items() if k.startswith("val_")})
            _report(report, model, optimizer, scheduler, scaler, state, payload, rank)
            window_start, window_wait, window_seconds = time.perf_counter(), 0.0, 0.0
            span_start, span_wait, span_seconds = window_start, 0.0, 0.0
    if writer is not None:
        writer.close()


def _report(metrics: dict[str, Any], model: Any, optimizer: Any, scheduler: Any, scaler: Any,
            state: dict[str, Any], payload: dict[str, Any], rank: int) -> None:  # fmt: skip
    """Every rank reports (Ray Train needs the same number of calls); rank 0 attaches the checkpoint."""
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        torch.save(getattr(model, "module", model).state_dict(), out / "model.pt")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None}, out / "training.pt")  # fmt: skip
        (out / "state.json").write_text(json.dumps(state, indent=2))
        lineage = {**payload["lineage"], "config": payload["config"], "metrics": state["history"]}
        (out / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _load(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, scaler: Any, state: dict[str, Any]
) -> None:
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu"))
    training = torch.load(folder / "training.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(training["optimizer"])
    scheduler.load_state_dict(training["scheduler"])
    if scaler is not None and training["scaler"] is not None:
        scaler.load_state_dict(training["scaler"])
    state.update(json.loads((folder / "state.json").read_text()))


def _load_weights(uri: str, model: Any) -> None:
    """Warm start: the weights of a checkpoint folder (local or any store URI), nothing else."""
    from uts.store import join_uri, open_fs

    fs, path = open_fs(uri)
    with fs.open(join_uri(path, "model.pt"), "rb") as f:
        model.load_state_dict(torch.load(f, map_location="cpu"))


class _Writer:
    """TensorBoard event files, written locally and copied to the run folder in the store."""

    def __init__(self, run_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.local = tempfile.mkdtemp(prefix="uts-tb-")
        self.writer = SummaryWriter(self.local)
        self.target = run_dir.rstrip("/") + "/tensorboard"

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()
        self._upload()

    def _upload(self) -> None:
        from uts.store import join_uri, open_fs

        fs, path = open_fs(self.target)
        fs.makedirs(path, exist_ok=True)
        for local in Path(self.local).iterdir():
            fs.put(str(local), join_uri(path, local.name))

    def close(self) -> None:
        self.writer.close()
        self._upload()


# --- the trainer ------------------------------------------------------------------------------


def _portable(fs: Any) -> Any:
    """An S3 filesystem whose endpoint and credentials travel with it when pickled (s3fs pickles
    its constructor arguments; one built from the environment would look for them again)."""
    if "s3" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return fs
    import s3fs

    env = store_env()
    return s3fs.S3FileSystem(
        endpoint_url=env.get("AWS_ENDPOINT_URL"), key=env.get("AWS_ACCESS_KEY_ID"),
        secret=env.get("AWS_SECRET_ACCESS_KEY"), token=env.get("AWS_SESSION_TOKEN"),
        client_kwargs={"region_name": env["AWS_DEFAULT_REGION"]} if "AWS_DEFAULT_REGION" in env else {},
    )  # fmt: skip


def fit(config: PretrainConfig, *, datasets: dict[str, Any], storage: str, name: str,
        lineage: dict[str, Any], init_from: str | None = None, accelerator_type: str | None = None,
        preload: bool = False, tag_prior: list[float] | None = None) -> Any:  # fmt: skip
    """Run (or resume: same `name` and `storage`) a training run; returns Ray Train's Result.
    `tag_prior`: the vocabulary's K tag priors, where an MTC head's bias starts."""
    import pyarrow.fs
    import ray.train
    from ray.train.torch import TorchTrainer

    from uts.store import is_local, open_fs

    fs, path = open_fs(storage)
    if is_local(fs):
        Path(path).mkdir(parents=True, exist_ok=True)
        storage_path, storage_fs = str(Path(path).resolve()), None
    else:  # the store's filesystem, with its settings spelled out: Ray Train's controller and
        # workers unpickle it in processes that may not share this environment
        storage_path = path
        storage_fs = pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(_portable(fs)))
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "config": config.to_dict(),
            "lineage": lineage,
            "init_from": init_from,
            "run_dir": storage.rstrip("/") + "/" + name,
            "preload": preload,
            "tag_prior": tag_prior,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.num_workers,
            use_gpu=config.use_gpu,
            accelerator_type=accelerator_type,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=ray.train.FailureConfig(max_failures=config.max_failures),
            worker_runtime_env={"env_vars": store_env()},
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=config.keep_checkpoints,
                checkpoint_score_attribute="val_loss",
                checkpoint_score_order="min",
            ),
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split="all"),
    )
    return trainer.fit()
