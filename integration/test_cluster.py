"""Scale-out across hosts, on this machine: the gateway, two inference workers, PostgreSQL (the
ledger, over TLS), a moto S3 remote (the weights) and a llama-server external backend each in a
network namespace of its own, joined by veth links on one bridge (Debian's iproute2). The test
process stays in the first namespace and reaches them over the bridge, as clients would.

Faults are real: SIGKILL, a link set down, latency on the link (`tc netem` where the kernel has
it; otherwise the relay in front of worker 1, `integration/relay.py`, delays every byte), and the
gateway itself killed. `script/test-cluster` runs this file alone (PEDIGREE_CLUSTER_INFERENCES
sets the size of the load)."""
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from support.processes import Moto, Program, answers
from support.secrets import secret
from support.tools import BIN, VENV_BIN, clone_with_remote, pedigree, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="the multi-host test needs root and iproute2 (ip netns): it did not run")

NET = "10.213.0"
BRIDGE = "pdgc-br"
HOSTS = {"gw": 10, "w1": 11, "w2": 12, "pg": 20, "s3": 30, "ext": 40}
INFERENCES = int(os.environ.get("PEDIGREE_CLUSTER_INFERENCES", "200"))
INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id result } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id } } }"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def netns(host):
    return f"pdgc-{host}"


def within(host):
    """The command prefix that runs a program in `host`'s namespace."""
    return ("ip", "netns", "exec", netns(host))


def address(host):
    return f"{NET}.{HOSTS[host]}"


def preferred(md5, urls):
    """The rendezvous rule as documented: highest big-endian first 8 bytes of SHA-256("md5\\nurl")."""
    return max(urls, key=lambda url: int.from_bytes(hashlib.sha256(f"{md5}\n{url}".encode()).digest()[:8], "big"))


def tear_down_network():
    for host in HOSTS:
        ip("netns", "del", netns(host), check=False)
    ip("link", "del", BRIDGE, check=False)


def build_network():
    tear_down_network()  # what a killed earlier run left
    probe = ip("netns", "add", netns("gw"), check=False)
    if probe.returncode != 0 and "Operation not permitted" in probe.stderr:
        pytest.skip(f"ip netns is not permitted here ({probe.stderr.strip()}): the multi-host test did not run")
    ip("netns", "del", netns("gw"), check=False)
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{NET}.1/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for host in HOSTS:
        ip("netns", "add", netns(host))
        ip("link", "add", f"pdgc-{host}", "type", "veth", "peer", "name", "eth0", "netns", netns(host))
        ip("link", "set", f"pdgc-{host}", "master", BRIDGE, "up")
        ip("-n", netns(host), "addr", "add", f"{address(host)}/24", "dev", "eth0")
        ip("-n", netns(host), "link", "set", "eth0", "up")
        ip("-n", netns(host), "link", "set", "lo", "up")


class Process(Program):
    """A program in `host`'s namespace."""

    def __init__(self, host, args, log, ready=None):
        super().__init__(args, log, ready=ready, wrap=within(host))


