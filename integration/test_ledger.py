"""The provenance ledger: every inference recorded with its lineage, replayable after restarts,
evictions and moved branches; crash-safe; a failing ledger never takes answers down."""
import base64
import concurrent.futures
import copy
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from support.processes import Server
from support.tools import BIN, error_codes, free_port

INFER = """mutation($input: InferenceInput!) { infer(input: $input) {
  id result seed modelRevision { id commit { sha } artifact { md5 } datasets { path md5 } parameters { file key value } } } }"""
RECORD = """query($id: ID!) { inference(id: $id) { id createdAt prompt result seed status finishReason artifactMD5 engine sampling lineage
  modelRevision { id } usage { completionTokens } } }"""
REPLAY = "mutation($id: ID!) { replay(id: $id) { identical firstDifference original { id } replay { id result } } }"
SPECS = ["tiny-llama@v1.0.0", "tiny-llama", "smollm2-135m#prod"]


# RFC 9162 §2.1, written here from the RFC (not from Pedigree's code): the independent check of the
# ledger's tree heads and proofs.
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first, second, path, first_root, second_root):
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if first & (first - 1) == 0:
        path = [first_root] + path
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def statement_of(receipt):
    return base64.b64decode(json.loads(receipt)["payload"])


def signed_head(server, head):
    """A tree head's envelope verified with securesystemslib (the key from GET /receipt-keys); its payload."""
    keys = [SSlibKey.from_dict(k["keyid"], {key: v for key, v in k.items() if key != "keyid"})
            for k in requests.get(server.url + "/receipt-keys", timeout=30).json()["keys"]]
    envelope = json.loads(head["envelope"])
    assert envelope["payloadType"] == "application/vnd.pedigree.tree-head+json"
    assert Envelope.from_dict(copy.deepcopy(envelope)).verify(keys, 1)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["size"] == int(head["size"]) and payload["rootHash"] == head["rootHash"], (payload, head)
    return payload


HEAD = "size rootHash signedAt envelope"
PROOF = "query($id: ID!) { inference(id: $id) { receipt inclusionProof { position leafIndex leafHash hashes treeHead { %s } } } }" % HEAD


def infer(server, spec, prompt, **sampling):
    body = server.gql(INFER, {"input": {"modelRevisionID": spec, "prompt": prompt, "sampling": sampling}})
    assert "errors" not in body, body
    return body["data"]["infer"]


class Restartable(Server):
    """A server whose cache (and so ledger) outlives a restart; `base` are the ledger arguments
    every start gets."""

    def restart(self, *extra, kill=False):
        super().restart(*self.base, *extra, kill=kill)


@pytest.fixture(params=["sqlite", "postgres", "postgres-tls"])
def backend(request):
    """Ledger arguments: the default SQLite file in the cache, a fresh PostgreSQL database, or one
    reached over TLS (verify-full) with its password in a file."""
    if request.param == "sqlite":
        return ()
    if request.param == "postgres-tls":
        url, password_file = request.getfixturevalue("postgres")(tls=True)
        return ("--ledger", url, "--ledger-password-file", password_file)
    return ("--ledger", request.getfixturevalue("postgres")())


@pytest.fixture
def restartable(demo, backend):
    servers = []

    def start(*extra):
        s = Restartable(demo, *backend, *extra)
        s.base = backend
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.stop()


