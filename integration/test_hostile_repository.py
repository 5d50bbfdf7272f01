"""A hostile repository (issue 9): commits carry every bad file we know of — metadata over the
size limit, YAML nested thousands deep, a path leaving the repository, a matrix of 10^8 stages,
a directory manifest escaping the cache, a truncated GGUF, a GGUF with absurd counts, folders
nested past the listing limit, odd tag names — and the head commit holds all of them. The server
starts, the demo's models are served, and each bad model answers a clear code."""
import hashlib
import json
import shutil
import struct
import time
from pathlib import Path

import pytest
import requests

from support.processes import Server
from support.tools import error_codes, run

INFER = 'mutation($id: ID!) { infer(input: {modelRevisionID: $id, prompt: "Hi", sampling: {maxTokens: 2}}) { id result } }'
LINEAGE = "query($id: ID!) { modelRevision(id: $id) { id artifact { md5 } parameters { key value } } }"


def put_object(remote, data):
    """Stores `data` in a DVC remote folder as DVC 3 does; returns its md5."""
    md5 = hashlib.md5(data).hexdigest()
    path = Path(remote) / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5


def dvc_file(md5, size, path="model.gguf", extra=""):
    return f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {path}\n{extra}"


def absurd_gguf():
    """A GGUF header that declares 2^40 tensors and a key string of 2^60 bytes."""
    return b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1) + struct.pack("<Q", 1 << 60) + b"k" * 64


