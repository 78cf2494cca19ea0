//! Writes kept for the end of a transaction and sent together.
//!
//! A batch of charges ends with five writes (its lots, journal entries, per-lot traces,
//! account totals and idempotency keys), and each statement is a round trip during which the
//! batch's row locks are held and its connection waits. On PostgreSQL they go as one
//! statement, each write a data-modifying `WITH` query, so the five cost one round trip. Such
//! queries all see the snapshot the statement began with and cannot see one another's rows,
//! so only writes that read nothing another one writes belong together. SQLite has no
//! data-modifying `WITH` queries, and a statement there is a call on the connection's own
//! thread rather than a round trip, so it gets one statement each, in order.

use super::StoreError;
use sqlx::{AnyConnection, Row};

/// A parameter of one write.
#[derive(Clone, Debug)]
pub enum Value {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Self {
        Value::MaybeText(text.map(str::to_owned))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

/// One write: its SQL with parameters numbered from `$1`, their values, and the number of
/// rows it must touch, if that is checked.
struct Write {
    sql: String,
    values: Vec<Value>,
    expect: Option<(u64, String)>,
}

/// Writes in the order they were added; [`Writes::run`] sends them.
#[derive(Default)]
pub struct Writes {
    writes: Vec<Write>,
}

impl Writes {
    /// Adds a write. `expect` is the number of rows it must touch and what to report when it
    /// touches another number (the store's data is then not what the transaction planned).
    pub fn add(&mut self, sql: String, values: Vec<Value>, expect: Option<(u64, String)>) {
        self.writes.push(Write {
            sql,
            values,
            expect,
        });
    }

    /// Sends the writes: one statement on PostgreSQL, one each on SQLite. Fails with
    /// [`StoreError::Corrupt`] when a checked write touched another number of rows.
    #[tracing::instrument(skip_all)]
    pub async fn run(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let postgres = super::is_postgres(conn);
        match self.writes.len() {
            0 => Ok(()),
            n if postgres && n > 1 => self.run_together(conn).await,
            _ => {
                for write in self.writes {
                    let mut query = sqlx::query(&write.sql);
                    for value in write.values {
                        query = bind(query, value);
                    }
                    let touched = query.execute(&mut *conn).await?.rows_affected();
                    check(touched, write.expect)?;
                }
                Ok(())
            }
        }
    }

    async fn run_together(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let mut parts = Vec::with_capacity(self.writes.len());
        let mut counts = Vec::with_capacity(self.writes.len());
        let mut offset = 0;
        for (i, write) in self.writes.iter().enumerate() {
            parts.push(format!(
                "w{i} AS ({} RETURNING 1)",
                renumber(write.sql.trim(), offset)
            ));
            counts.push(format!("(SELECT COUNT(*) FROM w{i}) AS n{i}"));
            offset += write.values.len();
        }
        let sql = format!("WITH {} SELECT {}", parts.join(", "), counts.join(", "));
        let mut query = sqlx::query(&sql);
        let mut expects = Vec::with_capacity(self.writes.len());
        for write in self.writes {
            for value in write.values {
                query = bind(query, value);
            }
            expects.push(write.expect);
        }
        let row = query.fetch_one(&mut *conn).await?;
        for (i, expect) in expects.into_iter().enumerate() {
            let touched: i64 = row.try_get(i)?;
            check(touched as u64, expect)?;
        }
        Ok(())
    }
}

/// The statement that opens a guarded run of writes ([`Writes::run_guarded`]): a `SELECT … FOR
/// UPDATE` (parameters from `$1`) that must find `wanted` rows, or nothing is written.
pub struct Guard {
    pub sql: String,
    pub values: Vec<Value>,
    pub wanted: u64,
    /// What it means when the guard finds fewer rows.
    pub what: String,
}

impl Writes {
    /// PostgreSQL only: sends `guard` and the writes as one statement, outside any transaction,
    /// so the database commits it by itself. The guard's rows are locked first, and every
    /// count — the guard's and each checked write's — is checked inside the statement by
    /// `tally_expect`, which fails it: then nothing of it is kept, and the error is a
    /// serialization failure ([`StoreError::is_retryable`]). With writes checked after their
    /// statement, as [`Writes::run`] checks them, a wrong count would come after the commit.
    #[tracing::instrument(skip_all)]
    pub async fn run_guarded(
        self,
        conn: &mut AnyConnection,
        guard: Guard,
    ) -> Result<(), StoreError> {
        let mut offset = guard.values.len();
        let mut parts = vec![format!("locked AS MATERIALIZED ({})", guard.sql.trim())];
        for (i, write) in self.writes.iter().enumerate() {
            parts.push(format!(
                "w{i} AS ({} RETURNING 1)",
                renumber(write.sql.trim(), offset)
            ));
            offset += write.values.len();
        }
        // The checks come in the order they are evaluated: the guard's first, so its locks
        // are taken, in its order, before any write touches a row.
        let mut checks = vec![format!(
            "tally_expect((SELECT COUNT(*) FROM locked), {}, ${})",
            guard.wanted,
            offset + 1
        )];
        let mut texts = vec![guard.what];
        for (i, write) in self.writes.iter().enumerate() {
            checks.push(match &write.expect {
                Some((wanted, what)) => {
                    texts.push(what.clone());
                    format!(
                        "tally_expect((SELECT COUNT(*) FROM w{i}), {wanted}, ${})",
                        offset + texts.len()
                    )
                }
                None => format!("(SELECT COUNT(*) FROM w{i})"),
            });
        }
        let sql = format!("WITH {} SELECT {}", parts.join(", "), checks.join(", "));
        let mut query = sqlx::query(&sql);
        for value in guard.values {
            query = bind(query, value);
        }
        for write in self.writes {
            for value in write.values {
                query = bind(query, value);
            }
        }
        for text in texts {
            query = query.bind(text);
        }
        query.fetch_one(&mut *conn).await?;
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind(query: AnyQuery<'_>, value: Value) -> AnyQuery<'_> {
    match value {
        Value::Text(text) => query.bind(text),
        Value::MaybeText(text) => query.bind(text),
        Value::Int(n) => query.bind(n),
    }
}

fn check(touched: u64, expect: Option<(u64, String)>) -> Result<(), StoreError> {
    match expect {
        Some((wanted, what)) if touched != wanted => Err(StoreError::Corrupt(what)),
        _ => Ok(()),
    }
}

/// The SQL with every parameter `$n` renumbered `$(n + offset)`. The writes' SQL holds no `$`
/// but its parameters.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_move_past_the_earlier_writes_ones() {
        assert_eq!(
            renumber("UPDATE t SET a = $1 WHERE b = $2 AND c = $10", 3),
            "UPDATE t SET a = $4 WHERE b = $5 AND c = $13"
        );
        assert_eq!(renumber("VALUES ($1, $2)", 0), "VALUES ($1, $2)");
    }
}
