"""Finding personal data in text: one regular expression per entity for the candidates,
then a validator that throws out what only looks like one (a date is no RRN, a number
failing Luhn is no card, a version string is no address).

Boundaries are ASCII on purpose: Python's ``\\b`` and ``\\w`` treat Hangul as word
characters, so ``010-1234-5678로`` or ``hong@example.com으로`` (a Korean particle right
after the value, the usual way to write it) would not match.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

EMAIL: Final = "email"
PHONE: Final = "phone"
KR_RRN: Final = "kr_rrn"
CREDIT_CARD: Final = "credit_card"
IP: Final = "ip"
ENTITIES: Final = (EMAIL, PHONE, KR_RRN, CREDIT_CARD, IP)


@dataclass(frozen=True, slots=True)
class Finding:
    """One value found: its entity and where it is. ``text`` is left out of the repr, so
    that a finding printed or logged does not carry the value itself."""

    entity: str
    start: int
    end: int
    text: str = field(repr=False)


# Not inside a longer word or number: "ORD-010-1234-5678-9" holds no phone number, nor
# does a UUID ("6a9ed97e-1821-5346-fd4f-…" is no 1821-5346).
_NUMBER_END = r"(?![0-9A-Za-z]|-[0-9A-Za-z]|\.\d)"


_AFTER_FIRST = r"(?<![0-9A-Za-z].)(?<![0-9A-Za-z]-.)(?<!\d\..)"


def _numbers(*forms: tuple[str, str]) -> re.Pattern[str]:
    """Numbers written in one of ``forms``: (first character or class, the rest). What may
    stand before a number is checked right after its first character, so the regex engine
    skips straight to where a first character occurs (a pattern that starts with a
    lookbehind is tried at every position: several times slower on prose); the forms are
    one alternation, so a text is read once for all of them."""
    branches = "|".join(first + _AFTER_FIRST + rest for first, rest in forms)
    return re.compile(f"(?:{branches}){_NUMBER_END}")


# Possessive quantifiers (*+, {m,n}+): no backtracking, so no input makes a pattern slow.
_EMAIL_RE = re.compile(
    r"(?<![0-9A-Za-z._%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]*+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*+\.)+[A-Za-z]{2,24}(?![0-9A-Za-z-])"
)

_SEP = r"[-. \u2013]"  # hyphen, dot, space, en dash (word processors turn "-" into it)
# The forms of phone numbers do not overlap, so one alternation finds them all.
_PHONE_RE = _numbers(
    # Korean mobile: 010-1234-5678, 010 1234 5678, 01012345678.
    ("0", rf"1[016789](?:{_SEP}?\d{{3,4}}{_SEP}?)\d{{4}}"),
    # Korean landline and VoIP: 02-123-4567, 031-123-4567, 070-1234-5678, (02) 123-4567.
    ("0", rf"(?:2|[3-6][1-5]|70|50\d){_SEP}\d{{3,4}}{_SEP}\d{{4}}"),
    (r"\(", rf"0(?:2|[3-6][1-5]|70)\) ?\d{{3,4}}{_SEP}\d{{4}}"),
    # Korean nationwide numbers: 1588-1234 (but not the years 1850-1900).
    ("1", r"(?:5[4-9]|6[0-9]|8[0-9])\d-(?!1[5-9]|20)\d{4}"),
    # +82, with or without the leading zero in brackets: +82 10 1234 5678, +82-2-123-4567.
    (r"\+", rf"82{_SEP}?(?:\(0\))?(?:1[016789]|2|[3-6][1-5]|70){_SEP}?\d{{3,4}}{_SEP}?\d{{4}}"),
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132.
    (r"\(", r"[2-9]\d\d\)\s?[2-9]\d\d[-.]\d{4}"),
    ("[2-9]", r"\d\d[-.][2-9]\d\d[-.]\d{4}"),
)
# Anything else international (E.164 and its printed forms); the digits are counted after.
_INTL_RE = re.compile(r"\+(?<![0-9A-Za-z+].)[1-9](?:[ .-]?\(?\d{1,5}+\)?){2,7}+(?![0-9A-Za-z])")

_RRN_RE = _numbers((r"(\d)", r"(\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?: ?- ?| )?([1-8])(\d{6})"))
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

# One run of digits, or the groupings cards are printed in (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4).
_CARD_RE = _numbers(
    (r"\d", r"(?:\d{12,18}|\d{3}([ -])(?:\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{6}\1\d{4,5}))")
)

# Candidates only: ipaddress says which are addresses (no octet over 255, no leading zero).
_IPV4_RE = re.compile(r"\d(?<![0-9A-Za-z.]\d)\d{0,2}(?:\.\d{1,3}){3}(?![0-9A-Za-z]|\.\d)")
_IPV6_RE = re.compile(
    r"(?<![0-9A-Za-z:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}"
    r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![0-9A-Za-z:])"
)
# "v1.2.3.4", "version 10.0.0.1", "버전 2.1.0.3": a dotted quad that names a release.
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|version|ver\.?|release|build|버전)\s*:?\s*$")


def _emails(text: str) -> Iterable[tuple[int, int]]:
    if "@" not in text:
        return
    for m in _EMAIL_RE.finditer(text):
        yield m.span()


def _phones(text: str) -> Iterable[tuple[int, int]]:
    for m in _PHONE_RE.finditer(text):
        yield m.span()
    if "+" not in text:
        return
    for m in _INTL_RE.finditer(text):
        value = m.group()
        digits = sum(c.isdigit() for c in value)
        # E.164 allows 15 digits; under 8 is a short code or part of something else.
        if 8 <= digits <= 15 and "  " not in value and value.count("(") == value.count(")"):
            yield m.span()


def rrn_valid(digits: str, *, checksum: bool = True) -> bool:
    """A Korean resident registration number (13 digits): a real birth date, a sex and
    century digit 1-8 (5-8: foreign residents), and the check digit. Numbers issued
    since October 2020 have no check digit: ``checksum=False`` accepts them."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    code = int(digits[6])
    century = 1900 if code in (1, 2, 5, 6) else 2000
    try:
        dt.date(century + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return False
    if not checksum:
        return True
    total = sum(int(d) * w for d, w in zip(digits, _RRN_WEIGHTS, strict=False))
    base = 13 if code >= 5 else 11
    return (base - total % 11) % 10 == int(digits[12])


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> Iterable[tuple[int, int]]:
    for m in _CARD_RE.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        # Issuer prefixes start with 2-6 (Mastercard 2-series, Amex, Visa, Mastercard,
        # Discover / UnionPay): a Luhn-valid account or order number rarely does too.
        if digits[0] in "23456" and luhn_valid(digits):
            yield m.span()


def _ips(text: str) -> Iterable[tuple[int, int]]:
    for m in _IPV4_RE.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if not _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
            yield m.span()
    if text.count(":") < 2:
        return
    for m in _IPV6_RE.finditer(text):
        value = m.group()
        start, end = m.span()
        if value.endswith(":") and not value.endswith("::"):  # "fe80::1: the gateway"
            value, end = value[:-1], end - 1
        if sum(c in "0123456789abcdefABCDEF" for c in value) < 2:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield start, end


Detector = Callable[[str], Iterable[tuple[int, int]]]


class RrnDetector:
    def __init__(self, *, checksum: bool) -> None:
        self.checksum = checksum

    def __call__(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _RRN_RE.finditer(text):
            if rrn_valid("".join(m.groups()), checksum=self.checksum):
                yield m.span()


def regex_detector(pattern: re.Pattern[str]) -> Detector:
    def detect(text: str) -> Iterable[tuple[int, int]]:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield m.span()

    return detect


def builtin_detectors(*, rrn_checksum: bool = True) -> dict[str, Detector]:
    return {
        EMAIL: _emails,
        PHONE: _phones,
        KR_RRN: RrnDetector(checksum=rrn_checksum),
        CREDIT_CARD: _cards,
        IP: _ips,
    }


# Most text holds none of these: a text with no digit, no "@" and no ":" cannot hold any
# built-in entity, and is passed over without running a single pattern.
_MAY_HOLD = re.compile(r"[0-9@:]")


class Scanner:
    """The detectors of the chosen entities (built-in and custom), run over a text; the
    findings come back in order, an overlap resolved for the longer (then the earlier)."""

    def __init__(self, detectors: Mapping[str, Detector], *, custom: bool = False) -> None:
        self.detectors = dict(detectors)
        self._always = custom  # a custom pattern may match text without digits

    def scan(self, text: str) -> list[Finding]:
        if not text or (not self._always and _MAY_HOLD.search(text) is None):
            return []
        spans = [
            (start, end, entity)
            for entity, detect in self.detectors.items()
            for start, end in detect(text)
        ]
        if not spans:
            return []
        spans.sort(key=lambda s: (s[0], s[0] - s[1]))
        out: list[Finding] = []
        for start, end, entity in spans:
            if out and start < out[-1].end:
                if end - start <= out[-1].end - out[-1].start:
                    continue
                out.pop()  # a longer value that starts inside the last one
            out.append(Finding(entity, start, end, text[start:end]))
        return out
