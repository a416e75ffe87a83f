//! Projects: each has its own events, keys and settings.

use super::{Store, StoreError, now_ms};

/// The project that `serve` creates on first start and the dashboard shows.
pub const DEFAULT_PROJECT: &str = "default";

impl Store {
    /// The id of project `name`, creating it when missing.
    pub async fn ensure_project(&self, name: &str) -> Result<i64, StoreError> {
        sqlx::query("INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM projects WHERE name = ?1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        Ok(id)
    }

    /// The id of an existing project.
    pub async fn project_id(&self, name: &str) -> Result<i64, StoreError> {
        sqlx::query_as::<_, (i64,)>("SELECT id FROM projects WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?
            .map(|(id,)| id)
            .ok_or_else(|| StoreError::NotFound(format!("project {name:?}")))
    }
}
