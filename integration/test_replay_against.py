"""Replay against another revision: the recorded inputs and sampling run on other weights, and
the answer says whether the tokens are identical and where they first part — checked against the
token ids both records hold in the ledger export."""
import json
import subprocess

from support.processes import Server
from support.tools import BIN, pedigree

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id } }"
REPLAY = "mutation($id: ID!, $against: ID) { replay(id: $id, against: $against) { identical firstDifference replay { id modelRevision { id } } } }"
MANY = """mutation($filter: InferenceFilter, $against: ID!, $sample: Int) { replayMany(filter: $filter, against: $against, sample: $sample) {
  identical differing failed items { id identical firstDifference error replay { replay { id } } } } }"""


def first_difference(a, b):
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def test_replay_against_other_weights_and_the_same(demo, tmp_path):
    server = Server(demo)
    try:
        old = server.data('{ modelRevision(id: "tiny-llama@v1.0.0") { id artifact { md5 } } }')["modelRevision"]
        new = server.data('{ modelRevision(id: "tiny-llama") { id artifact { md5 } } }')["modelRevision"]
        assert old["artifact"]["md5"] != new["artifact"]["md5"]
        ids = []
        for index, sampling in enumerate([{"temperature": 0}, {"temperature": 0.9, "seed": 11}, {"temperature": 0}, {"temperature": 0.9, "seed": 12}]):
            body = server.data(INFER, {"input": {"modelRevisionID": old["id"], "prompt": f"Tell me about number {index}",
                                                 "sampling": {**sampling, "maxTokens": 12}}})
            ids.append(body["infer"]["id"])
        # One against other weights: located where the token ids part.
        answer = server.data(REPLAY, {"id": ids[0], "against": new["id"]})["replay"]
        assert answer["replay"]["modelRevision"]["id"] == new["id"]
        # A batch against the new weights, then against the recorded ones.
        batch = server.data(MANY, {"filter": {"model": "tiny-llama"}, "against": new["id"], "sample": 4})["replayMany"]
        assert batch["identical"] + batch["differing"] + batch["failed"] == 4 and batch["failed"] == 0 and batch["differing"] >= 1
        same = server.data(MANY, {"filter": {"revision": old["id"]}, "against": "tiny-llama@v1.0.0", "sample": 4})["replayMany"]
        assert (same["identical"], same["differing"], same["failed"]) == (4, 0, 0)
        assert {item["id"] for item in same["items"]} == set(ids)
        # The located differences, against the token ids both records hold.
        exported = {row["id"]: row for row in map(json.loads, pedigree("ledger", "export", "--cache", server.cache).stdout.splitlines())}
        for item in batch["items"] + [{"id": ids[0], "identical": answer["identical"], "firstDifference": answer["firstDifference"],
                                        "replay": {"replay": answer["replay"]}}]:
            recorded = json.loads(exported[item["id"]]["completionTokenIDs"])
            replayed = json.loads(exported[item["replay"]["replay"]["id"]]["completionTokenIDs"])
            assert exported[item["replay"]["replay"]["id"]]["revision"] == new["id"]
            assert item["firstDifference"] == first_difference(recorded, replayed), item
            assert item["identical"] == (recorded == replayed)
        # The CLI: one, and a batch as a table or JSON.
        one = subprocess.run([BIN, "replay", ids[0], "--against", "tiny-llama", "--cache", server.cache, "--json"], capture_output=True, text=True)
        assert one.returncode in (0, 3), one.stderr
        assert json.loads(one.stdout)["revision"] == new["id"] and json.loads(one.stdout)["recordedRevision"] == old["id"]
        table = subprocess.run([BIN, "replay", "--against", "tiny-llama@v1.0.0", "--revision", "tiny-llama@v1.0.0", "--sample", "4",
                                "--cache", server.cache], capture_output=True, text=True)
        assert table.returncode == 0, table.stderr
        assert table.stdout.splitlines()[0].startswith(f"replayed 4 against {old['id']}: 4 identical, 0 differ, 0 failed")
        many = subprocess.run([BIN, "replay", "--against", "tiny-llama", "--revision", "tiny-llama@v1.0.0", "--sample", "4", "--json",
                               "--cache", server.cache], capture_output=True, text=True)
        report = json.loads(many.stdout)
        assert many.returncode == (3 if report["differing"] else 0) and report["against"] == new["id"] and len(report["items"]) == 4
    finally:
        server.stop()


def test_a_replay_against_other_weights_is_never_guaranteed(demo, make_server):
    """smollm2's kernels are measured batch-invariant: a replay on its own weights is guaranteed,
    one against other weights (v1.1.0's file differs) runs on the same engine but is not."""
    server = make_server(demo)
    made = server.data(INFER, {"input": {"modelRevisionID": "smollm2-135m@v1.0.0", "prompt": "The capital of France is",
                                         "sampling": {"temperature": 0, "maxTokens": 6}}})["infer"]["id"]
    query = "mutation($id: ID!, $against: ID) { replay(id: $id, against: $against) { identical sameEngine guaranteed } }"
    assert server.data(query, {"id": made})["replay"] == {"identical": True, "sameEngine": True, "guaranteed": True}
    other = server.data(query, {"id": made, "against": "smollm2-135m@v1.1.0"})["replay"]
    assert other["sameEngine"] is True and other["guaranteed"] is False, other
