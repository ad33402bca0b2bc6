//! The SQL text the store runs, kept as real files under `queries/` and
//! `migrations/`, embedded in the binary, and rendered once per store for
//! its schema and table prefix.
//!
//! Templates name tables through placeholders: `{{entries}}`, `{{locks}}`
//! and `{{migrations}}` become schema-qualified, double-quoted names;
//! `{{schema}}` the quoted schema; `{{prefix}}` the bare prefix, which the
//! templates only use inside double quotes (for index names). Both names
//! were validated by [`PostgresConfig`](crate::PostgresConfig) to
//! `[a-z_][a-z0-9_]*`, so splicing them cannot change a statement's
//! meaning; values always travel as bind parameters.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::config::quoted;

/// The names the templates refer to.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    schema: String,
    prefix: String,
}

impl Names {
    pub(crate) fn new(schema: &str, prefix: &str) -> Names {
        Names { schema: schema.to_owned(), prefix: prefix.to_owned() }
    }

    fn table(&self, suffix: &str) -> String {
        format!("{}.{}", quoted(&self.schema), quoted(&format!("{}_{suffix}", self.prefix)))
    }

    /// The schema name, unquoted (for catalog lookups by value).
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// The NOTIFY channel on which releases of this store's locks are
    /// announced. Stores in different schemas with the same prefix share
    /// it, which only costs their waiters a spurious wake-up.
    pub(crate) fn lock_channel(&self) -> String {
        format!("{}_locks", self.prefix)
    }

    /// A stable number for `pg_advisory_xact_lock`, so that migrators of one
    /// schema serialize. FNV-1a: stable across builds and platforms, which
    /// `std`'s hasher does not promise.
    pub(crate) fn migration_lock_key(&self) -> i64 {
        i64::from_ne_bytes(fnv1a(format!("statekit-migrate:{}", self.schema).as_bytes()).to_ne_bytes())
    }

    /// `template` with every placeholder replaced.
    pub(crate) fn render(&self, template: &str) -> String {
        template
            .replace("{{entries}}", &self.table("entries"))
            .replace("{{locks}}", &self.table("locks"))
            .replace("{{migrations}}", &self.table("migrations"))
            .replace("{{schema}}", &quoted(&self.schema))
            .replace("{{prefix}}", &self.prefix)
    }

    fn statement(&self, template: &str) -> SqlStr {
        // Sound: the only spliced text is the two validated identifiers (see
        // the module docs). An `Arc<str>` makes every clone free.
        AssertSqlSafe(Arc::<str>::from(self.render(template))).into_sql_str()
    }
}

/// Every statement of the store, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub get: SqlStr,
    pub get_locked: SqlStr,
    pub put_always: SqlStr,
    pub put_if_absent: SqlStr,
    pub put_if_version: SqlStr,
    pub delete: SqlStr,
    pub increment: SqlStr,
    pub scan: SqlStr,
    pub scan_unbounded: SqlStr,
    pub reap: SqlStr,
    pub usage: SqlStr,
    pub lock_try_acquire: SqlStr,
    pub lock_extend: SqlStr,
    pub lock_release: SqlStr,
    pub lock_is_held: SqlStr,
    pub fence: SqlStr,
}

impl Statements {
    pub(crate) fn new(names: &Names) -> Statements {
        Statements {
            get: names.statement(include_str!("../queries/get.sql")),
            get_locked: names.statement(include_str!("../queries/get_locked.sql")),
            put_always: names.statement(include_str!("../queries/put_always.sql")),
            put_if_absent: names.statement(include_str!("../queries/put_if_absent.sql")),
            put_if_version: names.statement(include_str!("../queries/put_if_version.sql")),
            delete: names.statement(include_str!("../queries/delete.sql")),
            increment: names.statement(include_str!("../queries/increment.sql")),
            scan: names.statement(include_str!("../queries/scan.sql")),
            scan_unbounded: names.statement(include_str!("../queries/scan_unbounded.sql")),
            reap: names.statement(include_str!("../queries/reap.sql")),
            usage: names.statement(include_str!("../queries/usage.sql")),
            lock_try_acquire: names.statement(include_str!("../queries/lock_try_acquire.sql")),
            lock_extend: names.statement(include_str!("../queries/lock_extend.sql")),
            lock_release: names.statement(include_str!("../queries/lock_release.sql")),
            lock_is_held: names.statement(include_str!("../queries/lock_is_held.sql")),
            fence: names.statement(include_str!("../queries/fence.sql")),
        }
    }

    /// Every statement, for checks over all of them.
    #[cfg(test)]
    fn all(&self) -> Vec<&SqlStr> {
        vec![
            &self.get,
            &self.get_locked,
            &self.put_always,
            &self.put_if_absent,
            &self.put_if_version,
            &self.delete,
            &self.increment,
            &self.scan,
            &self.scan_unbounded,
            &self.reap,
            &self.usage,
            &self.lock_try_acquire,
            &self.lock_extend,
            &self.lock_release,
            &self.lock_is_held,
            &self.fence,
        ]
    }
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_rendered_and_names_are_quoted() {
        let names = Names::new("app", "state");
        let statements = Statements::new(&names);
        for sql in statements.all() {
            assert!(!sql.as_str().contains("{{"), "{}", sql.as_str());
        }
        assert!(statements.get.as_str().contains(r#"FROM "app"."state_entries""#));
        assert!(statements.lock_is_held.as_str().contains(r#""app"."state_locks""#));
    }

    #[test]
    fn the_migration_lock_depends_only_on_the_schema() {
        assert_eq!(Names::new("a", "x").migration_lock_key(), Names::new("a", "y").migration_lock_key());
        assert_ne!(Names::new("a", "x").migration_lock_key(), Names::new("b", "x").migration_lock_key());
    }
}
