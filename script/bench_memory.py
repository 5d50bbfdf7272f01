"""memory_reported_vs_resident, one line per model (named in the comment line before it): what
a loaded model reports (`loadedModels { memoryBytes }`: weights, KV cache, compute buffers and
saved prefixes, as llama.cpp allocated them) over the resident memory the load and one short
generation added to the process (VmRSS from /proc, before and after), each
model in a fresh server that has loaded, used and unloaded another model first. Goal 0.9–1.1."""
import re
import sys
import tempfile
import time

import requests

from bench_common import serve

binary, repo = sys.argv[1], sys.argv[2]
MODELS = ["smollm2-135m@v1.0.0", "smollm2-135m@v1.1.0", "tiny-llama@v1.1.0"]


def resident(pid):
    return int(re.search(r"^VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M).group(1)) * 1024


def gql(url, query, variables=None):
    body = requests.post(url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=300).json()
    assert "errors" not in body, body
    return body["data"]


MUTATE_INFER = 'mutation($id: ID!) { infer(input: {modelRevisionID: $id, prompt: "Hello", sampling: {maxTokens: 4, temperature: 0}}) { id } }'

for spec in MODELS:
    process, url = serve(binary, repo, tempfile.mkdtemp(), "--prefix-cache", "0")
    try:
        # Another model loaded, used and unloaded first: the process is warm, the growth the model's.
        first = "tiny-llama@v1.0.0" if spec != "tiny-llama@v1.0.0" else "smollm2-135m@v1.0.0"
        gql(url, MUTATE_INFER, {"id": first})
        gql(url, 'mutation($id: ID!) { unloadModel(id: $id) }', {"id": first})
        time.sleep(0.5)
        before = resident(process.pid)
        gql(url, 'mutation($id: ID!) { loadModel(id: $id) { md5 } }', {"id": spec})
        gql(url, MUTATE_INFER, {"id": spec})
        grown = resident(process.pid) - before
        [model] = gql(url, "{ loadedModels { memoryBytes } }")["loadedModels"]
        print(f"# {spec}: reported {model['memoryBytes']} bytes, resident growth {grown} bytes")
        print(f"BENCH memory_reported_vs_resident {model['memoryBytes'] / grown:.3f} ratio")
    finally:
        process.terminate()
        process.wait(timeout=30)
