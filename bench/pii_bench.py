"""PII engines on the corpus: precision and recall per entity, and time per text.

    .venv/bin/python bench/pii_bench.py --markdown            # dockyard's engine only
    .venv/bin/pip install -r bench/requirements-pii.txt       # Presidio, for the comparison
    .venv/bin/python bench/pii_bench.py --engines dockyard,presidio,presidio+kr --markdown

Engines:
- ``dockyard``: ``dockyard.policies.pii`` (regular expressions + validators), every entity.
- ``presidio``: Microsoft Presidio's ``AnalyzerEngine`` with its predefined pattern
  recognizers (email, phone via libphonenumber, credit card with Luhn, IP, KR_RRN when
  the installed version has it) and no NLP model: no spaCy model can be installed here,
  so its NLP engine is a stub that returns no tokens and no entities.
- ``presidio+kr``: the same with ``KR`` added to its phone recognizer's regions (it
  does not look for Korean numbers by default).

A finding counts as a hit when it overlaps a labelled span of the same entity (each
span is hit at most once); anything else is a false positive. Time per text: the mean
and p99 of ``--repeat`` passes over the corpus, one text per call, in this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_summary

CORPUS = Path(__file__).resolve().parent / "pii" / "corpus.jsonl"
ENTITIES = ("email", "phone", "kr_rrn", "credit_card", "ip")

Span = tuple[int, int, str]
Detect = Callable[[str], list[Span]]


def load_corpus(path: Path = CORPUS, sample: int | None = None) -> list[dict[str, Any]]:
    texts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if sample is not None:
        step = max(1, len(texts) // sample)
        texts = texts[::step][:sample]
    return texts


def dockyard_engine() -> Detect:
    from dockyard.policies.pii import PiiPolicy
    from dockyard.settings import PiiConfig

    # The scanner itself: PiiPolicy.scan remembers texts it has read (a conversation is
    # sent again with every call), which would time lookups from the second pass on.
    scanner = PiiPolicy.from_config(PiiConfig()).scanner

    def detect(text: str) -> list[Span]:
        return [(f.start, f.end, f.entity) for f in scanner.scan(text)]

    return detect


_PRESIDIO_NAMES = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "KR_RRN": "kr_rrn",
    "CREDIT_CARD": "credit_card",
    "IP_ADDRESS": "ip",
}


def presidio_engine(*, korean_phones: bool = False) -> Detect:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class NoNlp(NlpEngine):  # type: ignore[misc]
        """No spaCy model: no tokens, no entities; the pattern recognizers still run."""

        def load(self) -> None:
            pass

        def is_loaded(self) -> bool:
            return True

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            return NlpArtifacts(
                entities=[],
                tokens=[],
                tokens_indices=[],
                lemmas=[],
                nlp_engine=self,
                language=language,
            )

        def process_batch(
            self, texts: Any, language: str, batch_size: int | None = None, **kwargs: Any
        ) -> Any:
            for text in texts:
                yield text, self.process_text(text, language)

        def is_stopword(self, word: str, language: str) -> bool:
            return False

        def is_punct(self, word: str, language: str) -> bool:
            return False

        def get_supported_entities(self) -> list[str]:
            return []

        def get_supported_languages(self) -> list[str]:
            return ["en"]

    # Presidio's e-mail validator asks tldextract, which would download the public suffix
    # list; this machine reaches no such host: use the list tldextract ships.
    import tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    registry = RecognizerRegistry(supported_languages=["en"])

    registry.load_predefined_recognizers(languages=["en"])
    # Presidio ships country-specific recognizers off by default; KR_RRN is one of them.
    try:
        from presidio_analyzer.predefined_recognizers import KrRrnRecognizer

        registry.add_recognizer(KrRrnRecognizer(supported_language="en"))
    except ImportError:
        pass
    if korean_phones:
        registry.remove_recognizer("PhoneRecognizer")
        regions = (*PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS, "KR")
        registry.add_recognizer(PhoneRecognizer(supported_regions=regions))
    engine = AnalyzerEngine(registry=registry, nlp_engine=NoNlp(), supported_languages=["en"])
    wanted = [n for n in _PRESIDIO_NAMES if n in engine.get_supported_entities("en")]

    def detect(text: str) -> list[Span]:
        results = engine.analyze(text=text, language="en", entities=wanted)
        return [(r.start, r.end, _PRESIDIO_NAMES[r.entity_type]) for r in results]

    return detect


ENGINES: dict[str, Callable[[], Detect]] = {
    "dockyard": dockyard_engine,
    "presidio": presidio_engine,
    "presidio+kr": lambda: presidio_engine(korean_phones=True),
}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Result:
    engine: str
    per_entity: dict[str, Counts] = field(default_factory=dict)
    near_miss_fp: int = 0
    mean_us: float = 0.0
    p99_us: float = 0.0
    missed: list[tuple[int, str]] = field(default_factory=list)
    false: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> Counts:
        c = Counts()
        for x in self.per_entity.values():
            c.tp, c.fp, c.fn = c.tp + x.tp, c.fp + x.fp, c.fn + x.fn
        return c


def evaluate(name: str, detect: Detect, texts: list[dict[str, Any]], repeat: int = 3) -> Result:
    result = Result(name, {e: Counts() for e in ENTITIES})
    for item in texts:
        gold = [(s["start"], s["end"], s["entity"]) for s in item["spans"]]
        found = [s for s in detect(item["text"]) if s[2] in result.per_entity]
        hit = [False] * len(gold)
        for start, end, entity in found:
            for i, (gs, ge, gent) in enumerate(gold):
                if not hit[i] and gent == entity and start < ge and gs < end:
                    hit[i] = True
                    result.per_entity[entity].tp += 1
                    break
            else:
                result.per_entity[entity].fp += 1
                result.false.append((item["id"], f"{entity}: {item['text'][start:end]!r}"))
                if item["kind"] == "near_miss":
                    result.near_miss_fp += 1
        for (gs, ge, gent), was_hit in zip(gold, hit, strict=True):
            if not was_hit:
                result.per_entity[gent].fn += 1
                result.missed.append((item["id"], f"{gent}: {item['text'][gs:ge]!r}"))
    times: list[float] = []
    for _ in range(repeat):
        for item in texts:
            t0 = time.perf_counter_ns()
            detect(item["text"])
            times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    result.mean_us = statistics.fmean(times)
    result.p99_us = times[min(len(times) - 1, int(len(times) * 0.99))]
    return result


def markdown(results: list[Result], texts: list[dict[str, Any]], argv: list[str]) -> str:
    spans = sum(len(t["spans"]) for t in texts)
    near = sum(t["kind"] == "near_miss" for t in texts)
    lines = [
        f"`{' '.join(['python', 'bench/pii_bench.py', *argv])}` — {dt.date.today()}, "
        f"{machine_summary()}",
        "",
        f"Corpus: {len(texts)} texts ({sum(t['lang'] == 'ko' for t in texts)} Korean), "
        f"{spans} labelled spans, {near} texts built around near-misses.",
        "",
        "| engine | entity | precision | recall | TP | FP | FN |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for entity, c in [*r.per_entity.items(), ("all", r.total)]:
            lines.append(
                f"| {r.engine} | {entity} | {c.precision:.3f} | {c.recall:.3f} | "
                f"{c.tp} | {c.fp} | {c.fn} |"
            )
    lines += [
        "",
        "| engine | mean µs / text | p99 µs / text | FP on near-miss texts |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r.engine} | {r.mean_us:.0f} | {r.p99_us:.0f} | {r.near_miss_fp} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engines", default="dockyard", help=f"comma-separated: {', '.join(ENGINES)}"
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--sample", type=int, help="only this many texts, spread over the corpus")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the corpus")
    parser.add_argument("--markdown", action="store_true", help="print the tables")
    parser.add_argument("--errors", action="store_true", help="print each miss and false find")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    texts = load_corpus(args.corpus, args.sample)
    results = []
    for name in args.engines.split(","):
        if name not in ENGINES:
            parser.error(f"unknown engine {name!r}; one of {', '.join(ENGINES)}")
        results.append(evaluate(name, ENGINES[name](), texts, args.repeat))
    if args.markdown:
        print(markdown(results, texts, argv if argv is not None else sys.argv[1:]))
    if args.errors:
        for r in results:
            for text_id, what in r.missed:
                print(f"{r.engine} missed  #{text_id} {what}")
            for text_id, what in r.false:
                print(f"{r.engine} falsely #{text_id} {what}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "engine": r.engine,
                        "mean_us": r.mean_us,
                        "p99_us": r.p99_us,
                        "near_miss_fp": r.near_miss_fp,
                        "entities": {
                            e: {"tp": c.tp, "fp": c.fp, "fn": c.fn} for e, c in r.per_entity.items()
                        },
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    return results


if __name__ == "__main__":
    main()
