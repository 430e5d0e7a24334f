"""Power schedules: the energy integral the time loop uses is exact for the schedule."""

import pytest

from solver.config import PointSource


def _src(schedule, interpolation):
    return PointSource(type="point", position_m=(0, 0, 0), schedule=schedule, interpolation=interpolation)


def test_linear_schedule_energy_is_the_trapezoid_integral():
    s = _src([[0.0, 0.0], [10.0, 10.0], [20.0, 10.0]], "linear")
    assert s.energy_between(0.0, 20.0) == pytest.approx(50.0 + 100.0, rel=1e-14)
    # a step straddling the kink at 10 s: 0..10 ramps (energy 50), 10..12 holds (20)
    assert s.energy_between(8.0, 12.0) == pytest.approx((8 + 10) / 2 * 2 + 20.0, rel=1e-14)
    assert s.mean_power(8.0, 12.0) == pytest.approx(38.0 / 4.0, rel=1e-14)


def test_step_schedule_switching_off_inside_a_step_delivers_the_scheduled_energy():
    s = _src([[0.0, 15.0], [90.0, 0.0]], "step")
    assert s.energy_between(88.0, 90.0) == pytest.approx(30.0, rel=1e-14)
    assert s.energy_between(89.0, 91.0) == pytest.approx(15.0, rel=1e-14)
    assert s.energy_between(90.0, 92.0) == 0.0
    total = sum(s.energy_between(t, t + 7.0) for t in range(0, 140, 7))
    assert total == pytest.approx(15.0 * 90.0, rel=1e-14)


def test_constant_power_energy():
    s = PointSource(type="point", position_m=(0, 0, 0), power_W=2.5)
    assert s.energy_between(3.0, 7.0) == pytest.approx(10.0)
