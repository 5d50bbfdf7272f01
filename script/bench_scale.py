"""scale_workers2: aggregate tokens/s of 16 concurrent clients through the gateway over two workers
(one thread each, 8 slots and no queue, so the preferred worker's overflow spills to the other)
divided by the same through the gateway over one worker (one thread, 16 slots).
gateway_ttft_overhead: p50 time to first token seen by a client through the gateway (GraphQL
inferStream over SSE) minus the same request sent straight to the worker (its own SSE), alternating.

Usage: bench_scale.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench_common import free_port, wait_ready

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-scale-"))
token_file = work / "token"
token_file.write_text(os.urandom(16).hex())
TOKEN = token_file.read_text()
PROMPT = "Once upon a time, in a small village by the sea, there lived"
TOKENS = 64
ROUNDS = 3
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { usage { completionTokens } } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token } }"


def worker(*extra):
    port = free_port()
    cache = work / f"worker-{port}"
    process = subprocess.Popen([binary, "worker", "--port", str(port), "--cache", str(cache), "--worker-token-file", str(token_file),
                                "--dvc-config", str(Path(demo) / ".dvc/config"), "--threads", "1", "--queue", "0", *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return process, url


def gateway(urls):
    port = free_port()
    log = open(work / f"gateway-{len(urls)}.log", "w")
    process = subprocess.Popen([binary, "serve", "--repo", demo, "--cache", str(work / f"gateway-{len(urls)}"), "--port", str(port),
                                *[a for u in urls for a in ("--worker", u)], "--worker-token-file", str(token_file)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return process, url


def infer(url):
    body = requests.post(url + "/graphql", timeout=600, json={"query": INFER, "variables": {"input": {
        "modelRevisionID": "smollm2-135m", "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": TOKENS}}}}).json()
    if "data" not in body or not body["data"]:
        logs = "".join(line for log in work.glob("gateway-*.log") for line in log.read_text().splitlines(True) if "warning" in line)
        raise RuntimeError(f"inference failed: {body}\n{logs}")
    return body["data"]["infer"]["usage"]["completionTokens"]


def aggregate(url, clients=16):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(lambda _: infer(url), range(clients)))
    return tokens / (time.perf_counter() - start)


processes = []
try:
    one, one_url = worker("--slots", "16")
    a, a_url = worker("--slots", "8")
    b, b_url = worker("--slots", "8")
    processes += [one, a, b]
    single, single_url = gateway([one_url])
    double, double_url = gateway([a_url, b_url])
    processes += [single, double]
    for url in (single_url, double_url):
        for _ in range(2):
            aggregate(url)  # loads the weights on every worker that will take requests
    rates = {"one": 0.0, "two": 0.0}
    for _ in range(ROUNDS):
        rates["one"] = max(rates["one"], aggregate(single_url))
        rates["two"] = max(rates["two"], aggregate(double_url))

    # TTFT: the gateway over one worker vs that worker directly, alternating, 30 each.
    artifact = json.loads(subprocess.run([binary, "lineage", "smollm2-135m", "--json", "--repo", demo], check=True,
                                         capture_output=True, text=True).stdout)["artifact"]
    sampling = {"temperature": 0, "topK": 40, "topP": 0.95, "minP": 0.05, "repeatPenalty": 1.0, "seed": 1, "maxTokens": 2, "stop": []}
    direct_body = {"artifact": {"md5": artifact["md5"], "hashName": artifact.get("hashName"), "size": artifact["size"]},
                   "prompt": PROMPT, "sampling": sampling}

    def first_token(call):
        start = time.perf_counter()
        with call() as response:
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:") and ('"text"' in line or '"token":"' in line or '"token": "' in line):
                    return time.perf_counter() - start
        raise RuntimeError("no token")

    session = requests.Session()
    via, direct = [], []
    for _ in range(30):
        via.append(first_token(lambda: session.post(single_url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                                                    json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m",
                                                                                                   "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": 2}}}})))
        direct.append(first_token(lambda: session.post(one_url + "/worker/v1/generate", stream=True, json=direct_body,
                                                       headers={"Authorization": f"Bearer {TOKEN}"})))
finally:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()

print(f"# smollm2-135m Q4_1, 16 clients x {TOKENS} greedy tokens, workers with 1 thread each; best of {ROUNDS}")
print("# peer: the gateway over one worker (16 slots)")
print(f"BENCH scale_workers2 {rates['two']:.1f} tokens/s peer={rates['one']:.1f} ratio={rates['two'] / rates['one']:.2f}")
print(f"# p50 over 30 alternating requests: through the gateway ({statistics.median(via) * 1000:.2f} ms) minus straight to the worker "
      f"({statistics.median(direct) * 1000:.2f} ms)")
print(f"BENCH gateway_ttft_overhead {(statistics.median(via) - statistics.median(direct)) * 1000:.2f} ms")
