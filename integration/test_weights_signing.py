"""Signed weights: OpenSSF Model Signing bundles made by the real `model-signing` package (key
and certificate methods) checked offline by `pedigree verify-weights`, with model-signing's own
verifier as the oracle: a flipped byte in the weights or the signature, an untrusted key or CA
is refused by both."""
import base64
import datetime
import hashlib
import html
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import model_signing
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import models
from support.tools import ENV, ROOT, pedigree, run


def write_key(path, curve=ec.SECP256R1()):
    key = ec.generate_private_key(curve)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.with_suffix(".pub").write_bytes(public)
    return key


def certificate(subject, key, issuer=None, issuer_key=None, ca=False, critical_eku=False, cert_sign=True):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pedigree tests")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = (builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                                       data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                       encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=critical_eku)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
    if ca and issuer:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(hashlib.sha256(b"weights").digest() * 4096)
    return path


def verify(weights, *trust, signature=None):
    args = ["verify-weights", str(weights), *(["--signature", str(signature)] if signature else [])]
    for path in trust:
        args += ["--trust", str(path)]
    return pedigree(*args, check=False)


def oracle(config, weights, signature):
    try:
        config.verify(weights, signature)
        return True
    except Exception:
        return False


def flipped_signature(bundle, out):
    data = json.loads(bundle.read_text())
    sig = bytearray(base64.b64decode(data["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    data["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    out.write_text(json.dumps(data))
    return out


def refusals(tmp_path, weights, signature, trusted, oracle_config, untrusted, untrusted_config):
    """A flipped byte in the weights, one in the signature, an untrusted signer: refused by both."""
    bad_signature = flipped_signature(signature, tmp_path / "flipped.sig")
    refused = verify(weights, trusted, signature=bad_signature)
    assert refused.returncode == 1 and "FAIL" in refused.stderr, refused.stdout
    assert not oracle(oracle_config, weights, bad_signature)
    other = verify(weights, untrusted, signature=signature)
    assert other.returncode == 1 and "FAIL" in other.stderr
    assert not oracle(untrusted_config, weights, signature)
    original = weights.read_bytes()
    weights.write_bytes(original[:1000] + bytes([original[1000] ^ 1]) + original[1001:])
    changed = verify(weights, trusted, signature=signature)
    assert changed.returncode == 1 and "SHA-256 is not the one signed" in changed.stderr, changed.stderr
    assert not oracle(oracle_config, weights, signature)
    weights.write_bytes(original)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p256", "p384"])
def test_the_key_method(tmp_path, weights, curve):
    key = write_key(tmp_path / "signer.pem", curve)
    write_key(tmp_path / "stranger.pem")
    signature = weights.with_name("model.gguf.sig")
    model_signing.signing.Config().use_elliptic_key_signer(private_key=tmp_path / "signer.pem").sign(weights, signature)
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=tmp_path / "signer.pub")
    assert oracle(config, weights, signature)
    verified = verify(weights, tmp_path / "signer.pub")
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert verified.returncode == 0, verified.stderr
    assert f"verified: key method, signer sha256:{hashlib.sha256(der).hexdigest()}, model model.gguf" in verified.stdout
    assert f"sha256: {hashlib.sha256(weights.read_bytes()).hexdigest()}" in verified.stdout
    stranger = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=tmp_path / "stranger.pub")
    refusals(tmp_path, weights, signature, tmp_path / "signer.pub", config, tmp_path / "stranger.pub", stranger)


def test_the_certificate_method(tmp_path, weights):
    ca_key, other_ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Pedigree test CA", ca_key, ca=True)
    other_ca = certificate("Another CA", other_ca_key, ca=True)
    signer_key = write_key(tmp_path / "leaf.pem")
    leaf = certificate("model-release-bot", signer_key, issuer=ca, issuer_key=ca_key)
    (tmp_path / "leaf.crt").write_bytes(pem(leaf))
    (tmp_path / "ca.crt").write_bytes(pem(ca))
    (tmp_path / "other-ca.crt").write_bytes(pem(other_ca))
    signature = weights.with_name("model.gguf.sig")
    model_signing.signing.Config().use_certificate_signer(
        private_key=tmp_path / "leaf.pem", signing_certificate=tmp_path / "leaf.crt", certificate_chain=[tmp_path / "ca.crt"]
    ).sign(weights, signature)
    config = model_signing.verifying.Config().use_certificate_verifier(certificate_chain=[tmp_path / "ca.crt"])
    assert oracle(config, weights, signature)
    verified = verify(weights, tmp_path / "ca.crt")
    assert verified.returncode == 0, verified.stderr
    # The signer as RFC 4514 writes the certificate's subject (cryptography's rendering).
    assert f"verified: certificate method, signer {leaf.subject.rfc4514_string()}, model" in verified.stdout, verified.stdout
    other = model_signing.verifying.Config().use_certificate_verifier(certificate_chain=[tmp_path / "other-ca.crt"])
    refusals(tmp_path, weights, signature, tmp_path / "ca.crt", config, tmp_path / "other-ca.crt", other)
    # A key alone does not stand for a CA: the certificate method needs a trusted CA.
    write_key(tmp_path / "some.pem")
    assert "no CA is trusted" in verify(weights, tmp_path / "some.pub").stderr


def test_certificate_chains_through_intermediates(tmp_path, weights):
    """Through an intermediate CA and with a critical extended key usage: verified, as by
    model-signing; an intermediate that may not sign certificates, or a chain longer than five
    certificates, is refused."""
    root_key, middle_key, weak_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = certificate("Root CA", root_key, ca=True)
    middle = certificate("Intermediate CA", middle_key, issuer=root, issuer_key=root_key, ca=True)
    weak = certificate("Not a CA signer", weak_key, issuer=root, issuer_key=root_key, ca=True, cert_sign=False)
    (tmp_path / "root.crt").write_bytes(pem(root))
    signer_key = write_key(tmp_path / "leaf.pem")
    signature = weights.with_name("model.gguf.sig")

    def sign(issuer, issuer_key, chain, critical_eku=False):
        leaf = certificate("release-bot", signer_key, issuer=issuer, issuer_key=issuer_key, critical_eku=critical_eku)
        (tmp_path / "leaf.crt").write_bytes(pem(leaf))
        paths = []
        for index, cert in enumerate(chain):
            (tmp_path / f"chain{index}.crt").write_bytes(pem(cert))
            paths.append(tmp_path / f"chain{index}.crt")
        model_signing.signing.Config().use_certificate_signer(
            private_key=tmp_path / "leaf.pem", signing_certificate=tmp_path / "leaf.crt", certificate_chain=paths).sign(weights, signature)

    config = model_signing.verifying.Config().use_certificate_verifier(certificate_chain=[tmp_path / "root.crt"])
    sign(middle, middle_key, [middle, root], critical_eku=True)
    assert oracle(config, weights, signature)
    verified = verify(weights, tmp_path / "root.crt")
    assert verified.returncode == 0 and "certificate method" in verified.stdout, verified.stderr
    sign(weak, weak_key, [weak, root])
    assert not oracle(config, weights, signature)
    refused = verify(weights, tmp_path / "root.crt")
    assert refused.returncode == 1 and "does not lead to a trusted CA" in refused.stderr, refused.stderr
    sign(middle, middle_key, [middle] * 5 + [root])
    long = verify(weights, tmp_path / "root.crt")
    assert long.returncode == 1 and "a certificate chain of 7 certificates" in long.stderr, long.stderr


# --- Signatures checked at load: the demo's signed weights, and a repository of bad ones ---------

DEMO_KEYS = ROOT / "script/demo/signing"
INFER = """mutation($m: ID!) { infer(input: {modelRevisionID: $m, prompt: "Hi", sampling: {maxTokens: 2, seed: 1}}) { id receipt } }"""
RECORD = """query($id: ID!) { inference(id: $id) { modelRevision { id } artifactSHA256 signature { status method signer file reason sha256 } } }"""
LINEAGE = """query($m: ID!) { modelRevision(id: $m) { id artifact { signature { status method signer file reason sha256 } } } }"""


def demo_key_id():
    key = serialization.load_pem_public_key((DEMO_KEYS / "key.pub").read_bytes())
    return "sha256:" + hashlib.sha256(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def demo_certificate_subject():
    return x509.load_pem_x509_certificate((DEMO_KEYS / "signer.crt").read_bytes()).subject.rfc4514_string()


def demo_oracle(weights, signature):
    """model-signing's own verdict on a signature, trusting the demo's key or its CA."""
    key = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=DEMO_KEYS / "key.pub")
    ca = model_signing.verifying.Config().use_certificate_verifier(certificate_chain=[DEMO_KEYS / "ca.crt"])
    return oracle(key, weights, signature) or oracle(ca, weights, signature)


def infer(server, model):
    """The answer's record and its receipt's `artifact`, or the errors' codes and messages."""
    body = server.gql(INFER, {"m": model})
    if "errors" in body:
        return None, [(e["extensions"]["code"], e["message"]) for e in body["errors"]]
    answer = body["data"]["infer"]
    record = server.data(RECORD, {"id": answer["id"]})["inference"]
    predicate = json.loads(base64.b64decode(json.loads(answer["receipt"])["payload"]))["predicate"]
    assert predicate["artifact"]["sha256"] == record["artifactSHA256"]
    signature = {k: v for k, v in record["signature"].items() if v is not None and k != "sha256"}
    assert predicate["artifact"]["signature"] == signature, (predicate, record)
    return record, None


def test_the_demo_weights_load_verified_and_record_their_signer(server, demo, tmp_path):
    """smollm2 is signed by the key method (signature in Git), tiny-llama by the certificate
    method (signature tracked by DVC); both verify (as model-signing says), are recorded verified
    with their signer and the weights' SHA-256, and signed into the receipt; smollm2@v1.0.0 was
    released before signing and loads unsigned (allow)."""
    for model, method, signer in [("smollm2-135m", "key", demo_key_id()), ("tiny-llama", "certificate", demo_certificate_subject())]:
        record, errors = infer(server, model)
        assert errors is None, errors
        path = pedigree("pull", record["modelRevision"]["id"], "--repo", str(demo), "--cache", server.cache).stdout.strip().splitlines()[-1]
        file = f"models/{model}/model.gguf.sig"
        assert record["artifactSHA256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert record["signature"] == {"status": "verified", "method": method, "signer": signer, "file": file, "reason": None,
                                       "sha256": record["artifactSHA256"]}
        assert demo_oracle(path, demo / file)
        lineage = server.data(LINEAGE, {"m": model})["modelRevision"]["artifact"]["signature"]
        assert lineage == record["signature"]
    # pedigree verify reads the weights' check from the receipt, and the repository names that signature.
    answer = server.data(INFER, {"m": "tiny-llama"})["infer"]
    receipt = tmp_path / "receipt.json"
    receipt.write_text(answer["receipt"])
    keys = tmp_path / "receipt-keys.json"
    keys.write_text(requests.get(f"{server.url}/receipt-keys", timeout=10).text)
    checked = pedigree("verify", str(receipt), "--keys", str(keys), "--repo", str(demo), "--cache", server.cache).stdout
    assert f"signature verified, certificate, {demo_certificate_subject()}, models/tiny-llama/model.gguf.sig" in checked, checked
    assert "and their signature models/tiny-llama/model.gguf.sig" in checked, checked
    old, errors = infer(server, "smollm2-135m@v1.0.0")
    assert errors is None and old["signature"]["status"] == "unsigned" and old["signature"]["file"] is None
    revision = quote(record["modelRevision"]["id"], safe="@")
    page = requests.get(f"{server.url}/ui/revisions/{revision}", timeout=30).text
    assert f"verified (certificate {demo_certificate_subject()})" in html.unescape(page)


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory, demo):
    """A repository of one tiny model's weights under several signatures: by the demo key (in
    Git), by the demo CA's signer (tracked by DVC), the same weights and signature under another
    name, weights with one flipped byte after signing, a signature with one flipped byte, a
    stranger's key, and none."""
    folder = tmp_path_factory.mktemp("signed")
    weights = (demo / "models/tiny-llama/model.gguf").read_bytes()
    sign = [sys.executable, str(ROOT / "script/demo/sign.py")]
    keys = tmp_path_factory.mktemp("stranger")
    write_key(keys / "stranger.pem")

    def signed(method):
        def write(target):
            target.write_bytes(weights)
            if method == "stranger":
                model_signing.signing.Config().use_elliptic_key_signer(private_key=keys / "stranger.pem").sign(target, Path(f"{target}.sig"))
            elif method:
                subprocess.run([*sign, method, str(target)], check=True, env=ENV)
        return write

    names = {"key-signed": "key", "other-key-signed": "key", "cert-signed": "certificate", "flipped-weights": "key",
             "flipped-signature": "key", "stranger": "stranger", "unsigned": None}
    repo = models.repository(folder, {name: (signed(method), name) for name, method in names.items()}, "Signed weights")
    flipped = repo / "models/flipped-weights/model.gguf"
    original = flipped.read_bytes()
    run("dvc", "unprotect", str(flipped.relative_to(repo)), cwd=repo)
    flipped.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    flipped_signature(repo / "models/flipped-signature/model.gguf.sig", repo / "models/flipped-signature/model.gguf.sig")
    run("git", "rm", "-q", "--cached", "models/cert-signed/model.gguf.sig", cwd=repo)
    run("dvc", "add", "-q", "models/flipped-weights/model.gguf", "models/cert-signed/model.gguf.sig", cwd=repo)
    run("dvc", "push", "-q", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "-m", "Sign, and spoil", cwd=repo)
    # model-signing's own verdicts, trusting the demo's key and CA.
    verdicts = {name: demo_oracle(repo / f"models/{name}/model.gguf", repo / f"models/{name}/model.gguf.sig") for name in names if name != "unsigned"}
    assert verdicts == {"key-signed": True, "other-key-signed": True, "cert-signed": True, "flipped-weights": False,
                        "flipped-signature": False, "stranger": False}
    return repo


