"""Result folders: written under a temporary name and renamed into place when complete,
so that a failed or interrupted run never leaves a half-written DIR behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import tomli_w

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.io
from dolfinx import fem
from mpi4py import MPI


from .config import OutputError  # noqa: E402  (defined without FEM imports for the CLI)


def check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty folder unless overwrite; cheap, call before any work."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"--out {out}: folder exists and is not empty (use --overwrite to replace it)")


class StagedOutput:
    """A temporary sibling folder of DIR, created on rank 0, renamed to DIR by commit()."""

    def __init__(self, out: Path, comm: MPI.Comm, overwrite: bool):
        self.final = Path(out).resolve()
        self.comm = comm
        self.overwrite = overwrite
        name = None
        if comm.rank == 0:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            name = str(self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}")
            Path(name).mkdir()
            (Path(name) / "fields").mkdir()
        self.path = Path(comm.bcast(name, root=0))

    def commit(self) -> Path:
        self.comm.barrier()
        error = None
        if self.comm.rank == 0:
            try:
                if self.final.exists():
                    if not self.overwrite and self.final.is_dir() and any(self.final.iterdir()):
                        raise OutputError(f"{self.final} appeared during the run; results kept in {self.path}")
                    old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
                    os.replace(self.final, old)
                    os.replace(self.path, self.final)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(self.path, self.final)
            except OSError as err:
                error = str(err)
        error = self.comm.bcast(error, root=0)
        if error:
            raise OutputError(error)
        return self.final

    def discard(self) -> None:
        self.comm.barrier()
        if self.comm.rank == 0:
            shutil.rmtree(self.path, ignore_errors=True)


class FieldWriter:
    """Time series of fields for ParaView: VTX (.bp, ADIOS2) or XDMF (.xdmf + .h5)."""

    def __init__(self, folder: Path, functions: list[fem.Function], fmt: str):
        self.fmt = fmt
        mesh = functions[0].function_space.mesh
        if fmt == "vtx":
            self.writer = dolfinx.io.VTXWriter(mesh.comm, folder / "temperature.bp", functions, engine="BP4")
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
