#!/usr/bin/env bash
# An emulated edge network on one Linux machine: N hosts as network namespaces, each with a veth
# link to a bridge (in a "switch" namespace), plus a coordinator host, with per-link delay,
# jitter, loss and rate; shoal-worker processes run inside the hosts. Needs root (or
# CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2, and for delays either the kernel's sch_netem or
# iptables + a C compiler (see "Delay backends" below).
#
#   Scripts/netns-cluster.sh run --hosts 3 --profile wifi -- sh -c \
#       'shoal-coordinator generate --model Tests/Fixtures/tiny-llama --prompt Hello --workers "$SHOAL_WORKERS"'
#
# Subcommands (all take --name NAME, default "shoal", so several clusters can coexist):
#   up      [--hosts N] [--subnet A.B.C] [--alias NAME] [--sshd] [--ssh-port P] [--tcp-cc ALG]
#           [shape options]
#           --alias: a name every worker answers to in /etc/hosts (default "worker", as the
#           compose service); --sshd: an SSH server per host (for launch-hosts.sh tests);
#           --tcp-cc: TCP congestion control in every host (default cubic, most hosts' default;
#           BBR's pacing on request/response traffic adds its own delay, see docs/experiments)
#   shape   [shape options]                  change the links of a running cluster
#   start-workers [--bin DIR] [--port P] [--threads T] [--model-dir DIR] [--token T] [--no-entrypoint]
#   stop-workers
#   exec    NODE -- CMD...                   NODE: c (coordinator), h1..hN, sw (switch)
#   workers                                  print tcp://IP:PORT,... of the running workers
#   status
#   down                                     kill everything in the namespaces, delete them
#   run     [up options] [worker options] -- CMD...
#           up + start-workers + CMD in the coordinator namespace (with $SHOAL_WORKERS and
#           $SHOAL_CLUSTER_FILE set), then down, also when anything fails or is interrupted.
#
# Shape options (one-way, applied to every host's link, coordinator included unless
# --no-shape-coordinator):
#   --profile none|lan-1g|wifi|wan   presets below; the flags after it override single fields
#   --delay 5ms  --jitter 1ms  --loss 0.1%  --rate 100mbit
#     lan-1g: delay 0.1ms, rate 1gbit        wifi: delay 3ms +-1ms, rate 200mbit
#     wan:    delay 20ms +-2ms, rate 50mbit, loss 0.01%
#   Delay, jitter and loss apply once per packet per host-to-host trip (one-way latency is the
#   delay, RTT twice it); the rate limits both directions of each host's link (its uplink and
#   the switch port towards it), so a star hub's port is shared as on a real switch.
#
# Delay backends: tc netem on each host's egress when the kernel has it
# (SHOAL_NETNS_DELAY_BACKEND=netem|delay-line forces one). Kernels without sch_netem (common in
# microVMs) get Scripts/delay-line.c: an iptables NFQUEUE rule where packets enter a host hands
# them to a small program that releases them after the delay (the kernel keeps the packet, so
# TCP sees a real path). Ingress, not egress: a packet held on the sender's side would still
# count against the sender's TCP small-queues budget and stall the rest of its burst for one
# more delay, which a real wire does not do (netem avoids it by orphaning delayed packets).
# The rate always uses the tbf qdisc.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="${SHOAL_NETNS_NAME:-shoal}"
STATE_BASE="${SHOAL_NETNS_STATE:-/run/shoal-netns}"

die() { echo "netns-cluster: $*" >&2; exit 1; }
log() { echo "netns-cluster: $*" >&2; }

usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

state() { echo "$STATE_BASE/$NAME"; }
ns() { echo "$NAME-$1"; }
# Node list from the state file: c h1 h2 ...
hosts_count() { cat "$(state)/hosts" 2>/dev/null || echo 0; }
subnet() { cat "$(state)/subnet"; }
node_ip() {
    local n="$1"
    case "$n" in
        c) echo "$(subnet).2" ;;
        h*) echo "$(subnet).$((10 + ${n#h}))" ;;
        *) die "unknown node '$n' (c, h1..h$(hosts_count), sw)" ;;
    esac
}
nodes() { echo c; for ((i = 1; i <= $(hosts_count); i++)); do echo "h$i"; done; }
in_ns() { local n="$1"; shift; ip netns exec "$(ns "$n")" "$@"; }

