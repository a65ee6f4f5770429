//! Repository name → upstream, from the configuration's `[[routes]]`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::proxy::Upstream;
use crate::route::policy::repo_glob;

/// `[[routes]]`: repositories (globs as in access rules) served by an upstream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Repository globs.
    pub repos: Vec<String>,
    /// The upstream's name.
    pub upstream: String,
}

/// Repository name → upstream, first matching route wins.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<(Vec<String>, Arc<Upstream>)>,
    by_name: HashMap<String, Arc<Upstream>>,
}

impl Router {
    /// From upstreams and routes (routes naming an unknown upstream are skipped; the
    /// configuration check refuses them earlier).
    pub fn new(upstreams: Vec<Arc<Upstream>>, routes: &[RouteConfig]) -> Self {
        let by_name: HashMap<String, Arc<Upstream>> =
            upstreams.into_iter().map(|u| (u.name.clone(), u)).collect();
        let routes = routes
            .iter()
            .filter_map(|r| Some((r.repos.clone(), by_name.get(&r.upstream)?.clone())))
            .collect();
        Self { routes, by_name }
    }

    /// The upstream serving `repo`, if any.
    pub fn route(&self, repo: &str) -> Option<Arc<Upstream>> {
        self.routes
            .iter()
            .find(|(globs, _)| globs.iter().any(|g| repo_glob(g, repo)))
            .map(|(_, u)| u.clone())
    }

    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.by_name.get(name).cloned()
    }

    /// Every upstream.
    pub fn upstreams(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.by_name.values()
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
            &[
                route(&["team/special"], "b"),
                route(&["team/**"], "a"),
                route(&["x"], "nowhere"),
            ],
        );
        let name = |repo: &str| r.route(repo).map(|u| u.name.clone());
        assert_eq!(name("team/special.git").as_deref(), Some("b"));
        assert_eq!(name("team/app.git").as_deref(), Some("a"));
        assert_eq!(name("other.git"), None);
        assert_eq!(name("x"), None, "a route to an unknown upstream is skipped");
        assert_eq!(
            r.upstream("b").map(|u| u.name.clone()).as_deref(),
            Some("b")
        );
    }
}
