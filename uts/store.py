"""The store: one URI (a local folder or any fsspec URI such as s3://bucket/prefix) for every output.

Outputs are published whole: a job writes a folder's files into a local staging folder, then
`Store.publish` makes them visible at once (a rename on local disk; on object stores the files are
uploaded and a `_SUCCESS` marker is written last). Readers trust a folder only when `_SUCCESS` is
there, so a killed job never leaves a half-written output that a later run believes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec

__all__ = ["SUCCESS", "Store", "full_uri", "is_local", "join_uri", "latest_complete", "open_fs"]

SUCCESS = "_SUCCESS"


def open_fs(uri: str) -> tuple[Any, str]:
    """Return (filesystem, path inside it) for a local path or fsspec URI."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join_uri(base: str, *parts: str) -> str:
    """Join URI parts with `/` (never os.sep), keeping the scheme: `s3://b/x` + `y` -> `s3://b/x/y`."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


def is_local(fs: Any) -> bool:
    """True for the local filesystem (where a rename is atomic)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def full_uri(fs: Any, path: str) -> str:
    """A path inside `fs` as the URI people and other jobs use (`s3://b/k`, or the plain local path)."""
    if is_local(fs):
        return path
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path}"


class Store:
    """A store root. Paths are given as parts relative to it: `store.uri("vocab", name)`."""

    def __init__(self, uri: str) -> None:
        self.root_uri = uri.rstrip("/") or uri
        self.fs, self.root = open_fs(self.root_uri)
        self.local = is_local(self.fs)

    def __repr__(self) -> str:
        return f"Store({self.root_uri!r})"

    def uri(self, *parts: str) -> str:
        """Full URI of a path in the store (what users see in messages)."""
        return join_uri(self.root_uri, *parts)

    def path(self, *parts: str) -> str:
        """Path of a location inside the store's filesystem."""
        return join_uri(self.root, *parts)

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def is_complete(self, *parts: str) -> bool:
        """True when the folder was published whole (its `_SUCCESS` marker exists)."""
        return self.exists(*parts, SUCCESS)

    def read_json(self, *parts: str) -> Any:
        with self.fs.open(self.path(*parts), "r", encoding="utf-8") as f:
            return json.load(f)

    def open(self, *parts: str, mode: str = "rb") -> Any:
        return self.fs.open(self.path(*parts), mode)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A local scratch folder for an output, removed afterwards whatever happens."""
        # Stage next to a local store so publish() is a same-filesystem rename.
        parent = None
        if self.local:
            parent = Path(self.root)
            parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def publish(self, staged: Path, *parts: str, overwrite: bool = False) -> str:
        """Make the staged folder visible at `parts`, whole, and return its URI.

        Raises:
            FileExistsError: the destination holds a complete output and `overwrite` is False.
        """
        (staged / SUCCESS).write_text("", encoding="utf-8")
        dest = self.path(*parts)
        if self.exists(*parts):
            if self.is_complete(*parts) and not overwrite:
                raise FileExistsError(f"{self.uri(*parts)} already exists")
            self._remove(dest)
        if self.local:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            staged.replace(dest)  # atomic on one filesystem
        else:
            files = sorted(p for p in staged.rglob("*") if p.is_file() and p.name != SUCCESS)
            for local in files:
                self.fs.put_file(str(local), join_uri(dest, local.relative_to(staged).as_posix()))
            self.fs.put_file(str(staged / SUCCESS), join_uri(dest, SUCCESS))  # last: now trusted
        return self.uri(*parts)

    def _remove(self, path: str) -> None:
        marker = join_uri(path, SUCCESS)
        if self.fs.exists(marker):
            self.fs.rm(marker)  # stop readers trusting it before the rest goes
        if self.local:
            # Move aside first so the old folder disappears at once, then delete it.
            doomed = f"{path}.deleting-{uuid.uuid4().hex[:8]}"
            Path(path).replace(doomed)
            shutil.rmtree(doomed)
        else:
            self.fs.rm(path, recursive=True)


def latest_complete(store: Store, *parts: str) -> str | None:
    """The name (a stage's fingerprint) of the most recently finished folder under `parts`, or
    None when none is complete. "Most recent" is by its stage.json's modification time, so a
    stage rerun with other settings becomes the one later stages pick up as "latest"."""
    root = store.path(*parts)
    if not store.fs.exists(root):
        return None
    finished = []
    for folder in store.fs.ls(root, detail=False):
        name = folder.rstrip("/").rsplit("/", 1)[-1]
        if store.is_complete(*parts, name):
            finished.append((store.fs.info(join_uri(folder, "stage.json")).get("mtime", 0), name))
    return max(finished)[1] if finished else None
