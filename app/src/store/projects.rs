//! Projects: each has its own events, keys, privacy mode and retention.

use super::{Store, StoreError, now_ms};
pub use crate::model::admin::{Privacy, ProjectInfo};

/// The project that `serve` creates on first start and the dashboard shows.
pub const DEFAULT_PROJECT: &str = "default";

/// A change to a project's settings (`None` leaves a setting as it is).
#[derive(Clone, Debug, Default)]
pub struct ProjectChange {
    pub privacy: Option<Privacy>,
    /// `Some(None)` removes the retention limit.
    pub retention_days: Option<Option<i64>>,
}

type ProjectRow = (i64, String, String, Option<i64>, i64, Option<i64>);

/// Longest retention a project may have, in days (100 years; longer is "keep forever").
pub const MAX_RETENTION_DAYS: i64 = 36_500;

fn check_retention(days: i64) -> Result<(), StoreError> {
    if (1..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "retention is 1 to {MAX_RETENTION_DAYS} days (or none, to keep everything)"
        )))
    }
}

fn info((id, name, privacy, retention_days, created_at, privacy_changed_at): ProjectRow) -> ProjectInfo {
    ProjectInfo {
        id,
        name,
        privacy: Privacy::parse(&privacy).unwrap_or_default(),
        retention_days,
        created_at,
        privacy_changed_at,
    }
}

macro_rules! columns {
    () => {
        "id, name, privacy, retention_days, created_at, privacy_changed_at"
    };
}

/// Checks a project name: 1–64 letters, digits, `-`, `_` or `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

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

    /// Creates project `name`; an existing name is an error.
    pub async fn create_project(
        &self,
        name: &str,
        privacy: Privacy,
        retention_days: Option<i64>,
    ) -> Result<ProjectInfo, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::Invalid(
                "a project name is 1-64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if let Some(d) = retention_days {
            check_retention(d)?;
        }
        let done = sqlx::query(
            "INSERT INTO projects (name, created_at, privacy, retention_days) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .bind(privacy.as_str())
        .bind(retention_days)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("project {name:?} already exists")));
        }
        self.project(name).await
    }

    /// Changes a project's settings and returns them.
    pub async fn set_project(&self, name: &str, change: &ProjectChange) -> Result<ProjectInfo, StoreError> {
        let current = self.project(name).await?;
        if let Some(Some(d)) = change.retention_days {
            check_retention(d)?;
        }
        let privacy = change.privacy.unwrap_or(current.privacy);
        let changed_at = if privacy != current.privacy { Some(now_ms()) } else { current.privacy_changed_at };
        sqlx::query(
            "UPDATE projects SET privacy = ?2, retention_days = ?3, privacy_changed_at = ?4 WHERE id = ?1",
        )
        .bind(current.id)
        .bind(privacy.as_str())
        .bind(change.retention_days.unwrap_or(current.retention_days))
        .bind(changed_at)
        .execute(&self.write)
        .await?;
        self.project(name).await
    }

    /// Project `name` and its settings.
    pub async fn project(&self, name: &str) -> Result<ProjectInfo, StoreError> {
        let row: Option<ProjectRow> =
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM projects WHERE name = ?1"))
                .bind(name)
                .fetch_optional(&self.write)
                .await?;
        row.map(info).ok_or_else(|| StoreError::NotFound(format!("project {name:?}")))
    }

    /// Project `id` and its settings.
    pub async fn project_by_id(&self, id: i64) -> Result<ProjectInfo, StoreError> {
        let row: Option<ProjectRow> =
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM projects WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        row.map(info).ok_or_else(|| StoreError::NotFound(format!("project {id}")))
    }

    /// Every project, by name.
    pub async fn list_projects(&self) -> Result<Vec<ProjectInfo>, StoreError> {
        let rows: Vec<ProjectRow> =
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM projects ORDER BY name"))
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(info).collect())
    }

    /// The id of an existing project.
    pub async fn project_id(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.project(name).await?.id)
    }
}
