"""Inference with llama.cpp in-process, checked against llama-cpp-python (the same pinned
llama.cpp, loaded from our own build) and against itself across restarts."""
import concurrent.futures
import os
import sys
import time
from pathlib import Path

import pytest
import requests

from support.processes import Server
from support.tools import ROOT, error_codes, pedigree

INFER = """mutation($input: InferenceInput!) { infer(input: $input) {
  id result finishReason seed usage { promptTokens completionTokens }
  timings { timeToFirstTokenMs totalMs tokensPerSecond }
  modelRevision { id artifact { md5 } datasets { path } parameters { key value } } } }"""
LOADED = "{ loadedModels { md5 revisions memoryBytes slots activeSlots queueDepth } }"
PROMPT = "The capital of France is"


def infer(server, spec, prompt=PROMPT, status=200, **sampling):
    body = server.gql(INFER, {"input": {"modelRevisionID": spec, "prompt": prompt, "sampling": sampling}}, status=status)
    return body


def answer(server, spec, **kwargs):
    body = infer(server, spec, **kwargs)
    assert "errors" not in body, body
    return body["data"]["infer"]


@pytest.fixture(scope="module")
def llama_cpp():
    """llama-cpp-python 0.3.36 from the sdist script/build-llama unpacked, on our libllama."""
    os.environ["LLAMA_CPP_LIB_PATH"] = str(ROOT / ".deps/llama/lib")
    sys.path.insert(0, str(ROOT / ".deps/src/llama_cpp_python-0.3.36"))
    import llama_cpp
    return llama_cpp


def test_greedy_output_equals_llama_cpp_python(demo, llama_cpp, tmp_path):
    cache = tmp_path / "cache"
    ours = __import__("json").loads(pedigree("infer", "smollm2-135m", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", "24",
                                             "--json", "--repo", str(demo), "--cache", str(cache)).stdout)
    path = pedigree("pull", "smollm2-135m", "--repo", str(demo), "--cache", str(cache)).stdout.strip().splitlines()[-1]
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_batch=512, n_threads=os.cpu_count(), verbose=False)
    prompt_tokens = llm.tokenize(PROMPT.encode(), add_bos=True, special=False)
    assert ours["summary"]["promptTokens"] == prompt_tokens
    theirs = []
    for token in llm.generate(prompt_tokens, temp=0.0, repeat_penalty=1.0, top_k=1):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or len(theirs) == 24:
            break
        theirs.append(token)
    assert ours["summary"]["completionTokens"] == theirs
    assert "Paris" in ours["summary"]["text"]  # coherent English, not noise
    assert ours["revision"].startswith("smollm2-135m@")


def test_answers_carry_lineage_seed_and_usage(server):
    got = answer(server, "tiny-llama#prod", temperature=0.7, seed=7, maxTokens=8)
    assert got["seed"] == 7 and got["usage"]["completionTokens"] <= 8 and got["usage"]["promptTokens"] > 0
    assert got["modelRevision"]["id"].startswith("tiny-llama@") and got["modelRevision"]["datasets"]
    assert got["finishReason"] in ("length", "stop") and len(got["id"]) == 26
    random_seed = answer(server, "tiny-llama", temperature=0.7, maxTokens=4)["seed"]
    assert 0 <= random_seed < 2**32 - 1


def test_same_seed_same_output_across_restart(demo, make_server):
    sampling = {"temperature": 0.9, "seed": 1234, "maxTokens": 24}
    first = make_server(demo)
    a = answer(first, "smollm2-135m", **sampling)["result"]
    assert answer(first, "smollm2-135m", **sampling)["result"] == a
    assert answer(first, "smollm2-135m", **{**sampling, "seed": 99})["result"] != a
    first.stop()
    second = make_server(demo)
    assert answer(second, "smollm2-135m", **sampling)["result"] == a


