#!/usr/bin/env bash
# Runs shoal-worker on several Linux hosts over SSH and writes the coordinator's cluster file.
#
#   Scripts/launch-hosts.sh up     HOSTS_FILE [options]   build, copy, start, check, write cluster file
#   Scripts/launch-hosts.sh check  HOSTS_FILE [options]   are the workers up and answering?
#   Scripts/launch-hosts.sh status HOSTS_FILE [options]   pid and last log line per host
#   Scripts/launch-hosts.sh stop   HOSTS_FILE [options]   stop the workers
#
# HOSTS_FILE, one host per line ('#' starts a comment):
#   user@host[:ssh-port] [port=5601] [threads=N] [weight=W] [dir=REMOTE_DIR]
# port: the worker's TCP port; threads: compute threads (default: the host's cores);
# weight: its share of each layer (TP split, default 1); dir: where the binary, logs, pid file,
# cache and models live on the host (default ~/.shoal).
#
# Options:
#   --binary PATH        a shoal-worker to copy (default: build one with the Swift standard library
#                        linked statically, so hosts need no Swift toolchain, only libzmq)
#   --model DIR          also copy this model directory to every host (default: none; the
#                        coordinator then streams each worker only its slice, once, and the
#                        worker caches it in REMOTE_DIR/cache)
#   --cluster-out FILE   the cluster file to write (default: cluster.yaml)
#   --allreduce A  --sync S  --tp N  --pp M     plan fields written to the cluster file
#   --token T            cluster token (default $SHOAL_TOKEN); given to workers over SSH stdin,
#                        written to the cluster file as ${SHOAL_TOKEN}
#   --identity KEY  -o SSH_OPTION (repeatable)  ssh settings; also $SHOAL_SSH_OPTS
#   --service auto|nohup|systemd   how workers run: a systemd --user unit where a user manager
#                        runs, else nohup + pid file (default auto)
#   --coordinator PATH   shoal-coordinator for the checks (default: next to the binary, or on PATH):
#                        `shoal-coordinator ping` handshakes with every worker
#   --check-model DIR    also run a 2-token generation across all workers with this model
#                        (slices are streamed to hosts that lack it, and cached)
#   --no-check           only check that the ports answer
#
# Remote layout: REMOTE_DIR/bin/shoal-worker, REMOTE_DIR/log/worker-PORT.log,
# REMOTE_DIR/run/worker-PORT.pid, REMOTE_DIR/cache/, REMOTE_DIR/models/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "launch-hosts: $*" >&2; exit 1; }
log() { echo "launch-hosts: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

BINARY="" MODEL="" CLUSTER_OUT="cluster.yaml" ALLREDUCE="" SYNC="" TP="" PP="" TOKEN="${SHOAL_TOKEN:-}"
SERVICE=auto COORDINATOR="" CHECK_MODEL="" CHECK=1
SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o LogLevel=ERROR)

# --- hosts file ------------------------------------------------------------------------------

H_TARGET=() H_SSHPORT=() H_HOST=() H_PORT=() H_THREADS=() H_WEIGHT=() H_DIR=()
read_hosts() {
    local file="$1" lineno=0 line
    [ -f "$file" ] || die "$file: no such hosts file"
    while IFS= read -r line || [ -n "$line" ]; do
        lineno=$((lineno + 1))
        line="${line%%#*}"
        read -r -a fields <<<"$line" || true
        [ "${#fields[@]}" -gt 0 ] || continue
        local target="${fields[0]}" sshport=22 port=5601 threads="" weight=1 dir=""
        if [[ "$target" =~ ^(([^@:[:space:]]+)@)?([^@:[:space:]]+)(:([0-9]+))?$ ]]; then
            [ -n "${BASH_REMATCH[5]}" ] && sshport="${BASH_REMATCH[5]}"
            H_HOST+=("${BASH_REMATCH[3]}")
            target="${BASH_REMATCH[1]}${BASH_REMATCH[3]}"
        else
            die "$file:$lineno: '${fields[0]}' is not user@host[:ssh-port]"
        fi
        for kv in "${fields[@]:1}"; do
            case "$kv" in
                port=*) port="${kv#port=}"; [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "$file:$lineno: bad port '$port'" ;;
                threads=*) threads="${kv#threads=}"; [[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "$file:$lineno: bad threads '$threads'" ;;
                weight=*) weight="${kv#weight=}"; [[ "$weight" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v w="$weight" 'BEGIN { exit !(w > 0) }' || die "$file:$lineno: weight must be a positive number, got '$weight'" ;;
                dir=*) dir="${kv#dir=}"; [[ "$dir" =~ ^[A-Za-z0-9_./~-]+$ ]] || die "$file:$lineno: dir '$dir' has characters other than letters, digits, _ . / ~ -" ;;
                *) die "$file:$lineno: unknown field '$kv' (port=, threads=, weight=, dir=)" ;;
            esac
        done
        H_TARGET+=("$target") H_SSHPORT+=("$sshport") H_PORT+=("$port") H_THREADS+=("$threads") H_WEIGHT+=("$weight") H_DIR+=("$dir")
    done <"$file"
    [ "${#H_TARGET[@]}" -gt 0 ] || die "$file lists no hosts"
    local seen=" "
    for i in "${!H_TARGET[@]}"; do
        local key="${H_HOST[$i]}:${H_PORT[$i]}"
        [[ "$seen" == *" $key "* ]] && die "$file: two workers on $key"
        seen+="$key "
    done
}

