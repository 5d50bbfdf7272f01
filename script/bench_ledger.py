"""ledger_overhead: latency an inference gains from being recorded (8 concurrent clients, ledger on
vs --ledger off, same run); receipt_overhead: the time an answer's receipt takes (statement made,
signed, hashed into its Merkle leaf) as the server measures it, beside the ledger write it is part
of; ledger_verify_rate: records `pedigree ledger verify` checks per second over 100,000 sealed
records and a signed tree head (peer: the same signatures verified by Python's `cryptography`);
ledger_page_100k: `inferences(first: 100)` filtered by model over 100,000 records.

Usage: bench_ledger.py PEDIGREE_BINARY DEMO_REPO"""
import base64
import concurrent.futures
import hashlib
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
for name, extra in (("off", ("--ledger", "off")), ("on", ()), ("alone", ())):
    process, url = serve_demo(cache, *extra)
    try:
        results[name] = latencies(url, *((1, 200) if name == "alone" else ()))
        if name == "alone":
            alone = {line.split('"')[1]: float(line.split()[-1]) for line in requests.get(url + "/metrics").text.splitlines()
                     if line.startswith("pedigree_receipt_seconds{")}
        if name == "on":
            # The ledger write is awaited on the request path: its duration is the latency added.
            metrics = requests.get(url + "/metrics").text
            def quantiles(name):
                return {line.split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + "{")}
            writes = quantiles("pedigree_ledger_write_seconds")
            receipts = quantiles("pedigree_receipt_seconds")
    finally:
        process.terminate()
        process.wait()
for q, label in ((0.5, "p50"), (0.99, "p99")):
    on, off = pct(results["on"], q), pct(results["off"], q)
    print(f"# ledger write awaited per answer, 8 clients")
    print(f"BENCH ledger_overhead_{label} {writes[str(q)] * 1000:.3f} ms")
    print(f"# whole request, ledger on; peer: --ledger off (noisy on 2 cores)")
    print(f"BENCH ledger_end_to_end_{label} {on:.3f} ms peer={off:.3f} ratio={off / on:.3f}")
    print(f"# an answer's receipt: statement, Ed25519 signature, Merkle leaf (goal p50 < 0.2 ms), one client; peer: the same under 8 clients")
    print(f"BENCH receipt_overhead_{label} {alone[str(q)] * 1000:.3f} ms peer={receipts[str(q)] * 1000:.3f} "
          f"ratio={receipts[str(q)] / alone[str(q)]:.3f}")


def leaf(statement):
    return hashlib.sha256(b"\x00" + hashlib.sha256(statement).digest()).digest()


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


# 100,000 sealed records (a real one's statement with its id and position replaced, signed again
# with the server's key), their leaves and a signed head; then `ledger verify` over them.
sealed_cache = work / "sealed"
shutil.copytree(cache, sealed_cache, ignore=shutil.ignore_patterns("objects", "git"))
key = Ed25519PrivateKey.from_private_bytes((cache / "receipt-key").read_bytes())
public = key.public_key().public_bytes_raw()
keyid = hashlib.sha256(public).hexdigest()
db = sqlite3.connect(sealed_cache / "ledger.sqlite")
columns = [d[0] for d in db.execute("SELECT * FROM inference LIMIT 1").description]
template = list(db.execute("SELECT * FROM inference WHERE receipt IS NOT NULL ORDER BY position LIMIT 1").fetchone())
envelope = json.loads(template[columns.index("receipt")])
statement = base64.b64decode(envelope["payload"]).decode()
old_id, old_position = template[columns.index("id")], template[columns.index("position")]
assert statement.count(f'"inference":"{old_id}"') == 1 and statement.count(f'"position":{old_position},') == 1
db.execute("DELETE FROM inference")
db.execute("DELETE FROM ledger_leaf")
db.execute("DELETE FROM tree_head")
PAYLOAD_TYPE = "application/vnd.in-toto+json"
rows, leaves, signed = [], [], []
for position in range(1, 100_001):
    record_id = f"{old_id[:10]}{position:016d}"
    body = statement.replace(f'"inference":"{old_id}"', f'"inference":"{record_id}"').replace(
        f'"position":{old_position},', f'"position":{position},').encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(body), body)
    signature = key.sign(pae)
    signed.append((pae, signature))
    receipt = json.dumps({"payload": base64.b64encode(body).decode(), "payloadType": PAYLOAD_TYPE,
                          "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}]}, sort_keys=True)
    value = list(template)
    value[columns.index("id")], value[columns.index("position")], value[columns.index("receipt")] = record_id, position, receipt
    rows.append(value)
    leaves.append(leaf(body))
db.executemany(f"INSERT INTO inference VALUES ({','.join('?' * len(columns))})", rows)
db.executemany("INSERT INTO ledger_leaf (position, hash) VALUES (?, ?)", [(i + 1, h) for i, h in enumerate(leaves)])
head = json.dumps({"rootHash": mth(leaves).hex(), "signer": keyid, "size": len(leaves), "time": "2026-12-07T00:00:00Z"},
                  sort_keys=True, separators=(",", ":")).encode()
HEAD_TYPE = "application/vnd.pedigree.tree-head+json"
head_sig = key.sign(b"DSSEv1 %d %s %d %s" % (len(HEAD_TYPE), HEAD_TYPE.encode(), len(head), head))
db.execute("INSERT INTO tree_head (size, root, createdAt, envelope) VALUES (?, ?, ?, ?)",
           (len(leaves), mth(leaves), "2026-12-07 00:00:00.000", json.dumps(
               {"payload": base64.b64encode(head).decode(), "payloadType": HEAD_TYPE,
                "signatures": [{"keyid": keyid, "sig": base64.b64encode(head_sig).decode()}]})))
db.execute("UPDATE ledger_sequence SET last = 100000, floor = 0, legacy = 0")
db.commit()
db.close()
start = time.perf_counter()
verified = subprocess.run([binary, "ledger", "verify", "--cache", str(sealed_cache)], capture_output=True, text=True)
elapsed = time.perf_counter() - start
assert verified.returncode == 0 and "verified 100000 records" in verified.stdout, verified.stdout + verified.stderr
public_key = key.public_key()
start = time.perf_counter()
for pae, signature in signed:
    public_key.verify(signature, pae)
peer = time.perf_counter() - start
print("# pedigree ledger verify over 100,000 sealed records and a signed head (goal >= 100,000/s); peer: their Ed25519 signatures alone in Python cryptography")
print(f"BENCH ledger_verify_rate {100_000 / elapsed:.0f} records/s peer={100_000 / peer:.0f} ratio={peer / elapsed:.3f}")
shutil.rmtree(sealed_cache, ignore_errors=True)

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