def test_revisions_with_different_weights_differ_and_same_md5_shares_an_instance(server):
    old = answer(server, "tiny-llama@v1.0.0", temperature=0, maxTokens=12)
    new = answer(server, "tiny-llama", temperature=0, maxTokens=12)
    assert old["modelRevision"]["artifact"]["md5"] != new["modelRevision"]["artifact"]["md5"]
    assert old["result"] != new["result"]
    a = answer(server, "smollm2-135m@v1.1.0", temperature=0, maxTokens=4)
    b = answer(server, "smollm2-135m@main", temperature=0, maxTokens=4)
    md5 = a["modelRevision"]["artifact"]["md5"]
    assert b["modelRevision"]["artifact"]["md5"] == md5
    loaded = [m for m in server.data(LOADED)["loadedModels"] if m["md5"] == md5]
    assert len(loaded) == 1 and a["modelRevision"]["id"] in loaded[0]["revisions"]


def stream(server, spec, **sampling):
    """One inferStream over SSE: (the text pieces, the final payload)."""
    response = requests.post(server.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                             json={"query": STREAM, "variables": {"input": {"modelRevisionID": spec, "prompt": PROMPT, "sampling": sampling}}})
    tokens, payload = [], None
    for event, data in sse_events(response):
        if event == "next":
            value = __import__("json").loads(data)["data"]["inferStream"]
            if value["token"] is not None:
                tokens.append(value["token"])
            else:
                payload = value["payload"]
    return tokens, payload


def test_8_concurrent_streams_on_one_model_all_complete(server):
    solo = answer(server, "smollm2-135m", temperature=0, maxTokens=16)["result"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: stream(server, "smollm2-135m", temperature=0, maxTokens=16), range(8)))
    assert all(payload["usage"]["completionTokens"] == 16 for _, payload in results)
    assert all("".join(tokens) == payload["result"] == solo for tokens, payload in results), [p["result"] for _, p in results]


def test_full_slots_and_queue_answer_overloaded_at_once(demo, make_server):
    server = make_server(demo, "--slots", "1", "--queue", "1")
    answer(server, "smollm2-135m", maxTokens=1)  # loaded
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = [pool.submit(answer, server, "smollm2-135m", temperature=0, maxTokens=200) for _ in range(2)]
        deadline = time.time() + 30
        while True:
            status = [m for m in server.data(LOADED)["loadedModels"]][0]
            if status["activeSlots"] == 1 and status["queueDepth"] == 1:
                break
            assert time.time() < deadline, status
            time.sleep(0.01)
        start = time.time()
        body = infer(server, "smollm2-135m", temperature=0, maxTokens=4)
        assert error_codes(body) == ["OVERLOADED"] and time.time() - start < 1.0
        assert all(f.result()["usage"]["completionTokens"] > 0 for f in running)


