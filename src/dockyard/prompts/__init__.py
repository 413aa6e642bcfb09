"""The prompt registry: versioned, labelled prompts in dockyard's database
(``docs/prompts.md``). ``registry``: the rules of writing; ``cache``: one process's copy,
what ``dockyard.prompt()`` reads; ``files``: prompts as YAML files."""

from dockyard.prompts.cache import PromptCache
from dockyard.prompts.files import FileSource, export, push_path, read_draft
from dockyard.prompts.registry import Draft, PromptRegistry, Pushed, unified_diff

__all__ = [
    "Draft",
    "FileSource",
    "PromptCache",
    "PromptRegistry",
    "Pushed",
    "export",
    "push_path",
    "read_draft",
    "unified_diff",
]
