#!/usr/bin/env python3
"""Writes server/src/openapi.json, the OpenAPI 3.1 document served at /v1/openapi.json.

Edit the schemas here and rerun `python3 scripts/dev/gen_openapi.py`; the conformance test
(end2end/tests/openapi.test.mjs) checks the real server's answers against the result.
"""
import json
def obj(props, required=None, extra=False, desc=None):
    o={"type":"object","properties":props,"required":required if required is not None else list(props.keys()),"additionalProperties":extra}
    if desc: o["description"]=desc
    return o
I={"type":"integer"}
S={"type":"string"}
NS={"type":["string","null"]}
NI={"type":["integer","null"]}
TS={"type":"string","format":"date-time"}
USD={"type":"string","pattern":"^[0-9]+(\\.[0-9]+)?$","description":"Dollars as an exact decimal string (spend_nano / 10^9)."}
ref=lambda n: {"$ref":f"#/components/schemas/{n}"}
schemas={
 "Error": obj({"error":{"type":"string","minLength":1},"field":{"type":"string","description":"The request field or query parameter at fault (e.g. events[3].usage.input_tokens, window)."}},["error"]),
 "IngestReply": obj({"accepted":I,"duplicates":I}),
 "Usage": obj({"input_tokens":I,"output_tokens":I,"cache_read_tokens":I,"cache_creation_tokens":I,"cache_creation_1h_tokens":I,
   "reasoning_tokens":{**I,"description":"Part of output_tokens spent on reasoning."},"audio_input_tokens":{**I,"description":"Part of the input (input, cache read and cache creation tokens) that was audio."},
   "audio_output_tokens":{**I,"description":"Part of output_tokens that was audio."},"estimated":{"type":"boolean","description":"The client estimated the counts (the provider reported none, e.g. a stream the caller stopped)."}},[],
   desc="Four disjoint token buckets (input excludes cached tokens), and parts of them the provider broke out."),
 "EventIn": obj({"id":{"type":"string","minLength":1,"maxLength":128},"trace_id":S,"timestamp":TS,"kind":{"enum":["llm","custom"]},"provider":S,"model":S,"name":S,"agent":S,"route_tag":S,
   "tags":{"type":"object","additionalProperties":{"type":"string"}},"usage":ref("Usage"),"cost_usd":{"type":"string"},"latency_ms":I,"status":{"enum":["ok","error","cancelled"],"description":"cancelled: the caller stopped the call (a stream read in part); not an error."},"error":S,
   "tools":{"type":"array","items":S},"prompt":{},"response":{}},["id","timestamp"]),
 "TraceIn": obj({"id":S,"route_tag":S,"tags":{"type":"object","additionalProperties":{"type":"string"}},"started_at":TS,"ended_at":TS,"status":{"enum":["ok","error","cancelled"]}},["id","started_at"]),
 "IngestBatch": obj({"events":{"type":"array","items":ref("EventIn"),"maxItems":5000},"traces":{"type":"array","items":ref("TraceIn"),"maxItems":5000}},[]),
 "UserRow": obj({"user_id":S,"spend_nano":I,"spend_usd":USD,"traces":I,"events":I,"tokens":I,"input_tokens":I,"output_tokens":I,"cache_read_tokens":I,"cache_creation_tokens":I,"last_seen":TS,"top_model":S,"unpriced_events":I}),
 "UsersPage": obj({"from":TS,"to":TS,"users":{"type":"array","items":ref("UserRow")},"total_users":I,"next_cursor":NS}),
 "Kpis": obj({"spend_nano":I,"traces":I,"calls":I,"tokens":I,"active_users":I,"errors":I,"unpriced":I}),
 "SpendSeries": obj({"bucket_ms":I,"buckets":{"type":"array","items":I},"series":{"type":"array","items":{"type":"array","prefixItems":[S,{"type":"array","items":I}],"minItems":2,"maxItems":2}}},desc="Spend (nano-USD) per bucket, one series per model or provider."),
 "ModelRow": obj({"provider":S,"model":S,"calls":I,"errors":I,"unpriced":I,"input_tokens":I,"output_tokens":I,"cache_read_tokens":I,"cache_creation_tokens":I,"spend_nano":I,"spend_usd":USD,"avg_latency_ms":I,"p50_latency_ms":NI,"p95_latency_ms":NI,"users":NI}),
 "Overview": obj({"from":TS,"to":TS,"current":ref("Kpis"),"previous":ref("Kpis"),"spend_by_model":ref("SpendSeries"),"top_users":{"type":"array","items":ref("UserRow")},"top_models":{"type":"array","items":ref("ModelRow")},"chart_svg":{"type":"string","maxLength":0,"description":"Always empty in the API (the dashboard's rendered chart)."}}),
 "ModelsView": obj({"models":{"type":"array","items":ref("ModelRow")},"spend_by_model":ref("SpendSeries")}),
 "ToolRow": obj({"tool":S,"calls":I,"users":I,"traces":I,"spend_nano":I,"spend_usd":USD}),
 "ToolsView": obj({"tools":{"type":"array","items":ref("ToolRow")}}),
 "TraceRow": obj({"trace_id":S,"started_at":TS,"route_tag":NS,"user_id":NS,"calls":I,"tokens":I,"spend_nano":I,"spend_usd":USD,"unpriced_events":I,"errors":I,"duration_ms":NI,"status":{"enum":["ok","error","cancelled"]}}),
 "TracesPage": obj({"from":TS,"to":TS,"traces":{"type":"array","items":ref("TraceRow")},"total_traces":I,"next_cursor":NS}),
 "EventSummary": obj({"event_id":S,"timestamp":TS,"offset_ms":I,"kind":{"enum":["llm","custom"]},"provider":S,"model":S,"agent":S,"input_tokens":I,"output_tokens":I,"cache_read_tokens":I,"cache_creation_tokens":I,"cost_nano":NI,"latency_ms":NI,"status":{"enum":["ok","error","cancelled"]},"tools":{"type":"array","items":S}}),
 "TraceDetail": obj({"trace":ref("TraceRow"),"tags":{"type":"object","additionalProperties":{"type":"string"}},"ended_at":{"type":["string","null"],"format":"date-time"},"events":{"type":"array","items":ref("EventSummary")}}),
 "EventDetail": obj({"summary":ref("EventSummary"),"trace_id":NS,"route_tag":NS,"tags":{"type":"object","additionalProperties":{"type":"string"}},"cache_creation_1h_tokens":I,"reasoning_tokens":I,"audio_input_tokens":I,"audio_output_tokens":I,"usage_estimated":{"type":"boolean"},"cost_source":{"enum":["table","override","unpriced"]},"reported_cost_usd":{"type":["string","null"],"description":"A cost the OpenTelemetry instrumentation reported (OpenLIT gen_ai.usage.cost), USD as sent; shown, never used for spend."},"error":NS,"prompt":{"type":["string","null"],"description":"The prompt as sent, JSON text; null when absent or dropped by privacy mode."},"response":{"type":["string","null"]}}),
 "UserDetail": obj({"user_id":S,"from":TS,"to":TS,"current":ref("Kpis"),"previous":ref("Kpis"),"spend_by_model":ref("SpendSeries"),"models":{"type":"array","items":ref("ModelRow")},"traces":{"type":"array","items":ref("TraceRow"),"maxItems":50}}),
 "SegmentRow": obj({"value":{"type":["string","null"],"description":"The tag's value; null for calls without the key."},"spend_nano":I,"spend_usd":USD,"share_permille":{"type":"integer","minimum":0,"maximum":1000},"users":I,"traces":I,"calls":I,"errors":I,"unpriced_events":I,"tokens":I,"input_tokens":I,"output_tokens":I,"cache_read_tokens":I,"cache_creation_tokens":I}),
 "Deleted": obj({"deleted":obj({"events":I,"traces":I})}),
 "SegmentsView": obj({"from":TS,"to":TS,"by":S,"segments":{"type":"array","items":ref("SegmentRow"),"maxItems":500},"total_segments":{"type":"integer","minimum":0,"description":"Values with calls in the window; segments holds the biggest `limit` of them."},"keys":{"type":"array","items":S}}),
}
def p(name, where, desc, schema=None, required=False):
    return {"name":name,"in":where,"description":desc,"required":required,"schema":schema or {"type":"string"}}
