"""Errors of the tool and the collective helpers that keep MPI ranks in step when one fails.

- :class:`CaseError` (exit 2): the case file is invalid;
- :class:`OutputError` (exit 2): the output folder cannot be used;
- :class:`SolverError` (exit 3): the solve failed;
- :class:`Interrupted` (exit 130 / 143): SIGINT or SIGTERM arrived during a run;
- :class:`RunInterrupted` (exit 75): the time loop stopped on SIGINT/SIGTERM after writing a
  checkpoint (continue with ``--resume``).

A failure that one rank meets alone must never leave the other ranks waiting in a collective
call. Two ways are used:

- decisions that can fail are made collectively: :func:`collective_check` runs a function on
  the root rank and re-raises its exception on every rank; :func:`collective_call` runs a
  function on every rank and raises on every rank if any rank failed. Exceptions raised this
  way carry ``collective = True``;
- anything else that escapes on one rank ends the whole communicator: ``solver.cli.main``
  prints the rank's message and calls ``MPI_Abort`` when more than one rank runs and the
  exception is not marked collective; :func:`abort_on_uncaught` (installed by the CLI) is
  the net for an exception that escapes even that (``sys.excepthook``).

Fault injection for tests: ``SPINE_LITT_FAULT="POINT@RANK[:uncaught][,...]"`` makes
:func:`fault_point` raise :class:`InjectedFault` at the named point on the given rank
(``RANK`` may be ``*``); with ``:uncaught`` it raises :class:`InjectedBug` instead, which no
handler of the tool expects (it stands for a bug). Points used by the tool: ``startup``
(``solver.cli.main`` before its error handlers), ``load_case``, ``mesh``, ``time_loop``
(before the first step), ``write`` (rank 0 writes of summary/provenance), ``commit``.

This module imports no MPI or FEM code at import time (the CLI and the case schema use it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

FAULT_ENV = "SPINE_LITT_FAULT"
MAX_MESSAGE_CHARS = 2000  # longest error message printed (longer ones are cut in the middle)


class CaseError(ValueError):
    """A case file is invalid. The message names the key, the value and what is allowed."""


class OutputError(ValueError):
    """The output folder cannot be used (exists and is not empty, is a file, not writable,
    too little free space, ...)."""


class SolverError(RuntimeError):
    """The linear solve failed or produced non-finite temperatures."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; raised in the main thread by the handler that
    :func:`solver.outdir.interrupt_handlers` installs. ``signum`` is the signal number.
    A BaseException so that ``except Exception`` blocks do not swallow it."""

    def __init__(self, signum: int):
        import signal

        try:
            name = signal.Signals(signum).name
        except ValueError:  # pragma: no cover
            name = f"signal {signum}"
        super().__init__(f"{name} received; partial outputs removed")
        self.signum = signum


class RunInterrupted(Exception):
    """The run stopped on SIGTERM/SIGINT after writing a checkpoint (exit code 75;
    :mod:`solver.checkpoint`)."""

    def __init__(self, signame: str, step: int, time_s: float, folder, written: bool, note: str = ""):
        self.signame, self.step, self.time_s, self.folder, self.written = signame, step, time_s, folder, written
        if written:
            msg = (
                f"{signame} received: stopped after step {step} (t = {time_s:g} s); checkpoint written "
                f"to {folder}; continue with the same command and --resume"
            )
        else:
            msg = f"{signame} received: stopped after step {step} (t = {time_s:g} s); checkpoint NOT written: {note}"
        super().__init__(msg)


class InjectedFault(RuntimeError):
    """Raised by :func:`fault_point` when ``SPINE_LITT_FAULT`` names the point (tests only)."""


class InjectedBug(RuntimeError):
    """Raised by :func:`fault_point` for ``POINT@RANK:uncaught``: an exception no handler of
    the tool expects, as a bug would raise (tests of the MPI_Abort net only)."""


def shorten(text: Any, limit: int = 120) -> str:
    """``str(text)`` cut in the middle to at most about ``limit`` characters (for echoing
    user values in error messages: a 200k-point schedule is not printed in full)."""
    s = str(text)
    if len(s) <= limit:
        return s
    keep = max(8, (limit - 20) // 2)
    return f"{s[:keep]} ...[{len(s) - 2 * keep} chars]... {s[-keep:]}"


def mark_collective(err: BaseException) -> BaseException:
    """Flag an exception as raised on every rank (the CLI then exits without MPI_Abort)."""
    try:
        err.collective = True  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    return err


def is_collective(err: BaseException) -> bool:
    return bool(getattr(err, "collective", False))


def _rebuild(kind: type, message: str, original: BaseException | None) -> BaseException:
    if original is not None:
        return original
    try:
        return kind(message)
    except Exception:  # noqa: BLE001 - an exception type that needs other arguments
        return RuntimeError(message)


def collective_check(comm, fn: Callable[[], T], root: int = 0) -> T:
    """Run ``fn`` on ``root`` only, broadcast its result; if it raised, raise the same
    exception type with the same message on every rank (marked collective). Collective."""
    payload: Any = None
    original: BaseException | None = None
    if comm is None or comm.size == 1:
        try:
            return fn()
        except Exception as err:
            raise mark_collective(err)
    if comm.rank == root:
        try:
            payload = ("ok", fn())
        except Exception as err:  # noqa: BLE001 - forwarded to every rank
            original = err
            payload = ("error", (type(err), str(err)))
    status, value = comm.bcast(payload, root=root)
    if status == "error":
        kind, message = value
        raise mark_collective(_rebuild(kind, message, original)) from None
    return value


def collective_call(comm, fn: Callable[[], T]) -> T:
    """Run ``fn`` on every rank; if it raised on any rank, raise (on every rank, marked
    collective) the exception of the lowest failing rank. Collective: one allgather."""
    result: Any = None
    status: Any = None
    original: BaseException | None = None
    try:
        result = fn()
    except Exception as err:  # noqa: BLE001 - forwarded to every rank
        original = err
        status = (type(err), str(err))
    if comm is None or comm.size == 1:
        if original is not None:
            raise mark_collective(original)
        return result
    statuses = comm.allgather(status)
    for rank, st in enumerate(statuses):
        if st is not None:
            kind, message = st
            mine = original if rank == comm.rank else None
            if mine is None and comm.size > 1:
                message = f"{message} (on rank {rank})"
            raise mark_collective(_rebuild(kind, message, mine)) from None
    return result


def fault_point(name: str, comm=None) -> None:
    """Raise :class:`InjectedFault` if ``SPINE_LITT_FAULT`` names ``name`` for this rank.
    For tests of the failure paths; costs one environment lookup otherwise."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    rank = 0
    if comm is not None:
        rank = comm.rank
    else:
        try:
            from mpi4py import MPI

            rank = MPI.COMM_WORLD.rank
        except ImportError:  # pragma: no cover
            pass
    for item in spec.split(","):
        point, _, who = item.strip().partition("@")
        who, _, kind = who.partition(":")
        if point == name and who in ("*", str(rank), ""):
            if kind == "uncaught":
                raise InjectedBug(f"injected uncaught exception at '{name}' on rank {rank} ({FAULT_ENV})")
            raise InjectedFault(f"injected fault at '{name}' on rank {rank} ({FAULT_ENV})")


