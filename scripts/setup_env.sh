#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv in the repository root).
#
#   bash scripts/setup_env.sh                 set up / update .venv (fast no-op when up to date)
#   bash scripts/setup_env.sh --print-python  only find (or build) a Python >= 3.12 and print its path
#   bash scripts/setup_env.sh --force         reinstall even if the stamp says up to date
#
# Environment:
#   PYTHON                  interpreter to try first (must be >= 3.12)
#   SPINE_LITT_PIP_EXTRAS   extras to install (default "fem,dev"); e.g. "dev" when DOLFINx comes
#                           from conda-forge/Docker/Spack. Without "fem" the venv is created with
#                           --system-site-packages so that it sees that DOLFINx.
#   SPINE_LITT_VENV         venv directory (default .venv; relative paths are relative to the repo root)
#   SPINE_LITT_NO_BUILD=1   never build CPython from source (fail instead)
#   SPINE_LITT_VERIFY=1     also run the import check when the stamp is up to date
#   XDG_CACHE_HOME          per-user cache; a CPython built here goes to $XDG_CACHE_HOME/spine-litt/python3.13
#
# Python 3.13 may be built from Debian trixie's source package: Debian 12 ships 3.11 and the
# DOLFINx wheels (dolfinx-solver-real) need >= 3.12.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPINE_LITT_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
STAMP="$VENV/.setup-stamp"
EXTRAS="${SPINE_LITT_PIP_EXTRAS-fem,dev}"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/spine-litt"
BUILT_PREFIX="$CACHE_BASE/python3.13"
BUILT_PYTHON="$BUILT_PREFIX/bin/python3.13"

log() { printf 'setup_env: %s\n' "$*" >&2; }
die() { printf 'setup_env: ERROR: %s\n' "$*" >&2; exit 1; }

has_fem_extra() { [[ ",${EXTRAS// /}," == *,fem,* ]]; }

expected_stamp() {
    local sum
    sum="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    printf '%s extras=%s\n' "$sum" "$EXTRAS"
}

# Python >= 3.12 check that also makes sure `-m venv` will work (ensurepip, ssl for pip).
# Prints the real interpreter path (resolves pyenv shims and the like) on success.
probe_python() {
    local c="$1"
    [[ -n "$c" ]] || return 1
    timeout 60 "$c" -c 'import sys
if sys.version_info < (3, 12): sys.exit(1)
import venv, ensurepip, ssl
print(sys.executable)' 2>/dev/null
}

