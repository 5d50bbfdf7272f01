"""fetch_*: cold fetch of demo artifacts, Pedigree vs `dvc fetch` (fresh clone, same remote) vs the
raw limit (`cp` of the same objects for the local remote, a plain concurrent GET loop for S3),
and warm resolution of a cached revision to its local path over GraphQL.

Usage: bench_fetch.py PEDIGREE_BINARY DEMO_REPO"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests

from bench_common import free_port, serve

binary, demo = sys.argv[1], Path(sys.argv[2]).resolve()
remote = Path(str(demo) + ".remote")
work = Path(tempfile.mkdtemp(prefix="pedigree-bench-"))
VENV = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{VENV}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
ROUNDS = 3
TARGETS = ["models/smollm2-135m/model.gguf", "models/tiny-llama/model.gguf"]


def run(*args, cwd=None):
    return subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def artifact_specs():
    """One `name@sha` per distinct artifact over every commit of every ref (what
    `dvc fetch --all-commits` of the model outputs fetches), and the distinct md5s."""
    import yaml
    specs, md5s = [], set()
    for sha in run("git", "-C", str(demo), "rev-list", "--all").split():
        lock = yaml.safe_load(run("git", "-C", str(demo), "show", f"{sha}:dvc.lock"))
        for stage in lock["stages"].values():
            for out in stage.get("outs", []):
                if out["path"] in TARGETS and out["md5"] not in md5s:
                    md5s.add(out["md5"])
                    specs.append(f"{out['path'].split('/')[1]}@{sha}")
    return specs, md5s


def timed(fn, rounds=ROUNDS):
    """Best of `rounds` (cold each time: fn prepares its own fresh state untimed)."""
    best = None
    for _ in range(rounds):
        elapsed = fn()
        best = elapsed if best is None else min(best, elapsed)
    return best


def pedigree_pull(repo, specs):
    cache = work / f"cache-{time.monotonic_ns()}"
    run(binary, "models", "--repo", str(repo), "--cache", str(cache))  # mirror the Git repo, untimed
    start = time.perf_counter()
    run(binary, "pull", *specs, "--repo", str(repo), "--cache", str(cache))
    elapsed = time.perf_counter() - start
    shutil.rmtree(cache)
    return elapsed


def server_pull(repo, specs):
    """The gateway's own cold fetch: `pull` mutations (all specs at once) on a running server
    with an empty artifact cache; no process start or Git fetch in the time."""
    cache = work / f"cache-{time.monotonic_ns()}"
    process, url = serve(binary, repo, cache)
    try:
        def pull(spec):
            body = requests.post(url + "/graphql", json={"query": "mutation($id: ID!) { pull(id: $id) { cached } }",
                                                         "variables": {"id": spec}}).json()
            assert "errors" not in body, body
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(specs)) as pool:
            list(pool.map(pull, specs))
        return time.perf_counter() - start
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(cache)


def dvc_fetch(repo, targets, all_commits, remote_name=None):
    clone = work / f"clone-{time.monotonic_ns()}"
    run("git", "clone", "-q", str(repo), str(clone))
    if (Path(repo) / ".dvc/config.local").exists():
        shutil.copy(Path(repo) / ".dvc/config.local", clone / ".dvc/config.local")
    args = ["dvc", "fetch", "-q", *(["--all-commits"] if all_commits else []), *targets]
    start = time.perf_counter()
    run(*args, cwd=clone)
    elapsed = time.perf_counter() - start
    shutil.rmtree(clone)
    return elapsed


def object_keys(md5s):
    return [f"files/md5/{m[:2]}/{m[2:]}" for m in md5s]


def copy_objects(keys, verify=False):
    """`cp` of the objects; with `verify`, then `md5sum` of the copies (the least a verified
    fetch must do), two files at a time as our two cores allow."""
    target = work / f"cp-{time.monotonic_ns()}"
    target.mkdir()
    start = time.perf_counter()
    subprocess.run(["cp", *[str(remote / k) for k in keys], str(target)], check=True)
    if verify:
        subprocess.run(f"ls -1 {target}/* | xargs -P 2 -n 1 md5sum", shell=True, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def report(name, ours, peer, raws, served=None):
    """One line against dvc, one per raw limit (named); `served`: the same fetch inside a
    running server, against the same raw limits."""
    print(f"BENCH {name} {ours * 1000:.1f} ms peer={peer * 1000:.1f} ratio={peer / ours:.2f}")
    if served is not None:
        print(f"BENCH {name}_server {served * 1000:.1f} ms peer={peer * 1000:.1f} ratio={peer / served:.2f}")
        for raw_name, raw in raws.items():
            print(f"BENCH {name}_server_vs_{raw_name} {served * 1000:.1f} ms peer={raw * 1000:.1f} ratio={raw / served:.2f}")
    for raw_name, raw in raws.items():
        print(f"BENCH {name}_vs_{raw_name} {ours * 1000:.1f} ms peer={raw * 1000:.1f} ratio={raw / ours:.2f}")
    sys.stdout.flush()


# Git LFS: the demo's SmolLM2 weights (98 MB) in a Hugging Face-style repository pushed by the
# real `git lfs` to giftless, whose objects live in S3 (moto): Pedigree's pull against `git lfs pull`
# into a fresh clone, and against the raw limit (the batch request, then one GET of the href
# hashed with SHA-256 while written).
def lfs_fetch():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from support.lfs import Giftless, git as lfs_git, lfs_repository  # noqa: E402
    from support.processes import Moto  # noqa: E402

    lfs_root = work / "lfs"
    lfs_root.mkdir()
    lfs_moto = Moto("127.0.0.1", free_port(), lfs_root / "moto.log", authenticated=False)
    giftless = Giftless(lfs_moto.facts, lfs_root / "giftless")
    try:
        token = giftless.token()
        endpoint = giftless.url("bench/smollm2")
        lfs_work, lfs_origin = lfs_repository(lfs_root / "repo", endpoint, token)
        shutil.copy(demo / "models/smollm2-135m/model.gguf", lfs_work / "smollm2.gguf")
        lfs_git(lfs_work, "add", "-A")
        lfs_git(lfs_work, "commit", "-q", "-m", "Upload smollm2.gguf")
        lfs_git(lfs_work, "push", "-q", "origin", "main")
        credentials = lfs_root / "credentials"
        credentials.write_text(f"{giftless.base} _jwt:{token}\n")
        oid = hashlib.sha256((lfs_work / "smollm2.gguf").read_bytes()).hexdigest()
        size = (lfs_work / "smollm2.gguf").stat().st_size

        def pedigree_lfs():
            cache = work / f"cache-{time.monotonic_ns()}"
            run(binary, "models", "--repo", str(lfs_origin), "--cache", str(cache))  # mirror the Git repo, untimed
            start = time.perf_counter()
            run(binary, "pull", "smollm2", "--repo", str(lfs_origin), "--cache", str(cache), "--remote-endpoint", giftless.base,
                "--remote-endpoint", lfs_moto.facts["url"], "--lfs-credentials-file", str(credentials))
            elapsed = time.perf_counter() - start
            shutil.rmtree(cache)
            return elapsed

        def git_lfs_pull():
            clone = work / f"clone-{time.monotonic_ns()}"
            subprocess.run(["git", "clone", "-q", str(lfs_origin), str(clone)], env={**ENV, "GIT_LFS_SKIP_SMUDGE": "1"}, check=True,
                           capture_output=True)
            lfs_git(clone, "config", "lfs.url", endpoint.replace("http://", f"http://_jwt:{token}@", 1))
            start = time.perf_counter()
            lfs_git(clone, "lfs", "pull")
            elapsed = time.perf_counter() - start
            assert hashlib.sha256((clone / "smollm2.gguf").read_bytes()).hexdigest() == oid
            shutil.rmtree(clone)
            return elapsed

        def batch_get_sha256():
            target = work / f"raw-{time.monotonic_ns()}"
            start = time.perf_counter()
            kind = "application/vnd.git-lfs+json"
            answer = requests.post(endpoint + "/objects/batch", auth=("_jwt", token), headers={"Accept": kind, "Content-Type": kind},
                                   data=json.dumps({"operation": "download", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]})).json()
            action = answer["objects"][0]["actions"]["download"]
            digest = hashlib.sha256()
            with requests.get(action["href"], headers=action.get("header", {}), stream=True) as response, open(target, "wb") as f:
                for chunk in response.iter_content(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
            elapsed = time.perf_counter() - start
            assert digest.hexdigest() == oid
            target.unlink()
            return elapsed

        def server_lfs():
            """The gateway's own cold fetch: a `pull` mutation on a running server with an empty cache."""
            cache = work / f"cache-{time.monotonic_ns()}"
            process, url = serve(binary, lfs_origin, cache, "--remote-endpoint", giftless.base, "--remote-endpoint", lfs_moto.facts["url"],
                                 "--lfs-credentials-file", str(credentials))
            try:
                start = time.perf_counter()
                body = requests.post(url + "/graphql", json={"query": 'mutation { pull(id: "smollm2") { downloadedBytes } }'}).json()
                elapsed = time.perf_counter() - start
                assert body["data"]["pull"]["downloadedBytes"] == size, body
                return elapsed
            finally:
                process.terminate()
                process.wait()
                shutil.rmtree(cache)

        report("fetch_lfs_cold", timed(pedigree_lfs), timed(git_lfs_pull), {"get_sha256": timed(batch_get_sha256)}, served=timed(server_lfs))
    finally:
        giftless.stop()
        lfs_moto.stop()


