"""Loopback HTTP servers the tests stand up: a DVC remote over HTTP with injected faults
(`ObjectServer`), Git's smart HTTP through the real `git http-backend` (`GitHTTPServer`), and a
`Listener` that records what reaches it."""
import base64
import http.server
import os
import socket
import subprocess
import threading
import time
from pathlib import Path



class LoopbackHTTPServer:
    """A threading HTTP server on a free loopback port (`url`, `port`) serving a handler class
    until `stop`: what every test server here is built on."""

    def serve(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

class ObjectServer(LoopbackHTTPServer):
    """A loopback HTTP server over a DVC remote folder that counts requests per path and injects
    faults: `fail[path] = [status, …]` answers those statuses first; `corrupt` flips a byte of
    every body; `rate` caps bytes per second (to kill a client mid-download)."""

    def __init__(self, root):
        self.root = Path(root)
        self.counts = {}
        self.fail = {}
        self.corrupt = False
        self.rate = None
        self.sent = 0
        self.connections = []
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections.append(self.connection)

            def do_GET(self):
                path = self.path.lstrip("/")
                with server.lock:
                    server.counts[path] = server.counts.get(path, 0) + 1
                    planned = server.fail.get(path) or []
                    status = planned.pop(0) if planned else None
                if status:
                    body = b"injected failure"
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                file = server.root / path
                if not file.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = bytearray(file.read_bytes())
                if server.corrupt and data:
                    data[len(data) // 2] ^= 0xFF
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = 64 * 1024
                try:
                    for offset in range(0, len(data), step):
                        self.wfile.write(data[offset:offset + step])
                        with server.lock:
                            server.sent += min(step, len(data) - offset)
                        if server.rate:
                            time.sleep(step / server.rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.serve(Handler)

    def object_requests(self):
        """Requests per object path (files/md5/…)."""
        with self.lock:
            return {p: n for p, n in self.counts.items() if p.startswith("files/")}

    def stop(self):
        """Stops listening and drops open keep-alive connections: the remote is really gone."""
        super().stop()
        with self.lock:
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class GitHTTPServer(LoopbackHTTPServer):
    """Git's smart HTTP protocol on 127.0.0.1 through the real `git http-backend` (CGI), serving
    the bare repositories under `root`; with `user`/`password`, HTTP basic authentication is
    required (401 with a challenge otherwise), as on a Git host."""

    def __init__(self, root, user=None, password=None):
        self.root = Path(root)
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        server = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                server.requests += 1
                if expected and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                environment = {**os.environ, "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                               "REMOTE_USER": user or "", "REMOTE_ADDR": "127.0.0.1"}
                if self.headers.get("Content-Encoding"):
                    environment["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                out = subprocess.run(["git", "http-backend"], input=body, env=environment, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = handle_one
            do_POST = handle_one

        self.serve(Handler)


class Listener(LoopbackHTTPServer):
    """A loopback HTTP server that records every request (method, path, lower-cased headers) and answers
    `status` (404 by default), or redirects to `redirect` + the path."""

    def __init__(self, status=404, redirect=None):
        self.requests = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                listener.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(302 if redirect else status)
                if redirect:
                    self.send_header("Location", redirect + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

        self.serve(Handler)
