"""Writes the seed corpora of script/fuzz into Fuzz/corpus/<target>/ from the demo repository
(metadata files, tags, revision specs, queries) and small generated GGUF files. Run by
`script/fuzz --seed`; the output is committed."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np

root = Path(__file__).resolve().parent.parent
demo = Path(sys.argv[1]).resolve()
corpus = root / "Fuzz" / "corpus"


def put(target, data):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    data = data if isinstance(data, bytes) else data.encode()
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def git(*args):
    return subprocess.run(["git", "-C", str(demo), *args], capture_output=True, check=True).stdout


revisions = git("rev-list", "--all").decode().split()
# Metadata files at every commit of the demo repository.
for rev in revisions:
    for path in git("ls-tree", "-r", "--name-only", rev).decode().splitlines():
        blob = git("show", f"{rev}:{path}")
        if path.endswith(".dvc"):
            put("dvc-file", blob)
        elif path.endswith("dvc.yaml"):
            put("dvc-yaml", blob)
        elif path.endswith("dvc.lock"):
            put("dvc-lock", blob)
        elif path.endswith("params.yaml"):
            put("params", b"\x00" + blob)
        elif path == ".dvc/config":
            put("dvc-config", blob + b"\n" + b"['remote \"s3\"']\n    url = s3://bucket/path\n    endpointurl = http://127.0.0.1:9000\n")
put("dvc-yaml", """vars:
  - params.yaml
  - extra: {lr: 0.1}
stages:
  train:
    foreach: [0.1, 0.2]
    do:
      cmd: python train.py --lr ${item}
      deps: [data.csv]
      params: [lr]
      outs: [model-${item}.gguf]
  grid:
    matrix:
      lr: [0.1, 0.01]
      opt: [adam, sgd]
    cmd: python grid.py ${item.lr} ${item.opt}
    outs: [grid/${item.opt}-${item.lr}.gguf]
artifacts:
  m:
    path: model-0.1.gguf
    type: model
""")
put("params", b"\x01" + json.dumps({"train": {"lr": 0.001, "layers": [1, 2], "opt": {"name": "adam"}}}).encode())
put("params", b"\x02" + b'title = "x"\n[train]\nlr = 0.001\nlayers = [1,\n 2]\n[train.opt]\nname = \'adam\'\n[[runs]]\nid = 1\n')
put("dir-manifest", json.dumps([{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "a/b.txt"},
                                {"md5": "37b51d194a7513e45b56f6524f2d51f2", "relpath": "c.txt"}], separators=(", ", ": ")))
put("dir-manifest", '[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "../x"}]')
for tag in git("tag").decode().splitlines():
    put("gto-tags", tag)
put("gto-tags", "\n".join(git("tag").decode().splitlines() + ["m@v", "m@v1.0.0-rc.1+b", "m#prod#2", "m!#prod#3", "a:b@v2.0.0"]))
# Git LFS pointers (as git-lfs writes them, one with an extension) and a .lfsconfig.
OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
put("lfs-pointer", f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n")
put("lfs-pointer", f"version https://git-lfs.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 0\n")
put("lfs-pointer", '[lfs]\n\turl = "https://lfs.example.com/org/repo.git/info/lfs"\n[remote "origin"]\n\tlfsurl = https://other\n')
for spec in ["tiny-llama", "tiny-llama@main", "tiny-llama@v1.1.0", "tiny-llama#prod", "smollm2-135m@" + revisions[0],
             revisions[0][:12], "a:b@v1.2.3-rc.1+build.5", "m@v", "@", "m#", "m@experiment"]:
    put("revision-spec", spec)
queries = [
    '{ models { name latest { id commit { sha author date message } artifact { md5 size cached } } } }',
    'query($id: ID!) { modelRevision(id: $id) { id pipeline { name cmd deps { path md5 } } datasets { path md5 size commit { sha } source { url rev } } parameters { file key value } code { path md5 } } }',
    'mutation { infer(input: {modelRevisionID: "tiny-llama", prompt: "Hi", sampling: {maxTokens: 4, seed: 1, stop: ["."]}}) { id result finishReason usage { promptTokens } timings { totalMs } } }',
    'subscription { inferStream(input: {modelRevisionID: "tiny-llama", messages: [{role: "user", content: "Hi"}]}) { token payload { id } } }',
    'query($n: Int) { inferences(first: $n, filter: {model: "tiny-llama"}) { edges { cursor node { id prompt status lineage } } pageInfo { hasNextPage endCursor } } }',
    '{ ...F } fragment F on Query { repository { head models } transfers { id } loadedModels { md5 slots } }',
]
for query in queries:
    put("graphql-request", json.dumps({"query": query, "variables": {"id": "tiny-llama", "n": 5}}))
put("graphql-request", json.dumps({"query": "query Q { a: models { name } } query R { repository { head } }", "operationName": "R"}))


def gguf_file(path, tensors=((8,), (4, 4)), strings=("a", "b", "c")):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("llama.block_count", 1)
    writer.add_float32("llama.rope.freq_base", 10000.0)
    writer.add_string("general.name", "fuzz")
    writer.add_array("tokenizer.ggml.tokens", list(strings))
    writer.add_array("tokenizer.ggml.scores", [0.0] * len(strings))
    for index, shape in enumerate(tensors):
        writer.add_tensor(f"t{index}", np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


scratch = root / ".build" / "fuzz-seed"
scratch.mkdir(parents=True, exist_ok=True)
gguf_file(scratch / "a.gguf")
gguf_file(scratch / "b.gguf", tensors=((32,),), strings=("x",))
for name in ("a.gguf", "b.gguf"):
    data = (scratch / name).read_bytes()
    put("gguf-header", data)
    put("gguf-header", data[: len(data) // 2])
print("seeds:", {p.name: len(list(p.iterdir())) for p in sorted(corpus.iterdir())})
