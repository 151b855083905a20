#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md on this machine (release build):
#   1. single node: decode and prefill of the TinyLlama-1.1B shape (f32, bf16, q8_0, q4_0; 1 and
#      2 threads) next to the machine's read bandwidth and FMA peak (bench-local), and the linear
#      kernels alone (bench-kernels);
#   2. all-reduce latency of star/ring/mesh for N = 2..4 and 2-64 KB vectors vs the raw ZeroMQ
#      round trip between the same workers (bench-allreduce);
#   3. distributed decode of the TinyLlama-1.1B shape (bf16): TP = 2 with one thread per worker
#      against one node with two threads, PP = 2 with one, two and four sequences in flight, in
#      alternating pairs; bytes on the wire vs the analytical count (bench).
# Results land in docs/benchmarks/*.csv. Run on a quiet machine: two cores are easily disturbed.
#
#   Scripts/benchmarks.sh [models-dir]      (default /tmp/shoal-models; ~7 GB of synthetic checkpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks

if [ "${1:-}" = --inside-cluster ]; then
    # Runs under run-local-cluster.sh: $SHOAL_WORKERS holds four workers, binaries on PATH.
    model="$2/tinyllama-1.1b-bf16"
    workers=$SHOAL_WORKERS
    echo "## 2. all-reduce" >&2
    shoal-coordinator bench-allreduce --model Tests/Fixtures/tiny-llama --workers "$workers" --nodes 2,3,4 \
        --sizes 2048,8192,16384,32768,65536 --iterations 500 --out "$out/allreduce.csv"
    echo "## 3. distributed decode" >&2
    # This machine's memory bandwidth drifts by up to 2x within minutes, so each comparison is
    # made in alternating pairs, run back to back, and reported per pair.
    tmp=$(mktemp -d)
    field() { python3 -c "import csv,sys; print(list(csv.DictReader(open(sys.argv[1])))[-1][sys.argv[2]])" "$@"; }
    echo "pair,single_node_2_threads_tok_s,tp2_star_tok_s,tp2_mesh_tok_s,tp2_star_ratio,tp2_mesh_ratio" > "$out/tp-pairs.csv"
    for pair in 1 2 3 4; do
        local2=$(shoal-coordinator bench-local --model "$model" --threads 2 --prompt-len 16 --gen 32 --repeat 1 --json | tail -1 |
            python3 -c "import json,sys; print(json.load(sys.stdin)['decode_tokens_per_s'])")
        for a in star mesh; do
            shoal-coordinator bench --model "$model" --workers "$workers" --nodes 2 --tp 2 --allreduce $a --prompt-len 16 --gen 32 \
                --repeat 2 --out "$tmp/tp-$a.csv" > /dev/null
        done
        star=$(field "$tmp/tp-star.csv" tokens_per_s) mesh=$(field "$tmp/tp-mesh.csv" tokens_per_s)
        echo "$pair,$local2,$star,$mesh,$(python3 -c "print(round($star/$local2,3), round($mesh/$local2,3), sep=',')")" | tee -a "$out/tp-pairs.csv"
    done
    echo "pair,pp2_1seq_tok_s,pp2_2seq_overlapped_tok_s,pp2_2seq_batched_tok_s,pp2_4seq_2mb_tok_s,overlapped_ratio,batched_ratio,4seq_ratio" > "$out/pp-pairs.csv"
    for pair in 1 2 3; do
        for run in "1 1" "2 2" "2 1" "4 2"; do
            set -- $run
            shoal-coordinator bench --model "$model" --workers "$workers" --nodes 2 --pp 2 --prompt-len 16 --gen 32 --repeat 2 \
                --sequences $1 --micro-batches $2 --out "$tmp/pp-$1-$2.csv" > /dev/null
        done
        one=$(field "$tmp/pp-1-1.csv" tokens_per_s) ov=$(field "$tmp/pp-2-2.csv" tokens_per_s)
        ba=$(field "$tmp/pp-2-1.csv" tokens_per_s) four=$(field "$tmp/pp-4-2.csv" tokens_per_s)
        echo "$pair,$one,$ov,$ba,$four,$(python3 -c "print(*(round(x/$one,3) for x in ($ov,$ba,$four)), sep=',')")" | tee -a "$out/pp-pairs.csv"
    done
    rm -rf "$tmp"
    shoal-coordinator bench --model "$model" --workers "$workers" --nodes 2,4 --allreduce star,ring,mesh \
        --sync f32,q8_0 --prompt-len 16 --gen 16 --repeat 2 --out "$out/wire-bytes.csv"
    echo "results in $out" >&2
    exit
fi

source Scripts/install-deps.sh
models=${1:-/tmp/shoal-models}
mkdir -p "$out" "$models"

swift build -c release --product shoal-coordinator >&2
swift build -c release --product shoal-worker >&2
bin=$(swift build -c release --show-bin-path)

for dtype in f32 bf16; do
    dir="$models/tinyllama-1.1b-$dtype"
    [ -f "$dir/config.json" ] || "$bin/shoal-coordinator" synth-model --preset tinyllama-1.1b --dtype "$dtype" --out "$dir"
done

echo "## machine" | tee "$out/machine.txt"
{ lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | sed 's/Flags:.*\(avx512[a-z_0-9]*\).*/Flags: ... avx512 .../'; free -g | head -2; uname -r; } | tee -a "$out/machine.txt"

for q in q8_0 q4_0; do
    dir="$models/tinyllama-1.1b-$q"
    [ -f "$dir/config.json" ] || "$bin/shoal-coordinator" quantize --model "$models/tinyllama-1.1b-f32" --to "$q" --out "$dir"
done

echo "## 1. single node" >&2
for dtype in f32 bf16 q8_0 q4_0; do
    "$bin/shoal-coordinator" bench-local --model "$models/tinyllama-1.1b-$dtype" --threads 1,2 --prompt-len 128 --gen 16 --repeat 3 --json
done | tee "$out/single-node.txt"
{ "$bin/shoal-coordinator" bench-kernels; "$bin/shoal-coordinator" bench-kernels --types F32,BF16,Q8_0,Q4_0 --column-slices 2 | grep decode; } |
    tee "$out/kernels.txt"

echo "## 2-3. across four workers on loopback" >&2
exec Scripts/run-local-cluster.sh --workers 4 --bin "$bin" -- "$PWD/Scripts/benchmarks.sh" --inside-cluster "$models"
