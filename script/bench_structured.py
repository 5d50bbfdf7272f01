"""decode_json_schema: decode tokens/s of a schema-constrained answer (llama.cpp's grammar sampler,
the schema converted by llama.cpp's own converter) over an unconstrained one on the same model,
and over llama-server's with the same schema (same GGUF, build and threads, same run). Decode
rates are the engines' own (first token to last: Pedigree's `timings.tokensPerSecond`,
llama-server's `timings.predicted_per_second`), greedy, best of 5.

Usage: bench_structured.py PEDIGREE_BINARY DEMO_REPO"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

import bench_common

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
ROOT = Path(__file__).resolve().parents[1]
THREADS = os.cpu_count()
ROUNDS = 5
PROMPT = "List eight people with their age and city as JSON."
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                           "city": {"type": "string", "maxLength": 24}},
          "required": ["name", "age", "city"], "additionalProperties": False}
SCHEMA = {"type": "array", "items": PERSON, "minItems": 8, "maxItems": 8}
TOKENS = 256
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-structured-"))
cache = work / "cache"
model = subprocess.run([binary, "pull", "smollm2-135m", "--repo", demo, "--cache", str(cache)], check=True,
                       capture_output=True, text=True).stdout.strip().splitlines()[-1]

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { usage { completionTokens } timings { tokensPerSecond } } }"


def ours(url, constraint):
    variables = {"input": {"modelRevisionID": "smollm2-135m", "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": TOKENS}}}
    if constraint:
        variables["input"]["constraint"] = {"type": "json_schema", "schema": json.dumps(SCHEMA)}
    body = requests.post(url + "/graphql", json={"query": INFER, "variables": variables}, timeout=600).json()
    answer = body["data"]["infer"]
    return answer["timings"]["tokensPerSecond"], answer["usage"]["completionTokens"]


process, url = bench_common.serve(binary, demo, cache, "--threads", str(THREADS), "--slots", "1", "--preload", "smollm2-135m")
try:
    ours(url, True)
    constrained, constrained_tokens = max(ours(url, True) for _ in range(ROUNDS))
    free, free_tokens = max(ours(url, False) for _ in range(ROUNDS))
finally:
    process.terminate()
    process.wait()

server, server_url, _ = bench_common.llama_server(ROOT / ".deps/llama/bin/llama-server", model, 1, THREADS, PROMPT, TOKENS)
try:
    def peer():
        body = requests.post(server_url + "/completion", timeout=600, json={
            "prompt": PROMPT, "n_predict": TOKENS, "temperature": 0, "cache_prompt": False, "json_schema": SCHEMA}).json()
        return body["timings"]["predicted_per_second"], body["tokens_predicted"]
    peer()
    peer_rate, peer_tokens = max(peer() for _ in range(ROUNDS))
finally:
    server.terminate()
    server.wait()

print(f"# smollm2-135m Q4_1, {THREADS} threads, greedy, best of {ROUNDS}: an array of 8 objects ({constrained_tokens} tokens; "
      f"llama-server {peer_tokens}); unconstrained: {free_tokens} tokens of the same prompt")
print(f"# peer: the same model unconstrained (goal ≥ 0.9)")
print(f"BENCH decode_json_schema {constrained:.1f} tokens/s peer={free:.1f} ratio={constrained / free:.2f}")
print(f"# peer: llama-server with the same json_schema (goal ≥ 1.0)")
print(f"BENCH decode_json_schema_vs_llama_server {constrained:.1f} tokens/s peer={peer_rate:.1f} ratio={constrained / peer_rate:.2f}")
