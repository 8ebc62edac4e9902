//! SQLite reads on the calling thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and hands
//! each query and each row across to the async task and back; under load those
//! hand-offs (futex waits and wake-ups) cost far more than the indexed lookups
//! themselves (docs/benchmarks.md). The hot reads — credentials, records,
//! connections and connection pages — therefore run here instead, on a small
//! pool of plain `rusqlite` connections to the same file, on the thread that
//! asks. WAL lets them read beside sqlx's writer, and each statement sees what
//! was committed before it started, so a write awaited through sqlx is visible
//! to the next read here.
//!
//! Point lookups and short pages run inline (microseconds to a fraction of a
//! millisecond). Deep offsets and substring searches can take far longer, so
//! [`Readers::run`] moves those off the async worker with `block_in_place` on
//! the multi-threaded runtime.
//!
//! The hot writes — a new Network connection, a new export run — go to one
//! writer thread with a connection of its own ([`Readers::write`]): each
//! transaction (`BEGIN IMMEDIATE` … `COMMIT`) crosses to it once, whole, and
//! writers queue in its channel. Through sqlx the same transaction crossed to a
//! worker thread and back for every statement while holding the write lock, and
//! the writers that found it taken slept in SQLite's busy handler (1, 2, 5,
//! 10 … ms) even after it was free (docs/benchmarks.md). The thread may still
//! wait in SQLite's busy handler for a writer elsewhere (sqlx's pool, another
//! process), which blocks no async worker. (Running the transaction under
//! `block_in_place` instead was as fast but each hand-off of the async worker
//! left a thread behind: ~45 threads and +50 MiB peak RSS under write load.)
//!
//! Other writes, migrations and the in-memory database stay on sqlx.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::types::FromSql;
use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql, TransactionBehavior};

use crate::{Result, StoreError};

