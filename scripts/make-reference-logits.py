#!/usr/bin/env python3
"""A float64 reference forward pass for the golden-logits test: numpy over each pinned model's dequantized weights.

Specula and llama.cpp both quantize activations to 8 bits for their products with quantized weights, keep float32
(llama.cpp: float16 in the KV cache) and sum in their own orders, so their logits differ by rounding. This script
computes what both approximate: the same quantized model with exact weights (dequantized by the `gguf` package, the
format's own Python reader) and every activation in float64. The golden-logits test uses it to tell a near-tie
(where the two implementations may pick different argmax tokens) from a real disagreement, and to bound Specula's own
error.

The graph follows llama.cpp's for each architecture, written here from the GGUF conventions:
- llama (SmolLM2): RMS norm, RoPE on adjacent pairs (the converter permuted Q and K for it), SwiGLU, tied output;
- qwen2: as llama, with Q/K/V biases and RoPE on the two halves of each head (NeoX style);
- gemma3: embeddings scaled by sqrt(width); RMS norms whose weights already hold Gemma's +1; Q/K RMS norms per head;
  NeoX RoPE with base 10,000 on sliding-window layers (every layer but each sixth) and the file's base on the others;
  a 512-token window (key j is visible from query i when i - j < 512); queries scaled by 1/sqrt(head width);
  norms after attention and after the feed-forward block; GELU (tanh form) gating; tied output.

Input: the token sequences of Tests/SpeculaInferenceTests/Fixtures/golden-logits.json (llama.cpp's tokenization).
Output: Tests/SpeculaInferenceTests/Fixtures/reference-logits.json, per model, case and position the top TOP tokens
by float64 logit (ids and logits, rounded to 1e-5) and the log-sum-exp over the whole vocabulary.

Usage: python3 -m venv .venv && .venv/bin/pip install numpy gguf && .venv/bin/python scripts/make-reference-logits.py
(about 6 minutes and 4 GB of memory on a 2-core host). `--model NAME` runs one model and `--round-activations N`
rounds every product's input to 8 bits per block of N values, for diagnosis; both write to /tmp instead.
"""
import json
import os
import pathlib
import sys
import time

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests/SpeculaInferenceTests/Fixtures"
MODELS = pathlib.Path(os.environ.get("SPECULA_MODELS", pathlib.Path.home() / ".cache/specula/models"))
TOP = 16


class Weights:
    def __init__(self, path):
        self.reader = GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.fields = self.reader.fields

    def meta(self, key, default=None):
        field = self.fields.get(key)
        return default if field is None else field.contents()

    def has(self, name):
        return name in self.tensors

    def get(self, name):
        tensor = self.tensors[name]
        return np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float64)


# For a diagnosis only (`--round-activations N`): rounds the input of every product with a weight matrix to 8 bits
# per block of N values, symmetric, as the implementations do; 0 (the default) keeps float64.
ACTIVATION_BLOCK = 0


