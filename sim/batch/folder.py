"""A results folder: which folders feedsim may write into, replace or resume, the lock that
keeps one batch per folder, and how files are written into it (deterministic Parquet, atomic
replacement).

The rules, each there so that a user's files are never lost and two configurations never mix:

- A folder is feedsim's when its ``manifest.json`` says so (the ``format`` marker, or the keys
  every feedsim manifest has had), or when it has no manifest and holds nothing but names feedsim
  writes (a results folder whose manifest was lost).  Anything else that exists and is not empty
  is refused, with or without ``--force``.
- Never the current directory or one of its parents, the home folder, or a folder holding a
  ``.git``.
- ``--force`` removes only what feedsim writes (:data:`WRITTEN`); anything else stays.
- One batch at a time: :class:`FolderLock` holds a POSIX record lock on ``<out>/.lock`` for the
  whole batch.  The OS releases it when its holder dies, so a lock left by a killed driver is
  simply taken over; record locks are not inherited by forked workers, so the driver alone
  holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.recording import SCHEMAS

#: The value of ``manifest.json``'s ``format`` key: what marks a folder as feedsim's.
FORMAT = "feedsim-results/1"

#: Keys every manifest feedsim wrote before the ``format`` marker carries (a folder from an older
#: revision is still recognised, so that ``--force`` can replace it).
LEGACY_KEYS = frozenset({"experiment", "config_hash", "config", "runs"})

#: Top-level names feedsim writes in a results folder (``*.parquet`` tables are matched by suffix).
WRITTEN = frozenset({"manifest.json", "runs", "impressions", "plots", "report.md", "calibration.md",
                     "calibration.json", ".lock"})

LOCK_NAME = ".lock"

#: A run folder being written (``runs/<run id>.tmp``) and an impressions partition being copied.
RUN_TEMPORARY = re.compile(r"[A-Za-z0-9_.-]+\.tmp")
PARTITION_TEMPORARY = re.compile(r"\.run_id=[A-Za-z0-9_.-]+\.tmp")

#: Folders whose lock this process holds: a POSIX record lock does not conflict with another taken
#: by the same process (and closing either releases both), so the process keeps count itself.
_HELD: set[Path] = set()


class FolderError(RuntimeError):
    """A results folder that feedsim must not write into, replace or share."""


#: Temporary names feedsim writes at the top level of a results folder: a table or the manifest
#: before its rename, the report before its rename, a Ray batch's stop file.
_TEMPORARY = re.compile(r"\.(?P<table>\w+)\.parquet\.tmp|manifest\.json\.tmp|report\.md\.tmp|\.stop-\d+-\d+")


def _is_temporary(name: str) -> bool:
    match = _TEMPORARY.fullmatch(name)
    return match is not None and (match["table"] is None or match["table"] in SCHEMAS)


def _is_written_name(name: str) -> bool:
    """True for a top-level name feedsim writes: its tables, their temporary files, stop files."""
    return name in WRITTEN or (name.endswith(".parquet") and name[: -len(".parquet")] in SCHEMAS) \
        or _is_temporary(name)


def _is_run_folder(entry: Path) -> bool:
    """A folder in ``runs/`` that feedsim wrote: a finished run (its ``run.json``), or one being written."""
    return entry.is_dir() and not entry.is_symlink() and ((entry / "run.json").is_file() or entry.name.endswith(".tmp"))


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The folder's manifest as a dict; ``None`` when there is none.

    Raises
    ------
    FolderError
        The file exists but is not a feedsim manifest (not JSON, not an object, not feedsim's).
    """
    path = out / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise FolderError(f"{path}: not a feedsim manifest ({exc}); choose another --out") from None
    if not isinstance(manifest, dict) or not (manifest.get("format") == FORMAT or LEGACY_KEYS <= manifest.keys()):
        raise FolderError(f"{path}: not a feedsim manifest (feedsim writes a JSON object with "
                          f"\"format\": \"{FORMAT}\"); this folder was not made by feedsim, so it is "
                          f"neither written into nor replaced: choose another --out")
    return manifest