filters=[
 p("window","query","Rolling window ending now (default 28d). Ignored when from/to are given.",{"enum":["1d","7d","28d"]}),
 p("from","query","Range start: RFC 3339, or a UTC date (its start). Goes with `to`; at most 732 days."),
 p("to","query","Range end (exclusive): RFC 3339, or a UTC date (inclusive: its end)."),
 p("user","query","Only this end user (the userId tag)."),
 p("provider","query","Only calls to this provider."),
 p("agent","query","Only calls made by this agent."),
 {"name":"tag","in":"query","style":"form","explode":True,"description":"Tag filters as `tag.<key>=<value>` (repeatable, AND-ed, at most 16), or `tag=<key>=<value>`.","schema":{"type":"object","additionalProperties":{"type":"string"}}},
]
listp=[p("limit","query","Rows per page, 1–500 (default 50).",{"type":"integer","minimum":1,"maximum":500}),
 p("cursor","query","`next_cursor` of the previous page. It pins the window, so later pages read the same range as the first.")]
fmt=p("format","query","`csv` for RFC 4180 CSV (header row, dollars as decimal strings); lists are streamed and, without `limit`, hold every row.",{"enum":["json","csv"]})
def sortp(vals): return [p("sort","query","Sort column.",{"enum":vals}),p("dir","query","Direction (each column has a natural default).",{"enum":["asc","desc"]})]
def ok(schema, csv=False):
    c={"application/json":{"schema":ref(schema)}}
    if csv: c["text/csv"]={"schema":{"type":"string"}}
    return c
