"""`compare` and `pedigree diff`: what changed between two revisions, checked against the oracle
the repository itself is — `git rev-list`, `git diff`, and `dvc.lock` (the locked params and deps
md5 of every stage upstream of the model) at each commit."""
import json
import subprocess

import pytest
import yaml

from support.processes import Server
from support.tools import ENV, pedigree, run

COMPARE = """query($a: ID!, $b: ID!) { compare(a: $a, b: $b) {
  a { id commit { sha } artifact { md5 size } } b { id commit { sha } artifact { md5 size } }
  commits { sha } related artifactChanged stagesAdded stagesRemoved
  datasets { path change before { md5 size commit { sha } } after { md5 size commit { sha } } }
  parameters { file key before after }
  code { path change before after } } }"""


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=ENV, check=True).stdout


def locked(repo, sha, stages):
    """From dvc.lock at `sha`: the params ((file, key) → YAML text) and deps (path → md5) of `stages`."""
    lock = yaml.safe_load(git(repo, "show", f"{sha}:dvc.lock"))["stages"]
    params, deps = {}, {}
    for name in stages:
        for file, values in lock[name].get("params", {}).items():
            for key, value in values.items():
                params[(file, key)] = value
        for dep in lock[name].get("deps", []):
            deps[dep["path"]] = dep["md5"]
    return params, deps


@pytest.fixture(scope="module")
def code_change(demo, tmp_path_factory):
    """A clone of the demo with one more commit that changes tiny-llama's training code, made the
    way a user would: edit, `dvc repro`, commit."""
    repo = tmp_path_factory.mktemp("diff") / "repo"
    run("git", "clone", "-q", str(demo), str(repo))
    run("dvc", "pull", "-q", cwd=repo)
    script = repo / "src" / "train_tiny.py"
    # A change to the code that changes the weights file (its description), so the model has a new revision.
    script.write_text(script.read_text().replace("tiny random llama, seed", "tiny random llama (documented), seed"))
    run("dvc", "repro", "-q", "train-tiny", cwd=repo)
    run("git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com", "commit", "-qam", "Document the training seed", cwd=repo)
    return repo


def compare(server, a, b):
    body = server.gql(COMPARE, {"a": a, "b": b})
    assert "errors" not in body, body
    return body["data"]["compare"]


def test_a_parameter_and_a_dataset_change_against_dvc_lock(server, demo):
    diff = compare(server, "tiny-llama@v1.0.0", "tiny-llama")
    a, b = diff["a"]["commit"]["sha"], diff["b"]["commit"]["sha"]
    assert [c["sha"] for c in diff["commits"]] == git(demo, "rev-list", "--first-parent", f"{a}..{b}").split() and diff["related"]
    stages = [s["name"] for s in server.data('{ modelRevision(id: "tiny-llama") { pipeline { name } } }')["modelRevision"]["pipeline"]]
    params_a, deps_a = locked(demo, a, stages)
    params_b, deps_b = locked(demo, b, stages)
    expected_params = {(f, k) for f, k in set(params_a) | set(params_b) if params_a.get((f, k)) != params_b.get((f, k))}
    assert {(p["file"], p["key"]) for p in diff["parameters"]} == expected_params and expected_params
    for change in diff["parameters"]:
        key = (change["file"], change["key"])
        # Both sides, as YAML text of the locked values.
        assert yaml.safe_load(change["before"]) == params_a[key] and yaml.safe_load(change["after"]) == params_b[key]
    datasets = {d["path"]: d for d in diff["datasets"]}
    produced = {o["path"] for s in yaml.safe_load(git(demo, "show", f"{b}:dvc.lock"))["stages"].values() for o in s.get("outs", [])}
    expected = {p for p in set(deps_a) | set(deps_b) if deps_a.get(p) != deps_b.get(p) and p not in produced and not p.startswith("src/")}
    assert set(datasets) == expected and expected
    for path, change in datasets.items():
        assert change["change"] == "changed"
        assert change["before"]["md5"] == deps_a[path] and change["after"]["md5"] == deps_b[path]
        # The commit that changed each side, as git says.
        assert change["after"]["commit"]["sha"] == git(demo, "log", "-1", "--format=%H", b, "--", path + ".dvc").strip()
    assert diff["code"] == [] and diff["stagesAdded"] == [] and diff["stagesRemoved"] == []
    assert diff["artifactChanged"] and diff["a"]["artifact"]["md5"] != diff["b"]["artifact"]["md5"]
    changed_files = set(git(demo, "diff", "--name-only", a, b).split())
    assert "params.yaml" in changed_files and "dvc.lock" in changed_files


