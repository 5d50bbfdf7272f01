"""Access control as operators, clients and attackers meet it: API keys and roles over GraphQL
(HTTP, SSE, WebSocket) and the OpenAI routes, the safe default, quotas, and browser safety."""
import asyncio
import json
import subprocess
import threading
import time

import pytest
import requests

from support.processes import Server
from support.secrets import secret
from support.tools import BIN, error_codes, pedigree

SPEC = "smollm2-135m"
SAMPLING = {"temperature": 0, "maxTokens": 2, "seed": 1}
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id result } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id } } }"
ROLES = ["read", "infer", "audit", "admin"]
NOBODY = ["no key", "malformed key", "revoked key"]


def create_key(cache, name, role, *extra):
    """`pedigree keys create`; the key is the last line of its output."""
    out = pedigree("keys", "create", "--name", name, "--role", role, "--cache", str(cache), *extra).stdout
    key = secret(out.strip().splitlines()[-1])
    assert key.startswith("pdg_") and key not in out.strip().splitlines()[0]
    return key


def headers(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def post(server, key, query, variables=None, **extra):
    return requests.post(server.url + "/graphql", json={"query": query, "variables": variables or {}},
                         headers={**headers(key), **extra}, timeout=120)


def infer_input(prompt="Hello", **sampling):
    return {"input": {"modelRevisionID": SPEC, "prompt": prompt, "sampling": {**SAMPLING, **sampling}}}


@pytest.fixture(scope="module")
def keyed(demo):
    """A loopback server with keys of every role (alice and bob are two `infer` keys), one revoked."""
    server = Server(demo)
    keys = {role: create_key(server.cache, f"{role}-key", role) for role in ROLES}
    keys["infer"] = create_key(server.cache, "alice", "infer")
    keys["bob"] = create_key(server.cache, "bob", "infer")
    revoked = create_key(server.cache, "gone", "admin")
    pedigree("keys", "revoke", "gone", "--cache", server.cache)
    keys["no key"] = None
    keys["malformed key"] = "pdg_not-a-key"
    keys["revoked key"] = revoked
    # One inference of alice's, for the record-level rules.
    response = post(server, keys["infer"], INFER, infer_input("Alice asks"))
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    server.alice_inference = response.json()["data"]["infer"]["id"]
    response = post(server, keys["infer"], EVALUATE, EVALUATION)
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    server.alice_evaluation = response.json()["data"]["evaluate"]["id"]
    yield server, keys
    server.stop()


def operations(server):
    """Every operation of the schema: (query, variables, roles that may run it)."""
    everyone = set(ROLES)
    own = server.alice_inference
    return {
        "models": ("{ models { name } }", {}, everyone),
        "modelRevision": ("query($id: ID!) { modelRevision(id: $id) { id datasets { md5 } } }", {"id": SPEC}, everyone),
        "model": ('{ model(name: "smollm2-135m") { versions stages } }', {}, everyone),
        "repository": ("{ repository { head source } }", {}, everyone),
        "loadedModels": ("{ loadedModels { md5 } }", {}, everyone),
        "transfers": ("{ transfers { id } }", {}, {"admin"}),
        "inference": ("query($id: ID!) { inference(id: $id) { id caller } }", {"id": own}, {"infer", "audit", "admin"}),
        "inferences": ("{ inferences { edges { node { id caller } } } }", {}, {"infer", "audit", "admin"}),
        "infer": (INFER, infer_input(), {"infer", "admin"}),
        "replay": ("mutation($id: ID!) { replay(id: $id) { identical } }", {"id": own}, {"infer", "audit", "admin"}),
        "pull": ("mutation($id: ID!) { pull(id: $id) { cached } }", {"id": SPEC}, {"admin"}),
        "refresh": ("mutation { refresh { head } }", {}, {"admin"}),
        "loadModel": ("mutation($id: ID!) { loadModel(id: $id) { md5 } }", {"id": SPEC}, {"admin"}),
        "unloadModel": ("mutation($id: ID!) { unloadModel(id: $id) }", {"id": "tiny-llama"}, {"admin"}),
        "evaluate": (EVALUATE, EVALUATION, {"infer", "admin"}),
        "evaluation": ("query($id: ID!) { evaluation(id: $id) { id scores { mean } } }", {"id": server.alice_evaluation},
                       {"infer", "audit", "admin"}),
        "evaluations": ("{ evaluations { id } }", {}, {"infer", "audit", "admin"}),
        "compareEvaluations": ("query($id: ID!) { compareEvaluations(a: $id, b: $id) { unchanged } }", {"id": server.alice_evaluation},
                               {"infer", "audit", "admin"}),
        "cancelEvaluation": ("mutation { cancelEvaluation(id: \"ev0\") }", {}, {"infer", "admin"}),
        # The tree's heads say how many answers the server gave (every key's): auditors and admins.
        "treeHead": ("{ treeHead { size } }", {}, {"audit", "admin"}),
        "consistencyProof": ("{ consistencyProof(from: 1, to: 1) { hashes } }", {}, {"audit", "admin"}),
        "signTreeHead": ("mutation { signTreeHead { size } }", {}, {"admin"}),
    }


EVALUATE = "mutation($input: EvaluateInput!) { evaluate(input: $input) { id } }"
EVALUATION = {"input": {"modelRevisionID": "tiny-llama", "dataset": "data/eval/qa.jsonl", "sampling": {"maxTokens": 2}}}


def test_an_evaluation_is_its_runners_own(keyed):
    """Another infer key neither reads alice's evaluation nor compares with it; running the same
    evaluation gives it one of its own (the id covers the key), so nobody writes into another's."""
    server, keys = keyed
    query = "query($id: ID!) { evaluation(id: $id) { id } }"
    assert post(server, keys["bob"], query, {"id": server.alice_evaluation}).json()["data"]["evaluation"] is None
    compared = post(server, keys["bob"], "query($id: ID!) { compareEvaluations(a: $id, b: $id) { unchanged } }", {"id": server.alice_evaluation})
    assert error_codes(compared.json()) == ["NOT_FOUND"]
    listed = post(server, keys["bob"], "{ evaluations { id } }", {}).json()["data"]["evaluations"]
    assert server.alice_evaluation not in [e["id"] for e in listed]
    bobs = post(server, keys["bob"], EVALUATE, EVALUATION).json()["data"]["evaluate"]["id"]
    assert bobs != server.alice_evaluation
    assert post(server, keys["infer"], query, {"id": server.alice_evaluation}).json()["data"]["evaluation"]["id"] == server.alice_evaluation


def test_the_role_matrix_over_graphql_http(keyed):
    server, keys = keyed
    for name, (query, variables, allowed) in operations(server).items():
        for who in NOBODY + ROLES:
            response = post(server, keys[who], query, variables)
            body = response.json()
            if who in NOBODY:
                assert response.status_code == 401, (name, who, response.text)
                assert error_codes(body) == ["UNAUTHENTICATED"] and response.headers["WWW-Authenticate"] == "Bearer"
            elif who in allowed:
                assert response.status_code == 200 and "errors" not in body, (name, who, response.text)
            else:
                assert response.status_code == 403 and error_codes(body) == ["FORBIDDEN"], (name, who, response.text)
                assert "may not run" in body["errors"][0]["message"]


def test_the_role_matrix_over_sse(keyed):
    server, keys = keyed
    for who in NOBODY + ROLES:
        response = post(server, keys[who], STREAM, infer_input(), Accept="text/event-stream")
        if who in NOBODY:
            assert response.status_code == 401 and error_codes(response.json()) == ["UNAUTHENTICATED"]
        elif who in ("infer", "admin"):
            assert response.status_code == 200 and "event: complete" in response.text, (who, response.text)
        else:
            assert response.status_code == 403 and error_codes(response.json()) == ["FORBIDDEN"], (who, response.text)


def websocket(server, key, messages, origin=None):
    """Connects with graphql-transport-ws, sends connection_init (with the key in its payload) and
    each subscribe; answers ("closed", code) or ("acked", {id: [messages until complete/error]})."""
    import aiohttp

    async def talk():
        async with aiohttp.ClientSession() as session:
            extra = {"Origin": origin} if origin else {}
            async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",),
                                          headers=extra) as ws:
                init = {"type": "connection_init"}
                if key:
                    init["payload"] = {"Authorization": f"Bearer {key}"}
                await ws.send_json(init)
                first = await ws.receive(timeout=30)
                if first.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return "closed", ws.close_code
                assert json.loads(first.data)["type"] == "connection_ack"
                results = {}
                for id, (query, variables) in messages.items():
                    await ws.send_json({"type": "subscribe", "id": id, "payload": {"query": query, "variables": variables}})
                    got = []
                    while True:
                        message = json.loads((await ws.receive(timeout=120)).data)
                        got.append(message)
                        if message["type"] in ("complete", "error"):
                            break
                    results[id] = got
                return "acked", results
    return asyncio.run(talk())


