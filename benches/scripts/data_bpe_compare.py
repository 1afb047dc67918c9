#!/usr/bin/env python3
"""fm-data's byte-level BPE beside Hugging Face `tokenizers` and tiktoken, on the Rust docs corpus.

    python -m venv .venv && .venv/bin/pip install tokenizers tiktoken
    cargo build --release -p fm-benches --bin data_bpe_report
    .venv/bin/python benches/scripts/data_bpe_compare.py [--rounds 3] [--vocab 4096 32768]

One script, one machine, same text: the corpus is extracted once by `data_bpe_report dump-corpus`
and every implementation reads that file. For each vocabulary size and thread count (1, 2), each
round runs fm, then HF, then tiktoken, each in a fresh process (a rayon global pool cannot be
resized; HF gets RAYON_NUM_THREADS, tiktoken `num_threads`), so the three are interleaved and see
the same machine load. Figures are medians over rounds, ratios are medians of per-round ratios.

- Training: vocab V, one special token, min_frequency 0, HF with ByteLevel pre-tokenizer and
  initial_alphabet = ByteLevel.alphabet() (the settings under which both learn the same merges);
  the script checks that both tokenizer.json files are identical.
- Encoding: all documents as one batch, in a freshly loaded tokenizer (empty caches: "cold");
  fm also again with its word cache filled ("warm"). HF: `encode_batch` and `encode_batch_fast`
  (Python objects are built for each document, part of what a Python user pays). tiktoken: an
  Encoding built from fm's vocabulary (ranks = fm ids) with the GPT-2 pattern,
  `encode_ordinary_batch`. The script checks that all ids are identical.
- Decoding: each document's ids back to text (fm `decode`, HF `decode_batch`, tiktoken
  `decode_batch`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "target" / "release" / "data_bpe_report"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
SPECIAL = "<|endoftext|>"


def load_corpus(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_ids(path, batches):
    a = array("I")
    for ids in batches:
        a.extend(ids)
    with open(path, "wb") as f:
        a.tofile(f)


def hf_worker(args):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    docs = load_corpus(args.corpus)
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab,
        min_frequency=0,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    t = time.perf_counter()
    tok.train_from_iterator(docs, trainer)
    train_s = time.perf_counter() - t
    tok.save(args.save)
    out = {"impl": "hf", "train_s": train_s, "encode_cold_mbs": [], "encode_fast_mbs": [],
           "decode_mbs": []}
    ids = None
    for _ in range(args.reps):
        fresh = Tokenizer.from_file(args.save)
        t = time.perf_counter()
        encs = fresh.encode_batch(docs)
        out["encode_cold_mbs"].append(mb / (time.perf_counter() - t))
        ids = [e.ids for e in encs]
        fresh = Tokenizer.from_file(args.save)
        t = time.perf_counter()
        fresh.encode_batch_fast(docs)
        out["encode_fast_mbs"].append(mb / (time.perf_counter() - t))
        t = time.perf_counter()
        texts = fresh.decode_batch(ids, skip_special_tokens=False)
        out["decode_mbs"].append(mb / (time.perf_counter() - t))
        assert texts == docs, "HF decode(encode(doc)) != doc"
    write_ids(args.ids_out, ids)
    out["ids"] = sum(map(len, ids))
    print(json.dumps(out))


def byte_decoder():
    """GPT-2's byte <-> character map, reversed: character -> byte."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = {}
    n = 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


def tiktoken_worker(args):
    import tiktoken

    docs = load_corpus(args.corpus)
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    spec = json.loads(Path(args.tokenizer).read_text(encoding="utf-8"))
    dec = byte_decoder()
    specials = {t["content"]: t["id"] for t in spec["added_tokens"]}
    ranks = {
        bytes(dec[c] for c in token): i
        for token, i in spec["model"]["vocab"].items()
        if token not in specials
    }
    enc = tiktoken.Encoding(
        name="fm-rust-docs", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials
    )
    out = {"impl": "tiktoken", "encode_cold_mbs": [], "decode_mbs": []}
    ids = None
    for _ in range(args.reps):
        t = time.perf_counter()
        if args.threads == 1:
            ids = [enc.encode_ordinary(d) for d in docs]
        else:
            ids = enc.encode_ordinary_batch(docs, num_threads=args.threads)
        out["encode_cold_mbs"].append(mb / (time.perf_counter() - t))
        t = time.perf_counter()
        if args.threads == 1:
            texts = [enc.decode(i) for i in ids]
        else:
            texts = enc.decode_batch(ids, num_threads=args.threads)
        out["decode_mbs"].append(mb / (time.perf_counter() - t))
        assert texts == docs, "tiktoken decode(encode(doc)) != doc"
    write_ids(args.ids_out, ids)
    out["ids"] = sum(map(len, ids))
    print(json.dumps(out))


def run_json(cmd, env=None):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def best(xs):
    """A process's figure: the best of its repetitions (the first is not slower by design)."""
    return max(xs)


