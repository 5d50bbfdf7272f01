"""Fixtures: the demo repository (built once with the real git/dvc/gto), servers, GraphQL calls."""
import json
import os
import shutil
import signal
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


# Every secret a test configures (API keys, passwords, S3 secrets), and every server log of the
# run: at the end of the session no log may contain any of them (pytest_sessionfinish).
SECRETS = set()
RUN_LOG = Path(tempfile.gettempdir()) / f"pedigree-test-run-{os.getpid()}.log"


def secret(value):
    """Registers a value the logs of the whole run must never contain; returns it."""
    SECRETS.add(value)
    return value


def pytest_sessionfinish(session, exitstatus):
    if not RUN_LOG.exists():
        return
    text = RUN_LOG.read_text(errors="replace")
    leaked = sorted(s for s in SECRETS if s and s in text)
    print(f"\nsecret scan: {len(SECRETS)} secrets over {len(text)} bytes of server logs from this run: {len(leaked)} found")
    RUN_LOG.unlink()
    if leaked:
        print("secrets found in server logs: " + ", ".join(s[:6] + "…" for s in leaked))
        session.exitstatus = 1


def wait_until_ready(process, url, log, what="server"):
    """Waits up to 60 s for `url`/readyz to answer 200; raises with the log if the process exits."""
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: " + Path(log).read_text())
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready")


def answers(url, path="/readyz", headers=None):
    """A readiness check: whether `url + path` answers 200 now."""
    def check():
        try:
            return requests.get(url + path, timeout=1, headers=headers or {}).status_code == 200
        except requests.RequestException:
            return False
    return check


class Program:
    """A long-running program with a log, restartable; `ready` is waited for at each start (up to
    120 s); on `stop` its log joins the run's secret scan. `wrap` runs it elsewhere
    (`ip netns exec NS`)."""

    def __init__(self, args, log, ready=None, env=None, wrap=()):
        self.args = [*wrap, *map(str, args)]
        self.log_path, self.ready, self.env = log, ready, env
        self.start()

    def start(self):
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env or ENV)
        deadline = time.time() + 120
        while self.ready and not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited: " + Path(self.log_path).read_text(errors="replace")[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"{self.args} did not become ready")
            time.sleep(0.1)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if not self.log.closed:
            self.log.close()
        with open(RUN_LOG, "a", errors="replace") as run_log:
            run_log.write(Path(self.log_path).read_text(errors="replace"))


