"""Output folders are never destroyed by mistake (issue 10): refusal rules, the atomic swap,
recovery of interrupted swaps and stale partial folders, signal handling. Rank-local, no FEM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from solver import outdir
from solver.errors import Interrupted, OutputError
from solver.outdir import MARKER, check_output_dir, is_tool_folder, recover, swap_into_place


def _result(folder: Path, text: str = "old") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probes.csv").write_text(text)
    outdir.write_marker(folder)
    return folder


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_refuses_cwd_home_root_and_parents(tmp_path, monkeypatch):
    work = tmp_path / "proj" / "sub"
    work.mkdir(parents=True)
    (work / "case.toml").write_text("name = 'x'\n")
    monkeypatch.chdir(work)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for out, why in ((".", "current folder"), (str(work), "current folder"), ("..", "contains the current folder"),
                     (str(tmp_path / "home"), "home folder"), ("~", "home folder"), ("/", "filesystem root")):
        for overwrite in (False, True):
            with pytest.raises(OutputError, match=why):
                check_output_dir(Path(out).expanduser(), overwrite)
    assert (work / "case.toml").is_file()


def test_refuses_the_case_folder_even_when_it_is_a_result(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _result(tmp_path / "res")
    (res / "case.toml").write_text("name = 'x'\n")
    with pytest.raises(OutputError, match="case file's folder"):
        check_output_dir(res, True, case_dirs=(res,))
    with pytest.raises(OutputError, match="case file's folder"):
        check_output_dir(tmp_path / "res", True, case_dirs=(res / "deeper",))


def test_overwrite_replaces_only_result_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep")
    with pytest.raises(OutputError, match="not empty"):
        check_output_dir(foreign, False)
    with pytest.raises(OutputError, match="only replaces result folders"):
        check_output_dir(foreign, True)
    # a summary.json that is not this tool's does not count
    (foreign / "summary.json").write_text('{"a": 1}')
    assert not is_tool_folder(foreign)
    with pytest.raises(OutputError, match="only replaces result folders"):
        check_output_dir(foreign, True)
    # results: with the marker, or a summary.json written by an earlier version of the tool
    check_output_dir(_result(tmp_path / "res"), True)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "summary.json").write_text(json.dumps({"case_hash": "ab", "versions": {"spine_litt": "0.1.0"}}))
    check_output_dir(legacy, True)
    # empty or missing folders are fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", False)
    check_output_dir(tmp_path / "new" / "deeper", False)


def test_files_and_unwritable_parents_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_dir(f, True)
    with pytest.raises(OutputError, match="which is a file"):
        check_output_dir(f / "out", False)
    real_access = os.access
    monkeypatch.setattr(outdir.os, "access", lambda p, m: False if Path(p) == tmp_path else real_access(p, m))
    with pytest.raises(OutputError, match="permission denied"):
        check_output_dir(tmp_path / "out", False)


@pytest.mark.parametrize("exchange", [True, False])
def test_swap_replaces_the_old_result(tmp_path, exchange):
    final = _result(tmp_path / "out", "old")
    new = _result(outdir.partial_name(final), "new")
    swap_into_place(new, final, exchange=exchange)
    assert (final / "probes.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exchange_is_atomic_where_supported(tmp_path):
    a, b = _result(tmp_path / "a", "A"), _result(tmp_path / "b", "B")
    if not outdir._renameat2_exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not supported on this filesystem")
    assert (a / "probes.csv").read_text() == "B" and (b / "probes.csv").read_text() == "A"


def test_recover_restores_a_half_done_swap(tmp_path):
    final = tmp_path / "out"
    pid = _dead_pid()
    old = _result(tmp_path / f".out.old-{outdir._HOST}-{pid}-abc123", "old result")
    # the kill came between the two renames: DIR is missing, the new result still partial
    partial = _result(tmp_path / f".out.partial-{outdir._HOST}-{pid}-def456", "new")
    msgs = recover(final)
    assert (final / "probes.csv").read_text() == "old result"
    assert not old.exists() and not partial.exists()
    assert any("restored" in m for m in msgs) and any("removed .out.partial" in m for m in msgs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_recover_removes_stale_and_reports_live_partials(tmp_path):
    final = _result(tmp_path / "out")
    stale = _result(tmp_path / f".out.partial-{outdir._HOST}-{_dead_pid()}-aaaaaa")
    stale_old = _result(tmp_path / f".out.old-{outdir._HOST}-{_dead_pid()}-bbbbbb")
    live = _result(tmp_path / f".out.partial-{outdir._HOST}-{os.getpid()}-cccccc")
    other_host = _result(tmp_path / ".out.partial-elsewhere-1-dddddd")
    legacy = _result(tmp_path / ".out.partial-0123abcd")
    msgs = recover(final)
    assert not stale.exists() and not stale_old.exists()
    assert live.exists() and other_host.exists() and legacy.exists()
    assert len(msgs) == 5
    assert sum("removed" in m for m in msgs) == 2 and sum("remove it by hand" in m for m in msgs) == 3
    assert final.is_dir()


def test_interrupt_handlers_raise_and_restore():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with pytest.raises(Interrupted) as info:
            with outdir.interrupt_handlers():
                os.kill(os.getpid(), sig)
                signal.sigtimedwait([], 0.5) if hasattr(signal, "sigtimedwait") else None
                for _ in range(1000):
                    pass
        assert info.value.signum == sig and signal.Signals(sig).name in str(info.value)
    assert {s: signal.getsignal(s) for s in before} == before
