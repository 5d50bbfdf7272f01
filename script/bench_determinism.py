"""decode_concurrent8_invariant: aggregate tokens/s of 8 concurrent clients with Pedigree in the
batch-invariant mode (the default) divided by the same in the mixed mode (prompts share calls with
generating tokens, as llama-server; the fastest mode), and by llama-server -np 8. Both modes run
side by side in alternating rounds (best of each). Two workloads: the decode_* prompt with 128
tokens each, and 20-90-token prompts with 16 tokens each (prefill matters more).
ttft_prefix_cached: time to first token (the engine's) of a request sharing a ~1,000-token prefix
with an earlier one, cold (a new prefix) divided by warm (the prefix's memory reused at a chunk
boundary); median of 5 pairs.

Usage: bench_determinism.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench_common import free_port, serve, wait_ready

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
ROOT = Path(__file__).resolve().parents[1]
THREADS = os.cpu_count()
# llama-server with the flash attention Pedigree uses (off unless PEDIGREE_BENCH_SERVE_ARGS turns it on).
FLASH = "on" if "--flash-attention true" in os.environ.get("PEDIGREE_BENCH_SERVE_ARGS", "") else "off"
ROUNDS = 3
PROMPT = "Once upon a time, in a small village by the sea, there lived"
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { usage { promptTokens completionTokens } timings { timeToFirstTokenMs cachedPromptTokens } } }"
WORDS = ("the model was trained on a small corpus of chat messages and evaluated on held out prompts about science history "
         "and code").split()
rng = random.Random(3)
SHORT = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 90))) for _ in range(8)]
cache = tempfile.mkdtemp(prefix="pedigree-bench-det-")
model = subprocess.run([binary, "pull", "smollm2-135m", "--repo", demo, "--cache", cache], check=True,
                       capture_output=True, text=True).stdout.strip().splitlines()[-1]
common = ("--threads", str(THREADS), "--slots", "8", "--context-per-slot", "2048", "--preload", "smollm2-135m")


def infer(url, prompt, tokens):
    body = requests.post(url + "/graphql", timeout=600, json={"query": INFER, "variables": {"input": {
        "modelRevisionID": "smollm2-135m", "prompt": prompt, "sampling": {"temperature": 0, "maxTokens": tokens}}}}).json()
    return body["data"]["infer"]


def aggregate(call, prompts):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        tokens = sum(pool.map(call, prompts))
    return tokens / (time.perf_counter() - start)


invariant, invariant_url = serve(binary, demo, cache, *common)
mixed, mixed_url = serve(binary, demo, cache, *common, "--decode-mode", "mixed")
results = {}
try:
    for url in (invariant_url, mixed_url):
        infer(url, PROMPT, 8)
    for workload, prompts, tokens in (("long", [PROMPT] * 8, 128), ("short", SHORT, 16)):
        best = {"invariant": 0.0, "mixed": 0.0}
        for _ in range(ROUNDS):
            for name, url in (("invariant", invariant_url), ("mixed", mixed_url)):
                rate = aggregate(lambda p, url=url: infer(url, p, tokens)["usage"]["completionTokens"], prompts)
                best[name] = max(best[name], rate)
        results[workload] = best
    # Prefix reuse: a new ~1,000-word prefix per pair, then a second request sharing it.
    cold, warm, reused, prompt_tokens = [], [], [], 0
    for pair in range(5):
        prefix = f"document {pair}: " + " ".join(rng.choice(WORDS) for _ in range(1000))
        first = infer(invariant_url, prefix + " question one: what is it about?", 1)
        second = infer(invariant_url, prefix + " question two: who wrote it?", 1)
        assert first["timings"]["cachedPromptTokens"] == 0, first
        cold.append(first["timings"]["timeToFirstTokenMs"])
        warm.append(second["timings"]["timeToFirstTokenMs"])
        reused.append(second["timings"]["cachedPromptTokens"])
        prompt_tokens = second["usage"]["promptTokens"]
finally:
    for process in (invariant, mixed):
        process.terminate()
        process.wait()

# llama-server -np 8 from the same llama.cpp build, same threads: with our flash attention setting,
# and as it runs by default (-fa auto, on for CPU).
def llama_server_8(flash):
    port = free_port()
    server = subprocess.Popen([str(ROOT / ".deps/llama/bin/llama-server"), "-m", model, "-t", str(THREADS), "-tb", str(THREADS),
                               "-c", str(2048 * 8), "-np", "8", "-fa", flash, "--port", str(port), "--no-webui"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server_url, "/health")

        def server_once(prompt, tokens=128):
            return requests.post(server_url + "/completion", json={"prompt": prompt, "n_predict": tokens, "temperature": 0,
                                                                   "cache_prompt": False}).json()["tokens_predicted"]
        server_once(PROMPT, 8)
        return max(aggregate(server_once, [PROMPT] * 8) for _ in range(ROUNDS))
    finally:
        server.terminate()
        server.wait()


server_8 = llama_server_8(FLASH)
server_8_default = llama_server_8("auto")

long, short = results["long"], results["short"]
print(f"# smollm2-135m Q4_1, {THREADS} threads, 8 slots, greedy; best of {ROUNDS} alternating rounds")
print("# 8 clients x 128 tokens; peer: the mixed mode (fastest)")
print(f"BENCH decode_concurrent8_invariant {long['invariant']:.1f} tokens/s peer={long['mixed']:.1f} ratio={long['invariant'] / long['mixed']:.2f}")
print(f"# the same; peer: llama-server -np 8 -fa {FLASH} (our flash attention setting)")
print(f"BENCH decode_concurrent8_invariant_vs_server {long['invariant']:.1f} tokens/s peer={server_8:.1f} ratio={long['invariant'] / server_8:.2f}")
print("# the same; peer: llama-server -np 8 as it runs by default (-fa auto)")
print(f"BENCH decode_concurrent8_invariant_vs_server_default {long['invariant']:.1f} tokens/s peer={server_8_default:.1f} "
      f"ratio={long['invariant'] / server_8_default:.2f}")
print("# 8 clients x 16 tokens after 20-90-token prompts; peer: the mixed mode")
print(f"BENCH decode_concurrent8_short_invariant {short['invariant']:.1f} tokens/s peer={short['mixed']:.1f} ratio={short['invariant'] / short['mixed']:.2f}")
print(f"# {prompt_tokens}-token prompts, {statistics.median(reused):.0f} reused from the prefix cache; median of 5 pairs; peer: the same prompt cold")
print(f"BENCH ttft_prefix_cached {statistics.median(warm):.1f} ms peer={statistics.median(cold):.1f} ratio={statistics.median(cold) / statistics.median(warm):.1f}")
