#!/usr/bin/env bash
# Regenerates Tests/Fixtures/arch: one tiny synthetic checkpoint per supported architecture and
# its reference logits from Hugging Face transformers (needs python3 with torch, transformers
# and safetensors; not part of CI — the outputs are committed).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product shoal-coordinator
bin=.build/debug/shoal-coordinator
for spec in tiny-llama3:f32 tiny-mistral:f32 tiny-qwen2:f32 tiny-qwen3:f16 tiny-mixtral:bf16 tiny-qwen2-moe:f32 tiny-qwen3-moe:bf16; do
    name=${spec%%:*}
    dtype=${spec##*:}
    rm -rf "Tests/Fixtures/arch/$name"
    "$bin" synth-model --preset "$name" --dtype "$dtype" --out "Tests/Fixtures/arch/$name"
    python3 Scripts/transformers-reference.py "Tests/Fixtures/arch/$name"
done
