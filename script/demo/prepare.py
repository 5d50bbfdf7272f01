"""Stage `prepare`: keeps chat examples long enough to train on (params: prepare.min_length)."""
import json
import yaml

params = yaml.safe_load(open("params.yaml"))["prepare"]
kept = []
with open("data/raw/chat.jsonl") as source:
    for line in source:
        record = json.loads(line)
        if len(record["prompt"]) + len(record["response"]) >= params["min_length"]:
            kept.append(record)
import os
os.makedirs("data/prepared", exist_ok=True)
with open("data/prepared/train.jsonl", "w") as out:
    for record in kept:
        out.write(json.dumps(record, sort_keys=True) + "\n")
print(f"prepared {len(kept)} examples")
