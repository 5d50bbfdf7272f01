"""decode_*: tokens/s of Pedigree's `infer` over HTTP vs llama-server and llama-cpp-python (same
GGUF, same llama.cpp build, same threads, same run, greedy so every engine produces the same
tokens); ttft_overhead: time to first token seen by a client over SSE minus the engine's own.

Usage: bench_inference.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import bench_common
from bench_common import free_port, wait_ready

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / ".deps/llama"
THREADS = os.cpu_count()
# llama-server with the flash attention Pedigree uses (off unless PEDIGREE_BENCH_SERVE_ARGS turns it on).
FLASH = "on" if "--flash-attention true" in os.environ.get("PEDIGREE_BENCH_SERVE_ARGS", "") else "off"
TOKENS = 128
PROMPT = "Once upon a time, in a small village by the sea, there lived"
ROUNDS = 5
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-inf-"))


def best(fn):
    return max(fn() for _ in range(ROUNDS))


cache = work / "cache"
model = subprocess.run([binary, "pull", "smollm2-135m", "--repo", demo, "--cache", str(cache)], check=True,
                       capture_output=True, text=True).stdout.strip().splitlines()[-1]

# Pedigree.
port = free_port()
ours = subprocess.Popen([binary, "serve", "--repo", demo, "--cache", str(cache), "--port", str(port), "--threads", str(THREADS),
                         "--slots", "8", "--context-per-slot", "512", "--preload", "smollm2-135m",
                         *shlex.split(os.environ.get("PEDIGREE_BENCH_SERVE_ARGS", ""))],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}"
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { usage { completionTokens } timings { timeToFirstTokenMs } } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { timings { timeToFirstTokenMs } } } }"
VARS = {"input": {"modelRevisionID": "smollm2-135m", "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": TOKENS}}}


def pedigree_once(session=requests):
    start = time.perf_counter()
    body = session.post(url + "/graphql", json={"query": INFER, "variables": VARS}).json()
    return body["data"]["infer"]["usage"]["completionTokens"], time.perf_counter() - start


def aggregate(call, clients):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        tokens = sum(t for t, _ in pool.map(lambda _: call(), range(clients)))
    return tokens / (time.perf_counter() - start)


try:
    wait_ready(url, "/readyz")
    pedigree_once()
    single_tokens = pedigree_once()[0]
    ours_single = best(lambda: (lambda t, s: t / s)(*pedigree_once()))
    ours_8 = best(lambda: aggregate(pedigree_once, 8))
    # TTFT: a client on SSE vs the engine's own clock, 20 requests.
    overheads = []
    for _ in range(20):
        start = time.perf_counter()
        first = None
        engine = None
        with requests.post(url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                           json={"query": STREAM, "variables": {"input": {**VARS["input"], "sampling": {"temperature": 0, "maxTokens": 4}}}}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:") and line[5:].strip():
                    event = json.loads(line[5:])["data"]["inferStream"]
                    if event["token"] is not None and first is None:
                        first = time.perf_counter() - start
                    if event["payload"]:
                        engine = event["payload"]["timings"]["timeToFirstTokenMs"] / 1000
        overheads.append(first - engine)
    # What any HTTP exchange costs this client (request, loopback, response): not the gateway's.
    session = requests.Session()
    for _ in range(10):
        session.get(url + "/healthz")
    round_trips = []
    for _ in range(50):
        start = time.perf_counter()
        session.get(url + "/healthz")
        round_trips.append(time.perf_counter() - start)
finally:
    ours.terminate()
    ours.wait()

# llama-server from the same source, same threads; -np 1 for one stream, -np 8 for eight.
def llama_server(parallel):
    process, _, once = bench_common.llama_server(LLAMA / "bin/llama-server", model, parallel, THREADS, PROMPT, TOKENS, FLASH)
    return process, once


process, once = llama_server(1)
try:
    once()
    server_single = best(lambda: (lambda t, s: t / s)(*once()))
finally:
    process.terminate()
    process.wait()
process, once = llama_server(8)
try:
    once()
    server_8 = best(lambda: aggregate(once, 8))
finally:
    process.terminate()
    process.wait()

# llama-cpp-python on our libllama (in this process, no HTTP: the raw library speed).
os.environ["LLAMA_CPP_LIB_PATH"] = str(LLAMA / "lib")
sys.path.insert(0, str(ROOT / ".deps/src/llama_cpp_python-0.3.36"))
import llama_cpp  # noqa: E402
llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=THREADS, n_threads_batch=THREADS, flash_attn=FLASH == "on", verbose=False)


def python_once():
    start = time.perf_counter()
    out = llm.create_completion(PROMPT, max_tokens=TOKENS, temperature=0)
    return out["usage"]["completion_tokens"], time.perf_counter() - start


python_once()
python_single = best(lambda: (lambda t, s: t / s)(*python_once()))
shutil.rmtree(work, ignore_errors=True)

print(f"# smollm2-135m Q4_1, {THREADS} threads, {single_tokens} tokens per request, greedy; best of {ROUNDS}")
print(f"# peer: llama-server -np 1")
print(f"BENCH decode_single {ours_single:.1f} tokens/s peer={server_single:.1f} ratio={ours_single / server_single:.2f}")
print(f"# peer: llama-cpp-python")
print(f"BENCH decode_single_vs_python {ours_single:.1f} tokens/s peer={python_single:.1f} ratio={ours_single / python_single:.2f}")
print(f"# 8 clients; peer: llama-server -np 8")
print(f"BENCH decode_concurrent8 {ours_8:.1f} tokens/s peer={server_8:.1f} ratio={ours_8 / server_8:.2f}")
client = statistics.median(round_trips)
print(f"# p50: client TTFT over SSE minus the engine's TTFT minus this client's /healthz round trip")
print(f"BENCH ttft_overhead {(statistics.median(overheads) - client) * 1000:.2f} ms")
print(f"# the same without subtracting the client's round trip ({client * 1000:.2f} ms)")
print(f"BENCH ttft_overhead_with_client {statistics.median(overheads) * 1000:.2f} ms")
