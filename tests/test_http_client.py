"""chalicelib.http_client: response framing (RFC 9112 §6.3) and every way an answer can be bad.

A raw socket server answers each request with scripted bytes, so the client sees exactly what a
server, a proxy or a broken network could send.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.http_client import MAX_HEADERS, MAX_LINE, Connection, HttpError

RESET = b"<reset>"  # as a script entry: reset the connection instead of answering


class RawServer:
    """Accepts connections; reads one request head + body per answer; writes the next script
    entry. ``None`` closes the connection: in place of an answer, or right after the one before
    it."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while self.answers:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length:")
                )
                self.requests.append(head + reader.read(length))
                answer = self.answers.pop(0)
                if answer is RESET:
                    # SO_LINGER 0: the close sends a reset instead of a FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if answer is None:
                    return
                conn.sendall(answer)
                if self.answers and self.answers[0] is None:
                    self.answers.pop(0)
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(*answers: bytes | None) -> tuple[RawServer, Connection]:
        server = RawServer(list(answers))
        servers.append(server)
        return server, Connection("127.0.0.1", server.port, timeout=2.0)

    yield start
    for server in servers:
        server.close()


def ok(body: bytes = b'{"a":1}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def post(conn: Connection) -> Any:
    return conn.post("/", {"host": "x", "content-type": "application/x-amz-json-1.0"}, b"{}")


def test_request_is_a_post_with_its_length_and_headers(serve: Any) -> None:
    server, conn = serve(ok())
    post(conn)
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST / HTTP/1.1"
    assert b"content-length: 2" in lines
    assert b"host: x" in lines
    assert body == b"{}"


def test_content_length_body_and_headers_are_read(serve: Any) -> None:
    _, conn = serve(ok(extra=b"X-Amzn-ErrorType: Thing\r\nx-a: 1\r\nX-A: 2\r\n"))
    answer = post(conn)
    assert (answer.status, answer.body) == (200, b'{"a":1}')
    assert answer.headers["x-amzn-errortype"] == "Thing"
    assert answer.headers["x-a"] == "1, 2"


def test_chunked_body_is_reassembled_and_trailers_skipped(serve: Any) -> None:
    _, conn = serve(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b'3;ext=1\r\n{"a\r\n4\r\n":1}\r\n0\r\nx-trailer: t\r\n\r\n'
    )
    assert post(conn).body == b'{"a":1}'
    assert conn.is_open


def test_interim_answers_are_skipped(serve: Any) -> None:
    _, conn = serve(b"HTTP/1.1 100 Continue\r\n\r\n" + ok())
    assert post(conn).status == 200


def test_body_without_framing_ends_with_the_connection(serve: Any) -> None:
    _, conn = serve(b"HTTP/1.1 500 Oops\r\n\r\nbroken", None)
    answer = post(conn)
    assert (answer.status, answer.body) == (500, b"broken")
    assert not conn.is_open


def test_connection_is_kept_alive_and_reused(serve: Any) -> None:
    server, conn = serve(ok(), ok(b"{}"))
    post(conn)
    assert post(conn).body == b"{}"
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        ok(extra=b"Connection: close\r\n"),
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}",
    ],
)
def test_server_that_closes_makes_the_client_close(serve: Any, answer: bytes) -> None:
    _, conn = serve(answer)
    post(conn)
    assert not conn.is_open


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line"),
        (b"ICY 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status code"),
        (b"HTTP/1.1 20x OK\r\n\r\n", "malformed status code"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nbad name: v\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\n: v\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: \xb2\r\n\r\n", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "connection closed in the body"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", "unsupported transfer coding"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-1\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x1\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nab\r\n", "bad chunk end"),
        (b"HTTP/1.1 200 OK\r\ncontent-le", "connection closed in the header section"),
        (b"HTTP/1.1 200 OK\r\n" + b"a: b\r\n" * (MAX_HEADERS + 1), "too many header fields"),
        (b"HTTP/1.1 200 OK\r\nx: " + b"a" * MAX_LINE + b"\r\n\r\n", "line too long"),
    ],
)
def test_malformed_answers_fail_and_close_the_connection(
    serve: Any, answer: bytes, reason: str
) -> None:
    _, conn = serve(answer, None)
    with pytest.raises(HttpError) as caught:
        post(conn)
    assert caught.value.reason == reason
    assert not caught.value.stale
    assert not conn.is_open


def test_no_answer_on_a_fresh_connection_is_not_stale(serve: Any) -> None:
    _, conn = serve(None)
    with pytest.raises(HttpError) as caught:
        post(conn)
    assert not caught.value.stale  # not safe to send again: it may have been processed


def test_no_answer_on_a_reused_connection_is_stale(serve: Any) -> None:
    _, conn = serve(ok(), b"", None)  # answers, then closes at the next request unanswered
    post(conn)
    with pytest.raises(HttpError) as caught:
        post(conn)
    assert caught.value.stale


def test_reset_on_a_reused_connection_is_stale(serve: Any) -> None:
    _, conn = serve(ok(), RESET)
    post(conn)
    with pytest.raises(HttpError) as caught:
        post(conn)
    assert caught.value.stale
    assert caught.value.reason == "ConnectionResetError"


def test_silent_server_times_out() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        conn = Connection("127.0.0.1", sock.getsockname()[1], timeout=0.2)
        with pytest.raises(HttpError) as caught:
            post(conn)  # accepted by the backlog, never answered
        assert caught.value.reason == "ReadTimeoutError"
    finally:
        sock.close()


def test_refused_connection_names_the_error() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(HttpError) as caught:
        post(Connection("127.0.0.1", port, timeout=1.0))
    assert caught.value.reason == "ConnectionRefusedError"
