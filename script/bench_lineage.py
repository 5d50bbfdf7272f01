"""lineage_p50 / lineage_p99: Pedigree over HTTP vs git log + dvc.api.params_show (warm)."""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import dvc.api
import requests

binary, repo = sys.argv[1], os.path.abspath(sys.argv[2])
N = 200
QUERY = """query($id: ID!) { modelRevision(id: $id) { id commit { sha author date message }
  artifact { md5 size } pipeline { name cmd deps { path md5 } } datasets { path md5 size commit { sha } source { url rev } }
  parameters { file key value } code { path md5 } } }"""
revs = subprocess.run(["git", "-C", repo, "rev-list", "--first-parent", "main"], capture_output=True, text=True, check=True).stdout.split()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
cache = tempfile.mkdtemp()
server = subprocess.Popen([binary, "serve", "--repo", repo, "--cache", cache, "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/readyz", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    session = requests.Session()
    specs = [f"tiny-llama@{revs[i % len(revs)]}" for i in range(N)]
    for spec in set(specs):  # warm, as the oracle is warm
        session.post(url + "/graphql", json={"query": QUERY, "variables": {"id": spec}}).raise_for_status()
    ours = []
    for spec in specs:
        start = time.perf_counter()
        body = session.post(url + "/graphql", json={"query": QUERY, "variables": {"id": spec}}).json()
        ours.append(time.perf_counter() - start)
        assert "errors" not in body, body
    # graphql_reject_bomb: a 10,000-deep document refused (QUERY_TOO_COMPLEX), against the
    # smallest query that runs (`{ __typename }`) on the same connection.
    bomb = "{" + "a{" * 10_000 + "b" + "}" * 10_000 + "}"
    rejects, smallest = [], []
    for _ in range(200):
        start = time.perf_counter()
        response = session.post(url + "/graphql", json={"query": bomb})
        rejects.append(time.perf_counter() - start)
        assert response.status_code == 400 and "QUERY_TOO_COMPLEX" in response.text, response.text[:200]
        start = time.perf_counter()
        session.post(url + "/graphql", json={"query": "{ __typename }"}).raise_for_status()
        smallest.append(time.perf_counter() - start)
finally:
    server.terminate()
    server.wait()

os.chdir(repo)
peer = []
dvc.api.params_show(repo=repo, rev=revs[0], stages=["prepare", "train-tiny"])  # warm
for i in range(N // 4):  # the oracle is slow; a quarter of the requests gives stable figures
    rev = revs[i % len(revs)]
    start = time.perf_counter()
    subprocess.run(["git", "-C", repo, "log", "-1", "--format=%H%n%an%n%aI%n%s", rev], capture_output=True, check=True)
    dvc.api.params_show(repo=repo, rev=rev, stages=["prepare", "train-tiny"])
    peer.append(time.perf_counter() - start)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


for name, q in (("lineage_p50", 0.5), ("lineage_p99", 0.99)):
    o, p = pct(ours, q), pct(peer, q)
    print(f"BENCH {name} {o:.3f} ms peer={p:.3f} ratio={p / o:.1f}")
o, p = pct(rejects, 0.5), pct(smallest, 0.5)
print(f"BENCH graphql_reject_bomb {o:.3f} ms peer={p:.3f} ratio={p / o:.1f}")
