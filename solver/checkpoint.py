"""Checkpoint and restart of a transient run: ``bioheat run CASE --out DIR --resume``.

Where. Checkpoints live in ``DIR.checkpoint/`` beside DIR, not in the run's staged
``.DIR.partial-*`` folder, which is removed when a run dies. ``--resume`` looks there;
the folder is removed when the run completes. It holds a marker file (``MARKER``) so that
nothing else by that name is ever replaced or removed.

When (case keys ``[checkpoint]``): every ``every_steps`` steps, every ``every_wall_s`` s of
wall-clock time, and on SIGTERM/SIGINT (what SLURM sends before its wall-time kill). The
signal handler only sets a flag; after every step the ranks combine their flags (one
allreduce), so all ranks write the checkpoint and stop together, with exit code 75
(``EXIT_INTERRUPTED``, sysexits' EX_TEMPFAIL: "try again later", here with --resume).

What: the full state after a completed step - temperature, every running dose field of the
dose tracker (Omega, CEM43, max temperature, time above 43/45 C, ...), the coagulation's
cell-wise damage at the last light solve (the light and the perfusion/conductivity operators
are rebuilt from it, from Omega and from T: deterministic), step and time, the safety-loop
controller (stopped, paused_by, targets reached, events, laser gate), the power log, the
probe rows, the running peaks and the Krylov iteration counts. On the same number of ranks
the resumed run is bitwise the uninterrupted one; on another number of ranks it differs as
much as two uninterrupted runs on those rank counts do (solver tolerance).

Format and why. The DOLFINx checkpoint libraries (adios4dolfinx, io4dolfinx) cannot be used
with the PyPI DOLFINx wheel this project installs (dolfinx-solver-real): both declare a
dependency on the distribution ``fenics-dolfinx``, which the wheel does not provide (pip:
ResolutionImpossible), and, installed with --no-deps, adios4dolfinx stops with
"ImportError: ADIOS2 must be built with MPI support": the only ``adios2`` Python module on
PyPI is built without MPI, and the wheel's own ADIOS2 has no Python module. So the state is
written as numpy arrays gathered on rank 0 into one ``.npz``, each value keyed by what does
not depend on the partition: a nodal degree of freedom by the mesh-input (file) indices of
its vertex (P1) or of its edge's two vertices (P2), a cell by its input cell index. Any rank
count reads it back (N-to-M); the dof coordinates are stored too and checked, so a
checkpoint is never applied to another mesh. Scalars go to a strict JSON file.

Atomic: a checkpoint is written into ``DIR.checkpoint/.tmp-*``, every file fsynced, then
renamed to ``step-NNNNNNNNN`` (and the folder fsynced); ``state.json`` records the size and
SHA-256 of ``arrays.npz``, and a checkpoint counts only when both check out. Older ones are
removed only after the new one is complete (the newest ``KEEP`` are kept), so a kill during
a write leaves the previous checkpoint usable.

This module imports DOLFINx only inside functions, so the CLI can import it cheaply.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 2  # 2: the heat solve's initial-guess states (BioheatProblem.guess_arrays)
EXIT_INTERRUPTED = 75
MARKER = "SPINE_LITT_CHECKPOINTS"
KEEP = 2
# Testing hook: "k" or "k:rank" raises SIGTERM on that rank (default 0) after step k, so
# that tests interrupt a run at an exact step through the real signal path.
TEST_SIGNAL_ENV = "SPINE_LITT_TEST_SIGNAL_AT_STEP"
_DOSE_CONSTANTS = {"A", "Ea", "T_prev"}  # dose tracker arrays set at start-up / per step


from .errors import RunInterrupted  # noqa: E402,F401  (defined in solver.errors; re-exported)


def checkpoint_folder(out: str | Path) -> Path:
    """``DIR.checkpoint`` beside the output folder DIR."""
    out = Path(out).resolve()
    return out.parent / f"{out.name}.checkpoint"


def case_key(case) -> str:
    """Hash of the resolved case without its [checkpoint] table (which may change between
    the interrupted and the resumed run without changing the results)."""
    d = case.resolved_dict()
    d.pop("checkpoint", None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- strict JSON
def _encode(o: Any) -> Any:
    """Python data -> strict JSON: tuples, sets and non-finite floats are tagged."""
    if isinstance(o, (bool, str)) or o is None:
        return o
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        v = float(o)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(o, tuple):
        return {"__tuple__": [_encode(v) for v in o]}
    if isinstance(o, (set, frozenset)):
        return {"__set__": [_encode(v) for v in sorted(o)]}
    if isinstance(o, dict):
        return {str(k): _encode(v) for k, v in o.items()}
    if isinstance(o, (list, np.ndarray)):
        return [_encode(v) for v in list(o)]
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


def _decode(o: Any) -> Any:
    if isinstance(o, list):
        return [_decode(v) for v in o]
    if isinstance(o, dict):
        if set(o) == {"__float__"}:
            return float(o["__float__"])
        if set(o) == {"__tuple__"}:
            return tuple(_decode(v) for v in o["__tuple__"])
        if set(o) == {"__set__"}:
            return {_decode(v) for v in o["__set__"]}
        return {k: _decode(v) for k, v in o.items()}
    return o


# --------------------------------------------------------------------------- files
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _step_dirs(folder: Path) -> list[Path]:
    """Complete-looking checkpoint folders, newest (highest step) first."""
    if not folder.is_dir():
        return []
    dirs = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[5:]), reverse=True)


def read_checkpoint(path: Path) -> dict:
    """The state (JSON) of one checkpoint folder after checking its arrays' size and SHA-256.
    Raises ValueError with the reason when it is incomplete or damaged."""
    try:
        state = _decode(json.loads((path / "state.json").read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"state.json unreadable ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"state.json: not a format-{FORMAT} checkpoint")
    arrays = path / "arrays.npz"
    try:
        data = arrays.read_bytes()
    except OSError as err:
        raise ValueError(f"arrays.npz unreadable ({type(err).__name__})") from None
    if len(data) != state.get("arrays_bytes") or hashlib.sha256(data).hexdigest() != state.get("arrays_sha256"):
        raise ValueError("arrays.npz is truncated or damaged (size/SHA-256 differ from state.json)")
    return state


def latest_checkpoint(folder: Path) -> tuple[Path | None, dict | None, list[str]]:
    """(path, state, skipped) of the newest complete checkpoint in ``folder``; ``skipped``
    names the newer ones that were incomplete or damaged, with the reason."""
    skipped = []
    for path in _step_dirs(folder):
        try:
            return path, read_checkpoint(path), skipped
        except ValueError as err:
            skipped.append(f"{path.name}: {err}")
    return None, None, skipped


# --------------------------------------------------------------------------- plan
@dataclass
class CheckpointPlan:
    """Decided before any mesh is built, identical on every rank."""

    folder: Path
    every_steps: int
    every_wall_s: float
    on_signal: bool
    case_key: str
    resume_path: Path | None = None
    resume_state: dict | None = None
    skipped: list[str] = field(default_factory=list)


def prepare(case, out: str | Path, comm, *, resume: bool, overwrite: bool) -> CheckpointPlan | None:
    """Check the checkpoint folder and (with ``resume``) find the checkpoint to continue
    from. Collective: rank 0 decides, every rank raises the same error.

    Raises OutputError (a foreign ``DIR.checkpoint``; a checkpoint exists and neither
    --resume nor --overwrite was given; --resume without a complete checkpoint) or
    CaseError (--resume with a different case, or a steady case)."""
    from .config import CaseError, OutputError

    if case.time.mode != "transient":
        if resume:
            raise CaseError("--resume: time.mode = 'steady' has no time steps to resume; run it without --resume")
        return None
    cfg = case.checkpoint
    plan = CheckpointPlan(
        checkpoint_folder(out), cfg.every_steps, cfg.every_wall_s, cfg.on_signal, case_key(case)
    )
    outcome: tuple | None = None
    if comm.rank == 0:
        try:
            _prepare_on_root(plan, resume, overwrite)
            outcome = ("ok", plan.resume_path, plan.resume_state, plan.skipped)
        except (CaseError, OutputError) as err:
            outcome = (type(err).__name__, str(err))
    outcome = comm.bcast(outcome, root=0)
    if outcome[0] == "CaseError":
        raise CaseError(outcome[1])
    if outcome[0] == "OutputError":
        raise OutputError(outcome[1])
    _, plan.resume_path, plan.resume_state, plan.skipped = outcome
    return plan


def _prepare_on_root(plan: CheckpointPlan, resume: bool, overwrite: bool) -> None:
    from .config import CaseError, OutputError

    folder = plan.folder
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir() or folder.is_symlink() or not (folder / MARKER).is_file():
            raise OutputError(
                f"{folder} exists and is not a checkpoint folder of bioheat (no {MARKER} file); "
                "move it away: it is where this run keeps its checkpoints"
            )
    path, state, skipped = latest_checkpoint(folder)
    plan.skipped = skipped
    if not resume:
        if path is not None and not overwrite:
            raise OutputError(
                f"{folder} holds a checkpoint of an interrupted run (step {state['step']}, t = "
                f"{state['time_s']:g} s): continue it with --resume, or start again with --overwrite"
            )
        if skipped and not overwrite:  # e.g. written by another version: not ours to delete unasked
            raise OutputError(
                f"{folder} holds checkpoint(s) this version cannot resume ({'; '.join(skipped)}): "
                "start again with --overwrite (which removes them), or move the folder away"
            )
        if folder.exists():
            shutil.rmtree(folder)  # ours (marker) and either empty of checkpoints or --overwrite
        return
    if path is None:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise OutputError(f"--resume: no complete checkpoint in {folder}{why}")
    if state["case_key"] != plan.case_key:
        raise CaseError(
            f"--resume: the case differs from the checkpointed one (hash {plan.case_key[:12]} vs "
            f"{state['case_key'][:12]}, [checkpoint] table not counted); resume with the same case, "
            "or start again with --overwrite"
        )
    plan.resume_path, plan.resume_state = path, state


def remove_folder(plan: CheckpointPlan | None, comm) -> None:
    """After a completed run: the checkpoints are no longer needed."""
    if plan is None:
        return
    comm.barrier()
    if comm.rank == 0 and (plan.folder / MARKER).is_file():
        shutil.rmtree(plan.folder, ignore_errors=True)


# --------------------------------------------------------------------------- partition-free keys
def nodal_keys(V) -> np.ndarray:
    """int64 key of every local dof (owned and ghost) of a scalar Lagrange space of degree 1
    or 2 on an affine simplex mesh: a*N + b with a <= b the input indices of the dof's vertex
    (a = b) or of its edge's end vertices; N the number of input nodes."""
    import basix

    from . import compat

    mesh = V.mesh
    cmap, gdofs = compat.coordinate_map(mesh)
    if cmap.degree != 1:
        raise ValueError("checkpoints need an affine (degree-1) mesh geometry")
    igi = np.asarray(mesh.geometry.input_global_indices, dtype=np.int64)
    n_input = mesh.comm.allreduce(int(igi.max()) + 1 if igi.size else 0, op=_mpi_max())
    vid = igi[np.asarray(gdofs)]  # (cells, vertices) in the reference cell's vertex order
    cells = np.asarray(V.dofmap.list)
    layout = V.dofmap.dof_layout
    topo = basix.topology(getattr(basix.CellType, mesh.topology.cell_type.name))
    keys = np.full(len(V.dofmap.index_map.ghosts) + V.dofmap.index_map.size_local, -1, dtype=np.int64)
    for v in range(len(topo[0])):
        for ld in layout.entity_dofs(0, v):
            keys[cells[:, ld]] = vid[:, v] * n_input + vid[:, v]
    for e, (a, b) in enumerate(topo[1]):
        ld = layout.entity_dofs(1, e)
        if len(ld) > 1:
            raise ValueError("checkpoints support Lagrange degree 1 and 2")
        for d in ld:
            lo, hi = np.minimum(vid[:, a], vid[:, b]), np.maximum(vid[:, a], vid[:, b])
            keys[cells[:, d]] = lo * n_input + hi
    if len(topo) > 2 and any(len(layout.entity_dofs(2, f)) for f in range(len(topo[2]))):
        raise ValueError("checkpoints support Lagrange degree 1 and 2")
    if np.any(keys < 0):
        raise ValueError("a dof is on no cell")
    return keys


