"""Reference agents, ready to serve.

* ``dockyard.agents.support:graph``: a customer-support agent (order lookup, FAQ,
  refunds that a human approves first). Runs with no API key on an offline model.

Each agent module builds its graph on import, so this package imports none of them.
"""
