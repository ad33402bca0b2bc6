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
            .replace("{{lock_waiters}}", &self.table("lock_waiters"))
            .replace("{{schedules}}", &self.table("schedules"))
            .replace("{{migrations}}", &self.table("migrations"))
            .replace("{{schema}}", &quoted(&self.schema))
            .replace("{{prefix}}", &self.prefix)
    }

    /// Both forms of a write template. The template starts its `WITH` list
    /// with `{{fence:$a,$b}} ` and gates every part of the write on
    /// `{{held}}`: the plain form drops the first and reads the second as
    /// `true`; the fenced form makes the first the CTE `fence`
    /// (`queries/fence.sql` with the lock name `$a` and the token `$b`) and
    /// the second `EXISTS (SELECT 1 FROM fence)`.
    fn write(&self, template: &str) -> Write {
        let (before, params, after) = split_fence(template);
        let plain = format!("{before}{after}").replace("{{held}}", "true");
        let (name, token) = params.split_once(',').unwrap_or((params, params));
        let check: String = include_str!("../queries/fence.sql")
            .lines()
            .filter(|line| !line.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("$NAME", name.trim())
            .replace("$TOKEN", token.trim());
        let fenced = format!("{before}fence AS MATERIALIZED (\n{check}\n), {after}")
            .replace("{{held}}", "EXISTS (SELECT 1 FROM fence)");
        Write { plain: self.statement(&plain), fenced: self.statement(&fenced) }
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
    pub put_always: Write,
    pub put_if_absent: Write,
    pub put_if_version: Write,
    pub delete: Write,
    pub increment: Write,
    pub scan: SqlStr,
    pub scan_unbounded: SqlStr,
    pub reap: SqlStr,
    pub usage: SqlStr,
    pub lock_try_acquire: SqlStr,
    pub lock_leave: SqlStr,
    pub lock_extend: SqlStr,
    pub lock_release: SqlStr,
    pub lock_is_held: SqlStr,
    pub schedule_put: SqlStr,
    pub schedule_cancel: SqlStr,
    pub schedule_due: SqlStr,
    pub schedule_claim: SqlStr,
    pub schedule_complete: SqlStr,
    pub schedule_release: SqlStr,
}

/// A write statement in its two forms: plain, and fenced (the fence's
/// check, `queries/fence.sql`, first, and every part of the write gated
/// on it), rendered from one template.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    plain: SqlStr,
    fenced: SqlStr,
}

impl Write {
    /// The fenced form when `fenced`, else the plain one.
    pub(crate) fn form(&self, fenced: bool) -> SqlStr {
        if fenced { self.fenced.clone() } else { self.plain.clone() }
    }
}

impl Statements {
    pub(crate) fn new(names: &Names) -> Statements {
        Statements {
            get: names.statement(include_str!("../queries/get.sql")),
            get_locked: names.statement(include_str!("../queries/get_locked.sql")),
            put_always: names.write(include_str!("../queries/put_always.sql")),
            put_if_absent: names.write(include_str!("../queries/put_if_absent.sql")),
            put_if_version: names.write(include_str!("../queries/put_if_version.sql")),
            delete: names.write(include_str!("../queries/delete.sql")),
            increment: names.write(include_str!("../queries/increment.sql")),
            scan: names.statement(include_str!("../queries/scan.sql")),
            scan_unbounded: names.statement(include_str!("../queries/scan_unbounded.sql")),
            reap: names.statement(include_str!("../queries/reap.sql")),
            usage: names.statement(include_str!("../queries/usage.sql")),
            lock_try_acquire: names.statement(include_str!("../queries/lock_try_acquire.sql")),
            lock_leave: names.statement(include_str!("../queries/lock_leave.sql")),
            lock_extend: names.statement(include_str!("../queries/lock_extend.sql")),
            lock_release: names.statement(include_str!("../queries/lock_release.sql")),
            lock_is_held: names.statement(include_str!("../queries/lock_is_held.sql")),
            schedule_put: names.statement(include_str!("../queries/schedule_put.sql")),
            schedule_cancel: names.statement(include_str!("../queries/schedule_cancel.sql")),
            schedule_due: names.statement(include_str!("../queries/schedule_due.sql")),
            schedule_claim: names.statement(include_str!("../queries/schedule_claim.sql")),
            schedule_complete: names.statement(include_str!("../queries/schedule_complete.sql")),
            schedule_release: names.statement(include_str!("../queries/schedule_release.sql")),
        }
    }

    /// Every statement, for checks over all of them.
    #[cfg(test)]
    fn all(&self) -> Vec<&SqlStr> {
        vec![
            &self.get,
            &self.get_locked,
            &self.put_always.plain,
            &self.put_always.fenced,
            &self.put_if_absent.plain,
            &self.put_if_absent.fenced,
            &self.put_if_version.plain,
            &self.put_if_version.fenced,
            &self.delete.plain,
            &self.delete.fenced,
            &self.increment.plain,
            &self.increment.fenced,
            &self.scan,
            &self.scan_unbounded,
            &self.reap,
            &self.usage,
            &self.lock_try_acquire,
            &self.lock_leave,
            &self.lock_extend,
            &self.lock_release,
            &self.lock_is_held,
            &self.schedule_put,
            &self.schedule_cancel,
            &self.schedule_due,
            &self.schedule_claim,
            &self.schedule_complete,
            &self.schedule_release,
        ]
    }
}

/// `template` around its `{{fence:...}} ` marker: the text before, the
/// marker's parameters, and the text after (the whole template, no
/// parameters, and nothing, without a marker).
fn split_fence(template: &str) -> (&str, &str, &str) {
    const OPEN: &str = "{{fence:";
    let Some(start) = template.find(OPEN) else { return (template, "", "") };
    let rest = &template[start + OPEN.len()..];
    let Some(end) = rest.find("}}") else { return (template, "", "") };
    (&template[..start], &rest[..end], rest[end + 2..].trim_start_matches(' '))
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
    fn writes_have_a_plain_and_a_fenced_form() {
        let statements = Statements::new(&Names::new("app", "state"));
        let writes = [
            (&statements.put_always, "$5", "$6"),
            (&statements.put_if_absent, "$5", "$6"),
            (&statements.put_if_version, "$6", "$7"),
            (&statements.delete, "$4", "$5"),
            (&statements.increment, "$5", "$6"),
        ];
        let code = |sql: &SqlStr| sql.as_str().lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
        for (write, name, token) in writes {
            let (plain, fenced) = (write.form(false), write.form(true));
            let body = code(&plain);
            assert!(!body.contains("fence") && !body.contains(name), "{body}");
            assert!(plain.as_str().contains("WHERE NOT true"), "{}", plain.as_str());
            let check = format!("name = {name} AND fencing = {token}");
            assert!(fenced.as_str().contains(&check), "{}", fenced.as_str());
            assert!(fenced.as_str().contains("WITH fence AS MATERIALIZED"), "{}", fenced.as_str());
            assert!(fenced.as_str().contains("FOR SHARE"), "{}", fenced.as_str());
            assert!(!fenced.as_str().contains("$NAME") && !fenced.as_str().contains("{{"), "{}", fenced.as_str());
        }
    }

    #[test]
    fn the_migration_lock_depends_only_on_the_schema() {
        assert_eq!(Names::new("a", "x").migration_lock_key(), Names::new("a", "y").migration_lock_key());
        assert_ne!(Names::new("a", "x").migration_lock_key(), Names::new("b", "x").migration_lock_key());
    }
}
