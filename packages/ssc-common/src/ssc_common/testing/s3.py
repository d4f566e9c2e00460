"""A real S3 endpoint for tests: moto's server on 127.0.0.1, and a proxy that injects faults.

Tests talk HTTP to these servers exactly as production talks to AWS, so retries, aborted
uploads and broken downloads are exercised through botocore itself, with nothing patched.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from moto.server import ThreadedMotoServer

# Dummy credentials, and every variable that could point boto3 at a real account unset
# (None): tests must never reach AWS whatever the developer's shell holds.
DUMMY_AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_S3": None,
}


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables, restoring the old values after.

    In pytest prefer ``monkeypatch.setenv``/``delenv`` over the items of the same mapping.
    """
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unique_bucket_name(stem: str = "ssc-test") -> str:
    """A valid, unused-looking bucket name (lower case, at most 63 characters)."""
    return f"{stem}-{uuid.uuid4().hex[:20]}"


@dataclass
class MotoS3:
    """A running moto S3 server: where it listens and the credentials that work with it."""

    endpoint_url: str
    env: dict[str, str | None] = field(default_factory=lambda: dict(DUMMY_AWS_ENV))

    _client: Any = field(default=None, init=False, repr=False)

    @property
    def client(self) -> Any:
        """A plain boto3 S3 client on this server (explicit credentials; no env needed).

        One client, made on first use and closed with the server; boto3 clients are
        thread-safe, so tests (and FaultyProxy hooks) may share it.
        """
        if self._client is None:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            )
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique one unless named) and return its name."""
        name = name or unique_bucket_name()
        self.client.create_bucket(Bucket=name)
        return name

    def multipart_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """The multipart uploads started in ``bucket`` and neither completed nor aborted."""
        return self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])

    def close(self) -> None:
        """Close the shared client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


@contextlib.contextmanager
def moto_s3_server() -> Iterator[MotoS3]:
    """Run moto's S3 server on a free port of 127.0.0.1 for the duration of the block.

    The yielded :class:`MotoS3` carries the endpoint and ``env`` (dummy credentials to set
    around code that uses boto3's default credential chain). moto keeps its data in this
    process's memory, shared with any ``moto.mock_aws`` in use at the same time.
    """
    werkzeug_log = logging.getLogger("werkzeug")  # one INFO line per request otherwise
    saved_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto_s3 = MotoS3(endpoint_url=f"http://{host}:{port}")
        try:
            yield moto_s3
        finally:
            moto_s3.close()
    finally:
        server.stop()
        inner = getattr(server, "_server", None)  # stop() leaves the listening socket open
        if inner is not None:
            inner.server_close()
        werkzeug_log.setLevel(saved_level)


