#!/usr/bin/env bash
# A single-node SLURM on this machine, for the tests of `ei-sim grid --cluster slurm`.
#
#   .ci/slurm.sh up      install Debian's slurm-wlm and munge (when missing), write
#                        /etc/slurm/slurm.conf for this machine, start munged, slurmctld
#                        and slurmd, and wait until the node takes jobs
#   .ci/slurm.sh down    cancel the remaining jobs and stop the three daemons
#   .ci/slurm.sh status  whether the daemons run and what sinfo says
#
# Needs root (the daemons, apt). No service manager and no cgroups: the daemons run with
# pid files under /run/ei-sim-slurm, the process tracking is SLURM's linuxproc plugin and
# memory is not a consumable resource (CR_Core). An /etc/slurm/slurm.conf that this script
# did not write is left alone (and `up` fails).
set -euo pipefail

RUN_DIR=/run/ei-sim-slurm
STATE_DIR=/var/lib/ei-sim-slurm
LOG_DIR=/var/log/ei-sim-slurm
CONF=/etc/slurm/slurm.conf
MARK="# written by ei-sim .ci/slurm.sh"
PARTITION=debug

say() { echo "slurm.sh: $*" >&2; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && return 0
    command -v apt-get >/dev/null || { say "no apt-get: install slurm-wlm and munge"; return 1; }
    say "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive timeout 600 sh -c \
        'apt-get update -q && apt-get install -y -q --no-install-recommends slurm-wlm munge' \
        >"$LOG_DIR/apt.log" 2>&1 || { say "apt-get failed; see $LOG_DIR/apt.log"; return 1; }
}

write_conf() {
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        say "$CONF exists and was not written by this script; not touching it"
        return 1
    fi
    local node host
    host=$(hostname -s)
    # "NodeName=<host> CPUs=... Boards=... SocketsPerBoard=... CoresPerSocket=...
    #  ThreadsPerCore=... RealMemory=<MiB>": this machine as slurmd sees it
    node=$(slurmd -C | head -n 1)
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF.tmp" <<EOF
$MARK: a single-node cluster for tests
ClusterName=eisim
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# quick turnaround for short test jobs: cancelled jobs are killed 2 s after SIGTERM,
# finished ones leave squeue after 30 s
KillWait=2
MinJobAge=30
InactiveLimit=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

alive() {  # alive PIDFILE: the process of the pid file runs
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_munge() {
    alive /run/munge/munged.pid && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    [ -s /etc/munge/munge.key ] || {
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    }
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
}

start_slurm() {
    mkdir -p "$RUN_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
    alive "$RUN_DIR/slurmctld.pid" || slurmctld
    alive "$RUN_DIR/slurmd.pid" || slurmd
    local waited=0 state
    while :; do  # until the node takes jobs (idle, mixed or allocated)
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
        case "$state" in idle* | mix* | alloc*) break ;; esac
        if [ "$waited" -ge 60 ]; then
            say "the node is '${state:-unknown}' after 60 s; see $LOG_DIR"
            return 1
        fi
        if [ "$state" = "down" ] || [ "${state%\*}" = "drained" ]; then
            scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "up: $(sinfo -h -N -o '%N %T %c CPUs %m MiB') in partition $PARTITION"
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME: TERM, then KILL after 10 s
    alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "$2 ignored TERM; killing it"; kill -9 "$pid"; }
    rm -f "$1"
}

down() {
    if alive "$RUN_DIR/slurmctld.pid"; then
        scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
        for _ in $(seq 1 20); do  # until the cancelled jobs have left their node
            [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
    stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
    stop_pidfile /run/munge/munged.pid munged
    say "down"
}

case "${1:-}" in
    up)
        [ "$(id -u)" = 0 ] || { say "needs root (the daemons and apt)"; exit 1; }
        mkdir -p "$LOG_DIR"
        install_packages
        write_conf
        start_munge
        start_slurm
        ;;
    down)
        [ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
        down
        ;;
    status)
        for f in /run/munge/munged.pid "$RUN_DIR/slurmctld.pid" "$RUN_DIR/slurmd.pid"; do
            if alive "$f"; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): stopped"; fi
        done
        sinfo 2>/dev/null || true
        ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
esac