# Seconds between a rank's last message and MPI_Abort: the abort kills every process at once,
# and mpiexec may drop output it has not yet forwarded (seen: the last stderr line missing).
ABORT_OUTPUT_GRACE_S = 0.5


def abort_after_output(comm, code: int) -> None:
    """Flush stdout and stderr, wait ABORT_OUTPUT_GRACE_S for mpiexec to forward them, then
    ``comm.Abort(code)`` (ends every rank; does not return)."""
    import sys
    import time

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - a closed stream must not stop the abort
            pass
    time.sleep(ABORT_OUTPUT_GRACE_S)
    comm.Abort(code)


def abort_on_uncaught(comm) -> None:
    """Install a ``sys.excepthook`` that, when ``comm`` has more than one rank, prints the
    rank, the exception and its traceback to stderr and ends every rank with
    ``comm.Abort(1)``, so an exception that escapes on one rank never leaves the others
    waiting in a collective call. On one rank the previous hook runs (a normal traceback).
    Rank-local; idempotent."""
    import sys

    previous = sys.excepthook
    if getattr(previous, "_spine_litt_abort", False):
        return

    def hook(kind, value, tb):
        if comm is None or comm.size <= 1 or issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        import traceback

        try:
            text = shorten(str(value), MAX_MESSAGE_CHARS)
            print(f"internal error {kind.__name__} (rank {comm.rank} of {comm.size}): {text}", file=sys.stderr)
            traceback.print_exception(kind, value, tb, file=sys.stderr)
        finally:
            abort_after_output(comm, 1)

    hook._spine_litt_abort = True  # type: ignore[attr-defined]
    sys.excepthook = hook
