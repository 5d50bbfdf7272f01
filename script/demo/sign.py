"""Signs a weights file with the real `model-signing` package (OpenSSF Model Signing) and the
demo's keys in script/demo/signing/: `sign.py key|certificate FILE` writes FILE.sig.

The keys are demo keys, committed so that every copy of the demo trusts the same signers
(script/demo/signing/trusted.pem: the key method's public key and the certificate method's CA).
Never trust them outside the demo."""
import pathlib
import sys

import model_signing

keys = pathlib.Path(__file__).resolve().parent / "signing"
method, weights = sys.argv[1], pathlib.Path(sys.argv[2])
config = model_signing.signing.Config()
if method == "key":
    config.use_elliptic_key_signer(private_key=keys / "key.pem")
elif method == "certificate":
    config.use_certificate_signer(private_key=keys / "signer.pem", signing_certificate=keys / "signer.crt", certificate_chain=[keys / "ca.crt"])
else:
    sys.exit("usage: sign.py key|certificate FILE")
config.sign(weights, weights.with_name(weights.name + ".sig"))
