"""Fixtures only: the demo repository (built once with the real git/dvc/gto), servers, remotes,
PostgreSQL, and the run's secret scan at the end. Helpers live in `support/`, which test modules
import; no test module imports this file."""
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Every temporary file of the run (ours, pytest's tmp_path, and those of the programs the tests
# start: pedigree, dvc, chromium, PostgreSQL's folders) lands in one folder of the run's own, set
# before support's modules load and removed when the session ends (pytest_unconfigure; kept
# after a local failure): a test killed halfway or a program that forgets its scratch must not
# fill a machine's /tmp run after run. 0755: the postgres user reaches its data folder inside.
SCRATCH = tempfile.mkdtemp(prefix="pedigree-test-")
os.chmod(SCRATCH, 0o755)
tempfile.tempdir = SCRATCH
os.environ["TMPDIR"] = SCRATCH

from support import models, secrets  # noqa: E402
from support.http_servers import ObjectServer
from support.processes import Server
from support.secrets import secret
from support.tools import ENV, ROOT, free_port, run


def pytest_sessionfinish(session, exitstatus):
    if secrets.scan():
        session.exitstatus = 1
    session.config.pedigree_failed = session.exitstatus != 0


def pytest_unconfigure(config):
    """Removes the run's scratch folder (SCRATCH) once every fixture has stopped its
    programs; a failed run outside CI keeps it for a look, and says where."""
    failed = getattr(config, "pedigree_failed", True)
    if failed and not os.environ.get("CI"):
        print(f"\nthis run's temporary files are kept in {SCRATCH}")
    else:
        shutil.rmtree(SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def demo():
    """The demo repository, cached in .demo-test/ between runs (rebuilt if the script changed)."""
    folder = ROOT / ".demo-test"
    stamp = folder / "script.sha"
    digest = run("sha256sum", str(ROOT / "script/demo-repo"), *sorted(str(p) for p in (ROOT / "script/demo").glob("*.py"))).encode()
    want = hashlib.sha256(digest).hexdigest()
    repo = folder / "repo"
    if not (stamp.exists() and stamp.read_text() == want and repo.exists()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        subprocess.run([str(ROOT / "script/demo-repo"), str(repo)], env=ENV, check=True, capture_output=True)
        stamp.write_text(want)
    return repo


@pytest.fixture(scope="session")
def quantized():
    """The demo's SmolLM2 requantized to Q8_0, Q4_0, Q4_K_M and Q6_K and a random K-quant llama
    (support.models), in a Git+DVC repository cached in .quantized-test/ (rebuilt when the
    helpers or llama.cpp changed)."""
    folder = ROOT / ".quantized-test"
    stamp = folder / "built.sha"
    want = hashlib.sha256(b"".join(path.read_bytes() for path in (
        ROOT / "integration/support/models.py", ROOT / "script/gpu_model.py", ROOT / ".deps/llama/.built"))).hexdigest()
    if not (stamp.exists() and stamp.read_text() == want):
        models.quantized_repository(folder)
        stamp.write_text(want)
    return folder / "repo"


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
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql): the PostgreSQL ledger tests did not run")
    bin_dir = Path(binaries[-1]).parent
    # Not under pytest's 0700 tmp folders: the postgres user must be able to reach it (the run's
    # scratch folder is 0755).
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
    shutil.rmtree(root, ignore_errors=True)
