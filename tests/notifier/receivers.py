"""Real receivers on loopback: an HTTP endpoint for Apprise's json:// and an SMTP server.

Apprise must never reach a real service in tests: the only URLs used are
``json://127.0.0.1:PORT/...`` and ``mailto://127.0.0.1:PORT?...`` pointing here.
"""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from shared.redis_server import free_port


class JsonReceiver:
    """Collects every POSTed JSON body; ``fail`` makes it answer 500 (a broken channel)."""

    def __init__(self, secret_path: str = "hook") -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.fail = False
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length)
                if owner.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                with owner.lock:
                    owner.received.append(json.loads(data))
                    owner.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/{secret_path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> JsonReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never ran
            self.server.shutdown()
        self.server.server_close()

    def titles(self) -> list[str]:
        with self.lock:
            return [str(m.get("title", "")) for m in self.received]

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


class _Collect:
    def __init__(self, sink: list[Message]) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 (no TLS): what Apprise's mailto:// sends, as parsed mails."""

    def __init__(self, to: str = "trader@example.com") -> None:
        self.mails: list[Message] = []
        self.port = free_port()
        self.controller = Controller(_Collect(self.mails), hostname="127.0.0.1", port=self.port)
        self.url = f"mailto://127.0.0.1:{self.port}?mode=insecure&from=optbot@example.com&to={to}"

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in list(self.mails)]

    def bodies(self) -> list[str]:
        out = []
        for m in list(self.mails):
            parts = m.walk() if m.is_multipart() else [m]
            out.append(
                "\n".join(
                    p.get_payload(decode=True).decode(errors="replace")
                    for p in parts
                    if p.get_content_maintype() == "text"
                )
            )
        return out
