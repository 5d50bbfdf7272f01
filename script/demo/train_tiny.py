"""Stage `train-tiny`: writes a tiny random-weight llama GGUF.

The weights are seeded from params (tiny.seed) and the md5 of the prepared data, so a change
of either gives different weights. The tokenizer is SmolLM2's (copied from the base GGUF), which
keeps the file loadable by llama.cpp while the weights stay tiny.
"""
import hashlib
import os
import numpy as np
import yaml
import gguf

params = yaml.safe_load(open("params.yaml"))["tiny"]
data_md5 = hashlib.md5(open("data/prepared/train.jsonl", "rb").read()).hexdigest()
rng = np.random.default_rng([params["seed"], int(data_md5[:8], 16)])

base = gguf.GGUFReader("base/smollm2-135m-instruct.gguf")
def field(name):
    return base.fields[name].contents()

tokens = field("tokenizer.ggml.tokens")
n_vocab, n_embd, n_layer, n_head = len(tokens), params["n_embd"], params["n_layer"], params["n_head"]
n_ff = n_embd * 2

os.makedirs("models/tiny-llama", exist_ok=True)
writer = gguf.GGUFWriter("models/tiny-llama/model.gguf", "llama")
writer.add_name("tiny-llama")
writer.add_description(f"tiny random llama, seed {params['seed']}, data md5 {data_md5}")
writer.add_context_length(params["context"])
writer.add_embedding_length(n_embd)
writer.add_block_count(n_layer)
writer.add_feed_forward_length(n_ff)
writer.add_head_count(n_head)
writer.add_head_count_kv(n_head)
writer.add_rope_dimension_count(n_embd // n_head)
writer.add_layer_norm_rms_eps(1e-5)
writer.add_file_type(gguf.LlamaFileType.ALL_F32)
writer.add_tokenizer_model(field("tokenizer.ggml.model"))
writer.add_tokenizer_pre(field("tokenizer.ggml.pre"))
writer.add_token_list(tokens)
writer.add_token_types(field("tokenizer.ggml.token_type"))
writer.add_token_merges(field("tokenizer.ggml.merges"))
writer.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
writer.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
writer.add_chat_template(field("tokenizer.chat_template"))

def tensor(name, *shape):
    writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

tensor("token_embd.weight", n_vocab, n_embd)
writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
tensor("output.weight", n_vocab, n_embd)
for i in range(n_layer):
    writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
        tensor(f"blk.{i}.{part}.weight", n_embd, n_embd)
    tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
    tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
    tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(f"wrote tiny-llama: vocab {n_vocab}, embd {n_embd}, layers {n_layer}")
