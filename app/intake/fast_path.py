"""The webhook's hot path: ``POST /webhooks/primevox/<token>`` straight to intake.

PrimeVOX posts every event of every call here, so this one route is served
by a thin WSGI layer in front of Flask: it reads the token from the path and
the body by its Content-Length, runs the same :func:`app.intake.routes.accept_webhook`
the Flask view runs, and writes the same JSON answer (the app's own JSON
provider, as ``jsonify`` writes it). Flask's request context, URL map and
response object cost more CPU than validating and storing the event; here
they are skipped.

Anything else -- another path or method, no token in the path (HTTP Basic
auth), a body without Content-Length or over the size limit, debug mode --
goes to Flask unchanged, so every answer, 413 and error handler included, is
the one Flask would give.

Slow bodies. granian hands the app a body that is still arriving: a read
blocks its thread until the last byte is in, and neither granian nor hyper
bounds how long that takes. So this layer reads every request body (any
path) on a separate pool of ``BODY_READERS`` reader threads and waits at most
``BODY_SECONDS`` for it; a body not in by then is answered ``408`` and the
app's thread moves on. A client that dribbles its body holds one reader (not
a web thread) until it finishes or goes away; past ``BODY_READERS`` such
clients, bodies wait for a reader and time out the same way. Headers are
bounded by the server itself (``app.web.serve``: header read timeout).

Readers never hold up intake. Webhook posts (every ``POST /webhooks/...``)
and everything else are admitted to the app on separate slots, WEB_THREADS
each: a webhook waits only for other webhooks (milliseconds each). A reader
waits at most ``READER_WAIT_SECONDS`` for a slot, then gets ``503`` with
Retry-After, so readers that hold their slots (open streams, slow downloads)
and readers that pile up behind them never take a thread intake needs.
``GET /healthz`` takes no slot: the platform's health check must not fail
because readers are busy.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from app.intake.routes import accept_webhook
from app.web.errors import MESSAGES, RETRY_AFTER_SECONDS
from app.web.resources import EXTENSION
from core.settings import Settings

PREFIX = "/webhooks/primevox/"
log = logging.getLogger("app")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A PrimeVOX body (under 2 KB) arrives in one packet: 10 s is generous for any
# honest sender, and bounds what a slow one can hold.
BODY_SECONDS = 10.0
# Reader threads per process: a body still arriving holds one, blocked in the
# server's Rust code with the GIL released (a few KB of memory each).
BODY_READERS = 64
# How long a reader waits for one of the process's reader slots before it is
# answered 503 (a read takes milliseconds: a burst of them is absorbed).
READER_WAIT_SECONDS = 1.0
WEBHOOKS = "/webhooks/"
NO_SLOT = frozenset({"/healthz"})


class _Read:
    """One body to read: what to read, and the reader's answer once ``done`` is released."""

    __slots__ = ("body", "claimed", "done", "error", "size", "stream")

    def __init__(self, stream: Any, size: int) -> None:
        self.stream = stream
        self.size = size
        self.body: bytes | None = None
        self.error: BaseException | None = None
        # Set by the reader that takes it, or by the app's thread giving up on it
        # first (then it is never started), whichever comes first.
        self.claimed = False
        # Taken now, released by the reader: the cheapest one-shot signal between
        # two threads in CPython (as core.store.group_commit's waiters).
        self.done = threading.Lock()
        self.done.acquire()


