"""Reading the files a case refers to, confined and bounded (no FEM imports).

- Case files and schedule CSVs are UTF-8 (a byte-order mark is accepted and dropped); other
  encodings, files over :data:`MAX_CASE_BYTES` / :data:`MAX_CSV_BYTES`, nesting deeper than
  :data:`MAX_NESTING` and CSVs with more than :data:`MAX_SCHEDULE_ROWS` rows are refused with a
  :class:`CaseError`.
- Referenced files (``geometry.path``, ``applicator.schedule_csv``) must resolve - symlinks
  followed - inside the case file's folder or one of the folders listed in the environment
  variable ``SPINE_LITT_DATA_DIRS`` (``os.pathsep``-separated; ``bioheat run --data-dir DIR``
  adds one). Others are refused by path, before they are opened.
- Error messages never contain a referenced file's content, and echoed values are shortened.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import CaseError, shorten

DATA_DIRS_ENV = "SPINE_LITT_DATA_DIRS"
MAX_CASE_BYTES = 10_000_000
MAX_CSV_BYTES = 50_000_000
MAX_SCHEDULE_ROWS = 1_000_000
MAX_NESTING = 32


def allowed_dirs(case_dir: Path) -> list[Path]:
    """The case's folder and the folders of ``SPINE_LITT_DATA_DIRS`` (resolved)."""
    dirs = [Path(case_dir).resolve()]
    for item in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep):
        if item.strip():
            dirs.append(Path(item.strip()).expanduser().resolve())
    return dirs


def confine(value: Any, case_dir: Path, key: str, source: str) -> Path:
    """The resolved path of a referenced file, or CaseError if it lies outside the allowed
    folders, does not exist or is not a regular file. Nothing is read."""
    if not isinstance(value, str) or not value.strip():
        raise CaseError(f"{source}: {key} = {shorten(repr(value), 80)}: must be a file name (text)")
    if "\x00" in value:
        raise CaseError(f"{source}: {key}: the file name contains a NUL character")
    raw = Path(value).expanduser()
    candidate = raw if raw.is_absolute() else Path(case_dir) / raw
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        raise CaseError(f"{source}: {key} = '{shorten(value, 100)}': cannot resolve the path (symlink loop?)") from None
    dirs = allowed_dirs(case_dir)
    if not any(resolved.is_relative_to(d) for d in dirs):
        raise CaseError(
            f"{source}: {key} = '{shorten(value, 100)}' resolves to {shorten(resolved, 100)}, outside the "
            f"case's folder {shorten(dirs[0], 100)}; allowed: files inside the case's folder, or in a folder "
            f"named in {DATA_DIRS_ENV} (or bioheat --data-dir)"
        )
    if not resolved.is_file():
        raise CaseError(f"{source}: {key} = '{shorten(value, 100)}': file not found ({shorten(resolved, 100)})")
    return resolved


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CaseError(f"{what}: not UTF-8 text (invalid byte at offset {err.start}); save it as UTF-8") from None


def read_limited(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise CaseError(f"{what}: {size / 1e6:.1f} MB; allowed: at most {limit / 1e6:.0f} MB")
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as err:
        raise CaseError(f"{what}: cannot read ({err.strerror or type(err).__name__})") from None
    if len(raw) > limit:
        raise CaseError(f"{what}: larger than {limit / 1e6:.0f} MB")
    return raw


def _depth(value: Any, limit: int, level: int = 0) -> int:
    """Nesting depth of tables/arrays (stops counting past ``limit``), iteratively."""
    stack = [(value, level)]
    deepest = level
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def read_case_toml(path: Path) -> dict[str, Any]:
    """The TOML table of a case file; CaseError for anything that is not a readable, UTF-8,
    valid TOML file of bounded size and nesting."""
    what = shorten(path, 120)
    text = _decode(read_limited(path, MAX_CASE_BYTES, what), what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseError(f"{what}: not valid TOML: {shorten(err, 200)}") from None
    except RecursionError:
        raise CaseError(f"{what}: nested too deeply; allowed: at most {MAX_NESTING} levels") from None
    if _depth(data, MAX_NESTING) > MAX_NESTING:
        raise CaseError(f"{what}: nested too deeply; allowed: at most {MAX_NESTING} levels")
    return data


def read_schedule_csv(csv_path: Path, key: str, source: str) -> list[list[float]]:
    """Rows [time_s, power_W] of a schedule CSV with a header naming those two columns
    (other columns ignored). CaseError with the line number - never the line's content - for
    anything else."""
    what = f"{source}: {key}"
    text = _decode(read_limited(csv_path, MAX_CSV_BYTES, what), what)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise CaseError(f"{what}: the file is empty; needs a header line with columns time_s, power_W")
        header = [h.strip() for h in header]
        if "time_s" not in header or "power_W" not in header:
            raise CaseError(f"{what}: needs a header line with columns time_s, power_W (first line has neither)"
                            if not ({"time_s", "power_W"} & set(header)) else
                            f"{what}: needs a header line with both columns time_s and power_W")
        it, ip = header.index("time_s"), header.index("power_W")
        rows: list[list[float]] = []
        for n, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(rows) >= MAX_SCHEDULE_ROWS:
                raise CaseError(f"{what}: more than {MAX_SCHEDULE_ROWS} rows")
            try:
                t, p = float(row[it]), float(row[ip])
            except (IndexError, ValueError):
                raise CaseError(f"{what}: line {n}: expected numbers in columns time_s and power_W") from None
            if not (math.isfinite(t) and math.isfinite(p)):
                raise CaseError(f"{what}: line {n}: time_s and power_W must be finite numbers")
            rows.append([t, p])
    except csv.Error as err:
        raise CaseError(f"{what}: not a valid CSV file (line {reader.line_num}: {shorten(err, 60)})") from None
    if not rows:
        raise CaseError(f"{what}: no data rows after the header")
    return rows


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (provenance, the case hash of mesh files and
    the mesh cache's check all use this one)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
