#!/usr/bin/env bash
# N shoal-worker processes on this machine's loopback for the length of one command: the
# smallest distributed setup, no root, no containers.
#
#   Scripts/run-local-cluster.sh [--workers N] [--threads T] [--port P] [--bin DIR] -- COMMAND...
#
# COMMAND runs with $SHOAL_WORKERS set to the workers' addresses (tcp://127.0.0.1:P,P+1,... with
# --port; by default each worker picks a free port) and the build directory first on PATH; the workers are stopped afterwards, also on failure or Ctrl-C.
#   Scripts/run-local-cluster.sh --workers 2 -- sh -c \
#       'shoal-coordinator generate --model Tests/Fixtures/tiny-llama --prompt Hello --workers "$SHOAL_WORKERS"'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "run-local-cluster: $*" >&2; exit 1; }

WORKERS=2 THREADS=1 PORT="" BIN=""
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case "$1" in
        --workers) WORKERS="${2:?}"; shift 2 ;;
        --threads) THREADS="${2:?}"; shift 2 ;;
        --port) PORT="${2:?}"; shift 2 ;;
        --bin) BIN="${2:?}"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1'" ;;
    esac
done
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || die "no command after --"
if [ -z "$BIN" ]; then
    for d in "$ROOT/.build/release" "$ROOT/.build/debug"; do [ -x "$d/shoal-worker" ] && { BIN="$d"; break; }; done
fi
[ -n "$BIN" ] && [ -x "$BIN/shoal-worker" ] || die "no shoal-worker built: swift build -c release (or pass --bin DIR)"

LOGS="$(mktemp -d)"
PIDS=()
cleanup() {
    local status=$?
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    [ "$status" = 0 ] || for f in "$LOGS"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done
    rm -rf "$LOGS"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

addresses=()
for ((i = 0; i < WORKERS; i++)); do
    listen="tcp://127.0.0.1:${PORT:+$((PORT + i))}"
    [ -n "$PORT" ] || listen="tcp://127.0.0.1:*"
    "$BIN/shoal-worker" --listen "$listen" --threads "$THREADS" --cache-dir "$LOGS/cache" \
        </dev/null >"$LOGS/worker-$i.log" 2>&1 &
    PIDS+=($!)
done
for ((i = 0; i < WORKERS; i++)); do
    for t in $(seq 100); do
        address="$(grep -o 'listening on tcp://[0-9.]*:[0-9]*' "$LOGS/worker-$i.log" | head -1 | cut -d' ' -f3 || true)"
        [ -n "$address" ] && break
        kill -0 "${PIDS[$i]}" 2>/dev/null || die "worker $i exited: $(tail -3 "$LOGS/worker-$i.log")"
        [ "$t" -lt 100 ] || die "worker $i did not start"
        sleep 0.1
    done
    addresses+=("$address")
done
SHOAL_WORKERS="$(IFS=,; echo "${addresses[*]}")"
echo "run-local-cluster: $WORKERS workers: $SHOAL_WORKERS" >&2
PATH="$BIN:$PATH" SHOAL_WORKERS="$SHOAL_WORKERS" "$@"
