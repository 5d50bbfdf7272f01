"""script/gpu-check's CPU part (--cpu --quick): the same checks a GPU machine runs, on the CPU build,
with fewer and shorter answers. Its report holds every figure the docs describe, and the batch
identity run found every answer identical alone on Q4_0 weights (kernels measured invariant)."""
import json
import os
import subprocess

from support.tools import BIN, ROOT


def test_the_cpu_part_writes_its_report(quantized, tmp_path):
    model = quantized / "models/smollm2-q4-0/model.gguf"
    result = subprocess.run([str(ROOT / "script/gpu-check"), "--cpu", "--quick", "--model", str(model), "--out", str(tmp_path)],
                            env={**os.environ, "PEDIGREE_BIN": BIN}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert (report["device"], report["gpuLayers"], report["model"]) == ("CPU", "0", str(model))
    figures = report["figures"]
    for name in ("decode_single_model", "decode_single_model_vs_server", "decode_concurrent8_model", "ttft_model"):
        assert figures[name]["value"] > 0 and figures[name]["peer"] > 0, (name, figures[name])
    assert 0.8 <= figures["memory_reported_vs_resident"]["value"] <= 1.2, figures["memory_reported_vs_resident"]
    identity = figures["identity_replayed_alone"]
    assert identity["value"] == 1.0 and '"batchInvariant": true' in identity["note"], identity
    assert sum(line.startswith("BENCH ") for line in result.stdout.splitlines()) == len(figures)
