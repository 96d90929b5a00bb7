# SPDX-License-Identifier: GPL-2.0-or-later
"""A model catalogue served from 127.0.0.1 inside a test, with the failures a download meets.

``ModelServer`` serves ``/models.json`` and the files of one catalogue entry (relative
URLs, as the shipped catalogue has) from memory. Per file a behaviour can be chosen:
``ok``, ``missing`` (404), ``drop`` (announces the full length, sends half, closes the
connection), ``corrupt`` (right size, one byte changed) and ``slow`` (small chunks with
pauses, so a cancel lands during the transfer).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def catalogue_json(name: str, files: dict[str, bytes], kinds: dict[str, str]) -> bytes:
    """A one-entry catalogue listing ``files`` (file name -> content) with relative URLs."""
    return json.dumps({
        "format": "dubai-segmenter-catalogue",
        "format_version": 1,
        "models": [{
            "name": name, "version": "1", "description": f"{name} for a test",
            "classes": ["Building", "Land (unpaved area)", "Road", "Vegetation", "Water", "Unlabeled"],
            "tile_size": 64, "resolution": None, "licence": "CC0-1.0",
            "metrics": {"pixel_accuracy": 0.9, "mean_iou": 0.8},
            "files": [
                {"kind": kinds[file_name], "file": file_name, "url": f"files/{file_name}", "size": len(content),
                 "sha256": hashlib.sha256(content).hexdigest()}
                for file_name, content in files.items()
            ],
        }],
    }).encode()


class ModelServer:
    """Context manager: ``with ModelServer(name, files, kinds) as server: server.url``."""

    def __init__(self, name: str, files: dict[str, bytes], kinds: dict[str, str]) -> None:
        self.files = dict(files)
        self.catalogue = catalogue_json(name, files, kinds)
        self.behaviour: dict[str, str] = {}  # file name -> ok | missing | drop | corrupt | slow
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path == "/models.json":
                    return self._send(server.catalogue)
                name = self.path.rsplit("/", 1)[-1]
                behaviour = server.behaviour.get(name, "ok")
                if not self.path.startswith("/files/") or name not in server.files or behaviour == "missing":
                    self.send_error(404, "Not Found")
                    return
                content = server.files[name]
                if behaviour == "corrupt":
                    content = bytes([content[0] ^ 0xFF]) + content[1:]
                if behaviour == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(content, slow=behaviour == "slow")

            def _send(self, content: bytes, slow: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                step = 4096 if slow else len(content)
                try:
                    for start in range(0, len(content), step):
                        self.wfile.write(content[start:start + step])
                        self.wfile.flush()
                        if slow:
                            time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):  # the client cancelled
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/models.json"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
