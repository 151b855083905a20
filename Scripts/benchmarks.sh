#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md on this machine (release build):
#   1. single node: decode and prefill of the TinyLlama-1.1B shape (f32, bf16; 1 and 2 threads)
#      next to the machine's read bandwidth and FMA peak (bench-local);
#   2. all-reduce latency of star/ring/mesh for N = 2..4 and 2-64 KB vectors vs the raw ZeroMQ
#      round trip between the same workers (bench-allreduce);
#   3. distributed decode of the TinyLlama-1.1B shape: TP = 1, 2 with one thread per worker,
#      PP = 2 with one and two sequences in flight, bytes on the wire vs the analytical count (bench).
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
    shoal-coordinator bench --model "$model" --workers "$workers" --nodes 1,2 --prompt-len 16 --gen 16 --repeat 3 \
        --out "$out/tp.csv"
    for s in 1 2; do
        shoal-coordinator bench --model "$model" --workers "$workers" --nodes 2 --pp 2 --prompt-len 16 --gen 16 --repeat 3 \
            --sequences "$s" --out "$out/pp-${s}seq.csv"
    done
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

echo "## 1. single node" >&2
for dtype in f32 bf16; do
    "$bin/shoal-coordinator" bench-local --model "$models/tinyllama-1.1b-$dtype" --threads 1,2 --prompt-len 128 --gen 16 --repeat 3 --json
done | tee "$out/single-node.txt"

echo "## 2-3. across four workers on loopback" >&2
exec Scripts/run-local-cluster.sh --workers 4 --bin "$bin" -- "$PWD/Scripts/benchmarks.sh" --inside-cluster "$models"
