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
    int32_t is_host;        // 1: the bytes are in host memory (a CPU device's, repacked weights too)
    int32_t is_gpu;         // 1: the device is a GPU (discrete or integrated)
    uint64_t model;
    uint64_t context;
    uint64_t compute;
} pedigree_buffer_memory;

// Writes up to `capacity` entries to `out`; returns how many buffer types there are (call again
// with more room when it is larger than `capacity`).
int32_t pedigree_memory_breakdown(const struct llama_context * ctx, pedigree_buffer_memory * out, int32_t capacity);

// Whether a matrix product with weights of ggml type `type`, held in `buffer_type` of `device`,
// gives every column of its result the same bits however many columns share the call (1 to
// `max_columns`, each compared with the column computed alone), on `threads` threads: the
// kernels a backend picks by batch size (one row: a dot product; several: a tiled GEMM, or a
// repacked layout's GEMM for groups of four rows and a GEMV for the rest) may sum in another
// order. `device` is a ggml device name (CPU, CUDA0); `buffer_type` NULL or empty means the
// device's own buffer type, else an extra buffer type of the device by name (CPU_REPACK).
// Returns 1 when every column matched, 0 when one did not, -1 when it cannot be measured (no
// such device or buffer type, a type that cannot be quantized without an importance matrix, or
// one that buffer type does not hold: CPU_REPACK repacks only some types).
// Bytes the C allocator has handed out and not had back, all threads' arenas together (glibc's
// mallinfo2: in-use chunks and mapped blocks): read before and after a load, what it kept.
uint64_t pedigree_heap_in_use(void);

// Gives the pages the allocator holds free back to the system, in every arena (glibc's
// malloc_trim): after a dry run, whose vocabulary and metadata were freed on a thread of its own.
void pedigree_heap_trim(void);

int32_t pedigree_matmul_invariance(const char * device, const char * buffer_type, int32_t type, int32_t threads, int32_t max_columns);

// The GBNF grammar (rule `root`) that accepts exactly the JSON documents `schema` (a JSON Schema,
// as JSON text) describes, by llama.cpp's own converter (common/json-schema-to-grammar, the one
// llama-server uses). Returns a string to free with pedigree_free, or NULL with `*error` set to
// one (the converter's message) when the schema is not JSON or falls outside what it converts.
char * pedigree_json_schema_to_grammar(const char * schema, char ** error);

void pedigree_free(void * pointer);

// The JSON value at `path` in `json` (object keys and array indices, e.g. {"tools", "0",
// "function", "parameters"}), as JSON text with its objects' keys in the order they were written
// (Foundation's parser loses it; a chat template prints a tool's schema as it was sent). NULL
// with `*error` set when the text is not JSON or the path names nothing.
char * pedigree_json_at(const char * json, const char * const * path, int32_t count, char ** error);

// A chat rendered by the model's own Jinja chat template (`tokenizer.chat_template`), with tools,
// through llama.cpp's common chat library (the one llama-server uses). `request` is JSON:
//   {"messages": [OpenAI chat messages], "tools": [OpenAI function tools], "tool_choice":
//    "auto" | "none" | "required", "parallel_tool_calls": bool, "now": seconds since 1970}
// ("now" is the date templates may print: recorded, so a replay renders the same prompt).
// With "required" the answer opens with the template's call marker (written into the prompt):
// every answer is calls. Returns JSON to free with pedigree_free:
//   {"prompt", "grammar" (GBNF; "" for none), "lazy" (the grammar applies once a trigger
//    appears), "triggers": [{"type": 0 word | 1 pattern | 2 pattern_full | 3 token, "value",
//    "token"}], "stops": [extra stop strings], "parser": what pedigree_chat_parse takes}
// or NULL with `*error` set (a template that fails, a message it cannot render, tools offered
// to a template that neither describes them nor writes calls).
char * pedigree_chat_render(const struct llama_model * model, const char * request, char ** error);

// The grammar sampler of a rendered chat (its JSON from pedigree_chat_render): lazy with its
// triggers (a trigger word of one token becomes a token trigger, as llama-server does), and the
// generation prompt already accepted. NULL with `*error` set when it does not parse; a chat with
// no grammar gives NULL and no error.
struct llama_sampler * pedigree_chat_grammar(const struct llama_model * model, const char * rendered, char ** error);

// The assistant message in `text` (what the model generated), read by the parser of the
// template's family: JSON {"content", "reasoning_content", "tool_calls": [{"id", "name",
// "arguments"}]}. `partial`: the text may stop mid-call (while streaming). NULL with `*error`
// set when the text does not match the format.
char * pedigree_chat_parse(const char * parser, const char * text, int32_t partial, char ** error);

#ifdef __cplusplus
}
#endif