@pytest.fixture(scope="module")
def hostile(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    repo, remote = root / "repo", root / "remote"
    run("git", "clone", "-q", str(demo), str(repo))
    shutil.copytree(str(demo) + ".remote", remote, copy_function=lambda s, d: Path(d).hardlink_to(s))
    run("git", "config", "user.email", "mallory@example.com", cwd=repo)
    run("git", "config", "user.name", "Mallory", cwd=repo)
    (repo / ".dvc" / "config.local").write_text(f"[core]\n    remote = hostile\n['remote \"hostile\"']\n    url = {remote}\n")

    def commit(message, files):
        for path, content in files.items():
            target = repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        run("git", "add", "-A", cwd=repo)
        run("git", "commit", "-q", "-m", message, cwd=repo)

    tiny = (demo / "models/tiny-llama/model.gguf").read_bytes()
    half = tiny[: len(tiny) // 2]
    absurd = absurd_gguf()
    manifest = json.dumps([{"md5": hashlib.md5(b"x").hexdigest(), "relpath": "../../../escape"}]).encode()
    put_object(remote, b"x")
    manifest_md5 = put_object(remote, manifest)
    # DVC names a directory object <md5>.dir in the remote.
    (Path(remote) / "files/md5" / manifest_md5[:2] / (manifest_md5[2:] + ".dir")).write_bytes(manifest)
    axis = "[" + ", ".join(str(i) for i in range(100)) + "]"
    commit("a truncated GGUF", {"models/trunc/model.gguf.dvc": dvc_file(put_object(remote, half), len(half))})
    commit("a GGUF with absurd counts", {"models/absurd/model.gguf.dvc": dvc_file(put_object(remote, absurd), len(absurd))})
    commit("a directory whose manifest escapes", {"models/dirbomb/model.gguf.dvc": dvc_file(manifest_md5 + ".dir", 1, extra="  nfiles: 1\n")})
    commit("metadata over the size limit", {"models/huge/model.gguf.dvc": dvc_file("0" * 32, 1) + "#" + "x" * (9 << 20) + "\n"})
    commit("YAML nested 100,000 deep", {"models/deep/model.gguf.dvc": "outs: " + "[" * 100_000 + "]" * 100_000 + "\n"})
    commit("a path out of the repository", {"models/escape/model.gguf.dvc": dvc_file("1" * 32, 1, path="../../../../etc/passwd")})
    commit("a matrix of 10^8 stages", {"hostile/dvc.yaml": f"stages:\n  grid:\n    matrix:\n      a: {axis}\n      b: {axis}\n      c: {axis}\n"
                                       f"      d: {axis}\n    cmd: echo\nartifacts:\n  grid-model:\n    path: m.gguf\n    type: model\n"})
    commit("folders nested past the listing limit", {"/".join(["n"] * 100) + "/x.gguf.dvc": dvc_file("2" * 32, 1)})
    commit("an unterminated TOML array", {"params.toml": "layers = [\n" + "  1,\n" * 200_000})
    for tag in ["m@v", "tiny-llama@v", "tiny-llama@v-", "tiny-llama@v1.0.0-", "tiny-llama@v99999999999999999999999.0.0",
                "tiny-llama#prod#x", "tiny-llama#", "tiny-llama#prod#99999999999999999999", "tiny-llama@vé"]:
        run("git", "tag", "-a", tag, "-m", "odd", cwd=repo)
    server = Server(repo)
    yield server
    server.stop()


def alive(server):
    started = time.time()
    assert requests.get(server.url + "/healthz", timeout=1).status_code == 200 and time.time() - started < 1
    body = server.gql(INFER, {"id": "tiny-llama"})
    assert "errors" not in body, body


def test_the_server_starts_and_serves_the_good_models(hostile):
    names = [m["name"] for m in hostile.data("{ models { name } }")["models"]]
    for good in ("smollm2-135m", "tiny-llama"):
        assert good in names
        revision = hostile.data(LINEAGE, {"id": good})["modelRevision"]
        assert revision["artifact"]["md5"], revision
    alive(hostile)


@pytest.mark.parametrize("model, code, words", [
    ("trunc", "MODEL_LOAD_FAILED", "truncated"),
    ("absurd", "MODEL_LOAD_FAILED", "invalid GGUF"),
    ("dirbomb", "ARTIFACT_UNAVAILABLE", "leaves the directory"),
])
def test_bad_artifacts_fail_alone(hostile, model, code, words):
    body = hostile.gql(INFER, {"id": model})
    assert error_codes(body) == [code], body
    assert words in body["errors"][0]["message"], body
    alive(hostile)


@pytest.mark.parametrize("model, words", [
    ("huge", "limit"),
    ("deep", "nested deeper"),
    ("escape", "leaves"),
])
def test_bad_metadata_fails_alone(hostile, model, words):
    body = hostile.gql(LINEAGE, {"id": model})
    assert error_codes(body) == ["METADATA_ERROR"], body
    assert words in body["errors"][0]["message"], body
    alive(hostile)


def test_a_pipeline_that_cannot_be_read_declares_nothing(hostile):
    assert error_codes(hostile.gql(LINEAGE, {"id": "hostile:grid-model"})) == ["NOT_FOUND"]
    assert error_codes(hostile.gql(LINEAGE, {"id": "grid-model"})) == ["NOT_FOUND"]
    alive(hostile)


def test_odd_tag_names_leave_versions_and_stages_intact(hostile):
    tiny = hostile.data('{ model(name: "tiny-llama") { versions stages } }')["model"]
    assert {"v1.1.0", "v1.0.0"} <= set(tiny["versions"]) and "prod" in tiny["stages"], tiny
    assert hostile.data(LINEAGE, {"id": "tiny-llama#prod"})["modelRevision"]["id"].startswith("tiny-llama@")
    # Tags of exactly these names exist: the specs name them.
    for spec in ("tiny-llama@v1.0.0-", "tiny-llama@v99999999999999999999999.0.0"):
        assert hostile.data(LINEAGE, {"id": spec})["modelRevision"]["id"].startswith("tiny-llama@")
    for spec in ("m@v", "tiny-llama@v", "tiny-llama@v-", "tiny-llama@vé", "tiny-llama#", "tiny-llama@v2.0.0"):
        codes = error_codes(hostile.gql(LINEAGE, {"id": spec}))
        assert codes and codes[0] in ("NOT_FOUND", "INVALID_REVISION"), (spec, codes)
    alive(hostile)


@pytest.fixture(scope="module")
def long_history(demo, tmp_path_factory):
    """The demo repository with 3,000 more commits on main (each changes one unrelated file): a
    cold `revisions` walks all of them."""
    repo = tmp_path_factory.mktemp("long") / "repo"
    run("git", "clone", "-q", str(demo), str(repo))
    stream = []
    for n in range(3000):
        text = f"{n}\n"
        stream.append(f"commit refs/heads/main\ncommitter Load <load@example.com> {1_700_000_000 + n} +0000\ndata 6\ncommit\n"
                      + ("from refs/heads/main^0\n" if n == 0 else "") + f"M 100644 inline counter.txt\ndata {len(text)}\n{text}\n")
    import subprocess
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input="".join(stream).encode(), check=True)
    return repo


def test_heavy_queries_run_off_the_cooperative_pool(demo, long_history, make_server, tmp_path):
    """Two cold history walks at once (they would hold both cooperative threads of this 2-core
    machine if Git and YAML work ran there): health checks and cached answers still answer at once,
    and a query past request-timeout is answered DEADLINE_EXCEEDED at the deadline."""
    import concurrent.futures
    config = tmp_path / "pedigree.yaml"
    config.write_text("request-timeout: 3\n")
    server = make_server(long_history, "--config", str(config))
    # A revision before the 3,000 commits: its lineage is a short walk, then cached.
    spec = "tiny-llama@" + run("git", "-C", str(demo), "rev-parse", "main").strip()
    hot = server.data(LINEAGE, {"id": spec})["modelRevision"]["id"]
    heavy = "{ models { name revisions { id } } }"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.time()
        walks = [pool.submit(requests.post, server.url + "/graphql", json={"query": heavy}, timeout=60) for _ in range(2)]
        time.sleep(0.3)
        slowest = 0.0
        while not all(w.done() for w in walks) and time.time() - started < 3:
            before = time.time()
            assert requests.get(server.url + "/healthz", timeout=1).status_code == 200
            assert server.data(LINEAGE, {"id": spec})["modelRevision"]["id"] == hot
            slowest = max(slowest, time.time() - before)
            time.sleep(0.05)
        assert slowest < 0.5, slowest
        answers = [w.result() for w in walks]
    took = time.time() - started
    assert all(a.status_code == 504 and error_codes(a.json()) == ["DEADLINE_EXCEEDED"] for a in answers), [a.text[:200] for a in answers]
    assert 2.5 < took < 5, took
    alive(server)
