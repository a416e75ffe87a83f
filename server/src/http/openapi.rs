//! The OpenAPI 3.1 document of the ingest and read API, derived from the answer types (`ToSchema`
//! on the structs the handlers return) and the handlers (`#[utoipa::path]` beside each), then
//! tightened where JSON Schema can say what the types can't (every field of an answer is always
//! present; answers have no other fields). `server/src/openapi.json` is this document, committed
//! so a reader sees the contract in review; a test fails when the two differ
//! (`tokentally openapi > server/src/openapi.json` writes it).

use super::error::ErrorBody;
use super::{ingest, read_api};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// Query parameters every view takes: the window or range, and the filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Filters {
    /// Rolling window ending now (default 28d); `from` and `to` replace it.
    #[param(inline)]
    window: Option<app::model::Window>,
    /// Range start: RFC 3339, or a UTC date (its start). Without `to`, the range ends now.
    from: Option<String>,
    /// Range end, exclusive: RFC 3339, or a UTC date (inclusive: its end). Without `from`, the
    /// range is the `window` before it. Bounds before 1970 or past tomorrow read as those; a
    /// range that ends before it starts is empty.
    to: Option<String>,
    /// Only calls to this provider.
    #[param(min_length = 1, max_length = 256)]
    provider: Option<String>,
    /// Only calls made by this agent.
    #[param(min_length = 1, max_length = 256)]
    agent: Option<String>,
    /// Tag filters as `tag=<key>=<value>` (repeatable, AND-ed, at most 16; the key is trimmed of
    /// spaces), or `tag.<key>=<value>`. Tag keys and values reach SQL only as bound parameters.
    #[param(max_items = 16, style = Form, explode)]
    tag: Option<Vec<String>>,
}

/// `user`: one end user (not on a user's own page, whose path names the user).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UserFilter {
    /// Only this end user (the `userId` tag).
    #[param(min_length = 1, max_length = 512)]
    user: Option<String>,
}

/// Paging of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// Rows per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page. It pins the window, so later pages read the same
    /// range as the first.
    #[param(pattern = r"^[0-9]{1,9}(\.[0-9]{1,15}\.[0-9]{1,15})?$")]
    cursor: Option<String>,
    /// Direction (each column has a natural default).
    #[param(inline)]
    dir: Option<app::model::Dir>,
}

/// `format`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Format {
    /// `csv` for RFC 4180 CSV (a header row, dollars as decimal strings); lists are streamed
    /// and, without `limit`, hold every row.
    #[param(inline)]
    format: Option<FormatParam>,
}

/// What a list answers in.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FormatParam {
    Json,
    Csv,
}

/// `stack`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StackParam {
    /// What the spend series are: models (default) or providers.
    #[param(inline)]
    stack: Option<app::model::Stack>,
}

/// `GET /v1/me/ai-apps/users/{user_id}`.
#[derive(serde::Serialize, ToSchema)]
pub struct UserDetail {
    pub user_id: String,
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub current: app::model::Kpis,
    /// The window of the same length just before.
    pub previous: app::model::Kpis,
    pub spend_by_model: app::model::SpendSeries,
    pub models: Vec<app::model::ModelRow>,
    /// The latest 50 traces.
    #[schema(max_items = 50)]
    pub traces: Vec<app::model::TraceRow>,
}

/// `GET /v1/me/ai-apps/tools`.
#[derive(serde::Serialize, ToSchema)]
pub struct ToolsView {
    pub tools: Vec<app::model::ToolRow>,
}

/// `DELETE /v1/me/ai-apps/users/{user_id}`: what was removed (zeros when the user had nothing).
#[derive(serde::Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: app::model::admin::Removed,
    pub scrub: Scrub,
}

/// Whether the file has been rewritten since a deletion: only then are the user's id and
/// prompts in no page of the database file or its WAL.
#[derive(serde::Serialize, ToSchema)]
pub struct Scrub {
    /// The deletion's scrub ticket (`GET /v1/me/ai-apps/deletions/{ticket}`) while the scrub
    /// is pending; `null` when nothing waits for it (the answer waited for the scrub, or
    /// nothing of the user's was in the file).
    #[schema(minimum = 1)]
    pub ticket: Option<u64>,
    /// True once the scrub covering the deletion has finished.
    pub done: bool,
}

/// OTLP's `ExportTraceServiceResponse` in JSON: empty when every span was taken.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpExportResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_success: Option<OtlpPartialSuccess>,
}

/// How many GenAI spans were refused, and why.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpPartialSuccess {
    rejected_spans: i64,
    error_message: String,
}