# --- ssh -------------------------------------------------------------------------------------

ssh_to() { local i="$1"; shift; ssh "${SSH_OPTS[@]}" -p "${H_SSHPORT[$i]}" "${H_TARGET[$i]}" "$@"; }
# Copies over the ssh channel itself: works where the server has no sftp subsystem for scp.
copy_to() { local i="$1" src="$2" dst="$3"; ssh_to "$i" "cat > $(printf %q "$dst")" <"$src"; }
# Runs a bash script on host i; the script travels on stdin (so secrets stay out of argv) and
# gets the remaining arguments as $1...
remote() {
    local i="$1" script="$2"; shift 2
    ssh_to "$i" "bash -s -- $(printf '%q ' "$@")" <<<"$script"
}
# The worker directory on host i, absolute (created when missing).
remote_dir() {
    local i="$1" d="${H_DIR[$i]:-.shoal}"
    # shellcheck disable=SC2016
    remote "$i" 'd="$1"; case "$d" in "~"*) d="$HOME${d#\~}";; /*) ;; *) d="$HOME/$d";; esac
        mkdir -p "$d/bin" "$d/log" "$d/run" "$d/cache" "$d/models" && cd "$d" && pwd' "$d"
}
label() { echo "${H_TARGET[$1]}:${H_PORT[$1]}"; }

# --- steps -----------------------------------------------------------------------------------

build_binary() {
    [ -n "$BINARY" ] && { [ -x "$BINARY" ] || die "--binary $BINARY is not an executable"; return; }
    command -v swift >/dev/null || die "swift is not on PATH: install a toolchain or pass --binary"
    local scratch="${SHOAL_BUILD_DIR:-$ROOT/.build-static}"
    log "building shoal-worker (release, Swift stdlib linked statically) in $scratch"
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product shoal-worker --scratch-path "$scratch" >&2)
    BINARY="$(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/shoal-worker"
    [ -x "$BINARY" ] || die "build finished but $BINARY is missing"
}