BAD = {"flipped-weights": "SHA-256 is not the one signed", "flipped-signature": "does not verify with a trusted key",
       "stranger": "does not verify with a trusted key"}


def test_a_bad_signature_refuses_the_load_and_unsigned_weights_load_by_default(make_server, bad_weights):
    server = make_server(bad_weights)
    for name in ["key-signed", "other-key-signed", "cert-signed"]:
        record, errors = infer(server, name)
        assert errors is None and record["signature"]["status"] == "verified", (name, errors)
    record, errors = infer(server, "unsigned")
    assert errors is None and record["signature"] == {"status": "unsigned", "method": None, "signer": None, "file": None, "reason": None,
                                                      "sha256": record["artifactSHA256"]}
    for name, reason in BAD.items():
        record, errors = infer(server, name)
        assert record is None and errors[0][0] == "UNTRUSTED_WEIGHTS" and reason in errors[0][1], (name, errors)
        assert f"models/{name}/model.gguf.sig" in errors[0][1]
        lineage = server.data(LINEAGE, {"m": name})["modelRevision"]["artifact"]["signature"]
        assert lineage["status"] == "unverified" and reason in lineage["reason"]
    # The refusal answers over the OpenAI route too, with the code's status.
    response = requests.post(f"{server.url}/v1/completions", json={"model": "stranger", "prompt": "Hi", "max_tokens": 2}, timeout=60)
    assert response.status_code == 409 and "does not verify" in response.text, response.text


