"""Receipts: every recorded inference carries an in-toto Statement in a DSSE envelope signed with
the server's Ed25519 key. Checked with code we did not write (securesystemslib's DSSE
verification, with the key from GET /receipt-keys) and with `pedigree verify`; any change to the
statement breaks the signature."""
import base64
import copy
import hashlib
import json
import subprocess

import pytest
import requests
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from support.processes import Server
from support.tools import ROOT, pedigree

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id result seed } }"
RECORD = """query($id: ID!) { inference(id: $id) { receipt sampling seed
  modelRevision { id commit { sha } artifact { md5 } } } }"""


def published_keys(server):
    keys = requests.get(server.url + "/receipt-keys", timeout=30).json()["keys"]
    assert keys and all(k["keyid"] == hashlib.sha256(bytes.fromhex(k["keyval"]["public"])).hexdigest() for k in keys)
    return [SSlibKey.from_dict(k["keyid"], {key: value for key, value in k.items() if key != "keyid"}) for k in keys]


def with_payload(envelope, statement):
    return {**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}


def test_a_receipt_verifies_with_securesystemslib_and_pedigree_verify(server, demo, tmp_path):
    answer = server.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "A receipt, please:",
                                           "sampling": {"temperature": 0.8, "seed": 7, "maxTokens": 8}}})["infer"]
    record = server.data(RECORD, {"id": answer["id"]})["inference"]
    envelope = json.loads(record["receipt"])
    keys = published_keys(server)
    assert set(Envelope.from_dict(copy.deepcopy(envelope)).verify(keys, 1)) == {keys[0].keyid}  # (from_dict consumes its dict)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["output"] == hashlib.sha256(answer["result"].encode()).hexdigest()
    predicate = statement["predicate"]
    revision = record["modelRevision"]
    assert predicate["inference"] == answer["id"] and predicate["revision"] == revision["id"]
    assert predicate["commit"] == revision["commit"]["sha"] and predicate["artifact"]["md5"] == revision["artifact"]["md5"]
    assert predicate["seed"] == answer["seed"] == 7 and predicate["sampling"] == json.loads(record["sampling"])
    assert predicate["input"]["sha256"] == hashlib.sha256(b"A receipt, please:").hexdigest() and predicate["signer"] == keys[0].keyid
    # The server's own version and build commit: in /healthz (asked for JSON) and in the engine facts the receipt signs.
    health = requests.get(server.url + "/healthz", headers={"Accept": "application/json"}, timeout=30).json()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert health["status"] == "ok" and health["commit"] in (head, head + "-dirty") and health["version"], health
    assert json.loads(predicate["engine"])["server"] == f"pedigree {health['version']} ({health['commit']})"
    assert requests.get(server.url + "/healthz", timeout=30).text == "ok\n"
    # The CLI prints the same receipt from the ledger, and `pedigree verify` checks it offline.
    assert json.loads(pedigree("receipt", answer["id"], "--cache", server.cache).stdout) == envelope
    (tmp_path / "receipt.json").write_text(record["receipt"])
    (tmp_path / "keys.json").write_text(requests.get(server.url + "/receipt-keys", timeout=30).text)
    (tmp_path / "output.txt").write_text(answer["result"])
    verified = pedigree("verify", str(tmp_path / "receipt.json"), "--keys", str(tmp_path / "keys.json"), "--output",
                        str(tmp_path / "output.txt"), "--repo", str(demo), "--cache", str(tmp_path / "cache"))
    assert "signature: verified" in verified.stdout and "the signed answer" in verified.stdout and "names weights md5" in verified.stdout
    (tmp_path / "input.txt").write_text("A receipt, please:")
    (tmp_path / "other-input.txt").write_text("Another prompt")
    assert "the signed input" in pedigree("verify", str(tmp_path / "receipt.json"), "--keys", str(tmp_path / "keys.json"),
                                          "--input", str(tmp_path / "input.txt")).stdout
    other_input = pedigree("verify", str(tmp_path / "receipt.json"), "--keys", str(tmp_path / "keys.json"), "--input",
                           str(tmp_path / "other-input.txt"), check=False)
    assert other_input.returncode == 1 and "FAIL input" in other_input.stderr
    (tmp_path / "other.txt").write_text(answer["result"] + " ")
    wrong = pedigree("verify", str(tmp_path / "receipt.json"), "--keys", str(tmp_path / "keys.json"), "--output",
                     str(tmp_path / "other.txt"), check=False)
    assert wrong.returncode == 1 and "FAIL output" in wrong.stderr
    # Any change to the statement breaks the signature, for securesystemslib and for `pedigree verify`.
    changes = [
        lambda s: s["predicate"].update(seed=s["predicate"]["seed"] + 1),
        lambda s: s["predicate"].update(revision="tiny-llama@" + "0" * 40),
        lambda s: s["predicate"]["artifact"].update(md5="0" * 32),
        lambda s: s["subject"][0]["digest"].update(sha256="0" * 64),
        lambda s: s["predicate"]["sampling"].update(temperature=0.1),
    ]
    for change in changes:
        tampered = copy.deepcopy(statement)
        change(tampered)
        forged = with_payload(envelope, tampered)
        with pytest.raises(Exception):
            Envelope.from_dict(copy.deepcopy(forged)).verify(keys, 1)
        (tmp_path / "forged.json").write_text(json.dumps(forged))
        refused = pedigree("verify", str(tmp_path / "forged.json"), "--keys", str(tmp_path / "keys.json"), check=False)
        assert refused.returncode == 1 and "FAIL signature" in refused.stderr


