# shellcheck shell=bash
# Helpers shared by the lab components (sourced by lab/lab.sh).

log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive PIDFILE -> true when the file names a running process
pid_alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# stop_pid NAME PIDFILE [TIMEOUT]: TERM, wait, then KILL; removes the PID file.
stop_pid() {
    local name=$1 pidfile=$2 timeout=${3:-20} pid i
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in ${timeout}s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# wait_for DESCRIPTION TIMEOUT COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
    local what=$1 timeout=$2 deadline
    shift 2
    deadline=$((SECONDS + timeout))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    "$@" >/dev/null 2>&1 || die "$what not ready after ${timeout}s"
}

# pid_in_netns NAME: the PID of the process called NAME in this shell's network namespace
# (the lab's nodes share one PID namespace, so pgrep alone would find the other nodes' too).
pid_in_netns() {
    local pid mine
    mine=$(readlink /proc/self/ns/net)
    for pid in $(pgrep -x "$1"); do
        if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$mine" ]; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}
