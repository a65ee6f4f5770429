//! Access and routes from a site's HTTP API (`POST base/access`): whether an identity may read
//! or write a repository, and where it runs — the local repository of that name (or another
//! one), an upstream host of the configuration, or nowhere, with the message the git user sees.
//! The request and its JSON are in the README ("Keys from an HTTP backend").

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lookup::{AnswerCache, HttpBackend, LookupError};
use crate::route::policy::Access;

/// The backend's decision for one (identity, repository, access).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run it here, on the repository `path` names (relative to the root; `None`: the one
    /// asked for).
    Local {
        /// The repository to use instead of the one asked for.
        path: Option<String>,
    },
    /// Run it on the configured upstream `name`, on `path` (`None`: the one asked for).
    Upstream {
        /// The upstream's name in the configuration.
        name: String,
        /// The repository to use there instead of the one asked for.
        path: Option<String>,
    },
    /// Refused; `message` is what the git user reads (`None`: "not found", as for a missing
    /// repository, so existence does not leak).
    Denied {
        /// The backend's words.
        message: Option<String>,
    },
}

/// The answer of a `200` to `/access`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    allow: bool,
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// (identity, fingerprint, repository, access, client address): what a decision depends on
/// (the backend is sent the address and may decide by it).
type CacheKey = (String, String, String, Access, IpAddr);

/// Access decisions through a site's HTTP API, cached like its key answers.
pub struct HttpAccess {
    backend: Arc<HttpBackend>,
    cache: AnswerCache<CacheKey, Verdict>,
}

impl std::fmt::Debug for HttpAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAccess")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl HttpAccess {
    /// Asks `backend`, reusing answers for `cache_for` (zero: never).
    pub fn new(backend: Arc<HttpBackend>, cache_for: Duration) -> Self {
        Self {
            backend,
            cache: AnswerCache::new(cache_for),
        }
    }

    /// The decision for `identity` (with its key's `fingerprint`, from `addr`) doing `access`
    /// on `repo` (its canonical name). A `404` is a denial without words; anything the API
    /// cannot answer is an error (the user is told to come back, not denied).
    pub async fn decide(
        &self,
        identity: &str,
        fingerprint: &str,
        repo: &str,
        access: Access,
        addr: IpAddr,
    ) -> Result<Verdict, LookupError> {
        let k = (
            identity.to_owned(),
            fingerprint.to_owned(),
            repo.to_owned(),
            access,
            addr,
        );
        if let Some(hit) = self.cache.get(&k, Instant::now()) {
            return Ok(hit);
        }
        let body = serde_json::json!({
            "identity": identity,
            "fingerprint": fingerprint,
            "repository": repo,
            "access": match access { Access::Read => "read", Access::Write => "write" },
            "address": addr.to_string(),
        });
        let verdict = match self.backend.post("access", &body).await? {
            None => Verdict::Denied { message: None },
            Some(bytes) => verdict(&bytes)?,
        };
        self.cache.put(k, verdict.clone(), Instant::now());
        Ok(verdict)
    }
}

fn verdict(bytes: &[u8]) -> Result<Verdict, LookupError> {
    let a: Answer = serde_json::from_slice(bytes)
        .map_err(|e| LookupError::Failed(format!("/access: answer not understood: {e}")))?;
    Ok(match a {
        Answer {
            allow: false,
            message,
            ..
        } => Verdict::Denied { message },
        Answer {
            upstream: Some(name),
            local: None,
            path,
            ..
        } => Verdict::Upstream { name, path },
        Answer {
            upstream: None,
            local,
            path: None,
            ..
        } => Verdict::Local { path: local },
        _ => {
            return Err(LookupError::Failed(
                "/access: an answer names `local` or `upstream` (with `path`), not both".into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_verdicts_and_mixed_ones_are_errors() {
        let v = |s: &str| verdict(s.as_bytes()).ok();
        assert_eq!(v(r#"{"allow":true}"#), Some(Verdict::Local { path: None }));
        assert_eq!(
            v(r#"{"allow":true,"local":"team/app.git"}"#),
            Some(Verdict::Local {
                path: Some("team/app.git".into())
            })
        );
        assert_eq!(
            v(r#"{"allow":true,"upstream":"store-1","path":"x/y.git"}"#),
            Some(Verdict::Upstream {
                name: "store-1".into(),
                path: Some("x/y.git".into())
            })
        );
        assert_eq!(
            v(r#"{"allow":false,"message":"read-only for you"}"#),
            Some(Verdict::Denied {
                message: Some("read-only for you".into())
            })
        );
        assert!(v(r#"{"allow":true,"local":"a","upstream":"b"}"#).is_none());
        assert!(v(r#"{"allow":true,"path":"a"}"#).is_none());
        assert!(v(r#"{"allow":"yes"}"#).is_none());
        assert!(v(r#"{"allow":true,"surprise":1}"#).is_none());
    }
}
