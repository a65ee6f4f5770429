//! Who may do what: an [`Authorizer`] decides (identity, repository, read|write). The default
//! implementation reads rules from the configuration. A denied repository and a missing one
//! look the same to the client, so existence does not leak.

use crate::git::command::Service;

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Fetch, clone, archive.
    Read,
    /// Push.
    Write,
}

impl From<Service> for Access {
    fn from(s: Service) -> Self {
        if s.writes() {
            Access::Write
        } else {
            Access::Read
        }
    }
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Not for this identity (reported to the client exactly like `NotFound`).
    Deny,
}

/// Authorization policy.
pub trait Authorizer: Send + Sync {
    /// Decides whether `identity` may `access` the repository `repo` (name relative to the root).
    fn authorize(&self, identity: &str, fingerprint: &str, repo: &str, access: Access) -> Decision;

    /// The upstream (by configured name) serving `repo`, overriding the configured routes;
    /// `None` leaves the choice to them. For backends that know where repositories live.
    fn route(&self, identity: &str, repo: &str) -> Option<String> {
        let _ = (identity, repo);
        None
    }
}

/// One access rule from the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Identity names (the authorized_keys comment), `SHA256:` fingerprints, or `*`.
    pub who: Vec<String>,
    /// Repository globs relative to the root: `*` within one path segment, `**` across.
    pub repos: Vec<String>,
    /// The most the rule grants.
    pub access: Access,
}

/// Grants the highest access any matching rule gives; no rule, no access.
#[derive(Clone, Debug, Default)]
pub struct RuleAuthorizer {
    rules: Vec<Rule>,
}

impl RuleAuthorizer {
    /// From configured rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }
}

impl Authorizer for RuleAuthorizer {
    fn authorize(&self, identity: &str, fingerprint: &str, repo: &str, access: Access) -> Decision {
        let granted = self
            .rules
            .iter()
            .filter(|r| {
                r.who
                    .iter()
                    .any(|w| w == "*" || w == identity || w == fingerprint)
            })
            .filter(|r| r.repos.iter().any(|g| repo_glob(g, repo)))
            .map(|r| r.access)
            .max();
        match granted {
            Some(g) if g >= access => Decision::Allow,
            _ => Decision::Deny,
        }
    }
}

/// `*` matches within a path segment, `**` matches across segments; a pattern without `.git`
/// also matches the bare-named repository (`team/app` matches `team/app.git`).
pub fn repo_glob(pattern: &str, repo: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
                let rest = p.get(2..).unwrap_or_default();
                (0..=s.len()).any(|i| m(rest, s.get(i..).unwrap_or_default()))
            }
            (Some(b'*'), _) => {
                let rest = p.get(1..).unwrap_or_default();
                let seg = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=seg).any(|i| m(rest, s.get(i..).unwrap_or_default()))
            }
            (Some(a), Some(b)) if a == b => m(
                p.get(1..).unwrap_or_default(),
                s.get(1..).unwrap_or_default(),
            ),
            _ => false,
        }
    }
    m(pattern.as_bytes(), repo.as_bytes())
        || (!pattern.ends_with(".git") && m(format!("{pattern}.git").as_bytes(), repo.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleAuthorizer {
        RuleAuthorizer::new(vec![
            Rule {
                who: vec!["*".into()],
                repos: vec!["public/*".into()],
                access: Access::Read,
            },
            Rule {
                who: vec!["alice".into()],
                repos: vec!["**".into()],
                access: Access::Write,
            },
            Rule {
                who: vec!["SHA256:bob".into()],
                repos: vec!["team/app".into()],
                access: Access::Write,
            },
        ])
    }

    #[test]
    fn grants_the_highest_matching_access() {
        let a = rules();
        assert_eq!(
            a.authorize("mallory", "x", "public/lib.git", Access::Read),
            Decision::Allow
        );
        assert_eq!(
            a.authorize("mallory", "x", "public/lib.git", Access::Write),
            Decision::Deny
        );
        assert_eq!(
            a.authorize("mallory", "x", "public/a/b.git", Access::Read),
            Decision::Deny,
            "* stays in one segment"
        );
        assert_eq!(
            a.authorize("alice", "x", "deep/er/repo.git", Access::Write),
            Decision::Allow
        );
        assert_eq!(
            a.authorize("bob", "SHA256:bob", "team/app.git", Access::Write),
            Decision::Allow
        );
        assert_eq!(
            a.authorize("bob", "SHA256:bob", "team/other.git", Access::Read),
            Decision::Deny
        );
        assert_eq!(
            RuleAuthorizer::default().authorize("alice", "x", "a.git", Access::Read),
            Decision::Deny
        );
    }

    #[test]
    fn globs() {
        assert!(repo_glob("**", "a/b/c.git"));
        assert!(repo_glob("team/*", "team/x.git"));
        assert!(!repo_glob("team/*", "team/x/y.git"));
        assert!(repo_glob("team/**", "team/x/y.git"));
        assert!(repo_glob("app", "app.git"));
        assert!(!repo_glob("app", "apps.git"));
    }
}
