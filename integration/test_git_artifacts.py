"""Artifacts committed to Git itself, as GTO users keep them (built like the public GTO example:
`models/*.pkl` committed, `artifacts:` in dvc.yaml, tags by the real `gto register`/`gto assign`):
versions, stages and revisions equal `gto show` and `git`; each revision's artifact is the blob
`git` holds (md5 and SHA-256 of its bytes); a pickle has its lineage and pulls but answers
NOT_SERVABLE; a GGUF in Git serves, replays, and shares one cache entry with the same bytes kept
by DVC; an out DVC leaves to Git (`cache: false`) keeps its stage's lineage."""
import hashlib
import json
import pickle
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from support.processes import Server
from support.tools import ENV, error_codes, pedigree, run

MODEL = """query($name: String!) { model(name: $name) { name path versions stages
  revisions { id commit { sha } artifact { path origin md5 sha256 blob size cached }
    stage { name } pipeline { name } datasets { path } code { path md5 } changedFiles } } }"""
INFER = """mutation($input: InferenceInput!) { infer(input: $input) { id result modelRevision { id artifact { md5 origin } } } }"""
REPLAY = "mutation($id: ID!) { replay(id: $id) { identical replay { result } } }"
AUTHOR = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada Lovelace",
          "GIT_COMMITTER_EMAIL": "ada@example.com"}


def tool(repo, *args):
    return subprocess.run(args, cwd=repo, env={**ENV, **AUTHOR}, check=True, capture_output=True, text=True).stdout


def demo_weights(demo, tag):
    """The bytes of the demo's tiny-llama at a GTO tag, from the demo's DVC remote."""
    lock = yaml.safe_load(run("git", "-C", str(demo), "show", f"{tag}:dvc.lock"))
    md5 = next(out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
               if out["path"] == "models/tiny-llama/model.gguf")
    return (Path(str(demo) + ".remote") / "files/md5" / md5[:2] / md5[2:]).read_bytes()


ARTIFACTS = """artifacts:
  churn:
    type: model
    path: models/churn.pkl
    desc: churn classifier (a pickle)
  assistant:
    type: model
    path: models/assistant.gguf
    desc: a GGUF committed to Git
"""
PACKAGE = """  packaged:
    type: model
    path: models/packaged.gguf
    desc: packaged by a stage that leaves its output to Git
stages:
  package:
    cmd: cp weights/base.gguf models/packaged.gguf
    deps:
    - weights/base.gguf
    outs:
    - models/packaged.gguf:
        cache: false
"""


@pytest.fixture(scope="module")
def gto_repo(demo, tmp_path_factory):
    """Three commits: a pickle and a GGUF committed (and the GGUF's bytes also tracked by DVC as
    models/twin), the pickle retrained, the GGUF replaced plus a stage packaging a committed GGUF
    with `cache: false`; versions and stages written by gto."""
    root = tmp_path_factory.mktemp("gto")
    repo, remote = root / "repo", root / "remote"
    first, second = demo_weights(demo, "tiny-llama@v1.0.0"), demo_weights(demo, "tiny-llama@v1.1.0")
    assert first != second
    repo.mkdir()
    tool(repo, "git", "init", "-q", "-b", "main")
    tool(repo, "dvc", "init", "-q")
    tool(repo, "dvc", "remote", "add", "-d", "storage", str(remote))
    (repo / "models/twin").mkdir(parents=True)
    (repo / "models/churn.pkl").write_bytes(pickle.dumps({"coef": [0.25, -1.5, 3.0], "trained": 1}))
    (repo / "models/assistant.gguf").write_bytes(first)
    (repo / "models/twin/model.gguf").write_bytes(first)
    (repo / "dvc.yaml").write_text(ARTIFACTS)
    tool(repo, "dvc", "add", "-q", "models/twin/model.gguf")
    tool(repo, "dvc", "push", "-q")
    tool(repo, "git", "add", "-A")
    tool(repo, "git", "commit", "-q", "-m", "Train the churn model; add the assistant")
    tool(repo, "gto", "register", "churn", "--version", "v0.0.1")
    tool(repo, "gto", "register", "assistant", "--version", "v1.0.0")

    (repo / "models/churn.pkl").write_bytes(pickle.dumps({"coef": [0.5, -1.0, 2.5], "trained": 2}))
    tool(repo, "git", "commit", "-q", "-am", "Retrain the churn model")
    tool(repo, "gto", "register", "churn", "--version", "v0.0.2")
    tool(repo, "gto", "assign", "churn", "--version", "v0.0.1", "--stage", "prod")

    (repo / "models/assistant.gguf").write_bytes(second)
    (repo / "weights").mkdir()
    (repo / "weights/base.gguf").write_bytes(first)
    (repo / "dvc.yaml").write_text(ARTIFACTS + PACKAGE)
    tool(repo, "dvc", "repro", "-q")
    tool(repo, "git", "add", "-A")
    tool(repo, "git", "commit", "-q", "-m", "Fine-tune the assistant; package the base weights")
    tool(repo, "gto", "register", "assistant", "--version", "v1.1.0")
    tool(repo, "gto", "assign", "assistant", "--version", "v1.0.0", "--stage", "prod")
    return repo


