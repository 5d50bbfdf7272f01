"""Evaluations (`pedigree eval`): a model revision answers every item of the demo's evaluation set
(data/eval/qa.jsonl, tracked by DVC), each answer recorded in the ledger under the evaluation's
id; every scorer's per-item score equals the same metric computed here in Python from the
recorded output, and each summary is their mean; the metrics file is read by the real
`dvc metrics show` and `dvc metrics diff`; `--fail-under` gates with the exit code."""
import json
import re
import string
from collections import Counter

import pytest

from support.tools import pedigree, run

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
