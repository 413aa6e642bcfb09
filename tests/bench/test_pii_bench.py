"""The PII corpus is what its generator builds, and the benchmark runs on a sample of it
(untimed: only that it scores, and what dockyard's engine scores there)."""

from __future__ import annotations

import json

from tests.bench.loader import load_bench

corpus = load_bench("pii_corpus")
bench = load_bench("pii_bench")


def test_corpus_is_reproducible() -> None:
    built = corpus.build()
    stored = [json.loads(line) for line in corpus.OUT.read_text(encoding="utf-8").splitlines()]
    assert stored == built
    assert len(built) >= 300
    assert {t["lang"] for t in built} == {"en", "ko"}
    assert {t["kind"] for t in built} == {"pii", "near_miss", "hard", "clean"}
    entities = {s["entity"] for t in built for s in t["spans"]}
    assert entities == set(bench.ENTITIES)
    for item in built:  # every span is inside its text
        for s in item["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(item["text"])


def test_benchmark_runs_on_a_sample(capsys: object) -> None:
    (result,) = bench.main(["--sample", "60", "--repeat", "1", "--markdown"])
    assert result.engine == "dockyard"
    total = result.total
    assert total.tp + total.fn > 0
    assert total.recall >= 0.95 and total.precision >= 0.95
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "| dockyard | all |" in out and "mean µs / text" in out


def test_scoring() -> None:
    texts = [
        {
            "id": 0,
            "kind": "pii",
            "lang": "en",
            "text": "a@b.co 1",
            "spans": [{"start": 0, "end": 6, "entity": "email"}],
        },
        {"id": 1, "kind": "near_miss", "lang": "en", "text": "x 1.2.3.4", "spans": []},
    ]

    def detect(text: str) -> list[tuple[int, int, str]]:
        return [(0, 4, "email"), (0, 6, "email")] if text.startswith("a@") else [(2, 9, "ip")]

    r = bench.evaluate("fake", detect, texts, repeat=1)
    assert (r.per_entity["email"].tp, r.per_entity["email"].fp) == (1, 1)  # one span, hit once
    assert (r.per_entity["ip"].fp, r.near_miss_fp) == (1, 1)
    assert r.per_entity["phone"].fn == 0 and r.total.fn == 0
