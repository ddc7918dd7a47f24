"""Where a study lives: an Optuna journal file in the store (the default) or any Optuna RDB URL.

- `journal` on a local store: `JournalStorage(JournalFileBackend(<store>/sweeps/<study>/journal.log))`.
  The backend's lock (a symlink beside the file) lets processes on one filesystem share it.
- `journal` on an object store (`s3://...`): an object store can neither append nor lock, so the
  journal is a local file (`<cache>/<hash of the store URI>/<study>/journal.log`), copied from
  `<store>/sweeps/<study>/journal.log` when the sweep starts and uploaded after every trial. A
  killed driver loses at most the heartbeats and probe scores of the trials it was running: they
  appear as running with an old heartbeat and are retried (tuning.loop). One driver per study:
  two drivers on one s3 journal would overwrite each other's uploads; use an RDB URL for several.
- An RDB URL (`sqlite:///sweep.db`, `postgresql://user:pass@host/db`, ...): `RDBStorage`, shared
  by any number of drivers (PostgreSQL on a cluster).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from uts.store import Store

__all__ = ["JOURNAL_FILE", "StorageError", "SweepStorage", "open_storage"]

JOURNAL_FILE = "journal.log"
DEFAULT_CACHE = Path.home() / ".cache" / "uts" / "sweeps"


class StorageError(ValueError):
    """The storage cannot be opened; the message says which and why."""


@dataclass
class SweepStorage:
    storage: optuna.storages.BaseStorage
    location: str  # for people: the journal's URI, or the RDB URL with its password hidden
    dashboard: str  # the optuna-dashboard command for this storage
    upload: Callable[[], None] | None = None  # object-store journals: copy the local file up

    def sync(self) -> None:
        """Make the store's copy current (a no-op unless the journal is cached locally)."""
        if self.upload is not None:
            self.upload()


def open_storage(
    spec: str, store: Store, study: str, *, cache_dir: Path | None = None
) -> SweepStorage:
    """Open `spec` (`journal` or an RDB URL) for study `study` of `store`.

    Raises:
        StorageError: the journal file cannot be created or fetched, or the URL cannot be opened.
    """
    if spec == "journal":
        return _journal(store, study, cache_dir or DEFAULT_CACHE)
    if "://" not in spec:
        raise StorageError(
            f"--storage {spec!r}: give journal (a file under {store.uri('sweeps', study)}) or an "
            "Optuna RDB URL such as sqlite:///sweep.db or postgresql://user@host/db"
        )
    return _rdb(spec)


def _journal(store: Store, study: str, cache_dir: Path) -> SweepStorage:
    remote = store.path("sweeps", study, JOURNAL_FILE)
    uri = store.uri("sweeps", study, JOURNAL_FILE)
    if store.local:
        try:
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            backend = JournalFileBackend(remote)
        except OSError as exc:
            raise StorageError(f"cannot create the journal {uri}: {exc}") from exc
        return SweepStorage(JournalStorage(backend), uri, f"optuna-dashboard {remote}")
    key = hashlib.sha256(store.root_uri.encode()).hexdigest()[:12]
    local = cache_dir / key / study / JOURNAL_FILE
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
        if store.fs.exists(remote):
            store.fs.get_file(remote, str(local))  # the store's copy is the truth
        elif local.exists():
            local.unlink()  # a cache without a store copy belongs to a deleted study
        backend = JournalFileBackend(str(local))
    except OSError as exc:
        raise StorageError(f"cannot open the journal {uri} (local copy {local}): {exc}") from exc
    lock = threading.Lock()

    def upload() -> None:
        # Whole lines only: a line being appended by another thread waits for the next upload.
        data = local.read_bytes()
        data = data[: data.rfind(b"\n") + 1]
        with lock, store.fs.open(remote, "wb") as f:
            f.write(data)

    try:
        store.fs.makedirs(store.path("sweeps", study), exist_ok=True)
        upload()
    except OSError as exc:
        raise StorageError(f"cannot write the journal {uri}: {exc}") from exc
    return SweepStorage(JournalStorage(backend), f"{uri} (local copy {local})",
                        f"optuna-dashboard {local}", upload)  # fmt: skip


def _rdb(url: str) -> SweepStorage:
    shown = _hide_password(url)
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as exc:  # sqlalchemy's errors (no driver, no server, bad URL) share no base
        raise StorageError(
            f"cannot open storage {shown}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    return SweepStorage(storage, shown, f"optuna-dashboard '{url}'")


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not a URL sqlalchemy can parse: show it as given
        return url
