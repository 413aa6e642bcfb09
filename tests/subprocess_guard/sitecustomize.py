"""Loaded at start-up by the Python processes the tests start (``tests.conftest.guarded``
puts this folder on their PYTHONPATH): a server under test refuses real model requests
too; the run that tried ends as an error naming the URL (dockyard.testing.model_requests)."""

try:
    from dockyard.testing.model_requests import ModelRequestGuard
except ModuleNotFoundError as e:  # an interpreter without dockyard (pip, a bare venv)
    if e.name != "dockyard":
        raise
else:
    ModelRequestGuard().start()
