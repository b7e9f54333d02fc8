"""A loopback HTTP server for the tests: serves a folder with byte ranges (single and
multipart), as remote ROOT files need, and accepts absolute request URIs (ROOT sends them)."""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def translate_path(self, path: str) -> str:
        return super().translate_path(urllib.parse.urlsplit(path).path if "://" in path else path)

    def send_head(self):  # type: ignore[no-untyped-def]
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not header or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        chunks = []
        with open(path, "rb") as f:
            for part in header.split("=", 1)[1].split(","):
                first, _, last = part.strip().partition("-")
                start, stop = int(first), min(int(last) if last else size - 1, size - 1)
                f.seek(start)
                chunks.append((start, stop, f.read(stop - start + 1)))
        self.send_response(206)
        if len(chunks) == 1:
            start, stop, body = chunks[0]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        else:
            boundary = "fw-ranges"
            body = (
                b"".join(
                    f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{size}"
                    f"\r\n\r\n".encode()
                    + data
                    for a, b, data in chunks
                )
                + f"\r\n--{boundary}--\r\n".encode()
            )
            self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` on a free loopback port from another process (ROOT holds the Python
    interpreter lock while it reads, so a server thread of this process would never answer)."""
    process = subprocess.Popen([sys.executable, __file__, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout:
            process.stdout.close()


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=sys.argv[1]))
    print(server.server_address[1], flush=True)
    server.serve_forever()
