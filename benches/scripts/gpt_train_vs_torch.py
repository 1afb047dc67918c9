"""PyTorch's side of the GPT training-throughput comparison (BENCHMARKS.md, configurations a and b).

Builds the configuration in plain torch.nn (nn.Embedding, learned positions, pre-LayerNorm blocks,
F.scaled_dot_product_attention with is_causal, MLP 4x with GELU (erf form), tied input/output
embeddings), trains with cross-entropy and torch.optim.AdamW(fused=True, lr 3e-4, weight decay 0.01),
and prints one JSON line per (configuration, threads) with tokens/s for forward + backward + optimizer
step (median and best of the timed steps, after warm-up).

With --rust BIN it also runs fm's report binary for the same configuration and thread count right
after each PyTorch measurement (interleaved: torch, fm, torch, fm, ...) and prints the ratio, so the
comparison comes from one run:

    cargo build --release -p fm-benches --bin fm_train_report
    python benches/scripts/gpt_train_vs_torch.py --rust target/release/fm_train_report
"""

import argparse
import json
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "a": dict(vocab=4096, context=256, d_model=256, n_layers=4, n_heads=4, batch=8),
    "b": dict(vocab=4096, context=512, d_model=512, n_layers=8, n_heads=8, batch=4),
}


class Block(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.out = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        heads = lambda z: z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab, context, d_model, n_layers, n_heads, **_):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.tok.weight.T  # tied output embedding


def measure_torch(name, threads, steps, warmup, flush_denormal):
    torch.set_num_threads(threads)
    # Without flushing, PyTorch's steps on this model slow down up to 6x after a few steps (denormal
    # arithmetic; seen on the Xeon we measure on): flushing is its best configuration.
    torch.set_flush_denormal(flush_denormal)
    torch.manual_seed(0)
    cfg = CONFIGS[name]
    model = Gpt(**cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=True)
    ids = torch.randint(0, cfg["vocab"], (cfg["batch"], cfg["context"] + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab"]), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    tokens = cfg["batch"] * cfg["context"]
    return {
        "impl": "pytorch",
        "config": name,
        "threads": threads,
        "tokens_per_s_median": tokens / statistics.median(times),
        "tokens_per_s_best": tokens / min(times),
        "steps": steps,
        "flush_denormal": flush_denormal,
        "torch": torch.__version__,
    }


def measure_rust(binary, name, threads, steps, warmup):
    out = subprocess.run(
        [binary, "--config", name, "--threads", str(threads), "--steps", str(steps),
         "--warmup", str(warmup), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="a,b")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rust", help="fm report binary to run interleaved with PyTorch")
    parser.add_argument("--no-flush-denormal", action="store_true",
                        help="leave PyTorch's denormal handling at its default (slower after a few steps)")
    args = parser.parse_args()
    for name in args.configs.split(","):
        for threads in map(int, args.threads.split(",")):
            torch_row = measure_torch(name, threads, args.steps, args.warmup,
                                      not args.no_flush_denormal)
            print(json.dumps(torch_row), flush=True)
            if args.rust:
                fm_row = measure_rust(args.rust, name, threads, args.steps, args.warmup)
                fm_row["ratio_vs_pytorch_median"] = (
                    fm_row["tokens_per_s_median"] / torch_row["tokens_per_s_median"]
                )
                print(json.dumps(fm_row), flush=True)


if __name__ == "__main__":
    main()
