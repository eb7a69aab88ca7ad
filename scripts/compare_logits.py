#!/usr/bin/env python3
"""Compares lumen-jit eval's JSON with a reference's by the rule of
../shared/fixtures/README.md: per position, over the reference's top-20 ids,
rms difference <= 0.5 and largest difference <= 1.5; argmax equal wherever the
reference margin is >= 1.0; argmax agreement >= 90 % overall.

  compare_logits.py REFERENCE.json LUMEN.json    (LUMEN from eval --top 100)

Prints one line of measures and exits 1 if the rule fails.
"""
import json
import math
import sys

ref = json.load(open(sys.argv[1]))["positions"]
ours = {p["pos"]: p for p in json.load(open(sys.argv[2]))["positions"]}
worst_rms = worst_max = 0.0
agree = missing = clear_misses = 0
for p in ref:
    q = ours[p["pos"]]
    logits = {i: v for i, v in q["top"]}
    diffs = []
    for i, v in p["top"][:20]:
        if i not in logits:
            missing += 1
            continue
        diffs.append(logits[i] - v)
    rms = math.sqrt(sum(d * d for d in diffs) / max(len(diffs), 1))
    worst_rms = max(worst_rms, rms)
    worst_max = max([worst_max] + [abs(d) for d in diffs])
    agree += p["argmax"] == q["argmax"]
    if p["top"][0][1] - p["top"][1][1] >= 1.0 and p["argmax"] != q["argmax"]:
        clear_misses += 1
share = agree / len(ref)
ok = worst_rms <= 0.5 and worst_max <= 1.5 and clear_misses == 0 and share >= 0.9 and missing == 0
print(f"rms <= {worst_rms:.3f}, max <= {worst_max:.3f}, argmax {agree}/{len(ref)} ({100 * share:.0f} %), "
      f"clear-margin misses {clear_misses}, reference ids outside our top 100: {missing}: {'ok' if ok else 'FAILS'}")
sys.exit(0 if ok else 1)
