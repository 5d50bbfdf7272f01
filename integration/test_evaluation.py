"""Evaluations (`pedigree eval`): a model revision answers every item of the demo's evaluation set
(data/eval/qa.jsonl, tracked by DVC), each answer recorded in the ledger under the evaluation's
id; every scorer's per-item score equals the same metric computed here in Python from the
recorded output, and each summary is their mean; the metrics file is read by the real
`dvc metrics show` and `dvc metrics diff`; `--fail-under` gates with the exit code."""
import json
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from support.tools import error_codes, pedigree, run

SCORERS = ["exact:lower,punctuation", "contains:lower", "f1", r"regex:\d", "json", "numeric:0", "length"]


def normalise(text, lower=False, punctuation=False):
    if lower:
        text = text.lower()
    if punctuation:
        text = "".join(c for c in text if c not in string.punctuation)
    return text.strip()


def squad_f1(prediction, truth):
    def tokens(text):
        text = "".join(c for c in text.lower() if c not in string.punctuation)
        return [t for t in text.split() if t not in ("a", "an", "the")]
    p, t = tokens(prediction), tokens(truth)
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def python_scores(output, expected):
    """What each of SCORERS gives an output, computed independently (None: does not apply)."""
    acceptable = [expected] if isinstance(expected, str) else (expected if all(isinstance(e, str) for e in expected) else [json.dumps(expected)])
    number = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", output)
    try:
        json.loads(output.strip())
        valid = 1
    except ValueError:
        valid = 0
    try:
        want = float(expected) if isinstance(expected, (str, int, float)) else None
    except ValueError:
        want = None
    return {
        "exact:lower,punctuation": float(any(normalise(output, True, True) == normalise(e, True, True) for e in acceptable)),
        "contains:lower": float(any(normalise(e, lower=True) in normalise(output, lower=True) for e in acceptable)),
        "f1": max(squad_f1(output, e) for e in acceptable),
        r"regex:\d": float(re.search(r"\d", output) is not None),
        "json": float(valid),
        "numeric:0": None if want is None else float(number is not None and abs(float(number.group()) - want) <= 0),
        "length": float(len(output)),
    }


def evaluate(demo, cache, spec, *extra, check=True):
    args = ["eval", spec, "--repo", str(demo), "--cache", str(cache), "--dataset", "data/eval/qa.jsonl@main", "--max-tokens", "16", "--json"]
    for scorer in SCORERS:
        args += ["--scorer", scorer]
    return pedigree(*args, *extra, check=check, timeout=600)


@pytest.fixture(scope="module")
def evaluations(demo, tmp_path_factory):
    """tiny-llama at two revisions and smollm2, each over the whole set, on one cache (and ledger)."""
    cache = tmp_path_factory.mktemp("eval-cache")
    out = tmp_path_factory.mktemp("eval-out")
    reports = {}
    for name, spec in [("tiny-v1.0", "tiny-llama@v1.0.0"), ("tiny-v1.1", "tiny-llama@v1.1.0"), ("smollm2", "smollm2-135m")]:
        result = evaluate(demo, cache, spec, "--metrics-out", str(out / f"{name}.json"))
        reports[name] = json.loads(result.stdout)
    return cache, out, reports


def test_every_item_is_answered_recorded_and_scored_as_python_scores_it(demo, evaluations):
    cache, _, reports = evaluations
    lines = [json.loads(line) for line in (demo / "data/eval/qa.jsonl").read_text().splitlines() if line.strip()]
    assert len(lines) >= 20 and all("expected" in line for line in lines)
    ledger = [json.loads(line) for line in pedigree("ledger", "export", "--repo", str(demo), "--cache", str(cache)).stdout.splitlines()]
    by_id = {record["id"]: record for record in ledger}
    for name, report in reports.items():
        assert report["dataset"] == "data/eval/qa.jsonl" and report["bad_lines"] == []
        assert [item["id"] for item in report["items"]] == [line["id"] for line in lines]
        for item, line in zip(report["items"], lines):
            assert item["error"] is None, item
            record = by_id[item["inference_id"]]  # in the ledger, under the evaluation's id and the item's
            assert record["requestID"] == f"eval-{report['id']}#{item['id']}" and record["output"] == item["output"]
            expected = python_scores(item["output"], line["expected"])
            for scorer in SCORERS:
                assert item["scores"][scorer] == pytest.approx(expected[scorer], abs=1e-12) if expected[scorer] is not None \
                    else item["scores"][scorer] is None, (name, item, scorer)
        for scorer in SCORERS:
            values = [item["scores"][scorer] for item in report["items"] if item["scores"][scorer] is not None]
            assert report["scores"][scorer] == pytest.approx(sum(values) / len(values), abs=1e-12), (name, scorer)
    # The same weights answer the same (greedy, seed 0): tiny-llama's two revisions differ in weights.
    assert reports["smollm2"]["scores"]["contains:lower"] > reports["tiny-v1.0"]["scores"]["contains:lower"]


