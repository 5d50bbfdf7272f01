"""Secrets stay secret: credentials in URLs are redacted wherever shown or logged, the operator's
credentials go only to endpoints the operator allows (never where a pushed .dvc/config says, never
through a redirect to another host), PostgreSQL over TLS with its password from a file, and no
configured secret appears in any log, answer or export."""
import json
import os
import subprocess

import pytest
import requests

from support.http_servers import GitHTTPServer, Listener
from support.processes import Server
from support.secrets import secret
from support.tools import BIN, ENV, error_codes, pedigree, run

PULL = "mutation($id: ID!) { pull(id: $id) { cached } }"
AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAPEDIGREETEST0001",
    "AWS_SECRET_ACCESS_KEY": secret("aws-secret-" + os.urandom(8).hex()),
    "AWS_SESSION_TOKEN": secret("aws-session-token-" + os.urandom(8).hex()),
}


def committed_remote(demo, target, name, url, **options):
    """A clone of the demo with one more commit, as anyone with push access could make: its
    committed .dvc/config makes `name` the default remote, and it changes tiny-llama's weights
    (so `tiny-llama` is fetched with that commit's config)."""
    import yaml
    run("git", "clone", "-q", str(demo), str(target))
    run("dvc", "remote", "add", "-d", name, url, cwd=target)
    for key, value in options.items():
        run("dvc", "remote", "modify", name, key, value, cwd=target)
    lock = yaml.safe_load((target / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == "models/tiny-llama/model.gguf":
                out["md5"] = "00112233445566778899aabbccddeeff"
    (target / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "-c", "user.name=Mallory", "-c", "user.email=m@example.invalid", "commit", "-qam", "New weights, our remote", cwd=target)
    return target


def test_a_committed_endpointurl_gets_no_credentials(demo, tmp_path, make_server):
    listener = Listener()
    try:
        repo = committed_remote(demo, tmp_path / "repo", "evil", "s3://bucket/store", endpointurl=listener.url)
        server = make_server(repo, env=AWS)
        body = server.gql(PULL, {"id": "tiny-llama"})
        assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"]
        message = body["errors"][0]["message"]
        assert "remote-endpoints" in message and listener.url in message
        assert listener.requests == []
        # Listed by the operator, the endpoint is used (with the operator's credentials).
        server.stop()
        allowed = make_server(repo, "--remote-endpoint", listener.url, env=AWS)
        assert error_codes(allowed.gql(PULL, {"id": "tiny-llama"})) == ["ARTIFACT_UNAVAILABLE"]
        assert listener.requests and "AKIAPEDIGREETEST0001" in listener.requests[0][2].get("authorization", "")
        # An endpoint set in the operator's own .dvc/config.local needs no listing.
        local = tmp_path / "local"
        run("git", "clone", "-q", str(demo), str(local))
        run("dvc", "remote", "add", "--local", "-d", "mine", "s3://bucket/store", cwd=local)
        run("dvc", "remote", "modify", "--local", "mine", "endpointurl", listener.url, cwd=local)
        before = len(listener.requests)
        assert error_codes(make_server(local, env=AWS).gql(PULL, {"id": "smollm2-135m"})) == ["ARTIFACT_UNAVAILABLE"]
        assert len(listener.requests) > before
    finally:
        listener.stop()


def test_credentials_do_not_follow_a_redirect_to_another_host(demo, tmp_path, make_server):
    elsewhere = Listener()
    redirector = Listener(redirect=elsewhere.url)
    try:
        repo = tmp_path / "repo"
        run("git", "clone", "-q", str(demo), str(repo))
        password = secret("http-remote-pw-" + os.urandom(6).hex())
        run("dvc", "remote", "add", "--local", "-d", "web", redirector.url + "/store", cwd=repo)
        for key, value in (("auth", "basic"), ("user", "ops"), ("password", password)):
            run("dvc", "remote", "modify", "--local", "web", key, value, cwd=repo)
        server = make_server(repo)
        body = server.gql(PULL, {"id": "smollm2-135m"})
        assert error_codes(body) == ["ARTIFACT_UNAVAILABLE"], body
        assert "credentials are not sent to another host" in body["errors"][0]["message"]
        assert redirector.requests and "authorization" in redirector.requests[0][2]
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()
        redirector.stop()


def test_no_secret_in_logs_answers_or_export(demo, tmp_path, make_server, postgres):
    """A server configured with every kind of secret: a repository URL with a password, a
    PostgreSQL ledger over TLS with its password in a file, API keys, a webhook secret, AWS
    credentials. After lineage queries, an inference, refusals and failures, none of them is in
    the server's log, any answer, the metrics, `config check` or the ledger export."""
    git_password = secret("git-pw-" + os.urandom(8).hex())
    webhook = secret("webhook-" + os.urandom(8).hex())
    bare = tmp_path / "git"
    bare.mkdir()
    run("git", "clone", "-q", "--bare", str(demo), str(bare / "models.git"))
    git = GitHTTPServer(bare, "bot", git_password)
    url, password_file = postgres(tls=True)
    try:
        repo_url = f"http://bot:{git_password}@127.0.0.1:{git.port}/models.git"
        server = make_server(repo_url, "--ledger", url, "--ledger-password-file", password_file, "--webhook-secret", webhook,
                             "--log-format", "json", env=AWS)
        admin = secret(pedigree("keys", "create", "--name", "ops", "--role", "admin", "--cache", server.cache).stdout.split()[-1])
        reader = secret(pedigree("keys", "create", "--name", "viewer", "--role", "read", "--cache", server.cache).stdout.split()[-1])
        auth = {"Authorization": f"Bearer {admin}"}
        answers = []

        def ask(query, variables=None, key=admin):
            response = requests.post(server.url + "/graphql", json={"query": query, "variables": variables or {}},
                                     headers={"Authorization": f"Bearer {key}"}, timeout=120)
            answers.append(response.text)
            return response.json()
        status = ask("{ repository { source head } }")["data"]["repository"]
        assert status["source"] == f"http://bot:<redacted>@127.0.0.1:{git.port}/models.git"
        ask("{ models { name latest { id datasets { path md5 source { url } } parameters { key value } } } }")
        answer = ask("mutation($input: InferenceInput!) { infer(input: $input) { id result } }",
                     {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"maxTokens": 3, "temperature": 0}}})
        assert "errors" not in answer, answer
        ask("{ inferences { edges { node { id caller prompt } } } }")
        ask("mutation { refresh { head } }", key=reader)  # FORBIDDEN
        ask("mutation { refresh { head } }")  # a fetch with the URL's password
        for bad in ("pdg_" + admin[4:-1] + "x", "Basic " + git_password, admin.upper()):
            answers.append(requests.post(server.url + "/graphql", json={"query": "{ models { name } }"},
                                         headers={"Authorization": bad}, timeout=30).text)
        answers.append(requests.post(server.url + "/hooks/git", data=b"{}", headers={"X-Gitlab-Token": "wrong"}, timeout=30).text)
        answers.append(requests.get(server.url + "/metrics", headers=auth, timeout=30).text)
        answers.append(requests.post(server.url + "/v1/completions", headers=auth, timeout=60,
                                     json={"model": "tiny-llama", "prompt": "Hi", "max_tokens": 2}).text)
        # The Git remote going away: a refresh fails and logs why, without the URL's password.
        git.stop()
        ask("mutation { refresh { head } }")
        outputs = [
            pedigree("ledger", "export", "--cache", server.cache, "--ledger", url, "--ledger-password-file", password_file).stdout,
            pedigree("config", "check", "--repo", repo_url, "--ledger", url, "--webhook-secret", webhook).stdout,
            pedigree("keys", "list", "--cache", server.cache).stdout,
        ]
        exported = [json.loads(line) for line in outputs[0].splitlines()]
        assert {row["caller"] for row in exported} >= {"ops"}
        server.process.terminate()
        server.process.wait(timeout=30)
        log = open(server.log.name).read()
        assert "repository" in log and "request" in log
        # The failed refresh was logged with the remote's URL, its password redacted.
        assert f"bot:<redacted>@127.0.0.1:{git.port}" in log, log[-3000:]
        everything = "\n".join([log, *answers, *outputs])
        secrets = [git_password, webhook, admin, reader, postgres.password, AWS["AWS_SECRET_ACCESS_KEY"], AWS["AWS_SESSION_TOKEN"]]
        assert [s for s in secrets if s in everything] == []
    finally:
        git.stop()


