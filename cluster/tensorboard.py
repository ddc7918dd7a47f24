"""TensorBoard event files of a training run (rank 0's), written locally and copied into the
run's folder in the store after every write, so that they survive the worker."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Writer"]


class Writer:
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
