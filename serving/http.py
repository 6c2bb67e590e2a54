"""The HTTP server under the REST API: waitress, hardened so that slow or hostile clients
cannot stop it from answering well-formed requests.

- Refusals by the HTTP layer itself (malformed request line, headers too large, body over
  `--max_request_bytes`) are JSON `{"error": …}` like every other answer.
- A chunked body's size line is bounded, so one that never ends is refused at once instead of
  being re-scanned on every packet.
- Up to `max_connections` clients may be connected at once (waitress's default is 100, after
  which every new client waits), polled with poll(2) so that file descriptors above 1024 work;
  a connection idle for `idle_timeout_seconds` is closed.
- waitress's "Task queue depth" warning, logged on most requests under load, is silenced.
"""

from __future__ import annotations

import logging
import resource

import orjson
import waitress.server
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver
from waitress.task import ErrorTask
from waitress.utilities import BadRequest

# A chunk-size line is a hex number and optional extensions; nothing legitimate comes near.
MAX_CHUNK_SIZE_LINE = 4096


class _BoundedChunkedReceiver(ChunkedReceiver):
    def received(self, s):
        consumed = super().received(s)
        if len(self.control_line) > MAX_CHUNK_SIZE_LINE and not self.error:
            self.error = BadRequest(f"Chunk size line longer than {MAX_CHUNK_SIZE_LINE} bytes")
            self.control_line = b""
            self.all_chunks_received = self.completed = True
        return consumed


class _Parser(HTTPRequestParser):
    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        if isinstance(self.body_rcv, ChunkedReceiver):
            self.body_rcv = _BoundedChunkedReceiver(self.body_rcv.buf)


class _JsonErrorTask(ErrorTask):
    """waitress's own error answers, as JSON."""

    def execute(self):
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = orjson.dumps({"error": f"{error.reason}: {error.body}".rstrip(": ")})
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _JsonErrorTask
    parser_class = _Parser


def create_server(app, host: str, port: int, threads: int, max_request_bytes: int,
                  max_connections: int, idle_timeout_seconds: int):
    """A waitress server for the WSGI `app`, not yet running (`.run()`, `.close()`)."""
    _allow_open_files(max_connections + 64)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = waitress.server.create_server(
        app, host=host, port=port, threads=threads, max_request_body_size=max_request_bytes,
        connection_limit=max_connections, channel_timeout=idle_timeout_seconds,
        cleanup_interval=max(1, min(30, idle_timeout_seconds // 2)), asyncore_use_poll=True,
        send_bytes=65536,  # a batch-1 response in one send(2) call
        clear_untrusted_proxy_headers=True, ident="yt8m-tfx")
    listeners = getattr(server, "map", None) or server._map
    for listener in list(listeners.values()):
        if isinstance(listener, waitress.server.BaseWSGIServer):
            listener.channel_class = _Channel
    return server


def serve(app, **options) -> None:
    """Runs `create_server(app, **options)` until interrupted."""
    server = create_server(app, **options)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _allow_open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
