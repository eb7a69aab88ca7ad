#!/usr/bin/env python3
"""Reference logits for a synthetic model of another architecture, in the
format of ../shared/fixtures (cases of prompt tokens, greedy generated tokens
and the top-20 logits of every step), from a llama.cpp-family build beside
the repo (ik_llama.cpp runs qwen3 and llama; the Feb 2025 llama.cpp snapshot
predates qwen3).

  scripts/arch_reference.py LLAMA_DIR MODEL.gguf OUT.json [STEPS]

LLAMA_DIR is built (cmake -B build && cmake --build build --target llama);
scripts/llama-reference/dump_logits.cpp is compiled against it. Prompts are
tokenized by lumen-jit (the Qwen tokenizer, special tokens parsed, no BOS).
Greedy steps by the reference itself; then the whole sequence teacher-forced
in one batch gives every step's logits.
"""
import json
import os
import subprocess
import sys

PROMPTS = [
    ("fox", "The quick brown fox jumps over the lazy dog. In 1969"),
    ("code", "def fib(n):\n    return n if n < 2 else"),
]


def main():
    llama, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lumen = os.path.join(here, "build/tools/lumen-jit/lumen-jit")
    dump = os.path.join(os.path.dirname(out) or ".", "dump_logits")
    libs = [os.path.join(llama, "build/src"), os.path.join(llama, "build/ggml/src"), os.path.join(llama, "build/bin")]
    subprocess.run(["g++", "-O2", "-std=c++17", "-I" + os.path.join(llama, "include"),
                    "-I" + os.path.join(llama, "ggml/include"),
                    os.path.join(here, "scripts/llama-reference/dump_logits.cpp")] +
                   [f for d in libs for f in ("-L" + d, "-Wl,-rpath," + d)] +
                   ["-lllama", "-lggml", "-o", dump], check=True)

    def logits(ids):
        r = subprocess.run([dump, model, ",".join(map(str, ids))], check=True, capture_output=True, text=True)
        return json.loads(r.stdout)["positions"]

    cases = []
    for name, text in PROMPTS:
        r = subprocess.run([lumen, "tokenize", "-m", model, "-p", text], check=True, capture_output=True, text=True)
        prompt = [int(t) for t in r.stdout.split()]
        gen = []
        for _ in range(steps):
            gen.append(logits(prompt + gen)[-1]["argmax"])
        pos = logits(prompt + gen[:-1])
        cases.append({"name": name, "prompt": text, "prompt_tokens": prompt, "generated": gen,
                      "steps": [{"argmax": p["argmax"], "top": p["top"]} for p in pos[len(prompt) - 1:]]})
        assert all(s["argmax"] == g for s, g in zip(cases[-1]["steps"], gen))
    json.dump({"model": os.path.basename(model), "producer": "arch_reference.py with " + os.path.basename(llama),
               "semantics": "../shared/fixtures/README.md", "cases": cases}, open(out, "w"), indent=None)


if __name__ == "__main__":
    main()