# Starts a long-running process in a node's namespace, its output appended to a log and its pid
# written to a file. It inherits no descriptor beyond stdio: a caller waiting for EOF on one of
# ours (Foundation's Process does, for its child's status) must not wait for our daemons.
spawn() { # node logfile pidfile command...
    local n="$1" logfile="$2" pidfile="$3"; shift 3
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd="${fd##*/}"
            [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
        done
        exec ip netns exec "$(ns "$n")" "$@" </dev/null >>"$logfile" 2>&1
    ) &
    echo $! >"$pidfile"
}

# --- units -----------------------------------------------------------------------------------

# "5ms", "100us", "0.1ms", "1s", "2" (ms) -> microseconds (integer)
to_us() {
    local v="$1"
    awk -v v="$v" 'BEGIN {
        if (match(v, /^[0-9]*\.?[0-9]+/) == 0) { exit 1 }
        n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1)
        if (u == "" || u == "ms") m = 1000; else if (u == "us") m = 1; else if (u == "s") m = 1000000; else exit 1
        printf "%d\n", n * m + 0.5 }' || die "bad duration '$v' (e.g. 5ms, 100us)"
}
# "100mbit", "1gbit", "500kbit" -> bytes per second
to_bytes_per_s() {
    local v="$1"
    awk -v v="$v" 'BEGIN {
        if (match(v, /^[0-9]*\.?[0-9]+/) == 0) { exit 1 }
        n = substr(v, 1, RLENGTH); u = tolower(substr(v, RLENGTH + 1))
        if (u == "bit") m = 1; else if (u == "kbit") m = 1e3; else if (u == "mbit") m = 1e6; else if (u == "gbit") m = 1e9; else exit 1
        printf "%d\n", n * m / 8 }' || die "bad rate '$v' (e.g. 100mbit, 1gbit)"
}
to_percent() {
    local v="${1%\%}"
    awk -v v="$v" 'BEGIN { if (v !~ /^[0-9]*\.?[0-9]+$/ || v > 100) exit 1; print v + 0 }' || die "bad loss '$1' (e.g. 0.1%)"
}

# --- shaping ---------------------------------------------------------------------------------

SHAPE_DELAY="" SHAPE_JITTER="" SHAPE_LOSS="" SHAPE_RATE="" SHAPE_COORD=1
set_profile() {
    case "$1" in
        none) SHAPE_DELAY=0 SHAPE_JITTER=0 SHAPE_LOSS=0 SHAPE_RATE="" ;;
        lan-1g) SHAPE_DELAY=0.1ms SHAPE_JITTER=0 SHAPE_LOSS=0 SHAPE_RATE=1gbit ;;
        wifi) SHAPE_DELAY=3ms SHAPE_JITTER=1ms SHAPE_LOSS=0 SHAPE_RATE=200mbit ;;
        wan) SHAPE_DELAY=20ms SHAPE_JITTER=2ms SHAPE_LOSS=0.01 SHAPE_RATE=50mbit ;;
        *) die "unknown profile '$1' (none, lan-1g, wifi, wan)" ;;
    esac
}
# Parses one shape option; returns 1 when $1 is not one (caller shifts by SHIFT).
SHIFT=0
parse_shape_option() {
    SHIFT=2
    case "$1" in
        --profile) set_profile "${2:?--profile needs a value}" ;;
        --delay) SHAPE_DELAY="${2:?}" ;;
        --jitter) SHAPE_JITTER="${2:?}" ;;
        --loss) SHAPE_LOSS="${2:?}" ;;
        --rate) SHAPE_RATE="${2:?}" ;;
        --no-shape-coordinator) SHAPE_COORD=0; SHIFT=1 ;;
        *) return 1 ;;
    esac
}