@pytest.fixture(scope="module")
def git_server(gto_repo):
    server = Server(gto_repo)
    yield server
    server.stop()


def blob_facts(repo, sha, path):
    data = subprocess.run(["git", "-C", str(repo), "show", f"{sha}:{path}"], check=True, capture_output=True).stdout
    blob = run("git", "-C", str(repo), "rev-parse", f"{sha}:{path}").strip()
    return {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest(), "blob": blob, "size": len(data)}


@pytest.mark.parametrize("name", ["churn", "assistant", "packaged"])
def test_versions_stages_and_revisions_equal_gto_and_git(git_server, gto_repo, name):
    model = git_server.data(MODEL, {"name": name})["model"]
    path = model["path"]
    # Versions and stages: gto show.
    shown = json.loads(run("gto", "show", "--json", "--repo", str(gto_repo)))
    if name in shown:
        assert set(model["stages"]) == {stage for stage, version in shown[name]["stage"].items() if version}
        versions = json.loads(run("gto", "show", name, "--json", "--repo", str(gto_repo)))
        assert sorted(model["versions"]) == sorted(v["version"] for v in versions)
        assert model["versions"][0] == shown[name]["version"]
    else:
        assert model["versions"] == [] and model["stages"] == []
    # Revisions: the first-parent commits that changed the file, as git lists them.
    changed = run("git", "-C", str(gto_repo), "rev-list", "--first-parent", "main", "--", path).split()
    assert [r["id"] for r in model["revisions"]] == [f"{name}@{sha}" for sha in changed]
    for revision in model["revisions"]:
        sha = revision["commit"]["sha"]
        artifact = revision["artifact"]
        assert artifact["origin"] == "git" and artifact["path"] == path
        assert {key: artifact[key] for key in ("md5", "sha256", "blob", "size")} == blob_facts(gto_repo, sha, path)
        assert revision["datasets"] == []
        # The files changed with it, as git lists them.
        listed = run("git", "-C", str(gto_repo), "diff-tree", "--root", "--no-commit-id", "-r", "--name-only", sha).split()
        assert sorted(revision["changedFiles"]) == sorted(listed) and path in listed
        if name == "packaged":
            # The stage that leaves its output to Git keeps the lineage a DVC pipeline gives.
            lock = yaml.safe_load(run("git", "-C", str(gto_repo), "show", f"{sha}:dvc.lock"))["stages"]["package"]
            assert revision["stage"] == {"name": "package"} and [s["name"] for s in revision["pipeline"]] == ["package"]
            assert revision["code"] == [{"path": "weights/base.gguf", "md5": lock["deps"][0]["md5"]}]
            assert lock["outs"][0]["md5"] == artifact["md5"]
        else:
            # No pipeline: no invented stage.
            assert revision["stage"] is None and revision["pipeline"] == [] and revision["code"] == []
    assert len(model["revisions"]) == (2 if name != "packaged" else 1)
    # The CLI and the web view say where the bytes are.
    newest = model["revisions"][0]
    printed = pedigree("lineage", newest["id"], "--repo", str(gto_repo)).stdout
    assert f"committed to Git (blob {newest['artifact']['blob'][:12]})" in printed
    page = requests.get(git_server.url + f"/ui/revisions/{newest['id']}").text
    assert f'<code id="artifact-blob">{newest["artifact"]["blob"]}</code>' in page


