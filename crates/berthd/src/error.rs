//! berthd's domain error: what its managers (containers, networks, volumes, images, builds, ...) fail with.
//!
//! The classes are the Engine API's (a manager knows that a missing container is "not found" and a running one "in
//! conflict"), and the errors of the crates below berthd come in unchanged through `From`, so a manager writes `?`
//! and never picks an HTTP status. [`From<Error> for berth_api::Error`] is the one place where a domain error becomes
//! a status and a message; the routes and `server.rs` go through it.

/// Everything a berthd manager can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such container, image, network, volume, exec instance, ...
    #[error("{0}")]
    NotFound(String),
    /// A name in use, a running container, an image in use, ...
    #[error("{0}")]
    Conflict(String),
    /// A malformed body, parameter or option.
    #[error("{0}")]
    InvalidArgument(String),
    /// Already started, already stopped.
    #[error("{0}")]
    NotModified(String),
    /// An operation the object does not allow (removing a predefined network, an exhausted pool).
    #[error("{0}")]
    Forbidden(String),
    /// Registry credentials refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The object cannot do this (the logs of a container whose log driver cannot be read).
    #[error("{0}")]
    NotImplemented(String),
    /// A service this daemon does not run (swarm mode).
    #[error("{0}")]
    Unavailable(String),
    /// A real fault of the daemon or the host.
    #[error("{0}")]
    Internal(String),
    /// The content store failed (its own classes: not found, conflict, invalid, I/O).
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// Setting up a network failed.
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] berth_registry::Error),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
}

impl Error {
    /// Whether this is a "not found", from berthd or from the crate below that failed.
    pub fn is_not_found(&self) -> bool {
        use berth_store::StoreError as S;
        matches!(
            self,
            Error::NotFound(_) | Error::Store(S::NotFound(_)) | Error::Registry(berth_registry::Error::NotFound(_))
        ) || matches!(self, Error::Registry(berth_registry::Error::Store(S::NotFound(_))))
    }

    /// Whether this is a conflict, from berthd or from the crate below that failed.
    pub fn is_conflict(&self) -> bool {
        use berth_store::StoreError as S;
        matches!(
            self,
            Error::Conflict(_) | Error::Store(S::Conflict(_)) | Error::Network(berth_network::Error::Conflict(_))
        ) || matches!(self, Error::Registry(berth_registry::Error::Store(S::Conflict(_))))
    }
}

/// The errors of the API crate's own parsers (options, filters, versions) keep their class.
impl From<berth_api::Error> for Error {
    fn from(e: berth_api::Error) -> Self {
        use berth_api::Error as A;
        match e {
            A::NotFound(m) => Error::NotFound(m),
            A::Conflict(m) => Error::Conflict(m),
            A::InvalidArgument(m) => Error::InvalidArgument(m),
            A::NotModified(m) => Error::NotModified(m),
            A::Forbidden(m) => Error::Forbidden(m),
            A::Unauthorized(m) => Error::Unauthorized(m),
            A::NotImplemented(m) => Error::NotImplemented(m),
            A::Unavailable(m) => Error::Unavailable(m),
            A::Internal(m) => Error::Internal(m),
        }
    }
}

/// The one mapping of a domain error to an API class (and so to Docker's status and `{"message"}` body).
impl From<Error> for berth_api::Error {
    fn from(e: Error) -> Self {
        use berth_api::Error as A;
        match e {
            Error::NotFound(m) => A::NotFound(m),
            Error::Conflict(m) => A::Conflict(m),
            Error::InvalidArgument(m) => A::InvalidArgument(m),
            Error::NotModified(m) => A::NotModified(m),
            Error::Forbidden(m) => A::Forbidden(m),
            Error::Unauthorized(m) => A::Unauthorized(m),
            Error::NotImplemented(m) => A::NotImplemented(m),
            Error::Unavailable(m) => A::Unavailable(m),
            Error::Internal(m) => A::Internal(m),
            Error::Store(e) => store_class(e),
            Error::Network(e) => {
                use berth_network::Error as N;
                match e {
                    N::InvalidArgument(m) => A::InvalidArgument(m),
                    N::Conflict(m) => A::Conflict(m),
                    N::Exhausted(m) => A::Forbidden(m),
                    other => A::Internal(other.to_string()),
                }
            }
            Error::Registry(e) => {
                use berth_registry::Error as R;
                match e {
                    R::NotFound(m) => A::NotFound(m),
                    R::Unauthorized(m) => A::Unauthorized(m),
                    R::Denied(m) => A::Forbidden(m),
                    R::InvalidArgument(m) => A::InvalidArgument(m),
                    R::Store(s) => store_class(s),
                    other => A::Internal(other.to_string()),
                }
            }
            Error::Runtime(e) => A::Internal(e.to_string()),
        }
    }
}

fn store_class(e: berth_store::StoreError) -> berth_api::Error {
    use berth_api::Error as A;
    use berth_store::StoreError as S;
    match e {
        S::NotFound(m) => A::NotFound(m),
        S::Conflict(m) => A::Conflict(m),
        S::InvalidArgument(m) => A::InvalidArgument(m),
        other => A::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_survive_the_round_trip() {
        let e = berth_api::Error::from(Error::from(berth_api::Error::Conflict("in use".into())));
        assert_eq!(e, berth_api::Error::Conflict("in use".into()));
        assert_eq!(e.status(), 409);
    }

    #[test]
    fn lower_errors_keep_their_class() {
        let e = berth_api::Error::from(Error::from(berth_store::StoreError::NotFound("no such image".into())));
        assert_eq!(e.status(), 404);
        let e = berth_api::Error::from(Error::from(berth_network::Error::Exhausted("no subnet".into())));
        assert_eq!(e.status(), 403);
        let e = berth_api::Error::from(Error::from(berth_registry::Error::Denied("no".into())));
        assert_eq!(e, berth_api::Error::Forbidden("no".into()));
        let e = berth_api::Error::from(Error::from(berth_registry::Error::Store(
            berth_store::StoreError::InvalidArgument("bad".into()),
        )));
        assert_eq!(e.status(), 400);
    }
}
