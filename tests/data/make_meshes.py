"""Small gmsh meshes for the case-rule tests (written on demand into a test's folder).

    box_mesh(path, scale=1.0, overlap=False)  20 mm cube; 'body'; 'outer' = six faces;
                                              overlap: 'xmin' = face x = 0, also in 'outer'
    ball_in_box(path)                         the cube with a ball (r 4 mm, centre of the cube):
                                              'body', 'ball', 'outer', 'interface' = ball surface
    concentric(path, a, R, h)                 ball r = a inside a ball r = R (centre 0):
                                              'core', 'shell', 'interface' (r = a), 'outer' (r = R)

``scale`` writes the coordinates in other units (1000: millimetres). Run on one rank.
"""

from __future__ import annotations

import gmsh

SIDE = 0.02


def _start() -> None:
    gmsh.initialize(readConfigFiles=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add("test")


def _finish(path) -> None:
    gmsh.model.mesh.generate(3)
    gmsh.write(str(path))
    gmsh.finalize()


def box_mesh(path, scale: float = 1.0, overlap: bool = False, h: float = 0.004) -> None:
    _start()
    occ = gmsh.model.occ
    box = occ.addBox(0, 0, 0, SIDE * scale, SIDE * scale, SIDE * scale)
    occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMax", h * scale)
    faces = [t for _, t in gmsh.model.getBoundary([(3, box)], oriented=False)]
    gmsh.model.addPhysicalGroup(3, [box], 1, name="body")
    gmsh.model.addPhysicalGroup(2, faces, 10, name="outer")
    if overlap:
        xmin = [t for t in faces if abs(occ.getCenterOfMass(2, t)[0]) < 1e-9 * scale]
        gmsh.model.addPhysicalGroup(2, xmin, 11, name="xmin")
    _finish(path)


def ball_in_box(path, radius: float = 0.004, h: float = 0.003) -> None:
    _start()
    occ = gmsh.model.occ
    box = occ.addBox(0, 0, 0, SIDE, SIDE, SIDE)
    ball = occ.addSphere(SIDE / 2, SIDE / 2, SIDE / 2, radius)
    occ.fragment([(3, box)], [(3, ball)])
    occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMax", h)
    vols = [t for _, t in gmsh.model.getEntities(3)]
    big = max(vols, key=lambda t: occ.getMass(3, t))
    small = [t for t in vols if t != big]
    gmsh.model.addPhysicalGroup(3, [big], 1, name="body")
    gmsh.model.addPhysicalGroup(3, small, 2, name="ball")
    faces = [t for _, t in gmsh.model.getBoundary([(3, big)], oriented=False)]
    outer = [t for t in faces if occ.getMass(2, t) > 3e-4]
    gmsh.model.addPhysicalGroup(2, outer, 10, name="outer")
    gmsh.model.addPhysicalGroup(2, [t for t in faces if t not in outer], 12, name="interface")
    _finish(path)


def concentric(path, a: float, R: float, h: float) -> None:
    _start()
    occ = gmsh.model.occ
    outer = occ.addSphere(0, 0, 0, R)
    core = occ.addSphere(0, 0, 0, a)
    occ.fragment([(3, outer)], [(3, core)])
    occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMax", h)
    vols = [t for _, t in gmsh.model.getEntities(3)]
    big = max(vols, key=lambda t: occ.getMass(3, t))
    small = [t for t in vols if t != big]
    gmsh.model.addPhysicalGroup(3, small, 1, name="core")
    gmsh.model.addPhysicalGroup(3, [big], 2, name="shell")
    faces = [t for _, t in gmsh.model.getBoundary([(3, big)], oriented=False)]
    by_size = sorted(faces, key=lambda t: occ.getMass(2, t))
    gmsh.model.addPhysicalGroup(2, [by_size[0]], 11, name="interface")
    gmsh.model.addPhysicalGroup(2, [by_size[-1]], 10, name="outer")
    _finish(path)
