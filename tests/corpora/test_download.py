"""asr.corpora.download against a loopback HTTP server that can drop connections and honour Range."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from asr.corpora import download
from asr.corpora.download import DownloadError, download_file, extract_tar

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class _Server:
    """Serves PAYLOAD at /f. ``drop_after``: bytes sent before closing on the first request;
    ``honour_range``: answer ``Range: bytes=N-`` with 206. Records each request's Range header."""

    def __init__(self, *, drop_after: int | None = None, honour_range: bool = True):
        self.drop_after, self.honour_range = drop_after, honour_range
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                start = int(rng[len("bytes="):-1]) if rng and server.honour_range else 0
                if start >= len(PAYLOAD) and rng:
                    self.send_response(416)
                    self.end_headers()
                    return
                body = PAYLOAD[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_after is not None and len(server.ranges) == 1:
                    self.wfile.write(body[:server.drop_after])
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/f"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(monkeypatch):
    monkeypatch.setattr(download, "_RETRY_WAIT_S", 0.0)
    servers = []

    def start(**kwargs) -> _Server:
        servers.append(_Server(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_dropped_connection_resumes_with_a_range_request(serve, tmp_path):
    server = serve(drop_after=40_000)
    dest = download_file(server.url, tmp_path / "f.bin", retries=2, timeout_s=10)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [None, "bytes=40000-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_an_interrupted_run_leaves_a_part_file_the_next_run_resumes(serve, tmp_path):
    server = serve(drop_after=30_000)
    with pytest.raises(DownloadError, match="could not download"):
        download_file(server.url, tmp_path / "f.bin", retries=1, timeout_s=10)
    assert not (tmp_path / "f.bin").exists() and (tmp_path / "f.bin.part").stat().st_size == 30_000

    assert download_file(server.url, tmp_path / "f.bin", retries=1, timeout_s=10).read_bytes() == PAYLOAD
    assert server.ranges[-1] == "bytes=30000-"


def test_a_server_that_ignores_range_is_read_from_the_start(serve, tmp_path):
    server = serve(drop_after=30_000, honour_range=False)
    assert download_file(server.url, tmp_path / "f.bin", retries=2, timeout_s=10).read_bytes() == PAYLOAD
    assert server.ranges == [None, "bytes=30000-"]  # asked to resume, got the whole file, wrote it anew


def test_stale_part_file_past_the_end_starts_over(serve, tmp_path):
    server = serve()
    (tmp_path / "f.bin.part").write_bytes(b"x" * (len(PAYLOAD) + 5))
    assert download_file(server.url, tmp_path / "f.bin", retries=1, timeout_s=10).read_bytes() == PAYLOAD
    assert server.ranges == [f"bytes={len(PAYLOAD) + 5}-", None]


def test_checksum_is_verified_and_a_finished_file_is_not_fetched_again(serve, tmp_path):
    server = serve()
    good = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download_file(server.url, tmp_path / "f.bin", sha256="0" * 64, retries=1, timeout_s=10)
    assert list(tmp_path.iterdir()) == []  # nothing kept: a rerun starts over

    assert download_file(server.url, tmp_path / "f.bin", sha256=good.upper(), retries=1).read_bytes() == PAYLOAD
    requests = len(server.ranges)
    assert download_file(server.url, tmp_path / "f.bin", sha256=good, retries=1).read_bytes() == PAYLOAD
    assert len(server.ranges) == requests  # complete and verified: no request

    (tmp_path / "f.bin").write_bytes(b"something else")
    assert download_file(server.url, tmp_path / "f.bin", sha256=good, retries=1).read_bytes() == PAYLOAD


def test_extract_tar_refuses_escaping_members_before_writing_anything(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("ok/file.txt", "../escape.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match=r"refusing to extract archive member '\.\./escape\.txt': path leaves"):
        extract_tar(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "escape.txt").exists()

    (tmp_path / "junk.tar").write_bytes(b"not a tar file")
    with pytest.raises(DownloadError, match="junk.tar: cannot extract"):
        extract_tar(tmp_path / "junk.tar", tmp_path / "out")