/// The bearer key every operation takes.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A project key from `tokentally keys create`."))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokentally API",
        version = "1",
        description = "Ingest LLM calls and read per-user cost. Money is integer nano-USD (`*_nano`) with exact \
            decimal dollar strings (`*_usd`). Tokens are four disjoint buckets. Read endpoints take a `read` or \
            `admin` key; ingest an `ingest` key; deleting a user an `admin` key. Unknown query parameters are a 400 \
            naming the parameter.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        ingest::post_events,
        crate::otel::post_traces,
        read_api::overview,
        read_api::users,
        read_api::user,
        read_api::delete_user,
        read_api::deletion,
        read_api::traces,
        read_api::trace,
        read_api::event,
        read_api::models,
        read_api::tools,
        read_api::segments,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer)
)]
struct ApiDoc;

/// Schemas of request bodies: optional fields stay optional and unknown fields are ignored.
const INPUTS: &[&str] = &["IngestBatch", "EventIn", "TraceIn", "Usage"];

/// Every answer field is always present (`null` when it has no value), and answers have no
/// other fields: a renamed or added field breaks the conformance tests.
fn tighten(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { continue };
        let all: Vec<Value> = props.keys().map(|k| Value::String(k.clone())).collect();
        if INPUTS.contains(&name.as_str()) {
            continue;
        }
        schema["additionalProperties"] = Value::Bool(false);
        if name.starts_with("Otlp") {
            // OTLP's own message: fields appear only when set.
            continue;
        }
        if name == "Error" {
            // `field` is there only when one field is at fault.
            schema["required"] = json!(["error"]);
            schema["properties"]["field"]["type"] = json!("string");
            continue;
        }
        schema["required"] = Value::Array(all);
    }
    // A tag map's keys and values (utoipa has no attribute for `propertyNames`).
    let tag_map = json!({
        "type": "object",
        "maxProperties": 64,
        "propertyNames": {"minLength": 1, "maxLength": 64},
        "additionalProperties": {"type": "string", "maxLength": 512},
    });
    for name in ["EventIn", "TraceIn"] {
        if let Some(tags) = schemas.get_mut(name).and_then(|s| s.pointer_mut("/properties/tags")) {
            let mut t = tag_map.clone();
            t["description"] = tags.get("description").cloned().unwrap_or(Value::Null);
            t["type"] = json!(["object", "null"]);
            *tags = t;
        }
    }
    if let Some(tools) = schemas.get_mut("EventIn").and_then(|s| s.pointer_mut("/properties/tools/items")) {
        *tools = json!({"type": "string", "minLength": 1, "maxLength": 256});
    }
    // An `llm` call (the default kind) names its provider and model.
    if let Some(event) = schemas.get_mut("EventIn") {
        event["if"] = json!({"properties": {"kind": {"const": "custom"}}, "required": ["kind"]});
        event["else"] = json!({
            "required": ["provider", "model"],
            "properties": {"provider": {"type": "string"}, "model": {"type": "string"}},
        });
    }
    for (schema, field) in [("TraceRow", "status"), ("EventSummary", "status")] {
        if let Some(p) = schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
        {
            p["enum"] = json!(["ok", "error", "cancelled"]);
        }
    }
    if let Some(p) = schemas.get_mut("EventSummary").and_then(|s| s.pointer_mut("/properties/kind")) {
        p["enum"] = json!(["llm", "custom"]);
    }
    if let Some(p) = schemas.get_mut("EventDetail").and_then(|s| s.pointer_mut("/properties/cost_source")) {
        p["enum"] = json!(["table", "override", "unpriced"]);
    }
    // Protobuf bodies are bytes, not the array of integers `Vec<u8>` stands for.
    if let Some(otlp) = doc.pointer_mut("/paths/~1v1~1traces/post") {
        let binary = json!({"type": "string", "format": "binary"});
        otlp["requestBody"]["content"]["application/x-protobuf"]["schema"] = binary.clone();
        otlp["responses"]["200"]["content"]["application/x-protobuf"]["schema"] = binary;
    }
    // `tag=<key>=<value>`: a key of 1–64 characters without `=` (spaces around it trimmed), then
    // a value of at most 512; an empty `tag=` is ignored.
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
            for p in params.iter_mut().filter(|p| p["name"] == "from" || p["name"] == "to") {
                p["schema"] = json!({
                    "type": "string",
                    "anyOf": [{"format": "date-time"}, {"format": "date"}, {"maxLength": 0}],
                });
            }
            for p in params.iter_mut().filter(|p| p["name"] == "tag") {
                p["schema"]["items"] = json!({
                    "type": "string",
                    "pattern": "^(?: *[^= ](?:[^=]{0,62}[^= ])? *=[\\s\\S]{0,512})?$",
                });
            }
        }
    }
}

/// The document, as served at `/v1/openapi.json`.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        tighten(&mut doc);
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    })
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document()).into_response()
}

#[cfg(test)]
mod tests {
    /// The committed file is the generated document (so a contract change shows in review).
    #[test]
    fn committed_document_is_the_generated_one() {
        let committed = include_str!("../openapi.json");
        assert!(
            committed == super::document(),
            "server/src/openapi.json is stale: run `cargo run -p server -- openapi > server/src/openapi.json`"
        );
    }
}