class Server:
    def __init__(self, repo, *extra, env=None):
        self.repo = repo
        self.env = env
        self.cache = tempfile.mkdtemp(prefix="pedigree-cache-")
        self.log = open(Path(self.cache) / "server.log", "w")
        self.launch(*extra)

    def launch(self, *extra):
        """Starts `pedigree serve` on a free port over this server's cache and waits until ready."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [BIN, "serve", "--repo", str(self.repo), "--cache", self.cache, "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})})
        wait_until_ready(self.process, self.url, self.log.name)

    def restart(self, *extra, kill=False):
        """Stops the process (SIGTERM, or SIGKILL) and starts it again over the same cache."""
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=15)
        self.launch(*extra)

    def gql(self, query, variables=None, status=200):
        response = requests.post(self.url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        assert response.status_code == status, response.text
        return response.json()

    def data(self, query, variables=None):
        body = self.gql(query, variables)
        assert "errors" not in body, body
        return body["data"]

    def stop(self):
        if self.log.closed:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a drain that does not end is a failure of its own test
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
        with open(RUN_LOG, "a", errors="replace") as run_log:
            run_log.write(Path(self.log.name).read_text(errors="replace"))
        shutil.rmtree(self.cache, ignore_errors=True)


@pytest.fixture(scope="session")
def server(demo):
    s = Server(demo)
    yield s
    s.stop()


@pytest.fixture
def make_server():
    started = []

    def start(repo, *extra, env=None):
        s = Server(repo, *extra, env=env)
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


class Moto:
    """A moto S3 server with authentication on (signatures are checked), an IAM user allowed
    everything, and a bucket `models`; `wrap` runs it elsewhere (`ip netns exec NS`).
    `facts`: url, key, secret and a boto3 client."""

    def __init__(self, host, port, log, wrap=()):
        import boto3
        self.log = open(log, "w")
        env = {**ENV, "INITIAL_NO_AUTH_ACTION_COUNT": "3", "AWS_ACCESS_KEY_ID": "bootstrap", "AWS_SECRET_ACCESS_KEY": "bootstrap"}
        self.process = subprocess.Popen([*wrap, str(VENV_BIN / "moto_server"), "-H", host, "-p", str(port)], env=env, stdout=self.log,
                                        stderr=self.log)
        url = f"http://{host}:{port}"
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline and self.process.poll() is None, "moto did not start"
                time.sleep(0.1)
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="ci")
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        iam.put_user_policy(UserName="ci", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        s3.create_bucket(Bucket="models")
        self.facts = {"url": url, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "s3": s3}

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


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


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A real PostgreSQL server from Debian's packages on 127.0.0.1 (script/bootstrap installs
    them), in a throw-away cluster with TLS on (a self-signed certificate made here); yields a
    function that makes a fresh database: its URL, or with `tls=True` the URL of a role that may
    connect only over TLS with a password (scram-sha-256), verified against the certificate, and
    the file holding that password."""
    import glob
    import pwd
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql): the PostgreSQL ledger tests did not run")
    bin_dir = Path(binaries[-1]).parent
    # Not under pytest's 0700 tmp folders: the postgres user must be able to reach it.
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="pedigree-pg-"))
    user = pwd.getpwnam("postgres") if os.getuid() == 0 else None
    port = free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", root / "server.key", "-out", root / "server.crt"],
                   check=True, capture_output=True)
    os.chmod(root / "server.key", 0o600)
    if user:
        for path in (root, root / "server.key", root / "server.crt"):
            os.chown(path, user.pw_uid, user.pw_gid)

    def as_postgres(*command):
        args = [str(a) for a in command]
        if user:
            args = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in args)]
        subprocess.run(args, check=True, capture_output=True)
    as_postgres(bin_dir / "initdb", "-D", root / "data", "-U", "pedigree", "--auth=trust", "-E", "UTF8")
    hba = root / "data" / "pg_hba.conf"
    hba.write_text("hostssl all tlsuser 127.0.0.1/32 scram-sha-256\nhost all tlsuser 0.0.0.0/0 reject\n"
                   "host all pedigree 127.0.0.1/32 trust\nlocal all all trust\n")
    as_postgres(bin_dir / "pg_ctl", "-D", root / "data", "-l", root / "log", "-w", "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on "
                f"-c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key", "start")
    password = secret("pg-tls-" + os.urandom(8).hex())
    psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "pedigree", "-d", "postgres", "-c"]
    subprocess.run([*psql, f"CREATE ROLE tlsuser LOGIN PASSWORD '{password}'"], check=True, capture_output=True)
    password_file = root / "tls-password"
    password_file.write_text(password + "\n")
    counter = iter(range(1000))

    def database(tls=False):
        name = f"ledger_{next(counter)}"
        subprocess.run([*psql, f"CREATE DATABASE {name}" + (" OWNER tlsuser" if tls else "")], check=True, capture_output=True)
        if tls:
            return (f"postgres://tlsuser@127.0.0.1:{port}/{name}?sslmode=verify-full&sslrootcert={root}/server.crt", str(password_file))
        return f"postgres://pedigree@127.0.0.1:{port}/{name}"
    database.password = password
    yield database
    as_postgres(bin_dir / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop")
    import shutil
    shutil.rmtree(root, ignore_errors=True)


class GitHTTPServer:
    """Git's smart HTTP protocol on 127.0.0.1 through the real `git http-backend` (CGI), serving
    the bare repositories under `root`; with `user`/`password`, HTTP basic authentication is
    required (401 with a challenge otherwise), as on a Git host."""

    def __init__(self, root, user=None, password=None):
        import base64
        import http.server
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

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Listener:
    """A loopback HTTP server that records every request (method, path, lower-cased headers) and answers
    `status` (404 by default), or redirects to `redirect` + the path."""

    def __init__(self, status=404, redirect=None):
        import http.server
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

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
