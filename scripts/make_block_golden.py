#!/usr/bin/env python3
"""Writes unittests/GGUF/data/block-formats.golden: for each block format of
llama.cpp's quantization presets, three blocks of seeded random bytes (with
sane fp16 scales) and their values as llama.cpp's own gguf-py dequantizes
them (an implementation independent of ggml's C and of Lumen's).

  /usr/bin/python3 scripts/make_block_golden.py ../llama.cpp/gguf-py > unittests/GGUF/data/block-formats.golden

One line per format: NAME RAW_HEX VALUE_HEX... (little-endian f32s).
gguf-py imports sentencepiece, which dequantizing does not use; a stand-in
is put on the path when it is missing.
"""
import importlib.util
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, sys.argv[1])
if importlib.util.find_spec("sentencepiece") is None:
    stub = tempfile.mkdtemp()
    with open(os.path.join(stub, "sentencepiece.py"), "w") as f:
        f.write("class SentencePieceProcessor: pass\n")
    sys.path.insert(0, stub)
from gguf import GGMLQuantizationType, quants  # noqa: E402

# Bytes per block, and where its fp16 scale fields are (ggml-common.h).
FORMATS = {"Q4_0": (18, [0]), "Q4_1": (20, [0, 2]), "Q5_0": (22, [0]), "Q5_1": (24, [0, 2]),
           "IQ4_NL": (18, [0]), "Q2_K": (84, [80, 82]), "Q3_K": (110, [108]),
           "Q4_K": (144, [0, 2]), "Q5_K": (176, [0, 2]), "Q6_K": (210, [208])}
MASK = 2**64 - 1


def splitmix64(state):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


for name, (size, halves) in FORMATS.items():
    blocks = 3
    rng = splitmix64(len(name) * 1000 + size)
    raw = bytearray(next(rng) & 0xFF for _ in range(size * blocks))
    for b in range(blocks):
        for k, at in enumerate(halves):
            scale = np.float16(0.01 * (b + 1) * (1 + k) * (-1 if (b == 1 and k == 0) else 1))
            raw[b * size + at:b * size + at + 2] = scale.tobytes()
    values = quants.dequantize(np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1),
                               getattr(GGMLQuantizationType, name)).reshape(-1).astype(np.float32)
    print(name, bytes(raw).hex(), " ".join(v.tobytes().hex() for v in values))