delay_backend() {
    if [ -n "${SHOAL_NETNS_DELAY_BACKEND:-}" ]; then echo "$SHOAL_NETNS_DELAY_BACKEND"; return; fi
    cat "$(state)/delay-backend"
}

probe_netem() {
    if in_ns sw tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
        in_ns sw tc qdisc del dev lo root 2>/dev/null || true
        echo netem
    else
        echo delay-line
    fi
}

need_tool() { # tool, Debian package
    command -v "$1" >/dev/null && return
    log "installing $2 (for $1)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
        || die "$1 is missing and '$2' could not be installed"
}

# Compiles Scripts/delay-line.c once per source version (atomically, so parallel clusters can race).
delay_line_binary() {
    local src="$ROOT/Scripts/delay-line.c" dir="$STATE_BASE/.tools"
    local sum; sum="$(cksum < "$src" | cut -d' ' -f1)"
    local bin="$dir/delay-line-$sum"
    if [ ! -x "$bin" ]; then
        mkdir -p "$dir"
        local cc; cc="$(command -v cc || command -v gcc || command -v clang || true)"
        [ -n "$cc" ] || die "no C compiler to build $src (apt-get install gcc)"
        "$cc" -O2 -o "$bin.$$" "$src" || die "cannot compile $src"
        mv -f "$bin.$$" "$bin"
    fi
    echo "$bin"
}

clear_shape() { # node
    local n="$1" s; s="$(state)"
    in_ns "$n" tc qdisc del dev eth0 root 2>/dev/null || true
    in_ns sw tc qdisc del dev "port-$n" root 2>/dev/null || true
    if [ -f "$s/$n/delay-line.pid" ]; then
        in_ns "$n" iptables -t mangle -D PREROUTING -i eth0 -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null || true
        kill "$(cat "$s/$n/delay-line.pid")" 2>/dev/null || true
        rm -f "$s/$n/delay-line.pid"
    fi
}

# tbf on one device: burst of 200 us at line rate (at least two full frames), queue up to 500 ms.
tbf_on() { # node device rate
    local bps burst
    bps="$(to_bytes_per_s "$3")"
    burst=$((bps / 5000)); [ "$burst" -ge 3100 ] || burst=3100
    in_ns "$1" tc qdisc replace dev "$2" root tbf rate "$3" burst "$burst" latency 500ms
}