def test_a_pickle_has_lineage_and_pulls_but_is_not_servable(git_server, gto_repo, tmp_path):
    body = git_server.gql(INFER, {"input": {"modelRevisionID": "churn#prod", "prompt": "hello"}})
    assert error_codes(body) == ["NOT_SERVABLE"], body
    assert "not a GGUF file" in body["errors"][0]["message"] and "models/churn.pkl" in body["errors"][0]["message"]
    body = git_server.gql("mutation($id: ID!) { loadModel(id: $id) { md5 } }", {"id": "churn@v0.0.2"})
    assert error_codes(body) == ["NOT_SERVABLE"], body
    response = requests.post(git_server.url + "/v1/chat/completions", json={"model": "churn", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 422 and response.json()["error"]["code"] == "NOT_SERVABLE", response.text
    # Its bytes are still there to pull: exactly the blob gto's prod version names.
    prod = json.loads(run("gto", "show", "churn", "--json", "--repo", str(gto_repo)))
    commit = run("git", "-C", str(gto_repo), "rev-list", "-n1", "churn@v0.0.1").strip()
    pulled = pedigree("pull", "churn#prod", "--repo", str(gto_repo), "--cache", str(tmp_path / "cache")).stdout.strip()
    data = Path(pulled).read_bytes()
    assert hashlib.sha256(data).hexdigest() == blob_facts(gto_repo, commit, "models/churn.pkl")["sha256"]
    assert pickle.loads(data)["trained"] == 1 and any(v["version"] == "v0.0.1" for v in prod)


def test_a_gguf_in_git_serves_replays_and_is_one_cache_entry_with_its_dvc_twin(git_server, gto_repo):
    facts = {}
    for spec in ("assistant#prod", "assistant@v1.1.0"):
        answer = git_server.data(INFER, {"input": {"modelRevisionID": spec, "prompt": "Once upon a time", "sampling": {
            "temperature": 0, "maxTokens": 12}}})["infer"]
        assert answer["modelRevision"]["artifact"]["origin"] == "git"
        replay = git_server.data(REPLAY, {"id": answer["id"]})["replay"]
        assert replay["identical"] and replay["replay"]["result"] == answer["result"]
        facts[spec] = (answer["modelRevision"]["artifact"]["md5"], answer["result"])
    # Different weights, different answers.
    assert facts["assistant#prod"][0] != facts["assistant@v1.1.0"][0]
    assert facts["assistant#prod"][1] != facts["assistant@v1.1.0"][1]
    # models/twin holds the first GGUF's bytes through DVC: already cached, under the same md5,
    # one file in the cache (it was never downloaded from the DVC remote).
    twin = git_server.data(MODEL, {"name": "twin"})["model"]["revisions"][0]["artifact"]
    assert twin["origin"] == "dvc" and twin["md5"] == facts["assistant#prod"][0] and twin["cached"]
    objects = [p for p in (Path(git_server.cache) / "objects").rglob("*") if p.is_file()]
    assert sum(1 for p in objects if p.name == twin["md5"][2:]) == 1
    metrics = requests.get(git_server.url + "/metrics").text
    downloads = [line for line in metrics.splitlines() if line.startswith("pedigree_artifact_downloads_total")]
    answer = git_server.data(INFER, {"input": {"modelRevisionID": "twin", "prompt": "Once upon a time", "sampling": {
        "temperature": 0, "maxTokens": 12}}})["infer"]
    assert answer["result"] == facts["assistant#prod"][1]
    assert [line for line in requests.get(git_server.url + "/metrics").text.splitlines()
            if line.startswith("pedigree_artifact_downloads_total")] == downloads
