"""Hardening: each hole a live attack found (issue 20) performed again as described, and refused
or bounded with the right code; the server is healthy after each. Also TLS on the listener and
the modes of the files a server keeps."""
import asyncio
import json
import os
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from support.http_servers import Listener, LoopbackHTTPServer
from support.processes import Program, Server, answers
from support.secrets import secret
from support.tools import BIN, error_codes, free_port, md5_file, pedigree, run
from test_access import INFER, STREAM, create_key, headers, infer_input, post

PULL = "mutation($id: ID!) { pull(id: $id) { cached } }"
TINY = {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hi", "sampling": {"temperature": 0, "maxTokens": 1, "seed": 1}}}


def healthy(server):
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def keyless(demo):
    """The demo as script/server runs it: loopback, no keys."""
    server = Server(demo)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed(demo):
    """A loopback server with keys; at most 4 generations per request."""
    server = Server(demo, env={"PEDIGREE_MAX_GENERATIONS_PER_REQUEST": "4"})
    yield server
    server.stop()


# 1. DNS rebinding.

HOSTILE_HOSTS = ["127.evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "[::1].evil", "0x7f.1", "2130706433",
                 "127.0.0.1.", "localhost.", "127.EVIL.EXAMPLE", "LOCALHOST.EVIL.EXAMPLE", "127.1", "127.000.0.1", "evil.example"]


def test_dns_rebinding_through_names_that_look_like_loopback_is_refused(keyless):
    server = keyless
    recorded = post(server, None, INFER, infer_input("Rebinding canary")).json()
    assert "errors" not in recorded, recorded
    query = {"query": "{ inferences { edges { node { prompt } } } }"}
    for name in HOSTILE_HOSTS:
        for host in (name, f"{name}:{server.port}"):
            read = requests.get(server.url + "/graphql", params=query, headers={"Host": host}, timeout=10)
            assert read.status_code == 403 and error_codes(read.json()) == ["FORBIDDEN"], host
            assert "Rebinding canary" not in read.text
            origin = f"http://{host}"
            mutation = requests.post(server.url + "/graphql", json={"query": "mutation { refresh { head } }"}, timeout=10,
                                     headers={"Host": host, "Origin": origin})
            assert mutation.status_code == 403, host
            assert requests.get(server.url + "/v1/models", headers={"Host": host}, timeout=10).status_code == 403, host
    # The WebSocket is not upgraded for such a name either.
    import aiohttp

    async def upgrade(host):
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",),
                                              headers={"Host": host, "Origin": f"http://{host}"}) as ws:
                    await ws.send_json({"type": "connection_init"})
                    return json.loads((await ws.receive(timeout=30)).data)["type"]
            except aiohttp.WSServerHandshakeError as error:
                return error.status
    assert asyncio.run(upgrade(f"127.evil.example:{server.port}")) == 400
    assert asyncio.run(upgrade(f"127.0.0.1:{server.port}")) == "connection_ack"
    # Loopback literals and localhost still work.
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"LOCALHOST:{server.port}", "127.0.0.1"):
        assert requests.get(server.url + "/graphql", params=query, headers={"Host": host}, timeout=10).status_code == 200, host
    healthy(server)


