//! The store's errors.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
    #[error("the database is corrupt: {what}")]
    Corrupt { what: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    /// Storage, transaction and commit failures (disk full, I/O errors); the message is redb's.
    #[error("database I/O failed: {0}")]
    Io(String),
    /// A compaction of the file in use did not happen or stopped; the file is unchanged.
    #[error("compaction did not run: {0}")]
    Compaction(String),
}

impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> Self {
        match error {
            redb::StorageError::Corrupted(what) => StoreError::Corrupt { what },
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(error: redb::TransactionError) -> Self {
        match error {
            redb::TransactionError::Storage(storage) => storage.into(),
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(error: redb::CommitError) -> Self {
        match error {
            redb::CommitError::Storage(storage) => storage.into(),
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(error: redb::TableError) -> Self {
        use redb::TableError as E;
        match error {
            E::Storage(storage) => storage.into(),
            // The file disagrees with this binary about a table it created itself.
            E::TableTypeMismatch { .. }
            | E::TableIsMultimap(_)
            | E::TableIsNotMultimap(_)
            | E::TypeDefinitionChanged { .. }
            | E::TableDoesNotExist(_) => StoreError::Corrupt {
                what: error.to_string(),
            },
            other => StoreError::Io(other.to_string()),
        }
    }
}
