#!/usr/bin/env bash
# The main job on this machine: builds Shoal, starts two shoal-worker processes on loopback
# (Scripts/run-local-cluster.sh), generates text with the bundled tiny-llama split across them
# (tensor parallel, star all-reduce), checks the tokens against a single-process run, and stops
# the workers. Installs missing system packages first (Scripts/install-deps.sh).
#
#   Scripts/quickstart.sh ["prompt"] [max-tokens]
set -euo pipefail
cd "$(dirname "$0")/.."
model=Tests/Fixtures/tiny-llama

if [ "${1:-}" = --inside-cluster ]; then
    # Runs under run-local-cluster.sh: $SHOAL_WORKERS is set and the binaries are on PATH.
    prompt=$2 max_tokens=$3
    echo "==> generating across 2 workers (tp=2, star all-reduce):" >&2
    shoal-coordinator generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" --workers "$SHOAL_WORKERS" --tp 2
    cluster=$(shoal-coordinator generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" \
        --workers "$SHOAL_WORKERS" --tp 2 --json 2>/dev/null | tail -1)
    single=$(shoal-coordinator generate --model "$model" --prompt "$prompt" --max-tokens "$max_tokens" --json 2>/dev/null | tail -1)
    tokens() { sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/' <<<"$1"; }
    field() { sed "s/.*\"$2\":\([0-9.]*\).*/\1/" <<<"$1"; }
    same=no
    [ "$(tokens "$cluster")" = "$(tokens "$single")" ] && same=yes
    printf '==> tokens identical to one process: %s; cluster: ttft %.1f ms, %.2f ms/token; one process: %.2f ms/token\n' \
        "$same" "$(field "$cluster" ttft_ms)" "$(field "$cluster" tpot_ms)" "$(field "$single" tpot_ms)" >&2
    [ "$same" = yes ]
    exit
fi

source Scripts/install-deps.sh
echo "==> building (release)" >&2
swift build -c release --product shoal-worker >&2
swift build -c release --product shoal-coordinator >&2
exec Scripts/run-local-cluster.sh --workers 2 --bin "$(swift build -c release --show-bin-path)" -- \
    "$PWD/Scripts/quickstart.sh" --inside-cluster "${1:-The future of distributed inference}" "${2:-48}"
