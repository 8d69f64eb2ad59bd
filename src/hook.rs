//! Git hooks: `tagguard hook pre-push` guards release tags before they leave the machine.
//!
//! The decisions are pure: [`pushed_ref`] reads what git (or the pre-commit framework) says is
//! being pushed, [`pre_push`] turns that, the policy's release pattern and what the registry
//! holds into [`crate::finding::Finding`]s; [`release_images`] says which image tags a release claims. Asking
//! the registry is [`observe`]'s job (the only network I/O); reading the repository and
//! printing happen in the binary; [`install`] writes the hook script.

pub mod install;
mod issue;
pub mod observe;
pub mod pre_push;
pub mod pushed_ref;
pub mod release_images;

pub use issue::{Issue, code};
pub use pushed_ref::{PushedRef, RemoteOid};