class BodyReader:
    """Read request bodies on a pool of reader threads, each within a deadline.

    Every webhook's body passes here, so the hand-off is kept to a queue put, a
    lock and a reader's loop (concurrent.futures' executor and futures cost a
    tenth of a webhook's CPU): readers are started as they are needed, up to
    ``readers``, and stay.
    """

    def __init__(self, readers: int = BODY_READERS, seconds: float = BODY_SECONDS) -> None:
        self.seconds = seconds
        self._most = readers
        self._queue: queue.SimpleQueue[_Read] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._readers = 0
        self._idle = 0

    def read(self, stream: Any, size: int) -> bytes | None:
        """Up to ``size`` bytes of ``stream`` (all of it when shorter; ``size`` < 0:
        all of it), or None when they did not arrive within the deadline."""
        job = _Read(stream, size)
        with self._lock:
            # _idle: readers waiting for a job, less jobs waiting for a reader.
            start = self._idle <= 0 and self._readers < self._most
            if start:
                self._readers += 1  # a new reader, for this job
            else:
                self._idle -= 1  # an idle reader takes it, or it waits for one
        if start:
            threading.Thread(target=self._reader, name="body-reader", daemon=True).start()
        self._queue.put(job)
        if not job.done.acquire(timeout=self.seconds):
            with self._lock:
                # Still queued behind busy readers: never start it. Started: the
                # reader finishes it (or the client goes away) and drops it.
                job.claimed = True
            return None
        if job.error is not None:
            raise job.error
        return job.body

    def _reader(self) -> None:
        while True:
            job = self._queue.get()
            with self._lock:
                withdrawn = job.claimed
                job.claimed = True
            if not withdrawn:
                try:
                    job.body = job.stream.read(job.size) if job.size >= 0 else job.stream.read()
                except BaseException as exc:  # the app's thread raises it
                    job.error = exc
                job.done.release()
            job.stream = None
            with self._lock:
                self._idle += 1


# Set in the WSGI environ by every Flask response: whether its body is produced
# while it is sent (an SSE stream), so still works on the app's behalf.
STREAMED = "callstate.streamed"


def _note_streamed(response: Response) -> Response:
    request.environ[STREAMED] = response.is_streamed
    return response


def _once(release: Callable[[], None]) -> Callable[[], None]:
    """``release``, run on the first call only."""
    done = threading.Event()

    def run() -> None:
        if not done.is_set():
            done.set()
            release()

    return run


class _Releasing:
    """A WSGI answer that runs ``release`` when it is exhausted or closed."""

    def __init__(self, answer: Iterable[bytes], release: Callable[[], None]) -> None:
        self._answer = answer
        self._items = iter(answer)
        self._release = release

    def __iter__(self) -> _Releasing:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._items)
        except StopIteration:
            self._release()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._answer, "close", None)
            if close is not None:
                close()
        finally:
            self._release()