apply_shape_node() { # node
    local n="$1" s delay_us jitter_us loss
    s="$(state)"
    clear_shape "$n"
    [ "$n" = c ] && [ "$SHAPE_COORD" = 0 ] && return 0
    delay_us="$(to_us "${SHAPE_DELAY:-0}")"
    jitter_us="$(to_us "${SHAPE_JITTER:-0}")"
    loss="$(to_percent "${SHAPE_LOSS:-0}")"
    local impaired=0 lossy=0
    if awk -v l="$loss" 'BEGIN { exit !(l > 0) }'; then lossy=1; fi
    if [ "$delay_us" -gt 0 ] || [ "$jitter_us" -gt 0 ] || [ "$lossy" = 1 ]; then impaired=1; fi
    if [ "$impaired" = 1 ] && [ "$(delay_backend)" = netem ]; then
        local args=(delay "${delay_us}us")
        if [ "$jitter_us" -gt 0 ]; then args+=("${jitter_us}us"); fi
        if [ "$lossy" = 1 ]; then args+=(loss "$loss%"); fi
        if [ -n "$SHAPE_RATE" ]; then args+=(rate "$SHAPE_RATE"); fi
        in_ns "$n" tc qdisc replace dev eth0 root netem "${args[@]}" limit 100000
    else
        if [ "$impaired" = 1 ]; then
            need_tool iptables iptables
            local bin; bin="$(delay_line_binary)"
            : >"$s/$n/delay-line.log"
            spawn "$n" "$s/$n/delay-line.log" "$s/$n/delay-line.pid" "$bin" --queue 0 --delay-us "$delay_us" \
                --jitter-us "$jitter_us" --loss "$loss" --seed "$([ "$n" = c ] && echo 0 || echo "${n#h}")"
            local t=0
            until grep -q "delay-line: queue" "$s/$n/delay-line.log"; do
                kill -0 "$(cat "$s/$n/delay-line.pid")" 2>/dev/null || die "delay-line in $n failed: $(cat "$s/$n/delay-line.log")"
                sleep 0.05; t=$((t + 1)); [ "$t" -lt 200 ] || die "delay-line in $n did not start"
            done
            in_ns "$n" iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num 0 --queue-bypass
        fi
        if [ -n "$SHAPE_RATE" ]; then tbf_on "$n" eth0 "$SHAPE_RATE"; fi
    fi
    if [ -n "$SHAPE_RATE" ]; then tbf_on sw "port-$n" "$SHAPE_RATE"; fi
}

apply_shape() {
    local s; s="$(state)"
    for n in $(nodes); do apply_shape_node "$n"; done
    printf 'delay=%s jitter=%s loss=%s rate=%s coordinator=%s backend=%s\n' "${SHAPE_DELAY:-0}" "${SHAPE_JITTER:-0}" \
        "${SHAPE_LOSS:-0}" "${SHAPE_RATE:-unlimited}" "$SHAPE_COORD" "$(delay_backend)" >"$s/shape"
    log "links: $(cat "$s/shape")"
}

# --- topology --------------------------------------------------------------------------------

cmd_up() {
    local hosts=3 sub=10.77.0 alias=worker sshd=0 ssh_port=22 tcp_cc=cubic
    set_profile none
    while [ $# -gt 0 ]; do
        if parse_shape_option "$@"; then shift "$SHIFT"; continue; fi
        case "$1" in
            --hosts) hosts="${2:?}"; shift 2 ;;
            --subnet) sub="${2:?}"; shift 2 ;;
            --alias) alias="${2:?}"; shift 2 ;;
            --sshd) sshd=1; shift ;;
            --ssh-port) ssh_port="${2:?}"; shift 2 ;;
            --tcp-cc) tcp_cc="${2:?}"; shift 2 ;;
            *) die "up: unknown option '$1'" ;;
        esac
    done
    [[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] || die "--hosts must be 1..200"
    [[ "$sub" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--subnet must look like 10.77.0 (a /24)"
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    command -v ip >/dev/null || die "iproute2 is missing (apt-get install iproute2)"
    local s; s="$(state)"
    if ip netns list | grep -q "^$(ns sw)\b"; then die "cluster '$NAME' is already up (Scripts/netns-cluster.sh --name $NAME down)"; fi
    rm -rf "$s"
    mkdir -p "$s"
    echo "$hosts" >"$s/hosts"
    echo "$sub" >"$s/subnet"
    # A failure half-way leaves nothing behind (on_exit).
    local teardown_before="$TEARDOWN_ON_EXIT"
    TEARDOWN_ON_EXIT=1

    ip netns add "$(ns sw)"
    in_ns sw ip link set lo up
    in_ns sw ip link add br0 type bridge forward_delay 0 stp_state 0
    in_ns sw ip link set br0 up
    echo "$(probe_netem)" >"$s/delay-backend"

    local etc_hosts="127.0.0.1 localhost"$'\n'"$(subnet).2 coordinator"
    for ((i = 1; i <= hosts; i++)); do etc_hosts+=$'\n'"$(subnet).$((10 + i)) h$i $alias"; done
    for n in $(nodes); do
        mkdir -p "$s/$n"
        ip netns add "$(ns "$n")"
        in_ns "$n" ip link set lo up
        ip link add eth0 netns "$(ns "$n")" type veth peer name "port-$n" netns "$(ns sw)"
        in_ns "$n" ip addr add "$(node_ip "$n")/24" dev eth0
        in_ns "$n" ip link set eth0 up
        # TCP congestion control per route (see --tcp-cc): a namespace may not pick one outside
        # the machine's allowed list by sysctl, but a route may name any available one.
        in_ns "$n" ip route replace "$(subnet).0/24" dev eth0 proto kernel scope link src "$(node_ip "$n")" congctl "$tcp_cc" \
            || die "--tcp-cc $tcp_cc: not available (have: $(cat /proc/sys/net/ipv4/tcp_available_congestion_control))"
        in_ns sw ip link set "port-$n" master br0 up
        # `ip netns exec` bind-mounts these over /etc: names resolve as on a LAN with DNS, and
        # the alias lists every worker, like Docker's DNS for a scaled compose service.
        mkdir -p "/etc/netns/$(ns "$n")"
        printf '%s\n' "$etc_hosts" >"/etc/netns/$(ns "$n")/hosts"
    done
    SHAPE_COORD="${SHAPE_COORD:-1}"
    apply_shape
    if [ "$sshd" = 1 ]; then start_sshd "$ssh_port"; fi
    TEARDOWN_ON_EXIT="$teardown_before"
    log "up: coordinator $(node_ip c), hosts $(subnet).11..$(subnet).$((10 + hosts)) (namespaces $NAME-c, $NAME-h1..$NAME-h$hosts)"
}

# sshd per host for launcher tests: throwaway host and client keys in the state directory.
start_sshd() {
    local port="$1" s; s="$(state)"
    local sshd_bin; sshd_bin="$(command -v sshd || echo /usr/sbin/sshd)"
    [ -x "$sshd_bin" ] || need_tool sshd openssh-server
    need_tool ssh-keygen openssh-client
    mkdir -p "$s/ssh" /run/sshd
    chmod 700 "$s/ssh"
    ssh-keygen -q -t ed25519 -N "" -f "$s/ssh/id_ed25519" -C "shoal-netns-$NAME"
    ssh-keygen -q -t ed25519 -N "" -f "$s/ssh/host_ed25519"
    cp "$s/ssh/id_ed25519.pub" "$s/ssh/authorized_keys"
    for ((i = 1; i <= $(hosts_count); i++)); do
        cat >"$s/h$i/sshd_config" <<EOF
ListenAddress $(node_ip "h$i"):$port
HostKey $s/ssh/host_ed25519
AuthorizedKeysFile $s/ssh/authorized_keys
PidFile $s/h$i/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
        spawn "h$i" "$s/h$i/sshd.log" "$s/h$i/sshd.launch.pid" "$sshd_bin" -f "$s/h$i/sshd_config" -D -E "$s/h$i/sshd.log"
    done
    echo "$port" >"$s/ssh/port"
    for ((i = 1; i <= $(hosts_count); i++)); do wait_tcp c "$(node_ip "h$i")" "$port" 10 || die "sshd on h$i did not come up: $(cat "$s/h$i/sshd.log" 2>/dev/null)"; done
    log "sshd on port $port in every host; client key $s/ssh/id_ed25519"
}

wait_tcp() { # from-node ip port seconds
    local t=0
    until in_ns "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; do
        sleep 0.1; t=$((t + 1)); [ "$t" -lt $(($4 * 10)) ] || return 1
    done
}

cmd_shape() {
    [ -d "$(state)" ] || die "cluster '$NAME' is not up"
    local old; old="$(cat "$(state)/shape" 2>/dev/null || true)"
    SHAPE_COORD=1
    [[ "$old" == *"coordinator=0"* ]] && SHAPE_COORD=0
    set_profile none
    while [ $# -gt 0 ]; do
        parse_shape_option "$@" || die "shape: unknown option '$1'"
        shift "$SHIFT"
    done
    apply_shape
}

find_worker_bin() {
    for d in "$ROOT/.build-ops/release" "$ROOT/.build/release" "$ROOT/.build/debug" "$ROOT/.build-ops/debug"; do
        [ -x "$d/shoal-worker" ] && { echo "$d"; return; }
    done
    local p; p="$(command -v shoal-worker || true)"
    [ -n "$p" ] && { dirname "$p"; return; }
    die "no shoal-worker found: build it (swift build -c release) or pass --bin DIR"
}

cmd_start_workers() {
    local bin="" port=5601 threads=1 model_dir="" token="" entrypoint=1 s
    s="$(state)"
    [ -d "$s" ] || die "cluster '$NAME' is not up"
    while [ $# -gt 0 ]; do
        case "$1" in
            --bin) bin="${2:?}"; shift 2 ;;
            --port) port="${2:?}"; shift 2 ;;
            --threads) threads="${2:?}"; shift 2 ;;
            --model-dir) model_dir="${2:?}"; shift 2 ;;
            --token) token="${2:?}"; shift 2 ;;
            --no-entrypoint) entrypoint=0; shift ;;
            *) die "start-workers: unknown option '$1'" ;;
        esac
    done
    [ -n "$bin" ] || bin="$(find_worker_bin)"
    [ -x "$bin/shoal-worker" ] || die "$bin/shoal-worker is not an executable"
    local addresses=()
    for ((i = 1; i <= $(hosts_count); i++)); do
        local n="h$i" args
        args=(shoal-worker --listen "tcp://0.0.0.0:$port" --threads "$threads" --cache-dir "$s/$n/cache")
        [ -n "$model_dir" ] && args+=(--model-dir "$model_dir")
        # The containers' entry point (Cluster/entrypoint.sh) starts the worker here too, so this
        # topology runs what docker compose runs; links are shaped from outside (NETEM unset).
        [ "$entrypoint" = 1 ] && args=("$ROOT/Cluster/entrypoint.sh" "${args[@]}")
        : >"$s/$n/worker.log"
        spawn "$n" "$s/$n/worker.log" "$s/$n/worker.pid" env PATH="$bin:$PATH" SHOAL_TOKEN="$token" NETEM= "${args[@]}"
        addresses+=("tcp://$(node_ip "$n"):$port")
    done
    for ((i = 1; i <= $(hosts_count); i++)); do
        local n="h$i" t=0
        until grep -q "listening on" "$s/$n/worker.log"; do
            kill -0 "$(cat "$s/$n/worker.pid")" 2>/dev/null || die "worker in $n exited: $(tail -5 "$s/$n/worker.log")"
            sleep 0.1; t=$((t + 1)); [ "$t" -lt 300 ] || die "worker in $n did not start: $(tail -5 "$s/$n/worker.log")"
        done
    done
    (IFS=,; echo "${addresses[*]}") >"$s/workers"
    echo "$bin" >"$s/bin"
    { echo "workers:"; for a in "${addresses[@]}"; do echo "  - $a"; done; } >"$s/cluster.yaml"
    log "workers: $(cat "$s/workers") (logs in $s/h*/worker.log)"
}