def test_a_loading_model_does_not_delay_a_loaded_one(demo, make_server):
    server = make_server(demo)
    answer(server, "tiny-llama", maxTokens=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        loading = pool.submit(server.data, 'mutation { loadModel(id: "smollm2-135m#prod") { md5 } }')
        start = time.time()
        quick = answer(server, "tiny-llama", temperature=0, maxTokens=4)
        quick_done = time.time() - start
        assert not loading.done() or quick_done < 0.5
        assert loading.result()["loadModel"]["md5"]


def test_bad_input_and_broken_weights_give_clear_errors(demo, make_server, tmp_path):
    server = make_server(demo)
    assert error_codes(infer(server, "tiny-llama", maxTokens=0)) == ["BAD_USER_INPUT"]
    assert error_codes(infer(server, "tiny-llama", maxTokens=10**6)) == ["BAD_USER_INPUT"]
    assert error_codes(infer(server, "tiny-llama", temperature=-1)) == ["BAD_USER_INPUT"]
    both = server.gql(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}})
    assert error_codes(both) == ["BAD_USER_INPUT"]
    # A truncated GGUF in the cache: a clear error, and the server goes on serving other models.
    # Unsigned weights (tiny-llama@v1.1.0) reach llama.cpp, which refuses them; signed ones
    # (tiny-llama#prod) no longer match their signature.
    for spec, code, why in [("tiny-llama@v1.1.0", "MODEL_LOAD_FAILED", ""), ("tiny-llama", "UNTRUSTED_WEIGHTS", "SHA-256 is not the one signed")]:
        server.data('mutation($id: ID!) { pull(id: $id) { cached } }', {"id": spec})
        md5 = server.data('query($id: ID!) { modelRevision(id: $id) { artifact { md5 } } }', {"id": spec})["modelRevision"]["artifact"]["md5"]
        cached = Path(server.cache) / "objects/md5" / md5[:2] / md5[2:]
        os.chmod(cached, 0o644)
        with open(cached, "r+b") as f:
            f.truncate(cached.stat().st_size // 2)
        body = infer(server, spec, maxTokens=4)
        assert error_codes(body) == [code] and why in body["errors"][0]["message"], body
    assert answer(server, "smollm2-135m", temperature=0, maxTokens=4)["usage"]["completionTokens"] == 4
    assert requests.get(server.url + "/healthz").status_code == 200


STREAM = """subscription($input: InferenceInput!) { inferStream(input: $input) {
  token payload { id result finishReason seed usage { completionTokens } modelRevision { id } } } }"""


def sse_events(response):
    """(event, data) pairs of a text/event-stream response, as they arrive."""
    event, data = None, []
    response.encoding = "utf-8"  # what server-sent events are, whatever the Content-Type says
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and event:
            yield event, "\n".join(data)
            event, data = None, []


def test_infer_stream_over_sse_matches_infer(server):
    sampling = {"temperature": 0.8, "seed": 5, "maxTokens": 20}
    whole = answer(server, "smollm2-135m", **sampling)
    response = requests.post(server.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                             json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": PROMPT, "sampling": sampling}}})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    import json
    tokens, payload, kinds = [], None, []
    for event, data in sse_events(response):
        kinds.append(event)
        if event == "next":
            value = json.loads(data)["data"]["inferStream"]
            if value["token"] is not None:
                tokens.append(value["token"])
            else:
                payload = value["payload"]
    assert kinds[-1] == "complete" and len(tokens) > 1
    assert "".join(tokens) == payload["result"] == whole["result"]
    assert payload["seed"] == 5 and payload["modelRevision"]["id"] == whole["modelRevision"]["id"]


def test_client_leaving_mid_stream_frees_its_slot_within_100ms(demo, make_server):
    # One decode thread leaves a core to the HTTP side: on two cores, two busy decode threads
    # delayed the test's own polling requests by up to 200 ms now and then.
    server = make_server(demo, "--slots", "1", "--queue", "0", "--threads", "1")
    answer(server, "smollm2-135m", maxTokens=1)
    response = requests.post(server.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                             json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": PROMPT,
                                                                             "sampling": {"temperature": 0, "maxTokens": 1000}}}})
    events = sse_events(response)
    for _ in range(3):
        next(events)
    assert server.data(LOADED)["loadedModels"][0]["activeSlots"] == 1
    response.raw._fp.fp.raw._sock.shutdown(__import__("socket").SHUT_RDWR)  # the client goes away
    response.close()
    left = time.perf_counter()
    while server.data(LOADED)["loadedModels"][0]["activeSlots"] != 0:
        assert time.perf_counter() - left < 5, "the slot was never freed"
        time.sleep(0.002)
    freed = time.perf_counter() - left
    print(f"slot freed {freed * 1000:.1f} ms after the client left")
    assert freed < 0.1, f"slot freed after {freed * 1000:.0f} ms"
    assert answer(server, "smollm2-135m", temperature=0, maxTokens=2)["usage"]["completionTokens"] == 2  # the slot serves again


