//! One [`crate::Engine`] implementation per engine, each in its own module.

pub mod mls_rs;
pub mod openmls;
pub mod vmls;

pub use self::mls_rs::MlsRs;
pub use self::openmls::OpenMls;
pub use self::vmls::{Vmls, VmlsOn, VmlsPq};
