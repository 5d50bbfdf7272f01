"""The serving core as an operator meets it: a drain on SIGTERM, one configuration (flags > env >
file > defaults), JSON logs carrying request ids, and new commits served without a restart."""
import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from support.processes import Server
from support.tools import BIN, ENV, ROOT, pedigree, run

SIGNALLED = []
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id finishReason } } }"
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id result finishReason } }"


def sse_stream(server, spec, prompt, sampling, events):
    """One inferStream over SSE; appends ("token", time) and ("payload", payload, time) to `events`."""
    with requests.post(server.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"}, timeout=120,
                       json={"query": STREAM, "variables": {"input": {"modelRevisionID": spec, "prompt": prompt, "sampling": sampling}}}) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if not line.startswith("data:") or len(line) <= 6:
                continue
            event = json.loads(line[5:])["data"]["inferStream"]
            if event["payload"] is not None:
                events.append(("payload", event["payload"], time.time()))
            else:
                events.append(("token", None, time.time()))


def ws_stream(server, spec, prompt, sampling, events):
    """One inferStream over graphql-transport-ws, recorded like `sse_stream`."""
    import aiohttp

    async def talk():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",)) as ws:
                await ws.send_json({"type": "connection_init"})
                assert (await ws.receive_json())["type"] == "connection_ack"
                await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": STREAM, "variables": {"input": {
                    "modelRevisionID": spec, "prompt": prompt, "sampling": sampling}}}})
                while True:
                    raw = await ws.receive(timeout=120)
                    assert raw.type == aiohttp.WSMsgType.TEXT, (raw, events[-2:], time.time(), SIGNALLED)
                    message = json.loads(raw.data)
                    if message["type"] == "complete":
                        return
                    assert message["type"] == "next", message
                    event = message["payload"]["data"]["inferStream"]
                    if event["payload"] is not None:
                        events.append(("payload", event["payload"], time.time()))
                    else:
                        events.append(("token", None, time.time()))
    asyncio.run(talk())


def test_sigterm_drains_streams_then_cancels_the_rest_and_records_all(demo, tmp_path):
    """8 SSE streams and 2 WebSocket subscriptions run; SIGTERM: /readyz is 503 within 100 ms, new
    work is refused, short streams finish normally, long ones end `cancelled` at the 1 s deadline,
    every answer is in the ledger, and the exit code is 0."""
    server = Server(demo, "--slots", "10", "--drain-timeout", "1")
    try:
        requests.post(server.url + "/graphql", json={"query": INFER, "variables": {"input": {
            "modelRevisionID": "smollm2-135m", "prompt": "warm", "sampling": {"maxTokens": 1}}}}, timeout=120).raise_for_status()
        kinds = ["short"] * 4 + ["long"] * 4  # SSE
        events = [[] for _ in range(10)]
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            futures = []
            for index, kind in enumerate(kinds + ["short", "long"]):
                if kind == "short":
                    sampling, prompt = {"temperature": 0.8, "seed": index, "maxTokens": 6}, f"Tell a story about number {index}"
                else:  # greedy counting goes on far past the deadline (no end-of-text in sight)
                    sampling, prompt = {"temperature": 0, "maxTokens": 1000}, "Count to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"
                run_stream = sse_stream if index < 8 else ws_stream
                futures.append(pool.submit(run_stream, server, "smollm2-135m", prompt, sampling, events[index]))
            deadline = time.time() + 60
            while not all(events[i] for i in range(10)) and time.time() < deadline:  # every stream has its first token
                time.sleep(0.01)
            assert all(events[i] for i in range(10)), "not every stream started"
            signalled = time.time()
            SIGNALLED.append(signalled)
            server.process.send_signal(signal.SIGTERM)
            ready = None
            while time.time() - signalled < 1:
                ready = requests.get(server.url + "/readyz", timeout=1)
                if ready.status_code == 503:
                    break
            became_unready = time.time() - signalled
            assert ready is not None and ready.status_code == 503 and became_unready < 0.1, (ready, became_unready)
            refused = requests.post(server.url + "/graphql", json={"query": INFER, "variables": {"input": {
                "modelRevisionID": "smollm2-135m", "prompt": "too late", "sampling": {"maxTokens": 2}}}}, timeout=10).json()
            assert refused["errors"][0]["extensions"]["code"] == "SHUTTING_DOWN", refused
            for future in futures:
                future.result(timeout=60)
        assert server.process.wait(timeout=30) == 0
        payloads, short_finished_after_signal = [], 0
        for index, stream_events in enumerate(events):
            finals = [e for e in stream_events if e[0] == "payload"]
            assert len(finals) == 1, (index, stream_events[-3:])
            payload, finished_at = finals[0][1], finals[0][2]
            payloads.append(payload)
            short = index in (0, 1, 2, 3, 8)
            if short:
                assert payload["finishReason"] in ("length", "stop"), (index, payload)
                short_finished_after_signal += finished_at > signalled
            else:
                assert payload["finishReason"] == "cancelled", (index, payload)
                assert 0.9 < finished_at - signalled < 5, (index, finished_at - signalled)
        assert short_finished_after_signal > 0  # the drain let running streams finish
        database = sqlite3.connect(Path(server.cache) / "ledger.sqlite")
        rows = dict(database.execute(
            f"SELECT id, status FROM inference WHERE id IN ({','.join('?' * len(payloads))})", [p["id"] for p in payloads]).fetchall())
        assert {p["id"]: ("cancelled" if p["finishReason"] == "cancelled" else "completed") for p in payloads} == rows
        log = Path(server.log.name).read_text()
        assert "draining" in log and "drain deadline passed" in log
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.log.close()
        shutil.rmtree(server.cache, ignore_errors=True)


