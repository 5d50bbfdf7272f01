"""Batch invariance: an answer's token ids do not depend on what ran beside it. 64 inferences sent
4, 8 and 16 at a time without the prefix cache, then the same with it (prompts of 20 to 90
tokens, a third of them sharing a 70-word prefix, greedy and seeded T = 0.9, mixed maxTokens);
after a restart each is replayed alone (one slot, no prefix cache): every run's token ids equal
the replays'. With the prefix cache on, requests that
share a prefix reuse its memory (checked: cachedPromptTokens > 0) and still match the replays,
which computed everything. The mixed mode (prompts share calls with generating tokens, as
llama-server) is what this replaces: 59/64 at 8 concurrent when measured (docs/inference-and-replay.md)."""
import concurrent.futures
import json

import requests

from support.processes import Server
from support.tools import pedigree
from support.workloads import identity_jobs

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id usage { promptTokens } timings { cachedPromptTokens } } }"
REPLAY = """mutation($id: ID!) { replay(id: $id) { identical firstDifference sameEngine
  original { engineFacts { mode prefillChunk flashAttention prefixCache threads build } } replay { id timings { cachedPromptTokens } } } }"""


RUNS = [(4, "0"), (8, "0"), (16, "0"), (4, "256M"), (8, "256M"), (16, "256M")]


def test_answers_do_not_depend_on_their_neighbours(demo):
    """Every run sends the same 64 requests; the first run's records are replayed alone after a
    restart (one slot, no prefix cache), and every run's token ids (from the ledger export) must
    equal those replays'."""
    server = Server(demo, "--slots", "8", "--prefix-cache", "0")
    try:
        runs = []
        for concurrency, prefix_cache in RUNS:
            server.restart("--slots", str(concurrency), "--prefix-cache", prefix_cache)

            def send(job):
                response = requests.post(server.url + "/graphql", timeout=600, json={"query": INFER, "variables": {"input": {
                    "modelRevisionID": "smollm2-135m", "prompt": job[0], "sampling": job[1]}}})
                body = response.json()
                assert "errors" not in body, body
                return body["data"]["infer"]

            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                answers = list(pool.map(send, identity_jobs()))
            counts = [a["usage"]["promptTokens"] for a in answers]
            assert min(counts) >= 20 and max(counts) <= 200, counts
            cached = [a["timings"]["cachedPromptTokens"] for a in answers]
            if prefix_cache == "0":
                assert not any(cached)
            else:
                # The shared prefix (about 90 tokens) was reused at the 64-token chunk boundary.
                assert sum(1 for c in cached if c) >= 10 and all(c % 64 == 0 for c in cached), cached
            runs.append(answers)

        server.restart("--slots", "1", "--prefix-cache", "0")
        replays = [server.data(REPLAY, {"id": a["id"]})["replay"] for a in runs[0]]
        differing = [(index, r["firstDifference"]) for index, r in enumerate(replays) if not r["identical"]]
        assert not differing, f"{len(differing)}/64 replays differ (index, first differing token): {differing}"
        assert all(r["sameEngine"] is True and r["replay"]["timings"]["cachedPromptTokens"] == 0 for r in replays)
        facts = replays[0]["original"]["engineFacts"]
        assert (facts["mode"], facts["prefillChunk"], facts["flashAttention"], facts["prefixCache"]) == ("invariant", 64, False, False)
        assert facts["threads"] >= 1 and facts["build"].startswith("ggml ")

        exported = {row["id"]: json.loads(row["completionTokenIDs"])
                    for row in map(json.loads, pedigree("ledger", "export", "--cache", server.cache).stdout.splitlines())}
        alone = [exported[r["replay"]["id"]] for r in replays]
        assert sum(len(tokens) for tokens in alone) > 64 * 4
        for (concurrency, prefix_cache), answers in zip(RUNS, runs):
            differing = [index for index, answer in enumerate(answers) if exported[answer["id"]] != alone[index]]
            assert not differing, f"{concurrency} concurrent, prefix cache {prefix_cache}: {len(differing)}/64 differ from alone: {differing}"
    finally:
        server.stop()


def test_engine_facts_are_recorded_and_compared(demo):
    """The mixed mode and flash attention are facts of the record; a replay on another engine
    says so (sameEngine false), and the ledger export holds the facts as JSON."""
    server = Server(demo, "--decode-mode", "mixed", "--flash-attention", "true", "--threads", "1")
    try:
        made = server.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello there", "sampling": {"temperature": 0,
                                                                                                                   "maxTokens": 4}}})
        record = server.data('query($id: ID!) { inference(id: $id) { engine engineFacts { mode prefillChunk flashAttention threads } } }',
                             {"id": made["infer"]["id"]})["inference"]
        assert record["engineFacts"] == {"mode": "mixed", "prefillChunk": 0, "flashAttention": True, "threads": 1}
        assert json.loads(record["engine"])["mode"] == "mixed"
        assert server.data(REPLAY, {"id": made["infer"]["id"]})["replay"]["sameEngine"] is True
        server.restart()
        replay = server.data(REPLAY, {"id": made["infer"]["id"]})["replay"]
        assert replay["sameEngine"] is False
        assert replay["original"]["engineFacts"]["mode"] == "mixed"
    finally:
        server.stop()
