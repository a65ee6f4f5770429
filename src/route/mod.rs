//! The front door's policy: which git command runs, for whom, and where — on a local
//! repository ([`crate::git`], the local backend) or on an upstream host ([`crate::proxy`], the
//! upstream backend). The decision is taken here, above both backends, which know nothing of
//! each other: [`policy`] (access rules, and a route an authorizer may choose), [`router`]
//! (the configured routes), [`http`] (access and routes from a site's HTTP API), [`FrontDoor`]
//! (the session handler that applies them).

mod front;
pub mod http;
mod line;
pub mod policy;
pub mod router;
mod svn;

pub use front::{FrontDoor, git_commands_only};
pub use http::HttpAccess;
