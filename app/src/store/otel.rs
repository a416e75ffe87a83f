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

    /// Projects and traces of the oldest `limit` calls received before `before` that still wait
    /// (an index walk of the waiting calls, oldest first).
    pub async fn otel_overdue(&self, before: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT project_id, trace_id FROM otel_spans INDEXED BY otel_spans_waiting
             WHERE call IS NOT NULL AND received_at < ?1 ORDER BY received_at LIMIT ?2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows.into_iter().filter(|r| seen.insert(r.clone())).collect())
    }

    /// Forgets spans received before `before` whose call (if any) was stored, a few thousand at
    /// a time (found through the index by arrival, deleted by key: the writer is shared with
    /// ingest).
    pub async fn otel_forget(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let keys: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT project_id, trace_id, span_id FROM otel_spans INDEXED BY otel_spans_received
                 WHERE received_at < ?1 AND call IS NULL LIMIT 5000",
            )
            .bind(before)
            .fetch_all(&self.read)
            .await?;
            let mut tx = self.write.begin().await?;
            for (p, t, sp) in &keys {
                // A span whose call started waiting again meanwhile (a re-sent one cannot) stays.
                total += delete_span(&mut tx, *p, t, sp, " AND call IS NULL").await?;
            }
            tx.commit().await?;
            if keys.len() < 5000 {
                return Ok(total);
            }
        }
    }

    /// Deletes, in the caller's transaction, each kept span that names `user_id` and every span
    /// under it (waiting calls included): a deleted user's calls must not be stored later. Other
    /// spans of those traces stay.
    pub(crate) async fn otel_forget_user(
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        user_id: &str,
    ) -> Result<u64, StoreError> {
        // Every span of the traces where some span names the user: (trace, span, parent, names).
        let rows: Vec<(String, String, Option<String>, bool)> = sqlx::query_as(
            "SELECT trace_id, span_id, json_extract(context, '$.parent'),
                    COALESCE(json_extract(context, '$.tags.userId') = ?2, 0)
             FROM otel_spans WHERE project_id = ?1 AND trace_id IN (
                 SELECT trace_id FROM otel_spans WHERE project_id = ?1 AND json_extract(context, '$.tags.userId') = ?2)",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut children: std::collections::HashMap<(&str, &str), Vec<&str>> =
            std::collections::HashMap::new();
        for (t, sp, parent, _) in &rows {
            if let Some(p) = parent {
                children.entry((t.as_str(), p.as_str())).or_default().push(sp.as_str());
            }
        }
        let mut doomed: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
        let mut stack: Vec<(&str, &str)> =
            rows.iter().filter(|r| r.3).map(|(t, sp, _, _)| (t.as_str(), sp.as_str())).collect();
        while let Some((t, sp)) = stack.pop() {
            if doomed.insert((t, sp)) {
                stack.extend(children.get(&(t, sp)).into_iter().flatten().map(|c| (t, *c)));
            }
        }
        let mut removed = 0;
        for (t, sp) in doomed {
            removed += delete_span(tx, project_id, t, sp, "").await?;
        }
        Ok(removed)
    }

    /// Spans waiting or kept, for `/metrics`.
    pub async fn otel_counts(&self) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as("SELECT COUNT(call), COUNT(*) FROM otel_spans").fetch_one(&self.read).await?)
    }
}

/// Deletes one kept span by its key (`extra`: a fixed further condition).
async fn delete_span(
    conn: &mut sqlx::SqliteConnection,
    project_id: i64,
    trace_id: &str,
    span_id: &str,
    extra: &'static str,
) -> Result<u64, StoreError> {
    let sql =
        format!("DELETE FROM otel_spans WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3{extra}");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(trace_id)
        .bind(span_id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
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

    /// A new database in its own directory, and its default project.
    async fn fresh(name: &str) -> (std::path::PathBuf, Store, i64) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok();
        let store = Store::open(&dir.join("otel.db")).await.expect("open");
        let p = store.ensure_project("default").await.expect("project");
        (dir, store, p)
    }

    #[tokio::test]
    async fn kept_spans_wait_until_done_and_resent_ones_change_nothing() {
        let (dir, store, p) = fresh("tt-otel").await;
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

    #[tokio::test]
    async fn a_deleted_users_spans_go_with_everything_under_them_and_nothing_else() {
        let (dir, store, p) = fresh("tt-otel-del").await;
        let ctx = |parent: Option<&str>, user: Option<&str>| {
            let mut c = serde_json::json!({ "start_ms": 0, "end_ms": 1, "name": "s" });
            if let Some(parent) = parent {
                c["parent"] = parent.into();
            }
            if let Some(user) = user {
                c["tags"] = serde_json::json!({ "userId": user });
            }
            c.to_string()
        };
        let at = |trace: &str, id: &str, parent: Option<&str>, user: Option<&str>, call: bool| WaitingSpan {
            context: ctx(parent, user),
            call: call.then(|| "{}".to_string()),
            ..span(trace, id, None)
        };
        store
            .otel_keep(
                p,
                &[
                    at("t1", "root", None, None, false),
                    at("t1", "frank", Some("root"), Some("frank"), false),
                    at("t1", "fcall", Some("frank"), None, true),
                    at("t1", "deep", Some("fcall"), None, false),
                    at("t1", "bob", Some("root"), Some("bob"), false),
                    at("t1", "bcall", Some("bob"), None, true),
                    // The same span id in a trace that does not name frank stays.
                    at("t2", "fcall", None, None, true),
                ],
            )
            .await
            .expect("keep");
        let mut conn = store.write.acquire().await.expect("conn");
        let removed = Store::otel_forget_user(&mut conn, p, "frank").await.expect("forget");
        drop(conn);
        assert_eq!(removed, 3);
        let mut left: Vec<(String, String)> = store
            .otel_traces(p, &["t1".into(), "t2".into()])
            .await
            .expect("read")
            .into_iter()
            .map(|s| (s.trace_id, s.span_id))
            .collect();
        left.sort();
        let want: Vec<(String, String)> = [("t1", "bcall"), ("t1", "bob"), ("t1", "root"), ("t2", "fcall")]
            .into_iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect();
        assert_eq!(left, want);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