def check_place(out: Path) -> None:
    """Refuse a results folder where feedsim must never write, whatever the flags.

    Raises
    ------
    FolderError
        ``out`` is a file, lies under a file, is the current directory or one of its parents, the
        home folder, holds a ``.git``, or is an existing non-empty folder that is not feedsim's.
    """
    resolved = out.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise FolderError(f"--out {out}: is a file, not a folder")
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise FolderError(f"--out {out}: lies under {parent}, which is a file")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise FolderError(f"--out {out}: is the current directory or one of its parents; "
                          f"give a results folder of its own, e.g. results/<name>")
    if resolved == Path.home().resolve():
        raise FolderError(f"--out {out}: is the home folder; give a results folder of its own")
    if (resolved / ".git").exists():
        raise FolderError(f"--out {out}: holds a .git; feedsim never writes into a repository's folder")
    if not resolved.is_dir():
        return
    if read_manifest(out) is not None:
        return
    names = {p.name for p in resolved.iterdir()}
    foreign = sorted(name for name in names if not _is_written_name(name))
    lasting = {name for name in names if name != LOCK_NAME and not _is_temporary(name)}
    runs = resolved / "runs"
    if not foreign and lasting:
        # A results folder whose manifest was lost still has its runs/, holding run folders only;
        # a report.md alone, or a runs/ of another tool's, is a user's.
        if not runs.is_dir() or runs.is_symlink():
            foreign = sorted(lasting)
        else:
            foreign = [f"runs/{p.name}" for p in sorted(runs.iterdir()) if not _is_run_folder(p)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FolderError(f"--out {out}: exists and holds files feedsim did not write ({shown}); "
                          f"feedsim writes only into a new or empty folder or one of its own results folders")


def clear(out: Path) -> list[str]:
    """Remove what feedsim wrote in ``out`` (for ``--force``); return the names left in place.

    Only :data:`WRITTEN` names and ``*.parquet`` tables at the top level go; inside ``runs/`` and
    ``impressions/`` only run folders and partitions, inside ``plots/`` only figures.  The lock
    file stays (its holder is the caller).
    """
    kept: list[str] = []
    for entry in sorted(out.iterdir()):
        name = entry.name
        if name == LOCK_NAME:
            continue
        if not _is_written_name(name):
            kept.append(name)
        elif name == "runs":
            _clear_children(entry, _is_run_folder)
        elif name == "impressions":
            _clear_children(entry, lambda p: p.name.startswith(("run_id=", ".run_id=")))
        elif name == "plots":
            _clear_children(entry, lambda p: p.is_file() and p.suffix in (".png", ".svg", ".tmp"))
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return kept


def _clear_children(folder: Path, written: Any) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for child in folder.iterdir():
        if written(child):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty: a user's file inside stays, and so does its folder


def clear_stale_temporaries(out: Path) -> list[str]:
    """Remove temporary files and folders an interrupted or killed batch left; return their names."""
    removed = []
    stale = [p for p in out.iterdir() if _is_temporary(p.name)]
    for folder, pattern in ((out / "runs", RUN_TEMPORARY), (out / "impressions", PARTITION_TEMPORARY)):
        if folder.is_dir() and not folder.is_symlink():
            stale += [p for p in folder.iterdir() if pattern.fullmatch(p.name)]
    for entry in stale:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(str(entry.relative_to(out)))
    return removed


class FolderLock:
    """An exclusive lock on a results folder, held by this process for one batch.

    ``acquire`` refuses at once, naming the holder, when another live process holds it; a lock
    whose holder died is free again (the OS drops a record lock with its process), so it is taken
    over without being asked.
    """

    def __init__(self, out: Path):
        self.path = out / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, command: str = "") -> None:
        key = self.path.resolve()
        if key in _HELD:
            raise FolderError(f"{self.path.parent}: in use by another feedsim batch (pid {os.getpid()}, this "
                              f"process); wait for it to finish, then run the same command again")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            held_by = _read_holder(fd)
            os.close(fd)
            raise FolderError(f"{self.path.parent}: in use by another feedsim batch ({held_by}); wait for it to "
                              f"finish, or stop it, then run the same command again") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd
        _HELD.add(key)

    def release(self) -> None:
        if self._fd is not None:
            # Emptied before unlocking: a holder that is named afterwards is always a live one.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the record lock
            self._fd = None
            _HELD.discard(self.path.resolve())

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"pid {holder['pid']} on {holder['host']}, since {holder['since']}: "
                f"{holder.get('command') or 'command not recorded'}")
    except (OSError, ValueError, KeyError, TypeError):
        return "holder not recorded"


@contextlib.contextmanager
def locked(out: Path, command: str = "") -> Iterator[FolderLock]:
    lock = FolderLock(out)
    lock.acquire(command)
    try:
        yield lock
    finally:
        lock.release()


def checksums(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every file a run wrote, except ``run.json`` (which records them)."""
    return {p.name: _sha256(p) for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != "run.json"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_run(run_dir: Path, config_hash: str) -> str | None:
    """Why a finished run folder cannot be kept for configuration ``config_hash``; ``None`` if it can.

    A run is kept only when its ``run.json`` names this configuration and every file it lists is
    there with the checksum it recorded (a truncated or rewritten table is caught here).
    """
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "its run.json is missing or unreadable"
    if not isinstance(info, dict) or "files" not in info or "config_hash" not in info:
        return "it records no configuration or checksums (written by an older feedsim)"
    if info["config_hash"] != config_hash:
        return f"it was made by another configuration (hash {info['config_hash']}, this one {config_hash})"
    files = info["files"]
    present = {p.name for p in run_dir.iterdir() if p.is_file() and p.name != "run.json"}
    if not isinstance(files, dict) or set(files) != present:
        return "its files are not the ones it recorded"
    for name, digest in files.items():
        if _sha256(run_dir / name) != digest:
            return f"{name} does not match its recorded checksum (truncated or changed)"
    return None


def write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic Parquet: same table, same bytes."""
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file beside it: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
