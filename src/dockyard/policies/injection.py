"""Prompt-injection rules: a maintained default list (English and Korean) plus a project's own.

A rule is a regular expression with an id and a description. Texts are normalised first
(NFKC, so full-width letters read as ASCII; zero-width characters dropped; runs of
whitespace made one space) and matched case-insensitively. The patterns look for the
*request* to drop, reveal or replace the agent's instructions, not for the words alone:
"how do I write a good system prompt?" or "이전 지시를 따라 주세요" pass.

Rules are heuristics. They catch the common phrasings cheaply and document what was
caught (by rule id); they are not a classifier, which is why ``flag`` is the default.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dockyard.errors import ConfigError
from dockyard.settings import InjectionRuleConfig


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    pattern: re.Pattern[str]
    # Lower-case words one of which every match contains: a text holding none of them is
    # not searched (a substring test is far cheaper than the pattern). Empty: always.
    triggers: tuple[str, ...] = ()


def _rule(rule_id: str, description: str, pattern: str, triggers: tuple[str, ...] = ()) -> Rule:
    return Rule(rule_id, description, re.compile(pattern, re.IGNORECASE), triggers)


# Gaps between the parts of a phrase stay inside one sentence and are bounded, so every
# pattern runs in time linear in the text.
_GAP = r"[^.!?\n]{0,40}"
_KO_GAP = r"[^.!?\n]{0,15}"
_MODS = r"(?:(?:entire|full|exact|complete|original|hidden|secret|initial|verbatim)\s+)*"

DEFAULT_RULES: tuple[Rule, ...] = (
    _rule(
        "ignore_instructions",
        "asks to ignore, forget or override the previous / system instructions",
        r"\b(?:ignore|disregard|forget|override|bypass|skip|drop)\s+"
        r"(?:(?:all|any|each|every|the|your|these|those|of)\s+)*"
        r"(?:previous|prior|above|earlier|preceding|foregoing|initial|original|system|"
        r"developer|existing|current)\s+"
        r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|"
        r"orders|commands)\b"
        r"|\b(?:ignore|disregard|forget)\s+(?:all|everything)\s+(?:of\s+)?(?:your|the)?\s*"
        r"(?:instructions|rules|guidelines|you\s+were\s+told|above)\b",
        ("ignore", "disregard", "forget", "override", "bypass", "skip", "drop"),
    ),
    _rule(
        "reveal_system_prompt",
        "asks the agent to reveal, print or repeat its system prompt or hidden instructions",
        r"\b(?:reveal|show|print|repeat|output|display|leak|dump|expose|recite|disclose|"
        r"give\s+me|tell\s+me|share|spell\s+out|write\s+out|copy)\b" + _GAP + r"\b(?:"
        r"(?:your|the)\s+" + _MODS + r"(?:system|developer)\s+(?:prompt|instructions|message|rules)"
        r"|(?:your|the)\s+" + _MODS + r"(?:hidden|secret)\s+(?:prompt|instructions)"
        r"|your\s+" + _MODS + r"(?:initial|original)\s+(?:prompt|instructions)"
        r"|the\s+" + _MODS + r"(?:initial|original)\s+prompt"
        r")\b",
        ("system", "developer", "hidden", "secret", "initial", "original"),
    ),
    _rule(
        "repeat_above",
        "asks to repeat the text above the conversation (a way to leak the system prompt)",
        r"\b(?:repeat|print|output|reproduce)\s+(?:all\s+|everything\s+|the\s+)?"
        r"(?:text|words|content|everything|lines)?\s*(?:above|before\s+this)\b"
        r"[^.!?\n]{0,30}\b(?:starting|beginning|verbatim|word\s+for\s+word)",
        ("above", "before"),
    ),
    _rule(
        "new_instructions",
        "announces replacement instructions or a new system prompt",
        r"\byour\s+new\s+(?:instructions|rules|task|role|directive|system\s+prompt)s?\s+"
        r"(?:is|are)\b|\bnew\s+(?:system\s+)?(?:instructions|prompt|rules)\s*:"
        r"|\b(?:updated|new)\s+system\s+prompt\b",
        ("new", "updated"),
    ),
    _rule(
        "role_override",
        "tells the agent it is now an unrestricted / jailbroken assistant",
        r"\b(?:you\s+are\s+(?:now|no\s+longer)|from\s+now\s+on,?\s+you(?:\s+are|'re|\s+will)?)"
        + _GAP
        + r"(?:\b(?-i:DAN)\b|unrestricted|unfiltered|uncensored|jailbroken|free\s+(?:from|of)|"
        r"without\s+(?:any\s+)?(?:restrictions|limits|limitations|filters|rules|guidelines)|"
        r"not\s+bound\s+by|no\s+(?:restrictions|limits|rules|filters|guidelines))",
        ("now", "longer"),
    ),
    _rule(
        "roleplay_jailbreak",
        "role-play framing that asks for a persona without rules, filters or ethics",
        r"\b(?:pretend|act|roleplay|role-play|imagine|behave|simulate)\b"
        + _GAP
        + r"\b(?:with\s+no|without|free\s+(?:of|from)|ignor(?:e|es|ing)|"
        r"unbound\s+by|not\s+bound\s+by)\s+"
        r"(?:any\s+)?(?:rules|restrictions|filters|guidelines|limits|limitations|"
        r"content\s+polic(?:y|ies)|ethics|ethical\s+guidelines|morals|safety\s+guidelines)\b"
        r"|\b(?:unrestricted|unfiltered|uncensored|jailbroken|evil)\s+"
        r"(?:ai|assistant|model|chatbot|mode|version|persona)\b",
        (
            "rule",
            "restriction",
            "filter",
            "guideline",
            "limit",
            "polic",
            "ethic",
            "moral",
            "safety",
            "unrestricted",
            "unfiltered",
            "uncensored",
            "jailbroken",
            "evil",
        ),
    ),
    _rule(
        "jailbreak_mode",
        "names a known jailbreak: DAN, 'do anything now', developer or jailbreak mode",
        r"\bDAN\s+(?:mode|prompt|jailbreak)\b|\bdo\s+anything\s+now\b|\bjailbreak(?:ed)?\s+mode\b"
        r"|\bdeveloper\s+mode\s+(?:enabled|activated|on)\b|\benable\s+developer\s+mode\b",
        ("dan", "anything", "jailbreak", "developer"),
    ),
    _rule(
        "fake_role_markup",
        "chat-template markup that fakes a system or assistant turn inside a message",
        r"(?m)<\|im_start\|>|<\|im_end\|>|<\|(?:system|assistant|endoftext)\|>|\[/?INST\]"
        r"|<<\s*/?SYS\s*>>|</?system>|^\s*#{2,}\s*(?:system|new\s+instructions?)\b",
        ("<|", "inst]", "<<", "system>", "#"),
    ),
    _rule(
        "ko_ignore_instructions",
        "Korean: asks to ignore or forget the previous / system instructions (이전 지시를 무시)",
        r"(?:이전|위|앞|기존|지금까지|모든|상기|원래|시스템|앞서|처음)(?:의|에|에서)?"
        + _KO_GAP
        + r"(?:지시|지침|명령|규칙|프롬프트|가이드라인)(?:사항|문)?(?:들)?"
        r"(?:을|를|은|는|도|에)?\s*(?:모두\s*|전부\s*|다\s*|싹\s*)?"
        r"(?:무시|잊어|잊고|잊으|잊을|무효|따르지\s*마|따르지\s*말|어겨|버려)",
        ("무시", "잊", "무효", "따르지", "어겨", "버려"),
    ),
    _rule(
        "ko_reveal_system_prompt",
        "Korean: asks to show or print the system prompt or hidden instructions",
        r"(?:시스템|초기|숨겨진|숨은|원래|내부|개발자)\s*(?:프롬프트|지시|지침|명령|메시지)"
        r"(?:사항|문)?(?:들)?(?:을|를|의\s*내용을|\s*내용을|\s*전체를|\s*전문을)?\s*"
        r"(?:그대로\s*|전부\s*|모두\s*|정확히\s*|한\s*글자도\s*빠짐없이\s*)?"
        r"(?:보여|알려|출력|공개|말해|누설|반복|복사|적어|읊어)",
        ("프롬프트", "지시", "지침", "명령", "메시지"),
    ),
    _rule(
        "ko_roleplay_jailbreak",
        "Korean: role-play without rules or filters, jailbreak or developer mode",
        r"(?:제한|규칙|필터|검열|윤리|제약|가이드라인)(?:이|가|도|은|는)?\s*"
        r"(?:전혀\s*)?(?:없는|없이|없다고|에서\s*벗어난|을\s*무시하는|를\s*무시하는)"
        r"[^.!?\n]{0,30}(?:척|역할|처럼|행동|연기|인공지능|AI|챗봇|모드)"
        r"|탈옥\s*(?:모드|프롬프트|해)|개발자\s*모드\s*(?:활성화|켜|on)",
        ("없", "벗어난", "무시하는", "탈옥", "개발자"),
    ),
    _rule(
        "ko_new_instructions",
        "Korean: announces new instructions or a new role",
        r"새(?:로운)?\s*(?:시스템\s*)?(?:지시|지침|명령|프롬프트)(?:사항)?\s*[:\uff1a]"
        r"|너의\s*새로운\s*(?:역할|임무|지시)(?:은|는)",
        ("새",),
    ),
)

_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
# Whitespace other than a single space (newlines kept: markup rules anchor at line starts).
_SPACES = re.compile(r"[^\S\n]{2,}|[^\S\n ]")


def normalise(text: str) -> str:
    """``text`` as the rules read it: NFKC, no zero-width characters, single spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        for invisible in _ZERO_WIDTH:  # str.replace scans in C; translate() would not
            if invisible in text:
                text = text.replace(invisible, "")
    return _SPACES.sub(" ", text)


