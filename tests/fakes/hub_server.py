"""A stand-in for the Hugging Face Hub on 127.0.0.1, serving repos from folders.

Just what ``huggingface_hub`` asks for when canirun reads headers: the model
info (``/api/models/ORG/NAME``, with file sizes), HEAD and ranged GET of
``/ORG/NAME/resolve/REV/FILE``, and the error codes it maps to its exceptions.
Every request is recorded, so tests can check that no weights were read.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHA = "a" * 40


def _handler(root: Path, log: list[tuple[str, str, str | None]]) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            log.append((self.command, self.path, self.headers.get("Range")))

        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _file(self) -> Path | None:
            path = self.path.split("?")[0].lstrip("/")
            repo, sep, rest = path.partition("/resolve/")
            if not sep:
                return None
            name = rest.partition("/")[2]
            f = root / repo / name
            return f if f.is_file() else None

        def _missing(self, code: str = "EntryNotFound") -> None:
            self._send(404, headers={"X-Error-Code": code})

        def do_HEAD(self) -> None:
            f = self._file()
            if f is None:
                return self._missing()
            self.send_response(200)
            for k, v in self._meta(f).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(f.stat().st_size))
            self.end_headers()
            return None

        def _meta(self, f: Path) -> dict[str, str]:
            return {"X-Repo-Commit": SHA, "ETag": f'"{f.name}"', "Accept-Ranges": "bytes"}

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.startswith("/api/models/"):
                return self._info("/".join(path.removeprefix("/api/models/").split("/")[:2]))
            f = self._file()
            if f is None:
                return self._missing()
            size = f.stat().st_size
            start, end = 0, size - 1
            ranged = self.headers.get("Range")
            if ranged:
                a, _, b = ranged.removeprefix("bytes=").partition("-")
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            with f.open("rb") as fh:
                fh.seek(start)
                body = fh.read(end - start + 1)
            extra = {"Content-Range": f"bytes {start}-{end}/{size}"} if ranged else {}
            return self._send(206 if ranged else 200, body, {**self._meta(f), **extra})

        def _info(self, repo: str) -> None:
            folder = root / repo
            if not folder.is_dir():
                return self._missing("RepoNotFound")
            if (folder / ".gated").exists():  # what the Hub answers before a licence is accepted
                return self._send(403, headers={"X-Error-Code": "GatedRepo"})
            siblings = [
                {"rfilename": p.name, "size": p.stat().st_size} for p in sorted(folder.iterdir())
            ]
            body = json.dumps({"id": repo, "sha": SHA, "siblings": siblings}).encode()
            return self._send(200, body, {"Content-Type": "application/json"})

    return Handler


@contextmanager
def hub_server(root: Path) -> Iterator[tuple[str, list[tuple[str, str, str | None]]]]:
    """(endpoint URL, request log) of a Hub stand-in serving ``root/ORG/NAME/...``."""
    log: list[tuple[str, str, str | None]] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, log))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
