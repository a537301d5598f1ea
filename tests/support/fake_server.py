"""A stand-in for ``apitokens serve``, to test ``ServerProcess`` without the service.

Usage: ``python fake_server.py serve --host H --port P --database-url URL [...]``.
It answers ``GET /healthz`` with 200 and exits 0 on SIGTERM. Its behaviour is steered by
environment variables: ``FAKE_EXIT_AT_START=<status>`` exits at once,
``FAKE_IGNORE_SIGTERM=1`` ignores SIGTERM, ``FAKE_READY_AFTER=<seconds>`` delays binding.
At start it prints its arguments and the names of the ``APITOKENS_*`` variables it sees.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 404
        body = b'{"status": "ok"}' if status == 200 else b'{"message": "not found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"access: {format % args}\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--database-url", default="")
    options, extra = parser.parse_known_args(argv)
    seen = sorted(key for key in os.environ if key.startswith("APITOKENS_"))
    print(f"fake server args={argv} extra={extra} env={seen}", file=sys.stderr, flush=True)
    if "FAKE_EXIT_AT_START" in os.environ:
        print("fake server: exiting at start as asked", file=sys.stderr, flush=True)
        return int(os.environ["FAKE_EXIT_AT_START"])
    time.sleep(float(os.environ.get("FAKE_READY_AFTER", "0")))
    httpd = ThreadingHTTPServer((options.host, options.port), _Handler)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if os.environ.get("FAKE_IGNORE_SIGTERM") == "1":
            print("fake server: ignoring SIGTERM", file=sys.stderr, flush=True)
            return
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"fake server listening on {options.host}:{options.port}", file=sys.stderr, flush=True)
    httpd.serve_forever(poll_interval=0.05)
    httpd.server_close()
    print("fake server: clean shutdown", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
