"""External OpenAI-compatible backends: llama-server (built by `script/build-llama --tools` from
the same llama.cpp) declared with the artifact md5 it serves. Pedigree still resolves the lineage,
checks the key and records every answer (engine `external:<name>`, replay not guaranteed); the
answers are llama-server's own, compared with what it says when asked directly."""
import json
from pathlib import Path

import pytest
import requests

from support.llama import LLAMA_SERVER, LlamaServer
from support.processes import Server
from support.secrets import secret
from support.tools import pedigree
from test_access import create_key

INFER = """mutation($input: InferenceInput!) { infer(input: $input) { id result finishReason usage { promptTokens completionTokens }
  modelRevision { artifact { md5 } } } }"""
RECORD = """query($id: ID!) { inference(id: $id) { status error artifactMD5 engine usage { completionTokens }
  engineFacts { build external worker } modelRevision { commit { sha } datasets { path md5 } parameters { key value } } } }"""


def artifact_file(demo, spec):
    md5 = json.loads(pedigree("lineage", spec, "--json", "--repo", str(demo)).stdout)["artifact"]["md5"]
    path = Path(demo) / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert path.is_file(), path
    return md5, path


@pytest.fixture(scope="module")
def external(demo, tmp_path_factory):
    assert LLAMA_SERVER.exists(), "llama-server missing: script/test runs script/build-llama --tools"
    md5, model = artifact_file(demo, "smollm2-135m")
    folder = tmp_path_factory.mktemp("external")
    llama = LlamaServer(model, folder / "llama-server.log")
    key_file = folder / "backend-key"
    key_file.write_text(secret("backend-key-" + "x" * 12) + "\n")  # llama-server without --api-key ignores it; never logged
    server = Server(demo, "--external-backend", f"name=llama url={llama.url} md5={md5} model=smollm2 api-key-file={key_file}")
    keys = {role: create_key(server.cache, f"{role}-key", role) for role in ("read", "infer", "admin")}
    yield server, llama, keys, md5
    server.stop()
    llama.stop()


