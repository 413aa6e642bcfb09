"""The deep agent's ``execute``: a small shell over the agent's own files, not the host's.

deepagents offers ``execute`` only on a backend that implements
``SandboxBackendProtocol``. A real shell on the server (``LocalShellBackend``) would let a
model run anything as the server's user, and a container sandbox needs Docker or a
hosted service; neither belongs in an example that must run anywhere with no key. So
``ScratchShell`` is the thread-state backend (``StateBackend``) plus an interpreter of a
handful of read-and-tidy commands over the agent's virtual file system — the same files
``ls`` / ``read_file`` see, ``/memories/`` included — and nothing else: no process is
started, no host path is touched, pipes, redirection and chaining are refused.

Commands: ``ls [path]``, ``cat path...``, ``head [-n N] path``, ``wc [-l|-w|-c] path...``,
``grep PATTERN path...``, ``echo text...``, ``rm [-r] [-f] path...``, ``pwd``. Anything
else answers exit code 127 and the list above. ``rm`` deletes; which commands wait for a
human first is the approval policy's business (``dockyard.agents.deep.approval``), not
the shell's.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable

from deepagents.backends import StateBackend
from deepagents.backends.protocol import BackendProtocol, ExecuteResponse, SandboxBackendProtocol

COMMANDS = ("ls", "cat", "head", "wc", "grep", "echo", "rm", "pwd")
_CHAINING = re.compile(r"[|;&<>`]|\$\(")
_MAX_OUTPUT = 20_000


class ScratchShell(StateBackend, SandboxBackendProtocol):
    """Thread-state files plus ``execute`` over the agent's file system (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._files: BackendProtocol = self
        self._id = f"scratch-{uuid.uuid4().hex[:8]}"

    def attach(self, files: BackendProtocol) -> None:
        """Run commands over ``files`` (the composite backend this shell is the default of),
        so ``cat /memories/x.md`` reads the store as ``read_file`` does."""
        self._files = files

    @property
    def id(self) -> str:
        return self._id

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        if _CHAINING.search(command):
            return ExecuteResponse(
                "pipes, redirection, chaining and substitution are not supported: "
                "run one command at a time",
                exit_code=2,
            )
        try:
            argv = shlex.split(command)
        except ValueError as e:
            return ExecuteResponse(f"cannot parse the command: {e}", exit_code=2)
        if not argv:
            return ExecuteResponse("", exit_code=0)
        run = _PROGRAMS.get(argv[0])
        if run is None:
            return ExecuteResponse(
                f"{argv[0]}: command not found (this shell runs: {', '.join(COMMANDS)})",
                exit_code=127,
            )
        output, code = run(self._files, argv[1:])
        truncated = len(output) > _MAX_OUTPUT
        return ExecuteResponse(output[:_MAX_OUTPUT], exit_code=code, truncated=truncated)


def _read(files: BackendProtocol, path: str) -> str | None:
    response = files.download_files([path])[0]
    if response.content is None:
        return None
    return response.content.decode("utf-8", errors="replace")


def _ls(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    path = next((a for a in args if not a.startswith("-")), "/")
    result = files.ls(path)
    if result.error:
        return f"ls: {result.error}", 2
    names = sorted(str(e["path"]) for e in result.entries or [])
    return "\n".join(names), 0


def _cat(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    out: list[str] = []
    code = 0
    for path in args:
        text = _read(files, path)
        if text is None:
            out.append(f"cat: {path}: No such file")
            code = 1
        else:
            out.append(text.rstrip("\n"))
    return "\n".join(out), code


def _head(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    lines = 10
    if len(args) >= 2 and args[0] == "-n" and args[1].isdigit():
        lines, args = int(args[1]), args[2:]
    if not args:
        return "head: name a file", 2
    text = _read(files, args[0])
    if text is None:
        return f"head: {args[0]}: No such file", 1
    return "\n".join(text.splitlines()[:lines]), 0


def _wc(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    flags = {a for a in args if a.startswith("-")}
    out: list[str] = []
    code = 0
    for path in (a for a in args if not a.startswith("-")):
        text = _read(files, path)
        if text is None:
            out.append(f"wc: {path}: No such file")
            code = 1
            continue
        counts = {"-l": text.count("\n"), "-w": len(text.split()), "-c": len(text.encode())}
        shown = [counts[f] for f in ("-l", "-w", "-c") if f in flags] or list(counts.values())
        out.append(" ".join(str(n) for n in shown) + f" {path}")
    return "\n".join(out), code


def _grep(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    if len(args) < 2:
        return "grep: usage: grep PATTERN FILE...", 2
    try:
        pattern = re.compile(args[0])
    except re.error as e:
        return f"grep: bad pattern: {e}", 2
    out: list[str] = []
    for path in args[1:]:
        text = _read(files, path) or ""
        out.extend(f"{path}:{line}" for line in text.splitlines() if pattern.search(line))
    return "\n".join(out), 0 if out else 1


def _rm(files: BackendProtocol, args: list[str]) -> tuple[str, int]:
    force = any(a.startswith("-") and "f" in a for a in args)
    out: list[str] = []
    code = 0
    for path in (a for a in args if not a.startswith("-")):
        result = files.delete(path)
        if result.error and not force:
            out.append(f"rm: {path}: {result.error}")
            code = 1
    return "\n".join(out), code


_PROGRAMS: dict[str, Callable[[BackendProtocol, list[str]], tuple[str, int]]] = {
    "ls": _ls,
    "cat": _cat,
    "head": _head,
    "wc": _wc,
    "grep": _grep,
    "echo": lambda _files, args: (" ".join(args), 0),
    "rm": _rm,
    "pwd": lambda _files, _args: ("/", 0),
}