def test_a_code_change_against_git_diff_and_dvc_lock(code_change, tmp_path):
    server = Server(code_change)
    try:
        before = git(code_change, "rev-parse", "HEAD~1").strip()
        diff = compare(server, f"tiny-llama@{before}", "tiny-llama@main")
        a, b = diff["a"]["commit"]["sha"], diff["b"]["commit"]["sha"]
        assert b == git(code_change, "rev-parse", "HEAD").strip() and diff["artifactChanged"]
        _, deps_a = locked(code_change, git(code_change, "rev-parse", "HEAD~1").strip(), ["prepare", "train-tiny"])
        _, deps_b = locked(code_change, git(code_change, "rev-parse", "HEAD").strip(), ["prepare", "train-tiny"])
        assert diff["code"] == [{"path": "src/train_tiny.py", "change": "changed", "before": deps_a["src/train_tiny.py"],
                                 "after": deps_b["src/train_tiny.py"]}]
        assert deps_a["src/train_tiny.py"] != deps_b["src/train_tiny.py"]
        assert "src/train_tiny.py" in git(code_change, "diff", "--name-only", "HEAD~1", "HEAD").split()
        assert diff["parameters"] == [] and diff["datasets"] == []
        # The CLI says the same.
        out = json.loads(pedigree("diff", f"tiny-llama@{before}", "tiny-llama@main", "--repo", str(code_change),
                                  "--cache", str(tmp_path / "cli"), "--json").stdout)
        assert out["code"] == diff["code"] and out["a"] == diff["a"]["id"] and out["b"] == diff["b"]["id"]
        text = pedigree("diff", f"tiny-llama@{before}", "tiny-llama@main", "--repo", str(code_change), "--cache", str(tmp_path / "cli")).stdout
        assert f"code      changed src/train_tiny.py  {deps_a['src/train_tiny.py']} → {deps_b['src/train_tiny.py']}" in text
    finally:
        server.stop()


def test_unrelated_and_mixed_revisions(server):
    same = compare(server, "smollm2-135m#prod", "smollm2-135m#prod")
    assert same["related"] and same["commits"] == [] and not same["artifactChanged"] and same["parameters"] == []
    backwards = compare(server, "tiny-llama", "tiny-llama@v1.0.0")
    assert not backwards["related"] and backwards["commits"] == []
    body = server.gql(COMPARE, {"a": "tiny-llama", "b": "smollm2-135m"})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_REVISION"


def oracle_uses(repo):
    """From dvc.yaml and dvc.lock at every first-parent commit of the default branch: for each
    model revision (the commit where its artifact's md5 changed), every (path, md5) a stage
    upstream of it read, with that stage. {(path, md5): {(revision id, stage)}}"""
    uses = {}
    current = {}
    for sha in reversed(git(repo, "rev-list", "--first-parent", "main").split()):
        try:
            spec = yaml.safe_load(git(repo, "show", f"{sha}:dvc.yaml"))
            lock = yaml.safe_load(git(repo, "show", f"{sha}:dvc.lock"))["stages"]
        except subprocess.CalledProcessError:
            continue
        producer = {out["path"]: name for name, stage in lock.items() for out in stage.get("outs", [])}
        for model, artifact in (spec.get("artifacts") or {}).items():
            stage = producer.get(artifact["path"])
            if stage is None:
                continue
            md5 = next(o["md5"] for o in lock[stage]["outs"] if o["path"] == artifact["path"])
            if current.get(model) == md5:
                continue
            current[model] = md5
            revision = f"{model}@{sha}"
            upstream, todo = set(), [stage]
            while todo:
                name = todo.pop()
                if name in upstream:
                    continue
                upstream.add(name)
                todo += [producer[d["path"]] for d in lock[name].get("deps", []) if d["path"] in producer]
            for name in upstream:
                for dep in lock[name].get("deps", []):
                    uses.setdefault((dep["path"], dep["md5"]), set()).add((revision, name))
    return uses


def test_reverse_lineage_against_every_commit(server, demo):
    expected = oracle_uses(demo)
    assert len(expected) >= 5
    query = "query($p: String!, $m: String) { dataset(path: $p, md5: $m) { modelRevision { id } stage md5 } }"
    for (path, md5), revisions in expected.items():
        got = server.data(query, {"p": path, "m": md5})["dataset"]
        assert {(u["modelRevision"]["id"], u["stage"]) for u in got} == revisions, (path, md5)
        assert all(u["md5"] == md5 for u in got)
    # By path alone: every md5 of it.
    paths = {path for path, _ in expected}
    for path in paths:
        got = server.data(query, {"p": path})["dataset"]
        assert {(u["modelRevision"]["id"], u["stage"]) for u in got} == set().union(*(r for (p, _), r in expected.items() if p == path))
    assert server.data(query, {"p": "data/raw/chat.jsonl", "m": "0" * 32})["dataset"] == []
    # From a dataset of a revision: the revisions trained on it.
    datasets = server.data('{ modelRevision(id: "tiny-llama") { datasets { path md5 usedBy { id } } } }')["modelRevision"]["datasets"]
    for dataset in datasets:
        assert {r["id"] for r in dataset["usedBy"]} == {rev for rev, _ in expected[(dataset["path"], dataset["md5"])]}
