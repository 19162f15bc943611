//! STUB — being written by a helper.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Mutf7Error(pub String);
pub fn decode(_s: &str) -> Result<String, Mutf7Error> {
    todo!()
}
pub fn encode(_s: &str) -> String {
    todo!()
}
