"""Fixtures: the demo repository (built once with the real git/dvc/gto), servers, GraphQL calls."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
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
    def __init__(self, repo):
        self.cache = tempfile.mkdtemp(prefix="pedigree-cache-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(self.cache) / "server.log", "w")
        self.process = subprocess.Popen(
            [BIN, "serve", "--repo", str(repo), "--cache", self.cache, "--port", str(self.port)],
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

    def start(repo):
        s = Server(repo)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def error_codes(body):
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
