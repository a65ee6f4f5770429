//! The local backend: git's command line ([`command`]), repositories under one root
//! ([`repo`]), and running git on one of them ([`process`]). What may run where is decided by
//! [`crate::route`].

pub mod command;
pub mod process;
pub mod repo;
