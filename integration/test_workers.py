"""Scale-out, first part: `pedigree worker` (the engine and a verified cache, no Git mirror) and
a gateway (`pedigree serve --worker …`) that sends generations to workers by artifact md5 with
rendezvous hashing. Checked against our own reading of the rule (SHA-256 of "md5\\nurl", highest
first), against `pedigree infer` in one process (same engine facts, same token ids), with a
worker killed and restarted."""
import json
import os
import signal
import subprocess
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from support.processes import Program, Server, answers
from support.secrets import secret
from support.tools import BIN, free_port, pedigree

INFER = """mutation($input: InferenceInput!) { infer(input: $input) { id result usage { completionTokens }
  modelRevision { artifact { md5 } } } }"""
RECORD = "query($id: ID!) { inference(id: $id) { status engineFacts { worker mode prefillChunk } signature { status method } } }"
REPLAY = "mutation($id: ID!) { replay(id: $id) { identical sameEngine replay { id } } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id } } }"


class Worker(Program):
    def __init__(self, demo, token_file, *extra, port=None):
        self.cache = tempfile.mkdtemp(prefix="pedigree-worker-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([BIN, "worker", "--port", self.port, "--cache", self.cache, "--dvc-config", Path(demo) / ".dvc/config", "--slots", "4",
                          *(["--worker-token-file", token_file] if token_file else []), *extra],
                         Path(self.cache) / "worker.log", ready=answers(self.url))

    def stop(self):
        super().stop()
        shutil.rmtree(self.cache, ignore_errors=True)


def preferred(md5, urls):
    """The rendezvous rule, written here from its description: highest big-endian first 8 bytes
    of SHA-256("md5\\nurl")."""
    import hashlib
    return max(urls, key=lambda url: int.from_bytes(hashlib.sha256(f"{md5}\n{url}".encode()).digest()[:8], "big"))


def events(response):
    """(event, data) pairs of a server-sent-event stream."""
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line[5:])


@pytest.fixture
def token_file(tmp_path):
    token = secret("worker-token-" + os.urandom(12).hex())
    path = tmp_path / "worker-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def artifact_of(demo, spec):
    out = json.loads(pedigree("lineage", spec, "--json", "--repo", str(demo)).stdout)
    artifact = out["artifact"]
    return {"md5": artifact["md5"], "hashName": "md5", "size": artifact["size"]}


