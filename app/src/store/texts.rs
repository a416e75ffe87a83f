//! Prompts and responses, each message stored once per project (`texts`, migration 13).
//!
//! A prompt is usually a JSON array of messages, and most messages repeat: the system prompt and
//! tool definitions of every call of a feature, and each turn of a conversation, which the next
//! call sends again with the whole history. A call keeps the numbers of its messages' rows
//! (`events.prompt_texts`, `events.response_texts`): a JSON array of ids for an array (its
//! elements, byte for byte), or one id for any other JSON text. A row counts the calls that name
//! it (`refs`, once per mention); deleting a call (user deletion, retention) releases its rows in
//! a trigger and deletes those no call names any more, so a deleted user's own messages leave the
//! file while a message other users' calls also sent stays theirs.
//!
//! Ingest finds repeats through a cache of recent messages in memory (`TextCache`, bounded in
//! bytes), confirmed against the table inside the writer's transaction: a row deleted since
//! (by this process or another) is stored again, never named. Ids are never given twice
//! (AUTOINCREMENT). Calls stored before migration 13 keep their text inline in `prompt` and
//! `response`.

use super::StoreError;
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes of message text the cache holds at most (two generations of half each).
const CACHE_BYTES: usize = 16 << 20;
/// A message longer than this is stored and named as any other but not kept in the cache.
const MAX_CACHED: usize = CACHE_BYTES / 16;

/// A stored prompt or response: its messages, or the whole text when it is not a JSON array
/// (or its elements don't rebuild it byte for byte).
#[derive(Debug, PartialEq)]
pub(crate) enum Parts<'a> {
    Messages(Vec<&'a str>),
    Whole(&'a str),
}

/// Splits JSON text into the elements of its top-level array, when rejoining them as
/// `[a,b,...]` gives back exactly the same text.
pub(crate) fn split(text: &str) -> Parts<'_> {
    match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
        Ok(items) => {
            let items: Vec<&str> = items.iter().map(|r| r.get()).collect();
            if join(&items) == text { Parts::Messages(items) } else { Parts::Whole(text) }
        }
        Err(_) => Parts::Whole(text),
    }
}

/// `[a,b,...]`: a prompt again from its messages.
fn join(items: &[&str]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// The ids a call keeps for its text (`events.prompt_texts`): `[3,7]` for messages, `17` for a
/// whole text.
fn encode(parts: &Parts<'_>, ids: &[i64]) -> String {
    match parts {
        Parts::Whole(_) => ids.first().map(i64::to_string).unwrap_or_default(),
        Parts::Messages(_) => {
            format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
        }
    }
}

/// Message text → row id, per project.
pub(crate) type TextIds = HashMap<i64, HashMap<Arc<str>, i64>>;

/// Recent messages; the older generation goes when the newer one fills half the budget.
#[derive(Default)]
pub(crate) struct TextCache {
    new: TextIds,
    old: TextIds,
    bytes: usize,
}

impl TextCache {
    fn get(&mut self, project_id: i64, text: &str) -> Option<i64> {
        if let Some(id) = self.new.get(&project_id).and_then(|m| m.get(text)) {
            return Some(*id);
        }
        let (key, id) = self.old.get_mut(&project_id)?.remove_entry(text)?;
        self.insert(project_id, key, id);
        Some(id)
    }

    fn insert(&mut self, project_id: i64, text: Arc<str>, id: i64) {
        if text.len() > MAX_CACHED {
            return;
        }
        self.bytes += text.len();
        self.new.entry(project_id).or_default().insert(text, id);
        if self.bytes > CACHE_BYTES / 2 {
            self.old = std::mem::take(&mut self.new);
            self.bytes = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.new.clear();
        self.old.clear();
        self.bytes = 0;
    }

    /// Rows a committed transaction stored.
    pub(crate) fn extend(&mut self, stored: TextIds) {
        for (project_id, texts) in stored {
            for (text, id) in texts {
                self.insert(project_id, text, id);
            }
        }
    }
}

/// Stores the prompts and responses of one batch's new calls in `texts`, inside the writer's
/// transaction, and returns what each call keeps (`None` for no text), in order.
/// `stored` collects the rows this transaction made, for the cache once it commits (and for the
/// group's later batches, which see them first).
pub(crate) async fn store(
    tx: &mut sqlx::SqliteConnection,
    cache: &std::sync::Mutex<TextCache>,
    stored: &mut TextIds,
    project_id: i64,
    texts: &[Option<&str>],
) -> Result<Vec<Option<String>>, StoreError> {
    let split: Vec<Option<Parts<'_>>> = texts.iter().map(|t| t.map(split)).collect();
    // Every distinct message, with how often the batch names it.
    let mut mentions: HashMap<&str, i64> = HashMap::new();
    for parts in split.iter().flatten() {
        match parts {
            Parts::Whole(t) => *mentions.entry(t).or_default() += 1,
            Parts::Messages(items) => items.iter().for_each(|t| *mentions.entry(t).or_default() += 1),
        }
    }
    if mentions.is_empty() {
        return Ok(vec![None; texts.len()]);
    }
    // Known rows: this transaction's, then the cache's once confirmed in the table.
    let mut ids: HashMap<&str, i64> = HashMap::with_capacity(mentions.len());
    let mut cached: Vec<(&str, i64)> = Vec::new();
    {
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        for text in mentions.keys() {
            if let Some(id) = stored.get(&project_id).and_then(|m| m.get(*text)) {
                ids.insert(text, *id);
            } else if let Some(id) = cache.get(project_id, text) {
                cached.push((text, id));
            }
        }
    }
    for chunk in cached.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM texts WHERE project_id = ");
        q.push_bind(project_id).push(" AND id IN (");
        let mut list = q.separated(", ");
        for (_, id) in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        let present: std::collections::HashSet<i64> =
            q.build_query_scalar::<i64>().fetch_all(&mut *tx).await?.into_iter().collect();
        ids.extend(chunk.iter().filter(|(_, id)| present.contains(id)).copied());
    }
    // Rows named again: one statement adds every count.
    let again: Vec<(i64, i64)> = ids.iter().map(|(t, id)| (*id, mentions[t])).collect();
    for chunk in again.chunks(400) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE texts SET refs = refs + v.n FROM (SELECT column1 AS id, column2 AS n FROM (",
        );
        q.push_values(chunk, |mut b, (id, n)| {
            b.push_bind(*id).push_bind(*n);
        });
        q.push(")) AS v WHERE texts.id = v.id");
        let done = q.build().execute(&mut *tx).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(StoreError::Io(std::io::Error::other("a stored message went missing")));
        }
    }
    // New rows: consecutive ids in VALUES order, ending at the last insert rowid (one statement
    // under the write lock; AUTOINCREMENT gives each one past the largest yet).
    let fresh: Vec<&str> = mentions.keys().filter(|t| !ids.contains_key(*t)).copied().collect();
    for chunk in fresh.chunks(300) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO texts (project_id, refs, body) ");
        q.push_values(chunk, |mut b, text| {
            b.push_bind(project_id).push_bind(mentions[text]).push_bind(*text);
        });
        let done = q.build().execute(&mut *tx).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(StoreError::Io(std::io::Error::other("a message of the batch was not stored")));
        }
        let first = done.last_insert_rowid() - chunk.len() as i64 + 1;
        for (text, id) in chunk.iter().zip(first..) {
            ids.insert(text, id);
            stored.entry(project_id).or_default().insert(Arc::from(*text), id);
        }
    }
    Ok(split
        .iter()
        .map(|parts| {
            let parts = parts.as_ref()?;
            let own: Vec<i64> = match parts {
                Parts::Whole(t) => vec![ids[t]],
                Parts::Messages(items) => items.iter().map(|t| ids[t]).collect(),
            };
            Some(encode(parts, &own))
        })
        .collect())
}

