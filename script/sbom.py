"""Writes a CycloneDX 1.6 SBOM (JSON) of Pedigree's build to standard output: the Swift packages at
the exact versions Package.swift pins, llama.cpp as vendored by the pinned llama-cpp-python sdist
(with the sdist's SHA-256), the system library libgit2, and the pinned Python tools of
script/requirements.txt (fixtures, oracles and benchmarks; scope "excluded": not in the binary).
The root component is Pedigree at its Git commit.

Usage: sbom.py [ROOT]"""
import re
import subprocess
import sys
from pathlib import Path

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])


def swift_packages():
    """(name, url, version) of every `.package(url:, exact:)` in Package.swift."""
    text = (root / "Package.swift").read_text()
    for url, version in re.findall(r'\.package\(\s*url:\s*"([^"]+)"\s*,\s*exact:\s*"([^"]+)"', text):
        name = url.rstrip("/").removesuffix(".git").split("/")[-1]
        yield name, url, version


def llama_pin():
    text = (root / "script/build-llama").read_text()
    return re.search(r"^version=(\S+)", text, re.M).group(1), re.search(r"^sha256=([0-9a-f]{64})", text, re.M).group(1)


def python_pins():
    for line in (root / "script/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            yield re.sub(r"\[.*\]", "", name).strip(), version.strip()


def commit():
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


bom = Bom()
head = commit()
bom.metadata.component = pedigree = Component(
    name="pedigree", version=head, type=ComponentType.APPLICATION, bom_ref="pedigree",
    description="Reproducible model-serving gateway (Swift)")
for name, url, version in swift_packages():
    host_path = url.removeprefix("https://").removesuffix(".git")
    namespace, _, package = host_path.rpartition("/")
    component = Component(
        name=name, version=version, type=ComponentType.LIBRARY, bom_ref=f"swift:{name}",
        purl=PackageURL(type="swift", namespace=namespace, name=package, version=version),
        external_references=[ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(url))])
    bom.components.add(component)
    bom.register_dependency(pedigree, [component])
llama_version, llama_sha256 = llama_pin()
llama = Component(
    name="llama.cpp", version=f"llama-cpp-python-{llama_version}", type=ComponentType.LIBRARY, bom_ref="llama.cpp",
    description=f"vendor/llama.cpp of the llama-cpp-python {llama_version} sdist, built by script/build-llama",
    purl=PackageURL(type="pypi", name="llama-cpp-python", version=llama_version),
    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=llama_sha256)])
bom.components.add(llama)
libgit2 = Component(name="libgit2", type=ComponentType.LIBRARY, bom_ref="libgit2", description="from Debian's libgit2-dev",
                    purl=PackageURL(type="deb", namespace="debian", name="libgit2-dev"))
bom.components.add(libgit2)
bom.register_dependency(pedigree, [llama, libgit2])
for name, version in python_pins():
    bom.components.add(Component(
        name=name, version=version, type=ComponentType.LIBRARY, bom_ref=f"pypi:{name}", scope=ComponentScope.EXCLUDED,
        purl=PackageURL(type="pypi", name=name.lower(), version=version)))
print(JsonV1Dot6(bom).output_as_string(indent=2))
