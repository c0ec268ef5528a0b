#!/usr/bin/env python3
"""Reference dequantization fixtures from an independent implementation: the `gguf` package's numpy dequantizers.

For every tensor type Specula reads, random blocks (fixed seed; the f16 scale fields set to finite values) are
dequantized by gguf.quants.dequantize, and the raw bytes and the resulting float32 bit patterns are written to
Tests/SpeculaKernelsTests/Fixtures/dequantize.json. The Swift tests dequantize the same bytes and compare.

Usage: pip install gguf==0.19.0 numpy && python3 scripts/make-quant-fixtures.py
"""
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 7
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/SpeculaKernelsTests/Fixtures/dequantize.json"

# (name, type, elements per block, bytes per block, byte offsets of f16 scale fields)
TYPES = [
    ("F32", T.F32, 1, 4, []),
    ("F16", T.F16, 1, 2, [0]),
    ("BF16", T.BF16, 1, 2, []),
    ("Q4_0", T.Q4_0, 32, 18, [0]),
    ("Q4_1", T.Q4_1, 32, 20, [0, 2]),
    ("Q5_0", T.Q5_0, 32, 22, [0]),
    ("Q5_1", T.Q5_1, 32, 24, [0, 2]),
    ("Q8_0", T.Q8_0, 32, 34, [0]),
    ("Q4_K", T.Q4_K, 256, 144, [0, 2]),
    ("Q5_K", T.Q5_K, 256, 176, [0, 2]),
    ("Q6_K", T.Q6_K, 256, 210, [208]),
]


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for name, qtype, block, nbytes, half_offsets in TYPES:
        blocks = 512 if block == 1 else 6
        raw = rng.integers(0, 256, size=(blocks, nbytes), dtype=np.uint8)
        if name == "F32":
            raw = rng.normal(0, 3, size=blocks).astype(np.float32).view(np.uint8).reshape(blocks, 4)
        if name == "BF16":
            values = rng.normal(0, 3, size=blocks).astype(np.float32).view(np.uint32) >> 16
            raw = values.astype(np.uint16).view(np.uint8).reshape(blocks, 2)
        for offset in half_offsets:
            halves = rng.normal(0, 0.05, size=blocks).astype(np.float16)
            if name == "F16":
                halves = rng.normal(0, 2, size=blocks).astype(np.float16)
                halves[:4] = np.array([0.0, -0.0, 6e-8, -3.0e-5], dtype=np.float16)  # zero and subnormals
            raw[:, offset:offset + 2] = halves.view(np.uint8).reshape(blocks, 2)
        flat = raw.reshape(-1)
        values = quants.dequantize(flat, qtype).astype(np.float32).reshape(-1)
        assert values.size == blocks * block
        cases.append({"type": name, "elements": int(values.size), "bytes": flat.tobytes().hex(),
                      "values": [f"{v:08x}" for v in values.view(np.uint32).tolist()]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"generator": "gguf.quants.dequantize (gguf 0.19.0)", "seed": SEED, "cases": cases}))
    print(f"wrote {len(cases)} types to {OUT}")


if __name__ == "__main__":
    main()
