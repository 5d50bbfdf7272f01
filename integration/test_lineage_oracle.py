"""Lineage of every revision of every demo model equals what git, dvc and gto say."""
import json

import dvc.api
import networkx as nx
import pytest
import yaml
from dvc.repo import Repo

from support.tools import run

LINEAGE = """
query($name: String!) { model(name: $name) { name path versions stages
  revisions { id createdAt author message
    commit { sha author email date message }
    artifact { path md5 size nfiles }
    stage { name }
    pipeline { name cmd deps { path md5 } outs { path md5 } parameters { key value } }
    datasets { path md5 size nfiles commit { sha } source { url path rev } }
    parameters { file key value }
    code { path md5 } } } }
"""
MODELS = ["smollm2-135m", "tiny-llama"]


def git(repo, *args):
    return run("git", "-C", str(repo), *args)


def show_yaml(repo, rev, path):
    return yaml.safe_load(git(repo, "show", f"{rev}:{path}"))


def artifact_md5(repo, rev, path):
    lock = show_yaml(repo, rev, "dvc.lock")
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out["md5"], out["size"]
    return None, None


def flatten(prefix, value, into):
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else key, inner, into)
    else:
        into[prefix] = value
    return into


@pytest.mark.parametrize("name", MODELS)
def test_lineage_of_every_revision_matches_the_tools(server, demo, name, monkeypatch):
    monkeypatch.chdir(demo)  # params_show resolves stage names against the working directory
    model = server.data(LINEAGE, {"name": name})["model"]
    path = model["path"]

    # Revisions: first-parent commits of main where the md5 dvc wrote into dvc.lock changed.
    history = git(demo, "rev-list", "--first-parent", "main").split()
    expected, previous = [], None
    for commit in history:
        md5, _ = artifact_md5(demo, commit, path)
        if previous and previous[1] != md5:
            expected.append(previous[0])
        previous = (commit, md5)
    if previous and previous[1]:
        expected.append(previous[0])
    assert [r["id"] for r in model["revisions"]] == [f"{name}@{sha}" for sha in expected]
    assert len(expected) >= 2

    # Versions and stages: gto show.
    gto = json.loads(run("gto", "show", "--json", "--repo", str(demo)))[name]
    assert set(model["stages"]) == {stage for stage, version in gto["stage"].items() if version}
    versions = json.loads(run("gto", "show", name, "--json", "--repo", str(demo)))
    assert sorted(model["versions"]) == sorted(v["version"] for v in versions if str(v["version"]).startswith("v"))
    assert model["versions"][0] == gto["version"]

    for revision in model["revisions"]:
        sha = revision["id"].split("@", 1)[1]
        # Commit metadata: git log.
        fields = git(demo, "log", "-1", "--format=%H%x00%an%x00%ae%x00%aI%x00%B", sha).split("\x00")
        commit = revision["commit"]
        assert [commit["sha"], commit["author"], commit["email"], commit["date"]] == fields[:4]
        assert commit["message"] == fields[4].rstrip("\n")
        assert revision["author"] == fields[1] and revision["createdAt"] == fields[3]

        # Artifact: dvc.lock as dvc wrote it at that commit.
        md5, size = artifact_md5(demo, sha, path)
        assert (revision["artifact"]["md5"], revision["artifact"]["size"]) == (md5, size)

        # Pipeline and datasets: dvc's own stage graph, upstream of the producing stage.
        with Repo.open(str(demo), rev=sha) as repo:
            graph = repo.index.graph
            producer = next(s for s in graph.nodes if any(str(o.def_path) == path for o in s.outs))
            upstream = nx.descendants(graph, producer) | {producer}
            stage_names = {s.name for s in upstream if getattr(s, "cmd", None)}
            dataset_paths = {str(o.def_path) if not s.wdir else str(o.fs_path) for s in upstream if not getattr(s, "cmd", None) for o in s.outs}
        assert revision["stage"]["name"] == producer.name
        assert [s["name"] for s in revision["pipeline"]][-1] == producer.name
        assert {s["name"] for s in revision["pipeline"]} == stage_names
        assert len(dataset_paths) == len(revision["datasets"])
        # Sources first: every stage comes after the stages it depends on.
        order = [s["name"] for s in revision["pipeline"]]
        for stage in upstream:
            for dep in nx.descendants(graph, stage):
                if getattr(dep, "cmd", None) and getattr(stage, "cmd", None):
                    assert order.index(dep.name) < order.index(stage.name)

        for dataset in revision["datasets"]:
            dvcfile = show_yaml(demo, sha, dataset["path"] + ".dvc")
            out = dvcfile["outs"][0]
            assert (dataset["md5"], dataset["size"], dataset["nfiles"]) == (out["md5"], out["size"], out.get("nfiles"))
            last = git(demo, "log", "-1", "--format=%H", sha, "--", dataset["path"] + ".dvc").strip()
            assert dataset["commit"]["sha"] == last
            if "deps" in dvcfile:
                repo_info = dvcfile["deps"][0]["repo"]
                assert dataset["source"] == {"url": repo_info["url"], "path": dvcfile["deps"][0]["path"], "rev": repo_info["rev_lock"]}
            else:
                assert dataset["source"] is None
        assert {d["path"] for d in revision["datasets"]} >= {p for p in dataset_paths if not p.startswith("/")}

        # Parameters: dvc.api.params_show for the pipeline's stages.
        shown = dvc.api.params_show(repo=str(demo), rev=sha, stages=sorted(stage_names))
        ours = {}
        for p in revision["parameters"]:
            flatten(p["key"], yaml.safe_load(p["value"]), ours)
        assert ours == flatten("", shown, {})

        # Code: the Git-tracked deps, with the md5 dvc locked.
        lock = show_yaml(demo, sha, "dvc.lock")
        locked = {d["path"]: d["md5"] for name in stage_names for d in lock["stages"][name]["deps"]}
        tracked = set(git(demo, "ls-tree", "-r", "--name-only", sha).split())
        assert {(c["path"], c["md5"]) for c in revision["code"]} == {(p, m) for p, m in locked.items() if p in tracked}


