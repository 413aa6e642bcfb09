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


def same_language(sample: Any) -> tuple[float, list[str]]:
    """``sample`` is a ``dockyard.quality.Sample`` (this side layer does not import it).

    1 when the summary's values are in the ticket's language (Korean or not), else 0."""
    source = sample.source or ""
    ticket = source.split(TICKET_START, 1)[-1].split(TICKET_END, 1)[0]
    answer = sample.answer
    try:
        answer = " ".join(_values(json.loads(answer[answer.find("{") : answer.rfind("}") + 1])))
    except ValueError:
        pass  # not JSON: judge the text as it is
    want, got = is_korean(ticket), is_korean(answer)
    if want == got:
        return 1.0, []
    names = {True: "Korean", False: "not Korean"}
    return 0.0, [f"the ticket is {names[want]} but the summary is {names[got]}"]
