"""Models kept in Git LFS: a repository pushed with the real `git lfs` client to a real LFS server
(giftless, JWT as basic auth) whose objects live in S3 (moto), so downloads follow
`actions.download.href` to another origin. Both revisions of the weights serve and differ, each
object is downloaded and cached once, the same bytes tracked by DVC are the same cache entry, a
corrupted object is INTEGRITY_ERROR with nothing cached, a wrong password is a clear error with the
password in no log, an LFS endpoint the configuration does not list gets no request at all, and a
Hugging Face-style repository (GGUF files in LFS and a README, nothing else) serves."""
import hashlib
import http.server
import json
from pathlib import Path

import pytest
import requests
import yaml

from support.http_servers import Listener, LoopbackHTTPServer
from support.lfs import Giftless, git, lfs_repository
from support.processes import Moto, Server
from support.secrets import secret
from support.tools import error_codes, free_port, pedigree, run

MODEL = """query($name: String!) { model(name: $name) { name path versions stages
  revisions { id commit { sha } artifact { path origin md5 sha256 size cached } stage { name } } } }"""
INFER = """mutation($input: InferenceInput!) { infer(input: $input) { id result modelRevision { id artifact { md5 sha256 origin } } } }"""
REPLAY = "mutation($id: ID!) { replay(id: $id) { identical replay { result } } }"
GREEDY = {"temperature": 0, "maxTokens": 12}


def demo_weights(demo, tag):
    """The bytes of the demo's tiny-llama at a GTO tag, from the demo's DVC remote."""
    lock = yaml.safe_load(run("git", "-C", str(demo), "show", f"{tag}:dvc.lock"))
    md5 = next(out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
               if out["path"] == "models/tiny-llama/model.gguf")
    return (Path(str(demo) + ".remote") / "files/md5" / md5[:2] / md5[2:]).read_bytes()


class LFS:
    pass


