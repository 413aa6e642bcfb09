"""``"offline:memory"``: the offline model of the support chat with long-term memory.

``MemoryOfflineModel`` is the support agent's offline model (order lookup, FAQ) plus what
the memory agent (``dockyard.agents.memory_chat``) asks of a model:

* fact extraction: called with the ``UserFacts`` schema bound (``with_structured_output``),
  it answers with the facts its rules find in the user's last message (name, where they
  live, how to contact them, allergies, sizes, diet), each as a first-person sentence
  under a topic, so a later fact on the same topic replaces the earlier one;
* questions about the user ("what is my name?", "what do you remember about me?"): it
  answers from the memories the agent put in its system prompt under ``MEMORY_HEADER``,
  and says it has nothing on record when there are none;
* statements of such facts: it says what it will remember.

The rules are deterministic, so tests can assert on every answer. With a key the agent
runs on a provider's model instead, which extracts and answers by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from dockyard.providers.offline.base import ToolSpec, tool_name
from dockyard.providers.offline.models import last_human_text
from dockyard.providers.offline.support import SupportOfflineModel

MEMORY_HEADER = "What you remember about this user from earlier conversations:"
"""The line the agent puts before the recalled memories (one ``- `` line each)."""

FACTS_TOOL = "UserFacts"
"""The name of the extraction schema; a call that binds it asks for facts."""

_NAME = r"[A-Z][\w'-]+(?: [A-Z][\w'-]+)?"
_PLACE = r"[A-Z][\w'-]+(?: [A-Z][\w'-]+)?"
FactRule = tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str]]]
_FACT_RULES: tuple[FactRule, ...] = (
    (
        re.compile(rf"\b(?i:my name is|call me|name's)\s+(?P<v>{_NAME})"),
        lambda m: ("name", f"My name is {m['v']}."),
    ),
    (
        re.compile(r"제 이름은\s*(?P<v>[^\s,.!?]+?)(?:입니다|이에요|예요|이야|야)?(?=[\s,.!?]|$)"),
        lambda m: ("name", f"My name is {m['v']}."),
    ),
    (
        re.compile(
            rf"\b(?i:i(?: now)? (?:live|am living|'m living|am based|'m based) in) (?P<v>{_PLACE})"
            rf"|\b(?i:i(?: just)? moved to) (?P<w>{_PLACE})"
        ),
        lambda m: ("location", f"I live in {m['v'] or m['w']}."),
    ),
    (
        re.compile(r"(?P<v>[^\s,.!?]+)에 (?:살아요|살고 있어요|삽니다)"),
        lambda m: ("location", f"I live in {m['v']}."),
    ),
    (
        re.compile(
            r"\b(?:I prefer|contact me (?:by|via|through)|reach me (?:by|via|on))\s+"
            r"(?:to be contacted (?:by|via) )?(?P<v>e-?mail|phone(?: calls?)?|text messages?|"
            r"sms|chat)",
            re.I,
        ),
        lambda m: ("contact", f"I prefer to be contacted by {m['v'].lower()}."),
    ),
    (
        re.compile(r"\bI(?: am|'m) allergic to (?P<v>[a-z][\w -]*?)(?=[,.!?;]|\band\b|$)", re.I),
        lambda m: ("allergy", f"I am allergic to {m['v'].strip()}."),
    ),
    (
        re.compile(
            r"\bmy (?P<k>shoe|shirt|jacket|hat|ring) size is (?P<v>\w+(?:\.\d+)?)"
            r"|\bI wear (?:a )?size (?P<v2>\w+(?:\.\d+)?) (?P<k2>shoes?|shirts?|jackets?)",
            re.I,
        ),
        lambda m: (
            f"{(m['k'] or m['k2']).lower().rstrip('s')}_size",
            f"My {(m['k'] or m['k2']).lower().rstrip('s')} size is {m['v'] or m['v2']}.",
        ),
    ),
    (
        re.compile(r"\bI(?: am|'m)(?: a)? (?P<v>vegetarian|vegan|pescatarian)\b", re.I),
        lambda m: ("diet", f"I am {m['v'].lower()}."),
    ),
)

_ABOUT_ME = re.compile(
    r"\b(?:remember|recall|know about me|who am i|what(?:'s| is) my|where do i live|"
    r"what do i|how (?:should|do|will) you (?:contact|reach) me|am i allergic)\b"
    r"|제 이름|기억",
    re.I,
)

_SECOND_PERSON = (
    (re.compile(r"^My\b"), "your"),
    (re.compile(r"^I am\b"), "you are"),
    (re.compile(r"^I\b"), "you"),
)


def extract_facts(text: str) -> list[dict[str, str]]:
    """The facts the offline rules find in ``text``: ``{"topic", "text"}``, first person."""
    facts: dict[str, str] = {}
    for pattern, build in _FACT_RULES:
        for match in pattern.finditer(text):
            topic, fact = build(match)
            facts[topic] = fact
    return [{"topic": topic, "text": fact} for topic, fact in facts.items()]


def second_person(fact: str) -> str:
    """``"My name is Mina."`` → ``"your name is Mina"``: a memory, said back to the user."""
    out = fact.strip().rstrip(".")
    for pattern, replacement in _SECOND_PERSON:
        if pattern.search(out):
            return pattern.sub(replacement, out, count=1)
    return out


def recalled_memories(messages: list[BaseMessage]) -> list[str]:
    """The memories the agent put in the system prompt (none when it put none)."""
    for message in messages:
        if isinstance(message, SystemMessage) and MEMORY_HEADER in message.text:
            block = message.text.split(MEMORY_HEADER, 1)[1]
            lines = []
            for line in block.splitlines():
                if line.startswith("- "):
                    lines.append(line[2:].strip())
                elif lines and not line.strip():
                    break
            return lines
    return []


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class MemoryOfflineModel(SupportOfflineModel):
    """``"offline:memory"``: the support model's rules, fact extraction, and answers from
    the recalled memories (see the module docstring)."""

    model_name: str = "offline-memory"

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        text = last_human_text(messages)
        if any(tool_name(tool) == FACTS_TOOL for tool in tools):
            call = {"name": FACTS_TOOL, "args": {"facts": extract_facts(text)}, "id": None}
            return AIMessage(content="", tool_calls=[call])
        if not tools or (messages and isinstance(messages[-1], ToolMessage)):
            # No tools: not the agent's turn (a summary for policies.summarization).
            return super()._reply(messages, tools)
        if _ABOUT_ME.search(text):
            memories = recalled_memories(messages)
            if not memories:
                return AIMessage(
                    content="I don't have anything about you on record yet. Tell me, and I "
                    "will remember it for our next conversations."
                )
            said = _join([second_person(m) for m in memories])
            return AIMessage(content=f"From our earlier conversations I remember that {said}.")
        facts = extract_facts(text)
        answer = super()._reply(messages, tools)
        if facts and not answer.tool_calls:
            said = _join([second_person(f["text"]) for f in facts])
            return AIMessage(content=f"Thanks, I will remember that {said}.")
        return answer
