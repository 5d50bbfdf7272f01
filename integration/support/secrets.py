"""The run's secret scan: every secret a test configures (API keys, passwords, S3 secrets) is
registered here, every server log of the run is appended to one file, and at the end of the
session no log may contain any of them (conftest's `pytest_sessionfinish` calls `scan`)."""
import os
import tempfile
from pathlib import Path

SECRETS = set()
RUN_LOG = Path(tempfile.gettempdir()) / f"pedigree-test-run-{os.getpid()}.log"


def secret(value):
    """Registers a value the logs of the whole run must never contain; returns it."""
    SECRETS.add(value)
    return value


def keep_log(path):
    """Adds a finished program's log to the run's scan."""
    with open(RUN_LOG, "a", errors="replace") as run_log:
        run_log.write(Path(path).read_text(errors="replace"))


def scan():
    """Prints the scan's result; returns the secrets found (none: the run passes)."""
    if not RUN_LOG.exists():
        return []
    text = RUN_LOG.read_text(errors="replace")
    leaked = sorted(s for s in SECRETS if s and s in text)
    print(f"\nsecret scan: {len(SECRETS)} secrets over {len(text)} bytes of server logs from this run: {len(leaked)} found")
    RUN_LOG.unlink()
    if leaked:
        print("secrets found in server logs: " + ", ".join(s[:6] + "…" for s in leaked))
    return leaked