/// Idle connections kept for reuse; more may be open for a moment under load.
const MAX_IDLE: usize = 16;
/// Pages past this many rows are read off the async worker ([`Readers::run`]):
/// SQLite reads every skipped row.
pub(crate) const LONG_OFFSET: i64 = 1_000;
/// Long reads running at once.
const LONG_READS: usize = 2;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    long_reads: tokio::sync::Semaphore,
    /// The writer thread's queue, started on first use; `None` after `close`.
    writer: Mutex<Option<std::sync::mpsc::Sender<WriteJob>>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            long_reads: tokio::sync::Semaphore::new(LONG_READS),
            writer: Mutex::new(None),
        }
    }

    fn open(&self) -> Result<Connection> {
        // Read-write open without CREATE, then query_only: a read-only open could
        // not recreate the WAL index after the writer's last connection closed.
        let conn = open_connection(&self.path)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) on the writer
    /// thread and commits it; an error from `f` rolls it back. Transactions
    /// run one at a time, in the order they were asked for.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let run = || -> Result<T> {
                let conn = conn.as_mut().map_err(|e| StoreError::Sqlite(clone_error(e)))?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            };
            let _ = done.send(run());
        });
        {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            let tx = match writer.as_ref() {
                Some(tx) => tx,
                None => writer.insert(self.start_writer()?),
            };
            tx.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The writer thread: opens its connection, then runs each job in turn until
    /// the queue's sender is dropped (`close`). A connection that could not open,
    /// or that a failed job left inside a transaction, is replaced before the next.
    fn start_writer(&self) -> Result<std::sync::mpsc::Sender<WriteJob>> {
        let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
        let path = self.path.clone();
        std::thread::Builder::new()
            .name("patchbay-sqlite-writer".into())
            .spawn(move || {
                let mut conn = open_writer(&path);
                for job in rx {
                    if conn.is_err() {
                        conn = open_writer(&path);
                    }
                    // A job that panics loses its answer (its caller gets Closed)
                    // but not the thread: later writes still run.
                    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err();
                    // A transaction whose rollback failed (I/O, say) leaves the
                    // connection unusable: start afresh.
                    if panicked || conn.as_ref().is_ok_and(|c| !c.is_autocommit()) {
                        conn = open_writer(&path);
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(tx)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        // A connection SQLite itself failed on (I/O, corruption, …) is dropped,
        // not reused; decoding errors leave it sound.
        let sound = !matches!(out, Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(..))));
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock `close` takes, so nothing is pooled after it.
        if sound && !self.closed.load(Ordering::Acquire) && idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        out
    }

    /// Runs `sql` (with `$n` parameters bound from `args`) and hands its rows,
    /// with the statement's column names, to `read`.
    fn rows<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        read: impl FnOnce(rusqlite::Rows<'_>, &[String]) -> Result<T>,
    ) -> Result<T> {
        self.with(|conn| rows_in(conn, sql, args, read))
    }

    /// The first row of `sql` (with `$n` parameters), decoded by `decode`.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        decode: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.with(|conn| query_opt_in(conn, sql, args, decode))
    }

    /// Every row of `sql`, decoded by `decode`, on this thread: no row crosses a thread.
    pub(crate) fn query_all<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        mut decode: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.rows(sql, args, |mut rows, names| {
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(decode(&Row::new(row, names))?);
            }
            Ok(out)
        })
    }

    /// Like [`Self::query_opt`] for a query that must return a row.
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        decode: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, decode)?.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Run `f`, a read: inline, or — when `long` (it may take many
    /// milliseconds) — without stalling the async worker's other tasks: on the
    /// multi-threaded runtime the worker hands them to another thread first.
    /// That hand-off costs about a third of a short page's throughput
    /// (docs/benchmarks.md), so short reads stay inline. At most
    /// [`LONG_READS`] long reads run at once (each holds a thread and a
    /// connection with its page cache); the rest wait their turn without
    /// blocking anything.
    pub(crate) async fn run<T>(&self, long: bool, f: impl FnOnce() -> T) -> T {
        if !long || !multi_thread() {
            return f();
        }
        let _slot = self.long_reads.acquire().await;
        tokio::task::block_in_place(f)
    }

    pub(crate) fn close(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        idle.clear();
        // The writer thread finishes what is queued, then closes its connection.
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A transaction for the writer thread, given its connection (or why it could not open one).
type WriteJob = Box<dyn FnOnce(&mut Result<Connection>) + Send>;

/// A connection to the existing file, waiting on locks as sqlx's do.
fn open_connection(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = open_connection(path)?;
    // As sqlx's connections are set up (SqliteStore::connect).
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// The error each job gets while the writer's connection cannot open.
fn clone_error(e: &StoreError) -> rusqlite::Error {
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, m)) => rusqlite::Error::SqliteFailure(*f, m.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(other.to_string()),
        ),
    }
}

fn multi_thread() -> bool {
    matches!(
        tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()),
        Ok(tokio::runtime::RuntimeFlavor::MultiThread)
    )
}

/// Runs `sql` (with `$n` parameters) in `conn` for its effect; the rows changed.
pub(crate) fn execute(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<usize> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_numbered(&mut stmt, args)?;
    Ok(stmt.raw_execute()?)
}

fn rows_in<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    read: impl FnOnce(rusqlite::Rows<'_>, &[String]) -> Result<T>,
) -> Result<T> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_numbered(&mut stmt, args)?;
    let names = column_names(&stmt);
    read(stmt.raw_query(), &names)
}

/// The first row of `sql` in `conn` (a reader's, or the writer's inside
/// [`Readers::write`]), decoded by `decode`.
pub(crate) fn query_opt_in<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    rows_in(conn, sql, args, |mut rows, names| match rows.next()? {
        Some(row) => Ok(Some(decode(&Row::new(row, names))?)),
        None => Ok(None),
    })
}

/// Whether `e` is SQLite refusing a duplicate key (as sqlx's `is_unique_violation`).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Bind `args` to `$1`, `$2`, … the way sqlx does: by the number in each
/// parameter's name, wherever and however often it appears.
fn bind_numbered(stmt: &mut CachedStatement<'_>, args: &[&dyn ToSql]) -> Result<()> {
    for i in 1..=stmt.parameter_count() {
        let n: usize = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("SQL parameter {i} is not of the form $n")))?;
        let arg = args.get(n.wrapping_sub(1)).ok_or_else(|| StoreError::Corrupt(format!("no value for ${n}")))?;
        stmt.raw_bind_parameter(i, *arg)?;
    }
    Ok(())
}