def cell_keys(mesh) -> np.ndarray:
    """Input (file) index of every local cell, owned and ghost."""
    im = mesh.topology.index_map(mesh.topology.dim)
    oci = np.asarray(mesh.topology.original_cell_index, dtype=np.int64)
    n = im.size_local + im.num_ghosts
    if len(oci) < n:
        raise ValueError("the mesh does not know the input index of its ghost cells")
    return oci[:n]


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def _gather(comm, keys_owned: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Owned (key, values) of every rank, sorted by key, on rank 0 (None elsewhere)."""
    parts = comm.gather((keys_owned, values), root=0)
    if comm.rank != 0:
        return None
    keys = np.concatenate([k for k, _ in parts])
    order = np.argsort(keys, kind="stable")
    out = {"keys": keys[order]}
    for name in values:
        out[name] = np.concatenate([v[name] for _, v in parts])[order]
    return out


def _positions(global_keys: np.ndarray, local_keys: np.ndarray) -> np.ndarray | None:
    """Index of every local key in the sorted global keys; None if one is missing."""
    if len(global_keys) == 0:
        return None if len(local_keys) else np.zeros(0, dtype=np.int64)
    pos = np.searchsorted(global_keys, local_keys)
    pos = np.minimum(pos, len(global_keys) - 1)
    return pos if np.array_equal(global_keys[pos], local_keys) else None


# --------------------------------------------------------------------------- ablation zone
# The zone (solver.zone.ZoneSampler) keeps the dose at the quadrature points of every owned
# cell: arrays (cells, points) and per-cell flags. They are keyed by the cell's input index;
# within a cell the points are matched by their physical coordinates (a projection on a fixed
# direction orders them the same way on any partition).
_ZONE_POINT_ARRAYS = ("T_prev", "T_max", "omega", "cem43")
_ZONE_CELL_ARRAYS = ("_was_hot", "_bound_prev")
_ORDER_DIRECTION = np.array([0.5773502691896258, 0.6123724356957945, 0.5400617248673217])


def zone_arrays(zone) -> dict[str, np.ndarray]:
    """The zone's running state (owned cells), with the points' coordinates."""
    out = {}
    for name in _ZONE_POINT_ARRAYS + _ZONE_CELL_ARRAYS:
        value = getattr(zone, name, None)
        if value is not None:
            out[name] = np.asarray(value).copy()
    out["coords"] = zone.coordinates(np.arange(len(zone.cells)))
    return out


def restore_zone(zone, saved: dict[str, np.ndarray], where: str) -> None:
    """Put saved zone arrays (already in this rank's cell order) back; points within each
    cell are matched by coordinates. CaseError if they do not match."""
    from .config import CaseError

    current = zone.coordinates(np.arange(len(zone.cells)))
    order_saved = np.argsort(saved["coords"] @ _ORDER_DIRECTION, axis=1)
    order_now = np.argsort(current @ _ORDER_DIRECTION, axis=1)
    a = np.take_along_axis(saved["coords"], order_saved[..., None], axis=1)
    b = np.take_along_axis(current, order_now[..., None], axis=1)
    ok = np.allclose(a, b, rtol=0.0, atol=1e-12)
    if not zone.comm.allreduce(bool(ok), op=_mpi_land()):
        raise CaseError(f"{where} does not fit this mesh (the ablation zone's points differ)")
    rows = np.arange(len(zone.cells))[:, None]
    for name in _ZONE_POINT_ARRAYS:
        if name in saved:
            value = np.empty_like(saved[name])
            value[rows, order_now] = saved[name][rows, order_saved]
            setattr(zone, name, value)
    for name in _ZONE_CELL_ARRAYS:
        if name in saved:
            setattr(zone, name, saved[name].copy())
    zone.reset_rate_cache()  # computed again from the restored T_prev (bitwise the same values)


# --------------------------------------------------------------------------- state
def nodal_arrays(problem) -> dict[str, np.ndarray]:
    """Every nodal running-state array (local, with ghosts) by name: T and each field of the
    dose tracker (found by inspection, so fields added there are checkpointed too)."""
    from dolfinx import fem

    n = len(problem.T.x.array)
    out = {"T": problem.T.x.array}
    heat = getattr(problem, "heat", problem)
    if hasattr(heat, "guess_arrays"):  # the states the next solve's initial guess is built from
        out.update(heat.guess_arrays())
    dose = problem.dose
    if dose is not None:
        for attr, v in vars(dose).items():
            if attr in _DOSE_CONSTANTS:
                continue
            if isinstance(v, fem.Function) and v.x.array.shape == (n,):
                out[f"dose.{attr}"] = v.x.array
            elif isinstance(v, np.ndarray) and v.shape == (n,):
                out[f"dose.{attr}"] = v
            elif isinstance(v, dict):
                for k, a in v.items():
                    if isinstance(a, np.ndarray) and a.shape == (n,):
                        out[f"dose.{attr}.{k!r}"] = a
                    elif isinstance(a, fem.Function) and a.x.array.shape == (n,):
                        out[f"dose.{attr}.{k!r}"] = a.x.array
    return out


def snapshot(problem) -> dict[str, np.ndarray]:
    """The nodal state gathered and sorted by partition-free key, on every rank (for
    comparing runs on different rank counts). Collective."""
    comm = problem.comm
    n_owned = problem.V.dofmap.index_map.size_local
    keys = nodal_keys(problem.V)
    arrays = {k: v[:n_owned].copy() for k, v in nodal_arrays(problem).items()}
    return comm.bcast(_gather(comm, keys[:n_owned], arrays), root=0)


class Checkpointer:
    """Writes checkpoints from the time loop and restores a resumed run. Collective."""

    def __init__(self, plan: CheckpointPlan, problem, n_steps: int, dt: float):
        self.plan = plan
        self.p = problem
        self.comm = problem.comm
        self.n_steps = n_steps
        self.dt = dt
        self.flag = 0
        self.last_wall = time.perf_counter()
        self.last_step = -1
        self.written = 0
        self.errors: list[str] = []
        self.resumed_from: dict | None = None
        self.hook_step, self.hook_rank = -1, 0
        self.disabled = ""
        try:  # computed once: keys and coordinates of the dofs and cells
            self.keys = nodal_keys(problem.V)
            self.cell_keys = cell_keys(problem.mesh)
            self.coords = problem.V.tabulate_dof_coordinates()
        except ValueError as err:  # same outcome on every rank (mesh-wide properties)
            from .config import CaseError

            if plan.resume_state is not None:
                raise CaseError(f"--resume: {err}") from None
            self.disabled = str(err)
            if self.comm.rank == 0:
                import sys

                print(f"warning: no checkpoints for this run: {err}", file=sys.stderr, flush=True)
        hook = os.environ.get(TEST_SIGNAL_ENV, "")
        if hook:
            step, _, rank = hook.partition(":")
            self.hook_step, self.hook_rank = int(step), int(rank or 0)

    # ------------------------------------------------------------------ signals
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT only set a flag while the loop runs; a second one acts as the
        handler before (e.g. Ctrl-C twice stops at once). Main thread only (Python's rule)."""
        self._previous = {}
        if self.disabled or not self.plan.on_signal or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, frame):
            if self.flag:
                self.restore_signal_handlers()
                signal.raise_signal(signum)
                return
            self.flag = signum

        for s in self._previous:
            signal.signal(s, handler)

    def restore_signal_handlers(self) -> None:
        for s, h in getattr(self, "_previous", {}).items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous = {}

    # ------------------------------------------------------------------ per step
    def after_step(self, n: int, t: float, ls) -> None:
        """Collective: checkpoint when due; on a signal (any rank) checkpoint and raise
        RunInterrupted. Nothing at the last step (the run is about to complete)."""
        if self.disabled:
            return
        if n == self.hook_step and self.comm.rank == self.hook_rank and self.plan.on_signal:
            signal.raise_signal(signal.SIGTERM)
        wall_due = self.plan.every_wall_s > 0 and time.perf_counter() - self.last_wall >= self.plan.every_wall_s
        flags = np.zeros(2, dtype=np.int64)
        self.comm.Allreduce(np.array([self.flag, int(wall_due)], dtype=np.int64), flags, op=_mpi_max())
        flags = [int(f) for f in flags]
        if n >= self.n_steps:
            return
        if flags[0]:
            ok = self.write(n, t, ls, reason=signal.Signals(flags[0]).name)
            raise RunInterrupted(
                signal.Signals(flags[0]).name, n, t, self.plan.folder, ok, self.errors[-1] if self.errors else ""
            )
        if flags[1] or (self.plan.every_steps and n % self.plan.every_steps == 0):
            self.write(n, t, ls, reason="wall time" if flags[1] else "every_steps")

    def write(self, n: int, t: float, ls, reason: str) -> bool:
        """Write the checkpoint of step n (collective). False (and a warning) if it failed."""
        if n == self.last_step:
            return True
        p = self.p
        comm = self.comm
        n_owned = p.V.dofmap.index_map.size_local
        keys = self.keys
        local = nodal_arrays(p)
        nodal = {k: v[:n_owned].copy() for k, v in local.items()}
        nodal["coords"] = self.coords[:n_owned]
        g_nodal = _gather(comm, keys[:n_owned], nodal)
        # Ghost entries as this partition holds them: numpy's vectorised exp/log may round a
        # ghost's dose differently from its owner, so a resume on the same partition takes
        # them from here (bitwise), any other from the owners.
        ghosts = {"keys": keys[n_owned:], **{k: v[n_owned:].copy() for k, v in local.items()}}
        coag = p.coagulation
        g_cell = None
        if coag is not None and coag.d_cells_at_light is not None:
            n_cells = p.mesh.topology.index_map(p.mesh.topology.dim).size_local
            ck = self.cell_keys
            g_cell = _gather(comm, ck[:n_cells], {"d_cells_at_light": coag.d_cells_at_light[:n_cells].copy()})
            ghosts["cell.keys"] = ck[n_cells:]
            ghosts["cell.d_cells_at_light"] = coag.d_cells_at_light[n_cells:].copy()
        zone = getattr(p.dose, "zone", None) if p.dose is not None else None
        g_zone = None
        if zone is not None and zone.T_prev is not None:
            n_cells = p.mesh.topology.index_map(p.mesh.topology.dim).size_local
            g_zone = _gather(comm, self.cell_keys[:n_cells], zone_arrays(zone))
        all_ghosts = comm.gather(ghosts, root=0)
        error = None
        if comm.rank == 0:
            try:
                if g_zone is not None:
                    g_cell = dict(g_cell or {})
                    g_cell.update({f"zone.{k}": v for k, v in g_zone.items()})
                self._write_root(n, t, ls, reason, g_nodal, g_cell, all_ghosts)
            except OSError as err:
                error = f"{self.plan.folder}: {err.strerror or err}"
        error = comm.bcast(error, root=0)
        self.last_wall = time.perf_counter()
        if error is not None:
            self.errors.append(error)
            if comm.rank == 0:
                import sys

                print(f"warning: checkpoint at step {n} not written: {error}", file=sys.stderr, flush=True)
            return False
        self.last_step = n
        self.written += 1
        return True

    def _write_root(self, n, t, ls, reason, g_nodal, g_cell, all_ghosts) -> None:
        p = self.p
        arrays = {f"nodal.{k}": v for k, v in g_nodal.items()}
        if g_cell is not None:
            arrays.update({f"cell.{k}": v for k, v in g_cell.items()})
        for r, ghosts in enumerate(all_ghosts):
            arrays.update({f"ghost{r}.{k}": v for k, v in ghosts.items()})
        ncols = len(ls.rows[0]) if ls.rows else 0
        arrays["series.probe_times"] = np.asarray(ls.times, dtype=np.float64)
        arrays["series.probe_rows"] = np.asarray(ls.rows, dtype=np.float64).reshape(len(ls.rows), ncols)
        arrays["series.power_log"] = np.asarray(ls.power_log, dtype=np.float64).reshape(-1, 4)
        arrays["series.krylov_iterations"] = np.asarray(p.stats.iterations, dtype=np.int64)
        if ls.recorder is not None:
            width = 1 + 2 * len(ls.recorder.regions)
            arrays["series.critical_rows"] = np.asarray(ls.recorder.rows, dtype=np.float64).reshape(-1, width)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        c = ls.control
        state = {
            "format": FORMAT,
            "step": n,
            "time_s": t,
            "reason": reason,
            "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "case_key": self.plan.case_key,
            "ranks": self.comm.size,
            "num_dofs": p.num_dofs(),
            "num_cells": p.num_cells(),
            "peak": dict(ls.peak),
            "critical_peak": dict(ls.critical.peak) if ls.critical is not None else None,
            "control": {"stopped": c.stopped, "paused_by": set(c.paused_by), "reached": dict(c.reached),
                        "events": list(c.events)},
            "laser_gate": ls.laser_gate,
            "watch": (
                {"first_above_limit": ls.watch.first_above_limit,
                 "source_max_C": [src["max_nodal_temperature_C"] for src in ls.watch.sources]}
                if ls.watch is not None
                else None
            ),
            # Crank-Nicolson damped start-up (solver.startup): steps still to damp, last gate seen
            "startup": (
                {"remaining": p.startup.remaining, "gate": p.startup.gate, "damped_steps": p.startup.damped_steps}
                if getattr(p, "startup", None) is not None
                else None
            ),
            # the heat solve's initial guess (BioheatProblem._extrapolate_guess): its step times
            "extrapolation": {"times": list(p.heat.guess_times), "end": p.heat.guess_end},
            "light_refreshes": p.coagulation.light_refreshes if p.coagulation is not None else 0,
            "light_solves": p.laser.solves if p.laser is not None else 0,
            "arrays_bytes": len(data),
            "arrays_sha256": hashlib.sha256(data).hexdigest(),
        }
        text = json.dumps(_encode(state), indent=1, allow_nan=False)
        folder = self.plan.folder
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / MARKER
        if not marker.exists():
            _write_synced(marker, b"checkpoints of a bioheat run (spine-litt); removed when the run completes\n")
        tmp = folder / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        _write_synced(tmp / "arrays.npz", data)
        _write_synced(tmp / "state.json", text.encode())
        _fsync_dir(tmp)
        final = folder / f"step-{n:09d}"
        if final.exists():  # a damaged one of the same step (e.g. from an earlier attempt)
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(folder)
        for old in _step_dirs(folder)[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in folder.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    # ------------------------------------------------------------------ resume
    def restore(self, ls) -> tuple[int, float]:
        """Put the checkpoint's state into the problem and the loop state. Returns the
        (step, time) it was written at. Collective; CaseError if it does not fit the mesh."""
        from .config import CaseError

        p = self.p
        comm = self.comm
        st = self.plan.resume_state
        arrays = None
        if comm.rank == 0:
            with np.load(self.plan.resume_path / "arrays.npz") as npz:
                arrays = {k: npz[k] for k in npz.files}
        arrays = comm.bcast(arrays, root=0)
        where = f"--resume: checkpoint {self.plan.resume_path}"
        if st["num_dofs"] != p.num_dofs() or st["num_cells"] != p.num_cells():
            raise CaseError(
                f"{where} was written on a mesh with {st['num_cells']} cells / {st['num_dofs']} dofs; "
                f"this mesh has {p.num_cells()} / {p.num_dofs()}"
            )
        keys = self.keys
        pos = _positions(arrays["nodal.keys"], keys)
        ok = pos is not None and np.allclose(arrays["nodal.coords"][pos], self.coords, rtol=0, atol=1e-12)
        if not comm.allreduce(bool(ok), op=_mpi_land()):
            raise CaseError(f"{where} does not fit this mesh (its nodes differ)")
        targets = nodal_arrays(p)
        missing = sorted(set(targets) - {k[len("nodal."):] for k in arrays if k.startswith("nodal.")})
        if missing:
            raise CaseError(f"{where} lacks the state {missing} (written by another version?)")
        n_owned = p.V.dofmap.index_map.size_local
        same = self._same_partition(arrays, f"ghost{comm.rank}.keys", keys[n_owned:])
        for name, target in targets.items():
            target[:] = arrays[f"nodal.{name}"][pos]
            if same:
                target[n_owned:] = arrays[f"ghost{comm.rank}.{name}"]
        # series and scalars
        ls.times[:] = arrays["series.probe_times"].tolist()
        ls.rows[:] = list(arrays["series.probe_rows"])
        ls.power_log[:] = [tuple(r) for r in arrays["series.power_log"].tolist()]
        p.stats.iterations[:] = arrays["series.krylov_iterations"].tolist()
        if ls.recorder is not None and "series.critical_rows" in arrays:
            ls.recorder.rows[:] = arrays["series.critical_rows"].tolist()
        ls.peak.clear()
        ls.peak.update(st["peak"])
        if ls.critical is not None and st["critical_peak"] is not None:
            ls.critical.peak = dict(st["critical_peak"])
        c = ls.control
        c.stopped = st["control"]["stopped"]
        c.paused_by = set(st["control"]["paused_by"])
        c.reached = dict(st["control"]["reached"])
        c.events = list(st["control"]["events"])
        ls.laser_gate = st["laser_gate"]
        if ls.watch is not None and st.get("watch") is not None:
            ls.watch.first_above_limit = st["watch"]["first_above_limit"]
            for src, value in zip(ls.watch.sources, st["watch"]["source_max_C"]):
                src["max_nodal_temperature_C"] = value
        zone = getattr(p.dose, "zone", None) if p.dose is not None else None
        if zone is not None and "cell.zone.keys" in arrays:
            n_cells = p.mesh.topology.index_map(p.mesh.topology.dim).size_local
            zpos = _positions(arrays["cell.zone.keys"], self.cell_keys[:n_cells])
            if not comm.allreduce(zpos is not None, op=_mpi_land()):
                raise CaseError(f"{where} does not fit this mesh (its cells differ)")
            saved = {k[len("cell.zone."):]: v[zpos] for k, v in arrays.items() if k.startswith("cell.zone.")}
            restore_zone(zone, saved, where)
        p.heat.guess_times[:] = st["extrapolation"]["times"]
        p.heat.guess_end = st["extrapolation"]["end"]
        if getattr(p, "startup", None) is not None and st.get("startup") is not None:
            p.startup.remaining = st["startup"]["remaining"]
            p.startup.gate = st["startup"]["gate"]
            p.startup.damped_steps = st["startup"]["damped_steps"]
        # coagulation: operators from Omega and T; light from the damage at its last solve
        coag = p.coagulation
        if coag is not None:
            if "cell.keys" in arrays:
                ck = self.cell_keys
                cpos = _positions(arrays["cell.keys"], ck)
                if not comm.allreduce(cpos is not None, op=_mpi_land()):
                    raise CaseError(f"{where} does not fit this mesh (its cells differ)")
                coag.d_cells_at_light = arrays["cell.d_cells_at_light"][cpos].copy()
                n_cells = p.mesh.topology.index_map(p.mesh.topology.dim).size_local
                if self._same_partition(arrays, f"ghost{comm.rank}.cell.keys", ck[n_cells:]):
                    coag.d_cells_at_light[n_cells:] = arrays[f"ghost{comm.rank}.cell.d_cells_at_light"]
                if st["light_refreshes"] > 0:
                    coag.refresh_light(coag.d_cells_at_light)
            coag.light_refreshes = st["light_refreshes"]
            coag.update_operators()
        if p.laser is not None:
            p.laser.solves = st["light_solves"]
        self.last_step = st["step"]
        self.resumed_from = {
            "step": st["step"],
            "time_s": st["time_s"],
            "ranks": st["ranks"],
            "checkpoint": str(self.plan.resume_path),
            "skipped": list(self.plan.skipped),
        }
        return st["step"], st["time_s"]

    def _same_partition(self, arrays: dict, name: str, local_keys: np.ndarray) -> bool:
        """Whether this rank holds the same ghosts, in the same order, as the writer's rank."""
        return (
            self.plan.resume_state["ranks"] == self.comm.size
            and name in arrays
            and np.array_equal(arrays[name], local_keys)
        )

    def summary(self) -> dict:
        return {
            "folder": str(self.plan.folder),
            "disabled": self.disabled or None,
            "written": self.written,
            "errors": list(self.errors),
            "resumed_from": self.resumed_from,
        }


def _mpi_land():
    from mpi4py import MPI

    return MPI.LAND
