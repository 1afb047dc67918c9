#!/usr/bin/env python3
"""fm-optim's AdamW and fm-loss's fused cross-entropy beside PyTorch, interleaved in one script.

Each round runs the Rust report binaries (release build, ``--json``) and then the same workload in
PyTorch in this process, for 1 and 2 threads (``torch.set_num_threads`` / a rayon pool of that
size), so fm and PyTorch see the same machine state within a few seconds of each other. The STREAM
triad comes from the Rust binary's run just before.

* AdamW: one flat float32 parameter of 10M and 50M values, ``torch.optim.AdamW(fused=True)``
  (lr 3e-4, weight decay 0.01) against fm-optim's AdamW (same hyper-parameters; "checked" = default
  NaN check, "unchecked" = ``NonFinitePolicy::Unchecked``). GB/s at 28 bytes per parameter.
* Cross-entropy: float32 logits [2048, V], V = 4096 and 32768, class-index targets, mean
  reduction, forward + backward: ``F.cross_entropy(logits, targets).backward()`` (PyTorch allocates
  the gradient each time, as in training) against ``fm_loss::fused_cross_entropy`` (gradient into a
  reused buffer) and its in-place variant. GB/s at 8 bytes per logit.

Usage (from the repository root, after ``cargo build --release -p fm-benches --bins``)::

    .venv/bin/python benches/scripts/loss_optim_vs_torch.py [--rounds 2] [--reps 5]

Needs ``pip install torch numpy``.
"""

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release"


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], times[0]


def rust(binary, *args):
    out = subprocess.run([str(BIN / binary), "--json", *args], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def torch_adamw(n, reps):
    p = torch.full((n,), 0.1, dtype=torch.float32, requires_grad=True)
    p.grad = ((torch.arange(n) % 97).float() - 48.0) * 1e-3
    opt = torch.optim.AdamW([p], lr=3e-4, weight_decay=0.01, fused=True)
    median, best = timed(opt.step, 2, reps)
    del opt, p
    return {"bench": "adamw", "impl": "torch", "variant": "fused", "n": n, "median_s": median, "min_s": best,
            "gbps": 28 * n / median / 1e9}


def torch_cross_entropy(rows, vocab, reps):
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(vocab).unsqueeze(0)
    logits = (((i * 31 + j * 17) % 1009).float() * 0.01 - 5.0).requires_grad_(True)
    targets = (torch.arange(rows) * 7919) % vocab

    def step():
        logits.grad = None
        F.cross_entropy(logits, targets).backward()

    median, best = timed(step, 1, reps)
    del logits
    return {"bench": "cross_entropy", "impl": "torch", "variant": "eager", "rows": rows, "vocab": vocab,
            "median_s": median, "min_s": best, "gbps": 8 * rows * vocab / median / 1e9}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; rounds {args.rounds}, reps {args.reps}")
    results = []
    for rnd in range(args.rounds):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for r in rust("fm_optim_report", "--sizes", "10000000,50000000", "--threads", str(threads),
                          "--reps", str(args.reps)):
                results.append(r)
            for n in (10_000_000, 50_000_000):
                r = torch_adamw(n, args.reps)
                r["threads"] = threads
                results.append(r)
            fused_only = [] if rnd == 0 else ["--fused-only"]
            for r in rust("fm_loss_report", "--threads", str(threads), "--reps", str(args.reps), *fused_only):
                results.append(r)
            for vocab in (4096, 32768):
                r = torch_cross_entropy(2048, vocab, args.reps)
                r["threads"] = threads
                results.append(r)
            print(f"round {rnd + 1}, {threads} thread(s) done", flush=True)

    def key(r):
        size = r.get("n") or f"2048x{r.get('vocab')}"
        return (r["bench"], size, r["threads"], r["impl"], r["variant"])

    groups = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    summary = {}
    for k, rs in groups.items():
        summary[k] = {
            "median_s": statistics.median(x["median_s"] for x in rs),
            "min_s": min(x["min_s"] for x in rs),
            "gbps": statistics.median(x["gbps"] for x in rs),
            "triad": statistics.median(x["triad_gbps"] for x in rs) if "triad_gbps" in rs[0] else None,
        }

    print("\n| workload | threads | implementation | median ms | min ms | GB/s | % of triad | fm / torch |")
    print("|---|---|---|---|---|---|---|---|")
    for k in sorted(summary):
        bench, size, threads, impl, variant = k
        s = summary[k]
        torch_key = (bench, size, threads, "torch", "fused" if bench == "adamw" else "eager")
        ratio = ""
        if impl == "fm" and torch_key in summary:
            ratio = f"{summary[torch_key]['median_s'] / s['median_s']:.2f}x"
        triad = s["triad"]
        if triad is None:
            fm_any = next((v for kk, v in summary.items() if kk[:3] == k[:3] and v["triad"]), None)
            triad = fm_any["triad"] if fm_any else None
        pct = f"{100 * s['gbps'] / triad:.0f}%" if triad else ""
        print(f"| {bench} {size} | {threads} | {impl} {variant} | {1e3 * s['median_s']:.2f} | "
              f"{1e3 * s['min_s']:.2f} | {s['gbps']:.1f} | {pct} | {ratio} |")
    for threads in (1, 2):
        values = [r["triad_gbps"] for r in results if "triad_gbps" in r and r["threads"] == threads]
        print(f"\ntriad, {threads} thread(s): median {statistics.median(values):.1f} GB/s, "
              f"range {min(values):.1f}-{max(values):.1f} over {len(values)} measurements")


if __name__ == "__main__":
    main()
