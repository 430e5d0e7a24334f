"""Which steps the damped Crank-Nicolson start-up takes as backward-Euler half steps
(solver/startup.py): the start, schedule jumps, applicator moves and laser-gate changes."""

from __future__ import annotations

from solver.case_loader import parse_case
from solver.startup import DAMPED_STEPS, DampedStart, discontinuity_times, schedule_jumps


def _case(**extra):
    data = {
        "name": "s",
        "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.04] * 3, "mesh_size_m": 0.01},
        "regions": {"body": "muscle"},
        "time": {"scheme": "crank_nicolson", "dt_s": 2.0, "end_time_s": 100.0},
    }
    data.update(extra)
    return parse_case(data)


def test_schedule_jumps():
    sched = [[0.0, 0.0], [10.0, 5.0], [20.0, 5.0], [30.0, 0.0]]
    assert schedule_jumps(sched, "step", 2.0) == [10.0, 30.0]  # 20 s holds the same power
    assert schedule_jumps(sched, "linear", 2.0) == []  # ramps resolved by the step
    steep = [[0.0, 0.0], [10.0, 5.0], [10.5, 0.0]]
    assert schedule_jumps(steep, "linear", 2.0) == [10.0]  # a 0.5 s ramp is a jump for dt = 2 s
    assert schedule_jumps(None, "step", 2.0) == []


def test_discontinuity_times_from_sources_and_applicators():
    case = _case(
        source=[{"type": "point", "position_m": [0.02] * 3, "schedule": [[0, 1.0], [45.0, 0.0]], "interpolation": "step"}],
        applicator=[
            {
                "tip_center_m": [0.02, 0.02, 0.02],
                "direction": [0, 0, 1],
                "tip_length_m": 0.005,
                "schedule": [[0.0, 5.0], [60.0, 0.0]],
                "interpolation": "step",
                "position": [
                    {"start_s": 0.0, "tip_center_m": [0.02, 0.02, 0.022]},
                    {"start_s": 30.0, "tip_center_m": [0.02, 0.02, 0.018]},
                ],
            }
        ],
    )
    assert discontinuity_times(case) == [30.0, 45.0, 60.0]


def test_damped_steps():
    case = _case(source=[{"type": "uniform", "region": "body", "schedule": [[0, 1.0], [15.0, 0.0]], "interpolation": "step"}])
    start = DampedStart(case)
    dt = 2.0
    damped = [start.damp(i * dt, (i + 1) * dt, 0.0 if 20 <= i < 30 else 1.0) for i in range(50)]
    expected = set(range(DAMPED_STEPS))  # the start
    expected |= {7 + k for k in range(DAMPED_STEPS)}  # the jump at 15 s lies in step [14, 16)
    expected |= {20 + k for k in range(DAMPED_STEPS)}  # laser gate closed (monitor action)
    expected |= {30 + k for k in range(DAMPED_STEPS)}  # and opened again
    assert {i for i, d in enumerate(damped) if d} == expected
    assert start.damped_steps == len(expected)
    # a jump exactly at a step boundary (t = n dt up to rounding) belongs to the step it starts
    case = _case(time={"scheme": "crank_nicolson", "dt_s": 0.1, "end_time_s": 1.0},
                 source=[{"type": "uniform", "region": "body", "schedule": [[0, 1.0], [0.3, 0.0]], "interpolation": "step"}])
    start = DampedStart(case)
    damped = [start.damp(i * 0.1, (i + 1) * 0.1) for i in range(10)]
    assert [i for i, d in enumerate(damped) if d] == [0, 1, 3, 4]
