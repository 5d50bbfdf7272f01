// See pedigree-llama.h.
#include "pedigree-llama.h"

#include <malloc.h>

#include <cctype>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "chat.h"
#include "json-schema-to-grammar.h"
#include "json.h"
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
                // Repacked weights (CPU_REPACK) are not laid out for plain reads, but they are in host memory.
                if (ggml_backend_dev_type(device) == GGML_BACKEND_DEVICE_TYPE_CPU) entry.is_host = 1;
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

// See pedigree-llama.h. Weights of `rows` × `width` and activations of up to `max_columns`
// columns, both from a fixed pseudo-random sequence; the weights quantized by ggml itself.
namespace {

struct Probe {
    ggml_backend_t backend = nullptr;
    ggml_backend_buffer_type_t weights_type = nullptr;
    ggml_backend_buffer_type_t activations_type = nullptr;
    ~Probe() {
        if (backend) ggml_backend_free(backend);
    }
};

std::vector<float> random_values(size_t count, uint32_t seed) {
    std::vector<float> values(count);
    uint32_t state = seed;
    for (auto & value : values) {
        state = state * 1664525u + 1013904223u;
        value = (float)((state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return values;
}

// The product of the weights and the first `columns` columns of `activations`, or empty on failure.
std::vector<float> multiply(Probe & probe, ggml_type type, const std::vector<uint8_t> & weights, int64_t width, int64_t rows,
                            const std::vector<float> & activations, int64_t columns) {
    ggml_init_params params = {3 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true};
    ggml_context * weights_context = ggml_init(params);
    ggml_context * context = ggml_init(params);
    std::vector<float> result;
    ggml_backend_buffer_t weights_buffer = nullptr;
    ggml_backend_buffer_t buffer = nullptr;
    if (weights_context && context) {
        ggml_tensor * w = ggml_new_tensor_2d(weights_context, type, width, rows);
        ggml_tensor * x = ggml_new_tensor_2d(context, GGML_TYPE_F32, width, columns);
        ggml_tensor * y = ggml_mul_mat(context, w, x);
        weights_buffer = ggml_backend_alloc_ctx_tensors_from_buft(weights_context, probe.weights_type);
        buffer = ggml_backend_alloc_ctx_tensors_from_buft(context, probe.activations_type);
        // A repacking buffer type leaves `extra` empty for a type it does not repack: setting
        // such a tensor would dereference it.
        const bool repacking = std::strcmp(ggml_backend_buft_name(probe.weights_type), "CPU_REPACK") == 0;
        if (weights_buffer && buffer && !(repacking && w->extra == nullptr)) {
            ggml_backend_tensor_set(w, weights.data(), 0, weights.size());
            ggml_backend_tensor_set(x, activations.data(), 0, sizeof(float) * width * columns);
            ggml_cgraph * graph = ggml_new_graph(context);
            ggml_build_forward_expand(graph, y);
            if (ggml_backend_graph_compute(probe.backend, graph) == GGML_STATUS_SUCCESS) {
                result.resize(rows * columns);
                ggml_backend_tensor_get(y, result.data(), 0, sizeof(float) * result.size());
            }
        }
    }
    if (buffer) ggml_backend_buffer_free(buffer);
    if (weights_buffer) ggml_backend_buffer_free(weights_buffer);
    if (context) ggml_free(context);
    if (weights_context) ggml_free(weights_context);
    return result;
}

}  // namespace

extern "C" int32_t pedigree_matmul_invariance(const char * device_name, const char * buffer_type, int32_t type, int32_t threads,
                                              int32_t max_columns) {
    if (type < 0 || type >= GGML_TYPE_COUNT || max_columns < 2) return -1;
    const ggml_type weight_type = (ggml_type)type;
    switch (weight_type) {
        // Not weight types: what activations are quantized to, integers, doubles.
        case GGML_TYPE_Q8_1: case GGML_TYPE_Q8_K: case GGML_TYPE_I8: case GGML_TYPE_I16: case GGML_TYPE_I32: case GGML_TYPE_I64:
        case GGML_TYPE_F64:
            return -1;
        default:
            break;
    }
    if (ggml_get_type_traits(weight_type)->blck_size == 0 || ggml_quantize_requires_imatrix(weight_type)) return -1;
    ggml_backend_dev_t device = ggml_backend_dev_by_name(device_name ? device_name : "CPU");
    if (!device) return -1;
    Probe probe;
    probe.backend = ggml_backend_dev_init(device, nullptr);
    if (!probe.backend) return -1;
    probe.activations_type = ggml_backend_dev_buffer_type(device);
    probe.weights_type = probe.activations_type;
    ggml_backend_reg_t registry = ggml_backend_dev_backend_reg(device);
    if (buffer_type && *buffer_type) {
        probe.weights_type = nullptr;
        auto extra = (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(registry, "ggml_backend_dev_get_extra_bufts");
        for (ggml_backend_buffer_type_t * types = extra ? extra(device) : nullptr; types && *types; ++types) {
            if (std::strcmp(ggml_backend_buft_name(*types), buffer_type) == 0) probe.weights_type = *types;
        }
        if (!probe.weights_type) return -1;
    }
    if (auto set_threads = (ggml_backend_set_n_threads_t)ggml_backend_reg_get_proc_address(registry, "ggml_backend_set_n_threads")) {
        set_threads(probe.backend, threads > 0 ? threads : 1);
    }
    // Wide enough for every block size (256), rows a multiple of every repacked interleave (8).
    const int64_t width = 1024, rows = 64;
    const std::vector<float> values = random_values(width * rows, 7);
    std::vector<uint8_t> weights(ggml_row_size(weight_type, width) * rows);
    ggml_quantize_chunk(weight_type, values.data(), weights.data(), 0, rows, width, nullptr);
    const std::vector<float> activations = random_values(width * max_columns, 11);

    // Each column alone, then 2…max_columns together.
    std::vector<std::vector<float>> alone(max_columns);
    for (int64_t column = 0; column < max_columns; ++column) {
        std::vector<float> one(activations.begin() + column * width, activations.begin() + (column + 1) * width);
        alone[column] = multiply(probe, weight_type, weights, width, rows, one, 1);
        if (alone[column].size() != (size_t)rows) return -1;
    }
    for (int64_t columns = 2; columns <= max_columns; ++columns) {
        const std::vector<float> together = multiply(probe, weight_type, weights, width, rows, activations, columns);
        if (together.size() != (size_t)(rows * columns)) return -1;
        for (int64_t column = 0; column < columns; ++column) {
            if (std::memcmp(together.data() + column * rows, alone[column].data(), sizeof(float) * rows) != 0) return 0;
        }
    }
    return 1;
}

extern "C" uint64_t pedigree_heap_in_use(void) {
    const struct mallinfo2 info = mallinfo2();
    return (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
}

extern "C" void pedigree_heap_trim(void) { malloc_trim(0); }

static char * pedigree_copy(const std::string & text) {
    char * copy = static_cast<char *>(malloc(text.size() + 1));
    if (copy) memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

extern "C" char * pedigree_json_schema_to_grammar(const char * schema, char ** error) {
    *error = nullptr;
    try {
        return pedigree_copy(json_schema_to_grammar(common_json::parse(schema)));
    } catch (const std::exception & failure) {
        *error = pedigree_copy(failure.what());
    } catch (...) {
        *error = pedigree_copy("the schema could not be converted");
    }
    return nullptr;
}

extern "C" void pedigree_free(void * pointer) { free(pointer); }

// Every entry point below catches what llama.cpp's chat code throws: a message for the caller.
template <typename Body> static auto pedigree_guard(char ** error, Body body) -> decltype(body()) {
    *error = nullptr;
    try {
        return body();
    } catch (const std::exception & failure) {
        *error = pedigree_copy(failure.what());
    } catch (...) {
        *error = pedigree_copy("llama.cpp's chat code failed");
    }
    return nullptr;
}

static std::vector<llama_token> pedigree_tokens(const llama_vocab * vocab, const std::string & text) {
    std::vector<llama_token> tokens(text.size() + 8);
    int32_t count = llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), false, true);
    if (count < 0) {
        tokens.resize(-count);
        count = llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), false, true);
    }
    tokens.resize(count < 0 ? 0 : count);
    return tokens;
}

extern "C" char * pedigree_json_at(const char * json, const char * const * path, int32_t count, char ** error) {
    return pedigree_guard(error, [&]() -> char * {
        auto value = common_json::parse(json);
        for (int32_t index = 0; index < count; index++) {
            const std::string step = path[index];
            if (value.is_object() && value.contains(step)) {
                value = common_json(value.at(step));
            } else if (value.is_array() && !step.empty() && step.size() < 10 && step.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoul(step) < value.size()) {
                value = common_json(value.at((size_t) std::stoul(step)));
            } else {
                throw std::invalid_argument("no value at " + step);
            }
        }
        return pedigree_copy(value.dump());
    });
}

extern "C" char * pedigree_chat_render(const struct llama_model * model, const char * request, char ** error) {
    return pedigree_guard(error, [&]() -> char * {
        const auto body = common_json::parse(request);
        auto templates = common_chat_templates_init(model, "");
        if (!templates) throw std::runtime_error("the model's chat template could not be read");
        common_chat_templates_inputs inputs;
        inputs.use_jinja = true;
        inputs.add_generation_prompt = true;
        inputs.messages = common_chat_msgs_parse_oaicompat(body.at("messages"));
        if (body.contains("tools")) inputs.tools = common_chat_tools_parse_oaicompat(body.at("tools"));
        inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
        inputs.parallel_tool_calls = body.value("parallel_tool_calls", false);
        inputs.now = std::chrono::system_clock::time_point(std::chrono::seconds(body.value("now", (long long) 0)));
        if (!inputs.tools.empty() && inputs.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE) {
            // llama-server would render such a chat without the tools: the model never sees them.
            auto caps = common_chat_templates_get_caps(templates.get());
            if (!caps["supports_tool_calls"] || !caps["supports_tools"]) {
                throw std::invalid_argument("this model's chat template neither describes tools nor writes tool calls: tools are not served for it");
            }
        }
        auto params = common_chat_templates_apply(templates.get(), inputs);
        if (inputs.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED && !inputs.tools.empty()) {
            // llama.cpp lets text come before a required call; here the answer is calls (as
            // OpenAI's and vLLM's are): the call marker (the trigger of the same chat with
            // tool_choice auto) is written into the prompt, and into what the grammar and the
            // parser take as already said.
            auto probe = inputs;
            probe.tool_choice = COMMON_CHAT_TOOL_CHOICE_AUTO;
            const auto lazy = common_chat_templates_apply(templates.get(), probe);
            if (lazy.grammar_triggers.empty() || lazy.grammar_triggers[0].type != COMMON_GRAMMAR_TRIGGER_TYPE_WORD) {
                throw std::invalid_argument("this model's chat template marks no tool call: tool_choice required is not served for it");
            }
            params.prompt += lazy.grammar_triggers[0].value;
            params.generation_prompt += lazy.grammar_triggers[0].value;
        }
        auto triggers = common_json::array();
        for (const auto & trigger : params.grammar_triggers) {
            auto entry = common_json::object();
            entry["type"] = (int) trigger.type;
            entry["value"] = trigger.value;
            entry["token"] = (int) trigger.token;
            triggers.push_back(entry);
        }
        auto parser = common_json::object();
        parser["format"] = (int) params.format;
        parser["parser"] = params.parser;
        parser["generation_prompt"] = params.generation_prompt;
        auto out = common_json::object();
        out["prompt"] = params.prompt;
        out["grammar"] = params.grammar;
        out["lazy"] = params.grammar_lazy;
        out["triggers"] = triggers;
        out["stops"] = params.additional_stops;
        out["generation_prompt"] = params.generation_prompt;
        out["parser"] = parser.dump();
        return pedigree_copy(out.dump());
    });
}

extern "C" struct llama_sampler * pedigree_chat_grammar(const struct llama_model * model, const char * rendered, char ** error) {
    llama_sampler * sampler = nullptr;
    auto made = pedigree_guard(error, [&]() -> llama_sampler * {
        const auto chat = common_json::parse(rendered);
        const std::string grammar = chat.value("grammar", std::string());
        if (grammar.empty()) return nullptr;
        const llama_vocab * vocab = llama_model_get_vocab(model);
        const bool lazy = chat.value("lazy", false);
        std::vector<std::string> patterns;
        std::vector<llama_token> tokens;
        for (const auto & trigger : chat.at("triggers")) {
            const std::string value = trigger.at("value").get<std::string>();
            switch ((common_grammar_trigger_type) trigger.at("type").get<int>()) {
                case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: {
                    const auto ids = pedigree_tokens(vocab, value);
                    if (ids.size() == 1) {
                        tokens.push_back(ids[0]);
                    } else {
                        patterns.push_back(regex_escape(value));
                    }
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: patterns.push_back(value); break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL:
                    patterns.push_back((value.empty() || value.front() != '^' ? "^" : "") + value + (value.empty() || value.back() != '$' ? "$" : ""));
                    break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: tokens.push_back(trigger.at("token").get<int>()); break;
                default: throw std::invalid_argument("unknown grammar trigger type");
            }
        }
        if (lazy && patterns.empty() && tokens.empty()) throw std::invalid_argument("a lazy grammar with no trigger");
        std::vector<const char *> pointers;
        for (const auto & pattern : patterns) pointers.push_back(pattern.c_str());
        sampler = lazy ? llama_sampler_init_grammar_lazy_patterns(vocab, grammar.c_str(), "root", pointers.data(), pointers.size(),
                                                                   tokens.data(), tokens.size())
                       : llama_sampler_init_grammar(vocab, grammar.c_str(), "root");
        if (!sampler) throw std::invalid_argument("the chat's grammar does not parse");
        if (!lazy) {
            // The grammar starts at the generation prompt, which the prompt already holds.
            const std::string generation = chat.value("generation_prompt", std::string());
            const auto ids = pedigree_tokens(vocab, generation);
            for (size_t index = 0; index < ids.size(); index++) {
                char piece[256];
                const int32_t length = llama_token_to_piece(vocab, ids[index], piece, sizeof piece, 0, true);
                // Some tokenizers put a space before the first special token: not the prompt's.
                if (index == 0 && length > 0 && std::isspace((unsigned char) piece[0]) && !generation.empty() &&
                    !std::isspace((unsigned char) generation[0])) {
                    continue;
                }
                llama_sampler_accept(sampler, ids[index]);
            }
        }
        llama_sampler * done = sampler;
        sampler = nullptr;
        return done;
    });
    if (sampler) llama_sampler_free(sampler);
    return made;
}

extern "C" char * pedigree_chat_parse(const char * parser, const char * text, int32_t partial, char ** error) {
    return pedigree_guard(error, [&]() -> char * {
        const auto spec = common_json::parse(parser);
        const int format = spec.at("format").get<int>();
        if (format < 0 || format >= COMMON_CHAT_FORMAT_COUNT) throw std::invalid_argument("unknown chat format");
        common_chat_parser_params params;
        params.format = (common_chat_format) format;
        params.generation_prompt = spec.at("generation_prompt").get<std::string>();
        const std::string source = spec.at("parser").get<std::string>();
        if (!source.empty()) params.parser.load(source);
        const auto message = common_chat_parse(text, partial != 0, params);
        auto calls = common_json::array();
        for (const auto & call : message.tool_calls) {
            auto entry = common_json::object();
            entry["id"] = call.id;
            entry["name"] = call.name;
            entry["arguments"] = call.arguments;
            calls.push_back(entry);
        }
        auto out = common_json::object();
        out["content"] = message.content;
        out["reasoning_content"] = message.reasoning_content;
        out["tool_calls"] = calls;
        return pedigree_copy(out.dump());
    });
}
