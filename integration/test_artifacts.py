"""The native artifact store against real remotes: the demo's local remote, S3 (moto, with
signature checking on), HTTP; legacy layouts, directory outs, and faults. `dvc pull` is the oracle."""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from support.processes import Moto
from support.tools import BIN, ENV, clone_with_remote, error_codes, free_port, md5_file, pedigree, run

QUERY_REVISIONS = "{ models { name path revisions { id commit { sha } artifact { md5 size } } } }"
PULL = 'mutation($id: ID!) { pull(id: $id) { downloadedObjects downloadedBytes cached modelRevision { id artifact { md5 cached } } } }'


@pytest.fixture(scope="module")
def revisions(server):
    """Every revision of every demo model: (id, sha, path, md5)."""
    out = []
    for model in server.data(QUERY_REVISIONS)["models"]:
        for rev in model["revisions"]:
            out.append((rev["id"], rev["commit"]["sha"], model["path"], rev["artifact"]["md5"]))
    assert len(out) >= 4
    return out


@pytest.fixture(scope="module")
def dvc_pulled(demo, revisions, tmp_path_factory):
    """The oracle: md5 of each revision's artifact as `dvc pull` writes it in a fresh clone."""
    clone = tmp_path_factory.mktemp("dvc-pull") / "repo"
    run("git", "clone", "-q", str(demo), str(clone))
    result = {}
    for rid, sha, path, _ in revisions:
        run("git", "checkout", "-q", sha, cwd=clone)
        run("dvc", "pull", "-q", path, cwd=clone)
        result[rid] = md5_file(clone / path)
    return result


def pull_path(spec, repo, cache, *extra):
    result = pedigree("pull", spec, "--repo", str(repo), "--cache", str(cache), *extra)
    return Path(result.stdout.strip().splitlines()[-1]), result.stderr


def cached_objects(cache):
    root = Path(cache) / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts)


def test_local_remote_pull_equals_dvc_pull(demo, revisions, dvc_pulled, tmp_path):
    cache = tmp_path / "cache"
    for rid, _, _, md5 in revisions:
        path, _ = pull_path(rid, demo, cache)
        assert md5_file(path) == dvc_pulled[rid] == md5, rid
        assert str(path).startswith(str(cache)) and path.stat().st_mode & 0o222 == 0  # read-only, in the cache
    # One object per distinct md5, downloaded once: pulling again, or by another spec, downloads nothing.
    assert len(cached_objects(cache)) == len({md5 for *_, md5 in revisions})
    _, stderr = pull_path("smollm2-135m#prod", demo, cache)
    assert "0 objects, 0 bytes downloaded" in stderr
    _, stderr = pull_path(revisions[0][0], demo, cache)
    assert "0 objects" in stderr


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = Moto("127.0.0.1", free_port(), tmp_path_factory.mktemp("moto") / "moto.log")
    yield server.facts
    server.stop()


@pytest.fixture(scope="module")
def s3_repo(demo, moto, tmp_path_factory):
    """A clone of the demo whose default remote (config.local) is the moto bucket, filled by the
    real `dvc push --all-commits`."""
    clone = clone_with_remote(demo, tmp_path_factory.mktemp("s3") / "repo", "s3", "s3://models/store",
                              endpointurl=moto["url"], access_key_id=moto["key"], secret_access_key=moto["secret"])
    subprocess.run(["cp", "-al", str(demo / ".dvc/cache"), str(clone / ".dvc/cache")], check=True)
    run("dvc", "push", "-q", "--all-commits", "-r", "s3", cwd=clone)
    return clone


def test_s3_remote_pull_equals_dvc_pull(s3_repo, moto, revisions, dvc_pulled, tmp_path):
    keys = [o["Key"] for o in moto["s3"].list_objects_v2(Bucket="models", Prefix="store/files/md5/")["Contents"]]
    assert keys, "dvc push wrote nothing to S3"
    cache = tmp_path / "cache"
    for rid, _, _, md5 in revisions:
        path, _ = pull_path(rid, s3_repo, cache)
        assert md5_file(path) == dvc_pulled[rid] == md5, rid


def test_s3_wrong_credentials_name_the_remote_and_leak_no_secret(s3_repo, tmp_path, make_server):
    wrong = "wrongSecretDoNotLog123"
    bad = tmp_path / "bad"
    shutil.copytree(s3_repo, bad, symlinks=True)
    run("dvc", "remote", "modify", "--local", "s3", "secret_access_key", wrong, cwd=bad)
    result = pedigree("pull", "tiny-llama", "--repo", str(bad), "--cache", str(tmp_path / "cache"), check=False)
    assert result.returncode != 0
    assert "ARTIFACT_UNAVAILABLE" in result.stderr and "'s3'" in result.stderr and "403" in result.stderr
    assert wrong not in result.stderr + result.stdout
    server = make_server(bad)
    body = server.gql(PULL, {"id": "tiny-llama"})
    assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "'s3'" in body["errors"][0]["message"] and "403" in body["errors"][0]["message"]
    assert wrong not in json.dumps(body) and wrong not in Path(server.log.name).read_text()


