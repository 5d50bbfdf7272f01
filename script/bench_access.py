"""auth_overhead: the p50 time a request gains from API-key authentication and quota counting.
Two servers from the same binary and repository, one open (loopback, no keys) and one with a key
whose quotas are counted on every request (set so high they never refuse); the same small GraphQL
request (`{ __typename }`) alternates between them over keep-alive connections, and the figure is
the difference of the medians. The peer is the open server's own median."""
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time

from bench_common import serve

binary, repo = sys.argv[1], sys.argv[2]
N = 4000
open_cache, keyed_cache = tempfile.mkdtemp(), tempfile.mkdtemp()
created = subprocess.run([binary, "keys", "create", "--name", "bench", "--role", "read", "--cache", keyed_cache,
                          "--requests-per-minute", "10000000"], capture_output=True, text=True, check=True)
key = created.stdout.strip().splitlines()[-1]
open_process, open_url = serve(binary, repo, open_cache)
keyed_process, keyed_url = serve(binary, repo, keyed_cache)
body = json.dumps({"query": "{ __typename }"}).encode()


def connection(url):
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port))


def once(conn, headers):
    start = time.perf_counter()
    conn.request("POST", "/graphql", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return elapsed


try:
    plain, keyed = connection(open_url), connection(keyed_url)
    plain_headers = {"Content-Type": "application/json"}
    keyed_headers = {**plain_headers, "Authorization": f"Bearer {key}"}
    for _ in range(200):  # warm both
        once(plain, plain_headers)
        once(keyed, keyed_headers)
    ours, peer = [], []
    for _ in range(N):
        peer.append(once(plain, plain_headers))
        ours.append(once(keyed, keyed_headers))
    o, p = statistics.median(ours) * 1000, statistics.median(peer) * 1000
    print(f"BENCH auth_overhead {o - p:.3f} ms peer={p:.3f} keyed_p50={o:.3f}")
finally:
    for process in (open_process, keyed_process):
        process.terminate()
        process.wait(timeout=30)
