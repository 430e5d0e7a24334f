"""Checkpoint and restart (solver.checkpoint): a run stopped by SIGTERM at a random step and
continued with resume gives the uninterrupted run's final state, probes, power log,
controller events and peaks - bitwise on the same number of ranks, to solver tolerance on
another (2 -> 1, 1 -> 2). The case has everything with state: coagulation (perfusion and
light refreshed with damage, k(T)), a line laser tripping a pause/resume safety point and a
target point, critical-region peaks, dose fields.

In-process tests run serially and again under ``mpiexec -n 2`` (mpi marker); the SIGTERM
hook (SPINE_LITT_TEST_SIGNAL_AT_STEP) raises a real SIGTERM on one rank at step k, so the
handler, the collective check and the checkpoint write all run as in a SLURM kill.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from solver import checkpoint as ck
from solver import simulation
from solver.config import CaseError, OutputError
from solver.case_loader import parse_case

DT_S, END_S = 2.0, 60.0
N_STEPS = int(END_S / DT_S)


def case_data(**checkpoint) -> dict:
    return {
        "name": "ckpt",
        "geometry": {
            "kind": "box", "lower_m": [-0.02, -0.02, -0.02], "upper_m": [0.02, 0.02, 0.02], "mesh_size_m": 0.006,
            "inclusion": [{"name": "spinal_cord", "shape": "box", "center_m": [0.0, 0.012, 0.0],
                           "size_m": [0.008, 0.006, 0.03]}],
            "refinement": [{"segment_start_m": [0, 0, -0.005], "segment_end_m": [0, 0, 0.005],
                            "size_m": 0.002, "distance_m": 0.008}],
        },
        "regions": {"body": "muscle", "spinal_cord": "spinal_cord"},
        "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
        "applicator": [{"name": "fibre", "tip_center_m": [0, 0, 0], "direction": [0, 0, 1], "power_W": 10.0}],
        "coagulation": {"enabled": True, "scattering_factor": 4.0, "optical_refresh_tolerance": 0.02,
                        "temperature_dependent_conductivity": True},
        "monitor": [
            {"name": "cord_edge", "position_m": [0.0, 0.0095, 0.0], "high_limit_C": 40.1,
             "action": "pause", "resume_below_C": 40.06},
            {"name": "target", "position_m": [0.003, 0.0, 0.0], "low_limit_C": 50.0},
        ],
        "probe": [{"name": "p2mm", "position_m": [0.002, 0.0, 0.001]}],
        "time": {"mode": "transient", "dt_s": DT_S, "end_time_s": END_S},
        "solver": {"rtol": 1e-12, "atol": 1e-14},
        "output": {"fields": False},
        "checkpoint": {"every_steps": 4, "every_wall_s": 0.0, **checkpoint},
    }


@pytest.fixture
def capture(monkeypatch):
    """The Coupler (the run) of each run_case call (to read its final state)."""
    made = []

    class Recording(simulation.Coupler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(simulation, "Coupler", Recording)
    return made


def run(out: Path, comm, capture, *, interrupt_at: int | None = None, resume: bool = False, monkeypatch=None,
        degree: int = 1, scheme: str = "backward_euler", overwrite: bool = False):
    """run_case; returns (summary, final nodal state by key) or the RunInterrupted."""
    if interrupt_at is not None:
        monkeypatch.setenv(ck.TEST_SIGNAL_ENV, str(interrupt_at))
    elif monkeypatch is not None:
        monkeypatch.delenv(ck.TEST_SIGNAL_ENV, raising=False)
    try:
        data = case_data()
        data["solver"]["element_degree"] = degree
        if degree != 1:  # coagulation needs P1 (lumped perfusion): refused with P2
            data["coagulation"]["enabled"] = False
        data["time"]["scheme"] = scheme
        summary = simulation.run_case(parse_case(data), out, comm=comm, progress=False, resume=resume,
                                      overwrite=overwrite)
    except ck.RunInterrupted as stop:
        return stop, None
    return summary, ck.snapshot(capture[-1])


def probes(out: Path) -> np.ndarray:
    return np.loadtxt(out / "probes.csv", delimiter=",", skiprows=1)


def assert_same_run(a, b, out_a: Path, out_b: Path, *, tol: dict | None = None):
    """Bitwise equal (tol None), or equal within tol[name] (max abs difference per field;
    tol["probes"] for probes.csv and the peak)."""
    (sa, fa), (sb, fb) = a, b
    exact = tol is None
    assert set(fa) == set(fb)
    assert np.array_equal(fa["keys"], fb["keys"])
    for name in fa:
        if exact:
            assert np.array_equal(fa[name], fb[name]), name
        else:
            err = np.abs(fa[name] - fb[name]).max()
            assert err <= tol[name], (name, err, tol[name])
    pa, pb = probes(out_a), probes(out_b)
    assert pa.shape == pb.shape
    ea, eb = sa["control"]["events"], sb["control"]["events"]
    assert [(e["event"], e["time_s"]) for e in ea] == [(e["event"], e["time_s"]) for e in eb]
    if exact:
        assert np.array_equal(pa, pb)
        assert (out_a / "power.csv").read_text() == (out_b / "power.csv").read_text()
        # the critical regions' maxima over time (report) survive the resume too
        assert (out_a / "critical.csv").is_file()
        assert (out_a / "critical.csv").read_text() == (out_b / "critical.csv").read_text()
        for key in ("control", "max_temperature_C", "max_temperature_time_s", "final_max_temperature_C",
                    "damage", "safety", "krylov_iterations", "coagulation", "light"):
            assert sa.get(key) == sb.get(key), key
    else:
        assert np.all(np.abs(pa - pb).max(axis=0) <= tol["probes"]), (np.abs(pa - pb).max(axis=0), tol["probes"])
        assert abs(sa["max_temperature_C"] - sb["max_temperature_C"]) <= tol["T"]
        assert sa["coagulation"]["light_refreshes"] == sb["coagulation"]["light_refreshes"]


def rank_count_tolerance(a, b, out_a: Path, out_b: Path) -> dict:
    """What two uninterrupted runs on different rank counts differ by (the rounding of the
    partition, within the Krylov tolerance), times 4, plus 1e-13 of each field's scale: a
    resumed run on another rank count may differ from the uninterrupted one by this much."""
    (_, fa), (_, fb) = a, b
    tol = {n: 4 * np.abs(fa[n] - fb[n]).max() + 1e-13 * max(1.0, np.abs(fa[n]).max()) for n in fa}
    pa, pb = probes(out_a), probes(out_b)
    tol["probes"] = 4 * np.abs(pa - pb).max(axis=0) + 1e-13 * np.abs(pa).max(axis=0)  # per column
    print("tolerances from the rank counts' difference:", {k: np.round(v, 15) for k, v in tol.items()})
    assert tol["T"] < 1e-6, tol  # the uninterrupted runs agree closely: the check has teeth
    return tol


def _events_ok(summary):
    """The case exercises the controller: paused and resumed, and a target reached."""
    what = [e["event"] for e in summary["control"]["events"]]
    assert "laser paused" in what and "laser resumed" in what and "target reached" in what, what
    assert summary["coagulation"]["light_refreshes"] >= 2


@pytest.mark.mpi
def test_resume_after_sigterm_equals_uninterrupted_run(shared_tmp, comm, capture, monkeypatch):
    """Same rank count: bitwise. The interrupt step is random (seeded, printed)."""
    k = random.Random(1234 + comm.size).randrange(5, N_STEPS - 2)
    k = comm.bcast(k, root=0)
    print("interrupt at step", k)
    full = run(shared_tmp / "full", comm, capture, monkeypatch=monkeypatch)
    _events_ok(full[0])
    assert full[0]["checkpoint"]["written"] == (N_STEPS - 1) // 4
    assert not ck.checkpoint_folder(shared_tmp / "full").exists()  # removed when complete

    stop, _ = run(shared_tmp / "cut", comm, capture, interrupt_at=k, monkeypatch=monkeypatch)
    assert isinstance(stop, ck.RunInterrupted) and stop.written and stop.step == k, stop
    assert "SIGTERM" in str(stop) and "--resume" in str(stop)
    assert not (shared_tmp / "cut").exists()  # nothing committed
    assert (ck.checkpoint_folder(shared_tmp / "cut") / f"step-{k:09d}").is_dir()

    resumed = run(shared_tmp / "cut", comm, capture, resume=True, monkeypatch=monkeypatch)
    assert resumed[0]["checkpoint"]["resumed_from"]["step"] == k
    assert_same_run(full, resumed, shared_tmp / "full", shared_tmp / "cut")
    assert not ck.checkpoint_folder(shared_tmp / "cut").exists()


@pytest.mark.mpi
def test_resume_inside_a_damped_crank_nicolson_start_up(shared_tmp, comm, capture, monkeypatch):
    """Crank-Nicolson: the damped start-up after a safety-point pause (solver.startup) has
    state (steps still to damp). A run cut in the middle of it resumes bitwise."""
    full = run(shared_tmp / "full", comm, capture, monkeypatch=monkeypatch, scheme="crank_nicolson")
    # the last laser switch: the run is cut after the first of its two damped steps, and no
    # other switch follows that would restart the damping anyway
    last = [e for e in full[0]["control"]["events"] if e["event"] in ("laser paused", "laser resumed")][-1]
    k = int(round(last["time_s"] / DT_S)) + 1
    assert 0 < k < N_STEPS and full[0]["damped_steps"] >= 4
    stop, _ = run(shared_tmp / "cut", comm, capture, interrupt_at=k, monkeypatch=monkeypatch,
                  scheme="crank_nicolson")
    assert isinstance(stop, ck.RunInterrupted) and stop.written
    resumed = run(shared_tmp / "cut", comm, capture, resume=True, monkeypatch=monkeypatch, scheme="crank_nicolson")
    assert resumed[0]["damped_steps"] == full[0]["damped_steps"]
    assert_same_run(full, resumed, shared_tmp / "full", shared_tmp / "cut")


@pytest.mark.mpi
def test_resume_on_another_rank_count(shared_tmp, comm, capture, monkeypatch):
    """2 -> 1 and 1 -> 2 ranks (N-to-M) under mpiexec -n 2; 1 -> 1 (bitwise) serially."""
    k = 11
    rank_dir = shared_tmp / f"self{comm.rank}"
    world = run(shared_tmp / "worldfull", comm, capture, monkeypatch=monkeypatch)
    alone = run(rank_dir / "alone", MPI.COMM_SELF, capture, monkeypatch=monkeypatch)
    tol = None if comm.size == 1 else rank_count_tolerance(world, alone, shared_tmp / "worldfull", rank_dir / "alone")

    # interrupted on all ranks, resumed on each rank alone (2 -> 1)
    stop, _ = run(shared_tmp / "world", comm, capture, interrupt_at=k, monkeypatch=monkeypatch)
    assert isinstance(stop, ck.RunInterrupted) and stop.written
    comm.barrier()
    shutil.copytree(ck.checkpoint_folder(shared_tmp / "world"), ck.checkpoint_folder(rank_dir / "to1"))
    comm.barrier()
    to1 = run(rank_dir / "to1", MPI.COMM_SELF, capture, resume=True, monkeypatch=monkeypatch)
    assert to1[0]["checkpoint"]["resumed_from"]["ranks"] == comm.size and to1[0]["ranks"] == 1
    assert_same_run(alone, to1, rank_dir / "alone", rank_dir / "to1", tol=tol)

    # interrupted on each rank alone, resumed on all ranks (1 -> 2)
    stop, _ = run(rank_dir / "one", MPI.COMM_SELF, capture, interrupt_at=k + 3, monkeypatch=monkeypatch)
    assert isinstance(stop, ck.RunInterrupted)
    comm.barrier()
    if comm.rank == 0:
        shutil.copytree(ck.checkpoint_folder(rank_dir / "one"), ck.checkpoint_folder(shared_tmp / "from1"))
    comm.barrier()
    from1 = run(shared_tmp / "from1", comm, capture, resume=True, monkeypatch=monkeypatch)
    assert from1[0]["checkpoint"]["resumed_from"]["ranks"] == 1
    assert_same_run(world, from1, shared_tmp / "worldfull", shared_tmp / "from1", tol=tol)


@pytest.mark.mpi
def test_damaged_newest_checkpoint_falls_back_to_the_previous(shared_tmp, comm, capture, monkeypatch):
    """A write killed half-way leaves a .tmp-* folder (ignored); a step-* folder whose arrays
    are truncated fails its SHA-256 and the previous checkpoint is used."""
    stop, _ = run(shared_tmp / "cut", comm, capture, interrupt_at=14, monkeypatch=monkeypatch)
    folder = ck.checkpoint_folder(shared_tmp / "cut")
    comm.barrier()
    if comm.rank == 0:
        assert sorted(p.name for p in folder.glob("step-*")) == ["step-000000012", "step-000000014"]
        # the newest is damaged: arrays truncated after its state.json was written
        arrays = folder / "step-000000014" / "arrays.npz"
        arrays.write_bytes(arrays.read_bytes()[:1000])
        # and a write of step 16 was killed before its rename
        tmp = folder / ".tmp-deadbeef"
        tmp.mkdir()
        (tmp / "arrays.npz").write_bytes(b"PK\x03\x04 truncated")
    comm.barrier()
    resumed = run(shared_tmp / "cut", comm, capture, resume=True, monkeypatch=monkeypatch)
    info = resumed[0]["checkpoint"]["resumed_from"]
    assert info["step"] == 12 and "step-000000014: arrays.npz is truncated" in info["skipped"][0], info
    full = run(shared_tmp / "full", comm, capture, monkeypatch=monkeypatch)
    assert_same_run(full, resumed, shared_tmp / "full", shared_tmp / "cut")


@pytest.mark.mpi
def test_resume_with_p2_elements(shared_tmp, comm, capture, monkeypatch):
    """P2: edge dofs are keyed by their end vertices' input indices (unique keys)."""
    full = run(shared_tmp / "full", comm, capture, monkeypatch=monkeypatch, degree=2)
    keys = full[1]["keys"]
    assert len(np.unique(keys)) == len(keys) == full[0]["mesh"]["dofs"]
    stop, _ = run(shared_tmp / "cut", comm, capture, interrupt_at=9, monkeypatch=monkeypatch, degree=2)
    assert isinstance(stop, ck.RunInterrupted)
    resumed = run(shared_tmp / "cut", comm, capture, resume=True, monkeypatch=monkeypatch, degree=2)
    assert_same_run(full, resumed, shared_tmp / "full", shared_tmp / "cut")