def test_100_inferences_are_recorded_with_lineage_and_replay_identically_after_restart(restartable, backend):
    """…and the ledger's Merkle tree holds them: a head signed on request part way and one on
    shutdown, checked with securesystemslib; the receipts' inclusion proofs and the consistency
    proof between the heads verify with the RFC 9162 check above, and the root equals the one
    computed here from the receipts' statements. (100 on SQLite; 24 on each PostgreSQL, whose
    own code is the same few statements.)"""
    server = restartable()
    rng = random.Random(7)
    made = []
    early = None
    count = 24 if backend else 100
    split = count * 2 // 5
    for index in range(count):
        if index == split:
            early = server.data("mutation { signTreeHead { %s } }" % HEAD)["signTreeHead"]
        spec = SPECS[index % 3]
        sampling = {"temperature": rng.choice([0.6, 0.9, 1.2]), "maxTokens": 6 if spec.startswith("smollm2") else 10}
        if index % 2 == 0:
            sampling["seed"] = rng.randrange(0, 2**32 - 1)
        made.append((infer(server, spec, f"Prompt number {index}: once upon a time", **sampling), sampling))
    for answer, sampling in made:
        record = server.data(RECORD, {"id": answer["id"]})["inference"]
        assert record["result"] == answer["result"] and record["seed"] == answer["seed"] and record["status"] == "completed"
        assert record["modelRevision"]["id"] == answer["modelRevision"]["id"]
        assert record["artifactMD5"] == answer["modelRevision"]["artifact"]["md5"] and "CPU" in record["engine"]
        stored = json.loads(record["sampling"])
        assert stored["seed"] == answer["seed"] and stored["temperature"] == sampling["temperature"]
        lineage = json.loads(record["lineage"])
        assert lineage["datasets"] == [{"path": d["path"], "md5": d["md5"]} for d in answer["modelRevision"]["datasets"]]
        assert lineage["parameters"] == answer["modelRevision"]["parameters"]
    page = server.data('{ inferences(filter: {model: "tiny-llama"}, first: 1000) { edges { node { id } } pageInfo { hasNextPage } } }')
    assert len(page["inferences"]["edges"]) == sum(1 for i in range(count) if i % 3 != 2) and not page["inferences"]["pageInfo"]["hasNextPage"]
    server.restart()
    for answer, _ in made:
        replay = server.data(REPLAY, {"id": answer["id"]})["replay"]
        assert replay["identical"], (answer, replay)
        assert replay["replay"]["result"] == answer["result"] and replay["original"]["id"] == answer["id"]
    # The tree: the head signed part way and the one the shutdown signed.
    assert int(early["size"]) == split and signed_head(server, early)["rootHash"] == early["rootHash"]
    final = server.data("query($size: Long) { treeHead(size: $size) { %s } }" % HEAD, {"size": count})["treeHead"]
    assert final is not None, "no head was signed on shutdown"
    signed_head(server, final)
    proofs = [server.data(PROOF, {"id": answer["id"]})["inference"] for answer, _ in made]
    statements = [statement_of(p["receipt"]) for p in proofs]
    assert [json.loads(s)["predicate"]["position"] for s in statements] == list(range(1, count + 1))
    leaves = [leaf_hash(hashlib.sha256(s).digest()) for s in statements]
    assert mth(leaves[:split]).hex() == early["rootHash"] and mth(leaves).hex() == final["rootHash"]
    for index, (proof, leaf) in enumerate(zip(proofs, leaves)):
        inclusion = proof["inclusionProof"]
        head = inclusion["treeHead"]
        assert inclusion["leafIndex"] == index and inclusion["leafHash"] == leaf.hex()
        path = [bytes.fromhex(h) for h in inclusion["hashes"]]
        assert verify_inclusion(leaf, index, int(head["size"]), path, bytes.fromhex(head["rootHash"])), index
        if path:  # the check can fail: a bent path does not verify
            bent = [leaf_hash(b"bent")] + path[1:]
            assert not verify_inclusion(leaf, index, int(head["size"]), bent, bytes.fromhex(head["rootHash"]))
    consistency = server.data("query($a: Long!, $b: Long!) { consistencyProof(from: $a, to: $b) { from { size } to { size } hashes } }",
                              {"a": split, "b": count})["consistencyProof"]
    assert int(consistency["from"]["size"]) == split and int(consistency["to"]["size"]) == count
    path = [bytes.fromhex(h) for h in consistency["hashes"]]
    assert verify_consistency(split, count, path, bytes.fromhex(early["rootHash"]), bytes.fromhex(final["rootHash"]))
    forked = mth(leaves[:split - 1] + [leaf_hash(b"fork")])
    assert not verify_consistency(split, count, path, forked, bytes.fromhex(final["rootHash"]))