def compare(args):
    if not REPORT.exists():
        sys.exit(f"{REPORT} missing: cargo build --release -p fm-benches --bin data_bpe_report")
    tmp = Path(tempfile.mkdtemp(prefix="fm-bpe-"))
    corpus = tmp / "corpus.jsonl"
    info = run_json([REPORT, "dump-corpus", corpus])
    import tokenizers
    import tiktoken

    print(f"corpus: {info['documents']} documents, {info['bytes'] / 1e6:.2f} MB of text "
          f"from {info['root']}")
    print(f"peers: tokenizers {tokenizers.__version__} (Python), tiktoken {tiktoken.__version__} "
          f"(Python); {os.cpu_count()} CPUs; {args.rounds} interleaved rounds\n")
    me = [sys.executable, __file__]
    summary = []
    for vocab in args.vocab:
        for threads in args.threads:
            rows = {"fm": [], "hf": [], "tiktoken": []}
            for r in range(args.rounds):
                fm_json, hf_json = tmp / "fm.json", tmp / "hf.json"
                fm = run_json([REPORT, "run", "--corpus", corpus, "--threads", str(threads),
                               "--vocab", str(vocab), "--save", fm_json,
                               "--ids-out", tmp / "fm.ids", "--encode-reps", str(args.reps)])
                env = dict(os.environ, RAYON_NUM_THREADS=str(threads),
                           TOKENIZERS_PARALLELISM="true")
                hf = run_json(me + ["hf-worker", "--corpus", str(corpus), "--vocab", str(vocab),
                                    "--save", str(hf_json), "--ids-out", str(tmp / "hf.ids"),
                                    "--reps", str(args.reps)], env=env)
                tt = run_json(me + ["tiktoken-worker", "--corpus", str(corpus), "--tokenizer",
                                    str(fm_json), "--threads", str(threads), "--ids-out",
                                    str(tmp / "tt.ids"), "--reps", str(args.reps)])
                if r == 0:
                    same_file = fm_json.read_bytes() == hf_json.read_bytes()
                    fm_ids = (tmp / "fm.ids").read_bytes()
                    same_hf = fm_ids == (tmp / "hf.ids").read_bytes()
                    same_tt = fm_ids == (tmp / "tt.ids").read_bytes()
                    print(f"vocab {vocab}, {threads} thread(s): tokenizer.json identical to HF's: "
                          f"{same_file}; ids identical to HF: {same_hf}, to tiktoken: {same_tt} "
                          f"({fm['ids']} ids, {fm['merges']} merges)")
                rows["fm"].append(fm)
                rows["hf"].append(hf)
                rows["tiktoken"].append(tt)
            summary.append((vocab, threads, rows))

    def med(xs):
        return statistics.median(xs)

    print("\nmedian over rounds (each round: best of the process's repetitions); "
          "ratio = median of per-round ratios")
    hdr = (f"{'vocab':>6} {'thr':>3} | {'train s fm':>10} {'HF':>6} {'HF/fm':>6} | "
           f"{'enc MB/s fm cold':>16} {'warm':>6} {'HF':>6} {'HF fast':>7} {'tiktoken':>8} "
           f"{'fm/HF':>6} {'fm/HFf':>6} {'fm/tt':>6} | {'dec MB/s fm':>11} {'HF':>6} {'tt':>6}")
    print(hdr)
    print("-" * len(hdr))
    for vocab, threads, rows in summary:
        fm, hf, tt = rows["fm"], rows["hf"], rows["tiktoken"]
        fm_enc = [best(x["encode_cold_mbs"]) for x in fm]
        hf_enc = [best(x["encode_cold_mbs"]) for x in hf]
        hf_fast = [best(x["encode_fast_mbs"]) for x in hf]
        tt_enc = [best(x["encode_cold_mbs"]) for x in tt]
        ratio = lambda a, b: med([x / y for x, y in zip(a, b)])
        print(
            f"{vocab:>6} {threads:>3} | {med([x['train_s'] for x in fm]):>10.3f} "
            f"{med([x['train_s'] for x in hf]):>6.2f} "
            f"{ratio([x['train_s'] for x in hf], [x['train_s'] for x in fm]):>6.2f} | "
            f"{med(fm_enc):>16.1f} {med([best(x['encode_warm_mbs']) for x in fm]):>6.1f} "
            f"{med(hf_enc):>6.1f} {med(hf_fast):>7.1f} {med(tt_enc):>8.1f} "
            f"{ratio(fm_enc, hf_enc):>6.2f} {ratio(fm_enc, hf_fast):>6.2f} "
            f"{ratio(fm_enc, tt_enc):>6.2f} | "
            f"{med([best(x['decode_mbs']) for x in fm]):>11.1f} "
            f"{med([best(x['decode_mbs']) for x in hf]):>6.1f} "
            f"{med([best(x['decode_mbs']) for x in tt]):>6.1f}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            [{"vocab": v, "threads": t, "rows": r} for v, t, r in summary], indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode")
    c = sub.add_parser("compare")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--reps", type=int, default=2, help="encode repetitions per process")
    c.add_argument("--vocab", type=int, nargs="+", default=[4096])
    c.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    c.add_argument("--json-out")
    h = sub.add_parser("hf-worker")
    for a in ("--corpus", "--save", "--ids-out"):
        h.add_argument(a, required=True)
    h.add_argument("--vocab", type=int, required=True)
    h.add_argument("--reps", type=int, default=2)
    t = sub.add_parser("tiktoken-worker")
    for a in ("--corpus", "--tokenizer", "--ids-out"):
        t.add_argument(a, required=True)
    t.add_argument("--threads", type=int, required=True)
    t.add_argument("--reps", type=int, default=2)
    argv = sys.argv[1:] or ["compare"]
    if argv[0].startswith("-"):
        argv = ["compare"] + argv
    args = p.parse_args(argv)
    {"compare": compare, "hf-worker": hf_worker, "tiktoken-worker": tiktoken_worker}[args.mode](args)


if __name__ == "__main__":
    main()
