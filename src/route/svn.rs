//! The policy of an svn+ssh session (`svnserve -t`): which svn server holds the repository
//! and whether the identity may write it (write access is required even to read, as Gitee
//! requires it) — from the access rules and `[[svn_servers]] repos`, or from the HTTP API's
//! `/access` answer naming an svn server as its `upstream`.

use std::sync::Arc;
use std::time::Duration;

use crate::route::http::{HttpAccess, Verdict};
use crate::route::line::not_found;
use crate::route::policy::{Access, Authorizer, Decision};
use crate::session::{ExecDecision, SessionContext, SessionIo};
use crate::svn::SvnServer;

/// What deciding an svn session needs, owned so the session's task can take it along.
#[derive(Clone)]
pub(super) struct SvnPolicy {
    pub(super) servers: Arc<[Arc<SvnServer>]>,
    pub(super) authorizer: Arc<dyn Authorizer>,
    pub(super) http: Option<Arc<HttpAccess>>,
    pub(super) idle: Duration,
}

impl SvnPolicy {
    /// The svn server for `repo`, or (the client's message, the log's reason).
    async fn decide(
        &self,
        ctx: &SessionContext,
        repo: String,
    ) -> Result<Arc<SvnServer>, (String, String)> {
        let id = &ctx.identity;
        let hidden = |why: &str| (not_found(&repo), why.to_owned());
        let named = |name: &str| self.servers.iter().find(|s| s.name == name).cloned();
        if let Some(http) = &self.http {
            let verdict = http
                .decide(
                    &id.name,
                    &id.fingerprint,
                    &repo,
                    Access::Write,
                    ctx.peer.ip(),
                )
                .await
                .map_err(|e| {
                    (
                        "portcullis: access check temporarily unavailable, try again later"
                            .to_owned(),
                        format!("access check: {e}"),
                    )
                })?;
            return match verdict {
                Verdict::Upstream { name, .. } => {
                    named(&name).ok_or_else(|| hidden("the backend routes to no svn server"))
                }
                Verdict::Denied { message: Some(m) } => Err((m, "denied by the backend".into())),
                _ => Err(hidden("denied by the backend, or not an svn repository")),
            };
        }
        if self
            .authorizer
            .authorize(&id.name, &id.fingerprint, &repo, Access::Write)
            != Decision::Allow
        {
            return Err(hidden("no write access"));
        }
        self.servers
            .iter()
            .find(|s| s.serves(&repo))
            .cloned()
            .ok_or_else(|| hidden("no svn server serves it"))
    }

    /// The session task: the tunnel, then its `session` log line.
    pub(super) fn exec(&self, ctx: &SessionContext, io: SessionIo) -> ExecDecision {
        let (policy, ctx) = (self.clone(), ctx.clone());
        ExecDecision::Run(Box::pin(async move {
            let identity = ctx.identity.name.clone();
            let (status, r) = crate::svn::run(io, &identity, policy.idle, |repo| {
                let (policy, ctx) = (policy.clone(), ctx.clone());
                async move { policy.decide(&ctx, repo).await }
            })
            .await;
            tracing::info!(
                user = %ctx.identity.name,
                fingerprint = %ctx.identity.fingerprint,
                addr = %ctx.peer,
                repo = %r.repo.as_deref().unwrap_or(""),
                command = "svnserve",
                upstream = %r.server.as_deref().unwrap_or(""),
                failure = r.failure.as_deref().unwrap_or(""),
                bytes_in = r.bytes_in,
                bytes_out = r.bytes_out,
                duration_ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                "session"
            );
            status
        }))
    }
}
