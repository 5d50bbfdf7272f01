"""Signed weights: OpenSSF Model Signing bundles made by the real `model-signing` package (key
and certificate methods) checked offline by `pedigree verify-weights`, with model-signing's own
verifier as the oracle: a flipped byte in the weights or the signature, an untrusted key or CA
is refused by both."""
import base64
import datetime
import hashlib
import json
import shutil
from pathlib import Path

import model_signing
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support.tools import pedigree


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