def test_a_second_signal_ends_the_drain_at_once(demo):
    """With a 60 s drain deadline, a second SIGTERM cancels the running streams now: each still
    gets its `cancelled` answer and record, and the process exits 0 within seconds."""
    server = Server(demo, "--drain-timeout", "60")
    try:
        events = [[], []]
        sampling = {"temperature": 0, "maxTokens": 1000}
        prompt = "Count to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(sse_stream, server, "smollm2-135m", prompt, sampling, events[i]) for i in range(2)]
            deadline = time.time() + 60
            while not all(events) and time.time() < deadline:
                time.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.process.poll() is None  # draining: the deadline is a minute away
            second = time.time()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=15) == 0
            assert time.time() - second < 5
            for future in futures:
                future.result(timeout=30)
        payloads = [[e[1] for e in stream if e[0] == "payload"] for stream in events]
        assert all(len(p) == 1 and p[0]["finishReason"] == "cancelled" for p in payloads), payloads
        database = sqlite3.connect(Path(server.cache) / "ledger.sqlite")
        for (payload,) in payloads:
            assert database.execute("SELECT status FROM inference WHERE id = ?", [payload["id"]]).fetchone() == ("cancelled",)
        assert "second signal" in Path(server.log.name).read_text()
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.log.close()
        shutil.rmtree(server.cache, ignore_errors=True)


def test_idle_server_exits_at_once_on_sigterm(demo):
    server = Server(demo)
    try:
        started = time.time()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
        assert time.time() - started < 3
    finally:
        server.log.close()
        shutil.rmtree(server.cache, ignore_errors=True)


# MARK: configuration

