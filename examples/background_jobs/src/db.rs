//! The application's SQLite database (users, their sessions and uploaded
//! files, password-reset requests) and the cleanup queries that run on it.
//!
//! Secrets live here, not in job payloads: payloads are shown by the
//! dashboard, the CLI, logs and the dead-letter set, so a password-reset job
//! carries the id of its [`PasswordReset`] row and reads the token by it.
//!
//! Times are Unix seconds. `sessions.user_id` and `files.user_id` carry no
//! foreign key on purpose: rows written by older code or other tools can
//! point at users that are gone, and the orphan cleanups find them.
//!
//! `rusqlite` is blocking: call these from `tokio::task::spawn_blocking`. A
//! connection is opened per job (cheap for SQLite); WAL mode and a busy
//! timeout let concurrent jobs share the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    verified_at   INTEGER,
    deleted_at    INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS files (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    path       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS password_resets (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS password_resets_expires ON password_resets (expires_at);
";

/// A database error, with the file.
#[derive(Debug, thiserror::Error)]
#[error("database {path}")]
pub struct DbError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// The database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Db {
    path: PathBuf,
}

/// A user row to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser<'a> {
    /// Address.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Signed up at.
    pub created_at: i64,
    /// Last login, if any.
    pub last_login_at: Option<i64>,
    /// Address verified at, if verified.
    pub verified_at: Option<i64>,
    /// Deactivated at, if deactivated.
    pub deleted_at: Option<i64>,
}

/// Row counts, before and after a cleanup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCounts {
    /// All users.
    pub users: u64,
    /// Users not deactivated.
    pub active_users: u64,
    /// Users whose address is not verified.
    pub unverified_users: u64,
    /// Deactivated users waiting for deletion.
    pub deactivated_users: u64,
    /// All sessions.
    pub sessions: u64,
    /// Rows of uploaded files.
    pub files: u64,
}

/// A password-reset request: the secret token a reset link carries, kept
/// here so that the job that mails the link names the request by `id` only.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// The request's id (a ULID), what a job payload carries.
    pub id: String,
    /// The address the link goes to.
    pub email: String,
    /// The secret of the link: 64 hex digits from the operating system's
    /// random source (through `rand`'s thread generator).
    pub token: String,
    /// Created at (Unix seconds).
    pub created_at: i64,
    /// The link stops working at (Unix seconds).
    pub expires_at: i64,
}