err={"description":"A bad parameter: the message names it in `field`.","content":{"application/json":{"schema":ref("Error")}}}
unauth={"description":"Missing, unknown or wrong-scope key.","content":{"application/json":{"schema":ref("Error")}}}
nf={"description":"Not found.","content":{"application/json":{"schema":ref("Error")}}}
def get(op, summary, params, schema, csv=False, notfound=False):
    r={"200":{"description":"OK","content":ok(schema,csv)},"400":err,"401":unauth}
    if notfound: r["404"]=nf
    return {"get":{"operationId":op,"summary":summary,"security":[{"bearer":[]}],"parameters":params,"responses":r}}
pathp=lambda n,d: p(n,"path",d,None,True)
doc={
 "openapi":"3.1.0",
 "info":{"title":"tokentally API","version":"1","description":"Ingest LLM calls and read per-user cost. Money is integer nano-USD (`*_nano`) with exact decimal dollar strings (`*_usd`). Tokens are four disjoint buckets. Read endpoints take a `read` or `admin` key; ingest an `ingest` key; deleting a user an `admin` key. Unknown query parameters are a 400 naming the parameter. Tag keys and values reach SQL only as bound parameters."},
 "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"A project key from `tokentally keys create`."}},"schemas":schemas},
 "paths":{
  "/v1/events":{"post":{"operationId":"ingestEvents","summary":"Ingest a batch of events and traces (idempotent per id).","security":[{"bearer":[]}],
    "requestBody":{"required":True,"content":{"application/json":{"schema":ref("IngestBatch")}}},
    "responses":{"200":{"description":"Committed to disk.","content":{"application/json":{"schema":ref("IngestReply")}}},"400":err,"401":unauth,
      "413":{"description":"Body over 10 MiB (raw or inflated).","content":{"application/json":{"schema":ref("Error")}}},
      "415":{"description":"Unsupported Content-Encoding.","content":{"application/json":{"schema":ref("Error")}}}}}},
  "/v1/traces":{"post":{"operationId":"exportTraces","summary":"OTLP/HTTP trace export (OpenTelemetry GenAI spans become calls; see docs/otel.md). Protobuf or JSON, answered in the same type; gzip accepted.","security":[{"bearer":[]}],
    "requestBody":{"required":True,"content":{"application/x-protobuf":{"schema":{"type":"string","format":"binary","description":"An ExportTraceServiceRequest."}},"application/json":{"schema":{"type":"object","description":"An ExportTraceServiceRequest in OTLP/JSON."}}}},
    "responses":{"200":{"description":"Kept on disk; partialSuccess counts GenAI spans refused.","content":{"application/json":{"schema":{"type":"object","properties":{"partialSuccess":{"type":"object","properties":{"rejectedSpans":I,"errorMessage":S}}}}},"application/x-protobuf":{"schema":{"type":"string","format":"binary"}}}},
      "400":err,"401":unauth,
      "413":{"description":"Body over 32 MiB (raw or inflated)."},"415":{"description":"Unsupported Content-Type or Content-Encoding."},
      "503":{"description":"Busy: retry after the Retry-After header."}}}},
  "/v1/me/ai-apps/overview": get("getOverview","KPIs now and in the previous window of the same length, spend over time, top users and models.",filters+[p("stack","query","What the spend series are: models (default) or providers.",{"enum":["model","provider"]})],"Overview"),
  "/v1/me/ai-apps/users": get("listUsers","Users ranked by spend (or `sort`).",filters+listp+sortp(["user","spend","traces","events","tokens","last_seen","top_model"])+[fmt],"UsersPage",True),
  "/v1/me/ai-apps/users/{userId}": get("getUser","One user's KPIs, spend over time, models and latest 50 traces.",[pathp("userId","The end user's id.")]+[f for f in filters if f["name"]!="user"]+[p("stack","query","Series by model or provider.",{"enum":["model","provider"]})],"UserDetail"),
  "/v1/me/ai-apps/traces": get("listTraces","Traces (withTrace blocks) that started in the window.",filters+listp+sortp(["started","spend","calls","tokens"])+[p("q","query","Substring of the route tag."),fmt],"TracesPage",True),
  "/v1/me/ai-apps/traces/{traceId}": get("getTrace","One trace with its events.",[pathp("traceId","The trace id.")],"TraceDetail",notfound=True),
  "/v1/me/ai-apps/events/{eventId}": get("getEvent","One LLM call in full.",[pathp("eventId","The event id.")],"EventDetail",notfound=True),
  "/v1/me/ai-apps/models": get("listModels","Per-model totals, by spend.",filters+[fmt],"ModelsView",True),
  "/v1/me/ai-apps/tools": get("listTools","Per tool name: calls, users, traces and the spend of those calls.",filters+[fmt],"ToolsView",True),
  "/v1/me/ai-apps/segments": get("listSegments","Spend, users, traces, calls and tokens per value of one tag key, by spend.",[p("by","query","The tag key to group by (plan, org, feature, ...).",None,True),p("limit","query","The biggest this many segments, 1–500 (default 500 in JSON; a CSV without limit has every one).",{"type":"integer","minimum":1,"maximum":500})]+filters+[fmt],"SegmentsView",True),
  "/v1/openapi.json":{"get":{"operationId":"openapi","summary":"This document.","responses":{"200":{"description":"OpenAPI 3.1","content":{"application/json":{"schema":{"type":"object"}}}}}}},
 }
}
doc["paths"]["/v1/me/ai-apps/users/{userId}"]["delete"]={"operationId":"deleteUser","summary":"Delete every event, trace, tag set and rollup contribution of one user, then scrub the file. Admin key only.","security":[{"bearer":[]}],
  "parameters":[pathp("userId","The end user's id.")],
  "responses":{"200":{"description":"What was removed (zero when the user had nothing).","content":{"application/json":{"schema":ref("Deleted")}}},"400":err,"401":unauth}}

import sys
out = sys.argv[1] if len(sys.argv) > 1 else __import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..', 'server', 'src', 'openapi.json')
json.dump(doc, open(out, 'w'), indent=1)
