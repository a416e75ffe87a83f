//! An export's spans counted before it is decoded, without allocating per span: the protobuf
//! wire format walked three messages deep, the JSON form through serde with each span skipped.
//! A flood of tiny spans is refused before it can take gigabytes to decode.

use crate::http::error::ApiError;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The spans in an `ExportTraceServiceRequest`.
pub fn spans(protobuf: bool, bytes: &[u8]) -> Result<usize, ApiError> {
    if protobuf {
        proto_spans(bytes).ok_or_else(|| {
            ApiError::bad("body", "not an OTLP ExportTraceServiceRequest in protobuf: malformed wire format")
        })
    } else {
        let req: JsonRequest = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad("body", format!("not an OTLP ExportTraceServiceRequest in JSON: {e}"))
        })?;
        Ok(req
            .resource_spans
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.scope_spans.unwrap_or_default())
            .map(|s| s.spans.map_or(0, |v| v.len()))
            .sum())
    }
}

#[derive(Deserialize)]
struct JsonRequest {
    #[serde(rename = "resourceSpans")]
    resource_spans: Option<Vec<JsonResourceSpans>>,
}

#[derive(Deserialize)]
struct JsonResourceSpans {
    #[serde(rename = "scopeSpans")]
    scope_spans: Option<Vec<JsonScopeSpans>>,
}

#[derive(Deserialize)]
struct JsonScopeSpans {
    /// `IgnoredAny` takes no space: a million spans cost nothing here.
    spans: Option<Vec<IgnoredAny>>,
}

/// Reads a base-128 varint at `*at`.
fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, payload)` for each length-delimited field of a message; skips the others.
fn each_len_field<'a>(buf: &'a [u8], mut f: impl FnMut(u64, &'a [u8]) -> Option<()>) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        match key & 7 {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at = at.checked_add(8)?,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                f(key >> 3, buf.get(at..end)?)?;
                at = end;
            }
            5 => at = at.checked_add(4)?,
            _ => return None,
        }
    }
    (at == buf.len()).then_some(())
}

/// Spans of a protobuf request: field 1 (ResourceSpans) → field 2 (ScopeSpans) → field 2 (Span).
fn proto_spans(bytes: &[u8]) -> Option<usize> {
    let mut n = 0;
    each_len_field(bytes, |field, resource_spans| {
        if field != 1 {
            return Some(());
        }
        each_len_field(resource_spans, |field, scope_spans| {
            if field != 2 {
                return Some(());
            }
            each_len_field(scope_spans, |field, _span| {
                n += usize::from(field == 2);
                Some(())
            })
        })
    })?;
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    #[test]
    fn counts_match_the_decoded_request() {
        let span = |n: u8| Span {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            start_time_unix_nano: 1,
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue { value: Some(any_value::Value::IntValue(7)) }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: (0..3)
                .map(|r| ResourceSpans {
                    scope_spans: (0..2)
                        .map(|s| ScopeSpans { spans: (0..r + s).map(span).collect(), ..Default::default() })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        };
        let bytes = req.encode_to_vec();
        assert_eq!(spans(true, &bytes).ok(), Some(9));
        let json = serde_json::to_vec(&req).expect("json");
        assert_eq!(spans(false, &json).ok(), Some(9));
        assert!(spans(true, &bytes[..bytes.len() - 1]).is_err(), "a cut message is malformed");
        assert!(spans(true, b"\xff\xff\xff garbage").is_err());
        // A million empty spans in 2 MB: counted, not decoded.
        let mut flood = Vec::new();
        let scope: Vec<u8> = std::iter::repeat_n([0x12u8, 0x00], 1_000_000).flatten().collect();
        prost::encoding::encode_varint(0x0a, &mut flood);
        let mut rs = Vec::new();
        prost::encoding::encode_varint(0x12, &mut rs);
        prost::encoding::encode_varint(scope.len() as u64, &mut rs);
        rs.extend(&scope);
        prost::encoding::encode_varint(rs.len() as u64, &mut flood);
        flood.extend(&rs);
        assert_eq!(spans(true, &flood).ok(), Some(1_000_000));
    }
}