def test_worker_answers_its_gateway_only_and_generates_as_one_process_does(demo, token_file, tmp_path):
    worker = Worker(demo, token_file)
    token = token_file.read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert requests.get(worker.url + "/worker/v1/status").status_code == 401
        assert requests.get(worker.url + "/worker/v1/status", headers={"Authorization": "Bearer wrong-token-wrong"}).status_code == 401
        status = requests.get(worker.url + "/worker/v1/status", headers=auth).json()
        assert status["models"] == [] and status["engine"]["mode"] == "invariant" and not status["draining"]

        artifact = artifact_of(demo, "smollm2-135m")
        # The full sampling, as the gateway sends it (the defaults of `pedigree infer`).
        sampling = {"temperature": 0, "topK": 40, "topP": 0.95, "minP": 0.05, "repeatPenalty": 1.0, "seed": 1, "maxTokens": 12, "stop": []}
        body = {"artifact": artifact, "prompt": "The capital of France is", "sampling": sampling}
        assert requests.post(worker.url + "/worker/v1/generate", json=body).status_code == 401
        assert requests.post(worker.url + "/worker/v1/load", json={"artifact": artifact}).status_code == 401
        assert requests.post(worker.url + "/worker/v1/unload", json={"md5": artifact["md5"]}).status_code == 401
        with requests.post(worker.url + "/worker/v1/generate", json=body, headers=auth, stream=True) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            got = list(events(response))
        assert [name for name, _ in got][-1] == "summary" and {name for name, _ in got[:-1]} == {"token"}
        summary = got[-1][1]
        assert "".join(data["text"] for _, data in got[:-1]) == summary["text"]
        # The same request in one process (pedigree infer, same engine facts): the same token ids.
        alone = json.loads(pedigree("infer", "smollm2-135m", "--prompt", "The capital of France is", "--temperature", "0", "--max-tokens",
                                    "12", "--json", "--repo", str(demo), "--cache", str(tmp_path / "cache")).stdout)
        assert summary["completionTokens"] == alone["summary"]["completionTokens"] and len(summary["completionTokens"]) > 0
        status = requests.get(worker.url + "/worker/v1/status", headers=auth).json()
        assert [m["md5"] for m in status["models"]] == [artifact["md5"]] and status["models"][0]["slots"] == 4

        # Bad input gets its code; weights that are not in the remote are ARTIFACT_UNAVAILABLE.
        bad = requests.post(worker.url + "/worker/v1/generate", data="{", headers={**auth, "Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["code"] == "BAD_USER_INPUT"
        both = requests.post(worker.url + "/worker/v1/generate", headers=auth, json={**body, "messages": [{"role": "user", "content": "hi"}]})
        assert both.status_code == 400 and both.json()["code"] == "BAD_USER_INPUT"
        # Fetching and loading happen after the answer starts (with heartbeats): weights that are
        # not in the remote end the stream with ARTIFACT_UNAVAILABLE.
        with requests.post(worker.url + "/worker/v1/generate", headers=auth, stream=True,
                           json={**body, "artifact": {**artifact, "md5": "0" * 32}}) as missing:
            assert missing.status_code == 200
            assert [(name, data["code"]) for name, data in events(missing)] == [("error", "ARTIFACT_UNAVAILABLE")]
        too_long = requests.post(worker.url + "/worker/v1/generate", headers=auth, json={**body, "sampling": {**sampling, "maxTokens": 10**6}})
        assert too_long.status_code == 400 and too_long.json()["code"] == "BAD_USER_INPUT"
    finally:
        worker.stop()
    # Beyond loopback a worker needs a token.
    refused = subprocess.run([BIN, "worker", "--host", "0.0.0.0", "--port", str(free_port()), "--cache", str(tmp_path / "w")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "worker-token-file" in refused.stderr


def test_gateway_routes_by_weights_and_survives_a_worker(demo, token_file):
    workers = [Worker(demo, token_file), Worker(demo, token_file)]
    urls = [w.url for w in workers]
    gateway = Server(demo, *[arg for url in urls for arg in ("--worker", url)], "--worker-token-file", str(token_file))
    try:
        md5 = {name: gateway.data('query($id: ID!) { modelRevision(id: $id) { artifact { md5 } } }', {"id": name})["modelRevision"]["artifact"]["md5"]
               for name in ("smollm2-135m", "tiny-llama")}
        expected = {name: preferred(value, urls) for name, value in md5.items()}

        def infer(name, index):
            body = gateway.data(INFER, {"input": {"modelRevisionID": name, "prompt": f"Tell me about {index}",
                                                  "sampling": {"temperature": 0.8, "seed": index, "maxTokens": 6}}})
            return body["infer"]

        ids = {name: [infer(name, index)["id"] for index in range(6)] for name in md5}
        for name, records in ids.items():
            for record_id in records:
                record = gateway.data(RECORD, {"id": record_id})["inference"]
                assert record["status"] == "completed" and record["engineFacts"]["worker"] == expected[name], (name, record)
                # The gateway checked the demo's signed weights before sending the work.
                assert record["signature"] == {"status": "verified", "method": "key" if name == "smollm2-135m" else "certificate"}
        # loadedModels shows what the workers hold, each model on its worker (from their reports).
        time.sleep(1.5)
        loaded = {(m["md5"], m["worker"]) for m in gateway.data("{ loadedModels { md5 worker slots } }")["loadedModels"]}
        assert loaded == {(md5[name], expected[name]) for name in md5}, loaded
        # /metrics: each worker up, and the models each holds with its slots (from their reports).
        from test_metrics import scrape, value
        samples = scrape(gateway)
        assert [value(samples, "pedigree_worker_up", worker=url) for url in urls] == [1, 1]
        assert {name: value(samples, "pedigree_worker_model_slots", worker=expected[name], md5=md5[name]) for name in md5} == {name: 4 for name in md5}
        # Replay from the gateway: the same worker, the same tokens.
        replay = gateway.data(REPLAY, {"id": ids["smollm2-135m"][0]})["replay"]
        assert replay["identical"] and replay["sameEngine"]

        # A worker killed: its models go to the other one at once (the failed connection is retried).
        doomed = next(w for w in workers if w.url == expected["smollm2-135m"])
        other = next(w for w in workers if w is not doomed)
        doomed.kill()
        started = time.time()
        moved = infer("smollm2-135m", 100)
        assert time.time() - started < 5
        assert gateway.data(RECORD, {"id": moved["id"]})["inference"]["engineFacts"]["worker"] == other.url
        deadline = time.time() + 5
        while value(scrape(gateway), "pedigree_worker_up", worker=doomed.url) != 0:
            assert time.time() < deadline, "pedigree_worker_up still says the killed worker is up"
            time.sleep(0.2)
        # Back after a restart on the same port: the next health poll brings it back.
        doomed.start()
        deadline = time.time() + 10
        while True:
            back = infer("smollm2-135m", 200)
            if gateway.data(RECORD, {"id": back["id"]})["inference"]["engineFacts"]["worker"] == doomed.url:
                break
            assert time.time() < deadline, "the restarted worker was not used again"
            time.sleep(0.5)
    finally:
        gateway.stop()
        for worker in workers:
            worker.stop()


def test_the_gateway_refuses_untrusted_weights_before_a_worker_sees_them(demo, token_file):
    """unsigned-weights: refuse on the gateway: smollm2@v1.0.0 (released unsigned) is refused
    with UNTRUSTED_WEIGHTS, for a generation and a load, and no worker loads it; the signed
    release goes through."""
    worker = Worker(demo, token_file)
    gateway = Server(demo, "--worker", worker.url, "--worker-token-file", str(token_file), "--unsigned-weights", "refuse")
    try:
        refused = gateway.gql(INFER, {"input": {"modelRevisionID": "smollm2-135m@v1.0.0", "prompt": "Hi", "sampling": {"maxTokens": 2}}})
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["UNTRUSTED_WEIGHTS"], refused
        load = gateway.gql('mutation { loadModel(id: "smollm2-135m@v1.0.0") { md5 } }')
        assert [e["extensions"]["code"] for e in load["errors"]] == ["UNTRUSTED_WEIGHTS"], load
        auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        assert requests.get(worker.url + "/worker/v1/status", headers=auth).json()["models"] == []
        signed = gateway.data(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Hi", "sampling": {"maxTokens": 2}}})["infer"]
        assert gateway.data(RECORD, {"id": signed["id"]})["inference"]["signature"]["status"] == "verified"
    finally:
        gateway.stop()
        worker.stop()


def test_a_stream_cut_by_a_dying_worker_ends_with_a_clear_code(demo, token_file):
    worker = Worker(demo, token_file)
    gateway = Server(demo, "--worker", worker.url, "--worker-token-file", str(token_file))
    try:
        gateway.data(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Warm up", "sampling": {"maxTokens": 1}}})
        outcome = {}

        def stream():
            with requests.post(gateway.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"}, timeout=120,
                               json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Once upon a time",
                                                                              "sampling": {"temperature": 0, "maxTokens": 400}}}}) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:") and line[5:].strip():
                        event = json.loads(line[5:])
                        if event.get("errors"):
                            outcome["error"] = event["errors"][0]["extensions"]["code"]
                        elif event["data"]["inferStream"]["token"] is not None:
                            outcome["tokens"] = outcome.get("tokens", 0) + 1

        reader = threading.Thread(target=stream)
        reader.start()
        deadline = time.time() + 30
        while outcome.get("tokens", 0) < 3 and time.time() < deadline:
            time.sleep(0.05)
        worker.kill()
        reader.join(timeout=30)
        assert outcome.get("error") == "WORKER_UNAVAILABLE", outcome
        failed = gateway.data('{ inferences(first: 5) { edges { node { status error } } } }')["inferences"]["edges"]
        assert failed[0]["node"]["status"] == "failed" and failed[0]["node"]["error"].startswith("WORKER_UNAVAILABLE")
        # With its only worker gone, a new request fails at once with the same code (nothing streamed, nowhere to retry).
        body = gateway.gql(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Hello", "sampling": {"maxTokens": 2}}})
        assert body["errors"][0]["extensions"]["code"] == "WORKER_UNAVAILABLE"
    finally:
        gateway.stop()
        worker.stop()


def test_replay_goes_to_a_worker_with_the_records_engine_facts(demo, token_file):
    """A record made on a worker with flash attention on replays only on such a worker: with the
    only other worker's facts differing, the replay says so; with a matching worker back, it runs
    there and is identical."""
    flash = Worker(demo, token_file, "--flash-attention", "true")
    plain = Worker(demo, token_file)
    gateway = Server(demo, "--worker", flash.url, "--worker-token-file", str(token_file))
    try:
        made = gateway.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"temperature": 0, "maxTokens": 4}}})
        record = gateway.data('query($id: ID!) { inference(id: $id) { engineFacts { flashAttention worker } } }', {"id": made["infer"]["id"]})
        assert record["inference"]["engineFacts"] == {"flashAttention": True, "worker": flash.url}
        gateway.restart("--worker", plain.url, "--worker-token-file", str(token_file))
        time.sleep(1.5)  # one health poll: the gateway knows the worker's facts
        refused = gateway.gql(REPLAY, {"id": made["infer"]["id"]})
        assert refused["errors"][0]["extensions"]["code"] == "WORKER_UNAVAILABLE"
        assert "engine facts" in refused["errors"][0]["message"] and "flash attention on" in refused["errors"][0]["message"]
        # New requests still go to the worker there is.
        assert gateway.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hi", "sampling": {"maxTokens": 2}}})["infer"]["id"]
        gateway.restart("--worker", plain.url, "--worker", flash.url, "--worker-token-file", str(token_file))
        time.sleep(1.5)
        replay = gateway.data(REPLAY, {"id": made["infer"]["id"]})["replay"]
        assert replay["identical"] and replay["sameEngine"]
        assert gateway.data(RECORD, {"id": replay["replay"]["id"]})["inference"]["engineFacts"]["worker"] == flash.url
    finally:
        gateway.stop()
        flash.stop()
        plain.stop()


