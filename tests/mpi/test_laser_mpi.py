"""A small cooled-cavity laser case gives the same probe temperatures and fluences on
COMM_WORLD and on COMM_SELF, and its light energy balance holds on any number of ranks.

Under `mpiexec -n 2` the case is solved distributed and on every rank alone; serially both
are the same one-rank solve. Heat solver rtol 1e-12 (the light solve uses 1e-10 relative on
a well-conditioned SPD system), so partition round-off stays far below the asserted 1e-8.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from meshes import build_mesh
from solver.coupler import Coupler
from solver.case_loader import parse_case
from solver.probes import evaluate, locate

pytestmark = pytest.mark.mpi

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cases" / "laser_980nm_15W_muscle.toml"
PROBES = {"r1mm": [0.001, 0.0, 0.0], "r3mm": [0.003, 0.0, 0.0], "r6mm": [0.0, 0.006, 0.002], "tip": [0.002, 0.0, 0.004]}


def _case(**solver):
    with open(DEMO, "rb") as fh:
        d = tomllib.load(fh)
    d["geometry"].update(radius_m=0.02, mesh_size_m=0.005)
    d["geometry"]["refinement"][0].update(size_m=0.0015, distance_m=0.008)
    d["time"].update(dt_s=2.0, end_time_s=16.0, output_interval_s=2.0)
    d["applicator"][0]["schedule"] = [[0.0, 15.0], [9.0, 0.0]]  # switches off inside a step
    d["solver"] = {"rtol": 1e-12, "atol": 1e-18, **solver}
    d["probe"] = [{"name": k, "position_m": v} for k, v in PROBES.items()]
    d["output"] = {"fields": False}
    return parse_case(d, source="laser_mpi", case_dir=str(ROOT / "cases"))


def _solve(case, comm):
    bundle = build_mesh(case.geometry, comm, cavities=case.cavities())
    problem = Coupler(case, bundle)
    problem.set_initial()
    located = locate(problem.mesh, [p.position_m for p in case.probe])
    phi0 = np.array([evaluate(em.phi, located) for em in problem.laser.emitters])
    history = []
    for i in range(case.time.num_steps):
        problem.step(i * case.time.dt_s, (i + 1) * case.time.dt_s)
        history.append(evaluate(problem.T, located))
    balance = [dict(em.balance) for em in problem.laser.emitters]
    summary = problem.laser.summary(case.time.end_time_s)
    return np.array(history), phi0, problem.max_temperature()[0], problem.num_dofs(), balance, summary


def test_same_laser_probes_on_world_and_self():
    case = _case()
    world, phi_world, tmax_world, dofs_world, bal_world, _ = _solve(case, MPI.COMM_WORLD)
    alone, phi_alone, tmax_alone, dofs_alone, bal_alone, _ = _solve(case, MPI.COMM_SELF)
    assert dofs_world == dofs_alone
    assert np.all(phi_alone > 0.0)
    np.testing.assert_allclose(phi_world, phi_alone, rtol=1e-8, atol=0)
    np.testing.assert_allclose(world - 37.0, alone - 37.0, rtol=1e-8, atol=1e-9)
    assert abs(tmax_world - tmax_alone) <= 1e-8 * abs(tmax_alone)
    for bw, ba in zip(bal_world, bal_alone):
        assert bw["absorbed_W"] == pytest.approx(ba["absorbed_W"], rel=1e-9)
    # the same answer on every rank
    gathered = MPI.COMM_WORLD.allgather(world)
    for other in gathered:
        np.testing.assert_array_equal(other, world)


def test_light_energy_balance_on_all_ranks():
    case = _case()
    _, _, _, _, balance, summary = _solve(case, MPI.COMM_WORLD)
    (b,) = balance
    assert b["source_W"] == 1.0
    assert abs(b["relative_imbalance"]) < 1e-8
    assert abs(b["absorbed_W"] + b["boundary_loss_W"] - 1.0) < 1e-8
    assert 0.98 < b["absorbed_W"] < 1.02
    expected = 15.0 * 9.0
    assert abs(summary["delivered_energy_J"] - expected) <= 1e-12 * expected
    assert abs(summary["max_relative_imbalance"]) < 1e-8
    assert summary["absorbed_energy_J"] + summary["lost_energy_J"] == pytest.approx(expected, rel=1e-12)
    # every rank reports the same numbers
    values = MPI.COMM_WORLD.allgather((b["absorbed_W"], summary["delivered_energy_J"]))
    assert all(v == values[0] for v in values)


def test_run_case_output_on_world(shared_tmp):
    """run_case on COMM_WORLD writes one probes.csv whose fluence column matches the
    one-rank light field and is zero once the laser is off."""
    from solver.simulation import run_case

    case = _case()
    out = shared_tmp / "out"
    summary = run_case(case, out, comm=MPI.COMM_WORLD, progress=False)
    _, phi_alone, *_ = _solve(case, MPI.COMM_SELF)
    assert summary["ranks"] == MPI.COMM_WORLD.size
    assert summary["light"]["delivered_energy_J"] == pytest.approx(135.0, rel=1e-12)
    with open(out / "probes.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, data = rows[0], np.array(rows[1:], dtype=float)
    t = data[:, 0]
    for k, name in enumerate(PROBES):
        phi = data[:, header.index(f"{name}.fluence_W_per_m2")]
        on, off = t < 9.0, t >= 9.0
        # the CSV carries 12 significant digits
        np.testing.assert_allclose(phi[on], 15.0 * phi_alone[0, k], rtol=1e-9)
        assert np.all(phi[off] == 0.0)
