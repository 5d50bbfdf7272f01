"""Fixtures: the demo repository (built once with the real git/dvc/gto), servers, GraphQL calls."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PEDIGREE_BIN", str(ROOT / ".build/debug/pedigree"))
VENV_BIN = ROOT / ".venv/bin"
ENV = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "GTO_NO_ANALYTICS": "1"}


def run(*args, cwd=None, check=True):
    return subprocess.run(args, cwd=cwd, env=ENV, check=check, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def demo():
    """The demo repository, cached in .demo-test/ between runs (rebuilt if the script changed)."""
    folder = ROOT / ".demo-test"
    stamp = folder / "script.sha"
    digest = run("sha256sum", str(ROOT / "script/demo-repo"), *sorted(str(p) for p in (ROOT / "script/demo").glob("*.py"))).encode()
    import hashlib
    want = hashlib.sha256(digest).hexdigest()
    repo = folder / "repo"
    if not (stamp.exists() and stamp.read_text() == want and repo.exists()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        subprocess.run([str(ROOT / "script/demo-repo"), str(repo)], env=ENV, check=True, capture_output=True)
        stamp.write_text(want)
    return repo


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, repo, *extra):
        self.repo = repo
        self.cache = tempfile.mkdtemp(prefix="pedigree-cache-")
        self.log = open(Path(self.cache) / "server.log", "w")
        self.launch(*extra)

    def launch(self, *extra):
        """Starts `pedigree serve` on a free port over this server's cache and waits until ready."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [BIN, "serve", "--repo", str(self.repo), "--cache", self.cache, "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("server exited: " + Path(self.log.name).read_text())
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def gql(self, query, variables=None, status=200):
        response = requests.post(self.url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        assert response.status_code == status, response.text
        return response.json()

    def data(self, query, variables=None):
        body = self.gql(query, variables)
        assert "errors" not in body, body
        return body["data"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a drain that does not end is a failure of its own test
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.cache, ignore_errors=True)


@pytest.fixture(scope="session")
def server(demo):
    s = Server(demo)
    yield s
    s.stop()


@pytest.fixture
def make_server():
    started = []

    def start(repo, *extra):
        s = Server(repo, *extra)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def error_codes(body):
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def md5_file(path):
    import hashlib
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pedigree(*args, check=True, timeout=300, env=None):
    """Runs the CLI; returns the CompletedProcess (stdout, stderr, returncode)."""
    result = subprocess.run([BIN, *args], env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"pedigree {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def clone_with_remote(source, target, remote_name, url, **options):
    """A clone of `source` whose `.dvc/config.local` makes `remote_name` (at `url`) the default
    remote, as a user would with `dvc remote add --local -d`. config.local applies to every commit."""
    run("git", "clone", "-q", str(source), str(target))
    run("dvc", "remote", "add", "--local", "-d", remote_name, url, cwd=target)
    for key, value in options.items():
        run("dvc", "remote", "modify", "--local", remote_name, key, value, cwd=target)
    return target


class ObjectServer:
    """A loopback HTTP server over a DVC remote folder that counts requests per path and injects
    faults: `fail[path] = [status, …]` answers those statuses first; `corrupt` flips a byte of
    every body; `rate` caps bytes per second (to kill a client mid-download)."""

    def __init__(self, root):
        import http.server
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

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def object_requests(self):
        """Requests per object path (files/md5/…)."""
        with self.lock:
            return {p: n for p, n in self.counts.items() if p.startswith("files/")}

    def stop(self):
        """Stops listening and drops open keep-alive connections: the remote is really gone."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def object_server():
    started = []

    def start(root):
        s = ObjectServer(root)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()