if sys.argv[3:] == ["lfs"]:  # this group alone
    lfs_fetch()
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0)

specs, md5s = artifact_specs()
latest_smollm2 = "smollm2-135m"
lineage = json.loads(run(binary, "lineage", latest_smollm2, "--repo", str(demo), "--json", "--cache", str(work / "probe")))
total_bytes = sum((remote / k).stat().st_size for k in object_keys(md5s))
print(f"# {len(specs)} artifacts, {total_bytes / 1e6:.0f} MB; best of {ROUNDS} cold runs each", flush=True)

# Local remote.
ours = timed(lambda: pedigree_pull(demo, [latest_smollm2]))
peer = timed(lambda: dvc_fetch(demo, [TARGETS[0]], all_commits=False))
keys = object_keys([lineage["artifact"]["md5"]])
report("fetch_local_cold", ours, peer, {"cp": timed(lambda: copy_objects(keys)), "cp_md5sum": timed(lambda: copy_objects(keys, True))}, served=timed(lambda: server_pull(demo, [latest_smollm2])))
ours = timed(lambda: pedigree_pull(demo, specs))
peer = timed(lambda: dvc_fetch(demo, TARGETS, all_commits=True))
keys = object_keys(md5s)
report("fetch_local_cold_all", ours, peer, {"cp": timed(lambda: copy_objects(keys)), "cp_md5sum": timed(lambda: copy_objects(keys, True))}, served=timed(lambda: server_pull(demo, specs)))