def test_hash_privacy_hashes_token_ids_with_the_deployment_salt(demo, make_server):
    """`ledger-text: hash` stores prompts, outputs and token ids as HMAC-SHA256 digests keyed by a
    salt made for this deployment: the same prompt has other digests in another deployment, and
    the plain SHA-256 of a prompt is not in the ledger."""
    import hashlib
    digests = []
    for _ in range(2):
        server = make_server(demo, "--ledger-text", "hash")
        body = server.gql("mutation($input: InferenceInput!) { infer(input: $input) { id } }",
                          {"input": {"modelRevisionID": "tiny-llama", "prompt": "secret plan", "sampling": {"maxTokens": 3, "temperature": 0}}})
        record_id = body["data"]["infer"]["id"]
        salt = open(os.path.join(server.cache, "ledger-salt"), "rb").read()
        assert len(salt) == 32 and oct(os.stat(os.path.join(server.cache, "ledger-salt")).st_mode)[-3:] == "600"
        exported = pedigree("ledger", "export", "--cache", server.cache).stdout
        row = next(json.loads(line) for line in exported.splitlines() if json.loads(line)["id"] == record_id)
        import hmac
        assert row["input"] == "hmac-sha256:" + hmac.new(salt, b"secret plan", hashlib.sha256).hexdigest()
        assert row["completionTokenIDs"].startswith("hmac-sha256:") and "[" not in row["completionTokenIDs"]
        assert hashlib.sha256(b"secret plan").hexdigest() not in exported and "secret plan" not in exported
        digests.append(row["input"])
        replay = server.gql("mutation($id: ID!) { replay(id: $id) { identical } }", {"id": record_id})
        assert error_codes(replay) == ["BAD_USER_INPUT"]
    assert digests[0] != digests[1]