def test_replay_fetches_an_evicted_artifact_again(restartable):
    server = restartable()
    answer = infer(server, "tiny-llama@v1.0.0", "Evict me", temperature=0.8, seed=11, maxTokens=8)
    server.process.terminate()
    server.process.wait()
    md5 = answer["modelRevision"]["artifact"]["md5"]
    cached = Path(server.cache) / "objects/md5" / md5[:2] / md5[2:]
    cached.unlink()
    server.restart()
    replay = server.data(REPLAY, {"id": answer["id"]})["replay"]
    assert replay["identical"] and cached.exists()


def test_paging_and_filters(restartable):
    server = restartable()
    ids = [infer(server, "tiny-llama", f"p{i}", temperature=0.5, maxTokens=2)["id"] for i in range(5)]
    infer(server, "smollm2-135m", "other", temperature=0.5, maxTokens=2)
    first = server.data('{ inferences(filter: {model: "tiny-llama"}, first: 2) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }')["inferences"]
    assert [e["node"]["id"] for e in first["edges"]] == ids[::-1][:2] and first["pageInfo"]["hasNextPage"]
    rest = server.data('query($after: String) { inferences(filter: {model: "tiny-llama"}, first: 10, after: $after) { edges { node { id } } pageInfo { hasNextPage } } }',
                       {"after": first["pageInfo"]["endCursor"]})["inferences"]
    assert [e["node"]["id"] for e in rest["edges"]] == ids[::-1][2:] and not rest["pageInfo"]["hasNextPage"]
    by_revision = server.data('{ inferences(filter: {revision: "tiny-llama@main"}) { edges { node { id } } } }')["inferences"]["edges"]
    assert len(by_revision) == 5


def test_export_jsonl(restartable, backend, tmp_path):
    server = restartable()
    ids = [infer(server, "tiny-llama", f"audit {i}", temperature=0.7, maxTokens=3)["id"] for i in range(3)]
    out = subprocess.run([BIN, "ledger", "export", "--cache", server.cache, "--format", "jsonl", *backend],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows][-3:] == ids and all(r["revision"].startswith("tiny-llama@") for r in rows)


def test_killing_the_server_during_8_streams_loses_no_completed_record(restartable, backend):
    server = restartable()
    infer(server, "smollm2-135m", "warm", temperature=0, maxTokens=1)
    completed = []
    stream_query = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id } } }"

    def one(index):
        """An SSE stream; short ones complete, long ones are running when the server dies."""
        sampling = {"temperature": 0.8, "seed": index, "maxTokens": 4 if index < 4 else 400}
        try:
            with requests.post(server.url + "/graphql", stream=True, headers={"Accept": "text/event-stream"},
                               json={"query": stream_query, "variables": {"input": {"modelRevisionID": "smollm2-135m",
                                                                                     "prompt": f"Story {index}", "sampling": sampling}}}) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:") and '"payload":{' in line:
                        completed.append(json.loads(line[5:])["data"]["inferStream"]["payload"]["id"])
        except requests.RequestException:
            pass
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(8)]
        deadline = time.time() + 60
        while len(completed) < 4 and time.time() < deadline:
            time.sleep(0.05)
        server.restart(kill=True)  # SIGKILL while the long ones run
        concurrent.futures.wait(futures)
    assert len(completed) >= 4
    for record_id in completed:
        assert server.data(RECORD, {"id": record_id})["inference"]["status"] == "completed"
    if backend:
        return  # PostgreSQL: its own crash recovery; every answered record is there (above)
    database = sqlite3.connect(Path(server.cache) / "ledger.sqlite")
    assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert database.execute("SELECT COUNT(*) FROM inference WHERE output IS NULL OR revision = ''").fetchone()[0] == 0