@pytest.fixture(scope="module")
def lfs(demo, tmp_path_factory):
    """moto, giftless over it, and a repository (pushed to a bare origin) where
    models/assistant.gguf is in LFS: v1.0.0 and v1.1.0 (different weights, registered by gto),
    a branch `corrupt` whose object is damaged in S3 after the push, a branch `elsewhere` with new
    weights whose .lfsconfig names an unlisted endpoint (a listener), a branch `reuse` whose
    weights DVC also tracks (models/twin2), and models/twin/model.gguf tracked by DVC with
    v1.0.0's bytes."""
    root = tmp_path_factory.mktemp("lfs")
    env = LFS()
    env.moto = Moto("127.0.0.1", free_port(), root / "moto.log", authenticated=False)
    env.giftless = Giftless(env.moto.facts, root / "giftless")
    env.listener = Listener(status=200)
    try:
        env.token = secret(env.giftless.token())
        env.endpoint = env.giftless.url("models/assistant")
        work, env.origin = lfs_repository(root / "repo", env.endpoint, env.token)
        first, second, third = (demo_weights(demo, tag) for tag in ("tiny-llama@v1.0.0", "tiny-llama@v1.1.0", "main"))
        assert len({first, second, third}) == 3
        env.weights = {"first": first, "second": second, "third": third}
        run("dvc", "init", "-q", cwd=work)
        run("dvc", "remote", "add", "-d", "storage", str(root / "dvc-remote"), cwd=work)
        env.padded = first + b"\0" * 64
        for twin, data in (("twin", first), ("twin2", env.padded)):
            (work / "models" / twin).mkdir(parents=True)
            (work / "models" / twin / "model.gguf").write_bytes(data)
            run("dvc", "add", "-q", f"models/{twin}/model.gguf", cwd=work)
        run("dvc", "push", "-q", cwd=work)
        (work / "dvc.yaml").write_text("artifacts:\n  assistant:\n    type: model\n    path: models/assistant.gguf\n")
        (work / "models/assistant.gguf").write_bytes(first)
        (work / "README.md").write_text("# assistant\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "Add the assistant (in LFS) and its DVC twin")
        (work / "models/assistant.gguf").write_bytes(second)
        git(work, "commit", "-q", "-am", "Fine-tune the assistant")
        run("gto", "register", "assistant", "HEAD~1", "--version", "v1.0.0", cwd=work)
        run("gto", "register", "assistant", "HEAD", "--version", "v1.1.0", cwd=work)
        git(work, "checkout", "-q", "-b", "corrupt")
        (work / "models/assistant.gguf").write_bytes(third)
        git(work, "commit", "-q", "-am", "Weights damaged on the server after the push")
        git(work, "checkout", "-q", "-b", "elsewhere", "main")
        (work / ".lfsconfig").write_text(f"[lfs]\n\turl = {env.listener.url}/models/assistant.git/info/lfs\n")
        (work / "models/assistant.gguf").write_bytes(second + b"\0" * 32)
        git(work, "commit", "-q", "-am", "New weights, downloaded from elsewhere")
        git(work, "checkout", "-q", "-b", "reuse", "main")
        (work / "models/assistant.gguf").write_bytes(env.padded)
        git(work, "commit", "-q", "-am", "The weights DVC also tracks as models/twin2")
        git(work, "checkout", "-q", "main")
        git(work, "push", "-q", "origin", "main", "corrupt", "elsewhere", "reuse", "--tags")
        # Damage the third object in S3: same size, one byte flipped.
        s3 = env.moto.facts["s3"]
        env.oids = {name: hashlib.sha256(data).hexdigest() for name, data in env.weights.items()}
        key = f"lfs/models/assistant/{env.oids['third']}"
        body = bytearray(s3.get_object(Bucket="models", Key=key)["Body"].read())
        body[len(body) // 2] ^= 0xFF
        s3.put_object(Bucket="models", Key=key, Body=bytes(body))
        env.work = work
        env.credentials = root / "lfs-credentials"
        env.credentials.write_text(f"# the test's LFS server\n{env.giftless.base} _jwt:{env.token}\n")
        env.credentials.chmod(0o600)
        env.allowed = ("--remote-endpoint", env.giftless.base, "--remote-endpoint", env.moto.facts["url"])
        env.server = Server(env.origin, *env.allowed, "--lfs-credentials-file", str(env.credentials))
        yield env
        env.server.stop()
    finally:
        env.listener.stop()
        env.giftless.stop()
        env.moto.stop()


def downloads(server):
    text = requests.get(server.url + "/metrics").text
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("pedigree_artifact_downloads_total"))


def test_both_revisions_serve_and_each_object_is_fetched_once(lfs):
    server = lfs.server
    model = server.data(MODEL, {"name": "assistant"})["model"]
    # Versions: gto show; revisions: the commits that changed the pointer.
    versions = json.loads(run("gto", "show", "assistant", "--json", "--repo", str(lfs.work)))
    assert sorted(model["versions"]) == sorted(v["version"] for v in versions)
    changed = run("git", "-C", str(lfs.origin), "rev-list", "--first-parent", "main", "--", "models/assistant.gguf").split()
    assert [r["id"] for r in model["revisions"]] == [f"assistant@{sha}" for sha in changed]
    for revision, weights in zip(model["revisions"], ("second", "first")):
        pointer = run("git", "-C", str(lfs.origin), "show", f"{revision['commit']['sha']}:models/assistant.gguf")
        artifact = revision["artifact"]
        assert artifact["origin"] == "lfs" and f"oid sha256:{artifact['sha256']}\n" in pointer
        assert artifact["sha256"] == lfs.oids[weights] and artifact["size"] == len(lfs.weights[weights])
        assert artifact["md5"] == "" and not artifact["cached"] and revision["stage"] is None
    before = downloads(server)
    answers = {}
    for spec, weights in (("assistant@v1.0.0", "first"), ("assistant@v1.1.0", "second")):
        for _ in range(2):
            answer = server.data(INFER, {"input": {"modelRevisionID": spec, "prompt": "Once upon a time", "sampling": GREEDY}})["infer"]
            artifact = answer["modelRevision"]["artifact"]
            # Fetched: the md5 is learnt from the bytes, and recorded.
            assert artifact["md5"] == hashlib.md5(lfs.weights[weights]).hexdigest() and artifact["origin"] == "lfs"
            answers.setdefault(spec, set()).add(answer["result"])
        replay = server.data(REPLAY, {"id": answer["id"]})["replay"]
        assert replay["identical"] and replay["replay"]["result"] == answer["result"]
    assert len(answers["assistant@v1.0.0"]) == len(answers["assistant@v1.1.0"]) == 1
    assert answers["assistant@v1.0.0"] != answers["assistant@v1.1.0"]
    assert downloads(server) - before == 2
    cached = [p for p in (Path(server.cache) / "objects").rglob("*") if p.is_file()]
    for weights in ("first", "second"):
        md5 = hashlib.md5(lfs.weights[weights]).hexdigest()
        assert [p.name for p in cached].count(md5[2:]) == 1
    model = server.data(MODEL, {"name": "assistant"})["model"]
    assert all(r["artifact"]["cached"] and r["artifact"]["md5"] for r in model["revisions"])
    # The CLI says where the bytes are.
    printed = pedigree("lineage", "assistant@v1.0.0", "--repo", str(lfs.origin)).stdout
    assert f"sha256 {lfs.oids['first']}" in printed and "in Git LFS" in printed


def test_the_same_bytes_through_lfs_and_dvc_are_one_cache_entry(lfs):
    server = lfs.server
    server.data(INFER, {"input": {"modelRevisionID": "assistant@v1.0.0", "prompt": "hi", "sampling": GREEDY}})
    twin = server.data(MODEL, {"name": "twin"})["model"]["revisions"][0]["artifact"]
    assert twin["origin"] == "dvc" and twin["md5"] == hashlib.md5(lfs.weights["first"]).hexdigest() and twin["cached"]
    before = downloads(server)
    server.data(INFER, {"input": {"modelRevisionID": "twin", "prompt": "hi", "sampling": GREEDY}})
    assert downloads(server) == before


def test_weights_dvc_fetched_and_hashed_are_found_for_lfs(lfs):
    """The other way round: weights fetched through DVC and hashed when they loaded are the LFS
    object of the same SHA-256, not downloaded again."""
    server = lfs.server
    first = server.data(INFER, {"input": {"modelRevisionID": "twin2", "prompt": "Once upon a time", "sampling": GREEDY}})["infer"]
    before = downloads(server)
    again = server.data(INFER, {"input": {"modelRevisionID": "assistant@reuse", "prompt": "Once upon a time", "sampling": GREEDY}})["infer"]
    assert downloads(server) == before
    assert again["modelRevision"]["artifact"]["md5"] == first["modelRevision"]["artifact"]["md5"] == hashlib.md5(lfs.padded).hexdigest()
    assert again["result"] == first["result"]


def test_a_corrupted_object_is_refused_and_nothing_is_cached(lfs):
    server = lfs.server
    before = sorted(str(p) for p in (Path(server.cache) / "objects").rglob("*") if p.is_file())
    body = server.gql(INFER, {"input": {"modelRevisionID": "assistant@corrupt", "prompt": "hi", "sampling": GREEDY}})
    assert error_codes(body) == ["INTEGRITY_ERROR"], body
    assert lfs.oids["third"] in body["errors"][0]["message"]
    after = sorted(str(p) for p in (Path(server.cache) / "objects").rglob("*") if p.is_file())
    assert after == before


def test_a_wrong_password_is_a_clear_error_and_an_unlisted_endpoint_gets_no_request(lfs, tmp_path, make_server):
    # The unlisted endpoint: a commit's .lfsconfig names the listener; nothing reaches it.
    body = lfs.server.gql(INFER, {"input": {"modelRevisionID": "assistant@elsewhere", "prompt": "hi"}})
    assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"] and "remote-endpoints" in body["errors"][0]["message"], body
    assert lfs.listener.requests == []
    # Listed, but the configuration holds the wrong password: the server's 401, said plainly.
    wrong = secret("wrong-" + lfs.token[::-1])
    credentials = tmp_path / "wrong-credentials"
    credentials.write_text(f"{lfs.giftless.base} _jwt:{wrong}\n")
    server = make_server(lfs.origin, *lfs.allowed, "--lfs-credentials-file", str(credentials))
    body = server.gql(INFER, {"input": {"modelRevisionID": "assistant@v1.1.0", "prompt": "hi"}})
    assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"], body
    message = body["errors"][0]["message"]
    assert "401" in message and "refused" in message and wrong not in message and lfs.token not in message
    assert not [p for p in (Path(server.cache) / "objects").rglob("*") if p.is_file() and p.parent.name != "tmp"]
    # The LFS server's download link leads to S3's origin, which this configuration does not list.
    unlisted = make_server(lfs.origin, "--remote-endpoint", lfs.giftless.base, "--lfs-credentials-file", str(lfs.credentials))
    body = unlisted.gql(INFER, {"input": {"modelRevisionID": "assistant@v1.1.0", "prompt": "hi"}})
    assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"], body
    assert f"sends the download to {lfs.moto.facts['url']}" in body["errors"][0]["message"]
    assert "not followed" in body["errors"][0]["message"]


def test_a_hugging_face_style_repository_serves(lfs, tmp_path):
    """GGUF files in LFS and a README, no DVC, no GTO: each GGUF file is a model named by its path,
    its versions the repository's plain version tags."""
    work, origin = lfs_repository(tmp_path / "hf", lfs.giftless.url("hf/tiny"), lfs.token)
    (work / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    (work / "tiny-f32.gguf").write_bytes(lfs.weights["second"])
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Upload tiny-f32.gguf")
    git(work, "tag", "v1.0.0")
    git(work, "push", "-q", "origin", "main", "--tags")
    server = Server(origin, *lfs.allowed, "--lfs-credentials-file", str(lfs.credentials))
    try:
        names = [m["name"] for m in server.data("{ models { name path } }")["models"]]
        assert names == ["tiny-f32"]
        # Versions come from the repository's plain version tags.
        assert server.data(MODEL, {"name": "tiny-f32"})["model"]["versions"] == ["v1.0.0"]
        answer = server.data(INFER, {"input": {"modelRevisionID": "tiny-f32@v1.0.0", "prompt": "Once upon a time", "sampling": GREEDY}})["infer"]
        assert answer["modelRevision"]["artifact"]["sha256"] == lfs.oids["second"]
        reference = lfs.server.data(INFER, {"input": {"modelRevisionID": "assistant@v1.1.0", "prompt": "Once upon a time",
                                                      "sampling": GREEDY}})["infer"]
        assert answer["result"] == reference["result"]
    finally:
        server.stop()


class BreakingProxy(LoopbackHTTPServer):
    """An S3 stand-in in front of moto that breaks the first download of each object halfway (the
    full Content-Length promised, half the body sent, the connection closed) and forwards every
    other request, Range requests included; it records (method, path, Range) of each GET."""

    def __init__(self, upstream):
        self.gets = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self, body=True):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                answer = requests.request(self.command, upstream + self.path, headers=headers, stream=True)
                data = answer.raw.read() if body else b""
                first = self.command == "GET" and "Range" not in self.headers and not any(p == self.path for _, p, _ in proxy.gets)
                if self.command == "GET":
                    proxy.gets.append((self.command, self.path, self.headers.get("Range")))
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data) if body else answer.headers.get("Content-Length", 0)))
                self.end_headers()
                if first and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            def do_GET(self):
                self.forward()

            def do_HEAD(self):
                self.forward(body=False)

        self.serve(Handler)


