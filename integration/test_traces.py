"""Traces as an OpenTelemetry collector receives them: with `otlp-endpoint` pointed at a receiver
this test runs (OTLP/HTTP, decoded with the `opentelemetry-proto` package), one inference is one
trace continuing the client's W3C traceparent, with spans resolve → fetch → load → generate (first
token as an event) → record; the ledger record and the log lines carry its trace id."""
import json
import os
import threading
import time

import requests

from support.http_servers import LoopbackHTTPServer
from support.processes import Server


class OTLPReceiver(LoopbackHTTPServer):
    """A loopback OTLP/HTTP receiver: POST /v1/traces with an ExportTraceServiceRequest (protobuf)."""

    def __init__(self):
        import http.server
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
        self.spans = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    for resource in request.resource_spans:
                        service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
                        for scope in resource.scope_spans:
                            for span in scope.spans:
                                receiver.spans.append((service, span))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.serve(Handler)

    def trace(self, trace_id):
        with self.lock:
            return [span for _, span in self.spans if span.trace_id.hex() == trace_id]


def test_one_inference_is_one_trace_continuing_the_traceparent(demo):
    receiver = OTLPReceiver()
    server = Server(demo, "--otlp-endpoint", receiver.url, "--log-format", "json")
    try:
        trace_id, parent_id = os.urandom(16).hex(), os.urandom(8).hex()
        response = requests.post(server.url + "/graphql", timeout=120,
                                 headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
                                 json={"query": "mutation($input: InferenceInput!) { infer(input: $input) { id } }",
                                       "variables": {"input": {"modelRevisionID": "tiny-llama", "prompt": "Trace me", "sampling": {"maxTokens": 4}}}})
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        inference = response.json()["data"]["infer"]["id"]
        wanted = {"resolve", "fetch", "load", "generate", "record"}
        deadline = time.time() + 30
        while time.time() < deadline and not wanted <= {s.name for s in receiver.trace(trace_id)}:
            time.sleep(0.2)
        spans = receiver.trace(trace_id)
        by_name = {s.name: s for s in spans}
        assert wanted <= set(by_name), sorted(by_name)
        # The request's span continues the client's: its parent is the traceparent's span.
        roots = [s for s in spans if s.parent_span_id.hex() == parent_id]
        assert len(roots) == 1 and roots[0].kind == roots[0].SPAN_KIND_SERVER, [(s.name, s.parent_span_id.hex()) for s in spans]
        root = roots[0].span_id
        # resolve, generate and record are the request's children; fetch and load are generate's.
        for name in ("resolve", "generate", "record"):
            assert by_name[name].parent_span_id == root, name
        for name in ("fetch", "load"):
            assert by_name[name].parent_span_id == by_name["generate"].span_id, name
        assert [e.name for e in by_name["generate"].events] == ["gen_ai.first_token"]
        attributes = {a.key: a for a in by_name["generate"].attributes}
        assert attributes["gen_ai.request.model"].value.string_value == "tiny-llama"
        assert attributes["gen_ai.usage.output_tokens"].value.int_value == 4
        # Time runs in order: resolve, then generate, then record.
        assert by_name["resolve"].end_time_unix_nano <= by_name["generate"].start_time_unix_nano
        assert by_name["generate"].end_time_unix_nano <= by_name["record"].start_time_unix_nano
        # The ledger record and the log lines lead to the trace.
        record = server.data("query($id: ID!) { inference(id: $id) { traceID } }", {"id": inference})["inference"]
        assert record["traceID"] == trace_id
        lines = [json.loads(l) for l in open(server.log.name) if l.startswith("{")]
        assert any(l.get("trace_id") == trace_id and l.get("message") == "inference finished" for l in lines)
        # A request without traceparent starts a trace of its own.
        other = server.data("mutation($input: InferenceInput!) { infer(input: $input) { id } }",
                            {"input": {"modelRevisionID": "tiny-llama", "prompt": "Again", "sampling": {"maxTokens": 2}}})["infer"]["id"]
        fresh = server.data("query($id: ID!) { inference(id: $id) { traceID } }", {"id": other})["inference"]["traceID"]
        assert fresh and len(fresh) == 32 and fresh != trace_id
    finally:
        server.stop()
        receiver.stop()