def product(x, weight):
    """x @ weightᵀ, after the optional activation rounding."""
    if ACTIVATION_BLOCK:
        shape = x.shape
        blocks = x.reshape(-1, ACTIVATION_BLOCK)
        scale = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        x = (np.round(blocks / scale) * scale).reshape(shape)
    return x @ weight.T


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x, positions, base, neox):
    """x: [tokens, heads, dim]; rotates every pair by position · base^(-2i/dim)."""
    dim = x.shape[-1]
    half = dim // 2
    inv = base ** (-np.arange(half, dtype=np.float64) * 2.0 / dim)
    angle = positions[:, None].astype(np.float64) * inv[None, :]
    cos = np.cos(angle)[:, None, :]
    sin = np.sin(angle)[:, None, :]
    if neox:
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def attention(q, k, v, scale, window):
    """q: [T, H, D], k/v: [T, Hkv, D]; causal, optionally within a window; grouped-query heads."""
    tokens, heads, _ = q.shape
    group = heads // k.shape[1]
    i = np.arange(tokens)[:, None]
    j = np.arange(tokens)[None, :]
    visible = j <= i
    if window:
        visible &= (i - j) < window
    out = np.empty((tokens, heads, v.shape[-1]))
    for h in range(heads):
        scores = (q[:, h, :] @ k[:, h // group, :].T) * scale
        scores = np.where(visible, scores, -np.inf)
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        out[:, h, :] = p @ v[:, h // group, :]
    return out


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * x * (1.0 + 0.044715 * x * x)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(weights, cases):
    """Hidden states of every case through every layer, a layer's weights dequantized once for all cases."""
    arch = weights.meta("general.architecture")
    width = int(weights.meta(f"{arch}.embedding_length"))
    layers = int(weights.meta(f"{arch}.block_count"))
    heads = int(weights.meta(f"{arch}.attention.head_count"))
    kv_heads = int(weights.meta(f"{arch}.attention.head_count_kv"))
    eps = float(weights.meta(f"{arch}.attention.layer_norm_rms_epsilon"))
    base = float(weights.meta(f"{arch}.rope.freq_base", 10000.0))
    head_dim = int(weights.meta(f"{arch}.attention.key_length", width // heads))
    window = int(weights.meta(f"{arch}.attention.sliding_window", 0))
    neox = arch in ("qwen2", "gemma3")

    embedding = weights.get("token_embd.weight")
    states = [embedding[np.array(tokens)] for tokens in cases]
    if arch == "gemma3":
        states = [x * np.sqrt(width) for x in states]
    for layer in range(layers):
        p = f"blk.{layer}."
        w = {
            name: weights.get(p + name)
            for name in ("attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                         "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                         "ffn_down.weight")
        }
        for extra in ("attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_q_norm.weight", "attn_k_norm.weight",
                      "post_attention_norm.weight", "post_ffw_norm.weight"):
            if weights.has(p + extra):
                w[extra] = weights.get(p + extra)
        sliding = arch == "gemma3" and window > 0 and layer % 6 < 5
        layer_base = 10000.0 if sliding else base
        for index, x in enumerate(states):
            tokens = x.shape[0]
            positions = np.arange(tokens)
            h = rms_norm(x, w["attn_norm.weight"], eps)
            q = product(h, w["attn_q.weight"])
            k = product(h, w["attn_k.weight"])
            v = product(h, w["attn_v.weight"])
            if "attn_q.bias" in w:
                q, k, v = q + w["attn_q.bias"], k + w["attn_k.bias"], v + w["attn_v.bias"]
            q = q.reshape(tokens, heads, head_dim)
            k = k.reshape(tokens, kv_heads, head_dim)
            v = v.reshape(tokens, kv_heads, head_dim)
            if "attn_q_norm.weight" in w:
                q = rms_norm(q, w["attn_q_norm.weight"], eps)
                k = rms_norm(k, w["attn_k_norm.weight"], eps)
            q = rope(q, positions, layer_base, neox)
            k = rope(k, positions, layer_base, neox)
            a = attention(q, k, v, 1.0 / np.sqrt(head_dim), window if sliding else 0)
            a = product(a.reshape(tokens, heads * head_dim), w["attn_output.weight"])
            if "post_attention_norm.weight" in w:
                a = rms_norm(a, w["post_attention_norm.weight"], eps)
            x = x + a
            h = rms_norm(x, w["ffn_norm.weight"], eps)
            gate = product(h, w["ffn_gate.weight"])
            up = product(h, w["ffn_up.weight"])
            f = (gelu(gate) if arch == "gemma3" else silu(gate)) * up
            f = product(f, w["ffn_down.weight"])
            if "post_ffw_norm.weight" in w:
                f = rms_norm(f, w["post_ffw_norm.weight"], eps)
            states[index] = x + f
        print(f"  layer {layer + 1}/{layers}", end="\r", file=sys.stderr)
    output_norm = weights.get("output_norm.weight")
    output = weights.get("output.weight") if weights.has("output.weight") else embedding
    del embedding
    results = []
    for x in states:
        logits = product(rms_norm(x, output_norm, eps), output)
        positions = []
        for row in logits:
            top = np.argsort(-row, kind="stable")[:TOP]
            m = row.max()
            lse = m + np.log(np.exp(row - m).sum())
            positions.append({
                "ids": top.tolist(),
                "logits": [round(float(value), 5) for value in row[top]],
                "logSumExp": round(float(lse), 5),
            })
        results.append(positions)
    return results


def main():
    global ACTIVATION_BLOCK
    only = None
    arguments = sys.argv[1:]
    while arguments:
        flag = arguments.pop(0)
        if flag == "--round-activations":
            ACTIVATION_BLOCK = int(arguments.pop(0))
        elif flag == "--model":
            only = arguments.pop(0)
        else:
            raise SystemExit(f"unknown argument {flag}; takes [--model NAME] [--round-activations N]")
    golden = json.loads((FIXTURES / "golden-logits.json").read_text())
    out = {"generator": "scripts/make-reference-logits.py (numpy float64 over gguf-dequantized weights)", "top": TOP,
           "models": {}}
    for name, model in golden["models"].items():
        if only and name != only:
            continue
        started = time.time()
        weights = Weights(MODELS / model["file"])
        cases = [case["tokens"] for case in model["cases"]]
        positions = forward(weights, cases)
        out["models"][name] = {"file": model["file"], "cases": [
            {"tokens": tokens, "positions": rows} for tokens, rows in zip(cases, positions)]}
        print(f"{name}: {sum(map(len, cases))} positions in {time.time() - started:.0f} s", file=sys.stderr)
    # A diagnosis (one model, or rounded activations) is written beside the fixture, never over it.
    diagnosis = only or ACTIVATION_BLOCK
    path = FIXTURES / "reference-logits.json" if not diagnosis else pathlib.Path(
        f"/tmp/reference-logits-{only or 'all'}-{ACTIVATION_BLOCK}.json")
    path.write_text(json.dumps(out, separators=(",", ":")))
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
