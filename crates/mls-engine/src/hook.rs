//! [`HookError`]: how an application hook (the own-leaf resolver H2, the reuse guard H4)
//! reports that it cannot answer. The engine refuses the operation with the hook's error
//! inside ([`crate::group::GroupError::OwnLeafResolver`],
//! [`crate::framing::private::PrivateMessageError::ReuseGuard`]); the application gets its
//! own typed error back with [`HookError::downcast_ref`].

use std::error::Error;
use std::sync::Arc;

/// Why a hook gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    /// The hook does not handle this case (e.g. a resolver asked for an external commit's
    /// seed it does not derive). The engine treats the message as if there were no hook.
    #[error("the hook does not handle this")]
    Unsupported,
    /// The hook failed with the application's error.
    #[error("hook failed: {0}")]
    Failed(Arc<dyn Error + Send + Sync + 'static>),
}

impl HookError {
    /// A failure carrying the application's `error`.
    pub fn failed(error: impl Error + Send + Sync + 'static) -> Self {
        Self::Failed(Arc::new(error))
    }

    /// The application's error, if it is a `T`.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        match self {
            Self::Unsupported => None,
            Self::Failed(e) => e.downcast_ref::<T>(),
        }
    }
}

/// Two failures are equal when they carry the same error value (not merely an equal one).
impl PartialEq for HookError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unsupported, Self::Unsupported) => true,
            (Self::Failed(a), Self::Failed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for HookError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("mine")]
    struct Mine(u8);

    #[test]
    fn the_application_error_comes_back() {
        let e = HookError::failed(Mine(7));
        assert_eq!(e.downcast_ref::<Mine>(), Some(&Mine(7)));
        assert_eq!(e.clone(), e);
        assert_ne!(e, HookError::failed(Mine(7)));
        assert_eq!(HookError::Unsupported.downcast_ref::<Mine>(), None);
    }
}
