// llama.cpp as built by script/build-llama into .deps/llama (pinned: llama-cpp-python 0.3.36's
// vendor/llama.cpp). Only the Inference module imports this.
#include "../../.deps/llama/include/llama.h"
#include "../../.deps/llama/include/pedigree-llama.h"
