"""The build's SBOM (script/sbom): valid CycloneDX 1.6 by cyclonedx-python-lib's strict JSON
validator, listing every package SwiftPM reads from Package.swift (`swift package dump-package`)
at its exact version, llama.cpp's pinned sdist with its SHA-256, and the Python tools."""
import json
import re
import subprocess
import sys
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

ROOT = Path(__file__).resolve().parents[1]


def test_the_sbom_is_valid_cyclonedx_and_lists_every_swift_package():
    text = subprocess.run([sys.executable, str(ROOT / "script/sbom.py"), str(ROOT)], check=True, capture_output=True, text=True).stdout
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    sbom = json.loads(text)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert sbom["metadata"]["component"]["name"] == "pedigree" and sbom["metadata"]["component"]["version"] == head
    listed = {(c.get("externalReferences") or [{}])[0].get("url"): c["version"] for c in sbom["components"] if c["bom-ref"].startswith("swift:")}
    manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    pinned = {}
    for dependency in manifest["dependencies"]:
        (source,) = dependency["sourceControl"]
        pinned[source["location"]["remote"][0]["urlString"]] = source["requirement"]["exact"][0]
    assert listed == pinned and len(pinned) >= 15
    (llama,) = [c for c in sbom["components"] if c["name"] == "llama.cpp"]
    build_llama = (ROOT / "script/build-llama").read_text()
    assert llama["hashes"] == [{"alg": "SHA-256", "content": re.search(r"^sha256=(\w+)", build_llama, re.M).group(1)}]
    python = {c["name"]: c["version"] for c in sbom["components"] if c["bom-ref"].startswith("pypi:")}
    assert python["gto"] == re.search(r"^gto==(\S+)", (ROOT / "script/requirements.txt").read_text(), re.M).group(1)
    dependencies = {d["ref"]: set(d.get("dependsOn", [])) for d in sbom["dependencies"]}
    assert {f"swift:{c['name']}" for c in sbom["components"] if c["bom-ref"].startswith("swift:")} <= dependencies["pedigree"]
