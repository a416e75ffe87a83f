//! Dashboard administrators and their login sessions (the password hashing itself is the
//! server's; this stores PHC strings and session-token hashes).

use super::keys::hash_key;
use super::{Store, StoreError, now_ms};

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut raw = vec![0u8; n];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub admin_id: i64,
    pub username: String,
    pub expires_at: i64,
}

impl Store {
    /// Whether any administrator exists.
    pub async fn admin_exists(&self) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admins").fetch_one(&self.read).await?;
        Ok(n > 0)
    }

    /// Creates `username` or replaces their password hash; signs them out everywhere.
    pub async fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO admins (username, password_hash, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE admin_id = (SELECT id FROM admins WHERE username = ?1)")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `(id, password hash)` of an administrator.
    pub async fn admin_password(&self, username: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT id, password_hash FROM admins WHERE username = ?1")
            .bind(username)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Starts a session lasting `ttl_ms`; returns its token (stored only as a hash).
    pub async fn create_session(&self, admin_id: i64, ttl_ms: i64) -> Result<String, StoreError> {
        let token = random_hex(32)?;
        let now = now_ms();
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1").bind(now).execute(&self.write).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at, expires_at)
             VALUES (?1, ?2, '', ?3, ?4)",
        )
        .bind(hash_key(&token))
        .bind(admin_id)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&self.write)
        .await?;
        Ok(token)
    }

    /// The live session of a token, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT s.admin_id, a.username, s.expires_at FROM sessions s JOIN admins a ON a.id = s.admin_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )
        .bind(hash_key(token))
        .bind(now_ms())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(admin_id, username, expires_at)| Session { admin_id, username, expires_at }))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?1")
            .bind(hash_key(token))
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