def test_a_listen_address_that_only_looks_like_loopback_needs_keys(demo, tmp_path):
    result = subprocess.run([BIN, "serve", "--repo", str(demo), "--cache", str(tmp_path / "c"), "--host", "127.0.0.1.nip.io",
                             "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "insecure-no-auth" in result.stderr


# 2. A revoked key's WebSocket.

def test_revoking_a_key_ends_its_open_websocket(keyed):
    server = keyed
    key = create_key(server.cache, "socket-user", "infer")
    import aiohttp

    async def talk():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",)) as ws:
                await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
                assert json.loads((await ws.receive(timeout=30)).data)["type"] == "connection_ack"
                # Counting goes on for as long as it is let (greedy): a generation that runs past the revocation.
                variables = {"input": {"modelRevisionID": "smollm2-135m", "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
                                       "sampling": {"temperature": 0, "seed": 3, "maxTokens": 1000}}}
                await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": STREAM, "variables": variables}})
                first = json.loads((await ws.receive(timeout=120)).data)
                assert first["type"] == "next", first
                pedigree("keys", "revoke", "socket-user", "--cache", server.cache)
                revoked_at = time.monotonic()
                seen = []
                while True:
                    message = await ws.receive(timeout=30)
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                        return ws.close_code, time.monotonic() - revoked_at, seen
                    seen.append(json.loads(message.data))
    code, seconds, seen = asyncio.run(talk())
    assert code == 4403 and seconds < 5, (code, seconds, seen[-3:])
    # Whichever asks first ends it: the socket (closed, the subscription cancelled) or the
    # generation itself (its last result UNAUTHENTICATED, then complete, then the close).
    if seen and seen[-1]["type"] == "complete":
        assert seen[-2]["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", seen[-3:]
    else:
        assert all(message["type"] == "next" for message in seen), seen[-3:]
    # Over SSE (and any other edge) the generation itself asks again: a revoked key's stream ends.
    sse_key = create_key(server.cache, "sse-user", "infer")
    variables = {"input": {"modelRevisionID": "smollm2-135m", "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
                           "sampling": {"temperature": 0, "seed": 3, "maxTokens": 1000}}}
    with requests.post(server.url + "/graphql", json={"query": STREAM, "variables": variables}, stream=True, timeout=120,
                       headers={**headers(sse_key), "Accept": "text/event-stream"}) as response:
        lines = response.iter_lines(decode_unicode=True)
        assert any(line.startswith("data:") for line in lines)
        pedigree("keys", "revoke", "sse-user", "--cache", server.cache)
        revoked_at = time.monotonic()
        rest = list(lines)
    assert time.monotonic() - revoked_at < 5 and any("UNAUTHENTICATED" in line for line in rest), rest[-3:]
    # The generation was ended and recorded so (cancelled, or failed UNAUTHENTICATED), not run to its 1000 tokens.
    admin = create_key(server.cache, "socket-admin", "admin")
    nodes = post(server, admin, '{ inferences(filter: { caller: "socket-user" }) { edges { node { status usage { completionTokens } } } } }').json()
    records = [edge["node"] for edge in nodes["data"]["inferences"]["edges"]]
    assert len(records) == 1 and records[0]["status"] in ("cancelled", "failed") and records[0]["usage"]["completionTokens"] < 1000, records
    healthy(server)


# 3. Downloads bounded by the recorded size.

def commit_weights(repo, md5, size, message):
    """Commits new weights for tiny-llama: `md5` and `size` in dvc.lock (written by hand, as an attacker would)."""
    import yaml
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == "models/tiny-llama/model.gguf":
                out["md5"], out["size"] = md5, size
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "-c", "user.name=Mallory", "-c", "user.email=m@example.invalid", "commit", "-qam", message, cwd=repo)


def test_a_download_stops_at_the_recorded_size(demo, tmp_path, make_server, object_server):
    md5 = "00112233445566778899aabbccddeeff"
    root = tmp_path / "remote"
    big = root / "files" / "md5" / md5[:2] / md5[2:]
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        f.truncate(96 << 20)
    remote = object_server(root)
    repo = tmp_path / "repo"
    run("git", "clone", "-q", str(demo), str(repo))
    run("dvc", "remote", "add", "--local", "-d", "web", remote.url, cwd=repo)
    commit_weights(repo, md5, 1024, "Small weights, big remote")
    server = make_server(repo)
    body = server.gql(PULL, {"id": "tiny-llama"})
    assert error_codes(body) == ["INTEGRITY_ERROR"], body
    assert "larger than the 1024 bytes" in body["errors"][0]["message"]
    time.sleep(0.5)
    # What the remote got out before the connection was dropped: socket buffers, not 96 MiB.
    assert remote.sent < 16 << 20, remote.sent
    leftovers = [p for p in Path(server.cache, "objects").rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
    healthy(server)


def test_the_files_of_a_directory_stop_at_its_recorded_size(demo, tmp_path, make_server, object_server):
    import hashlib
    member = "ffeeddccbbaa99887766554433221100"
    manifest = json.dumps([{"md5": member, "relpath": "model.gguf"}]).encode()
    manifest_md5 = hashlib.md5(manifest).hexdigest()
    root = tmp_path / "remote"
    for name, write in ((manifest_md5 + ".dir", lambda f: f.write(manifest)), (member, lambda f: f.truncate(96 << 20))):
        path = root / "files" / "md5" / name[:2] / name[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            write(f)
    remote = object_server(root)
    repo = tmp_path / "repo"
    run("git", "clone", "-q", str(demo), str(repo))
    run("dvc", "remote", "add", "--local", "-d", "web", remote.url, cwd=repo)
    commit_weights(repo, manifest_md5 + ".dir", 1024, "A small directory, a big file in it")
    server = make_server(repo)
    body = server.gql(PULL, {"id": "tiny-llama"})
    assert error_codes(body) == ["INTEGRITY_ERROR"] and "larger than the 1024 bytes" in body["errors"][0]["message"], body
    time.sleep(0.5)
    assert remote.sent < 16 << 20, remote.sent
    assert not [p for p in Path(server.cache, "objects", "tmp").rglob("*") if p.is_file()]
    healthy(server)


# 4. The repository does not choose where the server connects.

def test_a_committed_remote_url_is_not_fetched_unless_allowed(demo, tmp_path, make_server):
    listener = Listener()
    elsewhere = Listener()
    redirector = Listener(redirect=elsewhere.url)
    try:
        repo = tmp_path / "repo"
        run("git", "clone", "-q", str(demo), str(repo))
        run("dvc", "remote", "add", "-d", "internal", listener.url + "/store", cwd=repo)
        commit_weights(repo, "00112233445566778899aabbccddeeff", 1024, "Weights from an internal host")
        server = make_server(repo)
        body = server.gql(PULL, {"id": "tiny-llama"})
        assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "remote-endpoints" in body["errors"][0]["message"], body
        assert listener.requests == []
        healthy(server)
        allowed = make_server(repo, "--remote-endpoint", listener.url)
        assert error_codes(allowed.gql(PULL, {"id": "tiny-llama"})) == ["ARTIFACT_UNAVAILABLE"]
        assert listener.requests, "a listed endpoint is fetched from"

        # The operator's own remote may not redirect the server elsewhere (credentials or not).
        local = tmp_path / "local"
        run("git", "clone", "-q", str(demo), str(local))
        run("dvc", "remote", "add", "--local", "-d", "web", redirector.url + "/store", cwd=local)
        commit_weights(local, "00112233445566778899aabbccddeeff", 1024, "New weights")
        redirected = make_server(local)
        body = redirected.gql(PULL, {"id": "tiny-llama"})
        assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "not followed" in body["errors"][0]["message"], body
        assert redirector.requests and elsewhere.requests == []
        listed = make_server(local, "--remote-endpoint", elsewhere.url)
        assert error_codes(listed.gql(PULL, {"id": "tiny-llama"})) == ["ARTIFACT_UNAVAILABLE"]
        assert elsewhere.requests, "a redirect to a listed endpoint is followed"
        healthy(listed)

        # An S3 remote's region (or bucket) becomes part of AWS's host name: one that would
        # point elsewhere (`x@host:port/`) is refused, and the operator's keys go nowhere.
        before = len(listener.requests)
        aws = tmp_path / "aws"
        run("git", "clone", "-q", str(demo), str(aws))
        host = listener.url.removeprefix("http://")
        (aws / ".dvc" / "config").write_text(
            f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://bucket/prefix\n    region = x@{host}/\n    use_ssl = false\n")
        commit_weights(aws, "00112233445566778899aabbccddeeff", 1024, "Our region")
        keys = {"AWS_ACCESS_KEY_ID": "AKIAOPERATORKEY00001", "AWS_SECRET_ACCESS_KEY": secret("operator-secret-" + os.urandom(6).hex())}
        body = make_server(aws, env=keys).gql(PULL, {"id": "tiny-llama"})
        assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "not an AWS region" in body["errors"][0]["message"], body
        assert len(listener.requests) == before
    finally:
        for server in (listener, elsewhere, redirector):
            server.stop()


# 5. Errors carry no credentials.

def test_error_answers_and_ledger_records_carry_no_credentials(demo, tmp_path, make_server):
    # Characters URLs would encode, as DVC takes them: a comma, a parenthesis, a quote.
    password = secret("remote-pw,)'" + os.urandom(8).hex())
    repo = tmp_path / "repo"
    run("git", "clone", "-q", str(demo), str(repo))
    config = repo / ".dvc" / "config"
    config.write_text(f"[core]\n    remote = vault\n['remote \"vault\"']\n    url = ftp://ops:{password}@files.example/store\n")
    commit_weights(repo, "00112233445566778899aabbccddeeff", 1024, "Our FTP remote")
    server = make_server(repo)
    pulled = server.gql(PULL, {"id": "tiny-llama"})
    assert error_codes(pulled) == ["ARTIFACT_UNAVAILABLE"] and "<redacted>" in pulled["errors"][0]["message"], pulled
    inferred = server.gql(INFER, TINY)
    assert error_codes(inferred) == ["ARTIFACT_UNAVAILABLE"]
    rest = requests.post(server.url + "/v1/completions", json={"model": "tiny-llama", "prompt": "Hi", "max_tokens": 1}, timeout=60)
    assert rest.status_code == 502
    records = server.data("{ inferences { edges { node { status error } } } }")["inferences"]["edges"]
    assert records and all(edge["node"]["status"] == "failed" for edge in records)
    assert all("<redacted>" in edge["node"]["error"] for edge in records)
    for text in (json.dumps(pulled), json.dumps(inferred), rest.text, json.dumps(records)):
        assert password not in text
    export = pedigree("ledger", "export", "--repo", str(repo), "--cache", server.cache, check=False)
    assert password not in export.stdout + export.stderr
    healthy(server)


# 6. Files private to the server's account.

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_files_a_server_keeps_are_private(demo, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o755)
    # A keys file, a salt and a cache folder another tool left readable: narrowed at start, and said so.
    key = create_key(cache, "mode-admin", "admin")
    os.chmod(cache / "keys.json", 0o644)
    salt = tmp_path / "salt"
    salt.write_bytes(os.urandom(32))
    os.chmod(salt, 0o644)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Program([BIN, "serve", "--repo", demo, "--cache", cache, "--port", port, "--ledger-text", "hash", "--ledger-salt-file", salt],
                     tmp_path / "server.log", ready=answers(url))
    try:
        answer = requests.post(url + "/graphql", json={"query": INFER, "variables": TINY}, headers=headers(key), timeout=120).json()
        assert "errors" not in answer, answer
        files = [cache / "keys.json", salt, cache / "ledger.sqlite", cache / "ledger.sqlite-wal", cache / "ledger.sqlite-shm"]
        for path in files:
            assert path.exists() and mode(path) == 0o600, (path, oct(mode(path)))
        folders = [cache, cache / "objects", cache / "git", cache / "trees", cache / "objects" / "md5"]
        for path in folders:
            assert mode(path) == 0o700, (path, oct(mode(path)))
        # Every folder under the cache is closed to group and others (so nothing inside can be
        # reached), and so is every file but the Git mirror's objects (libgit2 sets 0444 itself).
        for path in cache.rglob("*"):
            if path.is_symlink() or (path.is_file() and (cache / "git") in path.parents):
                continue
            assert mode(path) & 0o077 == 0, (path, oct(mode(path)))
        log = (tmp_path / "server.log").read_text()
        assert "narrowed the mode of a private file" in log and "keys.json" in log and str(salt) in log
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


# 7. A worker without a token answers its gateway only.

def test_a_tokenless_worker_refuses_foreign_hosts_and_cross_site_posts(demo, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    worker = Program([BIN, "worker", "--port", port, "--cache", tmp_path / "cache", "--dvc-config", Path(demo) / ".dvc/config"],
                     tmp_path / "worker.log", ready=answers(url))
    try:
        for host in ("evil.example", f"127.evil.example:{port}", f"localhost.evil.example:{port}"):
            assert requests.get(url + "/worker/v1/status", headers={"Host": host}, timeout=10).status_code == 403, host
        form = json.dumps({"md5": "0" * 32})
        cross_site = requests.post(url + "/worker/v1/unload", data=form, timeout=10,
                                   headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
        assert cross_site.status_code == 403 and cross_site.json()["code"] == "FORBIDDEN"
        plain = requests.post(url + "/worker/v1/unload", data=form, headers={"Content-Type": "text/plain"}, timeout=10)
        assert plain.status_code == 415
        assert requests.get(url + "/worker/v1/status", headers={"Origin": "https://evil.example"}, timeout=10).status_code == 403
        # Its gateway's requests (loopback name, JSON) still work.
        assert requests.get(url + "/worker/v1/status", timeout=10).status_code == 200
        assert requests.post(url + "/worker/v1/unload", json={"md5": "0" * 32}, timeout=10).status_code == 200
        assert requests.get(url + "/healthz", headers={"Host": "evil.example"}, timeout=10).status_code == 200
    finally:
        worker.stop()


# 8 and 9. Quotas that hold under concurrency and aliasing.

def test_tokens_per_minute_are_reserved_when_a_generation_starts(keyed):
    server = keyed
    key = create_key(server.cache, "four-tokens", "infer", "--tokens-per-minute", "4")
    barrier = threading.Barrier(6)
    outcomes = []

    def one():
        barrier.wait()
        outcomes.append(post(server, key, INFER, infer_input("Count to ten", maxTokens=8)).json())
    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    ran = [o for o in outcomes if "errors" not in o]
    refused = [o for o in outcomes if error_codes(o) == ["RATE_LIMITED"]]
    assert len(ran) == 1 and len(refused) == 5, outcomes
    healthy(server)


def test_each_generation_of_a_request_counts_and_their_number_is_bounded(keyed):
    server = keyed
    key = create_key(server.cache, "three-a-minute", "infer", "--requests-per-minute", "3")
    aliased = "mutation($input: InferenceInput!) { " + " ".join(f"a{i}: infer(input: $input) {{ id }}" for i in range(10)) + " }"
    body = post(server, key, aliased, TINY).json()
    # The request took one of the three and ran the first generation; two more counted and ran,
    # the fourth found the quota spent (a mutation's fields run in order, and the first error ends it).
    assert error_codes(body) == ["RATE_LIMITED"] and body["errors"][0]["path"] == ["a3"], body
    admin = create_key(server.cache, "generous", "admin")

    def recorded(caller):
        query = "query($c: String) { inferences(filter: { caller: $c }, first: 100) { edges { node { id } } } }"
        return len(post(server, admin, query, {"c": caller}).json()["data"]["inferences"]["edges"])
    assert recorded("three-a-minute") == 3
    assert post(server, key, "{ models { name } }").status_code == 429

    # However generous the key: at most max-generations-per-request (4 here) in one request.
    six = "mutation($input: InferenceInput!) { " + " ".join(f"a{i}: infer(input: $input) {{ id }}" for i in range(6)) + " }"
    body = post(server, admin, six, TINY).json()
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["path"] == ["a4"], body
    assert "max-generations-per-request" in body["errors"][0]["message"]
    assert recorded("generous") == 4
    many = post(server, admin, 'mutation { replayMany(filter: { model: "tiny-llama" }, against: "tiny-llama", sample: 5) { identical } }')
    assert error_codes(many.json()) == ["BAD_USER_INPUT"] and "max-generations-per-request" in many.text
    aliased_many = ("mutation { " + " ".join(f'r{i}: replayMany(filter: {{ model: "tiny-llama" }}, against: "tiny-llama", sample: 3) '
                                             "{ identical failed }" for i in range(3)) + " }")
    body = post(server, admin, aliased_many).json()
    assert sum(v["identical"] for v in body["data"].values() if v) <= 4, body
    healthy(server)


def test_mutations_are_bounded_by_the_mutation_timeout(demo, make_server):
    server = make_server(demo, env={"PEDIGREE_MUTATION_TIMEOUT": "2"})
    # Greedy counting goes on to maxTokens (about 10 s here), whatever the machine's speed.
    slow = {"input": {"modelRevisionID": "smollm2-135m", "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
                      "sampling": {"temperature": 0, "maxTokens": 1000}}}
    started = time.monotonic()
    body = server.gql(INFER, slow, status=504)
    assert error_codes(body) == ["DEADLINE_EXCEEDED"] and time.monotonic() - started < 30
    healthy(server)


# 10. Per-key series in /metrics.

def test_metrics_name_keys_only_to_audit_and_admin_scrapes(keyed):
    server = keyed
    reader = create_key(server.cache, "metrics-reader", "read")
    auditor = create_key(server.cache, "metrics-auditor", "audit")
    assert post(server, reader, "{ models { name } }").status_code == 200
    scraped = requests.get(server.url + "/metrics", headers=headers(reader), timeout=10).text
    assert "pedigree_key_" not in scraped and "metrics-reader" not in scraped and "pedigree_http_requests_total" in scraped
    audited = requests.get(server.url + "/metrics", headers=headers(auditor), timeout=10).text
    assert 'pedigree_key_requests_total{key="metrics-reader"}' in audited
    healthy(server)


# 11. Records belong to a key, not to its name.

def test_a_new_key_with_a_revoked_keys_name_reads_none_of_its_records(keyed):
    server = keyed
    old = create_key(server.cache, "reused-name", "infer")
    made = post(server, old, INFER, TINY).json()
    assert "errors" not in made, made
    record = made["data"]["infer"]["id"]
    pedigree("keys", "revoke", "reused-name", "--cache", server.cache)
    new = create_key(server.cache, "reused-name", "infer")
    assert post(server, new, "query($id: ID!) { inference(id: $id) { id } }", {"id": record}).json()["data"]["inference"] is None
    listed = post(server, new, "{ inferences { edges { node { id } } } }").json()
    assert listed["data"]["inferences"]["edges"] == []
    named = post(server, new, '{ inferences(filter: { caller: "reused-name" }) { edges { node { id } } } }').json()
    assert named["data"]["inferences"]["edges"] == []
    replay = post(server, new, "mutation($id: ID!) { replay(id: $id) { identical } }", {"id": record}).json()
    assert error_codes(replay) == ["NOT_FOUND"]
    # The new key's own records are its own; an auditor still sees both under the name.
    mine = post(server, new, INFER, TINY).json()["data"]["infer"]["id"]
    listed = post(server, new, "{ inferences { edges { node { id caller } } } }").json()["data"]["inferences"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [mine]
    auditor = create_key(server.cache, "reuse-auditor", "audit")
    both = post(server, auditor, '{ inferences(filter: { caller: "reused-name" }) { edges { node { id } } } }').json()
    assert {edge["node"]["id"] for edge in both["data"]["inferences"]["edges"]} == {record, mine}
    healthy(server)


# 12. TLS on the listener.

def make_certificate(folder, ca, name, serial):
    """A server certificate for 127.0.0.1 signed by the test's CA."""
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out", request],
                   check=True, capture_output=True)
    extensions = folder / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", request, "-CA", ca / "ca.crt", "-CAkey", ca / "ca.key", "-set_serial", str(serial),
                    "-days", "2", "-extfile", extensions, "-out", cert], check=True, capture_output=True)
    return cert, key


def served_serial(port, ca):
    context = ssl.create_default_context(cafile=str(ca))
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)


@pytest.fixture(scope="module")
def tls_server(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Pedigree Test CA",
                    "-keyout", folder / "ca.key", "-out", folder / "ca.crt"], check=True, capture_output=True)
    cert, key = make_certificate(folder, folder, "first", 1001)
    live_cert, live_key = folder / "tls.crt", folder / "tls.key"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    os.chmod(live_key, 0o644)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    ca = folder / "ca.crt"

    def ready():
        try:
            return requests.get(url + "/readyz", verify=str(ca), timeout=1).status_code == 200
        except requests.RequestException:
            return False
    cache = folder / "cache"
    server = Program([BIN, "serve", "--repo", demo, "--cache", cache, "--port", port, "--tls-certificate", live_cert, "--tls-key", live_key],
                     folder / "server.log", ready=ready)
    server.url, server.port, server.ca, server.folder, server.cache = url, port, ca, folder, str(cache)
    server.files = (live_cert, live_key)
    yield server
    server.stop()


def test_the_openai_sdk_and_a_websocket_client_connect_over_tls(tls_server):
    import openai
    server = tls_server
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                           http_client=openai.DefaultHttpx2Client(verify=ssl.create_default_context(cafile=str(server.ca))))
    assert "smollm2-135m" in {model.id.split("@")[0] for model in client.models.list()}
    answer = client.completions.create(model="tiny-llama", prompt="Hi", max_tokens=2, temperature=0, seed=1)
    assert answer.choices[0].finish_reason in ("length", "stop") and answer.usage.completion_tokens >= 1
    import aiohttp

    async def talk():
        context = ssl.create_default_context(cafile=str(server.ca))
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url.replace("https", "wss") + "/graphql", protocols=("graphql-transport-ws",),
                                          ssl=context) as ws:
                await ws.send_json({"type": "connection_init"})
                assert json.loads((await ws.receive(timeout=30)).data)["type"] == "connection_ack"
                await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": "{ models { name } }"}})
                return json.loads((await ws.receive(timeout=30)).data)
    first = asyncio.run(talk())
    assert first["type"] == "next" and first["payload"]["data"]["models"]
    # The server's key, left readable by others, was narrowed at start.
    assert mode(server.files[1]) == 0o600
    # HSTS on every answer; the web view's cookie is Secure (and expires).
    response = requests.get(server.url + "/healthz", verify=str(server.ca), timeout=10)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    key = create_key(server.cache, "tls-admin", "admin")
    signed = requests.post(server.url + "/ui/login", data={"key": key}, verify=str(server.ca), allow_redirects=False, timeout=10)
    cookie = signed.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "Max-Age=" in cookie
    out = requests.post(server.url + "/ui/logout", verify=str(server.ca), allow_redirects=False, timeout=10)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]


