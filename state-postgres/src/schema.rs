//! Versioned schema migrations: `migrations/NNNN_name.sql`, embedded in the
//! binary, applied by a small runner.
//!
//! Why not `sqlx::migrate!`: its migrations are static SQL recorded in one
//! `_sqlx_migrations` table per schema, while this crate's table names
//! depend on the configured schema and prefix, and two stores with
//! different prefixes in one schema must each get their tables. So the
//! files are templates (see [`crate::statements`]) and this runner records what
//! it applied in `{prefix}_migrations`, next to the tables it created.
//!
//! Safety with several instances migrating at once: everything happens in
//! one transaction that first takes `pg_advisory_xact_lock` on a key
//! derived from the schema. Concurrent migrators queue on that lock; each
//! then reads the applied versions *after* acquiring it (READ COMMITTED
//! gives every statement a fresh snapshot), so each migration is applied
//! exactly once, and a failure rolls the whole run back (PostgreSQL DDL is
//! transactional). Applying is idempotent: a second run applies nothing.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};
use state_api::{Result, StateError};

use crate::BACKEND;
use crate::connection::ConnectionPool;
use crate::statements::{Names, fnv1a};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub template: &'static str,
}

impl Migration {
    /// A fingerprint of the template (before rendering, so it is the same
    /// for every schema and prefix). Detects a migration edited after it
    /// was applied somewhere; not meant to resist tampering.
    fn checksum(&self) -> String {
        format!("{:016x}", fnv1a(self.template.as_bytes()))
    }
}

/// Every migration, in order. A file under `migrations/` that is not listed
/// here fails the crate's unit tests.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "entries", template: include_str!("../migrations/0001_entries.sql") },
    Migration { version: 2, name: "locks", template: include_str!("../migrations/0002_locks.sql") },
    Migration { version: 3, name: "schedules", template: include_str!("../migrations/0003_schedules.sql") },
    Migration { version: 4, name: "lock_waiters", template: include_str!("../migrations/0004_lock_waiters.sql") },
];

/// What [`PostgresStore::migrate`](crate::PostgresStore::migrate) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Versions applied by this call, in order; empty when the schema was
    /// already up to date.
    pub applied: Vec<i64>,
    /// The newest version now in the schema.
    pub current: i64,
}

const CREATE_LEDGER: &str = r#"
CREATE TABLE IF NOT EXISTS {{migrations}} (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"#;

/// Brings the schema up to date; see the module docs.
pub(crate) async fn run(
    pool: &ConnectionPool,
    names: &Names,
    on_error: impl Fn(sqlx::Error) -> StateError,
) -> Result<MigrationReport> {
    let mut pooled = pool.acquire().await.map_err(&on_error)?;
    let result = apply(pooled.connection().map_err(&on_error)?, names, &on_error).await;
    // A failed run is rolled back (at the latest on the connection's next
    // use); keep the connection only if everything went through.
    if result.is_ok() {
        pooled.release(&Ok::<(), sqlx::Error>(()));
    }
    result
}

async fn apply(
    connection: &mut PgConnection,
    names: &Names,
    on_error: impl Fn(sqlx::Error) -> StateError,
) -> Result<MigrationReport> {
    let mut tx = connection.begin().await.map_err(&on_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(names.migration_lock_key())
        .execute(&mut *tx)
        .await
        .map_err(&on_error)?;
    // CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the
    // database even when the schema exists; look first, so a role that may
    // only use an existing schema can still migrate.
    let schema_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(names.schema())
        .fetch_one(&mut *tx)
        .await
        .map_err(&on_error)?;
    if !schema_exists {
        sqlx::raw_sql(AssertSqlSafe(names.render("CREATE SCHEMA {{schema}}")))
            .execute(&mut *tx)
            .await
            .map_err(&on_error)?;
    }
    sqlx::raw_sql(AssertSqlSafe(names.render(CREATE_LEDGER))).execute(&mut *tx).await.map_err(&on_error)?;
    let rows = sqlx::query(AssertSqlSafe(names.render("SELECT version, checksum FROM {{migrations}}")))
        .fetch_all(&mut *tx)
        .await
        .map_err(&on_error)?;
    let mut done = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i64 = row.try_get("version").map_err(&on_error)?;
        let checksum: String = row.try_get("checksum").map_err(&on_error)?;
        done.push((version, checksum));
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        match done.iter().find(|(version, _)| *version == migration.version) {
            Some((_, checksum)) if *checksum == migration.checksum() => {}
            Some(_) => {
                let message = format!(
                    "migrate: migration {} ({}) was changed after it was applied to this schema",
                    migration.version, migration.name
                );
                return Err(StateError::failed(BACKEND, message, false));
            }
            None => {
                sqlx::raw_sql(AssertSqlSafe(names.render(migration.template)))
                    .execute(&mut *tx)
                    .await
                    .map_err(&on_error)?;
                sqlx::query(AssertSqlSafe(
                    names.render("INSERT INTO {{migrations}} (version, name, checksum) VALUES ($1, $2, $3)"),
                ))
                .bind(migration.version)
                .bind(migration.name)
                .bind(migration.checksum())
                .execute(&mut *tx)
                .await
                .map_err(&on_error)?;
                applied.push(migration.version);
            }
        }
    }
    tx.commit().await.map_err(&on_error)?;
    // Versions from a newer release of this crate are left alone (an older
    // instance keeps running during a rolling upgrade) and count as current.
    let current = done.iter().map(|(v, _)| *v).chain(applied.iter().copied()).max().unwrap_or(0);
    Ok(MigrationReport { applied, current })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
        assert_eq!(files, listed);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn templates_render_completely() {
        let names = Names::new("s", "p");
        for migration in MIGRATIONS {
            assert!(!names.render(migration.template).contains("{{"), "{}", migration.name);
        }
    }
}