def test_metrics_are_read_by_dvc_and_fail_under_gates(demo, evaluations, tmp_path):
    cache, out, reports = evaluations
    workspace = tmp_path / "metrics-repo"
    workspace.mkdir()
    run("git", "init", "-q", cwd=workspace)
    run("dvc", "init", "-q", cwd=workspace)
    metrics = workspace / "metrics.json"
    metrics.write_text((out / "tiny-v1.0.json").read_text())
    run("git", "add", "-A", cwd=workspace)
    run("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "baseline", cwd=workspace)
    shown = json.loads(run("dvc", "metrics", "show", "--json", "metrics.json", cwd=workspace))
    (workspace_metrics,) = shown.values()
    assert workspace_metrics["data"]["metrics.json"]["data"]["scores"] == reports["tiny-v1.0"]["scores"]
    assert workspace_metrics["data"]["metrics.json"]["data"]["items"] == len(reports["tiny-v1.0"]["items"])
    metrics.write_text((out / "smollm2.json").read_text())
    diff = json.loads(run("dvc", "metrics", "diff", "--json", "--targets", "metrics.json", cwd=workspace))["metrics.json"]
    assert diff["scores.contains:lower"]["old"] == reports["tiny-v1.0"]["scores"]["contains:lower"]
    assert diff["scores.contains:lower"]["new"] == reports["smollm2"]["scores"]["contains:lower"]
    # The gate: under the threshold exits 1 naming the scorer; at or over it, 0.
    mean = reports["smollm2"]["scores"]["contains:lower"]
    failing = evaluate(demo, cache, "smollm2-135m", "--fail-under", f"contains:lower={mean + 0.01}", check=False)
    assert failing.returncode == 1 and "FAIL contains:lower" in failing.stderr
    passing = evaluate(demo, cache, "smollm2-135m", "--fail-under", f"contains:lower={mean}", check=False)
    assert passing.returncode == 0, passing.stderr
    assert json.loads(passing.stdout)["scores"] == reports["smollm2"]["scores"]  # the same answers again
    refused = pedigree("eval", "smollm2-135m", "--repo", str(demo), "--cache", str(cache), "--dataset", "data/eval/missing.jsonl", check=False)
    assert refused.returncode != 0 and "missing.jsonl" in refused.stderr


def test_a_killed_evaluation_resumes_without_answering_an_item_twice(demo, evaluations, tmp_path):
    """Killed part way (SIGKILL) and run again on the same cache: the second run reuses the answers
    the first recorded, asks only the rest, and its result equals an uninterrupted run's."""
    import signal
    import sqlite3
    import subprocess
    import time
    from support.tools import BIN, ENV
    _, _, reports = evaluations
    cache = tmp_path / "cache"
    args = [BIN, "eval", "smollm2-135m", "--repo", str(demo), "--cache", str(cache), "--dataset", "data/eval/qa.jsonl@main",
            "--max-tokens", "16", "--concurrency", "1", "--json"] + [arg for scorer in SCORERS for arg in ("--scorer", scorer)]
    process = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger = cache / "ledger.sqlite"
    deadline = time.time() + 300
    recorded = 0
    while time.time() < deadline and process.poll() is None:
        if ledger.exists():
            try:
                with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
                    recorded = db.execute("SELECT count(*) FROM inference").fetchone()[0]
            except sqlite3.OperationalError:
                recorded = 0
        if recorded >= 6:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the evaluation ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = pedigree(*[str(a) for a in args[1:]], timeout=600)
    report = json.loads(resumed.stdout)
    assert 6 <= report["reused"] < len(report["items"]), report["reused"]
    assert report["id"] == reports["smollm2"]["id"]  # the same evaluation (revision, set md5, sampling)
    records = [json.loads(line) for line in pedigree("ledger", "export", "--repo", str(demo), "--cache", str(cache)).stdout.splitlines()]
    answered = Counter(record["requestID"] for record in records if record["status"] == "completed")
    assert sorted(answered) == sorted(f"eval-{report['id']}#{item['id']}" for item in report["items"])
    assert set(answered.values()) == {1}  # no item answered twice
    assert [(item["id"], item["output"], item["scores"]) for item in report["items"]] == \
        [(item["id"], item["output"], item["scores"]) for item in reports["smollm2"]["items"]]
    assert report["scores"] == reports["smollm2"]["scores"]
    fresh = json.loads(pedigree(*[str(a) for a in args[1:]], "--fresh", timeout=600).stdout)
    assert fresh["reused"] == 0 and fresh["id"] != report["id"] and fresh["scores"] == report["scores"]


EVALUATE = """mutation($input: EvaluateInput!) { evaluate(input: $input) {
  id reused modelRevision { id } dataset { path commit md5 } scores { scorer mean count failures }
  items { id line inferenceID output finishReason error scores { scorer value } } badLines { line reason } } }"""


def test_graphql_evaluate_gives_the_clis_evaluation(server, demo, evaluations):
    """The `evaluate` mutation runs the same evaluation as the CLI (the same id: revision, set and
    sampling) on the server's engine: SmolLM2 (Q4_1, whose kernels give a row the same bits
    whatever runs beside it) answers as the CLI did, and every score is Python's; a second call
    reuses every answer."""
    _, _, reports = evaluations
    cli = reports["smollm2"]
    lines = {json.loads(line)["id"]: json.loads(line) for line in (demo / "data/eval/qa.jsonl").read_text().splitlines() if line.strip()}
    variables = {"input": {"modelRevisionID": "smollm2-135m", "dataset": "data/eval/qa.jsonl", "datasetRevision": "main",
                           "scorers": SCORERS, "sampling": {"maxTokens": 16}}}
    first = server.data(EVALUATE, variables)["evaluate"]
    assert first["id"] == cli["id"] and first["modelRevision"]["id"] == cli["revision"] and first["badLines"] == []
    assert first["dataset"] == {"path": "data/eval/qa.jsonl", "commit": cli["dataset_commit"], "md5": cli["dataset_md5"]}
    for item in first["items"]:
        expected = python_scores(item["output"], lines[item["id"]]["expected"])
        assert {s["scorer"]: s["value"] for s in item["scores"]} == pytest.approx(expected, abs=1e-12), item
    assert [(i["id"], i["output"]) for i in first["items"]] == [(i["id"], i["output"]) for i in cli["items"]]
    assert {s["scorer"]: s["mean"] for s in first["scores"]} == pytest.approx(cli["scores"], abs=1e-12)
    again = server.data(EVALUATE, variables)["evaluate"]
    assert again["reused"] == len(again["items"]) and again["scores"] == first["scores"]
    assert [i["inferenceID"] for i in again["items"]] == [i["inferenceID"] for i in first["items"]]
    refused = server.gql(EVALUATE, {"input": {**variables["input"], "scorers": ["bogus"]}})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


COMPARE = """query($a: ID!, $b: ID!) { compareEvaluations(a: $a, b: $b) {
  a { id } b { id } scores { scorer a b delta } unchanged unmatched
  items { id line change firstDifference { index a b }
    a { inferenceID output scores { scorer value } } b { inferenceID output scores { scorer value } } }
  lineage { related artifactChanged a { id } b { id } } } }"""

STORED = """query($id: ID!) { evaluation(id: $id) { id status total done failed createdAt sampling modelRevision { id }
  scores { scorer mean count failures } items { id line inferenceID output finishReason error scores { scorer value } } } }"""


def item_scores(item):
    """An item's scores by scorer, without the timings (they differ from run to run)."""
    return {s["scorer"]: s["value"] for s in item["scores"] if s["scorer"] not in ("ttft", "tps")}


@pytest.fixture(scope="module")
def tiny_evaluations(server):
    """tiny-llama at v1.0.0 and v1.1.0 evaluated on the shared server."""
    runs = []
    for spec in ("tiny-llama@v1.0.0", "tiny-llama@v1.1.0"):
        variables = {"input": {"modelRevisionID": spec, "dataset": "data/eval/qa.jsonl", "scorers": SCORERS, "sampling": {"maxTokens": 16}}}
        runs.append(server.data(EVALUATE, variables)["evaluate"])
    return runs


def test_a_stored_evaluation_reads_back_as_it_ran(server, tiny_evaluations):
    for ran in tiny_evaluations:
        stored = server.data(STORED, {"id": ran["id"]})["evaluation"]
        assert stored["status"] == "COMPLETED" and stored["total"] == stored["done"] == len(ran["items"]) and stored["failed"] == 0
        assert stored["scores"] == ran["scores"] and stored["modelRevision"] == ran["modelRevision"]
        assert json.loads(stored["sampling"])["maxTokens"] == 16
        assert [(i["id"], i["output"], i["inferenceID"], i["scores"]) for i in stored["items"]] == \
            [(i["id"], i["output"], i["inferenceID"], i["scores"]) for i in ran["items"]]
    history = server.data("{ evaluations(model: \"tiny-llama\") { id modelRevision { id } } }")["evaluations"]
    assert {e["id"] for e in history} >= {ran["id"] for ran in tiny_evaluations}
    assert server.data(STORED, {"id": "ev000000000000000000000000"})["evaluation"] is None


def test_compare_evaluations_lists_exactly_the_items_whose_scores_differ(server, demo, tiny_evaluations):
    a, b = tiny_evaluations
    comparison = server.data(COMPARE, {"a": a["id"], "b": b["id"]})["compareEvaluations"]
    b_items = {item["id"]: item for item in b["items"]}
    differ = [item["id"] for item in a["items"] if item_scores(item) != item_scores(b_items[item["id"]])]
    assert differ, "the two revisions' weights differ: some scores must too"
    assert sorted(item["id"] for item in comparison["items"]) == sorted(differ)
    assert comparison["unchanged"] == len(a["items"]) - len(differ) and comparison["unmatched"] == 0
    kinds = ["REGRESSED", "IMPROVED", "CHANGED"]
    for item in comparison["items"]:
        old, new = item_scores(item["a"]), item_scores(item["b"])
        directed = [s for s in SCORERS if s != "length" and old[s] is not None and new[s] is not None]
        fell, rose = any(new[s] < old[s] for s in directed), any(new[s] > old[s] for s in directed)
        assert item["change"] == ("REGRESSED" if fell and not rose else "IMPROVED" if rose and not fell else "CHANGED"), item
    assert [item["change"] for item in comparison["items"]] == sorted((item["change"] for item in comparison["items"]), key=kinds.index)
    # The first differing token, from the token ids the ledger exports.
    export = {record["id"]: record for record in map(json.loads, pedigree(
        "ledger", "export", "--repo", str(demo), "--cache", server.cache).stdout.splitlines())}
    for item in comparison["items"]:
        tokens_a = json.loads(export[item["a"]["inferenceID"]]["completionTokenIDs"])
        tokens_b = json.loads(export[item["b"]["inferenceID"]]["completionTokenIDs"])
        if tokens_a == tokens_b:
            assert item["firstDifference"] is None
            continue
        index = next((k for k, (x, y) in enumerate(zip(tokens_a, tokens_b)) if x != y), min(len(tokens_a), len(tokens_b)))
        assert item["firstDifference"] == {"index": index, "a": tokens_a[index] if index < len(tokens_a) else None,
                                           "b": tokens_b[index] if index < len(tokens_b) else None}
    means_a = {s["scorer"]: s["mean"] for s in a["scores"]}
    means_b = {s["scorer"]: s["mean"] for s in b["scores"]}
    for delta in comparison["scores"]:
        assert delta["a"] == means_a[delta["scorer"]] and delta["b"] == means_b[delta["scorer"]]
        assert delta["delta"] == pytest.approx(delta["b"] - delta["a"], abs=1e-12)
    assert comparison["lineage"]["a"]["id"] == a["modelRevision"]["id"] and comparison["lineage"]["b"]["id"] == b["modelRevision"]["id"]
    assert comparison["lineage"]["artifactChanged"] is True
    only_regressed = server.data(COMPARE.replace("items {", "items(change: \"REGRESSED\") {"), {"a": a["id"], "b": b["id"]})
    assert [i["id"] for i in only_regressed["compareEvaluations"]["items"]] == \
        [i["id"] for i in comparison["items"] if i["change"] == "REGRESSED"]
    refused = server.gql(COMPARE, {"a": a["id"], "b": "ev000000000000000000000000"})
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_a_killed_server_resumes_an_evaluation_and_a_running_one_can_be_cancelled(make_server, demo, evaluations, tmp_path):
    """The server is killed (SIGKILL) while `evaluate` runs; the same mutation after the restart
    reuses what was recorded, answers only the rest (no item twice), and equals the CLI's
    uninterrupted run. Then a running evaluation is cancelled: stored CANCELLED part way, and a
    rerun completes it."""
    import sqlite3
    import threading
    import time
    _, _, reports = evaluations
    server = make_server(demo)
    ledger = Path(server.cache) / "ledger.sqlite"
    variables = {"input": {"modelRevisionID": "smollm2-135m", "dataset": "data/eval/qa.jsonl", "datasetRevision": "main",
                           "scorers": SCORERS, "sampling": {"maxTokens": 16}, "concurrency": 1}}
    import requests

    def post(body, into=None):
        try:
            answer = requests.post(server.url + "/graphql", json=body, timeout=300).json()
            if into is not None:
                into.update(answer)
        except requests.RequestException:
            pass  # the server was killed under it
    threading.Thread(target=post, args=({"query": EVALUATE, "variables": variables},), daemon=True).start()

    def recorded():
        try:
            with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
                return db.execute("SELECT count(*) FROM inference").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
    deadline = time.time() + 300
    while recorded() < 6 and time.time() < deadline:
        time.sleep(0.05)
    assert 6 <= recorded() < 24
    server.restart(kill=True)
    resumed = server.data(EVALUATE, variables)["evaluate"]
    cli = reports["smollm2"]
    assert resumed["id"] == cli["id"] and 6 <= resumed["reused"] < len(resumed["items"])
    assert [(i["id"], i["output"]) for i in resumed["items"]] == [(i["id"], i["output"]) for i in cli["items"]]
    records = [json.loads(line) for line in pedigree("ledger", "export", "--repo", str(demo), "--cache", server.cache).stdout.splitlines()]
    answered = Counter(record["requestID"] for record in records if record["status"] == "completed")
    assert set(answered.values()) == {1} and len(answered) == len(cli["items"])  # no item answered twice
    # Cancel: a slower evaluation (64 tokens, one at a time) is found running and stopped.
    slow = {"input": {**variables["input"], "sampling": {"maxTokens": 64}}}
    result = {}
    worker = threading.Thread(target=post, args=({"query": EVALUATE, "variables": slow}, result), daemon=True)
    worker.start()
    running = []
    while not running and time.time() < deadline:
        running = [e for e in server.data("{ evaluations(model: \"smollm2-135m\") { id status done } }")["evaluations"] if e["status"] == "RUNNING"]
        time.sleep(0.05)
    (evaluation,) = running
    # Two watchers of its progress at once (each subscription its own stream), each seeing it move.
    watchers = [requests.post(server.url + "/graphql", stream=True, timeout=120, headers={"Accept": "text/event-stream"},
                              json={"query": "subscription($id: ID!) { evaluationProgress(id: $id) { id total done finished } }",
                                    "variables": {"id": evaluation["id"]}}) for _ in range(2)]
    streams = [watcher.iter_lines(decode_unicode=True) for watcher in watchers]
    for lines in streams:
        first = json.loads(next(line for line in lines if line.startswith("data:"))[5:])["data"]["evaluationProgress"]
        assert first["id"] == evaluation["id"] and first["total"] == 24 and not first["finished"]
    assert server.data("mutation($id: ID!) { cancelEvaluation(id: $id) }", {"id": evaluation["id"]})["cancelEvaluation"] is True
    for watcher, lines in zip(watchers, streams):  # the stream ends with the run: its last event says so
        events = [json.loads(line[5:])["data"]["evaluationProgress"] for line in lines
                  if line.startswith("data:") and "evaluationProgress" in line]
        assert events and events[-1]["finished"] is True
        watcher.close()
    worker.join(timeout=120)
    assert result["data"]["evaluate"]["id"] == evaluation["id"]
    stored = server.data(STORED, {"id": evaluation["id"]})["evaluation"]
    assert stored["status"] == "CANCELLED" and 0 < stored["done"] < stored["total"], stored["done"]
    assert all(item["error"] is None for item in stored["items"])
    again = server.data(EVALUATE, slow)["evaluate"]
    assert again["id"] == evaluation["id"] and again["reused"] == stored["done"] and len(again["items"]) == stored["total"]
    metrics = requests.get(server.url + "/metrics", timeout=30).text
    answered = sum(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("pedigree_evaluation_items_total") and 'outcome="answered"' in line)
    assert answered >= len(again["items"]) and re.search(r"^pedigree_evaluations_running(\{\})? 0(\.0)?$", metrics, re.M), metrics[-2000:]
    assert server.data(STORED, {"id": evaluation["id"]})["evaluation"]["status"] == "COMPLETED"


PROMOTE = """mutation($input: PromoteInput!) { promote(input: $input) { tags modelRevision { id commit { sha } }
  evaluation { id } model { stages versions } } }"""


def test_promote_gates_on_an_evaluation_and_writes_the_tag_gto_writes(make_server, demo, tmp_path):
    """`promote` on a server mirroring a bare clone of the demo: with a failing gate it writes no tag;
    with a passing one it writes the tag `gto assign` writes in a clone (name, target, message),
    pushes it to the source (where `gto show` reads it), and the server resolves the stage at once;
    an infer key is refused."""
    from test_access import create_key, post
    source = tmp_path / "source.git"  # a remote is bare (libgit2 pushes to no checked-out local repository)
    run("git", "clone", "-q", "--bare", str(demo), str(source))
    oracle = tmp_path / "oracle"
    run("git", "clone", "-q", str(source), str(oracle))
    run("git", "fetch", "-q", "origin", "refs/tags/*:refs/tags/*", cwd=oracle)
    identity = {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.com"}
    import subprocess
    from support.tools import ENV
    subprocess.run(["gto", "assign", "tiny-llama", "--version", "v1.1.0", "--stage", "prod"], cwd=oracle, env={**ENV, **identity},
                   check=True, capture_output=True)
    (expected_tag,) = [t for t in run("git", "tag", "-l", "tiny-llama#prod#*", cwd=oracle).split() if t not in
                       run("git", "tag", "-l", "tiny-llama#prod#*", cwd=source).split()]

    def tag_facts(repo, name):
        return run("git", "for-each-ref", f"refs/tags/{name}", "--format=%(objecttype) %(*objectname) %(contents:subject)", cwd=repo).strip()

    server = make_server(source)
    admin = create_key(server.cache, "operator", "admin")
    infer = create_key(server.cache, "client", "infer")
    v11 = post(server, admin, "{ modelRevision(id: \"tiny-llama@v1.1.0\") { id commit { sha } } }").json()["data"]["modelRevision"]
    before = post(server, admin, "{ modelRevision(id: \"tiny-llama#prod\") { commit { sha } } }").json()["data"]["modelRevision"]
    assert before["commit"]["sha"] != v11["commit"]["sha"]
    evaluated = post(server, admin, EVALUATE, {"input": {"modelRevisionID": "tiny-llama@v1.1.0", "dataset": "data/eval/qa.jsonl",
                                                          "scorers": ["contains:lower", "length"], "sampling": {"maxTokens": 8}}}).json()
    evaluation = evaluated["data"]["evaluate"]
    mean = next(s["mean"] for s in evaluation["scores"] if s["scorer"] == "contains:lower")
    tags_before = run("git", "tag", "-l", cwd=source)

    def promote(key, minimum, **extra):
        return post(server, key, PROMOTE, {"input": {"model": "tiny-llama", "stage": "prod", **extra, "requireEvaluation": {
            "id": evaluation["id"], "failUnder": [{"scorer": "contains:lower", "min": minimum}]}}}).json()

    failing = promote(admin, mean + 0.01)
    assert error_codes(failing) == ["FAILED_PRECONDITION"] and "contains:lower" in failing["errors"][0]["message"]
    assert run("git", "tag", "-l", cwd=source) == tags_before
    assert error_codes(promote(infer, mean)) == ["FORBIDDEN"]
    assert error_codes(promote(admin, mean, model="smollm2-135m")) == ["BAD_USER_INPUT"]  # not the evaluated model
    assert run("git", "tag", "-l", cwd=source) == tags_before
    passed = promote(admin, mean)
    assert "errors" not in passed, passed
    passed = passed["data"]["promote"]
    assert passed["tags"] == [expected_tag] and passed["modelRevision"]["id"] == v11["id"] and "prod" in passed["model"]["stages"]
    # In the source, as gto would have written it; gto reads it from a fresh clone.
    assert tag_facts(source, expected_tag) == tag_facts(oracle, expected_tag)
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(source), str(clone))
    shown = json.loads(run("gto", "show", "tiny-llama", "--json", cwd=clone))
    (version,) = [v for v in shown if v["version"] == "v1.1.0"]
    assert any(stage["stage"] == "prod" and stage["ref"] == expected_tag for stage in version["stages"]), version["stages"]
    # The server resolves the stage to the new commit without a restart or a refresh.
    after = post(server, admin, "{ modelRevision(id: \"tiny-llama#prod\") { commit { sha } } }").json()["data"]["modelRevision"]
    assert after["commit"]["sha"] == v11["commit"]["sha"]
    again = promote(admin, mean)
    assert error_codes(again) == ["INVALID_REVISION"] and "already" in again["errors"][0]["message"]
    for hostile in ("v1.0.0-a!", "v1.0.0-a#prod#99", "1.2.0", "v1.2.0-é"):  # a version becomes a tag name: GTO's own events refused
        refused = promote(admin, mean, version=hostile, stage=None)
        assert error_codes(refused) == ["INVALID_REVISION"], (hostile, refused)
    assert run("git", "tag", "-l", cwd=source).split() == sorted(tags_before.split() + [expected_tag])


def test_the_evaluation_and_comparison_pages_show_graphqls_numbers(server, tiny_evaluations, tmp_path):
    """In headless Chromium: an evaluation's page shows each scorer's mean and every item's scores
    as GraphQL gives them, each item linking to its inference; the comparison page shows the score
    deltas and the differing items of compareEvaluations, in its order; the model's page charts
    its evaluations (SVG)."""
    from support.browser import Browser, chromium_path
    assert chromium_path(), "chromium is not installed (script/bootstrap installs Debian's chromium)"
    a, b = tiny_evaluations
    comparison = server.data(COMPARE, {"a": a["id"], "b": b["id"]})["compareEvaluations"]
    number = lambda value, signed=False: "—" if value is None else (f"{value:+.4f}" if signed else f"{value:.4f}")
    cells = "Array.from(document.querySelectorAll('{} tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent))"
    browser = Browser()
    try:
        browser.goto(server.url + f"/ui/evaluations/{a['id']}")
        assert [row[:2] for row in browser.evaluate(cells.format("#scores"))] == [[s["scorer"], number(s["mean"])] for s in a["scores"]]
        shown = {row[0]: row for row in browser.evaluate(cells.format("#items"))}
        assert len(shown) == len(a["items"])
        for item in a["items"]:
            assert shown[item["id"]][4:] == [number(s["value"]) for s in item["scores"]], item["id"]
        links = browser.evaluate("Array.from(document.querySelectorAll('#items tbody a')).map(a => a.getAttribute('href'))")
        assert sorted(links) == sorted(f"/ui/inferences/{item['inferenceID']}" for item in a["items"])
        browser.screenshot(tmp_path / "evaluation.png")
        browser.goto(server.url + f"/ui/evaluations/{a['id']}/compare/{b['id']}")
        assert browser.evaluate(cells.format("#deltas")) == [
            [d["scorer"], number(d["a"]), number(d["b"]), number(d["delta"], signed=True)] for d in comparison["scores"]]
        changes = browser.evaluate(cells.format("#changes"))
        assert [(row[0], row[1]) for row in changes] == [(i["id"], i["change"].lower()) for i in comparison["items"]]
        assert browser.evaluate("document.getElementById('differing').textContent") == str(len(comparison["items"]))
        browser.screenshot(tmp_path / "comparison.png")
        browser.goto(server.url + "/ui/models/tiny-llama")
        assert browser.evaluate("document.querySelectorAll('#evaluation-charts svg polyline').length") >= 1
        listed = browser.evaluate("Array.from(document.querySelectorAll('#evaluations tbody tr td:first-child')).map(c => c.textContent)")
        assert {a["id"], b["id"]} <= set(listed)
        browser.screenshot(tmp_path / "model-evaluations.png")
        assert browser.console_errors == []
    finally:
        browser.close()


def test_the_schema_scorer_agrees_with_jsonschema(server):
    """Answers constrained to one JSON Schema (temperature 1, so they vary) scored against five
    others with `schema:`: each item's score equals Python jsonschema's verdict (Draft 2020-12) on
    the recorded answer."""
    from jsonschema import Draft202012Validator
    constraint = {"type": "object", "properties": {"n": {"type": "integer", "minimum": -1000, "maximum": 1000},
                                                   "s": {"type": "string", "maxLength": 8}, "b": {"type": "boolean"}},
                  "required": ["n", "s", "b"], "additionalProperties": False}
    schemas = [
        {"type": "object", "properties": {"n": {"minimum": 0}}},
        {"properties": {"s": {"pattern": "^[a-z]"}}, "required": ["s"]},
        {"anyOf": [{"properties": {"b": {"const": True}}}, {"properties": {"n": {"multipleOf": 2}}}]},
        {"properties": {"s": {"minLength": 3}, "n": {"exclusiveMaximum": 100}}, "not": {"required": ["x"]}, "maxProperties": 3},
        {"oneOf": [{"properties": {"n": {"type": "integer", "maximum": 10}}}, {"properties": {"b": {"enum": [False]}}}]},
    ]
    scorers = [f"schema:{json.dumps(schema)}" for schema in schemas] + ["json"]
    variables = {"input": {"modelRevisionID": "smollm2-135m", "dataset": "data/eval/qa.jsonl", "scorers": scorers,
                           "sampling": {"maxTokens": 64, "temperature": 1.0, "seed": 5},
                           "constraint": {"type": "json_schema", "schema": json.dumps(constraint)}}}
    evaluation = server.data(EVALUATE, variables)["evaluate"]
    seen = set()
    for item in evaluation["items"]:
        scores = {s["scorer"]: s["value"] for s in item["scores"]}
        try:
            answer = json.loads(item["output"].strip())
        except ValueError:
            answer = None
        for scorer, schema in zip(scorers, schemas):
            expected = 0.0 if answer is None else float(Draft202012Validator(schema).is_valid(answer))
            assert scores[scorer] == expected, (item["output"], schema)
            seen.add((scorer, expected))
    assert len(seen) > len(schemas), "every schema gave every answer the same verdict: the test could not fail"
    refused = server.gql(EVALUATE, {"input": {**variables["input"], "scorers": ['schema:{"$ref": "#/x"}']}})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and "$ref" in refused["errors"][0]["message"]


def verdict(text):
    """A judge's verdict as the judge scorer reads it (first word yes/no and kin, else a number)."""
    words = [w.strip(".") for w in re.split(r"[^0-9a-z.]+", text.lower()) if w]
    if words and words[0] in ("yes", "correct", "true", "right"):
        return 1.0
    if words and words[0] in ("no", "incorrect", "false", "wrong"):
        return 0.0
    number = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)
    if not number or float(number.group()) < 0:
        return None
    value = float(number.group())
    return value if value <= 1 else value / 10 if value <= 10 else None