stop_pidfile() { # file
    [ -f "$1" ] || return 0
    local pid; pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

cmd_stop_workers() {
    for ((i = 1; i <= $(hosts_count); i++)); do stop_pidfile "$(state)/h$i/worker.pid"; done
    rm -f "$(state)/workers"
}

cmd_down() {
    local ours
    ours="$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NAME-(sw|c|h[0-9]+)$" || true)"
    # Everything running inside our namespaces was started for this cluster: workers, delay
    # lines, sshd and whatever the launcher started through it.
    local pids=""
    for n in $ours; do pids+=" $(ip netns pids "$n" 2>/dev/null | tr '\n' ' ')"; done
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    for n in $ours; do ip netns del "$n" 2>/dev/null || true; rm -rf "/etc/netns/$n"; done
    rm -rf "/etc/netns/$NAME-c" "/etc/netns/$NAME-sw"
    for d in /etc/netns/"$NAME"-h*; do [ -e "$d" ] && rm -rf "$d"; done
    [ "${SHOAL_NETNS_KEEP_STATE:-0}" = 1 ] || rm -rf "$(state)"
    log "down: cluster '$NAME' removed"
}

cmd_status() {
    local s; s="$(state)"
    [ -d "$s" ] || { echo "cluster '$NAME' is not up"; return 1; }
    echo "cluster '$NAME': $(hosts_count) hosts, subnet $(subnet).0/24"
    echo "links: $(cat "$s/shape" 2>/dev/null)"
    for n in $(nodes); do
        local w="-"
        [ -f "$s/$n/worker.pid" ] && kill -0 "$(cat "$s/$n/worker.pid")" 2>/dev/null && w="worker pid $(cat "$s/$n/worker.pid")"
        printf '  %-3s %-15s %s\n' "$n" "$(node_ip "$n")" "$w"
    done
}

