"""Collective error helpers (issue 10): an exception on one rank is raised on every rank,
with its type and message, so no rank is left waiting in a collective call."""

from __future__ import annotations

import pytest
from mpi4py import MPI

from solver import bioheat, config
from solver.errors import (
    CaseError,
    InjectedFault,
    OutputError,
    SolverError,
    collective_call,
    collective_check,
    fault_point,
    is_collective,
    shorten,
)


def test_old_homes_reexport_the_same_classes():
    assert config.CaseError is CaseError and config.OutputError is OutputError
    assert bioheat.SolverError is SolverError


@pytest.mark.mpi
def test_collective_check_raises_everywhere(comm):
    assert collective_check(comm, lambda: comm.rank + 41) == 41  # root's value on every rank

    def fail():
        raise OutputError("disk full on root")

    with pytest.raises(OutputError, match="disk full on root") as info:
        collective_check(comm, fail)
    assert is_collective(info.value)


@pytest.mark.mpi
def test_collective_call_raises_the_failing_ranks_error_everywhere(comm):
    last = comm.size - 1

    def fn():
        if comm.rank == last:
            raise CaseError(f"bad on rank {last}")
        return comm.rank

    with pytest.raises(CaseError, match=f"bad on rank {last}") as info:
        collective_call(comm, fn)
    assert is_collective(info.value)
    assert collective_call(comm, lambda: comm.rank) == comm.rank


@pytest.mark.mpi
def test_fault_point(comm, monkeypatch):
    monkeypatch.setenv("SPINE_LITT_FAULT", f"here@{comm.size - 1},there@*")
    fault_point("elsewhere", comm)
    if comm.rank == comm.size - 1:
        with pytest.raises(InjectedFault, match="'here'"):
            fault_point("here", comm)
    else:
        fault_point("here", comm)
    with pytest.raises(InjectedFault):
        fault_point("there", comm)


def test_shorten():
    s = "x" * 5_000_000
    assert len(shorten(s, 120)) < 200 and "chars" in shorten(s, 120)
    assert shorten("short") == "short"
