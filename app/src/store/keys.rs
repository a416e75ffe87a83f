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

pub use crate::model::admin::KeyInfo;

pub(crate) fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Creates a key and returns the secret, which is not stored and cannot be shown again.
    pub async fn create_key(&self, project_id: i64, scope: Scope) -> Result<String, StoreError> {
        let secret = super::auth::random_hex(24)?;
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

    /// The project and prefix of a live key of one of `allowed` scopes, or `None`.
    pub async fn authenticate(
        &self,
        key: &str,
        allowed: &[Scope],
    ) -> Result<Option<(i64, String)>, StoreError> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT project_id, scope, prefix FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        )
        .bind(hash_key(key))
        .fetch_optional(&self.read)
        .await?;
        Ok(row.and_then(|(project, scope, prefix)| {
            Scope::parse(&scope).filter(|s| allowed.contains(s)).map(|_| (project, prefix))
        }))
    }

    /// Keys of one project (or all), newest first.
    pub async fn list_keys(&self, project_id: Option<i64>) -> Result<Vec<KeyInfo>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT k.id, p.name, k.scope, k.prefix, k.created_at, k.revoked_at
             FROM api_keys k JOIN projects p ON p.id = k.project_id
             WHERE ?1 IS NULL OR k.project_id = ?1 ORDER BY k.id DESC",
        )
        .bind(project_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, project, scope, prefix, created_at, revoked_at)| KeyInfo {
                id,
                project,
                scope,
                prefix,
                created_at,
                revoked_at,
            })
            .collect())
    }

    /// Revokes the live key with this id or prefix (of `project_id` when given). A prefix that
    /// matches several keys is refused; returns the revoked key.
    pub async fn revoke_key(
        &self,
        id_or_prefix: &str,
        project_id: Option<i64>,
    ) -> Result<KeyInfo, StoreError> {
        let live: Vec<KeyInfo> = self
            .list_keys(project_id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .filter(|k| {
                k.id.to_string() == id_or_prefix
                    || k.prefix.starts_with(id_or_prefix) && id_or_prefix.len() >= 6
            })
            .collect();
        let key = match live.as_slice() {
            [one] => one.clone(),
            [] => return Err(StoreError::NotFound(format!("no live key {id_or_prefix:?}"))),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "{id_or_prefix:?} matches {} keys; use the id",
                    live.len()
                )));
            }
        };
        sqlx::query("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1")
            .bind(key.id)
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        Ok(KeyInfo { revoked_at: Some(now_ms()), ..key })
    }
}
