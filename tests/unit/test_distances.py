"""solver.distances: k-d tree distances between point sets equal the brute-force pairwise norms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from solver.distances import distance_max_min, distance_min, nearest_distances


def _pairwise(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None, :] - targets[None, :, :], axis=2)


@pytest.mark.parametrize("n, m", [(1, 1), (7, 300), (300, 7), (500, 800)])
def test_distances_equal_brute_force_on_random_points(n, m):
    """Random points in a 2 cm box (the scale of an ablation zone): the tree's answers are the
    brute-force minima to round-off, whichever set is larger (distance_min swaps them)."""
    rng = np.random.default_rng(12 + n + m)
    points = rng.uniform(-0.01, 0.01, (n, 3))
    targets = rng.uniform(-0.01, 0.01, (m, 3))
    d = _pairwise(points, targets)
    np.testing.assert_allclose(nearest_distances(points, targets), d.min(axis=1), rtol=1e-14, atol=0.0)
    assert distance_min(points, targets) == pytest.approx(d.min(), rel=1e-14, abs=0.0)
    assert distance_min(targets, points) == pytest.approx(d.min(), rel=1e-14, abs=0.0)
    assert distance_max_min(points, targets) == pytest.approx(d.min(axis=1).max(), rel=1e-14, abs=0.0)
    assert distance_max_min(targets, points) == pytest.approx(d.min(axis=0).max(), rel=1e-14, abs=0.0)


def test_distances_closed_form():
    """Points on a line x = 0, 1, 2, 3 (m) against targets at x = 0.5 and 10: nearest distances
    0.5, 0.5, 1.5, 2.5; the smallest 0.5, the largest nearest distance 2.5. Coincident points
    are at distance 0."""
    points = np.array([[float(x), 0.0, 0.0] for x in range(4)])
    targets = np.array([[0.5, 0.0, 0.0], [10.0, 0.0, 0.0]])
    np.testing.assert_array_equal(nearest_distances(points, targets), [0.5, 0.5, 1.5, 2.5])
    assert distance_min(points, targets) == 0.5
    assert distance_max_min(points, targets) == 2.5
    assert distance_max_min(targets, points) == 7.0
    assert distance_min(points, points[2:3]) == 0.0


def test_distances_of_empty_sets():
    """An empty set: no distance (inf) for the minimum, 0 for the largest nearest distance, as
    solver.metrics expects (a rank with no points contributes nothing to the reductions)."""
    empty = np.zeros((0, 3))
    some = np.ones((3, 3))
    for a, b in [(empty, some), (some, empty), (empty, empty)]:
        assert distance_min(a, b) == math.inf
        assert distance_max_min(a, b) == 0.0
    assert nearest_distances(empty, some).shape == (0,)
    with pytest.raises(ValueError, match="no targets"):
        nearest_distances(some, empty)