def test_the_role_matrix_over_websocket(keyed):
    server, keys = keyed
    messages = {
        "models": ("{ models { name } }", {}),
        "refresh": ("mutation { refresh { head } }", {}),
        "stream": (STREAM, infer_input()),
    }
    allowed = {"models": set(ROLES), "refresh": {"admin"}, "stream": {"infer", "admin"}}
    for who in NOBODY + ROLES:
        outcome, detail = websocket(server, keys[who], messages)
        if who in NOBODY:
            assert (outcome, detail) == ("closed", 4403), who
            continue
        assert outcome == "acked", who
        for id, got in detail.items():
            if who in allowed[id]:
                assert got[-1]["type"] == "complete" and got[0]["type"] == "next", (who, id, got)
            else:
                assert got[-1]["type"] == "error" and got[-1]["payload"][0]["extensions"]["code"] == "FORBIDDEN", (who, id, got)
    # The key can also come as the upgrade request's header (non-browser clients).
    import aiohttp

    async def by_header():
        async with aiohttp.ClientSession(headers=headers(keys["read"])) as session:
            async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",)) as ws:
                await ws.send_json({"type": "connection_init"})
                return json.loads((await ws.receive(timeout=30)).data)["type"]
    assert asyncio.run(by_header()) == "connection_ack"