def test_workers_from_a_dns_name(demo, token_file):
    """`--workers-dns localhost:PORT`: the name's addresses are the workers (as a Kubernetes
    headless Service's are); `localhost` resolves to 127.0.0.1 (and maybe ::1, where nothing
    listens: that member is found down and not used)."""
    worker = Worker(demo, token_file)
    gateway = Server(demo, "--workers-dns", f"localhost:{worker.port}", "--worker-token-file", str(token_file))
    try:
        made = gateway.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"maxTokens": 3}}})
        record = gateway.data(RECORD, {"id": made["infer"]["id"]})["inference"]
        assert record["status"] == "completed" and record["engineFacts"]["worker"] == worker.url
    finally:
        gateway.stop()
        worker.stop()
    bad = pedigree("serve", "--repo", str(demo), "--workers-dns", "no-port-here", check=False)
    assert bad.returncode == 2 and "workers-dns" in bad.stderr


def test_a_hung_worker_is_left_within_seconds(demo, token_file):
    """SIGSTOP (a hung process, or a link that drops everything): it still accepts connections but
    sends nothing, not even its heartbeat; the gateway gives up after three silent seconds,
    retries on the other worker, and uses the stopped one again once it answers (SIGCONT)."""
    workers = [Worker(demo, token_file), Worker(demo, token_file)]
    urls = [w.url for w in workers]
    gateway = Server(demo, *[arg for url in urls for arg in ("--worker", url)], "--worker-token-file", str(token_file))
    try:
        md5 = gateway.data('{ modelRevision(id: "tiny-llama") { artifact { md5 } } }')["modelRevision"]["artifact"]["md5"]
        stuck = next(w for w in workers if w.url == preferred(md5, urls))

        def infer():
            made = gateway.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"maxTokens": 3}}})
            return gateway.data(RECORD, {"id": made["infer"]["id"]})["inference"]["engineFacts"]["worker"]

        assert infer() == stuck.url
        stuck.process.send_signal(signal.SIGSTOP)
        started = time.time()
        assert infer() != stuck.url
        assert time.time() - started < 6
        stuck.process.send_signal(signal.SIGCONT)
        deadline = time.time() + 15
        while infer() != stuck.url:
            assert time.time() < deadline, "the worker was not used again after SIGCONT"
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.process.send_signal(signal.SIGCONT)
        gateway.stop()
        for worker in workers:
            worker.stop()


