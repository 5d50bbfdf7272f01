/// DVCKit: DVC's metadata and hashes, natively.
///
/// This module parses what DVC writes into a Git repository (`*.dvc` files, `dvc.yaml` with
/// templating, `dvc.lock` 2.0, params files in YAML/JSON/TOML, `.dvc/config`) and computes md5,
/// legacy dos2unix md5 and `.dir` hashes exactly as DVC does.
///
/// It reads bytes handed to it and returns values; it knows nothing of Git, never runs the `dvc`
/// CLI, and rejects metadata that could make a caller leave the repository (`..`, absolute paths)
/// or spend unbounded memory (YAML alias bombs, oversized files).
