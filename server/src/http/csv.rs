//! CSV answers (RFC 4180: CRLF lines, a header row, fields quoted when they hold a comma, quote
//! or line break). The columns are the row type's fields in declaration order, read from the
//! schema the API document is made of, and each row is written from its JSON form by column
//! name, so the CSV, the JSON and the document of a view can't drift apart; long lists are
//! streamed page by page (one aggregation per export, or a keyset cursor; never OFFSET).

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

/// Rows already read (one aggregation), written out a page at a time: only the CSV text of one
/// page is in memory besides the rows.
pub fn stream_rows<T>(filename: &str, rows: Vec<T>) -> Response
where
    T: Serialize + utoipa::PartialSchema + Send + 'static,
{
    let columns = columns::<T>();
    let header = header_line(&columns);
    let mut rows = rows.into_iter();
    let pages = stream::iter(std::iter::from_fn(move || {
        let page: Vec<T> = rows.by_ref().take(EXPORT_PAGE as usize).collect();
        (!page.is_empty()).then(|| Ok::<_, std::io::Error>(lines(&page, &columns)))
    }));
    let body = stream::once(async move { Ok(header) }).chain(pages).fuse();
    csv_response(filename, Body::from_stream(body))
}

/// A long list streamed page by page with a keyset cursor: `fetch(start, limit)` returns a
/// page and where the next one starts (`None` at the end). Only one page is in memory at a
/// time; the next is read when the client has taken the last. At most `max_rows` rows when
/// given.
pub fn stream<T, C, F, Fut>(filename: &str, start: C, max_rows: Option<u32>, fetch: F) -> Response
where
    T: Serialize + utoipa::PartialSchema + Send + 'static,
    C: Send + 'static,
    F: FnMut(C, u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<C>), ApiError>> + Send + 'static,
{
    struct State<C, F> {
        fetch: F,
        next: Option<C>,
        left: u32,
    }
    let columns = columns::<T>();
    let header = header_line(&columns);
    let start = State { fetch, next: Some(start), left: max_rows.unwrap_or(u32::MAX) };
    let pages = stream::unfold(start, move |mut s| {
        let columns = columns.clone();
        async move {
            if s.left == 0 {
                return None;
            }
            let at = s.next.take()?;
            let limit = EXPORT_PAGE.min(s.left);
            match (s.fetch)(at, limit).await {
                Ok((rows, next)) => {
                    s.left = s.left.saturating_sub(rows.len() as u32);
                    s.next = next;
                    Some((Ok::<_, std::io::Error>(lines(&rows, &columns)), s))
                }
                Err(e) => {
                    // The status line is gone; ending the body early tells the client it's cut short.
                    tracing::error!(message = %e.message, "CSV export stopped");
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