def test_openai_client_completions_and_chat(server):
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    assert {m.id for m in client.models.list().data} == {"smollm2-135m", "tiny-llama"}
    completion = client.completions.create(model="smollm2-135m", prompt=PROMPT, max_tokens=8, temperature=0)
    graphql = answer(server, "smollm2-135m", temperature=0, maxTokens=8)
    assert completion.choices[0].text == graphql["result"] and completion.model == graphql["modelRevision"]["id"]
    assert completion.usage.completion_tokens == 8
    chat = client.chat.completions.create(model="smollm2-135m#prod", messages=[{"role": "user", "content": "What is the capital of France?"}],
                                          max_tokens=24, temperature=0, seed=3)
    assert "Paris" in chat.choices[0].message.content and chat.model.startswith("smollm2-135m@")
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="smollm2-135m#prod", messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0, seed=3, stream=True) if c.choices]
    assert "".join(pieces) == chat.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="smollm2-135m", prompt="x", max_tokens=0)


def test_infer_stream_over_graphql_transport_ws(server):
    """graphql-transport-ws with aiohttp's WebSocket client: init, ack, subscribe, next…, complete."""
    import asyncio
    import json

    import aiohttp

    async def talk():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url.replace("http", "ws") + "/graphql", protocols=("graphql-transport-ws",)) as ws:
                assert ws.protocol == "graphql-transport-ws"
                await ws.send_json({"type": "connection_init"})
                assert (await ws.receive_json())["type"] == "connection_ack"
                await ws.send_json({"type": "ping"})
                assert (await ws.receive_json())["type"] == "pong"
                await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": STREAM, "variables": {"input": {
                    "modelRevisionID": "smollm2-135m", "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": 12}}}}})
                tokens, payload = [], None
                while True:
                    message = await ws.receive_json()
                    assert message["id"] == "1"
                    if message["type"] == "complete":
                        break
                    assert message["type"] == "next", message
                    event = message["payload"]["data"]["inferStream"]
                    if event["token"] is not None:
                        tokens.append(event["token"])
                    else:
                        payload = event["payload"]
                await ws.send_json({"type": "subscribe", "id": "2", "payload": {"query": STREAM, "variables": {"input": {
                    "modelRevisionID": "no-such-model", "prompt": PROMPT}}}})
                error = await ws.receive_json()
                return tokens, payload, error

    tokens, payload, error = asyncio.run(talk())
    assert "".join(tokens) == payload["result"] == answer(server, "smollm2-135m", temperature=0, maxTokens=12)["result"]
    assert error["type"] == "error" and error["id"] == "2" and error["payload"][0]["extensions"]["code"] == "NOT_FOUND"


def test_two_revisions_with_the_same_weights_share_one_instance(demo, make_server, tmp_path):
    """A commit that brings tiny-llama's v1.0.0 weights back is a new canonical revision with an
    old md5: both revisions must be served by one loaded instance."""
    import subprocess
    import yaml
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(demo), str(clone)], check=True)
    old_lock = yaml.safe_load(subprocess.run(["git", "-C", str(clone), "show", "tiny-llama@v1.0.0:dvc.lock"],
                                             capture_output=True, text=True, check=True).stdout)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    lock["stages"]["train-tiny"] = old_lock["stages"]["train-tiny"]
    (clone / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    # The released weights' signature does not sign the old weights: it goes with them (left in
    # place, it would refuse the load: test_weights_signing).
    for args in (["add", "dvc.lock"], ["rm", "-q", "models/tiny-llama/model.gguf.sig.dvc"],
                 ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "Roll tiny-llama back"]):
        subprocess.run(["git", "-C", str(clone), *args], check=True)
    server = make_server(clone)
    back = answer(server, "tiny-llama", temperature=0, maxTokens=6)
    old = answer(server, "tiny-llama@v1.0.0", temperature=0, maxTokens=6)
    assert back["modelRevision"]["id"] != old["modelRevision"]["id"]
    assert back["modelRevision"]["artifact"]["md5"] == old["modelRevision"]["artifact"]["md5"]
    assert back["result"] == old["result"]
    loaded = [m for m in server.data(LOADED)["loadedModels"] if m["md5"] == old["modelRevision"]["artifact"]["md5"]]
    assert len(loaded) == 1 and set(loaded[0]["revisions"]) == {back["modelRevision"]["id"], old["modelRevision"]["id"]}