def test_a_broken_download_resumes_where_it_stopped(lfs, tmp_path):
    """A second LFS server over the same bucket hands out hrefs to a proxy that breaks each first
    download halfway: the fetch resumes with a Range request from the byte it reached, verifies,
    and serves."""
    proxy = BreakingProxy(lfs.moto.facts["url"])
    resuming = Giftless({**lfs.moto.facts, "url": proxy.url}, tmp_path / "giftless")
    try:
        # Pushed through the first server (same bucket and path); the commit sends downloads to the second.
        work, origin = lfs_repository(tmp_path / "resume", lfs.giftless.url("resume/tiny"), lfs.token)
        (work / ".lfsconfig").write_text(f"[lfs]\n\turl = {resuming.url('resume/tiny')}\n")
        (work / "tiny.gguf").write_bytes(lfs.weights["first"])
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "Upload tiny.gguf")
        git(work, "push", "-q", "origin", "main")
        credentials = tmp_path / "credentials"
        credentials.write_text(f"{resuming.base} _jwt:{secret(resuming.token())}\n")
        server = Server(origin, "--remote-endpoint", resuming.base, "--remote-endpoint", proxy.url, "--lfs-credentials-file", str(credentials))
        try:
            answer = server.data(INFER, {"input": {"modelRevisionID": "tiny", "prompt": "Once upon a time", "sampling": GREEDY}})["infer"]
            assert answer["modelRevision"]["artifact"]["md5"] == hashlib.md5(lfs.weights["first"]).hexdigest()
            gets = [g for g in proxy.gets if lfs.oids["first"] in g[1]]
            assert len(gets) == 2 and gets[0][2] is None, gets
            # From the byte it reached: somewhere in the half sent (what was in flight at the close may be lost).
            resumed_at = int(gets[1][2].removeprefix("bytes=").removesuffix("-"))
            assert 0 < resumed_at <= len(lfs.weights["first"]) // 2, gets
            assert downloads(server) == 1
        finally:
            server.stop()
    finally:
        resuming.stop()
        proxy.stop()