def test_the_answer_carries_its_receipt_on_graphql_and_the_openai_routes(server):
    """`infer` returns the receipt it recorded; a chat completion returns each choice's receipt in
    the `Pedigree-Receipt` header (base64 of the envelope), which verifies and signs that choice's text."""
    keys = published_keys(server)
    answer = server.data(INFER.replace("result seed", "result seed receipt"), {"input": {
        "modelRevisionID": "tiny-llama", "prompt": "Sign this", "sampling": {"seed": 3, "maxTokens": 4}}})["infer"]
    assert answer["receipt"] == server.data(RECORD, {"id": answer["id"]})["inference"]["receipt"]
    response = requests.post(server.url + "/v1/chat/completions", timeout=120, json={
        "model": "tiny-llama", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "seed": 1, "n": 2})
    assert response.status_code == 200, response.text
    receipts = [json.loads(base64.b64decode(part.strip())) for part in response.headers["Pedigree-Receipt"].split(",")]
    choices = response.json()["choices"]
    assert len(receipts) == len(choices) == 2
    for envelope, choice in zip(receipts, choices):
        assert Envelope.from_dict(copy.deepcopy(envelope)).verify(keys, 1)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        output = next(s for s in statement["subject"] if s["name"] == "output")["digest"]["sha256"]
        assert output == hashlib.sha256(choice["message"]["content"].encode()).hexdigest()
        assert statement["predicate"]["inference"] == choice["inference_id"]


def test_a_rotated_key_stays_trusted_and_gateways_share_a_key_file(demo, tmp_path):
    """Two servers given one `receipt-key-file` publish one key; `pedigree receipt-key rotate`
    retires it (still published and trusted: old receipts and heads verify) and the restarted
    server signs with the new one."""
    key_file = tmp_path / "shared" / "receipt-key"
    flags = ("--receipt-key-file", str(key_file))
    a, b = Server(demo, *flags), Server(demo, *flags)
    try:
        ask = INFER.replace("result seed", "result seed receipt")
        first = a.data(ask, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Old key", "sampling": {"seed": 1, "maxTokens": 3}}})["infer"]
        a.data("mutation { signTreeHead { size } }")
        old = [k["keyid"] for k in requests.get(a.url + "/receipt-keys", timeout=30).json()["keys"]]
        assert len(old) == 1 and old == [k["keyid"] for k in requests.get(b.url + "/receipt-keys", timeout=30).json()["keys"]]
        assert key_file.stat().st_mode & 0o777 == 0o600
        b.stop()
        a.process.terminate()
        a.process.wait(timeout=30)
        rotated = pedigree("receipt-key", "rotate", "--cache", a.cache, *flags).stdout
        assert f"retired {old[0]}" in rotated
        new = rotated.split("now ")[1].strip()
        assert key_file.stat().st_mode & 0o777 == 0o600
        a.launch(*flags)
        published = requests.get(a.url + "/receipt-keys", timeout=30).json()
        assert [k["keyid"] for k in published["keys"]] == [new, old[0]]
        assert json.loads(pedigree("receipt-key", "show", "--cache", a.cache, *flags).stdout) == published
        second = a.data(ask, {"input": {"modelRevisionID": "tiny-llama", "prompt": "New key", "sampling": {"seed": 2, "maxTokens": 3}}})["infer"]
        keys = published_keys(a)
        for answer, signer in ((first, old[0]), (second, new)):
            envelope = json.loads(answer["receipt"])
            assert envelope["signatures"][0]["keyid"] == signer
            assert set(Envelope.from_dict(copy.deepcopy(envelope)).verify(keys, 1)) == {signer}
        a.data("mutation { signTreeHead { size } }")
        verified = pedigree("ledger", "verify", "--cache", a.cache, *flags)
        assert "verified 2 records" in verified.stdout and "2 signed heads verified" in verified.stdout, verified.stdout
    finally:
        a.stop()
        b.stop()
