"""Reference agents, ready to serve.

* ``dockyard.agents.support:graph``: a customer-support agent (order lookup, FAQ,
  refunds that a human approves first). Runs with no API key on an offline model.
* ``dockyard.agents.deep:graph``: a deep agent (deepagents: planning, files with
  ``/memories/`` in the store, sub-agents, approval of writes and dangerous commands).
  Needs ``dockyard[deepagents]``; runs with no API key on ``offline:deep``.
* ``dockyard.agents.memory_chat:graph``: the support chat with long-term memory per user
  in the store (``POST /chat``), facts extracted after each turn and recalled by semantic
  search in later sessions. Runs with no API key on ``offline:memory``.
* ``dockyard.agents.tickets:graph``: the ticket summarizer: a help-desk ticket in, a
  validated JSON summary and its Markdown out, under the project's routing, quality gate,
  cache and PII policies (``examples/tickets``; batches with ``dockyard agents
  summarize``). Runs with no API key on ``offline:tickets``.

Each agent module builds its graph on import, so this package imports none of them.
"""