# -- fault injection ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProxiedRequest:
    """One request that reached :class:`FaultyProxy`, as its fault predicates see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body_size: int
    body_md5: bytes  # digest of the body as received


Predicate = Callable[[ProxiedRequest], bool]


def is_upload_part(number: int | None = None) -> Predicate:
    """Matches UploadPart requests (of part ``number`` only, if given)."""

    def predicate(request: ProxiedRequest) -> bool:
        part = request.query.get("partNumber")
        return (
            request.method == "PUT" and part is not None and (number is None or part == str(number))
        )

    return predicate


def is_put_object(request: ProxiedRequest) -> bool:
    """Matches single-request uploads (PutObject)."""
    return request.method == "PUT" and not {"partNumber", "uploadId"} & request.query.keys()


def is_complete_upload(request: ProxiedRequest) -> bool:
    """Matches CompleteMultipartUpload."""
    return request.method == "POST" and "uploadId" in request.query


def is_get_object(request: ProxiedRequest) -> bool:
    """Matches object downloads (GET of a key, not of a bucket listing)."""
    return request.method == "GET" and request.path.strip("/").count("/") >= 1


def any_request(request: ProxiedRequest) -> bool:
    """Matches everything."""
    return True


@dataclass
class _Rule:
    predicate: Predicate
    fault: str
    remaining: int | None


_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
_STATUS_CODES = {500: "InternalError", 503: "SlowDown"}


class FaultyProxy:
    """An HTTP reverse proxy on 127.0.0.1 that forwards to ``upstream`` but can misbehave.

    ``inject(predicate, fault, times)`` makes the next ``times`` matching requests (all of
    them if ``times`` is None) fail instead of being forwarded. Faults:

    - ``"503"``, ``"500"`` or any status: answer that status with an S3-style error body;
    - ``"drop"``: read the request, then close the connection without answering;
    - ``"truncate"``: forward, then send the full headers but only half the body and close.

    Every request is recorded in :attr:`requests`. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._rules: list[_Rule] = []
        self._hooks: list[tuple[Predicate, Callable[[ProxiedRequest], None]]] = []
        self._lock = threading.Lock()
        self._requests: list[tuple[ProxiedRequest, str | None]] = []
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    # -- control -------------------------------------------------------------------------

    def inject(self, predicate: Predicate, fault: str = "503", times: int | None = 1) -> None:
        """Let the next ``times`` requests matching ``predicate`` fail with ``fault``."""
        if fault not in ("drop", "truncate") and not (fault.isdigit() and len(fault) == 3):
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._rules.append(_Rule(predicate, fault, times))

    def on(self, predicate: Predicate, callback: Callable[[ProxiedRequest], None]) -> None:
        """Call ``callback`` (in the proxy's thread) for each matching request, before it is
        forwarded or faulted: a way to look at the upstream state at that moment."""
        with self._lock:
            self._hooks.append((predicate, callback))

    def clear(self) -> None:
        """Forget every injected fault and hook (recorded requests stay)."""
        with self._lock:
            self._rules.clear()
            self._hooks.clear()

    @property
    def requests(self) -> list[ProxiedRequest]:
        """Every request received so far, faulted or not, in arrival order."""
        with self._lock:
            return [request for request, _ in self._requests]

    @property
    def faults(self) -> list[tuple[ProxiedRequest, str]]:
        """The requests that got a fault instead of an answer, with the fault."""
        with self._lock:
            return [(request, fault) for request, fault in self._requests if fault]

    def count(self, predicate: Predicate = any_request) -> int:
        """How many received requests match ``predicate``."""
        return sum(1 for request in self.requests if predicate(request))

    def start(self) -> FaultyProxy:
        """Listen on a free port of 127.0.0.1; sets :attr:`endpoint_url`."""
        proxy = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with proxy._lock:
                    proxy._connections.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                with proxy._lock:
                    proxy._connections.discard(request)
                super().shutdown_request(request)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects

            def handle_one_request(self) -> None:
                try:
                    self.raw_requestline = self.rfile.readline(65537)
                    if not self.raw_requestline or not self.parse_request():
                        self.close_connection = True
                        return
                    proxy._handle(self)
                    self.wfile.flush()
                except OSError:  # the client went away, or stop() cut the connection
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="faulty-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the kept-alive connections."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------

    def _take_fault(self, request: ProxiedRequest) -> str | None:
        with self._lock:
            fault = None
            for rule in self._rules:
                if rule.remaining != 0 and rule.predicate(request):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    fault = rule.fault
                    break
            self._requests.append((request, fault))
            return fault

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = _read_chunked(handler.rfile)
        else:
            body = handler.rfile.read(int(headers.get("content-length") or 0))
        split = urlsplit(handler.path)
        request = ProxiedRequest(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            body_size=len(body),
            body_md5=hashlib.md5(body, usedforsecurity=False).digest(),
        )
        with self._lock:
            hooks = [callback for predicate, callback in self._hooks if predicate(request)]
        for callback in hooks:
            callback(request)
        fault = self._take_fault(request)
        if fault == "drop":
            handler.close_connection = True
            return
        if fault is not None and fault.isdigit():
            self._answer_error(handler, int(fault))
            return
        try:
            status, reason, answer_headers, answer = self._forward(handler, body)
        except OSError as exc:
            self._answer_error(handler, 502, f"proxy could not reach upstream: {exc}")
            return
        handler.send_response_only(status, reason)
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                handler.send_header(name, value)
        if handler.command == "HEAD":
            length = dict((n.lower(), v) for n, v in answer_headers).get("content-length", "0")
            handler.send_header("Content-Length", length)
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(answer)))
        if fault == "truncate" and answer:
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(answer[: len(answer) // 2])
            handler.close_connection = True
            return
        handler.end_headers()
        handler.wfile.write(answer)

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            forwarded = {
                name: value
                for name, value in handler.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
            }
            send_body = body if body or handler.command in ("PUT", "POST") else None
            connection.request(handler.command, handler.path, body=send_body, headers=forwarded)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.reason, response.getheaders(), answer
        finally:
            connection.close()

    @staticmethod
    def _answer_error(handler: BaseHTTPRequestHandler, status: int, message: str = "") -> None:
        code = _STATUS_CODES.get(status, "InjectedFault")
        message = message or f"fault injected by FaultyProxy (HTTP {status})"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        handler.send_response_only(status)
        handler.send_header("Content-Type", "application/xml")
        if handler.command == "HEAD":
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _read_chunked(stream: Any) -> bytes:
    """The body of a request sent with ``Transfer-Encoding: chunked``."""
    pieces = []
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(pieces)
        pieces.append(stream.read(size))
        stream.readline()