def test_a_judge_model_grades_every_answer_and_is_recorded_with_its_lineage(server, demo):
    """`judge:smollm2-135m` grades tiny-llama's answers: each item's judge score is the verdict in
    the judge's own recorded answer (found in the ledger under the item's request id, with the
    judge's revision and a prompt holding the graded answer); a second run reuses the verdicts."""
    smollm2 = server.data('{ modelRevision(id: "smollm2-135m") { id } }')["modelRevision"]["id"]
    variables = {"input": {"modelRevisionID": "tiny-llama@v1.1.0", "dataset": "data/eval/qa.jsonl",
                           "scorers": ["judge:smollm2-135m", "length"], "sampling": {"maxTokens": 6}}}
    evaluation = server.data(EVALUATE, variables)["evaluate"]
    records = [json.loads(line) for line in pedigree("ledger", "export", "--repo", str(demo), "--cache", server.cache).stdout.splitlines()]
    judged = {r["requestID"].split("#")[1]: r for r in records
              if (r.get("requestID") or "").startswith(f"eval-{evaluation['id']}#") and "#judge-" in r["requestID"]}
    assert len(judged) == len(evaluation["items"])
    for item in evaluation["items"]:
        record = judged[item["id"]]
        assert record["revision"] == smollm2 and record["inputKind"] == "messages" and record["status"] == "completed"
        assert item["output"] in json.loads(record["input"])[0]["content"]
        score = {s["scorer"]: s["value"] for s in item["scores"]}["judge:smollm2-135m"]
        assert score == verdict(record["output"]), (record["output"], score)
    judge_scores = [{s["scorer"]: s["value"] for s in item["scores"]}["judge:smollm2-135m"] for item in evaluation["items"]]
    assert any(score is not None for score in judge_scores), [judged[i["id"]]["output"] for i in evaluation["items"]]
    again = server.data(EVALUATE, variables)["evaluate"]
    assert again["reused"] == len(again["items"]) and again["scores"] == evaluation["scores"]
    recount = [json.loads(line) for line in pedigree("ledger", "export", "--repo", str(demo), "--cache", server.cache).stdout.splitlines()]
    assert len(recount) == len(records)  # nobody asked again: answers and verdicts read back
    bad = server.gql(EVALUATE, {"input": {**variables["input"], "judgeTemplate": "no placeholder"}})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
