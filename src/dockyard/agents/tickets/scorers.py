"""Scorers of the summarizer that the rule scorers do not cover (``type: python``).

``same_language``: the summary is written in the ticket's language. The rule scorer
``language`` takes one fixed language; a desk with Korean and English tickets needs the
language of each ticket, and the summary's JSON keys (English) must not count.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.providers.offline.tickets import TICKET_END, TICKET_START, is_korean


def _values(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [text for value in data.values() for text in _values(value)]
    if isinstance(data, list):
        return [text for value in data for text in _values(value)]
    return [data] if isinstance(data, str) else []


def _json(text: str) -> Any:
    try:
        return json.loads(text[text.find("{") : text.rfind("}") + 1])
    except ValueError:
        return None


def same_language(sample: Any) -> tuple[float, list[str]]:
    """1 when the summary's values are in the ticket's language (Korean or not), else 0.
    ``sample`` is a ``dockyard.quality.Sample`` (this side layer does not import it)."""
    source = sample.source or ""
    ticket = source.split(TICKET_START, 1)[-1].split(TICKET_END, 1)[0]
    answer = sample.answer
    data = _json(answer)
    if data is not None:
        answer = " ".join(_values(data))  # not JSON: the text as it is
    want, got = is_korean(ticket), is_korean(answer)
    if want == got:
        return 1.0, []
    names = {True: "Korean", False: "not Korean"}
    return 0.0, [f"the ticket is {names[want]} but the summary is {names[got]}"]


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def expected_fields(sample: Any) -> tuple[float, list[str]]:
    """The share of the item's ``expected`` the summary matches: ``sentiment`` and
    ``current_status`` (equal, case and spaces aside) and ``attachments`` (the names in
    ``attachments_worth_opening``, as a set). An eval scorer: the gate has no expected."""
    expected = sample.expected if isinstance(sample.expected, dict) else {}
    data = _json(sample.answer)
    if not expected:
        return 1.0, []
    if not isinstance(data, dict):
        return 0.0, ["the answer is not a JSON object"]
    reasons: list[str] = []
    hits = 0
    for key, want in expected.items():
        if key == "attachments":
            picked = data.get("attachments_worth_opening") or []
            got: Any = sorted(str(a.get("name")) for a in picked if isinstance(a, dict))
            ok = got == sorted(want)
        else:
            got = data.get(key)
            ok = _norm(got) == _norm(want)
        hits += ok
        if not ok:
            reasons.append(f"{key}: expected {want!r}, got {got!r}")
    return hits / len(expected), reasons