/// A call's prompt or response again from the ids it keeps; `None` if a row is missing.
pub(crate) async fn load(
    pool: &sqlx::SqlitePool,
    project_id: i64,
    kept: &str,
) -> Result<Option<String>, StoreError> {
    let (ids, whole): (Vec<i64>, bool) = if kept.starts_with('[') {
        match serde_json::from_str(kept) {
            Ok(ids) => (ids, false),
            Err(_) => return Ok(None),
        }
    } else {
        match kept.parse() {
            Ok(id) => (vec![id], true),
            Err(_) => return Ok(None),
        }
    };
    let mut bodies: HashMap<i64, String> = HashMap::new();
    for chunk in ids.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id, body FROM texts WHERE project_id = ");
        q.push_bind(project_id).push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        bodies.extend(q.build_query_as::<(i64, String)>().fetch_all(pool).await?);
    }
    let items: Option<Vec<&str>> = ids.iter().map(|id| bodies.get(id).map(String::as_str)).collect();
    Ok(items.map(|items| if whole { items.concat() } else { join(&items) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_splits_into_its_elements_and_joins_back_exactly() {
        let prompt = r#"[{"role":"system","content":"You are terse."},{"role":"user","content":"a, [b]"}]"#;
        let Parts::Messages(items) = split(prompt) else { panic!("an array of messages") };
        assert_eq!(
            items,
            vec![r#"{"role":"system","content":"You are terse."}"#, r#"{"role":"user","content":"a, [b]"}"#]
        );
        assert_eq!(join(&items), prompt);
        assert_eq!(split("[]"), Parts::Messages(vec![]));
        assert_eq!(join(&[]), "[]");
    }

    #[test]
    fn text_that_would_not_come_back_byte_for_byte_is_kept_whole() {
        for text in [r#"[1, 2]"#, r#" [1]"#, r#""just a string""#, r#"{"a":[1]}"#, "not json", "[1]x"] {
            assert_eq!(split(text), Parts::Whole(text), "{text}");
        }
        assert_eq!(encode(&Parts::Whole("x"), &[17]), "17");
        assert_eq!(encode(&Parts::Messages(vec!["1", "2"]), &[3, 7]), "[3,7]");
    }

    #[test]
    fn the_cache_keeps_recent_messages_within_its_budget() {
        let mut cache = TextCache::default();
        cache.insert(1, Arc::from("a"), 10);
        assert_eq!(cache.get(1, "a"), Some(10));
        assert_eq!(cache.get(2, "a"), None, "per project");
        // Filling the budget twice over pushes "a" out (it was not used since).
        let big = "x".repeat(MAX_CACHED - 4);
        for i in 0..(CACHE_BYTES / MAX_CACHED + 2) {
            cache.insert(1, Arc::from(format!("{i}{big}").as_str()), i as i64);
        }
        assert_eq!(cache.get(1, "a"), None);
        assert!(cache.bytes <= CACHE_BYTES / 2);
        cache.insert(1, Arc::from("y".repeat(MAX_CACHED + 1).as_str()), 99);
        assert_eq!(cache.get(1, &"y".repeat(MAX_CACHED + 1)), None, "too long to cache");
    }

    fn call(
        id: &str,
        user: &str,
        ts_ms: i64,
        prompt: &str,
        response: Option<&str>,
    ) -> super::super::ingest::EventIn {
        super::super::ingest::EventIn {
            id: id.into(),
            ts_ms,
            kind: "llm".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            tags: std::collections::BTreeMap::from([("userId".to_string(), user.to_string())]),
            prompt: Some(prompt.into()),
            response: response.map(str::to_string),
            ..Default::default()
        }
    }

    /// (rows, sum of refs) of `texts`.
    async fn rows(store: &super::super::Store) -> (i64, i64) {
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(refs), 0) FROM texts")
            .fetch_one(&store.read)
            .await
            .expect("texts")
    }

    /// Messages shared by calls are stored once and every call reads its own text back byte for
    /// byte; deleting a user releases their rows (only their own message goes), retention the
    /// rest; a row deleted behind the cache's back (another process) is stored again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_are_stored_once_and_go_with_the_last_call_naming_them() {
        let dir = super::super::scratch_dir("texts");
        let store = super::super::Store::open(&dir.join("t.db")).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let now = super::super::now_ms();
        let system = r#"{"role":"system","content":"You are the shop's assistant."}"#;
        let ask = |q: &str| format!(r#"[{system},{{"role":"user","content":"{q}"}}]"#);
        let (a1, a2, b1) = (ask("Where is my order?"), ask("secret-of-alice"), ask("Where is my order?"));
        let spaced = r#"[ {"role": "user"} ]"#;
        let batch = [
            call("e1", "alice", now - 60_000, &a1, Some(r#"[{"role":"assistant","content":"Friday."}]"#)),
            call("e2", "alice", now - 50_000, &a2, None),
            call("e3", "bob", now - 40_000, &b1, Some(r#"[{"role":"assistant","content":"Friday."}]"#)),
            call("e4", "bob", now - 30_000, spaced, Some(r#""plain text""#)),
        ];
        store.ingest(project, &[], &batch[..2]).await.expect("ingest");
        store.ingest(project, &[], &batch[2..]).await.expect("ingest");
        for e in &batch {
            let got = store.get_event(project, &e.id).await.expect("read").expect("stored");
            assert_eq!(
                (got.prompt.as_deref(), got.response.as_deref()),
                (e.prompt.as_deref(), e.response.as_deref()),
                "{}",
                e.id
            );
        }
        // system, the two questions, the answer, the spaced prompt and the plain text: six rows,
        // named 3 (system) + 2 + 1 + 2 (answer) + 1 + 1 times.
        assert_eq!(rows(&store).await, (6, 10));

        store.delete_user(project, "alice", "test").await.expect("delete");
        assert_eq!(
            rows(&store).await,
            (5, 5),
            "alice's own question went, the shared rows lost her mentions"
        );
        let (secret,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM texts WHERE body LIKE '%secret-of-alice%'")
                .fetch_one(&store.read)
                .await
                .expect("count");
        assert_eq!(secret, 0);
        let got = store.get_event(project, "e3").await.expect("read").expect("stored");
        assert_eq!(got.prompt.as_deref(), Some(b1.as_str()));

        // The deletion emptied the cache: a call after it stores its messages anew (and caches
        // them). Then another process deletes every call: the rows go, while this store's cache
        // still names them; the next call with the same messages stores them again.
        store.ingest(project, &[], &[call("e6", "bob", now - 35_000, &b1, None)]).await.expect("ingest");
        assert_eq!(rows(&store).await, (7, 7));
        let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("t.db").display()))
            .await
            .expect("open");
        sqlx::query("DELETE FROM events").execute(&other).await.expect("delete");
        other.close().await;
        assert_eq!(rows(&store).await, (0, 0), "no call names a row any more");
        store.ingest(project, &[], &[call("e5", "carol", now - 20_000, &b1, None)]).await.expect("ingest");
        let got = store.get_event(project, "e5").await.expect("read").expect("stored");
        assert_eq!(got.prompt.as_deref(), Some(b1.as_str()));
        assert_eq!(rows(&store).await, (2, 2));

        // Retention takes the last call, and its rows with it.
        store.apply_retention(project, 1, now + 3 * 86_400_000).await.expect("retention");
        assert_eq!(rows(&store).await, (0, 0));
    }
}
