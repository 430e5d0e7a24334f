"""Pure geometry shared by the heat sources and the light (no FEM)."""

from __future__ import annotations

import math

import numpy as np


def segment_quadrature(start, end, h: float, points_per_cell: int = 4):
    """Gauss points and weights (unit total) along a segment, sub-segments shorter than h/4.

    The weights sum to 1 exactly, so the delivered power is exact; the distribution along
    the segment converges with the sub-segment length.
    """
    a, b = np.asarray(start, float), np.asarray(end, float)
    length = float(np.linalg.norm(b - a))
    n_sub = max(8, int(math.ceil(points_per_cell * length / h)))
    gx, gw = np.polynomial.legendre.leggauss(3)
    s_edges = np.linspace(0.0, 1.0, n_sub + 1)
    pts, w = [], []
    for s0, s1 in zip(s_edges[:-1], s_edges[1:]):
        s = 0.5 * (s0 + s1) + 0.5 * (s1 - s0) * gx
        pts.append(a[None, :] + s[:, None] * (b - a)[None, :])
        w.append(0.5 * (s1 - s0) * gw)
    return np.concatenate(pts), np.concatenate(w)
