//! Interoperability with real peers: the OpenSSH `ssh` client against our server, and our
//! client against OpenSSH `sshd`, all on 127.0.0.1. A missing peer binary fails the test with
//! the Debian package to install (`bash .ci/run` installs them).

// Tests tweak one setting of a default config at a time.
#![allow(clippy::field_reassign_with_default)]

mod audit;
mod certificates;
mod client_sessions;
mod clients;
mod common;
mod descriptors;
mod forwarding_server;
mod git_clients;
mod git_daemon;
mod git_server;
mod haproxy;
mod hardening;
mod host_certificates;
mod host_keys;
mod http_backend;
mod key_options;
mod lifecycle;
mod lookup;
mod monitoring;
mod openssh_client;
mod openssh_server;
mod proxy;
mod raw_git;
mod served;
mod session_server;
mod sessions;
mod svn;
mod tunnel_example;
mod tunnels;
