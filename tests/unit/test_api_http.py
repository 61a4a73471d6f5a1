"""The API's HTTP edge with real sockets on loopback (issue 13, items 7 and 8): malformed lengths, short
bodies and unsupported methods answer JSON at once instead of hanging or answering HTML, and 64
concurrent clients opening new connections are all served (the stdlib's listen backlog of 5 reset them)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from upriver.http.server import ApiServer


class _NoReader:
    pass


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    api = ApiServer(_NoReader(), "127.0.0.1", 0, read_timeout_s=1.0).start()  # type: ignore[arg-type]
    yield api
    api.stop()


def raw(api: ApiServer, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
                if len(body) >= int(headers.get("Content-Length", "0")):
                    return int(head.split()[1]), headers, body
    raise AssertionError(f"no complete answer: {data!r}")


def post(length: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    return (f"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body  # fmt: skip


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_malformed_content_length_is_refused_in_json(server: ApiServer, length: str) -> None:
    status, headers, body = raw(server, post(length, b"{}"))
    assert status == 400 and "Content-Length" in json.loads(body)["error"]
    assert headers["Content-Type"] == "application/json" and headers.get("Connection") == "close"


def test_a_body_shorter_than_its_length_is_let_go_after_the_read_timeout(server: ApiServer) -> None:
    started = time.monotonic()
    status, _, body = raw(server, post("100", b'{"a"'))
    assert status == 408 and "did not arrive" in json.loads(body)["error"]
    assert time.monotonic() - started < 5
    assert raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200  # the server still answers


def test_a_body_that_is_not_json_by_its_type_is_refused(server: ApiServer) -> None:
    status, _, body = raw(server, post("2", b"{}", "text/plain"))
    assert status == 415 and "application/json" in json.loads(body)["error"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_answer_405_in_json(server: ApiServer, method: str) -> None:
    status, headers, body = raw(
        server, f"{method} /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert status == 405 and headers["Allow"] == "GET, POST" and "not allowed" in json.loads(body)["error"]
    status, headers, body = raw(server, b"HEAD /api/v1/lineage HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and body == b""


def test_the_stdlibs_own_refusals_are_json(server: ApiServer) -> None:
    status, headers, body = raw(server, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and headers["Content-Type"] == "application/json" and json.loads(body)["error"]
    huge = "X-Big: " + "y" * 70_000
    status, headers, body = raw(server, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{huge}\r\n\r\n".encode())
    assert status == 431 and json.loads(body)["error"]


def test_64_concurrent_clients_on_new_connections_are_all_served(server: ApiServer) -> None:
    """Every connection is accepted at once: with a full listen backlog the kernel drops the SYN (the client
    retries after 1 s) or resets it, so neither an error nor a connect of 1 s or more may happen."""
    host, port = server.url.removeprefix("http://").split(":")
    errors: list[Any] = []
    connects: list[float] = []
    start = threading.Barrier(64)

    def client() -> None:
        start.wait()
        for _ in range(10):
            try:
                began = time.monotonic()
                with socket.create_connection((host, int(port)), timeout=10) as sock:
                    connects.append(time.monotonic() - began)
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                    assert answer.startswith(b"HTTP/1.1 200"), answer
            except (OSError, AssertionError) as exc:  # a reset, a refusal, a wrong answer
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(connects) == 640
    assert max(connects) < 1.0, f"{sum(c >= 1.0 for c in connects)} connects waited for a SYN retry"