def immutable(paths, on):
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def test_a_failing_ledger_warns_or_fails_as_configured(restartable, backend):
    server = restartable()
    infer(server, "tiny-llama", "before", temperature=0.5, maxTokens=2)
    if backend:
        # PostgreSQL: the table disappears from under the server (as a revoked or broken schema would).
        url = backend[1]
        if len(backend) > 2:
            os.environ["PGPASSWORD"] = Path(backend[3]).read_text().strip()
        psql = ["psql", url.replace("postgres://", "postgresql://"), "-c"]
        subprocess.run([*psql, "ALTER TABLE inference RENAME TO inference_away"], check=True, capture_output=True)
        restore = lambda: subprocess.run([*psql, "ALTER TABLE inference_away RENAME TO inference"], check=True, capture_output=True)
    else:
        ledger = Path(server.cache) / "ledger.sqlite"
        # The database and its write-ahead log become unwritable (EPERM, as on a read-only mount);
        # not the -shm file, which SQLite maps in memory and would fault on instead of failing.
        files = [ledger, Path(str(ledger) + "-wal")]
        try:
            immutable(files, True)
        except (subprocess.CalledProcessError, FileNotFoundError):
            pytest.skip("chattr +i is not permitted here: cannot make the ledger read-only for root")
        restore = lambda: immutable(files, False)
    try:
        answer = infer(server, "tiny-llama", "while read-only", temperature=0.5, maxTokens=2)  # still answers
        assert answer["result"] is not None
        metrics = requests.get(server.url + "/metrics").text
        failures = next(int(l.split()[1]) for l in metrics.splitlines() if l.startswith("pedigree_ledger_write_failures_total"))
        assert failures >= 1
        assert "ledger write failed" in Path(server.log.name).read_text()
        if not backend:
            server.restart("--ledger-failure", "fail")
        else:
            restore()
            server.restart("--ledger-failure", "fail")
            subprocess.run([*psql, "ALTER TABLE inference RENAME TO inference_away"], check=True, capture_output=True)
        body = server.gql(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "strict", "sampling": {"maxTokens": 2}}})
        assert error_codes(body) == ["INTERNAL"]
    finally:
        try:
            restore()
        except subprocess.CalledProcessError:
            pass


