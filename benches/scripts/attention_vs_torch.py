#!/usr/bin/env python3
"""fm-attention's fused causal attention against torch.nn.functional.scaled_dot_product_attention, in one run.

Shapes of BENCHMARKS.md: causal, batch 4, heads 8, head_dim 64, f32, seq 128/512/1024/2048, forward and
forward+backward. For each thread count the script first runs the Rust report binary
(`attention_report --json --skip-naive`, a rayon pool of that size) and then PyTorch
(`torch.set_num_threads(n)`, SDPA with `is_causal=True`, inputs with requires_grad for forward+backward),
alternately, and prints one table with the ratio fm / torch in GFLOP/s (same FLOP convention for both:
forward 4·B·H·T²·D/2, forward+backward 3.5× forward).

Run (after `cargo build --release -p fm-benches --bin attention_report`):
    python benches/scripts/attention_vs_torch.py [--threads 1,2] [--seqs 128,512,1024,2048] [--runs 5]
The binary is looked up in $CARGO_TARGET_DIR/release (default target/release).
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

B, H, D = 4, 8, 64


def forward_flops(seq):
    return 4.0 * B * H * seq * seq * D / 2.0


def time_torch(seq, runs, backward):
    gen = torch.Generator().manual_seed(seq)
    q, k, v = (torch.rand(B, H, seq, D, generator=gen) * 2 - 1 for _ in range(3))
    grad = torch.rand(B, H, seq, D, generator=gen) * 2 - 1
    if backward:
        q.requires_grad_(True)
        k.requires_grad_(True)
        v.requires_grad_(True)

    def once():
        if backward:
            q.grad = k.grad = v.grad = None
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            out.backward(grad)
        else:
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

    once()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def run_fm(binary, threads, seqs, runs):
    cmd = [binary, "--json", "--skip-naive", "--threads", str(threads),
           "--seqs", ",".join(map(str, seqs)), "--runs", str(runs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    results = {}
    for line in out.splitlines():
        if line.startswith("JSON "):
            r = json.loads(line[5:])
            if r["kind"] == "attention":
                results[(r["seq"], r["pass"])] = r
            else:
                results["gemm"] = r["gflops"]
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seqs", default="128,512,1024,2048")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "attention_report"))
    args = parser.parse_args()
    seqs = [int(s) for s in args.seqs.split(",")]
    print(f"torch {torch.__version__}; causal, B={B}, H={H}, D={D}, f32; median of {args.runs} runs")
    print("GFLOP/s convention: fwd 4·B·H·T²·D/2, fwd+bwd 3.5× fwd (both sides)")
    for threads in [int(t) for t in args.threads.split(",")]:
        fm = run_fm(args.binary, threads, seqs, args.runs)
        torch.set_num_threads(threads)
        print(f"\n== {threads} thread(s); fm GEMM 1024³ {fm['gemm']:.1f} GFLOP/s")
        print(f"{'seq':>5} {'pass':>8} {'fm ms':>9} {'torch ms':>9} {'fm GF/s':>8} {'torch GF/s':>10} {'fm/torch':>9}")
        for seq in seqs:
            for pass_name, backward in (("fwd", False), ("fwd+bwd", True)):
                t_med, _ = time_torch(seq, args.runs, backward)
                flops = forward_flops(seq) * (3.5 if backward else 1.0)
                r = fm[(seq, pass_name)]
                torch_gf = flops / t_med / 1e9
                print(f"{seq:>5} {pass_name:>8} {r['median_s'] * 1e3:>9.2f} {t_med * 1e3:>9.2f} "
                      f"{r['gflops']:>8.1f} {torch_gf:>10.1f} {t_med / r['median_s']:>8.2f}×")


if __name__ == "__main__":
    main()