/// Bind values as rusqlite parameters.
pub(crate) fn args(binds: &[crate::backend::Bind]) -> Vec<&dyn ToSql> {
    binds.iter().map(|b| b as &dyn ToSql).collect()
}

fn column_names(stmt: &CachedStatement<'_>) -> Vec<String> {
    stmt.column_names().into_iter().map(str::to_string).collect()
}

/// A result row with `try_get("column")`, so the row decoders written for sqlx
/// rows read these too. Columns are found by exact name among the statement's
/// (looked up once per statement, not per row through SQLite), starting after
/// the last one read: decoders read in `SELECT` order, so that is one compare.
pub(crate) struct Row<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [String],
    next: Cell<usize>,
}

impl<'a> Row<'a> {
    fn new(row: &'a rusqlite::Row<'a>, names: &'a [String]) -> Self {
        Self { row, names, next: Cell::new(0) }
    }

    pub(crate) fn try_get<T: FromSql>(&self, column: &str) -> rusqlite::Result<T> {
        let n = self.names.len();
        let start = self.next.get();
        let idx = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.names[i] == column)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(column.to_string()))?;
        self.next.set(idx + 1);
        self.row.get(idx)
    }
}

impl ToSql for crate::backend::Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Text(s) => s.to_sql(),
            Self::Bool(b) => b.to_sql(),
            Self::Int(i) => i.to_sql(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_by_the_number_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path).unwrap().execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (a, b);").unwrap();
        let r = Readers::new(&path);
        // $2 appears first and $1 twice: values go by number, not by position.
        let got = r
            .query_one("SELECT $2 || '-' || $1 || '-' || $1 AS v", &[&"one", &"two"], |row| {
                Ok(row.try_get::<String>("v")?)
            })
            .unwrap();
        assert_eq!(got, "two-one-one");
        let none = r.query_opt("SELECT a FROM t WHERE a = $1", &[&1i64], |row| Ok(row.try_get::<i64>("a")?)).unwrap();
        assert_eq!(none, None);
        // query_only: a reader cannot write.
        let err = r.query_opt("INSERT INTO t (a) VALUES ($1) RETURNING a", &[&1i64], |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("readonly") || err.to_string().contains("read-only"), "{err}");
        r.close();
        assert!(matches!(r.query_opt("SELECT 1", &[], |_| Ok(())), Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn the_writer_survives_a_failed_or_panicking_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path).unwrap().execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (a UNIQUE);").unwrap();
        let r = Readers::new(&path);
        let insert = |v: i64| move |c: &Connection| execute(c, "INSERT INTO t (a) VALUES ($1)", &[&v]);
        assert_eq!(r.write(insert(1)).await.unwrap(), 1);
        // An error inside the transaction rolls back all of it.
        let failed = r
            .write(|c| {
                execute(c, "INSERT INTO t (a) VALUES (2)", &[])?;
                execute(c, "INSERT INTO t (a) VALUES (1)", &[])
            })
            .await
            .unwrap_err();
        assert!(is_unique_violation(&failed), "{failed}");
        // A panic loses that answer only.
        let lost = r.write(|_| -> Result<()> { panic!("a bug in a write") }).await;
        assert!(matches!(lost, Err(StoreError::Closed)));
        assert_eq!(r.write(insert(3)).await.unwrap(), 1);
        let all = r.query_all("SELECT a FROM t ORDER BY a", &[], |row| Ok(row.try_get::<i64>("a")?)).unwrap();
        assert_eq!(all, vec![1, 3]);
        r.close();
        assert!(matches!(r.write(insert(4)).await, Err(StoreError::Closed)));
    }

    #[test]
    fn a_missing_parameter_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (a)").unwrap();
        let r = Readers::new(&path);
        assert!(r.query_opt("SELECT $3", &[&1i64], |_| Ok(())).is_err());
        assert!(r.query_opt("SELECT ?", &[&1i64], |_| Ok(())).is_err());
    }
}