class WebhookPath:
    """WSGI middleware: serve webhook posts that need nothing of Flask, pass on the rest."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp, bodies: BodyReader | None = None) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.bodies = bodies or BodyReader()
        # The app's own work (everything once the body is in) runs on at most
        # WEB_THREADS threads at once for webhooks and as many for readers (the
        # server has threads for both: app.web.serve), never one on the other's.
        settings: Settings = app.config["CALLSTATE_SETTINGS"]
        self.intake = threading.BoundedSemaphore(settings.web_threads)
        self.readers = threading.BoundedSemaphore(settings.web_threads)
        app.after_request(_note_streamed)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not self._read_body_in_time(environ):
            return self._answer(
                start_response,
                408,
                {"error": f"the request body did not arrive within {self.bodies.seconds:g} s"},
                {"Connection": "close"},
            )
        path = environ.get("PATH_INFO", "")
        if path in NO_SLOT:
            return self.wsgi_app(environ, start_response)
        if path.startswith(WEBHOOKS) and environ.get("REQUEST_METHOD") == "POST":
            slots = self.intake
            slots.acquire()
        else:
            slots = self.readers
            if not slots.acquire(timeout=READER_WAIT_SECONDS):
                return self._answer(
                    start_response,
                    503,
                    {"error": "busy: every reader slot of this process is in use, retry shortly"},
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
        try:
            length = self._length(environ)
            if length is not None:
                return self._webhook(environ, start_response, length, slots)
            answer = self.wsgi_app(environ, start_response)
        except BaseException:
            slots.release()
            raise
        if not environ.get(STREAMED, False):
            # The answer is computed (Flask's iterable only hands over its bytes):
            # the app's work is over, whether or not the server ever calls close().
            slots.release()
            return answer
        # A streamed answer keeps its slot while the app still produces it: until
        # it is exhausted or the server closes it, whichever comes first (once,
        # however many times close() is called: a test client calls it twice).
        # What the server still has to send after that costs it memory, not us
        # a thread.
        return _Releasing(answer, _once(slots.release))

    def _webhook(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        length: int,
        slots: threading.BoundedSemaphore,
    ) -> list[bytes]:
        try:
            return self._accept(environ, start_response, length)
        finally:
            slots.release()

    def _accept(
        self, environ: dict[str, Any], start_response: Callable[..., Any], length: int
    ) -> list[bytes]:
        token = environ["PATH_INFO"][len(PREFIX) :]
        try:
            status, answer, headers = accept_webhook(
                self.app.config["CALLSTATE_SETTINGS"],
                self.app.extensions[EXTENSION],
                token,
                lambda: _read(environ, length),
            )
        except HTTPException as exc:  # as app/web/errors.py answers it
            status = exc.code or 500
            answer = {"error": exc.description or MESSAGES.get(status, "error")}
            headers = {}
        except Exception:
            log.exception("unhandled error")
            status, answer, headers = 500, {"error": MESSAGES[500]}, {}
        return self._answer(start_response, status, answer, headers)

    def _answer(
        self,
        start_response: Callable[..., Any],
        status: int,
        answer: dict[str, Any],
        headers: dict[str, str],
    ) -> list[bytes]:
        body = _quick_json(answer)
        if body is None:
            body = (self.app.json.dumps(answer, separators=(",", ":")) + "\n").encode()
        start_response(
            f"{status} {HTTP_STATUS_CODES[status].upper()}",
            [
                ("Content-Type", self.app.json.mimetype),  # type: ignore[attr-defined]
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        return [body]

    def _read_body_in_time(self, environ: dict[str, Any]) -> bool:
        """Read the request's body within the deadline and put it back as a buffer
        (False when it did not arrive in time). A body announced larger than the
        limit is left unread: Flask answers 413 without reading it."""
        raw = environ.get("CONTENT_LENGTH") or ""
        max_length = self.app.config.get("MAX_CONTENT_LENGTH")
        if raw.isdigit():
            size = int(raw)
            if size == 0 or (max_length is not None and size > max_length):
                return True
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # One byte past the limit is enough for Flask to answer 413.
            size = max_length + 1 if max_length is not None else -1
        else:
            return True
        stream = environ.get("wsgi.input")
        if stream is None:
            return True
        body = self.bodies.read(stream, size)
        if body is None:
            return False
        environ["wsgi.input"] = io.BytesIO(body)
        # The length is known now: a chunked body is served as if it had come
        # with its Content-Length, so one over the limit (we read one byte more
        # than the limit) gets the same 413, never a body cut short and taken.
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return True

    def _length(self, environ: dict[str, Any]) -> int | None:
        """The body's length if this request is one for the hot path, else None."""
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or not path.startswith(PREFIX)
            or "/" in path[len(PREFIX) :]
            or len(path) == len(PREFIX)
            or self.app.debug
        ):
            return None
        raw = environ.get("CONTENT_LENGTH") or ""
        if not raw.isdigit():
            return None
        length = int(raw)
        max_length = self.app.config.get("MAX_CONTENT_LENGTH")
        return None if max_length is not None and length > max_length else length


_QUICK_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def _quick_json(answer: dict[str, Any]) -> bytes | None:
    """``answer`` as the app's JSON provider writes it (sorted keys, compact,
    ASCII), by orjson, when that is sure to be the same bytes: every value is
    text and nothing in the answer needed escaping (no backslash written, all
    ASCII, no DEL, which json escapes and orjson does not). Else None."""
    if not all(type(value) is str for value in answer.values()):
        return None
    try:
        body = orjson.dumps(answer, option=_QUICK_JSON)
    except orjson.JSONEncodeError:  # a lone surrogate, a key not text
        return None
    if not body.isascii() or b"\\" in body or b"\x7f" in body:
        return None
    return body


def _read(environ: dict[str, Any], length: int) -> bytes:
    """The body, all ``length`` bytes of it; a client that sent fewer is gone."""
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    if len(body) < length:
        raise ClientDisconnected()
    return body
