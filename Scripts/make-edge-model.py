#!/usr/bin/env python3
"""Writes the latency experiment's model: TinyLlama-1.1B's layer shape (hidden 2048, FFN 5632,
32 query / 4 KV heads) with few layers and the bundled 2048-token tokenizer.

Why this shape: per token, every layer does two all-reduces of a hidden-size vector and a fixed
amount of matvec work, so the ratio of communication to computation per layer is that of a
real 1B-class model; fewer layers only shorten every run by the same factor. A small vocabulary
keeps the lm_head (split by vocabulary rows, logits gathered at the coordinator) from adding
compute and traffic that is not all-reduce.

Weights are random (N(0, 0.02), seeded), stored as bf16: the experiment measures time, not text.
Needs numpy only.

    Scripts/make-edge-model.py --out /tmp/edge-2048 [--layers 2] [--seed 0]
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(ROOT, "Tests", "Fixtures", "tiny-llama")


def bf16_bytes(values: np.ndarray) -> bytes:
    """float32 -> bf16 with round-to-nearest-even, as little-endian bytes."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype("<u2").tobytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with open(os.path.join(TOKENIZER_DIR, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    hidden, inter, heads, kv = args.hidden, args.intermediate, args.heads, args.kv_heads
    head_dim = hidden // heads
    if hidden % heads or heads % kv:
        sys.exit("make-edge-model: hidden must divide by heads and heads by kv-heads")

    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}
    for l in range(args.layers):
        p = f"model.layers.{l}."
        shapes.update({
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (heads * head_dim, hidden),
            p + "self_attn.k_proj.weight": (kv * head_dim, hidden),
            p + "self_attn.v_proj.weight": (kv * head_dim, hidden),
            p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
            p + "mlp.gate_proj.weight": (inter, hidden),
            p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
        })

    rng = np.random.default_rng(args.seed)
    header, blobs, offset = {}, [], 0
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("norm.weight"):
            data = np.ones(shape, dtype=np.float32)
        else:
            data = rng.normal(0.0, 0.02, size=shape).astype(np.float32)
        blob = bf16_bytes(data)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": args.layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
        "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False,
        "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "bfloat16",
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(args.out, name))
    print(f"wrote {args.out}: llama, {args.layers} layers, hidden {hidden}, ffn {inter}, heads {heads}/{kv}, "
          f"vocab {vocab}, {offset / 1e6:.0f} MB bf16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