venv_ok() {
    [[ -x "$VENV/bin/python" ]] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# apt helpers (only as root; otherwise say what is missing)
APT_UPDATED=0
is_root() { [[ "$(id -u)" == 0 ]]; }
apt_update_once() {
    if [[ $APT_UPDATED == 0 ]]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
}
apt_install() {  # apt_install WHAT pkg...
    local what="$1"; shift
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing $what ($*) and no apt-get here: install them with your system's package manager"
        return 1
    fi
    if ! is_root; then
        log "missing $what; as root run: apt-get install -y --no-install-recommends $*"
        return 1
    fi
    apt_update_once
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ---------------------------------------------------------------------------------------------
# Building CPython 3.13 from Debian trixie sources into the per-user cache
build_python() {
    command -v apt-get >/dev/null 2>&1 || die "no Python >= 3.12 found and no apt-get to fetch CPython sources; set PYTHON=/path/to/python3.12+"
    [[ -r /etc/apt/sources.list.d/debian.sources ]] || die "no /etc/apt/sources.list.d/debian.sources (not Debian 12?); set PYTHON=/path/to/python3.12+"

    local deps=(build-essential pkg-config xz-utils libssl-dev zlib1g-dev libffi-dev libbz2-dev
                liblzma-dev libsqlite3-dev libreadline-dev uuid-dev)
    local missing=() p
    for p in "${deps[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        apt_install "CPython build dependencies" "${missing[@]}" || die "cannot install CPython build dependencies"
    fi

    local uri W o
    uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    [[ -n "$uri" ]] || die "no URIs: line in /etc/apt/sources.list.d/debian.sources"
    W="$(mktemp -d "$CACHE_BASE/build.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$W'" EXIT
    mkdir -p "$W/lists/partial" "$W/cache/archives/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$W/sources.list"
    o=(-o "Dir::Etc::SourceList=$W/sources.list" -o Dir::Etc::SourceParts=/dev/null
       -o "Dir::State::Lists=$W/lists" -o "Dir::Cache=$W/cache")
    is_root && o+=(-o APT::Sandbox::User=root)   # private dirs are not readable by _apt

    log "downloading CPython 3.13 sources from Debian trixie ($uri)"
    apt-get "${o[@]}" update -qq >&2 || die "apt-get update of the private trixie deb-src list failed"
    (cd "$W" && apt-get "${o[@]}" -qq source --download-only python3.13 >&2) || die "apt-get source python3.13 failed"
    local tarball
    tarball="$(ls "$W"/python3.13_*.orig.tar.xz 2>/dev/null | head -n1)"
    [[ -n "$tarball" ]] || die "no python3.13 orig tarball downloaded"
    tar xf "$tarball" -C "$W"
    local src
    src="$(ls -d "$W"/Python-3.13.* | head -n1)"

    log "building $(basename "$src") into $BUILT_PREFIX (a few minutes; log: $W/build.log)"
    rm -rf "$BUILT_PREFIX"
    if ! (cd "$src" && ./configure --prefix="$BUILT_PREFIX" --with-ensurepip=install &&
              make -j"$(nproc)" && make install) >"$W/build.log" 2>&1; then
        tail -n 40 "$W/build.log" >&2
        cp "$W/build.log" "$CACHE_BASE/python-build-failed.log" 2>/dev/null || true
        rm -rf "$BUILT_PREFIX"
        die "CPython build failed (log kept at $CACHE_BASE/python-build-failed.log)"
    fi
    probe_python "$BUILT_PYTHON" >/dev/null || {
        rm -rf "$BUILT_PREFIX"
        die "built CPython lacks ssl/ensurepip (missing -dev packages?)"
    }
    rm -rf "$W"
    trap - EXIT
    log "built $("$BUILT_PYTHON" -V 2>&1) at $BUILT_PYTHON"
}

# ---------------------------------------------------------------------------------------------
# Find a Python >= 3.12; prints its path on stdout.
find_python() {
    local c p

    if [[ -n "${PYTHON:-}" ]]; then
        if p="$(probe_python "$PYTHON")"; then
            log "using \$PYTHON: $p"; echo "$p"; return 0
        fi
        log "\$PYTHON=$PYTHON is not a usable Python >= 3.12 (with venv/ensurepip/ssl); looking further"
    fi

    for c in python3.13 python3.12 python3.14 python3; do
        command -v "$c" >/dev/null 2>&1 || continue
        if p="$(probe_python "$c")"; then
            log "using $c from PATH: $p"; echo "$p"; return 0
        fi
    done

    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}" pat
    for pat in '3.13*' '3.12*' '3.1[4-9]*'; do
        # newest patch release first
        while IFS= read -r c; do
            [[ -n "$c" ]] || continue
            if p="$(probe_python "$c/bin/python3")"; then
                log "using pyenv interpreter: $p"; echo "$p"; return 0
            fi
        done < <(compgen -G "$pyenv_root/versions/$pat" | sort -rV)
    done

    if p="$(probe_python "$BUILT_PYTHON")"; then
        log "using previously built interpreter: $p"; echo "$p"; return 0
    fi

    if command -v uv >/dev/null 2>&1; then
        log "trying: uv python install 3.12"
        if timeout 300 uv python install 3.12 >&2; then
            c="$(uv python find 3.12 2>/dev/null || true)"
            if p="$(probe_python "$c")"; then
                log "using uv-managed interpreter: $p"; echo "$p"; return 0
            fi
        fi
        log "uv could not provide Python 3.12 (no access to its download host?)"
    fi

    if [[ "${SPINE_LITT_NO_BUILD:-0}" == 1 ]]; then
        die "no Python >= 3.12 found and SPINE_LITT_NO_BUILD=1; set PYTHON=/path/to/python3.12+"
    fi

    mkdir -p "$CACHE_BASE"
    exec 9>"$CACHE_BASE/.build.lock"
    if ! flock -n 9; then
        log "another setup is building CPython in $CACHE_BASE; waiting for it"
        flock 9
    fi
    if p="$(probe_python "$BUILT_PYTHON")"; then   # built by the process we waited for
        flock -u 9
        log "using interpreter built by a concurrent setup: $p"; echo "$p"; return 0
    fi
    log "no Python >= 3.12 found: building CPython 3.13 from Debian sources"
    build_python
    flock -u 9
    p="$(probe_python "$BUILT_PYTHON")" || die "built interpreter does not work"
    echo "$p"
}

ensure_x_libs() {
    local ldc missing=() lib pkgs=()
    ldc="$(command -v ldconfig || echo /sbin/ldconfig)"
    local cache; cache="$("$ldc" -p 2>/dev/null || true)"
    declare -A pkg_of=([libGLU.so.1]=libglu1-mesa [libXcursor.so.1]=libxcursor1
                       [libXft.so.2]=libxft2 [libXinerama.so.1]=libxinerama1)
    for lib in libGLU.so.1 libXcursor.so.1 libXft.so.2 libXinerama.so.1; do
        grep -qF "$lib " <<<"$cache" || { missing+=("$lib"); pkgs+=("${pkg_of[$lib]}"); }
    done
    ((${#missing[@]})) || return 0
    log "gmsh needs ${missing[*]} (even headless)"
    apt_install "X/GL libraries for gmsh" libglu1-mesa libxcursor1 libxft2 libxinerama1 ||
        log "continuing; 'import gmsh' will fail until ${pkgs[*]} are installed"
}

# ---------------------------------------------------------------------------------------------
FORCE=0
case "${1:-}" in
    --print-python) find_python; exit 0 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) die "unknown option: $1 (try --help)" ;;
esac

up_to_date() {
    [[ $FORCE == 0 && -x "$VENV/bin/python" && -f "$STAMP" ]] || return 1
    [[ "$(cat "$STAMP")" == "$(expected_stamp)" ]] || return 1
    if [[ "${SPINE_LITT_VERIFY:-0}" == 1 ]]; then
        verify >/dev/null || return 1
    fi
}

verify() {
    if has_fem_extra; then
        "$VENV/bin/python" -c "import dolfinx_solver, dolfinx, gmsh, meshio, pydantic; print(dolfinx.__version__)"
    else
        "$VENV/bin/python" -c "import dolfinx, gmsh, meshio, pydantic; print(dolfinx.__version__)"
    fi
}

# 1. fast path
if up_to_date; then
    exit 0
fi

# Serialise concurrent setups of the same checkout (lock on this script; creates no file).
exec 8<"${BASH_SOURCE[0]}"
if ! flock -n 8; then
    log "another setup of this checkout is running; waiting for it"
    flock 8
    if up_to_date; then exit 0; fi
fi

log "setting up $VENV (extras: ${EXTRAS:-none})"

# 3. system libraries for gmsh
ensure_x_libs

# 4. venv
want_ssp=false; has_fem_extra || want_ssp=true
if [[ -e "$VENV" ]]; then
    if ! venv_ok; then
        log "existing $VENV is broken or has Python < 3.12: recreating it"
        rm -rf "$VENV"
    else
        have_ssp="$(awk -F' *= *' '$1 == "include-system-site-packages" {print $2}' "$VENV/pyvenv.cfg" 2>/dev/null)"
        if [[ "${have_ssp:-false}" != "$want_ssp" ]]; then
            log "existing $VENV has include-system-site-packages=${have_ssp:-false}, want $want_ssp: recreating it"
            rm -rf "$VENV"
        fi
    fi
fi
if [[ ! -e "$VENV" ]]; then
    # 2. find an interpreter only when a venv has to be made
    PY="$(find_python)"
    log "creating $VENV with $("$PY" -V 2>&1)"
    ssp=(); [[ $want_ssp == true ]] && ssp=(--system-site-packages)
    "$PY" -m venv "${ssp[@]}" "$VENV"
else
    log "reusing $VENV ($("$VENV/bin/python" -V 2>&1))"
fi
rm -f "$STAMP"

log "upgrading pip"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2 || log "pip upgrade failed; continuing with $("$VENV/bin/pip" -V | cut -d' ' -f1-2)"

spec="."; [[ -n "$EXTRAS" ]] && spec=".[$EXTRAS]"
log "pip install -e \"$spec\""
(cd "$ROOT" && "$VENV/bin/python" -m pip install -q -e "$spec" >&2)

log "verifying imports"
if ! version="$(verify)"; then
    has_fem_extra || die "import check failed: with SPINE_LITT_PIP_EXTRAS=$EXTRAS DOLFINx must come from the interpreter's own site-packages (e.g. conda-forge fenics-dolfinx; PYTHON=\$CONDA_PREFIX/bin/python)"
    die "import check failed"
fi
expected_stamp > "$STAMP"
log "ready: $VENV (Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), DOLFINx $version)"
