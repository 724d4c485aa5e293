"""A minimal HTTP/1.1 client (RFC 9112) for ``chalicelib.aws_lite``: one keep-alive connection.

``http.client`` imports ``email.parser`` (and with it most of the ``email`` package) to parse
response headers: ~15 ms at every cold start, as much as the rest of the authorizer's imports
together (BENCHMARKS.md). AWS's JSON endpoints need a small subset of HTTP/1.1, written here
against ``socket`` and, for ``https``, ``ssl`` (imported only then):

* requests: ``POST`` with ``Content-Length``, never ``Expect: 100-continue`` or chunked bodies;
* responses: a status line, at most ``MAX_HEADERS`` header lines of at most ``MAX_LINE`` bytes,
  then a body framed by ``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the
  connection (RFC 9112 §6.3, in that order), at most ``MAX_BODY`` bytes; interim 1xx answers are
  skipped; a response that says ``Connection: close`` (or is HTTP/1.0) closes the connection.

Anything else (a malformed status line or header, a short body, a bad chunk size, a timeout, a
reset) raises ``HttpError``; callers treat every one as a transport failure and retry.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 64 * 1024 * 1024  # DynamoDB answers up to 16 MB (BatchGetItem, Query)


class HttpError(Exception):
    """A transport failure. ``stale`` means the server closed an idle kept-alive connection
    before answering anything: the request may be sent again on a new connection."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names; repeated fields joined with ", "
        self.body = body


class Connection:
    """One connection to ``host:port``; ``tls`` is an ``ssl.SSLContext`` or None. Not
    thread-safe: ``aws_lite.Client`` serialises its calls."""

    def __init__(self, host: str, port: int, *, tls: Any = None, timeout: float = 2.0) -> None:
        self.host = host
        self.port = port
        self._tls = tls
        self._timeout = timeout
        self._sock: Any = None
        self._reader: Any = None
        self.requests = 0  # answered on this connection (0: a fresh one)

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise HttpError(_reason(exc)) from exc
        sock.settimeout(self._timeout)
        self._sock = sock
        self._reader = sock.makefile("rb")
        self.requests = 0

    def close(self) -> None:
        reader, sock = self._reader, self._sock
        self._reader = self._sock = None
        for thing in (reader, sock):
            if thing is not None:
                with contextlib.suppress(OSError):
                    thing.close()

    def post(self, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Send one request and read its response; the connection stays open if both sides
        allow it. Any failure closes it."""
        if self._sock is None:
            self._open()
        reused = self.requests > 0
        head = [f"POST {target} HTTP/1.1"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"content-length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            try:
                self._sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise HttpError(_reason(exc), stale=reused) from exc
            response, keep = self._read_response(reused)
        except HttpError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise HttpError(_reason(exc)) from exc
        self.requests += 1
        if not keep:
            self.close()
        return response

    # -- reading -------------------------------------------------------------------------------

    def _line(self) -> bytes:
        line: bytes = self._reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HttpError("line too long")
        return line

    def _read_response(self, reused: bool) -> tuple[Response, bool]:
        first = True
        while True:
            try:
                line = self._line()
            except TimeoutError:
                raise  # the server may be working on it: not safe to send again
            except OSError as exc:
                # A reset (or a TLS close) before any byte of the answer: on a kept-alive
                # connection, the idle close of the server, as below.
                raise HttpError(_reason(exc), stale=reused and first) from exc
            if not line:
                # Nothing at all came back: on a kept-alive connection, the server closed it
                # while idle (RFC 9112 §9.3.1 lets a client retry then).
                raise HttpError("connection closed before the response", stale=reused and first)
            first = False
            version, status = _status_line(line)
            headers = self._headers()
            if 100 <= status < 200:
                continue  # interim answer: the final one follows
            break
        keep = version == "HTTP/1.1" and "close" not in _tokens(headers.get("connection", ""))
        if status in (204, 304):
            return Response(status, headers, b""), keep
        encoding = _tokens(headers.get("transfer-encoding", ""))
        if encoding:
            if encoding[-1] != "chunked":
                raise HttpError("unsupported transfer coding")
            return Response(status, headers, self._chunked()), keep
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
                raise HttpError("bad content-length")
            return Response(status, headers, self._exactly(int(length))), keep
        body = self._reader.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise HttpError("body too large")
        return Response(status, headers, body), False  # framed by the close

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return headers
            if not line.endswith(b"\n"):
                raise HttpError("connection closed in the header section")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip() or " " in name:
                raise HttpError("malformed header field")
            key = name.lower()
            text = value.strip(" \t\r\n")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raise HttpError("too many header fields")

    def _exactly(self, size: int) -> bytes:
        data: bytes = self._reader.read(size)
        if len(data) != size:
            raise HttpError("connection closed in the body")
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError("bad chunk size") from None
            if size < 0 or size_text.startswith((b"-", b"+", b"0x", b"0X")):
                raise HttpError("bad chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise HttpError("body too large")
            parts.append(self._exactly(size))
            if self._line() not in (b"\r\n", b"\n"):
                raise HttpError("bad chunk end")
        for _ in range(MAX_HEADERS + 1):  # trailer section, ignored
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line:
                raise HttpError("connection closed in the trailers")
        raise HttpError("too many trailer fields")


def _status_line(line: bytes) -> tuple[str, int]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError("malformed status line")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise HttpError("malformed status code")
    return parts[0], int(code)


def _tokens(value: str) -> list[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return "ReadTimeoutError"
    return type(exc).__name__