def test_plain_http_to_the_tls_port_gets_nothing_usable(tls_server):
    server = tls_server
    try:
        response = requests.get(f"http://127.0.0.1:{server.port}/graphql", params={"query": "{ models { name } }"}, timeout=10)
        assert "models" not in response.text and response.status_code != 200
    except requests.RequestException:
        pass  # the handshake failed and the connection was closed: nothing usable
    assert requests.get(server.url + "/healthz", verify=str(server.ca), timeout=10).status_code == 200


def test_a_renewed_certificate_is_served_without_a_restart(tls_server):
    server = tls_server
    assert served_serial(server.port, server.ca) == 1001
    cert, key = make_certificate(server.folder, server.folder, "second", 2002)
    live_cert, live_key = server.files
    # Written as a renewal tool does: new files moved into place.
    for source, target in ((key, live_key), (cert, live_cert)):
        staged = target.with_suffix(".new")
        staged.write_bytes(source.read_bytes())
        os.replace(staged, target)
    deadline = time.time() + 10
    while served_serial(server.port, server.ca) != 2002:
        assert time.time() < deadline, "the renewed certificate was not served"
        time.sleep(0.2)
    assert server.process.poll() is None
    assert requests.get(server.url + "/healthz", verify=str(server.ca), timeout=10).status_code == 200


