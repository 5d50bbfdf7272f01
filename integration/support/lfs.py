"""A real Git LFS server for the tests: giftless (Datopian's, from PyPI) storing objects in S3
(moto), so a download follows `actions.download.href` to another origin; JWT auth, sent as basic
auth with the user `_jwt` as git-lfs and Pedigree send it. And `lfs_repository`, which builds a
repository whose files the real `git lfs` client pushes there."""
import os
import subprocess
import time
from pathlib import Path

import jwt

from .processes import Program
from .tools import ENV, VENV_BIN, free_port

AUTHOR = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada Lovelace",
          "GIT_COMMITTER_EMAIL": "ada@example.com", "GIT_TERMINAL_PROMPT": "0"}


class Giftless(Program):
    """giftless on a free loopback port over the moto bucket `models` (prefix `lfs`). `token()`
    makes a JWT allowing everything on every repository; `url(org_repo)` is a repository's LFS
    endpoint."""

    ready_timeout = 60
    stop_timeout = 10

    def __init__(self, moto, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.key = os.urandom(24).hex()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = folder / "giftless.yaml"
        config.write_text(f"""AUTH_PROVIDERS:
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: HS256
      private_key: {self.key}
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_external:factory
    options:
      storage_class: giftless.storage.amazon_s3:AmazonS3Storage
      storage_options:
        bucket_name: models
        path_prefix: lfs
        endpoint: {moto['url']}
      action_lifetime: 900
""")
        env = {**ENV, "GIFTLESS_CONFIG_FILE": str(config), "AWS_ACCESS_KEY_ID": moto["key"], "AWS_SECRET_ACCESS_KEY": moto["secret"],
               "AWS_DEFAULT_REGION": "us-east-1", "PYTHONWARNINGS": "ignore"}
        super().__init__([VENV_BIN / "flask", "--app", "giftless.wsgi_entrypoint", "run", "--host", "127.0.0.1", "--port", self.port],
                         folder / "giftless.log", ready=self._ready, env=env, scan=False)

    def _ready(self):
        import requests
        try:
            requests.get(self.base + "/", timeout=1)
            return True
        except requests.RequestException:
            return False

    def token(self, lifetime=3600):
        return jwt.encode({"sub": "ci", "scopes": "obj:*", "exp": int(time.time()) + lifetime}, self.key, algorithm="HS256")

    def url(self, org_repo):
        return f"{self.base}/{org_repo}.git/info/lfs"


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, env={**ENV, **AUTHOR}, check=True, capture_output=True, text=True).stdout


def lfs_repository(folder, endpoint, token):
    """FOLDER/work (a working repository with git-lfs on, `*.gguf` tracked, `.lfsconfig` naming
    `endpoint`) and FOLDER/origin.git (its bare remote); pushes go to the LFS server with `token`
    (set in the working repository's own config, never committed). Returns (work, origin)."""
    folder = Path(folder)
    work, origin = folder / "work", folder / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True, capture_output=True)
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "lfs", "install", "--local")
    git(work, "lfs", "track", "*.gguf")
    (work / ".lfsconfig").write_text(f"[lfs]\n\turl = {endpoint}\n")
    authenticated = endpoint.replace("http://", f"http://_jwt:{token}@", 1)
    git(work, "config", "lfs.url", authenticated)
    git(work, "config", "lfs.locksverify", "false")
    git(work, "remote", "add", "origin", str(origin))
    return work, origin
