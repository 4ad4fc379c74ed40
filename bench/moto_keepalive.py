"""moto's server (the same app, the same werkzeug threaded server) with HTTP/1.1 keep-alive.

``moto_server`` answers every request with ``Connection: close``: werkzeug's request handler
(serving.py, ``run_wsgi``) sends that header on every response and, after each one, reads the
socket for 10 ms to discard any unread request body, which would swallow the next request on
a kept-alive connection.  So every S3 request of either tool opened a TCP connection, where
real S3 keeps connections alive (and so do Azurite and rclone's and lakeshift's clients).

This handler differs only there: the request body (Content-Length bytes, or a chunked body)
is read whole before the app runs, the response goes out with its Content-Length (added when
the app gave none), and the connection stays open for the client's next request.  The app,
its routing and its storage are moto's own.

    python bench/moto_keepalive.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class KeepAliveHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput
            body = environ["wsgi.input"].read()
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        reply: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            reply[:] = [status, headers]
            return chunks.append

        app_iter = self.server.app(environ, start_response)  # type: ignore[attr-defined]
        try:
            chunks.extend(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        status, headers = reply
        code_text, _, message = status.partition(" ")
        code = int(code_text)
        self.send_response(code, message)
        names = set()
        for name, value in headers:
            if name.lower() != "connection":
                self.send_header(name, value)
                names.add(name.lower())
        head = self.command == "HEAD"
        if "content-length" not in names and not head and code >= 200 and \
                code not in (204, 304):
            self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        self.end_headers()
        if not head:
            for c in chunks:
                self.wfile.write(c)
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, request_handler=KeepAliveHandler)


if __name__ == "__main__":
    main()
