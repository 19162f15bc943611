//! Backends of the shared traits.
