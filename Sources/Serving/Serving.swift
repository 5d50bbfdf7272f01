/// Serving: the core between the domain libraries and the edges.
///
/// This module owns the services of one Pedigree process, built once from the configuration
/// (`Services.open`): lineage, artifacts, models, the ledger and the inference orchestration
/// that joins them — resolved revision → weights fetched and pinned (`RevisionArtifacts`) →
/// loaded model (`ModelManager`) → tokens → recorded answer (`InferenceRecorder`) — and replay.
/// It also owns what a running server needs around the request path: the configuration
/// (flags > `PEDIGREE_*` > YAML file > defaults, each key checked where it enters), the log
/// output, the error codes with their HTTP status, and the lifecycle services of one
/// `ServiceGroup` (ledger, sweeper, retention, periodic refresh, preload, drain).
///
/// It takes resolved values, never revision specs from a request (the edges resolve them), and
/// knows nothing of HTTP, GraphQL or the command line.
