"""ledger_overhead: latency an inference gains from being recorded (8 concurrent clients, ledger on
vs --ledger off, same run); ledger_page_100k: `inferences(first: 100)` filtered by model over
100,000 records.

Usage: bench_ledger.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench_common import serve

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-ledger-"))
INFER = {"query": 'mutation { infer(input: {modelRevisionID: "tiny-llama", prompt: "Hi", sampling: {temperature: 0, maxTokens: 1}}) { id } }'}


def serve_demo(cache, *extra):
    return serve(binary, demo, cache, "--slots", "8", *extra)


def latencies(url, clients=8, per_client=60):
    def client(_):
        session = requests.Session()
        samples = []
        for _ in range(per_client):
            start = time.perf_counter()
            body = session.post(url + "/graphql", json=INFER).json()
            samples.append(time.perf_counter() - start)
            assert "errors" not in body, body
        return samples
    client(0)  # warm: model loaded
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return sorted(sum(pool.map(client, range(clients)), []))


def pct(values, q):
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


cache = work / "cache"
subprocess.run([binary, "pull", "tiny-llama", "--repo", demo, "--cache", str(cache)], check=True, capture_output=True)
results = {}
for name, extra in (("off", ("--ledger", "off")), ("on", ())):
    process, url = serve_demo(cache, *extra)
    try:
        results[name] = latencies(url)
        if name == "on":
            # The ledger write is awaited on the request path: its duration is the latency added.
            metrics = requests.get(url + "/metrics").text
            writes = {line.split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines()
                      if line.startswith("pedigree_ledger_write_seconds{")}
    finally:
        process.terminate()
        process.wait()
for q, label in ((0.5, "p50"), (0.99, "p99")):
    on, off = pct(results["on"], q), pct(results["off"], q)
    print(f"# ledger write awaited per answer, 8 clients")
    print(f"BENCH ledger_overhead_{label} {writes[str(q)] * 1000:.3f} ms")
    print(f"# whole request, ledger on; peer: --ledger off (noisy on 2 cores)")
    print(f"BENCH ledger_end_to_end_{label} {on:.3f} ms peer={off:.3f} ratio={off / on:.3f}")

# 100,000 records, then a filtered page.
ledger = sqlite3.connect(cache / "ledger.sqlite")
template = ledger.execute("SELECT * FROM inference LIMIT 1").fetchone()
columns = [d[0] for d in ledger.execute("SELECT * FROM inference LIMIT 1").description]
rows = []
start_ms = int(time.time() * 1000) - 100_000
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
for index in range(100_000):
    value, millis = list(template), start_ms + index
    prefix = "".join(alphabet[(millis >> (5 * (9 - k))) & 31] for k in range(10))
    value[columns.index("id")] = prefix + "".join(random.choice(alphabet) for _ in range(16))
    value[columns.index("model")] = random.choice(["tiny-llama", "smollm2-135m"])
    if "position" in columns:  # copies sit outside the sequence (as records made before positions)
        value[columns.index("position")] = None
        value[columns.index("receipt")] = None
    rows.append(value)
ledger.executemany(f"INSERT INTO inference VALUES ({','.join('?' * len(columns))})", rows)
ledger.commit()
ledger.close()
process, url = serve_demo(cache)
try:
    query = {"query": '{ inferences(filter: {model: "tiny-llama"}, first: 100) { edges { node { id createdAt result seed } } pageInfo { endCursor } } }'}
    session = requests.Session()
    for _ in range(5):
        session.post(url + "/graphql", json=query)
    samples = []
    for _ in range(50):
        start = time.perf_counter()
        body = session.post(url + "/graphql", json=query).json()
        samples.append(time.perf_counter() - start)
        assert len(body["data"]["inferences"]["edges"]) == 100
    print(f"# inferences(first: 100) by model over 100,000 records, p50 of 50")
    print(f"BENCH ledger_page_100k {statistics.median(samples) * 1000:.2f} ms")
finally:
    process.terminate()
    process.wait()
    shutil.rmtree(work, ignore_errors=True)
