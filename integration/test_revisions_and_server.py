"""Revision specs, malformed metadata, concurrency, refresh and the HTTP surface."""
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.processes import Server
from support.tools import ENV, error_codes, run

REV = 'query($id: ID!) { modelRevision(id: $id) { id commit { sha } artifact { md5 } } }'


def git(repo, *args):
    return run("git", "-C", str(repo), *args).strip()


def canonical(demo, model, rev):
    """The oracle for canonical ids: walk first parents while dvc.lock's md5 for the model is unchanged."""
    import yaml
    path = f"models/{model}/model.gguf"

    def md5(commit):
        lock = yaml.safe_load(git(demo, "show", f"{commit}:dvc.lock"))
        return next(o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == path)
    commit = git(demo, "rev-parse", f"{rev}^{{commit}}")
    while True:
        parents = git(demo, "rev-list", "--parents", "-n1", commit).split()[1:]
        if not parents or md5(parents[0]) != md5(commit):
            return commit
        commit = parents[0]


def test_every_revision_spec_form_resolves_to_the_right_commit(server, demo):
    head = git(demo, "rev-parse", "main")
    cases = {
        "smollm2-135m": "main",
        "smollm2-135m@main": "main",
        "smollm2-135m@experiment": "experiment",
        f"smollm2-135m@{head}": "main",
        f"smollm2-135m@{head[:8]}": "main",
        "smollm2-135m@v1.0.0": "smollm2-135m@v1.0.0",
        "smollm2-135m@v1.1.0": "smollm2-135m@v1.1.0",
        "smollm2-135m@smollm2-135m@v1.0.0": "smollm2-135m@v1.0.0",  # a tag name as rev
        "smollm2-135m#prod": "smollm2-135m#prod#1",
        "smollm2-135m#staging": "smollm2-135m#staging#2",
        "tiny-llama#prod": "tiny-llama#prod#1",
        "tiny-llama@v1.0.0": "tiny-llama@v1.0.0",
        "tiny-llama@main": "main",
    }
    for spec, rev in cases.items():
        model = spec.split("@")[0].split("#")[0]
        got = server.data(REV, {"id": spec})["modelRevision"]
        assert got["id"] == f"{model}@{canonical(demo, model, rev)}", spec
    # prod and the latest version differ: the stage really selects.
    prod = server.data(REV, {"id": "smollm2-135m#prod"})["modelRevision"]["id"]
    latest = server.data(REV, {"id": "smollm2-135m"})["modelRevision"]["id"]
    assert prod != latest


@pytest.mark.parametrize("spec,code", [
    ("no-such-model", "NOT_FOUND"),
    ("smollm2-135m@no-such-branch", "NOT_FOUND"),
    ("smollm2-135m@v9.9.9", "NOT_FOUND"),
    ("smollm2-135m#nostage", "NOT_FOUND"),
    ("smollm2-135m@" + "0" * 40, "NOT_FOUND"),
    ("; rm -rf /", "INVALID_REVISION"),
    ("../..", "INVALID_REVISION"),
    ("smollm2-135m@../../etc", "INVALID_REVISION"),
    ("smollm2-135m@" + "a" * 10_000, "INVALID_REVISION"),
    ("smollm2-135m@main\u0000", "INVALID_REVISION"),
    ("smollm2-135m@$(touch /tmp/pwned)", "INVALID_REVISION"),
])
def test_bad_specs_give_their_codes(server, spec, code):
    body = server.gql(REV, {"id": spec})
    assert error_codes(body) == [code], body
    assert body["data"] == {"modelRevision": None}


def test_bare_sha_with_two_models_is_ambiguous(server, demo):
    head = git(demo, "rev-parse", "main")
    body = server.gql(REV, {"id": head})
    assert error_codes(body) == ["AMBIGUOUS_REVISION"]
    assert "smollm2-135m@" in body["errors"][0]["message"] and "tiny-llama@" in body["errors"][0]["message"]


@pytest.fixture(scope="module")
def broken_repo(tmp_path_factory):
    """A real git+dvc repository with one good model and several broken ones."""
    repo = tmp_path_factory.mktemp("broken") / "repo"
    run("git", "init", "-q", "-b", "main", str(repo))
    for key, value in (("user.name", "T"), ("user.email", "t@example.com")):
        run("git", "-C", str(repo), "config", key, value)
    run("dvc", "init", "-q", cwd=repo)
    (repo / "models/good").mkdir(parents=True)
    (repo / "models/good/model.gguf").write_bytes(b"GGUF good weights")
    run("dvc", "add", "-q", "models/good/model.gguf", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "good model", cwd=repo)
    single = git(repo, "rev-parse", "HEAD")
    for name, text in {
        "bad-yaml": "outs: [unclosed\n",
        "escape": "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  path: ../../../etc/passwd\n",
        "absolute": "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  path: /etc/passwd\n",
        "bomb": "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"l{i}: &l{i} [{', '.join([('*a' if i == 1 else f'*l{i-1}')] * 10)}]\n" for i in range(1, 9)) + "outs: *l8\n",
    }.items():
        (repo / f"models/{name}").mkdir()
        (repo / f"models/{name}/model.gguf.dvc").write_text(text)
    (repo / "pipelines/nolock").mkdir(parents=True)
    (repo / "pipelines/nolock/dvc.yaml").write_text(
        "stages:\n  build:\n    cmd: make\n    outs:\n      - ../../models/nolock/model.gguf\n")
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "broken models", cwd=repo)
    return repo, single


