// Pedigree's C view of what llama.cpp exposes only in C++ (src/llama-ext.h): the memory a context
// and its model hold, by ggml buffer type. Built by script/build-llama into
// .deps/llama/lib/libpedigree-llama.so against the same pinned llama.cpp.
#pragma once
#include <stdint.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

// The bytes of one ggml buffer type: weights (model), KV cache and other per-context state
// (context), and the compute buffers (compute). With a model loaded with `no_alloc`, what they
// would be (nothing is allocated).
typedef struct pedigree_buffer_memory {
    char buffer_type[64];   // ggml's name of the buffer type: CPU, CPU_Mapped, CPU_REPACK, CUDA0, CUDA_Host…
    char device[64];        // the device's name (CPU, CUDA0), empty when the type names none
    char description[128];  // the device's description (a GPU's model), empty when none
    int32_t is_host;        // 1: the bytes are in host memory
    int32_t is_gpu;         // 1: the device is a GPU (discrete or integrated)
    uint64_t model;
    uint64_t context;
    uint64_t compute;
} pedigree_buffer_memory;

// Writes up to `capacity` entries to `out`; returns how many buffer types there are (call again
// with more room when it is larger than `capacity`).
int32_t pedigree_memory_breakdown(const struct llama_context * ctx, pedigree_buffer_memory * out, int32_t capacity);

#ifdef __cplusplus
}
#endif
