"""
A minimal xAPI statements endpoint that stands in for Ralph in the demo.

Ralph (the LRS Aspects runs) is a separate service that ``make demo`` does not
install, so the demo serves just what the pipeline touches:

* ``PUT``/``POST /xAPI/statements`` -- what event-routing-backends'
  ``dispatch_event`` sends (through tincan's ``RemoteLRS``); statements are kept
  in memory until :meth:`LrsStandIn.take` hands them over, and the demo then writes
  them to the xAPI table as Ralph's ClickHouse backend would;
* ``GET /__heartbeat__`` -- Ralph's health endpoint, which the report probes.

It answers on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    # Headers and body go out in two writes; without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer, which the report would measure.
    disable_nagle_algorithm = True

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Experience-API-Version", "1.0.3")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] in ("/__heartbeat__", "/__lbheartbeat__"):
            self._reply(200, b"{}")
        else:
            self._reply(404)

    def _store(self):
        if not self.path.startswith("/xAPI/statements"):
            self._reply(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._reply(400, b'{"detail": "invalid JSON"}')
            return
        statements = payload if isinstance(payload, list) else [payload]
        with self.server.lock:
            self.server.statements.extend(s for s in statements if isinstance(s, dict))
        if self.command == "PUT":
            self._reply(204)
        else:
            self._reply(200, json.dumps([s.get("id") for s in statements if isinstance(s, dict)]).encode())

    do_PUT = _store  # noqa: N815
    do_POST = _store  # noqa: N815

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return  # the demo prints its own summary


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.statements: list[dict] = []
        self.taken = 0


class LrsStandIn:
    """The stand-in, serving from a daemon thread until :meth:`stop`."""

    def __init__(self):
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-lrs", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, as ``RALPH_URL`` is configured."""
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def received(self) -> int:
        """Statements received so far (including those already taken)."""
        with self._server.lock:
            return self._server.taken + len(self._server.statements)

    def take(self) -> list[dict]:
        """The statements received since the last call."""
        with self._server.lock:
            taken, self._server.statements = self._server.statements, []
            self._server.taken += len(taken)
        return taken

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
