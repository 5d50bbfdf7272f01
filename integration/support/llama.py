"""llama.cpp's own programs, built by `script/build-llama --tools` from the same pinned source as
Pedigree's engine: llama-server (a peer and an external backend) and llama-quantize."""
import re
import subprocess

import requests

from .processes import Program, answers
from .tools import ROOT, free_port

LLAMA_BIN = ROOT / ".deps/llama/bin"
LLAMA_SERVER = LLAMA_BIN / "llama-server"
LLAMA_QUANTIZE = LLAMA_BIN / "llama-quantize"


class LlamaServer(Program):
    """llama-server on loopback over a GGUF file, with its Prometheus metrics on."""

    def __init__(self, model, log, threads=1, slots=2, extra=(), env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([LLAMA_SERVER, "-m", model, "--host", "127.0.0.1", "--port", self.port, "-t", threads, "-c", "2048",
                          "-np", slots, "--metrics", *extra], log, ready=answers(self.url, "/health"), env=env)

    def prompt_tokens(self):
        """llama-server's own count of prompt tokens it processed."""
        text = requests.get(self.url + "/metrics", timeout=5).text
        return float(re.search(r"^llamacpp:prompt_tokens_total (\S+)$", text, re.M).group(1))

    def greedy(self, prompt, tokens):
        """The token ids of a greedy completion of `prompt` (no prompt cache; `tokens` of them
        unless the model ends first)."""
        body = requests.post(self.url + "/completion", timeout=300, json={
            "prompt": prompt, "n_predict": tokens, "temperature": 0, "top_k": 1, "cache_prompt": False, "return_tokens": True,
            "repeat_penalty": 1.0}).json()
        # Its tokens end with the end-of-generation token when the model stopped; ours never hold it.
        return body["tokens"][:-1] if body.get("stop_type") == "eos" else body["tokens"]


def quantize(source, target, kind):
    """`llama-quantize --allow-requantize SOURCE TARGET KIND` (the demo's Q4_1 weights to another type)."""
    subprocess.run([str(LLAMA_QUANTIZE), "--allow-requantize", str(source), str(target), kind], check=True, capture_output=True)