def test_warn_loads_and_records_unverified_weights(make_server, bad_weights):
    server = make_server(bad_weights, "--unsigned-weights", "warn")
    for name, reason in BAD.items():
        record, errors = infer(server, name)
        assert errors is None, (name, errors)
        assert record["signature"]["status"] == "unverified" and reason in record["signature"]["reason"]
        assert record["signature"]["file"] == f"models/{name}/model.gguf.sig" and record["signature"]["signer"] is None
    flipped = bad_weights / "models/flipped-weights/model.gguf"
    assert infer(server, "flipped-weights")[0]["artifactSHA256"] == hashlib.sha256(flipped.read_bytes()).hexdigest()
    assert "weights signature does not verify" in Path(server.log_path).read_text()


def test_refuse_loads_only_weights_verified_by_a_signer_trusted_for_the_model(make_server, bad_weights):
    """Signers are trusted per model: the demo key for key-signed only, the demo CA for cert-*;
    other-key-signed (the same weights and signature as key-signed) is refused, as are unsigned
    weights."""
    server = make_server(bad_weights, "--unsigned-weights", "refuse", "--trusted-signer", f"key-signed={DEMO_KEYS / 'key.pub'}",
                         "--trusted-signer", f"cert-*={DEMO_KEYS / 'ca.crt'}")
    assert infer(server, "key-signed")[0]["signature"]["signer"] == demo_key_id()
    assert infer(server, "cert-signed")[0]["signature"]["signer"] == demo_certificate_subject()
    for name, reason in [("other-key-signed", "does not verify with a trusted key"), ("unsigned", "not signed (unsigned-weights: refuse)"),
                         *((name, "signature models/" + name) for name in BAD)]:
        record, errors = infer(server, name)
        assert record is None and errors[0][0] == "UNTRUSTED_WEIGHTS" and reason in errors[0][1], (name, errors)


def test_an_unreadable_trust_file_stops_the_start(tmp_path, demo):
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for spec, why in [(str(tmp_path / "missing.pem"), "cannot be read"), (f"tiny-llama={tmp_path / 'junk.pem'}", "junk.pem"),
                      ("tiny-llama=", "is not PATTERN=FILE")]:
        result = pedigree("infer", "tiny-llama", "--prompt", "Hi", "--repo", str(demo), "--cache", str(tmp_path / "cache"),
                          "--trusted-signer", spec, check=False)
        assert result.returncode != 0 and why in result.stderr, result.stderr
