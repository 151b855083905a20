#!/usr/bin/env bash
# TPI-LLM's all-reduce experiment on an emulated edge network, in one command: token latency of
# star, ring and mesh all-reduce vs node count, one-way link delay and link rate, measured with
# `shoal-coordinator bench` across workers in network namespaces (Scripts/netns-cluster.sh).
# Writes the CSV, the PNG plots and a summary table; needs root, and python3 with matplotlib
# (pip-installed when missing) for the plots.
#
#   sudo Scripts/run-experiment.sh                      # the full sweep (~8 min on 2 cores)
#   sudo Scripts/run-experiment.sh --quick              # 2 delays, 1 rate, short runs (~1 min)
#
# Options (defaults in brackets):
#   --out DIR              results directory [docs/experiments/tpi-star-ring]
#   --nodes LIST           worker counts [1,2,3,4]   (1 = no all-reduce: the compute baseline)
#   --delays LIST          one-way delay per link, ms [0.1,1,5,10]
#   --rates LIST           link rates [100mbit,1gbit]
#   --algorithms LIST      [star,ring,mesh]
#   --layers N             layers of the synthetic model [2]
#   --prompt-len P --gen G --repeat R    per plan [16, 16, 5]
#   --threads T            compute threads per worker [1]
#   --bin DIR              prebuilt shoal-worker/shoal-coordinator (default: build release in
#                          $SHOAL_BUILD_DIR, default .build)
#   --model-cache DIR      where the synthetic model is written once [/tmp/shoal-experiment]
#   --no-plot              CSV only
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "run-experiment: $*" >&2; exit 1; }
log() { echo "run-experiment: $*" >&2; }

OUT="$ROOT/docs/experiments/tpi-star-ring"
NODES=1,2,3,4 DELAYS=0.1,1,5,10 RATES=100mbit,1gbit ALGORITHMS=star,ring,mesh
LAYERS=2 PROMPT_LEN=16 GEN=16 REPEAT=5 THREADS=1 BIN="" CACHE=/tmp/shoal-experiment PLOT=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="${2:?}"; shift 2 ;;
        --nodes) NODES="${2:?}"; shift 2 ;;
        --delays) DELAYS="${2:?}"; shift 2 ;;
        --rates) RATES="${2:?}"; shift 2 ;;
        --algorithms) ALGORITHMS="${2:?}"; shift 2 ;;
        --layers) LAYERS="${2:?}"; shift 2 ;;
        --prompt-len) PROMPT_LEN="${2:?}"; shift 2 ;;
        --gen) GEN="${2:?}"; shift 2 ;;
        --repeat) REPEAT="${2:?}"; shift 2 ;;
        --threads) THREADS="${2:?}"; shift 2 ;;
        --bin) BIN="${2:?}"; shift 2 ;;
        --model-cache) CACHE="${2:?}"; shift 2 ;;
        --no-plot) PLOT=0; shift ;;
        --quick) DELAYS=0.1,5 RATES=1gbit GEN=8 REPEAT=2; shift ;;
        -h | --help) sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
MAX_NODES="$(tr ',' '\n' <<<"$NODES" | sort -n | tail -1)"
SECONDS=0
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

if [ -z "$BIN" ]; then
    scratch="${SHOAL_BUILD_DIR:-$ROOT/.build}"
    log "building release binaries in $scratch"
    (cd "$ROOT" && swift build -c release --scratch-path "$scratch" --product shoal-worker >&2 \
        && swift build -c release --scratch-path "$scratch" --product shoal-coordinator >&2)
    BIN="$(cd "$ROOT" && swift build -c release --scratch-path "$scratch" --show-bin-path)"
fi
[ -x "$BIN/shoal-worker" ] && [ -x "$BIN/shoal-coordinator" ] || die "$BIN lacks shoal-worker/shoal-coordinator"

# TinyLlama-1.1B's layer shape (hidden 2048, FFN 5632, 32/4 heads) with few layers and a small
# vocabulary: per layer, the communication-to-compute ratio of a real 1B-class model, while the
# lm_head (split by vocabulary rows, logits gathered by the coordinator) adds little traffic that
# is not all-reduce. Fewer layers only shorten every run by the same factor.
MODEL="$CACHE/tinyllama-1.1b-L$LAYERS-V2048"
if [ ! -f "$MODEL/config.json" ]; then
    mkdir -p "$CACHE"
    "$BIN/shoal-coordinator" synth-model --preset tinyllama-1.1b --layers "$LAYERS" --vocab 2048 --dtype bf16 --out "$MODEL" >&2
fi

