"""Fluence and laser-heat outputs follow the laser as delivered: while the safety loop holds
the laser off (paused or stopped), the probe columns NAME.fluence_W_per_m2 and
NAME.laser_heat_W_per_m3 are zero, and they equal the scheduled power's values otherwise."""

from __future__ import annotations

import csv

import pytest

from solver import simulation
from solver.case_loader import parse_case
from tests.integration.test_checkpoint import case_data


@pytest.mark.mpi
def test_fluence_columns_are_zero_while_the_laser_is_held_off(shared_tmp):
    data = case_data()
    data.pop("checkpoint")
    summary = simulation.run_case(parse_case(data), shared_tmp / "gate", progress=False)
    events = [(e["time_s"], e["event"]) for e in summary["control"]["events"] if e["event"].startswith("laser")]
    assert [e for _, e in events][:2] == ["laser paused", "laser resumed"]

    def off(t: float) -> bool:  # the gate after the control decision at t
        state = False
        for te, what in events:
            if te <= t + 1e-9:
                state = what == "laser paused"
        return state

    with open(shared_tmp / "gate" / "probes.csv") as fh:
        rows = list(csv.DictReader(fh))
    seen_off = seen_on = 0
    for row in rows:
        t = float(row["time_s"])
        phi, q = float(row["p2mm.fluence_W_per_m2"]), float(row["p2mm.laser_heat_W_per_m3"])
        if off(t):
            assert phi == 0.0 and q == 0.0, (t, phi)
            seen_off += 1
        else:
            assert phi > 1e3 and q > 0.0, (t, phi)  # 10 W at 2 mm: well above 1 kW/m2
            seen_on += 1
    assert seen_off >= 1 and seen_on >= 3
