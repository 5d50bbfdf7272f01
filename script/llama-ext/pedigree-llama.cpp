// See pedigree-llama.h.
#include "pedigree-llama.h"

#include <cstdio>
#include <cstring>

#include "ggml-backend.h"
#include "llama-ext.h"

static void copy_text(char * destination, size_t size, const char * source) {
    std::snprintf(destination, size, "%s", source ? source : "");
}

extern "C" int32_t pedigree_memory_breakdown(const struct llama_context * ctx, pedigree_buffer_memory * out, int32_t capacity) {
    const llama_memory_breakdown breakdown = llama_get_memory_breakdown(ctx);
    int32_t index = 0;
    for (const auto & [buft, memory] : breakdown) {
        if (index < capacity && out != nullptr) {
            pedigree_buffer_memory & entry = out[index];
            std::memset(&entry, 0, sizeof(entry));
            copy_text(entry.buffer_type, sizeof(entry.buffer_type), ggml_backend_buft_name(buft));
            entry.is_host = ggml_backend_buft_is_host(buft) ? 1 : 0;
            if (ggml_backend_dev_t device = ggml_backend_buft_get_device(buft)) {
                copy_text(entry.device, sizeof(entry.device), ggml_backend_dev_name(device));
                copy_text(entry.description, sizeof(entry.description), ggml_backend_dev_description(device));
                const enum ggml_backend_dev_type type = ggml_backend_dev_type(device);
                entry.is_gpu = (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) ? 1 : 0;
            }
            entry.model = memory.model;
            entry.context = memory.context;
            entry.compute = memory.compute;
        }
        index += 1;
    }
    return index;
}
