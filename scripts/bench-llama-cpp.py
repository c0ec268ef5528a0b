#!/usr/bin/env python3
"""Decode and prefill speed of llama.cpp (through llama-cpp-python, built from its sdist on this machine with
CMAKE_ARGS="-DGGML_NATIVE=ON") on a pinned model, for a side-by-side comparison with `specula bench model`.
Never committed as a dependency: a measurement tool only.

Usage: python3 scripts/bench-llama-cpp.py MODEL.gguf [--threads 2] [--tokens 64] [--prefill 512] [--runs 3]
"""
import argparse
import statistics
import time

from llama_cpp import Llama

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--tokens", type=int, default=64)
parser.add_argument("--prefill", type=int, default=512)
parser.add_argument("--runs", type=int, default=3)
args = parser.parse_args()

llm = Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads, n_batch=512, verbose=False)
vocab = llm.n_vocab()
decode, prefill = [], []
for run in range(args.runs):
    tokens = [((i + run) * 7919 + 13) % vocab for i in range(args.prefill)]
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    prefill.append(args.prefill / (time.perf_counter() - start))
    llm.reset()
    llm.eval(tokens[:256])
    start = time.perf_counter()
    for i in range(args.tokens):
        llm.eval([(i * 31 + 7) % vocab])
    decode.append(args.tokens / (time.perf_counter() - start))
print(f"llama.cpp {args.model}: decode at context ~256: {statistics.median(decode):.2f} tokens/s, "
      f"prefill {args.prefill}: {statistics.median(prefill):.2f} tokens/s (median of {args.runs}, {args.threads} threads)")
