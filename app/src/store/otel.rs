//! The waiting area of OpenTelemetry spans (`otel_spans`): what `POST /v1/traces` keeps so a
//! call can be attributed from spans that arrive in other requests. Opaque JSON here; the
//! server's `otel` module gives it meaning. Depends on SQLite only.

use super::{Store, StoreError};
use sqlx::{QueryBuilder, Sqlite};

/// One received span as the waiting area keeps it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitingSpan {
    pub trace_id: String,
    pub span_id: String,
    pub received_at: i64,
    pub is_root: bool,
    /// JSON of what the span says for attribution.
    pub context: String,
    /// JSON of the mapped call while it waits; `None` for other spans and stored calls.
    pub call: Option<String>,
}

/// How long spans that are not waiting calls are kept at least, for late children.
pub const CONTEXT_KEEP_MS: i64 = 15 * 60_000;

impl Store {
    /// Held while waiting calls are read, stored and marked done (see the field).
    pub async fn otel_gate(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.otel_gate.clone().read_owned().await
    }

    /// Held by a user deletion: no waiting call is being stored meanwhile.
    pub(crate) async fn otel_gate_exclusive(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.otel_gate.clone().write_owned().await
    }

    /// Stores the spans of one export durably (a span already kept is left as it is: a re-sent
    /// export changes nothing). Returns once committed.
    pub async fn otel_keep(&self, project_id: i64, spans: &[WaitingSpan]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for chunk in spans.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO otel_spans (project_id, trace_id, span_id, received_at, is_root, context, call) ",
            );
            q.push_values(chunk, |mut b, s| {
                b.push_bind(project_id)
                    .push_bind(&s.trace_id)
                    .push_bind(&s.span_id)
                    .push_bind(s.received_at)
                    .push_bind(s.is_root)
                    .push_bind(&s.context)
                    .push_bind(&s.call);
            });
            q.push(" ON CONFLICT (project_id, trace_id, span_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every kept span of the given traces.
    pub async fn otel_traces(
        &self,
        project_id: i64,
        trace_ids: &[String],
    ) -> Result<Vec<WaitingSpan>, StoreError> {
        let mut out = Vec::new();
        for chunk in trace_ids.chunks(300) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT trace_id, span_id, received_at, is_root, context, call FROM otel_spans WHERE project_id = ",
            );
            q.push_bind(project_id).push(" AND trace_id IN (");
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(id);
            }
            q.push(")");
            out.extend(q.build_query_as::<WaitingSpan>().fetch_all(&self.read).await?);
        }
        Ok(out)
    }

    /// The calls of these spans were stored as events: they wait no more.
    pub async fn otel_done(&self, project_id: i64, spans: &[(String, String)]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for (trace_id, span_id) in spans {
            sqlx::query(
                "UPDATE otel_spans SET call = NULL WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3",
            )
            .bind(project_id)
            .bind(trace_id)
            .bind(span_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Projects and traces with a call received before `before` that still waits, oldest first.
    pub async fn otel_overdue(&self, before: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT project_id, trace_id FROM otel_spans
             WHERE call IS NOT NULL AND received_at < ?1
             GROUP BY project_id, trace_id ORDER BY MIN(received_at) LIMIT ?2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Forgets spans received before `before` whose call (if any) was stored, a few thousand
    /// per statement (the writer is shared with ingest).
    pub async fn otel_forget(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM otel_spans WHERE (project_id, trace_id, span_id) IN (
                     SELECT project_id, trace_id, span_id FROM otel_spans
                     WHERE received_at < ?1 AND call IS NULL LIMIT 5000)",
            )
            .bind(before)
            .execute(&self.write)
            .await?
            .rows_affected();
            total += n;
            if n < 5000 {
                return Ok(total);
            }
        }
    }

    /// Spans waiting or kept, for `/metrics`.
    pub async fn otel_counts(&self) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as("SELECT COUNT(call), COUNT(*) FROM otel_spans").fetch_one(&self.read).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, span: &str, call: Option<&str>) -> WaitingSpan {
        WaitingSpan {
            trace_id: trace.into(),
            span_id: span.into(),
            received_at: 1_000,
            is_root: false,
            context: "{}".into(),
            call: call.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn kept_spans_wait_until_done_and_resent_ones_change_nothing() {
        let dir = std::env::temp_dir().join(format!("tt-otel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let db = dir.join("otel.db");
        let _ = std::fs::remove_file(&db);
        let store = Store::open(&db).await.expect("open");
        let p = store.ensure_project("default").await.expect("project");
        store.otel_keep(p, &[span("t1", "a", Some("{\"x\":1}")), span("t1", "b", None)]).await.expect("keep");
        // Re-sent with another payload: the first one stays.
        store.otel_keep(p, &[span("t1", "a", Some("{\"x\":2}"))]).await.expect("keep again");
        let got = store.otel_traces(p, &["t1".into()]).await.expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got.iter().find(|s| s.span_id == "a").and_then(|s| s.call.clone()).as_deref(),
            Some("{\"x\":1}")
        );
        assert_eq!(store.otel_overdue(2_000, 10).await.expect("overdue"), vec![(p, "t1".to_string())]);
        assert!(store.otel_overdue(1_000, 10).await.expect("overdue").is_empty());
        store.otel_done(p, &[("t1".into(), "a".into())]).await.expect("done");
        assert!(store.otel_overdue(2_000, 10).await.expect("overdue").is_empty());
        assert_eq!(store.otel_forget(2_000).await.expect("forget"), 2);
        assert!(store.otel_traces(p, &["t1".into()]).await.expect("read").is_empty());
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