# S3 (moto on loopback), filled by the real `dvc push`.
port = free_port()
moto = subprocess.Popen([str(VENV / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=ENV,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
    s3.create_bucket(Bucket="models")
    s3_repo = work / "s3-repo"
    run("git", "clone", "-q", str(demo), str(s3_repo))
    for args in (["add", "--local", "-d", "s3", "s3://models/store"], ["modify", "--local", "s3", "endpointurl", endpoint],
                 ["modify", "--local", "s3", "access_key_id", "bench"], ["modify", "--local", "s3", "secret_access_key", "bench"]):
        run("dvc", "remote", *args, cwd=s3_repo)
    subprocess.run(["cp", "-al", str(demo / ".dvc/cache"), str(s3_repo / ".dvc/cache")], check=True)
    run("dvc", "push", "-q", "--all-commits", "-r", "s3", cwd=s3_repo)

    def get_loop(keys, verify=False):
        """8 concurrent boto3 GETs written to files; with `verify`, md5 while writing."""
        target = work / f"get-{time.monotonic_ns()}"
        target.mkdir()
        client = boto3.client("s3", endpoint_url=endpoint, **creds)

        def get(key):
            digest = hashlib.md5()
            with open(target / key.replace("/", "_"), "wb") as f:
                for chunk in client.get_object(Bucket="models", Key="store/" + key)["Body"].iter_chunks(1 << 20):
                    if verify:
                        digest.update(chunk)
                    f.write(chunk)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(get, keys))
        elapsed = time.perf_counter() - start
        shutil.rmtree(target)
        return elapsed

    ours = timed(lambda: pedigree_pull(s3_repo, [latest_smollm2]))
    peer = timed(lambda: dvc_fetch(s3_repo, [TARGETS[0]], all_commits=False))
    keys = object_keys([lineage["artifact"]["md5"]])
    report("fetch_s3_cold", ours, peer, {"get": timed(lambda: get_loop(keys)), "get_md5": timed(lambda: get_loop(keys, True))}, served=timed(lambda: server_pull(s3_repo, [latest_smollm2])))
    ours = timed(lambda: pedigree_pull(s3_repo, specs))
    peer = timed(lambda: dvc_fetch(s3_repo, TARGETS, all_commits=True))
    keys = object_keys(md5s)
    report("fetch_s3_cold_all", ours, peer, {"get": timed(lambda: get_loop(keys)), "get_md5": timed(lambda: get_loop(keys, True))}, served=timed(lambda: server_pull(s3_repo, specs)))
finally:
    moto.terminate()
    moto.wait()

lfs_fetch()

# Warm: a cached revision resolved to its local path, over GraphQL (200 requests).
cache = work / "warm-cache"
run(binary, "pull", latest_smollm2, "--repo", str(demo), "--cache", str(cache))
server, url = serve(binary, demo, cache)
try:
    session = requests.Session()
    query = {"query": 'mutation { pull(id: "smollm2-135m") { downloadedObjects } }'}
    for _ in range(20):
        session.post(url + "/graphql", json=query).raise_for_status()
    samples = []
    for _ in range(200):
        start = time.perf_counter()
        body = session.post(url + "/graphql", json=query).json()
        samples.append(time.perf_counter() - start)
        assert body["data"]["pull"]["downloadedObjects"] == 0, body
    print(f"BENCH fetch_warm_p50 {statistics.median(samples) * 1000:.3f} ms")
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
