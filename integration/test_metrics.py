"""/metrics as Prometheus scrapes it: the text parses with prometheus_client's parser, every
family the operator needs is there, and each moves as it should when traffic arrives."""
import json

import requests
from prometheus_client.parser import text_string_to_metric_families

from support.tools import error_codes

INFER = "mutation($input: InferenceInput!) { infer(input: $input) { id } }"
STREAM = "subscription($input: InferenceInput!) { inferStream(input: $input) { token payload { id } } }"


def scrape(server):
    """Samples by (name, sorted labels); the whole text must parse."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    """The sum over every sample of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def present(samples, name):
    return any(n == name for n, _ in samples)


def test_every_metric_exists_and_moves_with_traffic(demo, make_server):
    server = make_server(demo)
    before = scrape(server)
    model = {"gen_ai_request_model": "tiny-llama"}
    # Traffic: lineage, an inference, a stream, a rejected request, a pull (cold, then cached), a refresh.
    server.data('{ models { name latest { id datasets { md5 } } } }')
    server.data('query { modelRevision(id: "smollm2-135m#prod") { id parameters { key value } } }')
    server.data(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hello", "sampling": {"maxTokens": 5, "temperature": 0}}})
    with requests.post(server.url + "/graphql", headers={"Accept": "text/event-stream"}, timeout=60, stream=True,
                       json={"query": STREAM, "variables": {"input": {"modelRevisionID": "tiny-llama", "prompt": "Hi", "sampling": {"maxTokens": 4}}}}) as r:
        assert r.status_code == 200 and "event: complete" in r.text
    rejected = server.gql(INFER, {"input": {"modelRevisionID": "tiny-llama", "prompt": "x", "sampling": {"maxTokens": 0}}})
    assert error_codes(rejected) == ["BAD_USER_INPUT"]
    server.data('mutation { pull(id: "smollm2-135m") { downloadedBytes } }')
    server.data('mutation { pull(id: "smollm2-135m") { downloadedBytes } }')
    server.data("mutation { refresh { head } }")
    bad = requests.post(server.url + "/v1/completions", data="not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_USER_INPUT"
    after = scrape(server)

    # GenAI (OpenTelemetry names), by model name: two generations, each with its tokens.
    for name in ("gen_ai_server_time_to_first_token_seconds_count", "gen_ai_server_request_duration_seconds_count",
                 "gen_ai_server_time_per_output_token_seconds_count"):
        assert value(after, name, **model) - value(before, name, **model) == 2, name
    assert value(after, "gen_ai_client_token_usage_count", gen_ai_token_type="output", **model) == 2
    assert value(after, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **model) >= 2
    assert present(after, "gen_ai_server_time_to_first_token_seconds_bucket")
    assert not any("Hello" in json.dumps(labels) for _, labels in after)  # never by prompt
    # HTTP by route and status.
    graphql = {"http_route": "/graphql", "http_request_method": "POST", "http_response_status_code": "200"}
    assert value(after, "http_server_request_duration_seconds_count", **graphql) - value(before, "http_server_request_duration_seconds_count", **graphql) >= 7
    assert value(after, "pedigree_http_requests_total", route="graphql") - value(before, "pedigree_http_requests_total", route="graphql") == 8
    # Rejections and errors by code.
    assert value(after, "pedigree_inferences_rejected_total", code="BAD_USER_INPUT") == 1
    assert value(after, "pedigree_graphql_errors_total", code="BAD_USER_INPUT") >= 1
    # Answers that are only an error, by their route group's format and code; requests by route template.
    errors = {"format": "openAI", "code": "BAD_USER_INPUT"}
    assert value(after, "pedigree_http_error_answers_total", **errors) - value(before, "pedigree_http_error_answers_total", **errors) == 1
    assert value(after, "pedigree_http_requests_total", route="v1/completions") - value(before, "pedigree_http_requests_total", route="v1/completions") == 1
    # Models: loaded, slots, queue, loads and their duration.
    assert value(after, "pedigree_models_loaded") >= 1 and value(after, "pedigree_models_loaded_bytes") > 0
    assert value(after, "pedigree_model_slots", model="tiny-llama") >= 1
    assert present(after, "pedigree_model_queue_depth") and present(after, "pedigree_model_slots_active")
    assert value(after, "pedigree_model_loads_total") - value(before, "pedigree_model_loads_total") == 1
    assert value(after, "pedigree_model_load_duration_seconds_count") == 1
    # Artifacts: bytes fetched, fetch duration, cache bytes, hit ratio.
    assert value(after, "pedigree_artifact_download_bytes_total") > value(before, "pedigree_artifact_download_bytes_total")
    assert value(after, "pedigree_artifact_fetch_duration_seconds_count") >= 2
    assert value(after, "pedigree_cache_bytes") > value(before, "pedigree_cache_bytes")
    assert value(after, "pedigree_artifact_cache_lookups_total", result="hit") >= 1
    assert 0 < value(after, "pedigree_artifact_cache_hit_ratio") < 1
    # Ledger write duration, refresh age and failures.
    assert value(after, "pedigree_ledger_write_duration_seconds_count") - value(before, "pedigree_ledger_write_duration_seconds_count") == 2
    assert value(after, "pedigree_ledger_records_total") == 2
    assert value(before, "pedigree_refresh_age_seconds") >= -1 and 0 <= value(after, "pedigree_refresh_age_seconds") < 60
    assert present(after, "pedigree_refresh_failures_total")
