"""memory_reported_vs_resident, one line per model (named in the comment line before it): what
a loaded model reports (`loadedModels { memoryBytes }`: weights, KV cache, compute buffers and
saved prefixes, as llama.cpp allocated them) over the resident memory the load and one short
generation added to the process (VmRSS from /proc, before and after), each
model in a fresh server. Goal 0.9–1.1."""
import re
import sys
import tempfile

import requests

from bench_common import serve

binary, repo = sys.argv[1], sys.argv[2]
MODELS = ["smollm2-135m@v1.0.0", "smollm2-135m@v1.1.0", "tiny-llama"]


def resident(pid):
    return int(re.search(r"^VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M).group(1)) * 1024


def gql(url, query, variables=None):
    body = requests.post(url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=300).json()
    assert "errors" not in body, body
    return body["data"]


for spec in MODELS:
    process, url = serve(binary, repo, tempfile.mkdtemp(), "--prefix-cache", "0")
    try:
        before = resident(process.pid)
        gql(url, 'mutation($id: ID!) { loadModel(id: $id) { md5 } }', {"id": spec})
        gql(url, 'mutation($id: ID!) { infer(input: {modelRevisionID: $id, prompt: "Hello", sampling: {maxTokens: 4, temperature: 0}}) { id } }',
            {"id": spec})
        grown = resident(process.pid) - before
        [model] = gql(url, "{ loadedModels { memoryBytes } }")["loadedModels"]
        print(f"# {spec}: reported {model['memoryBytes']} bytes, resident growth {grown} bytes")
        print(f"BENCH memory_reported_vs_resident {model['memoryBytes'] / grown:.3f} ratio")
    finally:
        process.terminate()
        process.wait(timeout=30)
