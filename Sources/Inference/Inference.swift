/// Inference: llama.cpp in-process, behind a model manager that never blocks.
///
/// This module owns everything that touches llama.cpp: loading GGUF files (mmap), tokenizing and
/// chat templates, sampler chains, and a continuous-batching decode loop per loaded model that
/// serves several requests of one model in the same `llama_decode` calls. `ModelManager` keys
/// loaded models by artifact md5, loads them asynchronously with single flight, bounds them by
/// count and memory with least-recently-used eviction of idle models, and answers `overloaded`
/// at once when a model's slots and queue are full.
///
/// No C type leaves the module. It is handed weights as local files (`ModelSource`) and knows
/// nothing of repositories, caches or HTTP.
