"""POST /v1/migrations refuses before reading: the key and role (401/403), the declared or the
streamed body size (413), and an archive's unpacked size and entry count (413) before any of
its files is read. No Neo4j: every request here is refused before the runner is used."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from api.main import create_app
from core.settings import Settings
from graph.driver import make_driver

ADMIN_KEY = "admin-" + uuid.uuid4().hex
READER_KEY = "reader-" + uuid.uuid4().hex
LIMIT = 20_000
BOUNDARY = "kgrtestboundary"
FILE_PART = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
             "filename=\"triples.tsv\"\r\nContent-Type: text/plain\r\n\r\n").encode()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(home=tmp_path, bolt_port=1, api_keys=f"admin:{ADMIN_KEY},"
                        f"reader:{READER_KEY}", max_upload_bytes=LIMIT, max_upload_files=5)
    driver = make_driver(settings)  # never connects: nothing here reaches Neo4j
    yield create_app(settings, driver)
    driver.close()


class Counted:
    """A request body of ``total`` bytes in ``chunk``-byte pieces that counts what was read."""

    def __init__(self, total: int, chunk: int = 1 << 20) -> None:
        self.total, self.chunk, self.read = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        yield FILE_PART
        self.read += len(FILE_PART)
        while self.read < self.total:
            piece = b"a\tr\tb\n" * (self.chunk // 6)
            self.read += len(piece)
            yield piece


def test_unauthenticated_streamed_upload_is_401_before_the_body_is_read(app: FastAPI,
                                                                       tmp_path: Path) -> None:
    body = Counted(200 * 1024 * 1024)  # 200 MB, chunked: no Content-Length
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with TestClient(app) as client:
        started = time.perf_counter()
        response = client.post("/v1/migrations", content=iter(body), headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 401, response.text
        assert "API key" in response.json()["error"]["message"]
        assert body.read == 0 and elapsed < 2.0

        reader = Counted(200 * 1024 * 1024)
        response = client.post("/v1/migrations", content=iter(reader),
                               headers={**headers, "X-API-Key": READER_KEY})
        assert response.status_code == 403 and reader.read == 0
        wrong = Counted(200 * 1024 * 1024)
        response = client.post("/v1/migrations", content=iter(wrong),
                               headers={**headers, "X-API-Key": "not-a-key"})
        assert response.status_code == 401 and wrong.read == 0
    assert not (tmp_path / "migrations").exists()


def test_declared_length_over_the_limit_is_413_unread(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.post(
            "/v1/migrations", content=b"x" * (LIMIT + 1),
            headers={"X-API-Key": ADMIN_KEY,
                     "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert response.status_code == 413
    assert "limit of 20,000 bytes" in response.json()["error"]["message"]


def test_chunked_body_over_the_limit_is_413_while_it_streams(app: FastAPI) -> None:
    """Straight through ASGI, so that the receive calls count exactly what the app read."""
    chunk = 4096
    body = Counted(200 * 1024 * 1024, chunk=chunk)
    pieces = iter(body)
    sent: list[Message] = []

    async def receive() -> Message:
        piece = next(pieces, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": piece, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/migrations",
             "raw_path": b"/v1/migrations", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "headers": [(b"x-api-key", ADMIN_KEY.encode()),
                         (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]  # one answer: the app's own is dropped
    assert body.read <= LIMIT + 2 * chunk
    assert b"payload_too_large" in b"".join(m.get("body", b"") for m in sent)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archive_bombs_and_too_many_entries_are_413(app: FastAPI) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    bomb = {"manifest.yaml": b"domain: x\n", "triples.tsv": b"\0" * (5 * 1024 * 1024)}
    many = {f"f{i}.tsv": b"a\tr\tb\n" for i in range(6)}
    with TestClient(app) as client:
        for name, data, words in [("bomb.zip", _zip(bomb), "unpacks to 5,242,890 bytes"),
                                  ("bomb.tar.gz", _tar_gz(bomb), "over the limit"),
                                  ("many.zip", _zip(many), "more than 5 entries"),
                                  ("many.tgz", _tar_gz(many), "more than 5 entries")]:
            assert len(data) < LIMIT  # small on the wire
            response = client.post("/v1/migrations", headers=headers,
                                   files=[("files", (name, data, "application/octet-stream"))])
            assert response.status_code == 413, (name, response.text)
            assert words in response.json()["error"]["message"], name
        response = client.post("/v1/migrations", headers=headers,
                               files=[("files", ("broken.zip", b"PK\x03\x04 nope", "x"))])
        assert response.status_code == 422
        assert "not a readable archive" in response.json()["error"]["message"]