cmd_exec() {
    local n="${1:?exec needs a node (c, h1.., sw)}"; shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "exec: no command"
    local s; s="$(state)"
    ip netns list | grep -q "^$(ns "$n")\b" || die "no namespace $(ns "$n") (is cluster '$NAME' up?)"
    # The workers' build directory goes first on PATH, so shoal-coordinator is the matching one.
    local path="$PATH"
    [ -f "$s/bin" ] && path="$(cat "$s/bin"):$PATH"
    in_ns "$n" env PATH="$path" SHOAL_WORKERS="$(cat "$s/workers" 2>/dev/null || true)" SHOAL_CLUSTER_FILE="$s/cluster.yaml" "$@"
}

cmd_run() {
    local up_args=() worker_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        if parse_shape_option "$@"; then up_args+=("${@:1:$SHIFT}"); shift "$SHIFT"; continue; fi
        case "$1" in
            --hosts | --subnet | --alias | --ssh-port | --tcp-cc) up_args+=("$1" "${2:?}"); shift 2 ;;
            --sshd) up_args+=("$1"); shift ;;
            --bin | --port | --threads | --model-dir | --token) worker_args+=("$1" "${2:?}"); shift 2 ;;
            --no-entrypoint) worker_args+=("$1"); shift ;;
            *) die "run: unknown option '$1'" ;;
        esac
    done
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "run: no command after --"
    TEARDOWN_ON_EXIT=1
    cmd_up "${up_args[@]}"
    cmd_start_workers "${worker_args[@]}"
    # The command sees $SHOAL_WORKERS and $SHOAL_CLUSTER_FILE in its environment (wrap it in
    # sh -c '...' to put them on its command line).
    cmd_exec c "$@"
}