class InjectionRules:
    """The rules in force: the defaults minus ``disabled``, then the project's own."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def build(
        cls, custom: Iterable[InjectionRuleConfig] = (), disabled: Iterable[str] = ()
    ) -> InjectionRules:
        default_ids = {r.id for r in DEFAULT_RULES}
        off = set(disabled)
        if unknown := sorted(off - default_ids):
            raise ConfigError(
                f"policies.input.disabled_rules: {unknown} are not default rules; the default "
                f"rule ids are {sorted(default_ids)}"
            )
        rules = [r for r in DEFAULT_RULES if r.id not in off]
        for c in custom:
            if c.id in default_ids:
                raise ConfigError(
                    f"policies.input.injection_rules: id {c.id!r} is a default rule's; give "
                    "yours another id (and list the default in disabled_rules to replace it)"
                )
            rules.append(_rule(c.id, c.description, c.pattern))
        return cls(rules)

    def first_match(self, text: str) -> Rule | None:
        """The first rule whose pattern matches ``text``, or None."""
        text = normalise(text)
        lower = text.lower()
        for rule in self.rules:
            if rule.triggers and not any(t in lower for t in rule.triggers):
                continue
            if rule.pattern.search(text):
                return rule
        return None


__all__ = ["DEFAULT_RULES", "InjectionRules", "Rule", "normalise"]