def start_postgres(root):
    """PostgreSQL in the `pg` namespace, TLS on (a certificate for its address), the ledger
    database; returns the gateway's URL and a function that runs SQL from the test's namespace."""
    import glob
    import pwd
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql): the multi-host test did not run")
    bin_dir = Path(binaries[-1]).parent
    user = pwd.getpwnam("postgres")
    pg = root / "pg"
    pg.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={address('pg')}",
                    "-addext", f"subjectAltName=IP:{address('pg')}", "-keyout", pg / "server.key", "-out", pg / "server.crt"],
                   check=True, capture_output=True)
    os.chmod(pg / "server.key", 0o600)
    for path in (pg, pg / "server.key", pg / "server.crt"):
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(root, 0o755)  # the postgres user passes through

    def as_postgres(*command):
        subprocess.run([*within("pg"), "su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in map(str, command))],
                       check=True, capture_output=True)
    as_postgres(bin_dir / "initdb", "-D", pg / "data", "-U", "pedigree", "--auth=trust", "-E", "UTF8")
    (pg / "data" / "pg_hba.conf").write_text(f"hostssl all pedigree {NET}.0/24 trust\nhost all all 0.0.0.0/0 reject\nlocal all all trust\n")
    as_postgres(bin_dir / "pg_ctl", "-D", pg / "data", "-l", pg / "log", "-w", "-o",
                f"-p 5432 -k {pg} -c listen_addresses={address('pg')} -c ssl=on -c ssl_cert_file={pg}/server.crt "
                f"-c ssl_key_file={pg}/server.key", "start")

    def sql(statement):
        out = subprocess.run(["psql", f"postgresql://pedigree@{address('pg')}:5432/ledger?sslmode=verify-full&sslrootcert={pg}/server.crt",
                              "-At", "-F", "\t", "-c", statement], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]
    subprocess.run(["psql", f"postgresql://pedigree@{address('pg')}:5432/postgres?sslmode=require", "-c", "CREATE DATABASE ledger"],
                   check=True, capture_output=True)
    sql.stop = lambda: as_postgres(bin_dir / "pg_ctl", "-D", pg / "data", "-m", "immediate", "stop")
    return f"postgres://pedigree@{address('pg')}:5432/ledger?sslmode=verify-full&sslrootcert={pg}/server.crt", sql


def artifact(demo, spec):
    facts = json.loads(pedigree("lineage", spec, "--json", "--repo", str(demo)).stdout)["artifact"]
    return facts["md5"], Path(demo) / ".dvc/cache/files/md5" / facts["md5"][:2] / facts["md5"][2:]


class Cluster:
    pass


@pytest.fixture(scope="module")
def cluster(demo):
    root = Path(tempfile.mkdtemp(prefix="pedigree-cluster-"))
    build_network()
    c = Cluster()
    started = []
    try:
        c.ledger_url, c.sql = start_postgres(root)
        moto = Moto(address("s3"), 5000, root / "moto.log", wrap=within("s3"))
        started.append(moto)
        s3 = moto.facts
        secret(s3["secret"])
        # The repository with its weights pushed to S3 by the real dvc (the gateway reads the
        # repository; only the workers fetch weights, with their own credentials).
        repo = clone_with_remote(demo, root / "repo", "s3", "s3://models/store", endpointurl=s3["url"],
                                 access_key_id=s3["key"], secret_access_key=s3["secret"])
        subprocess.run(["cp", "-al", str(demo / ".dvc/cache"), str(repo / ".dvc/cache")], check=True)
        run("dvc", "push", "-q", "-r", "s3", cwd=repo)
        shutil.rmtree(repo / ".dvc/cache")
        dvc_config = root / "worker-dvc-config"
        dvc_config.write_text(f"[core]\n    remote = s3\n['remote \"s3\"']\n    url = s3://models/store\n    endpointurl = {s3['url']}\n"
                              f"    access_key_id = {s3['key']}\n    secret_access_key = {s3['secret']}\n")
        token = root / "worker-token"
        token.write_text(secret("cluster-token-" + os.urandom(12).hex()) + "\n")
        token.chmod(0o600)

        c.md5 = {spec: artifact(demo, spec)[0] for spec in ("smollm2-135m", "tiny-llama")}
        # Worker 1 listens on loopback inside its namespace behind the relay (the stand-in for
        # netem); its public port is chosen so that the two models rank first on different
        # workers (the rule is computed here, as the test's own reading of it).
        c.w2_url = f"http://{address('w2')}:9090"
        port = next(p for p in range(9090, 9500)
                    if preferred(c.md5["smollm2-135m"], [f"http://{address('w1')}:{p}", c.w2_url]).startswith(f"http://{address('w1')}")
                    and preferred(c.md5["tiny-llama"], [f"http://{address('w1')}:{p}", c.w2_url]) == c.w2_url)
        c.w1_url = f"http://{address('w1')}:{port}"
        c.delay_file = root / "delay"
        c.relay = Process("w1", [VENV_BIN / "python", Path(__file__).parent / "relay.py", address("w1"), port, "127.0.0.1", 9191, c.delay_file],
                          root / "relay.log", ready=lambda: subprocess.run([*within("w1"), "bash", "-c", f"echo > /dev/tcp/{address('w1')}/{port}"],
                                                                           capture_output=True).returncode == 0)
        started.append(c.relay)
        auth = {"Authorization": f"Bearer {token.read_text().strip()}"}
        worker_args = ["worker", "--cache", root / "cache-{}", "--worker-token-file", token, "--dvc-config", dvc_config, "--slots", "4",
                       "--threads", "1"]

        def worker(host, listen, port, url):
            args = [BIN, *[str(a).format(host) for a in worker_args], "--host", listen, "--port", port]
            if listen != "127.0.0.1":
                return Process(host, args, root / f"{host}.log", ready=answers(url))
            return Process(host, args, root / f"{host}.log", ready=answers(url, "/worker/v1/status", auth))
        c.w1 = worker("w1", "127.0.0.1", 9191, c.w1_url)
        started.append(c.w1)
        c.w2 = worker("w2", address("w2"), 9090, c.w2_url)
        started.append(c.w2)

        # llama-server for smollm2-135m@v1.0.0's weights (other md5 than main's): the external backend.
        c.ext_md5, ext_file = artifact(demo, "smollm2-135m@v1.0.0")
        c.ext_url = f"http://{address('ext')}:8081"
        c.llama = Process("ext", [Path(__file__).parents[1] / ".deps/llama/bin/llama-server", "-m", ext_file, "--host", address("ext"),
                                  "--port", 8081, "-t", "1", "-c", "2048", "-np", "2", "--metrics"], root / "llama-server.log",
                          ready=answers(c.ext_url, "/health"))
        started.append(c.llama)

        c.gw_cache = root / "gateway"
        c.admin = secret(pedigree("keys", "create", "--name", "ops", "--role", "admin", "--cache", str(c.gw_cache)).stdout.strip().splitlines()[-1])
        c.url = f"http://{address('gw')}:8080"
        c.gateway = Process("gw", [BIN, "serve", "--repo", repo, "--cache", c.gw_cache, "--host", address("gw"), "--port", 8080,
                                   "--worker", c.w1_url, "--worker", c.w2_url, "--worker-token-file", token, "--ledger", c.ledger_url,
                                   "--external-backend", f"name=llama url={c.ext_url} md5={c.ext_md5}"],
                            root / "gateway.log", ready=answers(c.url))
        started.append(c.gateway)
        c.expected = {"smollm2-135m": c.w1_url, "tiny-llama": c.w2_url}
        yield c
    finally:
        for process in reversed(started):
            process.stop()
        try:
            c.sql.stop()
        except Exception:
            pass
        tear_down_network()
        shutil.rmtree(root, ignore_errors=True)


def gql(c, query, variables=None, key="admin", timeout=120):
    headers = {"Authorization": f"Bearer {c.admin}"} if key == "admin" else {}
    return requests.post(c.url + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=timeout).json()


def infer(c, spec, prompt, **sampling):
    body = gql(c, INFER, {"input": {"modelRevisionID": spec, "prompt": prompt, "sampling": {"maxTokens": 4, **sampling}}})
    assert "errors" not in body, body
    return body["data"]["infer"]["id"]


def worker_of(c, record_id):
    rows = c.sql(f"SELECT status, engine FROM inference WHERE id = '{record_id}'")
    assert rows and rows[0][0] == "completed", rows
    return json.loads(rows[0][1]).get("worker")


def test_inferences_go_to_the_worker_their_weights_rank_first_and_replay(cluster):
    c = cluster
    jobs = [(("smollm2-135m", "tiny-llama")[i % 2], f"Item {i}: the weather is", i) for i in range(INFERENCES)]
    # Four at a time: under each worker's four slots, so nothing spills.
    began = time.time()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda job: (job[0], infer(c, job[0], job[1], temperature=0.7, seed=job[2])), jobs))
    rows = {row[0]: row for row in c.sql("SELECT id, status, model, artifact_md5, engine FROM inference")}
    for spec, record_id in ids:
        _, status, model, md5, engine = rows[record_id]
        assert status == "completed" and model == spec and md5 == c.md5[spec]
        assert json.loads(engine)["worker"] == c.expected[spec], (spec, engine)
    assert len({record_id for _, record_id in ids}) == INFERENCES
    print(f"\n{INFERENCES} inferences in {time.time() - began:.1f} s, each on the worker its weights rank first")
    # Replay from the gateway: the same worker, the same token ids.
    for spec, record_id in ids[:6]:
        replay = gql(c, "mutation($id: ID!) { replay(id: $id) { identical sameEngine replay { id } } }", {"id": record_id})["data"]["replay"]
        assert replay["identical"] and replay["sameEngine"], (spec, replay)
        assert worker_of(c, replay["replay"]["id"]) == c.expected[spec]