/// Shows everything but the token.
impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("token", &"<secret>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PasswordReset {
    /// A new request for `email`, valid for `valid` from `now`, with a fresh
    /// id and a fresh random token.
    pub fn new(email: &str, valid: Duration, now: i64) -> Self {
        use rand::RngCore as _;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = secret.iter().map(|b| format!("{b:02x}")).collect();
        PasswordReset {
            id: ulid::Ulid::new().to_string(),
            email: email.to_owned(),
            token,
            created_at: now,
            expires_at: now.saturating_add(secs(valid)),
        }
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    unix(SystemTime::now())
}

/// A time in Unix seconds (0 before 1970).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Db {
    /// The database at `path` (created on first use).
    pub fn new(path: &Path) -> Self {
        Db { path: path.to_path_buf() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| DbError { path: self.path.display().to_string(), source }
    }

    /// Opens a connection (WAL, 5 s busy timeout).
    pub fn open(&self) -> Result<Connection, DbError> {
        let conn = Connection::open(&self.path).map_err(self.err())?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(self.err())?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(self.err())?;
        Ok(conn)
    }

    /// Creates the tables that are missing.
    pub fn migrate(&self) -> Result<(), DbError> {
        self.open()?.execute_batch(SCHEMA).map_err(self.err())
    }

    /// Inserts a user; returns its id.
    pub fn insert_user(&self, conn: &Connection, u: &NewUser<'_>) -> Result<i64, DbError> {
        conn.execute(
            "INSERT INTO users (email, name, created_at, last_login_at, verified_at, deleted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![u.email, u.name, u.created_at, u.last_login_at, u.verified_at, u.deleted_at],
        )
        .map_err(self.err())?;
        Ok(conn.last_insert_rowid())
    }

    /// Inserts a session.
    pub fn insert_session(
        &self,
        conn: &Connection,
        id: &str,
        user_id: i64,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), DbError> {
        conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, user_id, created_at, expires_at],
        )
        .map_err(self.err())?;
        Ok(())
    }

    /// Records an uploaded file (`path` relative to the user files folder).
    pub fn insert_file(&self, conn: &Connection, user_id: i64, path: &str, created_at: i64) -> Result<(), DbError> {
        conn.execute(
            "INSERT INTO files (user_id, path, created_at) VALUES (?1, ?2, ?3)",
            params![user_id, path, created_at],
        )
        .map_err(self.err())?;
        Ok(())
    }

    /// Stores a password-reset request.
    pub fn insert_password_reset(&self, conn: &Connection, reset: &PasswordReset) -> Result<(), DbError> {
        conn.execute(
            "INSERT INTO password_resets (id, email, token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![reset.id, reset.email, reset.token, reset.created_at, reset.expires_at],
        )
        .map_err(self.err())?;
        Ok(())
    }

    /// The password-reset request `id`, if it exists.
    pub fn password_reset(&self, conn: &Connection, id: &str) -> Result<Option<PasswordReset>, DbError> {
        let found = conn.query_row(
            "SELECT id, email, token, created_at, expires_at FROM password_resets WHERE id = ?1",
            [id],
            |r| {
                Ok(PasswordReset {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    token: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            },
        );
        match found {
            Ok(reset) => Ok(Some(reset)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(self.err()(e)),
        }
    }

    /// Row counts.
    pub fn counts(&self, conn: &Connection) -> Result<DbCounts, DbError> {
        let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| u64::try_from(n).unwrap_or(0));
        Ok(DbCounts {
            users: one("SELECT COUNT(*) FROM users").map_err(self.err())?,
            active_users: one("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL").map_err(self.err())?,
            unverified_users: one("SELECT COUNT(*) FROM users WHERE verified_at IS NULL").map_err(self.err())?,
            deactivated_users: one("SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL").map_err(self.err())?,
            sessions: one("SELECT COUNT(*) FROM sessions").map_err(self.err())?,
            files: one("SELECT COUNT(*) FROM files").map_err(self.err())?,
        })
    }

    /// Whether a user with this address exists.
    pub fn user_exists(&self, conn: &Connection, email: &str) -> Result<bool, DbError> {
        conn.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)", [email], |r| r.get(0))
            .map_err(self.err())
    }

    /// Deactivates verified users whose last login (or sign-up, if they never
    /// logged in) is older than `inactive_after`, and ends their sessions.
    /// Returns the users deactivated.
    pub fn deactivate_inactive_users(
        &self,
        conn: &mut Connection,
        now: i64,
        inactive_after: Duration,
    ) -> Result<u64, DbError> {
        let cutoff = now.saturating_sub(secs(inactive_after));
        let tx = conn.transaction().map_err(self.err())?;
        let n = tx
            .execute(
                "UPDATE users SET deleted_at = ?1
                 WHERE deleted_at IS NULL AND verified_at IS NOT NULL
                   AND COALESCE(last_login_at, created_at) < ?2",
                params![now, cutoff],
            )
            .map_err(self.err())?;
        tx.execute("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE deleted_at = ?1)", params![now])
            .map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(n as u64)
    }

    /// Deletes users who have not verified their address within
    /// `unverified_after` of signing up. Returns the users deleted.
    pub fn delete_unverified_users(
        &self,
        conn: &mut Connection,
        now: i64,
        unverified_after: Duration,
    ) -> Result<u64, DbError> {
        let cutoff = now.saturating_sub(secs(unverified_after));
        self.delete_users_where(conn, "verified_at IS NULL AND deleted_at IS NULL AND created_at < ?1", cutoff)
    }

    /// Deletes users deactivated more than `grace` ago, with their sessions
    /// and file rows (their files on disk become orphans). Returns the users
    /// deleted.
    pub fn purge_deleted_users(&self, conn: &mut Connection, now: i64, grace: Duration) -> Result<u64, DbError> {
        let cutoff = now.saturating_sub(secs(grace));
        self.delete_users_where(conn, "deleted_at IS NOT NULL AND deleted_at < ?1", cutoff)
    }

    fn delete_users_where(&self, conn: &mut Connection, condition: &str, cutoff: i64) -> Result<u64, DbError> {
        let tx = conn.transaction().map_err(self.err())?;
        for table in ["sessions", "files"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE user_id IN (SELECT id FROM users WHERE {condition})"),
                [cutoff],
            )
            .map_err(self.err())?;
        }
        let n = tx.execute(&format!("DELETE FROM users WHERE {condition}"), [cutoff]).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(n as u64)
    }

    /// Deletes sessions past their expiry. Returns how many.
    pub fn delete_expired_sessions(&self, conn: &Connection, now: i64) -> Result<u64, DbError> {
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now]).map(|n| n as u64).map_err(self.err())
    }

    /// Deletes sessions whose user is gone or deactivated. Returns how many.
    pub fn delete_orphaned_sessions(&self, conn: &Connection) -> Result<u64, DbError> {
        conn.execute("DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users WHERE deleted_at IS NULL)", [])
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// The paths of every file row (relative to the user files folder).
    pub fn file_paths(&self, conn: &Connection) -> Result<std::collections::HashSet<String>, DbError> {
        let mut stmt = conn.prepare("SELECT path FROM files").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (Db, Connection) {
        let dir = std::env::temp_dir().join(format!("bj-db-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::new(&dir.join("t.db"));
        db.migrate().expect("schema");
        let conn = db.open().expect("open");
        (db, conn)
    }

    #[test]
    fn user_cleanups() {
        let (db, mut conn) = db();
        let now = 1_000_000_000;
        let day = 86_400;
        let user = |email, created, login, verified, deleted| NewUser {
            email,
            name: "x",
            created_at: created,
            last_login_at: login,
            verified_at: verified,
            deleted_at: deleted,
        };
        let active = db
            .insert_user(&conn, &user("a@x", now - 500 * day, Some(now - day), Some(now - 499 * day), None))
            .expect("a");
        let idle =
            db.insert_user(&conn, &user("i@x", now - 800 * day, Some(now - 400 * day), Some(now), None)).expect("i");
        db.insert_user(&conn, &user("u@x", now - 10 * day, None, None, None)).expect("u");
        db.insert_user(&conn, &user("d@x", now - 900 * day, None, Some(now), Some(now - 40 * day))).expect("d");
        db.insert_session(&conn, "s1", active, now, now + day).expect("s1");
        db.insert_session(&conn, "s2", active, now - 2 * day, now - day).expect("s2");
        db.insert_session(&conn, "s3", idle, now, now + day).expect("s3");
        db.insert_session(&conn, "s4", 999, now, now + day).expect("s4");

        assert_eq!(db.deactivate_inactive_users(&mut conn, now, Duration::from_secs(365 * 86_400)).expect("q"), 1);
        assert_eq!(db.delete_unverified_users(&mut conn, now, Duration::from_secs(7 * 86_400)).expect("q"), 1);
        assert_eq!(db.purge_deleted_users(&mut conn, now, Duration::from_secs(30 * 86_400)).expect("q"), 1);
        assert_eq!(db.delete_expired_sessions(&conn, now).expect("q"), 1);
        assert_eq!(db.delete_orphaned_sessions(&conn).expect("q"), 1, "s4: its user never existed");
        let c = db.counts(&conn).expect("counts");
        assert_eq!((c.users, c.active_users, c.deactivated_users, c.sessions), (2, 1, 1, 1));
    }

    #[test]
    fn password_resets_are_stored_and_read_by_id() {
        let (db, conn) = db();
        let reset = PasswordReset::new("ann@example.com", Duration::from_secs(900), 1_000);
        assert_eq!(reset.token.len(), 64);
        assert!(reset.token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{reset:?}").contains(&reset.token), "Debug hides the token");
        assert_ne!(reset.token, PasswordReset::new("ann@example.com", Duration::from_secs(1), 0).token);
        db.insert_password_reset(&conn, &reset).expect("insert");
        assert_eq!(db.password_reset(&conn, &reset.id).expect("read"), Some(reset.clone()));
        assert_eq!(reset.expires_at, 1_900);
        assert_eq!(db.password_reset(&conn, "01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("read"), None);
    }
}