def test_malformed_metadata_breaks_only_its_model(make_server, broken_repo):
    repo, single = broken_repo
    s = make_server(repo)
    names = [m["name"] for m in s.data("{ models { name } }")["models"]]
    assert "good" in names
    for name in ["bad-yaml", "escape", "absolute", "bomb", "nolock"]:
        body = s.gql(REV, {"id": name})
        assert error_codes(body) == ["METADATA_ERROR"], (name, body)
        assert "/root" not in json.dumps(body)  # no internal paths
    good = s.data(REV, {"id": "good"})["modelRevision"]
    assert good["artifact"]["md5"] == __import__("hashlib").md5(b"GGUF good weights").hexdigest()
    # A bare SHA naming a commit with exactly one model is accepted.
    assert s.data(REV, {"id": single})["modelRevision"]["id"] == f"good@{single}"
    assert requests.get(s.url + "/healthz").status_code == 200


def test_32_concurrent_lineage_queries(server, demo):
    specs = ["smollm2-135m@v1.0.0", "smollm2-135m@v1.1.0", "smollm2-135m#prod", "smollm2-135m@experiment",
             "tiny-llama@v1.0.0", "tiny-llama@v1.1.0", "tiny-llama#prod", "tiny-llama@main"] * 4
    query = 'query($id: ID!) { modelRevision(id: $id) { id artifact { md5 } parameters { key value } datasets { md5 } } }'
    expected = {spec: server.data(query, {"id": spec}) for spec in set(specs)}
    fresh = Server(demo)  # cold caches, so the concurrent requests really compute
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda spec: (spec, fresh.data(query, {"id": spec})), specs))
    finally:
        fresh.stop()
    assert len(answers) == 32
    for spec, answer in answers:
        assert answer == expected[spec], spec


def test_new_commit_appears_after_refresh(make_server, demo, tmp_path):
    source = tmp_path / "source.git"
    run("git", "clone", "-q", "--bare", str(demo), str(source))
    s = make_server(source)
    assert error_codes(s.gql(REV, {"id": "fresh-model"})) == ["NOT_FOUND"]
    work = tmp_path / "work"
    run("git", "clone", "-q", str(source), str(work))
    for key, value in (("user.name", "T"), ("user.email", "t@example.com")):
        run("git", "-C", str(work), "config", key, value)
    (work / "models/fresh-model").mkdir(parents=True)
    (work / "models/fresh-model/model.gguf").write_bytes(b"fresh")
    run("dvc", "add", "-q", "models/fresh-model/model.gguf", cwd=work)
    run("git", "add", "models/fresh-model", cwd=work)
    run("git", "commit", "-qm", "Add fresh-model", cwd=work)
    run("git", "push", "-q", "origin", "main", cwd=work)
    new_head = git(work, "rev-parse", "HEAD")
    status = s.data("mutation { refresh { head models } }")["refresh"]
    assert status["head"] == new_head and status["models"] == 3
    assert s.data(REV, {"id": "fresh-model"})["modelRevision"]["id"] == f"fresh-model@{new_head}"


def test_http_surface(server):
    assert requests.get(server.url + "/healthz").text == "ok\n"
    assert requests.get(server.url + "/readyz").status_code == 200
    page = requests.get(server.url + "/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    get = requests.get(server.url + "/graphql", params={"query": "{ models { name } }"})
    assert get.status_code == 200 and len(get.json()["data"]["models"]) == 2
    assert requests.get(server.url + "/graphql", params={"query": "mutation { refresh { head } }"}).status_code == 405
    bad = requests.post(server.url + "/graphql", json={"query": "{ nope }"})
    assert bad.status_code == 400 and error_codes(bad.json()) == ["BAD_USER_INPUT"]
    assert requests.post(server.url + "/graphql", data="not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert requests.post(server.url + "/graphql", data="not json").status_code == 415  # not a JSON content type
    metrics = requests.get(server.url + "/metrics").text
    assert "pedigree_http_requests_total" in metrics and "pedigree_git_blob_reads_total" in metrics


def test_listing_every_revision_reads_each_blob_once(make_server, demo):
    s = make_server(demo)
    query = "{ models { revisions { id pipeline { name } datasets { md5 commit { sha } } parameters { value } code { md5 } } latest { id } } }"
    s.data(query)
    reads = lambda: int(next(l.split()[1] for l in requests.get(s.url + "/metrics").text.splitlines() if l.startswith("pedigree_git_blob_reads_total")))
    first = reads()
    # Oracle: the distinct metadata blobs over the whole first-parent history.
    blobs = set()
    for commit in git(demo, "rev-list", "main").split():
        for line in git(demo, "ls-tree", "-r", commit).splitlines():
            meta, path = line.split("\t")
            if path.endswith((".dvc", "dvc.yaml", "dvc.lock", "params.yaml")):
                blobs.add(meta.split()[2])
    assert 0 < first <= len(blobs)
    s.data(query)
    assert reads() == first  # a second request reads nothing new