def start_streams(c, count=4):
    """`count` long generations of smollm2 (worker 1) over SSE; returns their outcomes once each
    has streamed a few tokens."""
    outcomes = [{"tokens": 0} for _ in range(count)]

    def stream(outcome, index):
        try:
            with requests.post(c.url + "/graphql", stream=True, timeout=60, headers={"Accept": "text/event-stream",
                                                                                    "Authorization": f"Bearer {c.admin}"},
                               json={"query": STREAM, "variables": {"input": {"modelRevisionID": "smollm2-135m", "prompt": f"Story {index}:",
                                                                              "sampling": {"temperature": 0.9, "seed": index, "maxTokens": 400}}}}) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:") and line[5:].strip():
                        event = json.loads(line[5:])
                        if event.get("errors"):
                            outcome["error"] = event["errors"][0]["extensions"]["code"]
                        elif event["data"]["inferStream"]["token"] is not None:
                            outcome["tokens"] += 1
                        elif event["data"]["inferStream"]["payload"]:
                            outcome["completed"] = True
        except requests.RequestException as error:
            outcome["error"] = f"connection: {error}"

    threads = [threading.Thread(target=stream, args=(outcome, index)) for index, outcome in enumerate(outcomes)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 60
    while min(o["tokens"] for o in outcomes) < 3:
        assert time.time() < deadline, outcomes
        time.sleep(0.05)
    return outcomes, threads


def failed_since(c, created):
    return c.sql(f"SELECT error FROM inference WHERE status = 'failed' AND created_at >= to_timestamp({created})")


def stream_failures(c, url):
    """The gateway's count of streams broken on the worker at `url` (/metrics)."""
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(c.url + "/metrics", headers={"Authorization": f"Bearer {c.admin}"}, timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "pedigree_worker_stream_failures_total" and sample.labels.get("worker") == url)


def fault(c, inflict, heal, recovery=20):
    """Four streams on worker 1, then `inflict`: each ends with WORKER_UNAVAILABLE and is recorded
    failed (and counted in /metrics); smollm2 is answered by worker 2 within 5 s; after `heal`,
    worker 1 is used again."""
    started = time.time()
    broken = stream_failures(c, c.w1_url)
    outcomes, threads = start_streams(c)
    assert not any("error" in o for o in outcomes), outcomes
    inflict()
    struck = time.time()
    moved = infer(c, "smollm2-135m", "After the fault", temperature=0)
    assert time.time() - struck < 5, f"the first answer after the fault took {time.time() - struck:.1f} s"
    moved_after = time.time() - struck
    assert worker_of(c, moved) == c.w2_url
    for thread in threads:
        thread.join(timeout=30)
    assert [o.get("error") for o in outcomes] == ["WORKER_UNAVAILABLE"] * 4, outcomes
    failed = failed_since(c, started)
    assert len(failed) == 4 and all(error.startswith("WORKER_UNAVAILABLE") for (error,) in failed), failed
    assert stream_failures(c, c.w1_url) == broken + 4
    heal()
    healed = time.time()
    deadline = healed + recovery
    while worker_of(c, infer(c, "smollm2-135m", "Back?", temperature=0)) != c.w1_url:
        assert time.time() < deadline, "worker 1 was not used again"
        time.sleep(0.5)
    print(f"\nfault: streams ended {[o['tokens'] for o in outcomes]} tokens in; answered by worker 2 {moved_after:.2f} s after it; "
          f"worker 1 used again {time.time() - healed:.2f} s after the heal")


def test_a_worker_killed_during_four_streams(cluster):
    c = cluster
    fault(c, c.w1.kill, c.w1.start)


def test_a_worker_link_cut(cluster):
    c = cluster
    fault(c, lambda: ip("-n", netns("w1"), "link", "set", "eth0", "down"), lambda: ip("-n", netns("w1"), "link", "set", "eth0", "up"))


def test_latency_on_a_worker_link(cluster):
    """4 s more on every packet (netem) or byte (the relay): past the gateway's 3 s silence limit."""
    c = cluster
    netem = subprocess.run([*within("w1"), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"], capture_output=True)
    if netem.returncode == 0:
        subprocess.run([*within("w1"), "tc", "qdisc", "del", "dev", "eth0", "root"], check=True)
        inflict = lambda: subprocess.run([*within("w1"), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "4000ms"], check=True)
        heal = lambda: subprocess.run([*within("w1"), "tc", "qdisc", "del", "dev", "eth0", "root"], check=True)
    else:
        print("tc netem: this kernel has no sch_netem; latency added by the relay in front of worker 1")
        inflict = lambda: c.delay_file.write_text("4")
        heal = lambda: c.delay_file.write_text("0")
    fault(c, inflict, heal, recovery=30)


def test_a_gateway_killed_loses_no_completed_record(cluster):
    c = cluster
    completed, lock = [], threading.Lock()

    def one(index):
        try:
            body = gql(c, INFER, {"input": {"modelRevisionID": ("smollm2-135m", "tiny-llama")[index % 2], "prompt": f"Count {index}",
                                            "sampling": {"maxTokens": 6}}}, timeout=30)
        except requests.RequestException:
            return
        if "errors" not in body:
            with lock:
                completed.append(body["data"]["infer"]["id"])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, index) for index in range(60)]
        deadline = time.time() + 60
        while len(completed) < 12:
            assert time.time() < deadline, "no answers before the kill"
            time.sleep(0.05)
        c.gateway.kill()
        concurrent.futures.wait(futures)
    assert 12 <= len(completed) < 60
    print(f"\ngateway killed after {len(completed)} of 60 answers")
    c.gateway.start()
    stored = {row[0]: row[1] for row in c.sql("SELECT id, status FROM inference")}
    assert all(stored.get(record_id) == "completed" for record_id in completed), [i for i in completed if stored.get(i) != "completed"]
    for record_id in completed[:5]:
        assert gql(c, "query($id: ID!) { inference(id: $id) { status } }", {"id": record_id})["data"]["inference"]["status"] == "completed"
    assert worker_of(c, infer(c, "tiny-llama", "Still routing")) == c.w2_url


def test_an_external_backend_in_the_cluster(cluster):
    """smollm2-135m@v1.0.0's weights are llama-server's (in its own namespace): the answer is
    llama-server's, recorded with lineage and engine external:llama; a request without a key never
    reaches it; a cut link gives WORKER_UNAVAILABLE and a failed record."""
    c = cluster

    def prompt_tokens():
        text = requests.get(c.ext_url + "/metrics", timeout=5).text
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith("llamacpp:prompt_tokens_total ")))

    record_id = infer(c, "smollm2-135m@v1.0.0", "The capital of France is", temperature=0, maxTokens=8, seed=5)
    direct = requests.post(c.ext_url + "/v1/completions", timeout=60,
                           json={"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0, "seed": 5}).json()
    record = gql(c, """query($id: ID!) { inference(id: $id) { result artifactMD5 engineFacts { external }
                      modelRevision { commit { sha } datasets { md5 } } } }""", {"id": record_id})["data"]["inference"]
    assert record["result"] == direct["choices"][0]["text"] and record["artifactMD5"] == c.ext_md5
    assert record["engineFacts"]["external"] == "llama" and record["modelRevision"]["datasets"]
    tag = run("git", "-C", str(Path(c.gw_cache).parent / "repo"), "rev-list", "-n", "1", "smollm2-135m@v1.0.0").strip()
    assert record["modelRevision"]["commit"]["sha"] == tag
    before = prompt_tokens()
    refused = gql(c, INFER, {"input": {"modelRevisionID": "smollm2-135m@v1.0.0", "prompt": "No key " * 10}}, key=None)
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and prompt_tokens() == before
    # main's weights still go to worker 1.
    assert worker_of(c, infer(c, "smollm2-135m", "Still on the workers", temperature=0)) == c.w1_url
    ip("-n", netns("ext"), "link", "set", "eth0", "down")
    try:
        cut = gql(c, INFER, {"input": {"modelRevisionID": "smollm2-135m@v1.0.0", "prompt": "Hello", "sampling": {"maxTokens": 2}}})
        assert cut["errors"][0]["extensions"]["code"] == "WORKER_UNAVAILABLE", cut
        rows = c.sql("SELECT status, error, engine FROM inference WHERE artifact_md5 = '%s' ORDER BY created_at DESC LIMIT 1" % c.ext_md5)
        assert rows[0][0] == "failed" and json.loads(rows[0][2])["external"] == "llama", rows
    finally:
        ip("-n", netns("ext"), "link", "set", "eth0", "up")
