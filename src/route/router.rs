//! Repository name → where it is served (an SSH upstream or a storage host's git daemon),
//! from the configuration's `[[routes]]`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::git_daemon::GitDaemon;
use crate::proxy::Upstream;
use crate::route::policy::repo_glob;

/// Where a routed repository is served: the two remote backends.
#[derive(Clone, Debug)]
pub enum Hop {
    /// An SSH upstream (`[[upstreams]]`): the session is re-encrypted to it.
    Ssh(Arc<Upstream>),
    /// A storage host's `git daemon` (`[[git_daemons]]`): plaintext on a private network.
    GitDaemon(Arc<GitDaemon>),
}

impl Hop {
    /// Its configured name.
    pub fn name(&self) -> &str {
        match self {
            Hop::Ssh(u) => &u.name,
            Hop::GitDaemon(d) => &d.name,
        }
    }
}

/// `[[routes]]`: repositories (globs as in access rules) served by an upstream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Repository globs.
    pub repos: Vec<String>,
    /// The name of an upstream or a git daemon.
    pub upstream: String,
}

/// Repository name → where it is served, first matching route wins.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<(Vec<String>, Hop)>,
    by_name: HashMap<String, Hop>,
}

impl Router {
    /// From upstreams, git daemons and routes (routes naming neither are skipped; the
    /// configuration check refuses them earlier, and names are unique across both lists).
    pub fn new(
        upstreams: Vec<Arc<Upstream>>,
        daemons: Vec<Arc<GitDaemon>>,
        routes: &[RouteConfig],
    ) -> Self {
        let by_name: HashMap<String, Hop> = upstreams
            .into_iter()
            .map(Hop::Ssh)
            .chain(daemons.into_iter().map(Hop::GitDaemon))
            .map(|h| (h.name().to_owned(), h))
            .collect();
        let routes = routes
            .iter()
            .filter_map(|r| Some((r.repos.clone(), by_name.get(&r.upstream)?.clone())))
            .collect();
        Self { routes, by_name }
    }

    /// Where `repo` is served, if a route names it.
    pub fn route(&self, repo: &str) -> Option<Hop> {
        self.routes
            .iter()
            .find(|(globs, _)| globs.iter().any(|g| repo_glob(g, repo)))
            .map(|(_, h)| h.clone())
    }

    /// The upstream or git daemon called `name`.
    pub fn hop(&self, name: &str) -> Option<Hop> {
        self.by_name.get(name).cloned()
    }

    /// Every SSH upstream (for the pool reapers).
    pub fn upstreams(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.by_name.values().filter_map(|h| match h {
            Hop::Ssh(u) => Some(u),
            Hop::GitDaemon(_) => None,
        })
    }

    /// Whether anything is served remotely (no route can match otherwise).
    pub fn has_remotes(&self) -> bool {
        !self.by_name.is_empty()
    }

    /// Whether any route exists.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::test_upstream;

    #[test]
    fn first_matching_route_wins() {
        let up = test_upstream;
        let route = |repos: &[&str], upstream: &str| RouteConfig {
            repos: repos.iter().map(|r| (*r).to_owned()).collect(),
            upstream: upstream.into(),
        };
        let r = Router::new(
            vec![up("a"), up("b")],
            Vec::new(),
            &[
                route(&["team/special"], "b"),
                route(&["team/**"], "a"),
                route(&["x"], "nowhere"),
            ],
        );
        let name = |repo: &str| r.route(repo).map(|u| u.name().to_owned());
        assert_eq!(name("team/special.git").as_deref(), Some("b"));
        assert_eq!(name("team/app.git").as_deref(), Some("a"));
        assert_eq!(name("other.git"), None);
        assert_eq!(name("x"), None, "a route to an unknown upstream is skipped");
        assert_eq!(
            r.hop("b").map(|u| u.name().to_owned()).as_deref(),
            Some("b")
        );
    }
}