# Also found: an external backend's stream and usage.

class FakeBackend(LoopbackHTTPServer):
    """An OpenAI-compatible backend that misbehaves as `mode` says: `long-line` streams one piece,
    then 2 MiB without a line end; `under-report` streams five pieces and reports one token."""

    def __init__(self):
        import http.server
        self.mode = "under-report"
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()

                def event(payload):
                    self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                piece = {"choices": [{"index": 0, "text": "x", "finish_reason": None}]}
                try:
                    if backend.mode == "long-line":
                        event(piece)
                        self.wfile.write(b"data: " + b"y" * (2 << 20))
                        return
                    for _ in range(5):
                        event(piece)
                    event({"choices": [{"index": 0, "text": "", "finish_reason": "length"}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.serve(Handler)


def test_an_external_backend_cannot_flood_a_line_or_under_report_tokens(demo, make_server):
    md5 = json.loads(pedigree("lineage", "tiny-llama", "--json", "--repo", str(demo)).stdout)["artifact"]["md5"]
    backend = FakeBackend()
    try:
        server = make_server(demo, "--external-backend", f"name=fake url={backend.url} md5={md5}")
        key = create_key(server.cache, "external-user", "infer", "--tokens-per-minute", "1000")
        auditor = create_key(server.cache, "external-auditor", "audit")
        answer = post(server, key, "mutation($input: InferenceInput!) { infer(input: $input) { usage { completionTokens } } }",
                      {"input": {**TINY["input"], "sampling": {"temperature": 0, "maxTokens": 5}}}).json()
        assert answer["data"]["infer"]["usage"]["completionTokens"] == 5, answer
        metrics = requests.get(server.url + "/metrics", headers=headers(auditor), timeout=10).text
        assert 'pedigree_key_generated_tokens_total{key="external-user"} 5.0' in metrics
        backend.mode = "long-line"
        flooded = post(server, key, INFER, TINY).json()
        assert error_codes(flooded) == ["WORKER_UNAVAILABLE"] and "longer than" in flooded["errors"][0]["message"], flooded
        healthy(server)
    finally:
        backend.stop()