def test_cli_replay_needs_only_the_id(demo, tmp_path):
    """`pedigree infer` records; `pedigree replay <id>` finds the repository mirrored in the cache."""
    cache = str(tmp_path / "cache")
    ours = json.loads(subprocess.run([BIN, "infer", "tiny-llama", "--prompt", "Hello", "--temperature", "0.9", "--max-tokens", "8",
                                      "--json", "--repo", str(demo), "--cache", cache], capture_output=True, text=True, check=True).stdout)
    replay = subprocess.run([BIN, "replay", ours["id"], "--cache", cache, "--json"], capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    result = json.loads(replay.stdout)
    assert result["identical"] and result["original"] == ours["id"] and result["output"] == ours["summary"]["text"]
    missing = subprocess.run([BIN, "replay", "01M8ZZZZZZZZZZZZZZZZZZZZZZ", "--cache", cache], capture_output=True, text=True)
    assert missing.returncode != 0 and "NOT_FOUND" in missing.stderr


def test_postgres_tls_is_required_and_verified(demo, postgres, tmp_path):
    """The TLS-only role: without TLS, or against a certificate the server does not have, the
    ledger does not open, with a clear error; the password is never on the command line."""
    url, password_file = postgres(tls=True)
    plain = url.split("?")[0] + "?sslmode=disable"
    out = subprocess.run([BIN, "ledger", "export", "--cache", str(tmp_path), "--ledger", plain, "--ledger-password-file", password_file],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "PostgreSQL refused the ledger's connection" in out.stderr and "pg_hba.conf" in out.stderr, out.stderr
    other_ca = tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", tmp_path / "other.key", "-out", other_ca], check=True, capture_output=True)
    wrong = url.split("&sslrootcert=")[0] + f"&sslrootcert={other_ca}"
    out = subprocess.run([BIN, "ledger", "export", "--cache", str(tmp_path), "--ledger", wrong, "--ledger-password-file", password_file],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "cannot connect to the PostgreSQL ledger" in out.stderr, out.stderr
    # The password from $PGPASSWORD works as well as from the file.
    out = subprocess.run([BIN, "ledger", "export", "--cache", str(tmp_path), "--ledger", url], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PGPASSWORD": postgres.password})
    assert out.returncode == 0, out.stderr
    assert postgres.password not in out.stderr + out.stdout


def test_an_evaluation_is_kept_and_read_back_after_a_restart(restartable):
    """An evaluation's row (SQLite and PostgreSQL): read back after a restart with its status,
    scores and items as the run gave them, listed in the model's history, rerun in full from the
    ledger, and equal to itself in a comparison."""
    server = restartable()
    query = """mutation($input: EvaluateInput!) { evaluate(input: $input) { id status total
      scores { scorer mean count } items { id inferenceID output scores { scorer value } } } }"""
    variables = {"input": {"modelRevisionID": "tiny-llama", "dataset": "data/eval/qa.jsonl", "scorers": ["contains:lower", "length"],
                           "sampling": {"maxTokens": 4}}}
    ran = server.data(query, variables)["evaluate"]
    assert ran["status"] == "COMPLETED" and ran["total"] == len(ran["items"]) >= 20
    server.restart()
    stored = server.data("""query($id: ID!) { evaluation(id: $id) { id status total done
      scores { scorer mean count } items { id inferenceID output scores { scorer value } } } }""", {"id": ran["id"]})["evaluation"]
    assert stored == {**ran, "done": ran["total"]}
    assert ran["id"] in [e["id"] for e in server.data('{ evaluations(model: "tiny-llama") { id } }')["evaluations"]]
    again = server.data(query.replace("status total", "status total reused"), variables)["evaluate"]
    assert again["reused"] == ran["total"] and again["items"] == ran["items"]
    same = server.data("query($id: ID!) { compareEvaluations(a: $id, b: $id) { unchanged items { id } } }", {"id": ran["id"]})
    assert same["compareEvaluations"] == {"unchanged": ran["total"], "items": []}


def test_ledger_verify_names_the_first_edited_moved_or_deleted_record(restartable, backend):
    """Every record is sealed by its receipt at its ledger position and by its leaf in the signed
    Merkle tree. `pedigree ledger verify` passes on an untouched ledger and after retention, and,
    after an output, the lineage or a leaf is edited, two records swap places, a position is
    cleared, the tail is cut (rows, leaves and sequence made to agree) or a record is deleted —
    directly in SQLite or PostgreSQL — fails naming the first bad position."""
    server = restartable()
    for index in range(6):
        infer(server, "tiny-llama", f"sealed {index}", temperature=0.7, seed=index + 1, maxTokens=3)
    signed = server.data("mutation { signTreeHead { size envelope } }")["signTreeHead"]
    assert signed["size"] == 6
    kept_head = Path(server.cache) / "head-6.json"
    kept_head.write_text(signed["envelope"])
    if backend:
        url = backend[1]
        env = {**os.environ}
        if len(backend) > 2:
            env["PGPASSWORD"] = Path(backend[3]).read_text().strip()

        def sql(statement):
            out = subprocess.run(["psql", "-At", url.replace("postgres://", "postgresql://"), "-c", statement], check=True,
                                 capture_output=True, text=True, env=env)
            return out.stdout.strip()
    else:
        def sql(statement):
            with sqlite3.connect(Path(server.cache) / "ledger.sqlite") as db:
                rows = db.execute(statement).fetchall()
            return "\n".join("|".join(str(c) for c in row) for row in rows)

    def verify():
        return subprocess.run([BIN, "ledger", "verify", "--cache", server.cache, *backend], capture_output=True, text=True)

    positions = [int(p) for p in sql("SELECT position FROM inference ORDER BY position").split()]
    assert positions == list(range(positions[0], positions[0] + 6))
    first = positions[0]
    clean = verify()
    assert clean.returncode == 0 and "verified 6 records" in clean.stdout, clean.stderr
    # An edited answer.
    sql(f"UPDATE inference SET output = output || ' (edited)' WHERE position = {first + 2}")
    edited = verify()
    assert edited.returncode == 1 and f"FAIL position {first + 2}" in edited.stderr and "output" in edited.stderr, edited.stderr
    sql(f"UPDATE inference SET output = substr(output, 1, length(output) - 9) WHERE position = {first + 2}")
    assert verify().returncode == 0
    # Two records swapped.
    sql(f"UPDATE inference SET position = -1 WHERE position = {first + 1}")
    sql(f"UPDATE inference SET position = {first + 1} WHERE position = {first + 4}")
    sql(f"UPDATE inference SET position = {first + 4} WHERE position = -1")
    swapped = verify()
    assert swapped.returncode == 1 and f"FAIL position {first + 1}" in swapped.stderr and "position" in swapped.stderr, swapped.stderr
    sql(f"UPDATE inference SET position = -1 WHERE position = {first + 1}")
    sql(f"UPDATE inference SET position = {first + 1} WHERE position = {first + 4}")
    sql(f"UPDATE inference SET position = {first + 4} WHERE position = -1")
    assert verify().returncode == 0
    # A record taken out of the sequence (its position cleared) looks like none made before positions: refused.
    sql(f"UPDATE inference SET position = NULL WHERE position = {first + 5}")
    hidden = verify()
    assert hidden.returncode == 1 and "1 records have no position" in hidden.stderr, hidden.stderr
    sql(f"UPDATE inference SET position = {first + 5} WHERE position IS NULL")
    # An edited field the answer does not show (the lineage) is named too.
    lineage_text = sql(f"SELECT lineage FROM inference WHERE position = {first}")
    sql(f"UPDATE inference SET lineage = '{{}}' WHERE position = {first}")
    lineage = verify()
    assert lineage.returncode == 1 and f"FAIL position {first} " in lineage.stderr and "lineage" in lineage.stderr, lineage.stderr
    sql(f"UPDATE inference SET lineage = '{lineage_text.replace(chr(39), chr(39) * 2)}' WHERE position = {first}")
    assert verify().returncode == 0
    # A leaf edited (the row left alone): named by position.
    hex_of = "encode(hash, 'hex')" if backend else "lower(hex(hash))"
    original = sql(f"SELECT {hex_of} FROM ledger_leaf WHERE position = {first + 2}")
    blob = (lambda h: f"decode('{h}', 'hex')") if backend else (lambda h: f"X'{h}'")
    sql(f"UPDATE ledger_leaf SET hash = {blob('00' * 32)} WHERE position = {first + 2}")
    leaf = verify()
    assert leaf.returncode == 1 and f"FAIL position {first + 2} " in leaf.stderr and "leaf" in leaf.stderr, leaf.stderr
    sql(f"UPDATE ledger_leaf SET hash = {blob(original)} WHERE position = {first + 2}")
    # Retention (at start: keep the newest 4) removes positions 1 and 2; their leaves stay, and the
    # signed head still verifies over them.
    server.restart("--ledger-max-rows", "4")
    assert sql("SELECT min(position) FROM inference") == str(first + 2)
    kept = verify()
    assert kept.returncode == 0 and "verified 4 records" in kept.stdout and "the newest of size 6" in kept.stdout, kept.stderr
    # A removed record's leaf edited: only the signed root can tell.
    removed = sql(f"SELECT {hex_of} FROM ledger_leaf WHERE position = {first}")
    sql(f"UPDATE ledger_leaf SET hash = {blob('11' * 32)} WHERE position = {first}")
    root = verify()
    assert root.returncode == 1 and "FAIL tree head of size 6: the leaves of positions 1 to 6 give another root" in root.stderr, root.stderr
    sql(f"UPDATE ledger_leaf SET hash = {blob(removed)} WHERE position = {first}")
    # The tail cut so that rows and sequence agree (record, leaf and last position): the signed head still holds it.
    sql(f"DELETE FROM inference WHERE position = {first + 5}")
    sql(f"DELETE FROM ledger_leaf WHERE position = {first + 5}")
    sql("UPDATE ledger_sequence SET last = last - 1")
    cut = verify()
    assert cut.returncode == 1 and f"FAIL position {first + 5}: missing (the tree head of size 6" in cut.stderr, cut.stderr
    # …and the heads deleted too: only a head kept outside the database shows it.
    sql("DELETE FROM tree_head")
    assert verify().returncode == 0
    outside = subprocess.run([BIN, "ledger", "verify", "--cache", server.cache, *backend, "--tree-head", str(kept_head)],
                             capture_output=True, text=True)
    assert outside.returncode == 1 and f"FAIL position {first + 5}: missing (the tree head of size 6" in outside.stderr, outside.stderr
    # Deleted records: one in the middle, then the first retention kept.
    for gone in (first + 3, first + 2):
        sql(f"DELETE FROM inference WHERE position = {gone}")
        deleted = verify()
        assert deleted.returncode == 1 and f"FAIL position {gone}: missing" in deleted.stderr, (gone, deleted.stderr)
