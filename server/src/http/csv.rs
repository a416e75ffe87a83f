//! CSV answers (RFC 4180: CRLF lines, a header row, fields quoted when they hold a comma, quote
//! or line break). The columns are the row type's fields in declaration order, read from the
//! schema the API document is made of, and each row is written from its JSON form by column
//! name, so the CSV, the JSON and the document of a view can't drift apart; long lists are
//! streamed page by page.

use super::error::ApiError;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

/// Rows read per page when streaming a long list.
pub const EXPORT_PAGE: u32 = 1000;

fn field(out: &mut String, v: &serde_json::Value) {
    let text = match v {
        serde_json::Value::Null => return,
        // A text cell that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or
        // a carriage return first) gets a `'` in front: an exported user id or tag can't run.
        serde_json::Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

/// The CSV columns of a row type: its fields, in the order the struct declares them.
pub fn columns<T: utoipa::PartialSchema>() -> Arc<[String]> {
    use utoipa::openapi::{RefOr, schema::Schema};
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
        _ => Arc::from([]),
    }
}

/// The header line.
pub fn header_line(columns: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, &serde_json::Value::String(c.clone()));
    }
    out.push_str("\r\n");
    out
}

/// Rows as CSV lines, each row's fields picked from its JSON object by column name.
pub fn lines<T: Serialize>(rows: &[T], columns: &[String]) -> String {
    let mut out = String::new();
    for row in rows {
        let v = serde_json::to_value(row).unwrap_or_default();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, v.get(c.as_str()).unwrap_or(&serde_json::Value::Null));
        }
        out.push_str("\r\n");
    }
    out
}

fn csv_response(filename: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// A short list, answered at once.
pub fn respond<T: Serialize + utoipa::PartialSchema>(filename: &str, rows: &[T]) -> Response {
    let columns = columns::<T>();
    csv_response(filename, Body::from(header_line(&columns) + &lines(rows, &columns)))
}

/// A long list streamed page by page: `fetch(offset, limit)` returns a page and whether more
/// follow. Only one page is in memory at a time; the next is read when the client has taken
/// the last. At most `max_rows` rows when given.
pub fn stream<T, F, Fut>(filename: &str, first_offset: u32, max_rows: Option<u32>, fetch: F) -> Response
where
    T: Serialize + utoipa::PartialSchema + Send + 'static,
    F: FnMut(u32, u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, bool), ApiError>> + Send + 'static,
{
    struct State<F> {
        fetch: F,
        offset: u32,
        left: u32,
        done: bool,
    }
    let columns = columns::<T>();
    let header = header_line(&columns);
    let start = State { fetch, offset: first_offset, left: max_rows.unwrap_or(u32::MAX), done: false };
    let pages = stream::unfold(start, move |mut s| {
        let columns = columns.clone();
        async move {
            if s.done || s.left == 0 {
                return None;
            }
            let limit = EXPORT_PAGE.min(s.left);
            match (s.fetch)(s.offset, limit).await {
                Ok((rows, more)) => {
                    s.offset += rows.len() as u32;
                    s.left -= rows.len() as u32;
                    s.done = !more || rows.is_empty();
                    Some((Ok::<_, std::io::Error>(lines(&rows, &columns)), s))
                }
                Err(e) => {
                    // The status line is gone; ending the body early tells the client it's cut short.
                    tracing::error!(message = %e.message, "CSV export stopped");
                    s.done = true;
                    Some((Err(std::io::Error::other(e.message)), s))
                }
            }
        }
    });
    // Fused: the response's compression may poll again after the end.
    let body = stream::once(async move { Ok(header) }).chain(pages).fuse();
    csv_response(filename, Body::from_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let rows = vec![serde_json::json!({ "a": "plain", "b": "x,\"y\"\nz", "c": 12, "d": null })];
        let cols = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(lines(&rows, &cols(&["a", "b", "c", "d"])), "plain,\"x,\"\"y\"\"\nz\",12,\r\n");
        assert_eq!(header_line(&cols(&["user_id", "spend_usd"])), "user_id,spend_usd\r\n");
        // Text that a spreadsheet would run as a formula is prefixed with `'`; numbers are not.
        let rows = vec![
            serde_json::json!({ "a": "=HYPERLINK(\"x\")", "b": "+1", "c": "-2", "d": "@SUM(A1)", "e": "\tx", "f": -3, "g": "a=b" }),
        ];
        assert_eq!(
            lines(&rows, &cols(&["a", "b", "c", "d", "e", "f", "g"])),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\tx,-3,a=b\r\n"
        );
    }
}
