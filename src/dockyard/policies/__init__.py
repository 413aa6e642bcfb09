"""Production policies around every agent, one module per policy.

Each plugs into a named seam, never into the run path as a branch: request-level
policies as FastAPI dependencies or ASGI middleware; model-level policies as layers of
the model registry's wrapped models (and LangChain ``AgentMiddleware``); observation as
a callback handler or a run observer. A policy refuses by raising a ``PolicyError``
(``dockyard.errors``). Where each applies: ``docs/policies.md``.
"""
