#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests of `bioheat sweep run --executor slurm`.
#
#   bash scripts/slurm_local.sh start [DIR]   write a fresh config in DIR (default: a new temporary
#                                             folder), start munged, slurmctld and slurmd, wait until
#                                             the node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   bash scripts/slurm_local.sh stop DIR      cancel every job, wait until the queue is empty, stop
#                                             the daemons by their pid files, remove nothing else
#   bash scripts/slurm_local.sh install       apt-get install slurm-wlm and munge when missing (root)
#   bash scripts/slurm_local.sh ensure        as install when root and apt-get are there; otherwise
#                                             only say why not (exit 0: the SLURM test then skips)
#
# Needs Debian's slurm-wlm and munge (`install`), root (SlurmUser=root), and no systemd.
# Clients and jobs find the cluster through SLURM_CONF. Daemons are stopped by the PIDs in
# their pid files only (never by name); a stopped daemon can linger as a zombie, so the state
# letter in /proc/PID/stat is checked rather than `kill -0`.
set -euo pipefail

log() { printf 'slurm_local: %s\n' "$*" >&2; }
die() { printf 'slurm_local: ERROR: %s\n' "$*" >&2; exit 1; }

alive() {  # pid is running (not gone, not a zombie)
    local pid="$1" state
    [[ -r "/proc/$pid/stat" ]] || return 1
    state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)"
    [[ "$state" != "Z" && "$state" != "X" ]]
}

stop_pidfile() {
    local f="$1" pid i
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    [[ -n "$pid" ]] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
}

cmd_install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "slurm-wlm/munge missing and not root: install them (apt-get install slurm-wlm munge)"
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get"
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
}

start_munge() {  # $1: folder; notes there when this script started munged (stop ends it then)
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0  # a munged is already running and working: not ours, left alone
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --force >&2
        else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    if command -v runuser >/dev/null; then
        runuser -u munge -- munged --force
    else
        su -s /bin/sh munge -c "munged --force"
    fi
    local i
    for i in $(seq 1 50); do
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            [[ -s /run/munge/munged.pid ]] && cp /run/munge/munged.pid "$1/munged.pid"
            return 0
        fi
        sleep 0.2
    done
    die "munged did not start (munge -n | unmunge fails)"
}

cmd_start() {
    local dir="${1:-}"
    cmd_install
    [[ "$(id -u)" == 0 ]] || die "start needs root (SlurmUser=root)"
    if [[ -z "$dir" ]]; then dir="$(mktemp -d /tmp/slurm-local.XXXXXX)"; fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [[ -f "$dir/slurmctld.pid" ]] && alive "$(cat "$dir/slurmctld.pid")" && die "$dir: a slurmctld from this folder runs already"
    rm -rf "$dir/state" "$dir/spool" "$dir/log"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    local host node
    host="$(hostname -s)"
    node="$(slurmd -C | head -n 1)"
    [[ "$node" == NodeName=* ]] || die "slurmd -C printed no node line: $node"
    cat > "$dir/slurm.conf" <<EOF
# written by scripts/slurm_local.sh: a one-node test cluster
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MpiDefault=pmi2
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$dir/slurm.conf"
    start_munge "$dir"
    slurmctld -f "$SLURM_CONF" >&2
    slurmd -f "$SLURM_CONF" >&2
    local i state=""
    for i in $(seq 1 100); do
        state="$(sinfo -h -o %t 2>/dev/null | head -n 1 || true)"
        [[ "$state" == idle ]] && break
        sleep 0.2
    done
    [[ "$state" == idle ]] || { log "node state '$state' after 20 s; logs in $dir/log"; cmd_stop "$dir"; exit 1; }
    log "cluster up in $dir (node $(hostname -s), $(sinfo -h -o %c) cpus)"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_stop() {
    local dir="${1:-}"
    [[ -n "$dir" && -f "$dir/slurm.conf" ]] || die "stop: give the folder of start (with slurm.conf)"
    export SLURM_CONF="$dir/slurm.conf"
    if [[ -f "$dir/slurmctld.pid" ]] && alive "$(cat "$dir/slurmctld.pid")"; then
        scancel --full --user=root 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            [[ -z "$(squeue -h 2>/dev/null || true)" ]] && break
            sleep 0.2
        done
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    stop_pidfile "$dir/munged.pid"   # only when start started it
    log "cluster in $dir stopped"
}

cmd_ensure() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        log "slurm-wlm/munge not installed and cannot install them here (needs root and apt-get): the SLURM test will be skipped"
        return 0
    fi
    cmd_install || log "installing slurm-wlm/munge failed: the SLURM test will be skipped"
    return 0
}

case "${1:-}" in
    start) shift; cmd_start "${1:-}" ;;
    stop) shift; cmd_stop "${1:-}" ;;
    install) cmd_install ;;
    ensure) cmd_ensure ;;
    *) die "usage: $0 start [DIR] | stop DIR | install | ensure" ;;
esac