def test_http_remote_pull_equals_dvc_pull(demo, revisions, dvc_pulled, object_server, tmp_path):
    remote = object_server(str(demo) + ".remote")
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    cache = tmp_path / "cache"
    for rid, _, _, md5 in revisions:
        path, _ = pull_path(rid, clone, cache)
        assert md5_file(path) == dvc_pulled[rid] == md5, rid
    assert all(n == 1 for n in remote.object_requests().values())


@pytest.fixture(scope="module")
def layouts_repo(tmp_path_factory):
    """A repository with a directory model (`dvc add` of a folder: a .dir manifest), a legacy
    DVC 2 model (no `hash:` key, dos2unix md5, object at the remote's root) and a model whose
    manifest escapes its folder (written by hand, as an attacker would)."""
    from dvc_data.hashfile.hash import file_md5
    base = tmp_path_factory.mktemp("layouts")
    repo, remote = base / "repo", base / "remote"
    run("git", "init", "-q", "-b", "main", str(repo))
    run("git", "config", "user.email", "t@example.com", cwd=repo)
    run("git", "config", "user.name", "T", cwd=repo)
    run("dvc", "init", "-q", cwd=repo)
    run("dvc", "remote", "add", "-q", "-d", "storage", str(remote), cwd=repo)
    bundle = repo / "models/bundle"
    (bundle / "nested").mkdir(parents=True)
    (bundle / "config.json").write_text('{"arch": "llama"}\n')
    (bundle / "weights.gguf").write_bytes(os.urandom(300_000))
    (bundle / "nested/tokenizer.txt").write_text("a b c\n")
    (repo / "dvc.yaml").write_text("artifacts:\n  bundle:\n    path: models/bundle\n    type: model\n")
    run("dvc", "add", "-q", "models/bundle", cwd=repo)
    run("dvc", "push", "-q", cwd=repo)
    # Legacy: DVC 2's format and layout.
    legacy = repo / "models/legacy"
    legacy.mkdir(parents=True)
    text = b"line one\r\nline two\r\n" * 100
    (legacy / "model.gguf").write_bytes(text)
    md5 = file_md5(str(legacy / "model.gguf"), name="md5-dos2unix")
    assert md5 != __import__("hashlib").md5(text).hexdigest()  # dos2unix really applied
    (legacy / "model.gguf.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {len(text)}\n  path: model.gguf\n")
    (legacy / ".gitignore").write_text("/model.gguf\n")
    (remote / md5[:2]).mkdir(parents=True, exist_ok=True)
    (remote / md5[:2] / md5[2:]).write_bytes(text)
    # A manifest whose entry leaves the folder.
    evil = repo / "models/evil"
    evil.mkdir(parents=True)
    payload = b"escaped"
    payload_md5 = __import__("hashlib").md5(payload).hexdigest()
    manifest = json.dumps([{"md5": payload_md5, "relpath": "../../../escape.txt"}], sort_keys=True).encode()
    manifest_md5 = __import__("hashlib").md5(manifest).hexdigest()
    for name, data in [(manifest_md5 + ".dir", manifest), (payload_md5, payload)]:
        target = remote / "files/md5" / name[:2] / name[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (evil / "model.gguf.dvc").write_text(f"outs:\n- md5: {manifest_md5}.dir\n  size: 7\n  nfiles: 1\n  hash: md5\n  path: model.gguf\n")
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", "bundle, legacy and evil models", cwd=repo)
    shutil.rmtree(legacy / "model.gguf", ignore_errors=True)
    return repo


def test_directory_and_legacy_outs_equal_dvc_pull(layouts_repo, tmp_path):
    oracle = tmp_path / "oracle"
    run("git", "clone", "-q", str(layouts_repo), str(oracle))
    run("dvc", "pull", "-q", "models/bundle", "models/legacy/model.gguf.dvc", cwd=oracle)
    cache = tmp_path / "cache"
    folder, _ = pull_path("bundle", layouts_repo, cache)
    ours = {str(p.relative_to(folder)): md5_file(p) for p in folder.rglob("*") if p.is_file()}
    theirs = {str(p.relative_to(oracle / "models/bundle")): md5_file(p) for p in (oracle / "models/bundle").rglob("*") if p.is_file()}
    assert ours == theirs and len(ours) == 3
    legacy, _ = pull_path("legacy", layouts_repo, cache)
    assert md5_file(legacy) == md5_file(oracle / "models/legacy/model.gguf")
    assert b"\r\n" in legacy.read_bytes()  # stored as pushed; only the hash ignores CR


def test_manifest_escaping_its_folder_is_rejected(layouts_repo, tmp_path):
    cache = tmp_path / "deep/cache"
    result = pedigree("pull", "evil", "--repo", str(layouts_repo), "--cache", str(cache), check=False)
    assert result.returncode != 0 and "ARTIFACT_UNAVAILABLE" in result.stderr and "rejected" in result.stderr
    assert not list(tmp_path.rglob("escape.txt"))


def test_corrupted_object_is_an_integrity_error_and_nothing_is_cached(demo, object_server, tmp_path, make_server):
    remote = object_server(str(demo) + ".remote")
    remote.corrupt = True
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    cache = tmp_path / "cache"
    result = pedigree("pull", "tiny-llama", "--repo", str(clone), "--cache", str(cache), check=False)
    assert result.returncode != 0 and "INTEGRITY_ERROR" in result.stderr
    assert cached_objects(cache) == [] and list((cache / "objects/tmp").iterdir()) == []
    server = make_server(clone)
    assert error_codes(server.gql(PULL, {"id": "tiny-llama"})) == ["INTEGRITY_ERROR"]
    assert server.data('{ modelRevision(id: "tiny-llama") { artifact { cached } } }')["modelRevision"]["artifact"]["cached"] is False


def test_server_errors_are_retried_client_errors_are_not(demo, object_server, revisions, dvc_pulled, tmp_path):
    remote = object_server(str(demo) + ".remote")
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    rid, _, _, md5 = next(r for r in revisions if r[0].startswith("tiny-llama"))
    key = f"files/md5/{md5[:2]}/{md5[2:]}"
    remote.fail[key] = [500, 503]
    path, _ = pull_path(rid, clone, tmp_path / "cache")
    assert md5_file(path) == dvc_pulled[rid] and remote.counts[key] == 3
    remote.fail[key] = [403]
    result = pedigree("pull", rid, "--repo", str(clone), "--cache", str(tmp_path / "other"), check=False)
    assert result.returncode != 0 and "ARTIFACT_UNAVAILABLE" in result.stderr and "403" in result.stderr
    assert remote.counts[key] == 4  # one more request: a 4xx is not retried


def test_remote_down_keeps_serving_cached_models(demo, object_server, tmp_path, make_server):
    remote = object_server(str(demo) + ".remote")
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    server = make_server(clone)
    assert server.data(PULL, {"id": "tiny-llama"})["pull"]["cached"] is True
    remote.stop()
    body = server.gql(PULL, {"id": "smollm2-135m"})
    assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "'web'" in body["errors"][0]["message"]
    again = server.data(PULL, {"id": "tiny-llama"})["pull"]
    assert again["downloadedObjects"] == 0 and again["modelRevision"]["artifact"]["cached"] is True
    assert requests.get(server.url + "/readyz").status_code == 200
    assert server.data('{ modelRevision(id: "smollm2-135m") { artifact { cached } } }')["modelRevision"]["artifact"]["cached"] is False


def test_killed_mid_download_leaves_no_partial_object(demo, object_server, revisions, dvc_pulled, tmp_path):
    remote = object_server(str(demo) + ".remote")
    remote.rate = 8 << 20  # bytes per second: the 98 MB model takes ~12 s
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    cache = tmp_path / "cache"
    process = subprocess.Popen([BIN, "pull", "smollm2-135m", "--repo", str(clone), "--cache", str(cache)],
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while remote.sent < 16 << 20:
        assert time.time() < deadline and process.poll() is None, "the download did not start"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert cached_objects(cache) == []  # a partial download never reaches a final path
    remote.rate = None
    path, _ = pull_path("smollm2-135m", clone, cache)
    latest = next(r for r in revisions if r[0].startswith("smollm2-135m"))
    assert md5_file(path) == dvc_pulled[latest[0]]
    assert list((cache / "objects/tmp").iterdir()) == []


def test_16_concurrent_pulls_download_each_object_once(demo, object_server, tmp_path, make_server):
    remote = object_server(str(demo) + ".remote")
    remote.rate = 64 << 20  # keep the download open while the others arrive
    clone = clone_with_remote(demo, tmp_path / "repo", "web", remote.url)
    server = make_server(clone)
    assert server.data('{ modelRevision(id: "smollm2-135m") { artifact { cached } } }')["modelRevision"]["artifact"]["cached"] is False
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: server.data(PULL, {"id": "smollm2-135m@main"})["pull"], range(16)))
    assert all(a["cached"] and a["modelRevision"]["artifact"]["cached"] for a in answers)
    assert sum(a["downloadedObjects"] for a in answers) == 1
    requests_per_object = remote.object_requests()
    assert list(requests_per_object.values()) == [1], requests_per_object
    metrics = requests.get(server.url + "/metrics").text
    assert "pedigree_artifact_downloads_total 1" in metrics