dump_logs() {
    local s; s="$(state)"
    for f in "$s"/*/worker.log "$s"/*/delay-line.log; do
        [ -f "$f" ] || continue
        echo "--- $f (last lines)" >&2
        tail -15 "$f" >&2
    done
}

# Set while a cluster must not outlive this script: during `up` (until it succeeds) and `run`.
TEARDOWN_ON_EXIT=0
on_exit() {
    local status=$?
    if [ "$TEARDOWN_ON_EXIT" = 1 ]; then
        TEARDOWN_ON_EXIT=0
        [ "$status" = 0 ] || { log "failed (exit $status); tearing down"; dump_logs; }
        cmd_down || true
    fi
    exit "$status"
}

main() {
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    [ $# -gt 0 ] || usage 1
    local cmd="$1"; shift
    # --name may come first or anywhere before the subcommand's own options.
    if [ "$cmd" = --name ]; then NAME="${1:?}"; shift; cmd="${1:?subcommand}"; shift; fi
    local rest=()
    while [ $# -gt 0 ]; do
        if [ "$1" = --name ]; then NAME="${2:?}"; shift 2; continue; fi
        if [ "$1" = -- ]; then rest+=("$@"); break; fi
        rest+=("$1"); shift
    done
    [[ "$NAME" =~ ^[a-zA-Z0-9_.]{1,20}$ ]] || die "--name must be 1-20 letters, digits, '_' or '.'"
    set -- "${rest[@]+"${rest[@]}"}"
    case "$cmd" in
        up) cmd_up "$@" ;;
        shape) cmd_shape "$@" ;;
        start-workers) cmd_start_workers "$@" ;;
        stop-workers) cmd_stop_workers ;;
        exec) cmd_exec "$@" ;;
        workers) cat "$(state)/workers" ;;
        status) cmd_status ;;
        down) cmd_down ;;
        run) cmd_run "$@" ;;
        -h | --help | help) usage 0 ;;
        *) die "unknown subcommand '$cmd' (up, shape, start-workers, stop-workers, exec, workers, status, down, run)" ;;
    esac
}

main "$@"
