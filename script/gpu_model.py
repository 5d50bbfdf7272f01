"""Writes a random-weight llama GGUF of a given shape (F16), for measuring speed and memory where
no real model can be fetched (script/gpu-check on a machine without network). Its tokenizer is
LLaMA 2's 32,000-token SentencePiece vocabulary from llama.cpp's own test files
(models/ggml-vocab-llama-spm.gguf); the writer is llama.cpp's gguf-py, both from the pinned source.
Random weights say nothing of quality, but a product of random numbers costs what a trained one
costs, and answers are still deterministic (greedy and seeded), so batch identity can be measured.

Usage: gpu_model.py LLAMA_CPP_SOURCE SHAPE OUT.gguf    SHAPE: tiny | 1b | 7b"""
import sys
from pathlib import Path

source, shape, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, str(source / "gguf-py"))
import gguf  # noqa: E402
import numpy as np  # noqa: E402

# n_embd, n_layer, n_head, n_head_kv, n_ff: TinyLlama 1.1B's and LLaMA 2 7B's shapes.
SHAPES = {"tiny": (256, 2, 4, 4, 512), "1b": (2048, 22, 32, 4, 5632), "7b": (4096, 32, 32, 32, 11008)}
n_embd, n_layer, n_head, n_head_kv, n_ff = SHAPES[shape]
vocab = gguf.GGUFReader(source / "models/ggml-vocab-llama-spm.gguf")


def field(name):
    return vocab.fields[name].contents()


tokens = field("tokenizer.ggml.tokens")
rng = np.random.default_rng(1)
writer = gguf.GGUFWriter(out, "llama")
writer.add_name(f"random-llama-{shape}")
writer.add_context_length(4096)
writer.add_embedding_length(n_embd)
writer.add_block_count(n_layer)
writer.add_feed_forward_length(n_ff)
writer.add_head_count(n_head)
writer.add_head_count_kv(n_head_kv)
writer.add_rope_dimension_count(n_embd // n_head)
writer.add_layer_norm_rms_eps(1e-5)
writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
writer.add_tokenizer_model(field("tokenizer.ggml.model"))
writer.add_token_list(tokens)
writer.add_token_scores(field("tokenizer.ggml.scores"))
writer.add_token_types(field("tokenizer.ggml.token_type"))
writer.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
writer.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))


def matrix(name, rows, columns):
    writer.add_tensor(name, (rng.standard_normal((rows, columns), dtype=np.float32) * 0.02).astype(np.float16))


kv = n_embd // n_head * n_head_kv
matrix("token_embd.weight", len(tokens), n_embd)
writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
matrix("output.weight", len(tokens), n_embd)
for i in range(n_layer):
    writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    matrix(f"blk.{i}.attn_q.weight", n_embd, n_embd)
    matrix(f"blk.{i}.attn_k.weight", kv, n_embd)
    matrix(f"blk.{i}.attn_v.weight", kv, n_embd)
    matrix(f"blk.{i}.attn_output.weight", n_embd, n_embd)
    matrix(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
    matrix(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
    matrix(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(f"wrote {out}: random llama {shape} ({n_embd} × {n_layer} layers, vocab {len(tokens)})")
