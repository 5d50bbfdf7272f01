"""Quantizations beyond the demo's Q4_1: SmolLM2 requantized by llama-quantize (the same llama.cpp
build) to Q8_0, Q4_0, Q4_K_M and Q6_K, served from a Git+DVC repository of their own.

For each: 64 answers sent 8 at a time (greedy and seeded, prompts of 20 to 90 tokens) are replayed
alone after a restart (one slot) and every one is identical, guaranteed (the engine facts say the
kernels were measured batch-invariant for the model's weight types); greedy output equals
llama-server's. With ggml's tiled K-quant GEMM turned back on, the probe finds those kernels vary
and the records of K-quant models say so: their replays are not guaranteed."""
import concurrent.futures
import json
import os

import pytest
import requests

from support.llama import LlamaServer
from support.models import QUANTIZATIONS
from support.processes import Server
from support.tools import pedigree
from support.workloads import identity_jobs

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id usage { promptTokens } } }"
REPLAY = """mutation($id: ID!) { replay(id: $id) { identical firstDifference sameEngine guaranteed
  original { engineFacts { mode batchInvariant repack tiledMatmul gpuLayers devices } } } }"""
PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea, there lived", "def fibonacci(n):\n"]


def infer(server, spec, prompt, sampling):
    response = requests.post(server.url + "/graphql", timeout=600, json={"query": INFER, "variables": {"input": {
        "modelRevisionID": spec, "prompt": prompt, "sampling": sampling}}})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["infer"]


@pytest.fixture(scope="module")
def runs(quantized):
    """Each quantization's 64 answers at 8 concurrent and its greedy answers to PROMPTS (ids),
    then the server restarted with one slot; yields (server, answers, greedy)."""
    server = Server(quantized, "--slots", "8", "--prefix-cache", "0", "--max-models", "4")
    try:
        answers, greedy = {}, {}
        for name in QUANTIZATIONS:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers[name] = list(pool.map(lambda job: infer(server, name, *job), identity_jobs()))
            greedy[name] = [infer(server, name, prompt, {"temperature": 0, "maxTokens": 32})["id"] for prompt in PROMPTS]
        server.restart("--slots", "1", "--prefix-cache", "0", "--max-models", "4")
        yield server, answers, greedy
    finally:
        server.stop()


@pytest.mark.parametrize("name", list(QUANTIZATIONS))
def test_answers_shared_batches_and_replay_alone_identically(runs, name):
    server, answers, _ = runs
    replays = [server.data(REPLAY, {"id": answer["id"]})["replay"] for answer in answers[name]]
    differing = [(index, r["firstDifference"]) for index, r in enumerate(replays) if not r["identical"]]
    assert not differing, f"{QUANTIZATIONS[name]}: {len(differing)}/64 replays differ (index, first differing token): {differing}"
    assert all(r["sameEngine"] is True and r["guaranteed"] is True for r in replays)
    facts = replays[0]["original"]["engineFacts"]
    assert (facts["mode"], facts["batchInvariant"], facts["tiledMatmul"], facts["gpuLayers"], facts["devices"]) == (
        "invariant", True, False, 0, []), facts
    print(f"{QUANTIZATIONS[name]}: 64/64 identical; weights repacked: {facts['repack']}")


@pytest.mark.parametrize("name", list(QUANTIZATIONS))
def test_greedy_output_equals_llama_server(runs, quantized, name, tmp_path):
    """llama-server from the same build, asked for the same kernels as the engine facts name:
    flash attention off, weights repacked or not, tiled K-quant GEMM off, the same threads."""
    server, _, greedy = runs
    exported = {row["id"]: json.loads(row["completionTokenIDs"])
                for row in map(json.loads, pedigree("ledger", "export", "--cache", server.cache).stdout.splitlines())}
    facts = server.data('query($id: ID!) { inference(id: $id) { engineFacts { threads flashAttention repack tiledMatmul } } }',
                        {"id": greedy[name][0]})["inference"]["engineFacts"]
    assert (facts["flashAttention"], facts["tiledMatmul"]) == (False, False), facts
    extra = ["-fa", "off", *([] if facts["repack"] else ["--no-repack"])]
    llama = LlamaServer(quantized / "models" / name / "model.gguf", tmp_path / "llama-server.log", threads=facts["threads"], slots=1,
                        extra=extra, env={**os.environ, "GGML_CPU_TILED_MM": "0"})
    try:
        theirs = [llama.greedy(prompt, 32) for prompt in PROMPTS]
    finally:
        llama.stop()
    ours = [exported[inference] for inference in greedy[name]]
    assert sum(len(tokens) for tokens in ours) >= 48, [len(tokens) for tokens in ours]  # not ended at once
    assert ours == theirs


def test_kernels_that_vary_are_recorded_and_not_guaranteed(quantized, make_server):
    """ggml's tiled K-quant GEMM on (as the operator may ask): the probe measures K-quant products
    that change with the number of rows, so the Q6_K model's answers are recorded as not
    batch-invariant and a replay, though identical alone, is not guaranteed; Q8_0's are."""
    server = make_server(quantized, "--slots", "1", env={"GGML_CPU_TILED_MM": "1"})
    for name, invariant in (("smollm2-q6-k", False), ("smollm2-q8-0", True)):
        made = infer(server, name, PROMPTS[0], {"temperature": 0, "maxTokens": 8})
        replay = server.data(REPLAY, {"id": made["id"]})["replay"]
        facts = replay["original"]["engineFacts"]
        assert (facts["tiledMatmul"], facts["batchInvariant"]) == (True, invariant), facts
        assert replay["identical"] and replay["sameEngine"] and replay["guaranteed"] is invariant, replay