NAME=shoalx
NETNS=("$ROOT/Scripts/netns-cluster.sh" --name "$NAME")
trap '"${NETNS[@]}" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM
"${NETNS[@]}" down >/dev/null 2>&1 || true
"${NETNS[@]}" up --hosts "$MAX_NODES"
# Workers read their slices from the model directory (same file system): no transfer.
"${NETNS[@]}" start-workers --bin "$BIN" --threads "$THREADS" --model-dir "$CACHE"
BACKEND="$("${NETNS[@]}" status | sed -n 's/.*backend=\([a-z-]*\).*/\1/p')"

mkdir -p "$OUT"
CSV="$OUT/results.csv"
BENCH_LOG="$OUT/bench-log.txt"
TMP="$(mktemp -d)"
trap '"${NETNS[@]}" down >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
: >"$BENCH_LOG"
header_written=0

# One bench run per plan (nodes x algorithm) under the current link shape, rows prefixed with
# the shape. Separate runs, each retried once: a worker can still be closing the previous
# plan's session when the next one says hello, and refuses it as busy.
bench() { # rate_label rate_mbit delay_ms
    log "links: rate $1, one-way delay $3 ms"
    echo "=== rate $1, delay $3 ms" >>"$BENCH_LOG"
    for n in ${NODES//,/ }; do
        local algorithms="$ALGORITHMS"
        [ "$n" = 1 ] && algorithms="${ALGORITHMS%%,*}"  # one node: no all-reduce to compare
        for a in ${algorithms//,/ }; do
            local csv="$TMP/bench.csv" try
            for try in 1 2 3; do
                if "${NETNS[@]}" exec c -- "$BIN/shoal-coordinator" bench --model "$MODEL" --workers "$("${NETNS[@]}" workers)" \
                    --nodes "$n" --allreduce "$a" --prompt-len "$PROMPT_LEN" --gen "$GEN" --repeat "$REPEAT" \
                    --out "$csv" >/dev/null 2>>"$BENCH_LOG"; then break; fi
                [ "$try" -lt 3 ] || die "bench failed for $n nodes, $a (see $BENCH_LOG)"
                sleep 1
            done
            if [ "$header_written" = 0 ]; then
                echo "rate,rate_mbit,delay_ms,$(head -1 "$csv")" >"$CSV"
                header_written=1
            fi
            tail -n +2 "$csv" | sed "s/^/$1,$2,$3,/" >>"$CSV"
            awk -F, 'NR > 1 { printf "  nodes %s %-4s tpot p50 %8.2f ms  ttft %8.2f ms  all-reduce p50 %8.0f us\n", $2, $5, $12, $11, $17 }' "$csv" >&2
        done
    done
}

# Unshaped veth links first: the floor every shaped figure sits on.
"${NETNS[@]}" shape --profile none
bench unlimited 0 0
for rate in ${RATES//,/ }; do
    mbit="$(awk -v r="$rate" 'BEGIN { n = r + 0; if (r ~ /gbit$/) n *= 1000; else if (r ~ /kbit$/) n /= 1000; print n }')"
    for delay in ${DELAYS//,/ }; do
        "${NETNS[@]}" shape --delay "${delay}ms" --rate "$rate"
        bench "$rate" "$mbit" "$delay"
    done
done
"${NETNS[@]}" down

{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "delay backend: $BACKEND"
    echo "model: $(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(f\"llama, {c['num_hidden_layers']} layers, hidden {c['hidden_size']}, ffn {c['intermediate_size']}, heads {c['num_attention_heads']}/{c['num_key_value_heads']}, vocab {c['vocab_size']}, bf16\")" "$MODEL/config.json")"
    echo "workers: up to $MAX_NODES, $THREADS compute thread(s) each; coordinator in its own namespace, links shaped like the workers'"
    echo "per plan: prompt $PROMPT_LEN tokens, $GEN generated, $REPEAT repeats after one warm-up request"
    echo "sweep: nodes $NODES; algorithms $ALGORITHMS; one-way delay ${DELAYS//,/, } ms; rates ${RATES//,/, }; plus unshaped links"
    echo "wall time: ${SECONDS} s"
    echo "load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
} >"$OUT/environment.txt"
log "wrote $CSV ($(($(wc -l <"$CSV") - 1)) rows) in ${SECONDS} s"

if [ "$PLOT" = 1 ]; then
    python3 -c "import matplotlib" 2>/dev/null || { log "installing matplotlib"; python3 -m pip install --quiet matplotlib >&2; }
    python3 "$ROOT/Scripts/plot-experiment.py" "$CSV" "$OUT"
fi
