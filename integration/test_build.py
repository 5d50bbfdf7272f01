"""The build is pinned and the docs are the front door: every Swift dependency at an exact
version, the resolved graph equal to the committed list, and a README that fits on a few screens
and links every page of docs/."""
import json
import re

from support.tools import ROOT


def test_every_swift_dependency_is_pinned_exactly():
    manifest = (ROOT / "Package.swift").read_text()
    declared = re.findall(r"\.package\(([^)]*)\)", manifest)
    assert len(declared) >= 19
    for declaration in declared:
        assert re.search(r'exact: "\d+\.\d+\.\d+"', declaration), declaration
        assert not re.search(r"\bfrom:|\.\.\.|\.\.<|branch:|revision:|upToNextM", declaration), declaration


def test_the_resolved_packages_are_the_committed_list():
    """`swift build` wrote Package.resolved (ignored: it records the commit ids of this machine's
    package copies); its versions must be exactly Package.pins, transitive packages included."""
    resolved = json.loads((ROOT / "Package.resolved").read_text())
    got = sorted(f'{pin["identity"]} {pin["state"]["version"]}' for pin in resolved["pins"])
    pinned = sorted(line for line in (ROOT / "Package.pins").read_text().splitlines() if line and not line.startswith("#"))
    assert got == pinned


def test_the_readme_is_a_front_door_that_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"{page.name} is not linked from the README"
    assert "CONTRIBUTING.md" in readme and (ROOT / "CONTRIBUTING.md").is_file()
    for page in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        assert not re.search(r"\bnot yet\b", text, re.I), f"{page.name} says 'not yet'"
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", text):
            assert (page.parent / target).is_file(), f"{page.name} links to a missing {target}"


def test_the_edges_read_services_only_and_name_statuses():
    """`Sources/API` reaches into no service's store, reader or ledger, and writes no HTTP status
    as a number (statuses are `HTTPResponse.Status` values, errors `EdgeError`s)."""
    statuses = r"\b(1\d\d|2\d\d|3\d\d|4\d\d|5\d\d)\b"
    for path in sorted((ROOT / "Sources/API").rglob("*.swift")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//")[0]
            where = f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            assert not re.search(r"\.(store|reader|ledger)\.", code), where
            if re.search(r"status|Status|HTTPResponse", code):
                assert not re.search(statuses, code), where
