//! The git-only policy: which commands run, on which repository, for whom, and how.

pub mod command;
pub mod policy;
pub mod process;
pub mod repo;
pub mod session;
