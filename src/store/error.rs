//! The store's errors, one enum per operation family as redb has them: [`OpenError`] for
//! opening a file (`Store::open`, `Store::reopen`, the open a compaction makes), [`StoreError`]
//! for reads and writes on an open handle, [`CompactError`] for compactions. Each carries
//! redb's or the OS's error as its source rather than a string of it, so a caller decides by
//! matching types: [`StoreError::needs_reopen`] tells the daemon when the handle must be opened
//! again, [`CompactError::is_refusal`] a compaction that did not run from one that failed.
//! Messages say what to do where there is something to do.

use std::path::PathBuf;

/// Opening the database file failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file's directory could not be created.
    #[error("cannot open the database {}: cannot create its directory: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database {} is locked: another vodprobe is running on this data_dir \
         (stop it, or point data_dir elsewhere)",
        path.display()
    )]
    AlreadyOpen { path: PathBuf },
    #[error(
        "this database was written by a newer vodprobe (schema version {found}, this binary \
         supports up to {supported}); upgrade, or point data_dir elsewhere"
    )]
    NewerSchema { found: u64, supported: u64 },
    /// redb could not open the file (not a database, an I/O error, a failed repair).
    #[error("cannot open the database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// The file opened, but checking its schema, creating its tables or migrating it failed.
    #[error("cannot open the database {}: {source}", path.display())]
    Schema {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// A read or write on an open database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage layer failed (an I/O error such as a full disk, or redb refusing further
    /// work on the file handle after one). redb's `Corrupted` is [`StoreError::Corrupt`].
    #[error("database I/O failed: {0}")]
    Storage(#[source] redb::StorageError),
    /// A transaction could not begin (its storage failure is [`StoreError::Storage`]).
    #[error("cannot begin a database transaction: {0}")]
    Transaction(#[source] redb::TransactionError),
    /// A table could not be opened: the file disagrees with this binary about a table it
    /// created itself (its storage failure is [`StoreError::Storage`]).
    #[error("cannot open a table of the database: {0}")]
    Table(#[source] redb::TableError),
    /// A commit failed without a storage failure (its storage failure is
    /// [`StoreError::Storage`]).
    #[error("cannot commit to the database: {0}")]
    Commit(#[source] redb::CommitError),
    #[error("the database is corrupt: {what}")]
    Corrupt { what: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    /// The handle has no open file: it was closed, or a reopen failed (until one succeeds).
    #[error("the database {} is closed (closed, or a reopen failed); reopen it", path.display())]
    Closed { path: PathBuf },
    /// Closing the file failed to flush or unlock it.
    #[error("closing the database failed: {0}")]
    Close(#[source] redb::DatabaseError),
}

impl StoreError {
    /// Whether the handle is unusable until the file is opened again ([`crate::store::Store::reopen`]):
    /// after an I/O error redb refuses further writes on the file handle (`PreviousIo`), and a
    /// closed handle answers nothing. Nothing committed is lost by a reopen. A corrupt record,
    /// an encoding failure or a table mismatch is not mended by one.
    pub fn needs_reopen(&self) -> bool {
        use redb::StorageError as S;
        match self {
            StoreError::Storage(storage) => matches!(
                storage,
                S::Io(_) | S::PreviousIo | S::DatabaseClosed | S::LockPoisoned(_) | S::Backend(_)
            ),
            StoreError::Closed { .. } => true,
            StoreError::Transaction(_)
            | StoreError::Table(_)
            | StoreError::Commit(_)
            | StoreError::Corrupt { .. }
            | StoreError::Encode { .. }
            | StoreError::Close(_) => false,
        }
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> Self {
        match error {
            redb::StorageError::Corrupted(what) => StoreError::Corrupt { what },
            other => StoreError::Storage(other),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(error: redb::TransactionError) -> Self {
        match error {
            redb::TransactionError::Storage(storage) => storage.into(),
            other => StoreError::Transaction(other),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(error: redb::CommitError) -> Self {
        match error {
            redb::CommitError::Storage(storage) => storage.into(),
            other => StoreError::Commit(other),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(error: redb::TableError) -> Self {
        match error {
            redb::TableError::Storage(storage) => storage.into(),
            other => StoreError::Table(other),
        }
    }
}

/// A compaction did not replace the file. Either it was refused or stopped before it could
/// change anything ([`CompactError::is_refusal`]: try again later), or it failed; in both
/// cases the database in use is the original, unchanged, except where a variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// Refused: another compaction of this file is running.
    #[error("another compaction is running")]
    Busy,
    /// Refused: the file system lacks room for the copy.
    #[error(
        "it needs about {} MiB free beside {} and {} MiB are; free some space",
        needed >> 20,
        path.display(),
        available >> 20
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    /// Refused: the progress callback (shutdown) stopped the copy.
    #[error("stopped before it finished")]
    Stopped,
    /// Refused: the store was closed (or a reopen failed) during the copy; it stays closed.
    #[error("the database was closed meanwhile")]
    Closed,
    /// Refused: after the last catch-up a table of the copy does not hold what the database
    /// holds.
    #[error(
        "{table} has {copied} entries in the copy but {expected} in the database; the database \
         stays as it was"
    )]
    Diverged {
        table: String,
        expected: u64,
        copied: u64,
    },
    /// Refused: the copy was renamed in but could not be opened, and the original is back.
    #[error("the copy could not be opened ({source}); the original stays in use")]
    CopyNotOpened {
        #[source]
        source: OpenError,
    },
    /// There is no file to compact.
    #[error("there is no database at {}", path.display())]
    Missing { path: PathBuf },
    /// A file operation of the compaction failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done to `path` ("sync", "remove the stale", ...).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copy could not be created.
    #[error("cannot create the copy {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// The copy could not be closed (flushed and unlocked).
    #[error("cannot close the copy {}: {source}", path.display())]
    CloseCopy {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// redb's own compaction of the copy's tail failed.
    #[error("cannot shrink the copy {}: {source}", path.display())]
    Shrink {
        path: PathBuf,
        #[source]
        source: redb::CompactionError,
    },
    /// The copy's write transactions refused a durability setting.
    #[error("cannot set the copy's durability: {0}")]
    Durability(#[source] redb::SetDurabilityError),
    /// The file holds tables this binary does not know; a copy would lose them.
    #[error(
        "compaction refused: the file holds tables this binary does not know ({}); nothing was changed",
        tables.join(", ")
    )]
    UnknownTables { tables: Vec<String> },
    /// A table of the copy does not hold as many entries as the original's.
    #[error("{table} has {copied} entries in the copy but {expected} in the original; nothing was changed")]
    Mismatch {
        table: String,
        expected: u64,
        copied: u64,
    },
    /// The copy replaced the database but could not be opened, and the original could not be
    /// put back: the handle is closed until a reopen (of the complete copy) succeeds.
    #[error("the copy replaced the database but could not be opened ({source}); reopen it")]
    SwappedNotOpened {
        #[source]
        source: OpenError,
    },
    /// Opening the file to compact failed (it is in use: [`OpenError::AlreadyOpen`]).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading the original or writing the copy failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CompactError {
    /// Whether the compaction was refused or stopped before it could change anything (it may
    /// run later), rather than failed.
    pub fn is_refusal(&self) -> bool {
        match self {
            CompactError::Busy
            | CompactError::NoSpace { .. }
            | CompactError::Stopped
            | CompactError::Closed
            | CompactError::Diverged { .. }
            | CompactError::CopyNotOpened { .. } => true,
            CompactError::Missing { .. }
            | CompactError::Io { .. }
            | CompactError::Create { .. }
            | CompactError::CloseCopy { .. }
            | CompactError::Shrink { .. }
            | CompactError::Durability(_)
            | CompactError::UnknownTables { .. }
            | CompactError::Mismatch { .. }
            | CompactError::SwappedNotOpened { .. }
            | CompactError::Open(_)
            | CompactError::Store(_) => false,
        }
    }
}

impl From<redb::StorageError> for CompactError {
    fn from(error: redb::StorageError) -> Self {
        CompactError::Store(error.into())
    }
}

impl From<redb::TransactionError> for CompactError {
    fn from(error: redb::TransactionError) -> Self {
        CompactError::Store(error.into())
    }
}

impl From<redb::TableError> for CompactError {
    fn from(error: redb::TableError) -> Self {
        CompactError::Store(error.into())
    }
}

impl From<redb::CommitError> for CompactError {
    fn from(error: redb::CommitError) -> Self {
        CompactError::Store(error.into())
    }
}
