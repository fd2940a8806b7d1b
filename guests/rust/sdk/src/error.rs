//! Errors a reconciler returns: the parent is invalid, or something is temporarily wrong.

use std::fmt;

use crate::wit;

/// Why a reconcile could not produce a desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The parent is wrong; the host reports it and waits for the parent to change.
    Invalid(String),
    /// Something temporary; the host retries with backoff.
    Transient(String),
}

impl Error {
    /// The parent is wrong (a bad spec value, say).
    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::Invalid(message.to_string())
    }

    /// Something temporary went wrong; retry later.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => write!(f, "invalid: {message}"),
            Self::Transient(message) => write!(f, "transient: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(message) => wit::Error::Invalid(message),
            Error::Transient(message) => wit::Error::Transient(message),
        }
    }
}