def test_load_and_unload_happen_on_the_workers(demo, token_file):
    """On a gateway, `loadModel`, `unloadModel` and the preload list act on the worker the weights
    rank first (which fetches them), not on the gateway's own engine."""
    workers = [Worker(demo, token_file), Worker(demo, token_file)]
    urls = [w.url for w in workers]
    auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    gateway = Server(demo, *[arg for url in urls for arg in ("--worker", url)], "--worker-token-file", str(token_file), "--preload", "tiny-llama")
    held = lambda url: [m["md5"] for m in requests.get(url + "/worker/v1/status", headers=auth, timeout=5).json()["models"]]
    try:
        md5 = {name: gateway.data('query($id: ID!) { modelRevision(id: $id) { artifact { md5 } } }', {"id": name})["modelRevision"]["artifact"]["md5"]
               for name in ("smollm2-135m", "tiny-llama")}
        # The preload list: on tiny-llama's first-ranked worker only.
        deadline = time.time() + 30
        while md5["tiny-llama"] not in held(preferred(md5["tiny-llama"], urls)):
            assert time.time() < deadline, "the preload did not reach the worker"
            time.sleep(0.2)
        assert all(md5["tiny-llama"] not in held(url) for url in urls if url != preferred(md5["tiny-llama"], urls))

        loaded = gateway.data('mutation { loadModel(id: "smollm2-135m") { md5 worker slots revisions } }')["loadModel"]
        first = preferred(md5["smollm2-135m"], urls)
        assert loaded["md5"] == md5["smollm2-135m"] and loaded["worker"] == first and loaded["slots"] == 4, loaded
        assert md5["smollm2-135m"] in held(first)
        assert gateway.data('mutation { unloadModel(id: "smollm2-135m") }')["unloadModel"] is True
        assert md5["smollm2-135m"] not in held(first)
        assert gateway.data('mutation { unloadModel(id: "smollm2-135m") }')["unloadModel"] is False
        # A model busy on its worker is not unloaded: OVERLOADED, as in one process. SmolLM2 and
        # 400 tokens: seconds of generation (the tiny model's 200 took less than the unload's
        # round trip on a loaded machine).
        outcome = {}
        reader = threading.Thread(target=lambda: outcome.update(gateway.gql(INFER, {"input": {
            "modelRevisionID": "smollm2-135m", "prompt": "Once upon a time", "sampling": {"temperature": 0, "maxTokens": 400}}})))
        reader.start()
        deadline = time.time() + 30
        while not any(m["activeSlots"] for m in requests.get(preferred(md5["smollm2-135m"], urls) + "/worker/v1/status", headers=auth,
                                                               timeout=5).json()["models"]):
            assert time.time() < deadline and reader.is_alive(), "the generation did not start"
            time.sleep(0.02)
        busy = gateway.gql('mutation { unloadModel(id: "smollm2-135m") }')
        reader.join(timeout=60)
        assert busy["errors"][0]["extensions"]["code"] == "OVERLOADED", busy
    finally:
        gateway.stop()
        for worker in workers:
            worker.stop()


