"""The project's own server, started inside ``dockyard eval`` when no ``--url`` is given:
the same app ``dockyard serve`` builds (the configured database, models and policies),
on 127.0.0.1 at a free port, for as long as the evaluation runs.

It is open (no API key) like ``dockyard dev``: only this machine reaches it, and only
while the command runs. With the embedded SQLite store, stop ``dockyard serve`` on the
same project first (SQLite is one process's store) or pass ``--url`` to use it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from dockyard.errors import UnavailableError
from dockyard.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(settings: Settings) -> Iterator[str]:
    """Serve ``settings``' project in a background thread; yields its URL."""
    import uvicorn

    from dockyard.api import create_app

    port = _free_port()
    local = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    local.auth = local.auth.model_copy(update={"required": False})
    app = create_app(local)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise UnavailableError("the project's server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