# libzmq is the worker's one shared library outside libc/libstdc++; install it where missing.
ensure_libzmq() {
    local i="$1"
    # shellcheck disable=SC2016
    remote "$i" '
        if ldconfig -p 2>/dev/null | grep -q "libzmq\.so\.5 " || ls /usr/lib*/libzmq.so.5 /usr/lib/*/libzmq.so.5 >/dev/null 2>&1; then exit 0; fi
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
        echo "installing libzmq" >&2
        if command -v apt-get >/dev/null; then $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libzmq5 >/dev/null
        elif command -v dnf >/dev/null; then $sudo dnf install -y -q zeromq
        elif command -v yum >/dev/null; then $sudo yum install -y -q zeromq
        elif command -v apk >/dev/null; then $sudo apk add -q libzmq
        else echo "no known package manager to install libzmq" >&2; exit 1; fi' \
        || die "$(label "$i"): libzmq is missing and could not be installed (install libzmq5 / zeromq there, or allow passwordless sudo)"
}

copy_binary() {
    local i="$1" dir="$2" sum remote_sum
    sum="$(sha256sum "$BINARY" | cut -d' ' -f1)"
    remote_sum="$(ssh_to "$i" "sha256sum $(printf %q "$dir/bin/shoal-worker") 2>/dev/null | cut -d' ' -f1" || true)"
    if [ "$sum" != "$remote_sum" ]; then
        copy_to "$i" "$BINARY" "$dir/bin/shoal-worker.new" || die "$(label "$i"): copying the binary failed"
        ssh_to "$i" "chmod +x $(printf %q "$dir/bin/shoal-worker.new") && mv -f $(printf %q "$dir/bin/shoal-worker.new") $(printf %q "$dir/bin/shoal-worker")"
    fi
    local missing
    missing="$(ssh_to "$i" "ldd $(printf %q "$dir/bin/shoal-worker") 2>&1 | grep 'not found' || true")"
    [ -z "$missing" ] || die "$(label "$i"): the worker binary lacks shared libraries there: $missing"
}

# Model directories go over as a tar stream, skipped when the host has this exact copy.
copy_model() {
    local i="$1" dir="$2" name fingerprint
    name="$(basename "$MODEL")"
    fingerprint="$(cd "$MODEL" && find . -maxdepth 1 -type f -printf '%f %s %T@\n' | sort | cksum | cut -d' ' -f1)"
    local have
    have="$(ssh_to "$i" "cat $(printf %q "$dir/models/$name/.shoal-copied") 2>/dev/null || true")"
    if [ "$have" = "$fingerprint" ]; then return; fi
    log "$(label "$i"): copying model $name ($(du -sh "$MODEL" | cut -f1))"
    tar -C "$(dirname "$MODEL")" -cf - "$name" | ssh_to "$i" "tar -C $(printf %q "$dir/models") -xf - && echo $fingerprint > $(printf %q "$dir/models/$name/.shoal-copied")"
}

# Starts the worker of host i (stopping one already on its port) and waits for its
# "listening" log line.
start_worker() {
    local i="$1" dir="$2" args=(--listen "tcp://0.0.0.0:${H_PORT[$i]}" --cache-dir "$dir/cache" --model-dir "$dir/models")
    [ -n "${H_THREADS[$i]}" ] && args+=(--threads "${H_THREADS[$i]}")
    local script
    # shellcheck disable=SC2016
    script="export SHOAL_TOKEN=$(printf %q "$TOKEN")"$'\n''
        dir="$1" port="$2" service="$3"; shift 3
        log="$dir/log/worker-$port.log" pidfile="$dir/run/worker-$port.pid" unit="shoal-worker-$port"
        stop_old() {
            if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                kill "$(cat "$pidfile")"; for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$(cat "$pidfile")" 2>/dev/null || true
            fi
            command -v systemctl >/dev/null && systemctl --user stop "$unit" 2>/dev/null || true
            rm -f "$pidfile"
        }
        stop_old
        if [ "$service" = auto ]; then
            service=nohup
            if command -v systemd-run >/dev/null && systemctl --user is-system-running 2>/dev/null | grep -qE "running|degraded"; then service=systemd; fi
        fi
        offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
        echo "=== $(date -u +%FT%TZ) starting ($service): shoal-worker $*" >>"$log"
        if [ "$service" = systemd ]; then
            systemd-run --user --quiet --collect --unit="$unit" --setenv=SHOAL_TOKEN="$SHOAL_TOKEN" \
                -p StandardOutput=append:"$log" -p StandardError=append:"$log" "$dir/bin/shoal-worker" "$@"
            sleep 0.2
            systemctl --user show -p MainPID --value "$unit" >"$pidfile"
        else
            cd "$dir"
            nohup setsid "$dir/bin/shoal-worker" "$@" >>"$log" 2>&1 </dev/null &
            echo $! >"$pidfile"
        fi
        for _ in $(seq 100); do
            tail -c +"$((offset + 1))" "$log" | grep -q "listening on" && { echo "$service $(cat "$pidfile")"; exit 0; }
            kill -0 "$(cat "$pidfile")" 2>/dev/null || break
            sleep 0.1
        done
        echo "worker did not start; log:" >&2; tail -c +"$((offset + 1))" "$log" | tail -20 >&2; exit 1'
    local out
    out="$(remote "$i" "$script" "$dir" "${H_PORT[$i]}" "$SERVICE" "${args[@]}")" || die "$(label "$i"): worker failed to start"
    log "$(label "$i"): worker running (${out% *}, pid ${out#* }, log $dir/log/worker-${H_PORT[$i]}.log)"
}

stop_worker() {
    local i="$1" dir="$2"
    # shellcheck disable=SC2016
    remote "$i" '
        dir="$1" port="$2"; pidfile="$dir/run/worker-$port.pid"
        stopped=no
        if command -v systemctl >/dev/null && systemctl --user is-active --quiet "shoal-worker-$port" 2>/dev/null; then
            systemctl --user stop "shoal-worker-$port" && stopped=yes
        fi
        if [ -f "$pidfile" ]; then
            pid="$(cat "$pidfile")"
            if kill -0 "$pid" 2>/dev/null; then
                kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
                stopped=yes
            fi
            rm -f "$pidfile"
        fi
        echo "$stopped"' "$dir" "${H_PORT[$i]}"
}

# TCP reachability from this machine (the coordinator's), then a real handshake.
check_workers() {
    local failed=0
    for i in "${!H_TARGET[@]}"; do
        if timeout 5 bash -c "exec 3<>/dev/tcp/${H_HOST[$i]}/${H_PORT[$i]}" 2>/dev/null; then
            log "$(label "$i"): port ${H_PORT[$i]} answers"
        else
            log "$(label "$i"): port ${H_PORT[$i]} does not answer from here (firewall? wrong address?)"
            failed=1
        fi
    done
    [ "$failed" = 0 ] || die "some workers are unreachable"
    [ "$CHECK" = 1 ] || return 0
    local coord="$COORDINATOR"
    if [ -z "$coord" ]; then
        if [ -n "$BINARY" ] && [ -x "$(dirname "$BINARY")/shoal-coordinator" ]; then coord="$(dirname "$BINARY")/shoal-coordinator"
        else coord="$(command -v shoal-coordinator || true)"; fi
    fi
    if [ -z "$coord" ]; then log "no shoal-coordinator here: skipped the handshake check (--coordinator PATH)"; return 0; fi
    local list=""
    for i in "${!H_TARGET[@]}"; do list+="${list:+,}tcp://${H_HOST[$i]}:${H_PORT[$i]}"; done
    local model="$CHECK_MODEL"
    if "$coord" ping --help >/dev/null 2>&1; then
        # The protocol handshake (version, token) with every worker.
        SHOAL_TOKEN="$TOKEN" "$coord" ping --workers "$list" >&2 || die "handshake check failed"
    elif [ -z "$model" ] && [ -d "$ROOT/Tests/Fixtures/tiny-llama" ]; then
        model="$ROOT/Tests/Fixtures/tiny-llama"  # no ping subcommand: a generation is the handshake
    fi
    [ -n "$model" ] || return 0
    # Handshake, shard load (the slice is streamed once and cached on a host without the model)
    # and a decode step with every worker, as the coordinator will run them.
    local out
    out="$(SHOAL_TOKEN="$TOKEN" "$coord" generate --cluster "$CLUSTER_OUT" --model "$model" --prompt "ping" \
        --max-tokens 2 --json 2>&1)" || die "end-to-end check failed: $(echo "$out" | tail -5)"
    log "end-to-end check (generation with $(basename "$model")) across ${#H_TARGET[@]} workers: ok ($(echo "$out" | tail -1 | grep -o '"backend":"[^"]*"'))"
}

write_cluster_file() {
    {
        echo "# written by Scripts/launch-hosts.sh from $HOSTS_FILE"
        echo "workers:"
        for i in "${!H_TARGET[@]}"; do
            if [ "${H_WEIGHT[$i]}" = 1 ]; then
                echo "  - tcp://${H_HOST[$i]}:${H_PORT[$i]}"
            else
                echo "  - address: tcp://${H_HOST[$i]}:${H_PORT[$i]}"
                echo "    weight: ${H_WEIGHT[$i]}"
            fi
        done
        [ -n "$TP" ] && echo "tp: $TP"
        [ -n "$PP" ] && echo "pp: $PP"
        [ -n "$ALLREDUCE" ] && echo "allreduce: $ALLREDUCE"
        [ -n "$SYNC" ] && echo "sync: $SYNC"
        # shellcheck disable=SC2016
        [ -n "$TOKEN" ] && echo 'token: ${SHOAL_TOKEN}'
        true
    } >"$CLUSTER_OUT"
    log "wrote $CLUSTER_OUT"
}

# --- commands --------------------------------------------------------------------------------

cmd_up() {
    build_binary
    local arch; arch="$(uname -m)"
    for i in "${!H_TARGET[@]}"; do
        local dir remote_arch
        dir="$(remote_dir "$i")" || die "$(label "$i"): cannot reach it over ssh (ssh -p ${H_SSHPORT[$i]} ${H_TARGET[$i]})"
        remote_arch="$(ssh_to "$i" uname -m)"
        [ "$remote_arch" = "$arch" ] || die "$(label "$i") is $remote_arch, the binary is $arch: build on a $remote_arch machine and pass --binary"
        ensure_libzmq "$i"
        copy_binary "$i" "$dir"
        [ -n "$MODEL" ] && copy_model "$i" "$dir"
        start_worker "$i" "$dir"
    done
    write_cluster_file
    check_workers
    log "up: ${#H_TARGET[@]} workers; run: shoal-coordinator generate --cluster $CLUSTER_OUT --model DIR --prompt ..."
}

cmd_stop() {
    for i in "${!H_TARGET[@]}"; do
        local dir
        dir="$(remote_dir "$i")" || { log "$(label "$i"): unreachable, not stopped"; continue; }
        case "$(stop_worker "$i" "$dir")" in
            yes) log "$(label "$i"): stopped" ;;
            *) log "$(label "$i"): was not running" ;;
        esac
    done
}

cmd_status() {
    for i in "${!H_TARGET[@]}"; do
        local dir
        dir="$(remote_dir "$i")" || { echo "$(label "$i"): unreachable"; continue; }
        # shellcheck disable=SC2016
        remote "$i" 'pidfile="$1/run/worker-$2.pid"; log="$1/log/worker-$2.log"
            if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then s="running (pid $(cat "$pidfile"))"; else s="stopped"; fi
            echo "$3: $s; log: $(tail -1 "$log" 2>/dev/null)"' "$dir" "${H_PORT[$i]}" "$(label "$i")"
    done
}

[ $# -ge 1 ] || usage 1
CMD="$1"; shift
case "$CMD" in -h | --help | help) usage 0 ;; esac
[ $# -ge 1 ] || die "$CMD needs a hosts file"
HOSTS_FILE="$1"; shift
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BINARY="${2:?}"; shift 2 ;;
        --model) MODEL="${2:?}"; shift 2 ;;
        --cluster-out) CLUSTER_OUT="${2:?}"; shift 2 ;;
        --allreduce) ALLREDUCE="${2:?}"; shift 2 ;;
        --sync) SYNC="${2:?}"; shift 2 ;;
        --tp) TP="${2:?}"; shift 2 ;;
        --pp) PP="${2:?}"; shift 2 ;;
        --token) TOKEN="${2:?}"; shift 2 ;;
        --identity) SSH_OPTS+=(-i "${2:?}"); shift 2 ;;
        -o) SSH_OPTS+=(-o "${2:?}"); shift 2 ;;
        --service) SERVICE="${2:?}"; [[ "$SERVICE" =~ ^(auto|nohup|systemd)$ ]] || die "--service: auto, nohup or systemd"; shift 2 ;;
        --coordinator) COORDINATOR="${2:?}"; shift 2 ;;
        --check-model) CHECK_MODEL="${2:?}"; shift 2 ;;
        --no-check) CHECK=0; shift ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
# shellcheck disable=SC2206  # SHOAL_SSH_OPTS is a list of ssh arguments
[ -n "${SHOAL_SSH_OPTS:-}" ] && SSH_OPTS+=($SHOAL_SSH_OPTS)
[ -z "$MODEL" ] || [ -f "$MODEL/config.json" ] || die "--model $MODEL has no config.json"
read_hosts "$HOSTS_FILE"
case "$CMD" in
    up) cmd_up ;;
    check) [ -f "$CLUSTER_OUT" ] || write_cluster_file; check_workers ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
    *) die "unknown command '$CMD' (up, check, status, stop)" ;;
esac
