"""What a request gains from the gate and the instruments, as the difference of medians between
two servers from the same binary and repository, the same small GraphQL request
(`{ __typename }`) alternating between them over keep-alive connections; the peer is the plain
server's own median.
auth_overhead: an API key checked and its request quota counted (a key with quotas so high they
  never refuse) against an open server (loopback, no keys).
metrics_overhead: metrics recorded (the default) against `--metrics false`.
tracing_overhead: traces exported over OTLP/HTTP (to a receiver this script runs) against none.
tls_overhead: HTTPS (TLS 1.3, a kept-alive connection, the handshake not counted) against HTTP."""
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

from bench_common import serve

binary, repo = sys.argv[1], sys.argv[2]
N = 4000
body = json.dumps({"query": "{ __typename }"}).encode()
JSON = {"Content-Type": "application/json"}


def connection(url, ca=None):
    if url.startswith("https://"):
        host, port = url.removeprefix("https://").split(":")
        return http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=ca))
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


def compare(name, plain, plain_headers, measured, measured_headers, ca=None):
    """Alternates the request between the two servers; prints the difference of the medians."""
    a, b = connection(plain), connection(measured, ca)
    for _ in range(200):  # warm both
        once(a, plain_headers)
        once(b, measured_headers)
    ours, peer = [], []
    for _ in range(N):
        peer.append(once(a, plain_headers))
        ours.append(once(b, measured_headers))
    o, p = statistics.median(ours) * 1000, statistics.median(peer) * 1000
    print(f"BENCH {name} {o - p:.3f} ms peer={p:.3f} measured_p50={o:.3f}")


def receiver():
    """A loopback OTLP/HTTP endpoint that accepts every export (what a collector answers)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


processes = []
try:
    open_cache, keyed_cache = tempfile.mkdtemp(), tempfile.mkdtemp()
    created = subprocess.run([binary, "keys", "create", "--name", "bench", "--role", "read", "--cache", keyed_cache,
                              "--requests-per-minute", "10000000"], capture_output=True, text=True, check=True)
    key = created.stdout.strip().splitlines()[-1]
    servers = {}
    otlp = receiver()
    for label, cache, extra in (("open", open_cache, ()), ("keyed", keyed_cache, ()), ("quiet", tempfile.mkdtemp(), ("--metrics", "false")),
                                ("traced", tempfile.mkdtemp(), ("--otlp-endpoint", otlp))):
        process, url = serve(binary, repo, cache, *extra)
        processes.append(process)
        servers[label] = url
    compare("auth_overhead", servers["open"], JSON, servers["keyed"], {**JSON, "Authorization": f"Bearer {key}"})
    compare("metrics_overhead", servers["quiet"], JSON, servers["open"], JSON)
    compare("tracing_overhead", servers["open"], JSON, servers["traced"], JSON)
    folder = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{folder}/tls.key",
                    "-out", f"{folder}/tls.crt"], check=True, capture_output=True)
    process, tls = serve(binary, repo, tempfile.mkdtemp(), "--tls-certificate", f"{folder}/tls.crt", "--tls-key", f"{folder}/tls.key",
                         verify=f"{folder}/tls.crt")
    processes.append(process)
    compare("tls_overhead", servers["open"], JSON, tls, JSON, ca=f"{folder}/tls.crt")
finally:
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
