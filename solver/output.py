"""Result folders: written under a temporary name and renamed into place when complete,
so that a failed or interrupted run never leaves a half-written DIR behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tomli_w

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.io
from dolfinx import fem
from mpi4py import MPI


from .errors import OutputError, collective_check, fault_point, is_collective  # noqa: E402
from .outdir import check_output_dir, partial_name, swap_into_place, write_marker  # noqa: E402,F401


class StagedOutput:
    """A temporary sibling folder of DIR (``.DIR.partial-HOST-PID-RAND``), created on rank 0,
    put in place by commit() once complete (marker file written last, atomic swap, see
    :mod:`solver.outdir`). Collective. Raises OutputError on every rank if the folder cannot
    be created."""

    def __init__(self, out: Path, comm: MPI.Comm, overwrite: bool):
        self.final = Path(out).resolve()
        self.comm = comm
        self.overwrite = overwrite

        def create() -> str:
            try:
                self.final.parent.mkdir(parents=True, exist_ok=True)
                path = partial_name(self.final)
                path.mkdir()
                (path / "fields").mkdir()
            except OSError as err:
                raise OutputError(
                    f"--out {self.final}: cannot create the output folder ({err.strerror or err})"
                ) from None
            return str(path)

        self.path = Path(collective_check(comm, create))

    def commit(self, marker: dict | None = None) -> Path:
        """Write the marker and put the folder in place. Collective."""
        self.comm.barrier()

        def swap() -> None:
            fault_point("commit", self.comm)
            try:
                if self.final.exists() and not self.overwrite and self.final.is_dir() and any(self.final.iterdir()):
                    raise OutputError(f"{self.final} appeared during the run; results kept in {self.path}")
                write_marker(self.path, marker)
                swap_into_place(self.path, self.final)
            except OSError as err:
                raise OutputError(f"--out {self.final}: could not put the results in place: {err}") from None

        collective_check(self.comm, swap)
        return self.final

    def discard(self, err: BaseException | None = None) -> None:
        """Remove the partial folder. After a collective error: synchronised, rank 0 removes
        it. After an error met by this rank alone (or a signal): this rank removes it at once,
        without waiting for the others (they may be stuck in a collective call)."""
        if err is not None and not is_collective(err):
            shutil.rmtree(self.path, ignore_errors=True)
            return
        self.comm.barrier()
        if self.comm.rank == 0:
            shutil.rmtree(self.path, ignore_errors=True)


class FieldWriter:
    """Time series of fields for ParaView: VTX (.bp, ADIOS2) or XDMF (.xdmf + .h5)."""

    def __init__(self, folder: Path, functions: list[fem.Function], fmt: str):
        self.fmt = fmt
        mesh = functions[0].function_space.mesh
        if fmt == "vtx":
            # the mesh does not move: written once, not with every frame
            policy = getattr(dolfinx.io, "VTXMeshPolicy", None)
            extra = {"mesh_policy": policy.reuse} if policy is not None else {}
            self.writer = dolfinx.io.VTXWriter(mesh.comm, folder / "temperature.bp", functions, engine="BP4", **extra)
            self.sources = None
        else:
            # XDMF stores P1 nodal data: higher-degree fields are interpolated to P1 for output.
            V1 = fem.functionspace(mesh, ("Lagrange", 1))
            self.sources = functions
            self.targets = [fem.Function(V1, name=f.name) for f in functions]
            self.writer = dolfinx.io.XDMFFile(mesh.comm, folder / "temperature.xdmf", "w")
            self.writer.write_mesh(mesh)

    def write(self, t: float) -> None:
        if self.fmt == "vtx":
            self.writer.write(t)
        else:
            for src, dst in zip(self.sources, self.targets):
                dst.interpolate(src)
                self.writer.write_function(dst, t)

    def close(self) -> None:
        self.writer.close()


def write_probes_csv(path: Path, names: list[str], times: list[float], rows: list[np.ndarray]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", *names])
        for t, row in zip(times, rows):
            w.writerow([f"{t:.9g}", *(f"{v:.12g}" for v in row)])


def write_json(path: Path, data: dict) -> None:
    """Strict JSON (solver.jsonio): non-finite numbers become null."""
    from .jsonio import dumps

    path.write_text(dumps(data, indent=2, sort_keys=False) + "\n")


def write_case_toml(path: Path, resolved: dict) -> None:
    path.write_text(tomli_w.dumps(resolved))


class Progress:
    """A progress line on rank 0 (stderr): percent, simulated time, wall time, ETA."""

    def __init__(self, comm: MPI.Comm, total_steps: int, end_time_s: float, enabled: bool = True):
        self.enabled = enabled and comm.rank == 0 and total_steps > 1
        self.total = total_steps
        self.end = end_time_s
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.last_pct = -1

    def update(self, step: int, t: float, extra: str = "") -> None:
        if not self.enabled:
            return
        pct = int(100 * step / self.total)
        if pct == self.last_pct or (not self.tty and pct % 10 and step != self.total):
            return
        self.last_pct = pct
        elapsed = time.perf_counter() - self.start
        eta = elapsed / step * (self.total - step) if step else 0.0
        bar = "#" * (pct // 5) + "." * (20 - pct // 5)
        line = (
            f"[{bar}] {pct:3d}%  t = {t:8.2f} / {self.end:.2f} s  "
            f"wall {elapsed:6.1f} s  eta {eta:6.1f} s  {extra}"
        )
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)
