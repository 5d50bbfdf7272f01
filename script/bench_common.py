"""Helpers the benchmark scripts share: free ports and a ready `pedigree serve`."""
import socket
import subprocess
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, path="/readyz", verify=True):
    for _ in range(600):
        try:
            if requests.get(url + path, timeout=1, verify=verify).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def serve(binary, repo, cache, *extra, verify=True):
    """`pedigree serve` on a free port, ready; returns (process, url). `PEDIGREE_BENCH_SERVE_ARGS`
    adds flags to every server (e.g. `--otlp-endpoint http://127.0.0.1:4318`, to measure with
    tracing on)."""
    import os
    import shlex
    extra = (*extra, *shlex.split(os.environ.get("PEDIGREE_BENCH_SERVE_ARGS", "")))
    port = free_port()
    process = subprocess.Popen([binary, "serve", "--repo", str(repo), "--cache", str(cache), "--port", str(port), *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"{'https' if '--tls-certificate' in extra else 'http'}://127.0.0.1:{port}"
    wait_ready(url, verify=verify)
    return process, url


def llama_server(binary, model, parallel, threads, prompt, tokens, flash="off", gpu_layers="0"):
    """llama-server over `model` with `parallel` slots of 512 tokens, ready; returns (process, url,
    once): once() asks for `tokens` greedy tokens of `prompt` (no prompt cache) and returns
    (tokens predicted, seconds)."""
    import requests
    port = free_port()
    process = subprocess.Popen([str(binary), "-m", str(model), "-t", str(threads), "-tb", str(threads), "-c", str(512 * parallel),
                                "-np", str(parallel), "-fa", flash, "-ngl", str(gpu_layers), "--port", str(port), "--no-webui"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, "/health")

    def once():
        start = time.perf_counter()
        body = requests.post(url + "/completion", json={"prompt": prompt, "n_predict": tokens, "temperature": 0, "cache_prompt": False},
                             timeout=600).json()
        return body["tokens_predicted"], time.perf_counter() - start
    return process, url, once