def test_the_role_matrix_over_the_openai_routes(keyed):
    server, keys = keyed
    chat = {"model": SPEC, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}
    for who in NOBODY + ROLES:
        listing = requests.get(server.url + "/v1/models", headers=headers(keys[who]), timeout=30)
        answer = requests.post(server.url + "/v1/chat/completions", json=chat, headers=headers(keys[who]), timeout=120)
        if who in NOBODY:
            for response in (listing, answer):
                assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED", (who, response.text)
            continue
        assert listing.status_code == 200 and listing.json()["data"], (who, listing.text)
        if who in ("infer", "admin"):
            assert answer.status_code == 200 and answer.json()["choices"], (who, answer.text)
        else:
            assert answer.status_code == 403, (who, answer.text)
            assert answer.json()["error"] == {"code": "FORBIDDEN", "type": "forbidden", "message": answer.json()["error"]["message"], "param": None}
    # The OpenAI SDK sees the same as an ordinary client.
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=keys["read"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(**chat)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="pdg_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_an_infer_key_sees_only_its_own_inferences(keyed):
    server, keys = keyed
    alice, bob, auditor = keys["infer"], keys["bob"], keys["audit"]
    bobs = post(server, bob, INFER, infer_input("Bob asks")).json()["data"]["infer"]["id"]
    listing = "query($f: InferenceFilter) { inferences(filter: $f, first: 100) { edges { node { id caller } } } }"

    def callers(key, filter=None):
        body = post(server, key, listing, {"f": filter}).json()
        return body, [edge["node"]["caller"] for edge in body["data"]["inferences"]["edges"]] if body.get("data") else None
    assert set(callers(alice)[1]) == {"alice"} and set(callers(bob)[1]) == {"bob"}
    # The key's name is the recorded caller, and audit filters by it.
    assert {"alice", "bob"} <= set(callers(auditor)[1])
    assert set(callers(auditor, {"caller": "bob"})[1]) == {"bob"}
    body, _ = callers(bob, {"caller": "alice"})
    assert error_codes(body) == ["FORBIDDEN"]
    # Another's record is as absent as an unknown id, for reading and for replay.
    assert post(server, bob, "query($id: ID!) { inference(id: $id) { id } }", {"id": server.alice_inference}).json()["data"] == {"inference": None}
    assert post(server, alice, "query($id: ID!) { inference(id: $id) { caller } }", {"id": bobs}).json()["data"] == {"inference": None}
    replay = post(server, bob, "mutation($id: ID!) { replay(id: $id) { identical } }", {"id": server.alice_inference}).json()
    assert error_codes(replay) == ["NOT_FOUND"]
    assert post(server, auditor, "query($id: ID!) { inference(id: $id) { caller } }", {"id": bobs}).json()["data"]["inference"]["caller"] == "bob"


def test_keys_list_and_revoke_take_effect_on_the_running_server(keyed):
    server, keys = keyed
    listed = json.loads(pedigree("keys", "list", "--json", "--cache", server.cache).stdout)
    assert {key["name"] for key in listed} >= {"alice", "bob", "gone", "read-key"}
    assert all("sha256" not in key for key in listed)
    text = pedigree("keys", "list", "--cache", server.cache).stdout
    for key in keys.values():
        if key:
            assert key not in text
    late = create_key(server.cache, "late", "read")
    assert post(server, late, "{ models { name } }").status_code == 200
    pedigree("keys", "revoke", "late", "--cache", server.cache)
    response = post(server, late, "{ models { name } }")
    assert response.status_code == 401 and "revoked" in response.json()["errors"][0]["message"]
    # Bad commands are clear errors.
    assert pedigree("keys", "create", "--name", "alice", "--role", "read", "--cache", server.cache, check=False).returncode != 0
    result = pedigree("keys", "create", "--name", "x", "--role", "root", "--cache", server.cache, check=False)
    assert result.returncode != 0 and "--role must be one of read, infer, audit, admin" in result.stderr
    assert pedigree("keys", "revoke", "nobody", "--cache", server.cache, check=False).returncode == 1


def test_health_and_graphiql_need_no_key_and_metrics_need_one(keyed):
    server, keys = keyed
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
    assert requests.get(server.url + "/graphql", headers={"Accept": "text/html"}, timeout=10).status_code == 200
    assert requests.get(server.url + "/metrics", timeout=10).status_code == 401
    # Series by key name only for scrapes that may see every caller (audit, admin).
    for role in ("read", "infer"):
        metrics = requests.get(server.url + "/metrics", headers=headers(keys[role]), timeout=10).text
        assert 'pedigree_graphql_errors_total{code="FORBIDDEN"}' in metrics
        assert "pedigree_key_" not in metrics and "alice" not in metrics, role
    for role in ("audit", "admin"):
        metrics = requests.get(server.url + "/metrics", headers=headers(keys[role]), timeout=10).text
        assert 'pedigree_key_requests_total{key="alice"}' in metrics
        for key in keys.values():
            if key:
                assert key not in metrics


# The safe default.

def test_a_public_address_without_keys_refuses_to_start(demo, tmp_path):
    result = subprocess.run([BIN, "serve", "--repo", str(demo), "--cache", str(tmp_path), "--host", "0.0.0.0", "--port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without API keys" in result.stderr and "--insecure-no-auth" in result.stderr


def test_insecure_no_auth_serves_openly_with_a_warning(demo, make_server):
    server = make_server(demo, "--host", "0.0.0.0", "--insecure-no-auth")
    assert post(server, None, "{ models { name } }").status_code == 200
    log = open(server.log.name).read()
    assert "without authentication (--insecure-no-auth)" in log and "warning" in log.lower()


def test_a_public_address_with_a_key_requires_it(demo, tmp_path):
    cache = tmp_path / "cache"
    key = create_key(cache, "ops", "read")
    server = Server(demo, "--host", "0.0.0.0", cache=cache, log=tmp_path / "server.log")
    try:
        assert post(server, None, "{ models { name } }").status_code == 401
        assert post(server, key, "{ models { name } }").status_code == 200
    finally:
        server.stop()


def test_a_corrupt_keys_file_refuses_to_start(demo, tmp_path):
    (tmp_path / "keys.json").write_text("{ not json")
    result = subprocess.run([BIN, "serve", "--repo", str(demo), "--cache", str(tmp_path), "--port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "keys file" in result.stderr


# Quotas.

def test_past_the_request_quota_the_retry_time_works(demo, make_server):
    server = make_server(demo)
    key = create_key(server.cache, "burst", "read", "--requests-per-minute", "30")
    for _ in range(30):
        assert post(server, key, "{ models { name } }").status_code == 200
    limited = post(server, key, "{ models { name } }")
    assert limited.status_code == 429 and error_codes(limited.json()) == ["RATE_LIMITED"]
    wait = int(limited.headers["Retry-After"])
    assert limited.json()["errors"][0]["extensions"]["retryAfterSeconds"] == wait and 1 <= wait <= 2
    rest = requests.get(server.url + "/v1/models", headers=headers(key), timeout=10)
    assert rest.status_code == 429 and rest.json()["error"]["code"] == "RATE_LIMITED" and "Retry-After" in rest.headers
    # Over WebSocket each operation counts: the socket stays, the operation gets RATE_LIMITED.
    outcome, results = websocket(server, key, {"1": ("{ models { name } }", {})})
    assert outcome == "acked" and results["1"][-1]["type"] == "error"
    assert results["1"][-1]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert results["1"][-1]["payload"][0]["extensions"]["retryAfterSeconds"] >= 1
    time.sleep(int(rest.headers["Retry-After"]))
    assert post(server, key, "{ models { name } }").status_code == 200
    # Another key is not affected; the counters are per key name.
    other = create_key(server.cache, "calm", "audit")
    assert post(server, other, "{ models { name } }").status_code == 200
    metrics = requests.get(server.url + "/metrics", headers=headers(other), timeout=10).text
    limited_count = [line for line in metrics.splitlines() if line.startswith('pedigree_key_rate_limited_total{key="burst"}')]
    assert limited_count and float(limited_count[0].split()[-1]) >= 2


def test_generation_quotas_concurrency_and_tokens(demo, make_server):
    server = make_server(demo)
    single = create_key(server.cache, "single", "infer", "--concurrent-generations", "1")
    started = threading.Event()
    done = []

    def long_stream():
        with requests.post(server.url + "/graphql", stream=True, timeout=120,
                           headers={**headers(single), "Accept": "text/event-stream"},
                           json={"query": STREAM, "variables": infer_input("Tell a long story", maxTokens=400)}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:") and '"token"' in line:
                    started.set()
            done.append(r.status_code)
    thread = threading.Thread(target=long_stream)
    thread.start()
    assert started.wait(120)
    second = post(server, single, INFER, infer_input())
    assert second.status_code == 200 and error_codes(second.json()) == ["RATE_LIMITED"], second.text
    assert second.json()["errors"][0]["extensions"]["retryAfterSeconds"] >= 1
    rest = requests.post(server.url + "/v1/completions", headers=headers(single), timeout=60,
                         json={"model": SPEC, "prompt": "Hi", "max_tokens": 2})
    assert rest.status_code == 429 and int(rest.headers["Retry-After"]) >= 1
    thread.join(120)
    assert done == [200]
    # The slot is back once the stream ended.
    assert "errors" not in post(server, single, INFER, infer_input()).json()

    thrifty = create_key(server.cache, "thrifty", "infer", "--tokens-per-minute", "4")
    first = post(server, thrifty, INFER, infer_input(maxTokens=8)).json()
    assert "errors" not in first, first
    refused = post(server, thrifty, INFER, infer_input()).json()
    assert error_codes(refused) == ["RATE_LIMITED"] and refused["errors"][0]["extensions"]["retryAfterSeconds"] >= 15
    auditor = create_key(server.cache, "auditor", "audit")
    metrics = requests.get(server.url + "/metrics", headers=headers(auditor), timeout=10).text
    assert 'pedigree_key_generated_tokens_total{key="thrifty"} 8.0' in metrics


# Browser safety.

@pytest.fixture(scope="module")
def open_server(demo):
    """The demo as script/server runs it (loopback, no keys), with one allowed origin."""
    server = Server(demo, "--allowed-origin", "http://app.example:3000")
    yield server
    server.stop()


def ledger_size(server):
    body = post(server, None, "{ inferences(first: 1000) { edges { node { id } } } }").json()
    return len(body["data"]["inferences"]["edges"])


def test_a_cross_site_text_plain_post_is_refused_and_runs_nothing(open_server):
    server = open_server
    before = ledger_size(server)
    form = json.dumps({"query": INFER, "variables": infer_input()})
    # What a form on another site can send without a preflight.
    cross_site = requests.post(server.url + "/graphql", data=form, timeout=30,
                               headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert cross_site.status_code == 403 and error_codes(cross_site.json()) == ["FORBIDDEN"]
    assert "Access-Control-Allow-Origin" not in cross_site.headers
    plain = requests.post(server.url + "/graphql", data=form, headers={"Content-Type": "text/plain"}, timeout=30)
    assert plain.status_code == 415
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert requests.post(server.url + "/graphql", data=form, headers={"Content-Type": content_type}, timeout=30).status_code == 415
    # A foreign origin with JSON is refused as well (a page could send it with a preflight).
    foreign = requests.post(server.url + "/graphql", json={"query": "mutation { refresh { head } }"},
                            headers={"Origin": "http://127.0.0.1.evil.example"}, timeout=30)
    assert foreign.status_code == 403
    assert ledger_size(server) == before


def test_allowed_and_same_origins_work_and_only_listed_ones_get_cors(open_server):
    server = open_server
    allowed = post(server, None, "{ models { name } }", Origin="http://app.example:3000")
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == "http://app.example:3000"
    same = post(server, None, "{ models { name } }", Origin=server.url)
    assert same.status_code == 200 and "Access-Control-Allow-Origin" not in same.headers
    preflight = requests.options(server.url + "/graphql", timeout=10, headers={
        "Origin": "http://app.example:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert requests.options(server.url + "/graphql", headers={"Origin": "https://evil.example"}, timeout=10).status_code == 403
    # Reads from a foreign page are answered without CORS headers, so its script cannot read them.
    read = requests.get(server.url + "/healthz", headers={"Origin": "https://evil.example"}, timeout=10)
    assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


def test_a_websocket_from_a_foreign_origin_is_refused(open_server):
    server = open_server
    import aiohttp

    async def upgrade(origin):
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",),
                                              headers={"Origin": origin}) as ws:
                    await ws.send_json({"type": "connection_init"})
                    return json.loads((await ws.receive(timeout=30)).data)["type"]
            except aiohttp.WSServerHandshakeError as error:
                return error.status
    # Not upgraded: Hummingbird answers a declined upgrade with 400 and closes the connection.
    assert asyncio.run(upgrade("https://evil.example")) == 400
    assert "websocket upgrade refused" in open(server.log.name).read()
    assert asyncio.run(upgrade("http://app.example:3000")) == "connection_ack"
    assert asyncio.run(upgrade(server.url)) == "connection_ack"

    async def rebound():
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",),
                                              headers={"Host": f"evil.example:{server.port}"}):
                    return "upgraded"
            except aiohttp.WSServerHandshakeError as error:
                return error.status
    assert asyncio.run(rebound()) == 400


def test_a_keyless_server_answers_loopback_names_only(open_server):
    """DNS rebinding: a page on evil.example that resolves its own name to 127.0.0.1 is
    same-origin with itself, so the Origin check passes; the Host it sends does not."""
    server = open_server
    query = {"query": "{ inferences { edges { node { prompt } } } }"}
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"app.example:{server.port}"):
        assert requests.get(server.url + "/graphql", params=query, headers={"Host": host}, timeout=10).status_code == 200, host
    rebound = requests.get(server.url + "/graphql", params=query, headers={"Host": f"evil.example:{server.port}"}, timeout=10)
    assert rebound.status_code == 403 and error_codes(rebound.json()) == ["FORBIDDEN"]
    post = requests.post(server.url + "/graphql", json=query, timeout=10,
                         headers={"Host": f"evil.example:{server.port}", "Origin": f"http://evil.example:{server.port}"})
    assert post.status_code == 403


def test_graphiql_loads_offline_in_headless_chromium(open_server, tmp_path):
    import shutil
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed (script/bootstrap installs Debian's chromium)")
    server = open_server
    page = requests.get(server.url + "/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    # The page names no other host.
    assert "http://" not in page.text and "https://" not in page.text and "//" not in page.text.replace("://", "")
    # Every host but the server's resolves to nothing: the page must work with the server alone.
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000", "--dump-dom",
         server.url + "/graphql"],
        capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert "graphiql-container" in dom, (result.stderr[-2000:], dom[:2000])
    assert "Loading GraphiQL…" not in dom
    # GraphiQL ran its default lineage query against the schema (introspection) without errors.
    assert "Pedigree: where did this model come from?" in dom or "where did this model come from" in dom