def test_demo_has_a_multi_stage_model_and_an_imported_dataset(server):
    revision = server.data('{ modelRevision(id: "tiny-llama") { pipeline { name } datasets { source { url } } } }')["modelRevision"]
    assert len(revision["pipeline"]) >= 2
    assert any(d["source"] for d in revision["datasets"])


def test_toml_and_json_params_read_from_the_files_match_params_show(tmp_path, make_server, monkeypatch):
    """Parameters that dvc.lock does not hold are read from the params files themselves (our own
    TOML reader, YAML/JSON through Yams): they must equal what dvc.api.params_show reads."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run("git", "init", "-q", "-b", "main", cwd=repo)
    run("git", "config", "user.email", "t@example.com", cwd=repo)
    run("git", "config", "user.name", "T", cwd=repo)
    run("dvc", "init", "-q", cwd=repo)
    (repo / "params.toml").write_text(
        '# training\ntitle = "run \\"7\\""\n[train]\nlr = 0.001\nepochs = 1_000\nlayers = [\n  64,  # first\n  32,\n]\nwarm = true\n'
        "ratio = -2.5\n[train.opt]\nname = 'adam'\nbetas = [0.9, 0.999]\n'quoted key' = \"x\"\n[data]\nsplit = { train = 0.8, test = 0.2 }\n")
    (repo / "params.json").write_text('{"eval": {"batch": 16, "metric": "f1", "thresholds": [0.25, 0.5]}}')
    (repo / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python -c \"open('models/m/model.gguf','wb').write(b'GGUF')\"\n"
        "    params:\n      - params.toml:\n          - title\n          - train\n          - data.split\n"
        "      - params.json:\n          - eval\n    outs:\n      - models/m/model.gguf\n")
    (repo / "models" / "m").mkdir(parents=True)
    run("dvc", "repro", "-q", cwd=repo)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    del lock["stages"]["train"]["params"]  # so Pedigree reads the values from the files
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", "params from files", cwd=repo)

    monkeypatch.chdir(repo)
    shown = dvc.api.params_show(repo=str(repo), stages=["train"])
    server = make_server(repo)
    parameters = server.data('{ modelRevision(id: "m") { parameters { file key value } } }')["modelRevision"]["parameters"]
    ours = {}
    for p in parameters:
        flatten(p["key"], yaml.safe_load(p["value"]), ours)
    assert ours == flatten("", shown, {}), (ours, shown)
