"""Pretraining on Ray Train (Train V2): `fit` starts (or resumes) a run of the train loop.

Where the parts live:
    cluster/train_data.py   corpus shards -> (Ray Data, CPU) decode + fbank + vocabulary columns
                            -> the train and validation datasets (`make_datasets`)
    cluster/train_loop.py   what every worker runs: setup, next batch, train step, log, checkpoint
                            (validation, report); uts.train.checkpoint writes and reads checkpoints
    cluster/collective.py   the all-reduces the loop needs, plain values on one process

Resume = the same run name and store: Ray Train keeps the run's checkpoints under
`<storage>/<name>` and hands the latest back to the workers, including after a worker dies mid-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.runtime import store_env
from cluster.train_data import make_datasets, read_unit, read_units
from cluster.train_loop import train_loop
from uts.train.config import PretrainConfig

__all__ = ["fit", "make_datasets", "read_unit", "read_units", "train_loop"]


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
        # reproducible: the train set goes whole to every rank, which takes its own share
        # (cluster.train_data.epoch_share); Ray Train splits only the listed datasets.
        dataset_config=ray.train.DataConfig(
            datasets_to_split=["val"] if config.reproducible else "all"
        ),
    )
    return trainer.fit()
