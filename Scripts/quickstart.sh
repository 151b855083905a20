#!/usr/bin/env bash
# The main job on this machine: builds Shoal, starts two shoal-worker processes on loopback,
# generates text with the bundled tiny-llama split across them (tensor parallel, star
# all-reduce), checks the tokens against a single-process run, and stops the workers.
# Installs missing system packages first (Scripts/install-deps.sh).
#
#   Scripts/quickstart.sh ["prompt"] [max-tokens]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/install-deps.sh

prompt=${1:-"The future of distributed inference"}
max_tokens=${2:-48}
model=Tests/Fixtures/tiny-llama

echo "==> building (release)" >&2
swift build -c release --product shoal-worker >&2
swift build -c release --product shoal-coordinator >&2
bin=$(swift build -c release --show-bin-path)

logs=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$logs"
}
trap cleanup EXIT

# Each worker picks a free port; its log says which.
addresses=()
for i in 1 2; do
    "$bin/shoal-worker" --listen 'tcp://127.0.0.1:*' --threads 1 --cache-dir "$logs/cache" 2>"$logs/worker$i.log" &
    pids+=($!)
    for _ in $(seq 100); do
        addr=$(grep -o 'tcp://127\.0\.0\.1:[0-9]*' "$logs/worker$i.log" | head -1 || true)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$logs/worker$i.log" >&2; echo "worker $i did not start" >&2; exit 1; }
    addresses+=("$addr")
done
workers=$(IFS=,; echo "${addresses[*]}")

echo "==> workers: $workers" >&2
echo "==> generating across 2 workers (tp=2, star all-reduce):" >&2
"$bin/shoal-coordinator" generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" --workers "$workers" --tp 2

cluster_json=$("$bin/shoal-coordinator" generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" \
    --workers "$workers" --tp 2 --json 2>/dev/null | tail -1)
local_json=$("$bin/shoal-coordinator" generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" --json 2>/dev/null | tail -1)
python3 - "$cluster_json" "$local_json" <<'PY' >&2 || true
import json, sys
c, l = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = c["tokens"] == l["tokens"]
print(f"==> {len(c['tokens'])} tokens; identical to one process: {same}; "
      f"cluster ttft {c['ttft_ms']:.1f} ms, {c['tpot_ms']:.2f} ms/token; one process {l['tpot_ms']:.2f} ms/token")
PY