def post(server, key, query, variables):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(server.url + "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=120)


def test_an_external_backend_answers_with_lineage_keys_and_ledger(external):
    server, llama, keys, md5 = external
    prompt, sampling = "The capital of France is", {"temperature": 0, "maxTokens": 12, "seed": 7}
    answer = post(server, keys["infer"], INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": prompt, "sampling": sampling}})
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    made = answer.json()["data"]["infer"]
    # llama-server asked directly, with the same request: the same text and token counts.
    direct = requests.post(llama.url + "/v1/completions", timeout=60,
                           json={"prompt": prompt, "max_tokens": 12, "temperature": 0, "seed": 7}).json()
    assert made["result"] == direct["choices"][0]["text"] and made["result"]
    assert made["usage"] == {"promptTokens": direct["usage"]["prompt_tokens"], "completionTokens": direct["usage"]["completion_tokens"]}
    assert made["modelRevision"]["artifact"]["md5"] == md5

    # The ledger: the record, its lineage and the external engine.
    record = post(server, keys["infer"], RECORD, {"id": made["id"]}).json()["data"]["inference"]
    assert record["status"] == "completed" and record["artifactMD5"] == md5
    assert record["engineFacts"] == {"build": "external:llama", "external": "llama", "worker": None}
    assert json.loads(record["engine"])["external"] == "llama"
    assert record["usage"]["completionTokens"] == made["usage"]["completionTokens"]
    lineage = record["modelRevision"]
    assert len(lineage["commit"]["sha"]) == 40 and lineage["datasets"] and lineage["parameters"]

    # Replay goes to the backend again: the same text (greedy), but never guaranteed.
    replay = post(server, keys["infer"], "mutation($id: ID!) { replay(id: $id) { identical sameEngine guaranteed } }", {"id": made["id"]})
    assert replay.json()["data"]["replay"] == {"identical": True, "sameEngine": False, "guaranteed": False}, replay.text

    # The backend loads its own weights: loadModel/unloadModel say so.
    for mutation in ('mutation { loadModel(id: "smollm2-135m") { md5 } }', 'mutation { unloadModel(id: "smollm2-135m") }'):
        refused = post(server, keys["admin"], mutation, {}).json()["errors"][0]
        assert refused["extensions"]["code"] == "BAD_USER_INPUT" and "'llama'" in refused["message"], refused

    # Other weights still run in this process.
    tiny = post(server, keys["infer"], INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hi", "sampling": {"maxTokens": 2}}})
    tiny_record = post(server, keys["infer"], RECORD, {"id": tiny.json()["data"]["infer"]["id"]}).json()["data"]["inference"]
    assert tiny_record["engineFacts"]["external"] is None and tiny_record["engineFacts"]["build"].startswith("ggml")


def test_requests_without_the_right_key_never_reach_the_backend(external):
    server, llama, keys, _ = external
    before = llama.prompt_tokens()
    variables = {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Refused " * 20, "sampling": {"maxTokens": 4}}}
    assert post(server, None, INFER, variables).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert post(server, keys["read"], INFER, variables).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    chat = requests.post(server.url + "/v1/chat/completions", timeout=30, json={"model": "smollm2-135m", "messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 401
    assert llama.prompt_tokens() == before
    # The same request with an infer key does reach it.
    assert "errors" not in post(server, keys["infer"], INFER, variables).json()
    assert llama.prompt_tokens() > before


def test_openai_chat_streams_through_to_the_backend(external):
    server, llama, keys, _ = external
    messages = [{"role": "user", "content": "Name a colour."}]
    pieces, usage = [], None
    with requests.post(server.url + "/v1/chat/completions", stream=True, timeout=60, headers={"Authorization": f"Bearer {keys['infer']}"},
                       json={"model": "smollm2-135m", "messages": messages, "stream": True, "temperature": 0, "max_tokens": 10, "seed": 3}) as r:
        assert r.status_code == 200
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                pieces += [c["delta"].get("content") or "" for c in chunk["choices"]]
                usage = chunk.get("usage") or usage
    direct = requests.post(llama.url + "/v1/chat/completions", timeout=60,
                           json={"messages": messages, "temperature": 0, "max_tokens": 10, "seed": 3}).json()
    assert "".join(pieces) == direct["choices"][0]["message"]["content"] and len([p for p in pieces if p]) > 1
    assert usage["completion_tokens"] == direct["usage"]["completion_tokens"]


def test_a_backend_that_is_gone_gives_a_clear_code_and_a_failed_record(demo, tmp_path):
    md5, model = artifact_file(demo, "smollm2-135m")
    llama = LlamaServer(model, tmp_path / "llama-server.log")
    server = Server(demo, "--external-backend", f"name=gone url={llama.url} md5={md5}")
    try:
        llama.stop()
        body = server.gql(INFER, {"input": {"modelRevisionID": "smollm2-135m", "prompt": "Hello", "sampling": {"maxTokens": 3}}})
        error = body["errors"][0]
        assert error["extensions"]["code"] == "WORKER_UNAVAILABLE" and "'gone'" in error["message"], error
        record = server.data("{ inferences(first: 1) { edges { node { status error engineFacts { external } } } } }")
        node = record["inferences"]["edges"][0]["node"]
        assert node["status"] == "failed" and node["error"].startswith("WORKER_UNAVAILABLE") and node["engineFacts"]["external"] == "gone"
    finally:
        server.stop()
    for bad, words in [(f"name=x url=ftp://h md5={md5}", "url="), ("name=x url=http://h:1 md5=123", "md5="),
                       (f"name=x url=http://u:p@h:1 md5={md5}", "credentials"), (f"url=http://h:1 md5={md5}", "name="),
                       (f"name=x url=http://h:1 md5={md5} colour=red", "unknown")]:
        refused = pedigree("serve", "--repo", str(demo), "--external-backend", bad, check=False)
        assert refused.returncode == 2 and "external-backends" in refused.stderr and words in refused.stderr, (bad, refused.stderr)