def test_a_client_that_leaves_cancels_the_workers_generation(demo, token_file):
    worker = Worker(demo, token_file)
    auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    gateway = Server(demo, "--worker", worker.url, "--worker-token-file", str(token_file))
    active = lambda: sum(m["activeSlots"] for m in requests.get(worker.url + "/worker/v1/status", headers=auth, timeout=5).json()["models"])
    try:
        tokens = 0
        with requests.post(gateway.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"}, timeout=60,
                           json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Once upon a time",
                                                                          "sampling": {"temperature": 0, "maxTokens": 400}}}}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:") and '"token":"' in line.replace(" ", ""):
                    tokens += 1
                    if tokens == 3:
                        during = active()
                        break
        assert tokens == 3 and during == 1
        left = time.time()
        while active() != 0:
            assert time.time() - left < 5, "the worker kept generating after the client left"
            time.sleep(0.05)
        deadline = time.time() + 5
        while (node := gateway.data('{ inferences(first: 1) { edges { node { status finishReason } } } }')["inferences"]["edges"]) == []:
            assert time.time() < deadline
            time.sleep(0.1)
        assert node[0]["node"] == {"status": "cancelled", "finishReason": "cancelled"}, node
    finally:
        gateway.stop()
        worker.stop()


def test_a_gateway_drain_past_its_deadline_ends_the_workers_generations(demo, token_file):
    """SIGTERM to a gateway with a 1 s drain deadline: a short stream on a worker finishes, a long
    one ends `cancelled` at the deadline with its text so far (as in one process), both are in the
    ledger, and the worker's slot is free again."""
    import sqlite3
    from test_serving_core import sse_stream
    worker = Worker(demo, token_file)
    auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    gateway = Server(demo, "--worker", worker.url, "--worker-token-file", str(token_file), "--drain-timeout", "1")
    try:
        gateway.data(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Warm up", "sampling": {"maxTokens": 1}}})
        events = [[], []]
        jobs = [({"temperature": 0.8, "seed": 1, "maxTokens": 8}, "Tell a story"),
                ({"temperature": 0, "maxTokens": 1000}, "Count to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,")]
        threads = [threading.Thread(target=sse_stream, args=(gateway, "smollm2-135m", prompt, sampling, events[i]))
                   for i, (sampling, prompt) in enumerate(jobs)]
        for thread in threads:
            thread.start()
        deadline = time.time() + 60
        while not all(events):
            assert time.time() < deadline, "the streams did not start"
            time.sleep(0.01)
        signalled = time.time()
        gateway.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert gateway.process.wait(timeout=30) == 0
        finals = [[e for e in stream if e[0] == "payload"] for stream in events]
        assert [len(f) for f in finals] == [1, 1], events
        short, long = finals[0][0][1], finals[1][0][1]
        assert short["finishReason"] in ("length", "stop") and long["finishReason"] == "cancelled", (short, long)
        assert 0.9 < finals[1][0][2] - signalled < 5
        rows = dict(sqlite3.connect(Path(gateway.cache) / "ledger.sqlite").execute(
            "SELECT id, status FROM inference WHERE id IN (?, ?)", [short["id"], long["id"]]).fetchall())
        assert rows == {short["id"]: "completed", long["id"]: "cancelled"}
        held = requests.get(worker.url + "/worker/v1/status", headers=auth, timeout=5).json()["models"]
        deadline = time.time() + 5
        while any(m["activeSlots"] for m in held):
            assert time.time() < deadline, "the worker kept generating after the gateway's drain"
            time.sleep(0.05)
            held = requests.get(worker.url + "/worker/v1/status", headers=auth, timeout=5).json()["models"]
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
        gateway.stop()
        worker.stop()


def test_a_full_worker_spills_to_the_next_ranked_one(demo, token_file):
    """Bounded load: workers of one slot and no queue; while smollm2's first-ranked worker
    generates, the next request is refused there (OVERLOADED) and runs on the other worker."""
    from test_metrics import scrape, value
    workers = [Worker(demo, token_file, "--slots", "1", "--queue", "0"), Worker(demo, token_file, "--slots", "1", "--queue", "0")]
    urls = [w.url for w in workers]
    gateway = Server(demo, *[arg for url in urls for arg in ("--worker", url)], "--worker-token-file", str(token_file))
    try:
        md5 = gateway.data('{ modelRevision(id: "smollm2-135m") { artifact { md5 } } }')["modelRevision"]["artifact"]["md5"]
        first = preferred(md5, urls)
        gateway.data('mutation { loadModel(id: "smollm2-135m") { md5 } }')
        outcome = {}

        def stream():
            with requests.post(gateway.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"}, timeout=120,
                               json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Once upon a time",
                                                                              "sampling": {"temperature": 0, "maxTokens": 60}}}}) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:") and line[5:].strip():
                        event = json.loads(line[5:])["data"]["inferStream"]
                        outcome["tokens"] = outcome.get("tokens", 0) + (event["token"] is not None)
                        if event["payload"]:
                            outcome["id"] = event["payload"]["id"]

        reader = threading.Thread(target=stream)
        reader.start()
        deadline = time.time() + 60
        while outcome.get("tokens", 0) < 1:
            assert time.time() < deadline, "the first stream did not start"
            time.sleep(0.02)
        second = gateway.data(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Hello", "sampling": {"maxTokens": 3}}})["infer"]
        reader.join(timeout=120)
        assert gateway.data(RECORD, {"id": outcome["id"]})["inference"]["engineFacts"]["worker"] == first
        assert gateway.data(RECORD, {"id": second["id"]})["inference"]["engineFacts"]["worker"] != first
        assert value(scrape(gateway), "pedigree_worker_spills_total", worker=first, code="OVERLOADED") >= 1
    finally:
        gateway.stop()
        for worker in workers:
            worker.stop()
