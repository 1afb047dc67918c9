#!/usr/bin/env python3
"""fm-nn's KV-cache generation beside PyTorch's eager decoding loop, in one script.

Configuration a of BENCHMARKS.md (vocab 4096, context 256, d_model 256, 4 layers, 4 heads, MLP 4x
GELU erf, pre-LayerNorm, learned positions, tied embeddings), batch 1, a 1-token prompt, greedy,
255 new tokens (the context of 256 holds the prompt too). PyTorch: plain torch.nn modules with
F.scaled_dot_product_attention and a per-layer KV cache concatenated each step, under
torch.inference_mode(), torch.set_num_threads(t). fm: the fm_nn_generate_report binary (release,
--json), a rayon pool of t threads. Each round runs fm and then PyTorch for each thread count.

Usage (from the repository root):
    cargo build --release -p fm-benches --bin fm_nn_generate_report
    /work/venv/bin/python benches/scripts/generate_vs_torch.py [--rounds 1] [--reps 3] [--bin PATH]
"""

import argparse
import json
import math
import statistics
import subprocess
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
VOCAB, CONTEXT, D, LAYERS, HEADS = 4096, 256, 256, 4, 4
NEW_TOKENS = CONTEXT - 1


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc_in, self.fc_out = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x, cache):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(D, dim=-1)
        q, k, v = (z.view(b, t, HEADS, D // HEADS).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and t > 1)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, D))
        x = x + self.fc_out(F.gelu(self.fc_in(self.norm2(x))))
        return x, (k, v)


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, D), nn.Embedding(CONTEXT, D)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm_f = nn.LayerNorm(D)

    def forward(self, ids, start, caches):
        x = self.tok(ids) + self.pos(torch.arange(start, start + ids.shape[1]))
        new = []
        for block, cache in zip(self.blocks, caches):
            x, c = block(x, cache)
            new.append(c)
        return self.norm_f(x) @ self.tok.weight.T, new


def torch_generate(model):
    ids = torch.zeros(1, 1, dtype=torch.long)
    caches, out, start = [None] * LAYERS, [], 0
    for _ in range(NEW_TOKENS):
        logits, caches = model(ids, start, caches)
        start += ids.shape[1]
        ids = logits[:, -1].argmax(-1, keepdim=True)
        out.append(ids.item())
    return out


def run_torch(model, threads, reps):
    torch.set_num_threads(threads)
    with torch.inference_mode():
        torch_generate(model)  # warm-up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch_generate(model)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "fm_nn_generate_report"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Gpt().eval()
    for p in model.parameters():
        nn.init.normal_(p, 0.0, 0.02)
    print(f"generation, config a, batch 1, 1-token prompt, {NEW_TOKENS} new tokens, greedy, KV cache")
    print(f"{'round':>5} {'thr':>3} {'fm tok/s':>9} {'torch tok/s':>11} {'fm/torch':>8}")
    for r in range(args.rounds):
        for t in [int(x) for x in args.threads.split(",")]:
            line = subprocess.run([args.bin, "--threads", str(t), "--reps", str(args.reps), "--json"],
                                  check=True, capture_output=True, text=True).stdout.strip()
            fm = json.loads(line)
            median, _ = run_torch(model, t, args.reps)
            torch_tps = NEW_TOKENS / median
            print(f"{r:>5} {t:>3} {fm['tokens_per_s']:>9.0f} {torch_tps:>11.0f} {fm['tokens_per_s'] / torch_tps:>8.2f}")


if __name__ == "__main__":
    main()