def test_checkpoint_folder_rules(tmp_path, capture, monkeypatch):
    """Refusals (exit 2 from the CLI) before any mesh is built."""
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"--resume: no complete checkpoint in .*out\.checkpoint"):
        run(out, MPI.COMM_SELF, capture, resume=True, monkeypatch=monkeypatch)
    stop, _ = run(out, MPI.COMM_SELF, capture, interrupt_at=5, monkeypatch=monkeypatch)
    assert isinstance(stop, ck.RunInterrupted)
    # a fresh run would destroy the checkpoint: refused
    with pytest.raises(OutputError, match=r"holds a checkpoint of an interrupted run \(step 5, t = 10 s\).*--resume"):
        run(out, MPI.COMM_SELF, capture, monkeypatch=monkeypatch)
    # checkpoints this version cannot read (an older format): refused too, kept; --overwrite removes them
    folder = out.parent / "out.checkpoint"
    for state in folder.glob("step-*/state.json"):
        data = json.loads(state.read_text())
        data["format"] = 1
        state.write_text(json.dumps(data))
    with pytest.raises(OutputError, match=r"holds checkpoint\(s\) this version cannot resume .*format-2.*--overwrite"):
        run(out, MPI.COMM_SELF, capture, monkeypatch=monkeypatch)
    assert any(folder.glob("step-*"))
    with pytest.raises(OutputError, match=r"--resume: no complete checkpoint .*not a format-2 checkpoint"):
        run(out, MPI.COMM_SELF, capture, resume=True, monkeypatch=monkeypatch)
    stop, _ = run(out, MPI.COMM_SELF, capture, interrupt_at=5, monkeypatch=monkeypatch, overwrite=True)
    assert isinstance(stop, ck.RunInterrupted)  # --overwrite: started again, new checkpoints
    # another case: refused
    other = case_data()
    other["applicator"][0]["power_W"] = 11.0
    with pytest.raises(CaseError, match=r"--resume: the case differs from the checkpointed one"):
        simulation.run_case(parse_case(other), out, comm=MPI.COMM_SELF, progress=False, resume=True)
    # a changed [checkpoint] table is fine (it does not change the results)
    assert ck.case_key(parse_case(case_data(every_steps=7))) == ck.case_key(parse_case(case_data()))
    # a folder of that name that bioheat did not write is never touched
    foreign = tmp_path / "mine"
    (tmp_path / "mine.checkpoint").mkdir()
    (tmp_path / "mine.checkpoint" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match=r"mine\.checkpoint exists and is not a checkpoint folder of bioheat"):
        run(foreign, MPI.COMM_SELF, capture, monkeypatch=monkeypatch)
    assert (tmp_path / "mine.checkpoint" / "notes.txt").read_text() == "keep me"


def test_wall_time_checkpoints(tmp_path):
    """every_wall_s: a checkpoint whenever that much wall time has passed (here: every step,
    none at the last one, which completes the run)."""
    data = case_data(every_steps=0, every_wall_s=1e-6)
    summary = simulation.run_case(parse_case(data), tmp_path / "out", comm=MPI.COMM_SELF, progress=False)
    assert summary["checkpoint"]["written"] == N_STEPS - 1 and not summary["checkpoint"]["errors"]
    data = case_data(every_steps=0, every_wall_s=0.0)
    summary = simulation.run_case(parse_case(data), tmp_path / "out2", comm=MPI.COMM_SELF, progress=False)
    assert summary["checkpoint"]["written"] == 0


def test_state_json_is_strict_and_round_trips():
    state = {"a": (1.0, float("nan")), "b": {"x", "y"}, "c": [float("-inf"), None, True], "d": np.float64(2.5)}
    text = json.dumps(ck._encode(state), allow_nan=False)
    back = ck._decode(json.loads(text))
    assert back["a"][0] == 1.0 and np.isnan(back["a"][1]) and isinstance(back["a"], tuple)
    assert back["b"] == {"x", "y"} and back["c"][0] == float("-inf") and back["d"] == 2.5
