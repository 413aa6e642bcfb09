"""What the research team's document search costs: building the BM25 index of a folder
(when the graph is built) and answering a query (each ``search_documents`` call),
in-process (``dockyard.agents.research.corpus``).

    .venv/bin/python bench/research_bm25_bench.py [--queries 2000] [--files 70]

Two corpora: the example's ``examples/research/docs`` and a synthetic folder of
``--files`` Markdown files of 7 paragraphs of 60 words drawn from the example's words.
Prints the passages, the time to read and index them, and the mean and p99 per query.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from dockyard.agents.research import Corpus

DOCS = Path(__file__).resolve().parent.parent / "examples" / "research" / "docs"
QUERIES = (
    "How do I cap cost per run?",
    "recursion limit step",
    "API 비용 예산 알림은 어떻게 설정하나요?",
)


def measure(name: str, folder: Path, queries: int) -> None:
    t = time.perf_counter()
    corpus = Corpus(folder)
    index_ms = (time.perf_counter() - t) * 1000
    times = []
    for i in range(queries):
        t = time.perf_counter()
        corpus.search(QUERIES[i % len(QUERIES)], 4)
        times.append((time.perf_counter() - t) * 1e6)
    p99 = statistics.quantiles(times, n=100)[98]
    print(
        f"{name}: {len(corpus.documents)} files, {len(corpus.passages)} passages; "
        f"index {index_ms:.1f} ms; query mean {statistics.mean(times):.0f} µs, p99 {p99:.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--files", type=int, default=70)
    args = parser.parse_args()
    measure("example", DOCS, args.queries)
    words = " ".join(p.text for p in Corpus(DOCS).passages).split()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        for f in range(args.files):
            paragraphs = [" ".join(rng.sample(words, 60)) for _ in range(7)]
            Path(tmp, f"doc{f}.md").write_text(f"# Doc {f}\n\n" + "\n\n".join(paragraphs))
        measure("synthetic", Path(tmp), args.queries)


if __name__ == "__main__":
    main()
