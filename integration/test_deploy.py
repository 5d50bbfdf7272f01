"""The Dockerfile and the Kubernetes manifests (no Docker engine or cluster runs here): the manifests
validate against the Kubernetes schemas (kubernetes-validate, strict), and every command, flag,
configuration key, port, probe path and file they name exists — checked against the binary itself
(`--help`, `config check`, a running gateway and worker) and the repository."""
import re
import subprocess
import tempfile
from pathlib import Path

import requests
import yaml

from support.processes import Server
from support.tools import BIN, ROOT, VENV_BIN, pedigree
from test_workers import Worker

MANIFESTS = sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))


def documents():
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers():
    for doc in documents():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield doc, container


def test_manifests_validate_against_the_kubernetes_schemas():
    assert {path.name for path in MANIFESTS} >= {"configmap.yaml", "gateway.yaml", "workers.yaml"}
    result = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", *map(str, MANIFESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(documents())
    # A broken manifest fails (the check can fail).
    broken = Path(tempfile.mkdtemp()) / "broken.yaml"
    broken.write_text((ROOT / "deploy/kubernetes/gateway.yaml").read_text().replace("containerPort: 8080", "containerPort: eighty"))
    assert subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", str(broken)], capture_output=True).returncode != 0


def test_every_command_flag_key_port_and_path_exists(demo, tmp_path):
    config_map = next(doc for doc in documents() if doc["kind"] == "ConfigMap")
    keys = {line.partition(": ")[0] for line in pedigree("config", "check", "--repo", str(demo)).stdout.splitlines()}
    services = {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == "Service"}
    probed = set()
    for workload, container in containers():
        command, *args = container["args"]
        assert command in ("serve", "worker")
        help_text = pedigree(command, "--help").stdout
        for flag in (a for a in args if a.startswith("--")):
            assert re.search(rf"{re.escape(flag)}\b", help_text), f"{command} has no {flag}"
        # --config names a ConfigMap key mounted where the argument says.
        path = Path(args[args.index("--config") + 1])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        config_volume = next(name for name, v in volumes.items() if "configMap" in v)
        assert str(path.parent) == mounts[config_volume] and path.name in config_map["data"]
        settings = yaml.safe_load(config_map["data"][path.name])
        assert set(settings) <= keys, set(settings) - keys
        # The file is a valid configuration (types, ranges) for the binary.
        file = tmp_path / path.name
        file.write_text(config_map["data"][path.name])
        assert subprocess.run([BIN, "config", "check", str(file)], capture_output=True).returncode == 0
        # Files the configuration names lie on mounted volumes (ConfigMap keys or Secrets).
        for key in ("worker-token-file", "keys-file", "ledger-password-file", "ledger-salt-file", "dvc-config"):
            if key in settings:
                mounted = [m for m in container["volumeMounts"] if settings[key].startswith(m["mountPath"] + "/")]
                assert mounted, f"{key}: {settings[key]} is on no volume"
                if "configMap" in volumes[mounted[0]["name"]]:
                    assert Path(settings[key]).name in config_map["data"]
        # Ports: the container's is the configured one; Services point at a named port.
        port = container["ports"][0]
        assert port["containerPort"] == settings["port"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] == port["name"]
            probed.add((command, container[probe]["httpGet"]["path"]))
        matching = [s for s in services.values() if s["spec"]["selector"].items() <= workload["spec"]["selector"]["matchLabels"].items()]
        assert matching and all(s["spec"]["ports"][0]["targetPort"] == port["name"] for s in matching)
    # The gateway finds the workers through their headless Service, on their port.
    gateway = yaml.safe_load(config_map["data"]["gateway.yaml"])
    name, _, port = gateway["workers-dns"].partition(":")
    assert services[name]["spec"]["clusterIP"] == "None" and services[name]["spec"]["ports"][0]["port"] == int(port)
    workers = next(doc for doc in documents() if doc["kind"] == "StatefulSet")
    assert workers["spec"]["serviceName"] == name
    assert workers["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    # The probed paths answer 200 on a real gateway and worker.
    server = Server(demo)
    worker = Worker(demo, None)
    try:
        for command, path in probed:
            url = server.url if command == "serve" else worker.url
            assert requests.get(url + path, timeout=5).status_code == 200, (command, path)
    finally:
        server.stop()
        worker.stop()


def test_the_dockerfile_runs_the_documented_scripts():
    dockerfile = (ROOT / "Dockerfile").read_text()
    documented = (ROOT / "README.md").read_text() + (ROOT / "CONTRIBUTING.md").read_text()
    scripts = set(re.findall(r"script/[a-z-]+", dockerfile))
    assert {"script/bootstrap", "script/build"} <= scripts
    for script in scripts:
        assert (ROOT / script).is_file() and (ROOT / script).stat().st_mode & 0o111, script
        assert script in documented, f"{script} is in neither the README nor CONTRIBUTING.md"
    # What the image copies out of the build exists after script/bootstrap and the build.
    for path in (".deps/llama/lib", ".deps/graphiql"):
        assert path in dockerfile and (ROOT / path).exists(), path
    # Its default command's flags exist; its ports cover the manifests'.
    command = re.search(r'^CMD \[(.*)\]$', dockerfile, re.M).group(1)
    words = [w.strip().strip('"') for w in command.split(",")]
    help_text = pedigree(words[0], "--help").stdout
    assert all(re.search(rf"{re.escape(w)}\b", help_text) for w in words if w.startswith("--"))
    exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", dockerfile, re.M).group(1).split()}
    assert {c["ports"][0]["containerPort"] for _, c in containers()} <= exposed
    # CUDA by build argument: llama.cpp is built with CUDA when nvcc is on the PATH.
    assert "ARG CUDA=off" in dockerfile and "command -v nvcc" in (ROOT / "script/build-llama").read_text()
    # The build-only bootstrap the image uses exists.
    assert "--build-only" in (ROOT / "script/bootstrap").read_text()
