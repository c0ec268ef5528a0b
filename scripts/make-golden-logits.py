#!/usr/bin/env python3
"""Golden logits from an independent implementation: llama.cpp through llama-cpp-python (its own CPU kernels and
graph), on fixed prompts for each pinned model.

llama.cpp is the reference because it is the implementation GGUF files are written for, and it runs here from PyPI;
a numpy forward pass over dequantized weights would check the math but not the GGUF conventions (tensor layouts,
RoPE styles, Gemma's norm offsets) that llama.cpp defines.

For each prompt and position it stores the reference's top 64 logits (ids and values) and its log-sum-exp, enough to
compare the argmax, the logits of the likely tokens, and a KL divergence on the top-64 tokens plus one bucket for
the rest. For SmolLM2 and Gemma 3 (the small models: CI time), a fourth, long case (Spec-Bench question 241, a news
article to summarize: about 700 tokens, past Gemma 3's 512-token sliding window) keeps the top 16 to stay small. Logits are rounded to 1e-5.
Output: Tests/SpeculaInferenceTests/Fixtures/golden-logits.json.

Usage: pip install llama-cpp-python==0.3.36 numpy && python3 scripts/make-golden-logits.py
"""
import json
import os
import pathlib

import numpy as np
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/SpeculaInferenceTests/Fixtures/golden-logits.json"
MODELS = pathlib.Path(os.environ.get("SPECULA_MODELS", pathlib.Path.home() / ".cache/specula/models"))
FILES = {
    "smollm2": "smollm2-135m-instruct-q4_1.gguf",
    "draft": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "target": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
PROMPTS = [
    "The capital of France is Paris. The capital of Germany is",
    "def quicksort(items):\n    if len(items) <= 1:\n        return items\n    pivot =",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]
TOP = 64
LONG_TOP = 16
LONG_QUESTION = 241
LONG_MODELS = ("smollm2", "gemma3")


def long_prompt():
    with open(MODELS / "spec-bench.jsonl") as lines:
        for line in lines:
            row = json.loads(line)
            if row["question_id"] == LONG_QUESTION:
                return row["turns"][0]
    raise SystemExit(f"Spec-Bench question {LONG_QUESTION} not found in {MODELS / 'spec-bench.jsonl'}")


def main():
    result = {"generator": "llama-cpp-python 0.3.36 (llama.cpp CPU)", "top": TOP, "models": {}}
    for name, file in FILES.items():
        llm = Llama(model_path=str(MODELS / file), n_ctx=1024, n_batch=1024, n_threads=2, logits_all=True,
                    verbose=False)
        cases = []
        long = [(long_prompt(), LONG_TOP)] if name in LONG_MODELS else []
        for prompt, keep in [(text, TOP) for text in PROMPTS] + long:
            tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
            llm.reset()
            llm.eval(tokens)
            scores = np.array(llm.scores[: len(tokens)], dtype=np.float64)
            positions = []
            for row in scores:
                top = np.argsort(-row, kind="stable")[:keep]
                m = row.max()
                lse = m + np.log(np.exp(row - m).sum())
                positions.append({"ids": top.tolist(), "logits": [round(float(v), 5) for v in row[top]],
                                  "logSumExp": round(float(lse), 5)})
            cases.append({"tokens": tokens, "positions": positions})
        result["models"][name] = {"file": file, "cases": cases}
        print(f"{name}: {sum(len(c['tokens']) for c in cases)} positions")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