def config_check(*args, env=None, check=True):
    # Without the tests' trust in the demo's signers (support.tools), so every key starts at its default.
    base = {name: value for name, value in ENV.items() if name != "PEDIGREE_TRUSTED_SIGNERS"}
    result = subprocess.run([BIN, "config", "check", *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def effective(output):
    """`key: value  # source` lines as {key: (value, source)}."""
    values = {}
    for line in output.splitlines():
        head, _, source = line.partition("  # ")
        key, _, value = head.partition(": ")
        values[key] = (value, source)
    return values


@pytest.mark.parametrize("key,flag,env,file", [
    ("port", "9001", "9002", "9003"),
    ("slots", "3", "5", "7"),
    ("ledger-failure", "fail", "warn", "fail"),
    ("drain-timeout", "11", "12", "13"),
    ("max-models", "4", "5", "6"),
    ("host", "127.0.0.2", "127.0.0.3", "127.0.0.4"),
])
def test_precedence_flags_over_environment_over_file_over_defaults(tmp_path, key, flag, env, file):
    path = tmp_path / "pedigree.yaml"
    path.write_text(f"{key}: {file}\n")
    env_name = "PEDIGREE_" + key.upper().replace("-", "_")
    default = effective(config_check().stdout)[key]
    assert default[1] == "default"
    assert effective(config_check(str(path)).stdout)[key] == (file, f"file {path}")
    assert effective(config_check(str(path), env={env_name: env}).stdout)[key] == (env, f"environment {env_name}")
    assert effective(config_check(str(path), f"--{key}", flag, env={env_name: env}).stdout)[key] == (flag, f"flag --{key}")
    assert effective(config_check(f"--{key}", flag).stdout)[key] == (flag, f"flag --{key}")


def test_a_file_configures_a_server_and_nesting_is_allowed(demo, tmp_path):
    path = tmp_path / "pedigree.yaml"
    path.write_text(f"repo: {demo}\nslots: 2\nledger:\n  # the ledger key stays a plain value; nested maps name dotted keys\n")
    values = effective(config_check(str(path)).stdout)
    assert values["slots"] == ("2", f"file {path}") and values["repo"] == (str(demo), f"file {path}")


@pytest.mark.parametrize("content,env,flags,message", [
    ("prot: 8080\n", {}, [], "unknown key 'prot'"),
    ("server:\n  port: 8080\n", {}, [], "unknown key 'server.port'"),
    ("port: eighty\n", {}, [], "port: 'eighty' is not an integer"),
    ("port: [1, 2]\n", {}, [], "port: expected a single value"),
    ("slots: 0\n", {}, [], "slots: 0 is out of range 1...256"),
    ("", {"PEDIGREE_PORT": "70000"}, [], "port: 70000 is out of range 1...65535 (from environment PEDIGREE_PORT)"),
    ("", {}, ["--ledger-failure", "sometimes"], "ledger-failure: 'sometimes' is not one of warn, fail (from flag --ledger-failure)"),
    ("cache-budget: lots\n", {}, [], "cache-budget: 'lots' is not a size"),
    ("drain-timeout: 2x\n", {}, [], "drain-timeout: '2x' is not a duration"),
])
def test_bad_configuration_names_the_key(tmp_path, content, env, flags, message):
    path = tmp_path / "pedigree.yaml"
    path.write_text(content)
    result = config_check(str(path), *flags, env=env, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    served = subprocess.run([BIN, "serve", "--config", str(path), "--repo", str(tmp_path), *flags],
                            env={**ENV, **env}, capture_output=True, text=True, timeout=60)
    assert served.returncode == 2 and message in served.stderr, served.stderr


def test_configuration_errors_hold_no_secret(tmp_path):
    path = tmp_path / "pedigree.yaml"
    for content, secret in (("webhook-secret: YAMLSEC21: x\n", "YAMLSEC21"),
                            ("ledger: postgres://u:YAMLPW22@h/db\nledger: off\n", "YAMLPW22")):
        path.write_text(content)
        result = config_check(str(path), check=False)
        assert result.returncode == 2 and "not valid YAML" in result.stderr and secret not in result.stderr, result.stderr
    for flags, secret in ((["--external-backend", "http://e:EPW6@h"], "EPW6"), (["--workers-dns", "http://u:DNSPW@h"], "DNSPW"),
                          (["--allowed-origin", "http://u:ORIGPW@h"], "ORIGPW")):
        result = config_check(*flags, check=False)
        assert result.returncode == 2 and secret not in result.stderr and "<redacted>" in result.stderr, result.stderr


def test_config_check_redacts_secrets(tmp_path):
    path = tmp_path / "pedigree.yaml"
    path.write_text("webhook-secret: hunter2-webhook\nledger: postgres://pedigree:s3cret-pw@127.0.0.1:5432/ledger\n"
                    "repo: https://bot:ghp_token123@example.invalid/models.git\n")
    out = config_check(str(path)).stdout
    for secret in ("hunter2-webhook", "s3cret-pw", "ghp_token123"):
        assert secret not in out
    values = effective(out)
    assert values["webhook-secret"][0] == "<redacted>"
    assert values["ledger"][0] == "postgres://pedigree:<redacted>@127.0.0.1:5432/ledger"
    assert values["repo"][0] == "https://bot:<redacted>@example.invalid/models.git"


def config_table():
    """The key table, as `pedigree config keys` prints it."""
    return json.loads(pedigree("config", "keys").stdout)


def test_help_environment_check_and_example_list_exactly_the_tables_keys(tmp_path):
    table = config_table()
    names = [key["name"] for key in table]
    assert len(set(names)) == len(names) > 50

    # config check: every key of the table, in its order, each at its default.
    defaults = effective(config_check().stdout)
    assert list(defaults) == names and all(source == "default" for _, source in defaults.values())

    # Each command's help lists exactly the flags of the keys its groups give it; together, all of them.
    listed = set()
    for command in sorted({path for key in table for path in key["commands"]}):
        shown = pedigree(*command.split(), "--help").stdout
        assert "[<configuration flags>]" in shown, command
        section = shown.split("\nCONFIGURATION:\n", 1)[1]
        flags = re.findall(r"^  (--[a-z0-9-]+) ", section, re.M)
        assert flags == [key["flag"] for key in table if command in key["commands"]], command
        listed |= set(flags)
    assert listed == {key["flag"] for key in table}

    # The example file is the generated one, names every key once (set or commented out), and with
    # every line uncommented it sets every key.
    example = pedigree("config", "example").stdout
    assert example == (ROOT / "pedigree.example.yaml").read_text()
    for name in names:
        assert len(re.findall(rf"^(# )?{re.escape(name)}:", example, re.M)) == 1, name
    lines, uncomment = [], False
    for line in example.splitlines():
        match = re.match(r"^# ([a-z0-9-]+):", line)
        if match and match.group(1) in names:
            line, uncomment = line[2:], True
        elif uncomment and line.startswith("#   - "):
            line = line[2:]
        else:
            uncomment = False
        lines.append(line)
    full = tmp_path / "every-key.yaml"
    full.write_text("\n".join(lines) + "\n")
    values = yaml.safe_load(full.read_text())
    assert sorted(values) == sorted(names)
    from_file = effective(config_check(str(full)).stdout)
    assert all(source == f"file {full}" for _, source in from_file.values()), from_file

    # Every key's variable sets it; every key's flag sets it.
    text = {name: ",".join(map(str, value)) if isinstance(value, list) else
            (str(value).lower() if isinstance(value, bool) else str(value)) for name, value in values.items()}
    variables = {key["environment"]: text[key["name"]] for key in table}
    from_environment = effective(config_check(env=variables).stdout)
    assert {name: source for name, (_, source) in from_environment.items()} == \
        {key["name"]: f"environment {key['environment']}" for key in table}
    flags = []
    for key in table:
        items = values[key["name"]] if isinstance(values[key["name"]], list) else [text[key["name"]]]
        flags += [f"{key['flag']}={item}" for item in items]
    from_flags = effective(config_check(*flags).stdout)
    assert {name: source for name, (_, source) in from_flags.items()} == {key["name"]: f"flag {key['flag']}" for key in table}
    assert from_flags["workers"][0] == text["workers"] and from_flags["slots"][0] == text["slots"]


def test_configuration_flags_belong_to_their_commands():
    # A flag of another command's group is refused by name, with where else it can be set.
    refused = subprocess.run([BIN, "keys", "list", "--slots", "3"], env=ENV, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--slots is not an option of `pedigree keys list`" in refused.stderr
    assert "PEDIGREE_SLOTS" in refused.stderr
    missing = subprocess.run([BIN, "config", "check", "--port"], env=ENV, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--port needs a value" in missing.stderr
    # A bare boolean flag is true; one followed by a boolean word takes it; `--` ends the flags.
    values = effective(config_check("--verify-cache", "--metrics", "false", "--worker", "http://a:1", "--worker", "http://b:2").stdout)
    assert values["verify-cache"] == ("true", "flag --verify-cache") and values["metrics"] == ("false", "flag --metrics")
    assert values["workers"] == ("http://a:1,http://b:2", "flag --worker")


# MARK: logging

def test_json_logs_parse_and_carry_the_request_id(demo):
    server = Server(demo, "--log-format", "json")
    try:
        own = requests.post(server.url + "/graphql", headers={"X-Request-Id": "test-request-42"}, timeout=120, json={
            "query": INFER, "variables": {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"maxTokens": 3}}}})
        assert own.headers["X-Request-Id"] == "test-request-42"
        inference_id = own.json()["data"]["infer"]["id"]
        given = requests.get(server.url + "/healthz", timeout=10).headers["X-Request-Id"]
        assert given and given != "test-request-42"
        bad = requests.post(server.url + "/v1/completions", headers={"X-Request-Id": "x" * 300}, timeout=10, json={"model": "nope", "prompt": "x"})
        assert bad.status_code == 404 and bad.headers["X-Request-Id"] != "x" * 300
        missing = requests.get(server.url + "/no-such-route", timeout=10)
        assert missing.status_code == 404 and missing.headers["X-Request-Id"]
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=15)
        server.log.close()
    lines = Path(server.log.name).read_text().splitlines()
    shutil.rmtree(server.cache, ignore_errors=True)
    assert lines
    records = [json.loads(line) for line in lines]  # every line is JSON
    ours = [r for r in records if r.get("request_id") == "test-request-42"]
    messages = [r["message"] for r in ours]
    assert "request" in messages and "inference started" in messages and "inference finished" in messages, messages
    # Every line about that inference names the request.
    about = [r for r in records if r.get("id") == inference_id]
    assert about and all(r.get("request_id") == "test-request-42" for r in about)
    assert any(r.get("request_id") == given and r["message"] == "request" for r in records)


def test_the_ledger_records_the_request_id(server):
    response = requests.post(server.url + "/graphql", headers={"X-Request-Id": "ledger-req-7"}, timeout=120, json={
        "query": INFER, "variables": {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hi", "sampling": {"maxTokens": 2}}}})
    inference_id = response.json()["data"]["infer"]["id"]
    row = sqlite3.connect(Path(server.cache) / "ledger.sqlite").execute(
        "SELECT requestID FROM inference WHERE id = ?", [inference_id]).fetchone()
    assert row == ("ledger-req-7",)


# MARK: new commits without a restart

def new_commit(source, message):
    """Commits a parameter change to `source` (a clone of the demo) and returns its sha."""
    params = Path(source) / "params.yaml"
    params.write_text(params.read_text() + f"\n# {message}\n")
    run("git", "-C", str(source), "commit", "-qam", message)
    return run("git", "-C", str(source), "rev-parse", "HEAD").strip()


def head(server):
    return requests.post(server.url + "/graphql", json={"query": "{ repository { head } }"}, timeout=30).json()["data"]["repository"]["head"]


def test_a_pushed_commit_is_served_within_the_refresh_interval(demo, tmp_path):
    source = tmp_path / "origin"
    run("git", "clone", "-q", str(demo), str(source))
    server = Server(source, "--refresh-interval", "1")
    try:
        before = head(server)
        sha = new_commit(source, "periodic refresh")
        deadline = time.time() + 5
        while head(server) != sha and time.time() < deadline:
            time.sleep(0.1)
        assert head(server) == sha != before
    finally:
        server.stop()


def test_the_webhook_refreshes_at_once_with_a_good_signature_only(demo, tmp_path):
    source = tmp_path / "origin"
    run("git", "clone", "-q", str(demo), str(source))
    secret = "webhook-test-secret"
    server = Server(source, "--refresh-interval", "0", "--webhook-secret", secret)
    try:
        before = head(server)
        sha = new_commit(source, "webhook refresh")
        body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
        good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        bad = "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
        for headers in ({}, {"X-Hub-Signature-256": bad}, {"X-Hub-Signature-256": "sha256=zz"}, {"X-Gitlab-Token": "wrong"}):
            response = requests.post(server.url + "/hooks/git", data=body, headers=headers, timeout=30)
            assert response.status_code == 401, (headers, response.text)
        time.sleep(0.3)
        assert head(server) == before  # nothing was fetched
        response = requests.post(server.url + "/hooks/git", data=body, headers={"X-Hub-Signature-256": good}, timeout=30)
        assert response.status_code == 200, response.text
        assert head(server) == sha  # at once: the answer came after the fetch
        sha2 = new_commit(source, "gitlab refresh")
        response = requests.post(server.url + "/hooks/git", data=b"{}", headers={"X-Gitlab-Token": secret}, timeout=30)
        assert response.status_code == 200 and head(server) == sha2
        log = Path(server.log.name).read_text()
        assert secret not in log
    finally:
        server.stop()


def test_concurrent_refreshes_share_one_fetch(demo, tmp_path):
    source = tmp_path / "origin"
    run("git", "clone", "-q", str(demo), str(source))
    server = Server(source, "--refresh-interval", "0")
    try:
        sha = new_commit(source, "single flight")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            heads = list(pool.map(lambda _: requests.post(server.url + "/graphql", json={"query": "mutation { refresh { head } }"},
                                                          timeout=60).json()["data"]["refresh"]["head"], range(8)))
        assert heads == [sha] * 8
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert "pedigree_refresh_failures_total 0" in metrics
    finally:
        server.stop()


def test_a_stale_lock_left_by_a_killed_fetch_does_not_block_the_next(demo, tmp_path):
    source = tmp_path / "origin"
    run("git", "clone", "-q", str(demo), str(source))
    server = Server(source, "--refresh-interval", "0", "--refresh-timeout", "5")
    try:
        mirror = next((Path(server.cache) / "git").glob("*.git"))
        lock = mirror / "refs" / "heads" / "main.lock"
        lock.write_text("left by a killed fetch\n")
        old = time.time() - 600
        os.utime(lock, (old, old))
        sha = new_commit(source, "after a stale lock")
        body = requests.post(server.url + "/graphql", json={"query": "mutation { refresh { head } }"}, timeout=60).json()
        assert body["data"]["refresh"]["head"] == sha, body
        assert not lock.exists()
    finally:
        server.stop()
