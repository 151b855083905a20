#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for a model directory (not run in CI).

Used to make Tests/Fixtures/arch/<preset>/reference.safetensors for the tiny synthetic
checkpoints of every architecture Shoal supports, and to compare any checkpoint by hand:

    python3 Scripts/transformers-reference.py MODEL_DIR [--steps 10] [--out FILE]

Writes, per prompt i: p{i}.input_ids, p{i}.prefill_logits [T, vocab], p{i}.greedy_ids [steps],
p{i}.greedy_step_logits [steps, vocab] (each step recomputed over the whole sequence, no cache),
all in float32 from the stored weights, with eager attention.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    cfg = json.load(open(os.path.join(args.model, "config.json")))
    vocab = cfg["vocab_size"]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    g = torch.Generator().manual_seed(1234)
    bos = cfg.get("bos_token_id") or 0
    # Lengths chosen to pass the tiny Mistral's sliding window of 6.
    prompts = [[bos] + torch.randint(3, vocab, (n,), generator=g).tolist() for n in (6, 12)]
    out = {}
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            x = torch.tensor([ids])
            prefill = model(input_ids=x).logits[0].float()
            seq = list(ids)
            step_logits, greedy = [], []
            for _ in range(args.steps):
                logits = model(input_ids=torch.tensor([seq])).logits[0, -1].float()
                tok = int(torch.argmax(logits))
                step_logits.append(logits)
                greedy.append(tok)
                seq.append(tok)
            out[f"p{i}.input_ids"] = torch.tensor(ids, dtype=torch.int32)
            out[f"p{i}.prefill_logits"] = prefill.contiguous()
            out[f"p{i}.greedy_ids"] = torch.tensor(greedy, dtype=torch.int32)
            out[f"p{i}.greedy_step_logits"] = torch.stack(step_logits).contiguous()
    import transformers
    dest = args.out or os.path.join(args.model, "reference.safetensors")
    save_file(out, dest, metadata={"generated_by": f"transformers {transformers.__version__}, torch {torch.__version__}"})
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
