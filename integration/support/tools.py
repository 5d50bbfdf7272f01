"""Paths, the environment the real tools run in, and small helpers every test module uses."""
import hashlib
import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("PEDIGREE_BIN", str(ROOT / ".build/debug/pedigree"))
VENV_BIN = ROOT / ".venv/bin"
# The demo's released weights are signed with the demo's keys (script/demo/signing): every
# pedigree the tests start trusts them (through the environment), as script/server does.
DEMO_SIGNERS = ROOT / "script/demo/signing/trusted.pem"
os.environ.setdefault("PEDIGREE_TRUSTED_SIGNERS", str(DEMO_SIGNERS))
ENV = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "GTO_NO_ANALYTICS": "1"}


class ToolFailed(subprocess.CalledProcessError):
    """A tool's failure that says what the tool said."""

    def __str__(self):
        said = (self.stderr or self.output or "").strip()
        return f"{super().__str__()}\n{said[-4000:]}" if said else super().__str__()


def run(*args, cwd=None, check=True):
    """Runs a tool (git, dvc, gto, …) with the pinned tools first on PATH; returns its stdout. A
    failure raises ToolFailed with the tool's own words: dvc's `-q` silences its errors too, so it
    is dropped (the output is captured either way)."""
    if args and args[0] == "dvc":
        args = tuple(a for a in args if a != "-q")
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ToolFailed(result.returncode, args, result.stdout, result.stderr)
    return result.stdout


def pedigree(*args, check=True, timeout=300, env=None):
    """Runs the CLI; returns the CompletedProcess (stdout, stderr, returncode)."""
    result = subprocess.run([BIN, *args], env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"pedigree {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_codes(body):
    """The `extensions.code` of each error of a GraphQL answer."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def md5_file(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def clone_with_remote(source, target, remote_name, url, **options):
    """A clone of `source` whose `.dvc/config.local` makes `remote_name` (at `url`) the default
    remote, as a user would with `dvc remote add --local -d`. config.local applies to every commit."""
    run("git", "clone", "-q", str(source), str(target))
    run("dvc", "remote", "add", "--local", "-d", remote_name, url, cwd=target)
    for key, value in options.items():
        run("dvc", "remote", "modify", "--local", remote_name, key, value, cwd=target)
    return target
