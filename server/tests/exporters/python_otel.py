"""Real Python OpenTelemetry exporters and GenAI instrumentations against the real server.

The official `opentelemetry-instrumentation-openai-v2` around the real `openai` package and
OpenLLMetry's `opentelemetry-instrumentation-anthropic` around the real `anthropic` package call
a small fake provider on loopback (cache tokens included); `opentelemetry-sdk` exports the spans
with `opentelemetry-exporter-otlp-proto-http` (protobuf), configured only by the three
environment variables the README gives. The Users view must equal the same calls sent through
`/v1/events`, to the nano-USD.

Run by scripts/otel-exporter-tests.sh (which makes the venv); exits non-zero on a failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIN = os.environ.get("TOKENTALLY_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "..", "target", "debug", "tokentally"))

# What the fake provider reports, and the same usage in tokentally's four buckets.
# (No cached tokens for OpenAI: the official instrumentation's chat spans do not report them; see
# docs/otel.md. Anthropic's cache reads and writes are reported and checked.)
OPENAI_USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
ANTHROPIC_USAGE = {"input_tokens": 50, "output_tokens": 300, "cache_read_input_tokens": 2000,
                   "cache_creation_input_tokens": 1000}


class FakeProvider(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/chat/completions"):
            answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                      "model": body.get("model", "gpt-4o") + "-2024-08-06",
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "hello from the fake"}}],
                      "usage": OPENAI_USAGE}
        elif self.path.endswith("/messages"):
            answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"),
                      "content": [{"type": "text", "text": "hello from the fake"}],
                      "stop_reason": "end_turn", "stop_sequence": None, "usage": ANTHROPIC_USAGE}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def cli(db, *args):
    out = subprocess.run([BIN, *args, "--db", db], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def start_server(db):
    proc = subprocess.Popen([BIN, "serve", "--no-login", "--addr", "127.0.0.1:0", "--db", db],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "TOKENTALLY_LOG": "warn"})
    line = proc.stdout.readline()
    base = "http://" + line.split("http://")[1].split("/")[0].split()[0]
    return proc, base


def http(method, url, key, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def users(base, key):
    rows = http("GET", f"{base}/v1/me/ai-apps/users?limit=100", key)["users"]
    keep = ["spend_nano", "events", "traces", "input_tokens", "output_tokens", "cache_read_tokens",
            "cache_creation_tokens", "unpriced_events"]
    return {u["user_id"]: {k: u[k] for k in keep} for u in rows}


def main():
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    fake_base = f"http://127.0.0.1:{fake.server_address[1]}"
    tmp = tempfile.mkdtemp(prefix="tokentally-otel-py-")
    db = os.path.join(tmp, "otel.db")
    ingest = cli(db, "keys", "create", "--scope", "ingest")
    read = cli(db, "keys", "create", "--scope", "read")
    ev_ingest = cli(db, "keys", "create", "--scope", "ingest", "--project", "events")
    ev_read = cli(db, "keys", "create", "--scope", "read", "--project", "events")
    proc, base = start_server(db)
    try:
        # The three variables the README gives, nothing else.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = base
        os.environ["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer%20{ingest}"
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"

        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        import anthropic
        import openai

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        AnthropicInstrumentor().instrument(tracer_provider=provider)
        tracer = trace.get_tracer("shop")

        oa = openai.OpenAI(api_key="sk-test", base_url=f"{fake_base}/v1", max_retries=0)
        an = anthropic.Anthropic(api_key="sk-ant-test", base_url=fake_base, max_retries=0)
        ask_openai = lambda: oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        ask_anthropic = lambda: an.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=64,
                                                   messages=[{"role": "user", "content": "hi"}])
        with tracer.start_as_current_span("POST /chat", attributes={
                "http.route": "/chat", "tokentally.tag.userId": "py-alice", "tokentally.tag.plan": "pro"}):
            ask_openai()
            ask_anthropic()
        with tracer.start_as_current_span("POST /chat", attributes={"http.route": "/chat", "enduser.id": "py-bob"}):
            ask_openai()
        assert provider.force_flush(10_000), "the exporter flushed"

        # The same calls through /v1/events, in another project.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        def ev(i, user, trace_id, provider_name, model, usage, tags):
            return {"id": f"e{i}", "trace_id": trace_id, "timestamp": now, "provider": provider_name, "model": model,
                    "tags": {"userId": user, **tags}, "usage": usage}
        oa_usage = {"input_tokens": 1200, "output_tokens": 300}
        an_usage = {"input_tokens": 50, "output_tokens": 300, "cache_read_tokens": 2000, "cache_creation_tokens": 1000}
        http("POST", f"{base}/v1/events", ev_ingest, {"events": [
            ev(1, "py-alice", "t1", "openai", "gpt-4o-2024-08-06", oa_usage, {"plan": "pro"}),
            ev(2, "py-alice", "t1", "anthropic", "claude-3-5-sonnet-20241022", an_usage, {"plan": "pro"}),
            ev(3, "py-bob", "t2", "openai", "gpt-4o-2024-08-06", oa_usage, {}),
        ]})

        got, want = users(base, read), users(base, ev_read)
        assert set(got) == {"py-alice", "py-bob"}, f"users from OTLP: {got}"
        for user in want:
            calls = [
                {k: e[k] for k in ("provider", "model", "input_tokens", "cache_read_tokens", "cache_creation_tokens")}
                for t in http("GET", f"{base}/v1/me/ai-apps/users/{user}", read)["traces"]
                for e in http("GET", f"{base}/v1/me/ai-apps/traces/{t['trace_id']}", read)["events"]
            ]
            assert got[user] == want[user], f"{user}: OTLP {got[user]} != /v1/events {want[user]}; calls {calls}"
        assert got["py-alice"]["spend_nano"] > 0 and got["py-alice"]["unpriced_events"] == 0, got
        print(f"ok: python exporters, {len(got)} users equal to /v1/events: {json.dumps(got, sort_keys=True)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fake.shutdown()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
