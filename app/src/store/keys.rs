//! API keys: random secrets shown once, stored as SHA-256 hashes, scoped to one project.

use super::{Store, StoreError, now_ms};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Write events only.
    Ingest,
    /// Read API only.
    Read,
    /// Read API plus deletion and settings.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Creates a key and returns the secret, which is not stored and cannot be shown again.
    pub async fn create_key(&self, project_id: i64, scope: Scope) -> Result<String, StoreError> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| StoreError::NotFound(format!("no randomness: {e}")))?;
        let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("tt_{}_{secret}", scope.as_str());
        let prefix: String = key.chars().take(14).collect();
        sqlx::query(
            "INSERT INTO api_keys (project_id, scope, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(project_id)
        .bind(scope.as_str())
        .bind(prefix)
        .bind(hash_key(&key))
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(key)
    }

    /// The project a live key of one of `allowed` scopes belongs to, or `None`.
    pub async fn authenticate(&self, key: &str, allowed: &[Scope]) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT project_id, scope FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        )
        .bind(hash_key(key))
        .fetch_optional(&self.read)
        .await?;
        Ok(row.and_then(|(project, scope)| {
            Scope::parse(&scope).filter(|s| allowed.contains(s)).map(|_| project)
        }))
    }
}
