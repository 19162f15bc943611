//! STUB — being written by a helper.
use secrecy::SecretString;
pub const MAX_ROWS: usize = 50_000;
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
#[derive(Debug, Clone)]
pub struct MigrationRow {
    pub line: usize,
    pub email: String,
    pub user_name: String,
    pub password: SecretString,
    pub user_root: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid migration CSV")]
pub struct CsvErrors(pub Vec<CsvError>);
pub fn parse_migration_csv(_bytes: &[u8]) -> Result<Vec<MigrationRow>, CsvErrors> {
    todo!()
}
