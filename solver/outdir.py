"""Output folders that are never destroyed by mistake (no FEM imports; rank-local functions).

A result folder DIR of ``bioheat run`` is written as a hidden sibling
``.DIR.partial-HOST-PID-RAND`` and put in place by :func:`swap_into_place` once complete. The
marker file :data:`MARKER` is the last file written into it, so a folder that holds the marker is
a complete result of this tool.

Rules (:func:`check_output_dir`):

- DIR may not be an existing file, lie under a file, or sit in a folder that cannot be written;
- DIR may never be a filesystem root, the home folder, the current folder or one of its
  parents, or a folder holding the case file (even empty, even with ``--overwrite``);
- an existing non-empty DIR is replaced only with ``--overwrite`` and only if this tool wrote it
  (it holds :data:`MARKER`, or a ``summary.json`` of this tool from before the marker existed).

The swap (:func:`swap_into_place`) exchanges the new and the old folder atomically with
``renameat2(RENAME_EXCHANGE)`` where the kernel and filesystem support it (Linux >= 3.15,
ext4/xfs/btrfs/tmpfs...), so DIR never goes missing; elsewhere it renames DIR to
``.DIR.old-HOST-PID-RAND`` and the new folder to DIR, and :func:`recover` puts a stranded old
folder back at the next run. :func:`recover` also removes partial and old folders left by
processes of this host that are no longer running and reports the others.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import Interrupted, OutputError, shorten

MARKER = ".bioheat-result"
_HOST = socket.gethostname().replace("-", "_").replace("/", "_")[:40] or "host"


# --------------------------------------------------------------------------- checks


def _protected(path: Path, case_dirs: tuple[Path, ...] = ()) -> str | None:
    """Why ``path`` (resolved) may never be an output folder, or None."""
    if path.parent == path:
        return "is a filesystem root"
    try:
        home = Path.home().resolve()
    except (RuntimeError, OSError):  # pragma: no cover - no home
        home = None
    if home is not None and path == home:
        return "is the home folder"
    cwd = Path.cwd().resolve()
    if path == cwd:
        return "is the current folder"
    if cwd.is_relative_to(path):
        return "contains the current folder"
    for d in case_dirs:
        d = Path(d).resolve()
        if d.is_relative_to(path):
            return f"holds the case file's folder ({shorten(d, 80)})"
    return None


def is_tool_folder(path: Path) -> bool:
    """True if ``path`` is a result folder written by this tool: it holds :data:`MARKER`, or
    a ``summary.json`` with this tool's keys (results written before the marker existed)."""
    if (path / MARKER).is_file():
        return True
    summary = path / "summary.json"
    try:
        if summary.is_file() and summary.stat().st_size < 50_000_000:
            data = json.loads(summary.read_text(encoding="utf-8"))
            return isinstance(data, dict) and "case_hash" in data and "spine_litt" in data.get("versions", {})
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return False


def check_output_dir(out: Path, overwrite: bool, case_dirs: tuple[Path, ...] = ()) -> None:
    """Refuse an output folder that cannot or may not be (re)placed; cheap, call before any
    work. Raises :class:`OutputError` naming the folder and the reason."""
    out = Path(out)
    label = f"--out {shorten(out, 100)}"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{label}: exists and is not a folder")
    try:
        resolved = out.resolve()
    except (OSError, RuntimeError) as err:
        raise OutputError(f"{label}: cannot resolve the path ({err.__class__.__name__})") from None
    why = _protected(resolved, case_dirs)
    if why:
        raise OutputError(f"{label}: refused, the folder {why}; choose a new folder for the results")
    # the nearest existing ancestor must be a folder we can write into
    parent = resolved.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{label}: lies under {shorten(parent, 100)}, which is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{label}: cannot write into {shorten(parent, 100)} (permission denied)")
    if resolved.is_dir():
        try:
            entries = [p for p in resolved.iterdir()]
        except OSError as err:
            raise OutputError(f"{label}: cannot list the folder ({err.strerror})") from None
        if entries and not overwrite:
            raise OutputError(f"{label}: folder exists and is not empty (use --overwrite to replace it)")
        if entries and not is_tool_folder(resolved):
            raise OutputError(
                f"{label}: refused, --overwrite only replaces result folders of bioheat "
                f"(with {MARKER} or its summary.json); this one is not"
            )


