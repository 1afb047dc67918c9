"""MinHash dedup end to end: fm-data beside rensa on the same texts, in one run.

Runs the Rust report (benches/src/bin/data_corpus_report.rs), which cleans the Rust docs
corpus, dumps the texts MinHash runs on to a JSON Lines file and times fm-data's MinHash dedup
(shingling, 128 permutations, LSH, clusters) at 1 and 2 threads. Then runs rensa (Python
package, Rust core) on the same texts: the same word 5-gram shingles (built in Python, as a rensa
user does), 128 permutations with rensa's bulk digest-matrix API, LSH with 32 bands (rensa needs
the band count to divide 128; fm-data uses 25 bands of 5 rows), duplicate flags. Prints both
throughputs and the ratio.

    /work/venv/bin/python benches/scripts/minhash_vs_rensa.py [--root DIR] [--bin PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import rensa

NUM_PERM = 128
SHINGLE_WORDS = 5


def shingles(text):
    words = text.split()
    if len(words) < SHINGLE_WORDS:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)]


def rensa_dedup(texts):
    token_sets = [shingles(t) for t in texts]
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(token_sets, NUM_PERM, 42)
    lsh = rensa.RMinHashLSH(0.8, NUM_PERM, 32)
    flags = lsh.insert_matrix_and_query_duplicate_flags(matrix)
    return sum(1 for f in flags if f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=None, help="corpus directory (default: the toolchain's docs)")
    ap.add_argument(
        "--bin",
        default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "data_corpus_report"),
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "texts.jsonl")
        cmd = [args.bin, "--dump", dump]
        if args.root:
            cmd += ["--root", args.root]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print(out, end="")
        line = next(l for l in out.splitlines() if l.startswith("MINHASH_JSON "))
        fm = json.loads(line[len("MINHASH_JSON ") :])
        with open(dump) as f:
            texts = [json.loads(l)["text"] for l in f]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        flagged = rensa_dedup(texts)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    for text in texts:
        shingles(text)
    shingle_s = time.perf_counter() - t
    print(f"rensa RMinHash bulk (best of 2), {len(texts)} texts, {mb:.1f} MB:")
    print(f"  end to end {best:.3} s  {len(texts) / best:.0f} docs/s  {mb / best:.1f} MB/s "
          f"(of which Python shingling {shingle_s:.3} s); {flagged} documents flagged as duplicates")
    fm1 = fm["megabytes"] / fm["seconds_1_thread"]
    fm2 = fm["megabytes"] / fm["seconds_2_threads"]
    print(f"fm-data: {fm1:.1f} MB/s (1 thread), {fm2:.1f} MB/s (2 threads)")
    print(f"ratio fm-data / rensa end to end: {fm1 / (mb / best):.2f}x (1 thread), {fm2 / (mb / best):.2f}x (2 threads)")


if __name__ == "__main__":
    sys.exit(main())
