"""A stand-in for a Slack incoming webhook, for the demo (``bin/start --demo``).

It answers every POST as Slack does (200, ``ok``) and prints the message's
``text``, one line per message, so the launcher's terminal shows what a Slack
channel would. A process of its own, started and stopped by the launcher with
the web and the worker (devtools.start).

    python -m devtools.slack_receiver <port>
"""

from __future__ import annotations

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


class SlackShaped(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            text = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, b"invalid_payload")
            return
        print(text, flush=True)
        self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the message's text is the one line worth showing."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    [port] = argv
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), SlackShaped)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
