//! The git-only policy: which commands run, on which repository, for whom.

pub mod command;
pub mod policy;
pub mod repo;
