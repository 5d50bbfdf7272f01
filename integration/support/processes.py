"""Every long-running program the tests start is a `Program`: started with its log, waited for
until `ready`, stopped one way (SIGTERM, then SIGKILL past a timeout), its log added to the
run's secret scan. `Server` is `pedigree serve` over a test repository; `Moto` is moto's S3."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from .secrets import keep_log
from .tools import BIN, ENV, VENV_BIN, free_port


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
    `ready_timeout` s); on `stop` its log joins the run's secret scan (unless `scan` is off).
    `wrap` runs it elsewhere (`ip netns exec NS`)."""

    ready_timeout = 120
    stop_timeout = 20

    def __init__(self, args, log, ready=None, env=None, wrap=(), scan=True):
        self.args = [*wrap, *map(str, args)]
        self.log_path, self.ready, self.env, self.scan = Path(log), ready, env, scan
        self.start()

    def start(self):
        previous = getattr(self, "log", None)
        if previous is not None and not previous.closed:
            previous.close()
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env or ENV)
        deadline = time.time() + self.ready_timeout
        while self.ready and not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited: " + self.log_path.read_text(errors="replace")[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"{self.args} did not become ready")
            time.sleep(0.1)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def end(self):
        """SIGTERM, then SIGKILL if it has not exited within `stop_timeout` s (a drain that does
        not end is a failure of its own test)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def stop(self):
        self.end()
        if not self.log.closed:
            self.log.close()
        if self.scan:
            keep_log(self.log_path)


class Server(Program):
    """`pedigree serve --repo REPO` on a free port over a cache of its own (or `cache`), logging to
    `log` (default: server.log in the cache); `gql`/`data` post GraphQL to it."""

    ready_timeout = 60
    stop_timeout = 15

    def __init__(self, repo, *extra, env=None, cache=None, log=None):
        self.repo = repo
        self.owns_cache = cache is None
        self.cache = str(cache) if cache else tempfile.mkdtemp(prefix="pedigree-cache-")
        self.extra = extra
        log = Path(log) if log else Path(self.cache) / "server.log"
        log.write_text("")
        super().__init__([], log, env={**os.environ, **(env or {})})

    def start(self):
        """Starts `pedigree serve` on a free port over this server's cache and waits until ready."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [BIN, "serve", "--repo", str(self.repo), "--cache", self.cache, "--port", str(self.port), *self.extra]
        self.ready = answers(self.url)
        super().start()

    def launch(self, *extra):
        self.extra = extra
        self.start()

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
        super().stop()
        if self.owns_cache:
            shutil.rmtree(self.cache, ignore_errors=True)


class Moto(Program):
    """A moto S3 server with authentication on (signatures are checked), an IAM user allowed
    everything, and a bucket `models`; `wrap` runs it elsewhere (`ip netns exec NS`).
    `facts`: url, key, secret and a boto3 client. `authenticated=False` leaves authentication off
    (moto checks no presigned URL then, and the LFS server behind it hands out presigned URLs)."""

    ready_timeout = 30
    stop_timeout = 10

    def __init__(self, host, port, log, wrap=(), authenticated=True):
        import boto3
        env = {**ENV, "AWS_ACCESS_KEY_ID": "bootstrap", "AWS_SECRET_ACCESS_KEY": "bootstrap"}
        if authenticated:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        Path(log).write_text("")

        def listening():
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                return False
        super().__init__([VENV_BIN / "moto_server", "-H", host, "-p", port], log, ready=listening, env=env, wrap=wrap, scan=False)
        url = f"http://{host}:{port}"
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="ci")
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        iam.put_user_policy(UserName="ci", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        s3.create_bucket(Bucket="models")
        self.facts = {"url": url, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "s3": s3}
