"""The CLI as people read it: `pedigree models`, `pedigree lineage` (text and --json) against the
server's answers for the same repository, and `pedigree pull` on a real terminal (tmux) showing a
progress bar that advances and ends with the cached path."""
import json
import re
import shutil
import subprocess
import time

import pytest

from support.tools import BIN, clone_with_remote, md5_file, pedigree

LINEAGE = """query($id: ID!) { modelRevision(id: $id) { id commit { sha message author } artifact { path md5 size }
  pipeline { name cmd } datasets { path md5 size commit { sha } } parameters { file key value } code { path md5 } } }"""


def test_models_lists_every_model_with_versions_and_stages(server, demo, tmp_path):
    out = pedigree("models", "--repo", str(demo), "--cache", str(tmp_path)).stdout
    lines = [line.split("\t") for line in out.strip().splitlines()]
    truth = server.data("{ models { name path versions stages } }")["models"]
    assert [line[0] for line in lines] == [m["name"] for m in truth]
    for line, model in zip(lines, truth):
        assert line[1] == model["path"]
        assert line[2] == "versions: " + ",".join(model["versions"])
        assert line[3] == "stages: " + ",".join(model["stages"])


@pytest.mark.parametrize("spec", ["tiny-llama", "smollm2-135m#prod", "smollm2-135m@v1.0.0"])
def test_lineage_text_and_json_match_the_server(server, demo, tmp_path, spec):
    truth = server.data(LINEAGE, {"id": spec})["modelRevision"]
    text = pedigree("lineage", spec, "--repo", str(demo), "--cache", str(tmp_path)).stdout.splitlines()
    assert text[0] == truth["id"]
    assert text[1].split()[:2] == ["commit", truth["commit"]["sha"]] and truth["commit"]["author"] in text[1]
    assert f"md5 {truth['artifact']['md5']}" in text[3] and f"{truth['artifact']['size']} bytes" in text[3]
    assert [l.split(None, 1)[1] for l in text if l.startswith("stage ")] == [f"{s['name']}: {s['cmd']}" for s in truth["pipeline"]]
    datasets = [re.match(r"dataset\s+(\S+)\s+md5 (\w+)\s+(\d+) bytes", l).groups() for l in text if l.startswith("dataset ")]
    assert datasets == [(d["path"], d["md5"], str(d["size"])) for d in truth["datasets"]]
    assert [l.split(None, 1)[1] for l in text if l.startswith("param ")] == [f"{p['file']}:{p['key']} = {p['value']}" for p in truth["parameters"]]
    assert [l.split()[1] for l in text if l.startswith("code ")] == [c["path"] for c in truth["code"]]

    data = json.loads(pedigree("lineage", spec, "--repo", str(demo), "--cache", str(tmp_path), "--json").stdout)
    assert data["id"] == truth["id"] and data["commit"]["sha"] == truth["commit"]["sha"]
    assert data["artifact"]["md5"] == truth["artifact"]["md5"] and data["artifact"]["size"] == truth["artifact"]["size"]
    assert [s["name"] for s in data["pipeline"]] == [s["name"] for s in truth["pipeline"]]
    assert [(d["path"], d["md5"], d["size"]) for d in data["datasets"]] == [(d["path"], d["md5"], d["size"]) for d in truth["datasets"]]
    assert [(p["file"], p["key"], p["value"]) for p in data["parameters"]] == [(p["file"], p["key"], p["value"]) for p in truth["parameters"]]


def test_pull_on_a_terminal_shows_a_progress_bar_that_advances(demo, object_server, tmp_path):
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed")
    remote = object_server(str(demo) + ".remote")
    remote.rate = 24 << 20  # bytes per second: the 98 MB weights take about four seconds
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    cache = tmp_path / "cache"
    session = f"pull-{time.time_ns()}"
    command = f"{BIN} pull smollm2-135m --repo {clone} --cache {cache}; echo EXIT=$?; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "30", command], check=True)
    try:
        fills, screen = [], ""
        deadline = time.time() + 120
        while time.time() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            bars = re.findall(r"\[(#*)\.*\] ", screen)
            if bars:
                fills.append(len(bars[-1]))
            if "EXIT=" in screen:
                break
            time.sleep(0.2)
        assert "EXIT=0" in screen, screen
        # The bar was seen partly filled and growing.
        assert any(0 < f < 30 for f in fills) and fills == sorted(fills) and len(set(fills)) >= 3, fills
        lines = [l for l in screen.splitlines() if l.strip()]
        path = lines[lines.index(next(l for l in lines if l.startswith("EXIT="))) - 1].strip()
        assert path.startswith(str(cache)) and md5_file(path) == json.loads(
            pedigree("lineage", "smollm2-135m", "--repo", str(clone), "--cache", str(tmp_path / "c2"), "--json").stdout)["artifact"]["md5"]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