def write_marker(folder: Path, info: dict | None = None) -> None:
    """Write :data:`MARKER` (call last, when every other file of the result is complete)."""
    data = {"tool": "spine-litt", "written_utc": datetime.now(timezone.utc).isoformat()}
    data.update(info or {})
    (Path(folder) / MARKER).write_text(json.dumps(data) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- staging names


def partial_name(final: Path) -> Path:
    return final.parent / f".{final.name}.partial-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def old_name(final: Path) -> Path:
    return final.parent / f".{final.name}.old-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _owner(path: Path, final: Path, kind: str) -> tuple[str, int] | None:
    """(host, pid) encoded in a staging name, None for names of older versions."""
    rest = path.name[len(f".{final.name}.{kind}-"):]
    parts = rest.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 1e6


def recover(final: Path) -> list[str]:
    """Repair what an interrupted earlier run left next to ``final`` (rank 0 only); return
    one message per action for the user.

    - ``final`` missing and a ``.final.old-*`` folder present (a swap interrupted between its
      two renames): the old folder is put back as ``final``;
    - ``.final.old-*`` / ``.final.partial-*`` of a process of this host that no longer runs:
      removed (their size is reported);
    - others (another host, a running process, an older version's names): reported only.
    """
    final = Path(final)
    msgs: list[str] = []
    parent = final.parent
    if not parent.is_dir():
        return msgs
    try:
        olds = sorted(parent.glob(f".{final.name}.old-*"))
        partials = sorted(parent.glob(f".{final.name}.partial-*"))
    except OSError:
        return msgs
    if olds and not final.exists():
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        try:
            os.rename(newest, final)
            msgs.append(f"restored {final} from {newest.name} (an earlier replacement was interrupted)")
            olds.remove(newest)
        except OSError as err:
            msgs.append(f"could not restore {final} from {newest.name}: {err.strerror}")
    for kind, items in (("old", olds), ("partial", partials)):
        for p in items:
            owner = _owner(p, final, kind)
            size = _size_mb(p)
            if owner is not None and owner[0] == _HOST and not _alive(owner[1]):
                shutil.rmtree(p, ignore_errors=True)
                msgs.append(f"removed {p.name} ({size:.1f} MB) left by an interrupted run (pid {owner[1]})")
            else:
                who = "an older version" if owner is None else f"pid {owner[1]} on {owner[0]}"
                msgs.append(
                    f"found {p} ({size:.1f} MB) from {who}; it may belong to a running job - remove it by hand if not"
                )
    return msgs


# --------------------------------------------------------------------------- swap


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2). False if unsupported here."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_into_place(new: Path, final: Path, *, exchange: bool = True) -> None:
    """Put the complete folder ``new`` at ``final``; an existing ``final`` is replaced.

    With ``renameat2(RENAME_EXCHANGE)`` the two folders trade places in one step and the old
    result (now at ``new``'s name) is deleted afterwards; otherwise ``final`` is renamed to
    ``.final.old-*`` first (a kill between the two renames is repaired by :func:`recover`)."""
    new, final = Path(new), Path(final)
    if not final.exists():
        os.rename(new, final)
        return
    if exchange and _renameat2_exchange(new, final):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = old_name(final)
    os.rename(final, old)
    os.rename(new, final)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- signals


@contextmanager
def interrupt_handlers():
    """While active (main thread only), SIGINT and SIGTERM raise :class:`Interrupted`, so
    that ``except BaseException`` / ``finally`` blocks remove partial outputs; the previous
    handlers are restored on exit. A second signal during the clean-up is handled the same
    way (the clean-up code ignores errors)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def prepare_output(out: Path, overwrite: bool, comm, case_dirs: tuple[Path, ...] = ()) -> None:
    """Collective: on rank 0, repair/report leftovers of interrupted runs next to ``out``
    (:func:`recover`, messages on stderr) and :func:`check_output_dir`; its OutputError is
    raised on every rank."""
    import sys

    from .errors import collective_check

    def check() -> None:
        try:
            final = Path(out).resolve()
        except (OSError, RuntimeError):
            final = None
        if final is not None and final.parent.is_dir():
            for msg in recover(final):
                print(f"note: {msg}", file=sys.stderr, flush=True)
        check_output_dir(Path(out), overwrite, case_dirs)

    collective_check(comm, check)
