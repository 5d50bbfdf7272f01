"""eval_items_per_s: items per second of an evaluation (64 items, 8 at a time, through the
`evaluate` mutation) over the request rate of 8 concurrent clients asking the same 64 prompts
with `infer` on the same server (same model, slots, sampling, max tokens, same run). Goal ≥ 0.95:
an evaluation runs as fast as serving does. Each evaluation run is `fresh` (nothing reused).
Best of 3 alternating rounds.

Usage: bench_eval.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import bench_common

binary, demo = sys.argv[1], str(Path(sys.argv[2]).resolve())
THREADS = os.cpu_count()
ITEMS, CONCURRENT, TOKENS, ROUNDS = 64, 8, 32, 3
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-eval-"))
repo = work / "repo"
subprocess.run(["git", "clone", "-q", demo, str(repo)], check=True)
prompts = [f"Question {n}: what is {n} plus {n + 1}? Answer with a number." for n in range(ITEMS)]
(repo / "data/eval").mkdir(parents=True, exist_ok=True)
(repo / "data/eval/bench.jsonl").write_text("".join(json.dumps({"id": f"q{n}", "prompt": p, "expected": str(2 * n + 1)}) + "\n"
                                                    for n, p in enumerate(prompts)))
subprocess.run(["git", "add", "data/eval/bench.jsonl"], cwd=repo, check=True)
subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "Benchmark set"], cwd=repo, check=True)

EVALUATE = "mutation($input: EvaluateInput!) { evaluate(input: $input) { items { error } } }"
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id } }"
SAMPLING = {"temperature": 0, "seed": 0, "maxTokens": TOKENS}


def evaluation(url):
    variables = {"input": {"modelRevisionID": "smollm2-135m", "dataset": "data/eval/bench.jsonl", "scorers": ["contains"],
                           "sampling": SAMPLING, "concurrency": CONCURRENT, "fresh": True}}
    started = time.perf_counter()
    body = requests.post(url + "/graphql", json={"query": EVALUATE, "variables": variables}, timeout=900).json()
    elapsed = time.perf_counter() - started
    assert "errors" not in body and all(item["error"] is None for item in body["data"]["evaluate"]["items"]), body
    return ITEMS / elapsed


def serving(url):
    session = requests.Session()

    def ask(prompt):
        variables = {"input": {"modelRevisionID": "smollm2-135m", "prompt": prompt, "sampling": SAMPLING}}
        body = requests.post(url + "/graphql", json={"query": INFER, "variables": variables}, timeout=900).json()
        assert "errors" not in body, body
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
        list(pool.map(ask, prompts))
    return ITEMS / (time.perf_counter() - started)


process, url = bench_common.serve(binary, repo, work / "cache", "--threads", str(THREADS), "--slots", str(CONCURRENT),
                                  "--preload", "smollm2-135m")
try:
    serving(url)
    evals, serves = [], []
    for _ in range(ROUNDS):
        evals.append(evaluation(url))
        serves.append(serving(url))
finally:
    process.terminate()
    process.wait()
print(f"# smollm2-135m, {ITEMS} items, {CONCURRENT} at a time, {TOKENS} tokens at most, greedy, {THREADS} threads; best of {ROUNDS}")
print(f"BENCH eval_items_per_s {max(evals):.2f} items/s peer={max(serves):.2f} ratio={max(evals) / max(serves):.2f}")
