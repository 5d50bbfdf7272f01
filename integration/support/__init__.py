"""Helpers for the integration tests, importable by any test module: `tools` (paths, the CLI,
git/dvc, small functions), `secrets` (the run's secret scan), `processes` (every long-running
program the tests start: `Program` and the `Server` built on it), `http_servers` (loopback HTTP
servers the tests stand up: DVC remotes, Git over HTTP, listeners, moto S3) and `browser`
(headless Chromium). Fixtures live in `integration/conftest.py`, which no test module imports."""
