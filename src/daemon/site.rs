//! What a configuration turns into: host keys (generated when missing), the key backend, the
//! git policy and the protocol settings — built at start and again on every reload.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::driver::os_rng;
use crate::git::repo::RepoRoot;
use crate::keys::{PrivateKey, PublicKey, key_file};
use crate::lookup::{CommandLookup, FileLookup, KeyLookup, LookupFuture};
use crate::route::FrontDoor;
use crate::route::policy::RuleAuthorizer;
use crate::route::router::Router;
use crate::server::ServerConfig;
use crate::session::SessionHandler;

/// What the readiness probe asks of the key backend.
pub type BackendCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Everything a connection needs that comes from the configuration.
pub struct Site {
    /// Protocol settings.
    pub config: Arc<ServerConfig>,
    /// Host keys.
    pub keys: Arc<[PrivateKey]>,
    /// The key backend behind the service-account check.
    pub lookup: Arc<dyn KeyLookup>,
    /// The git policy (local repositories and the proxy routes).
    pub handler: Arc<dyn SessionHandler>,
    /// The proxy routes (for the pool reapers and the start-up lines).
    pub router: Arc<Router>,
    /// The repository root, for the start-up line.
    pub repos: PathBuf,
    /// The readiness probe's check of the key backend.
    pub backend_check: BackendCheck,
}

/// Builds the site of `c`: reads (or generates) host keys, opens the key backend, checks git.
pub fn build(c: &Config) -> Result<Site, String> {
    let keys = host_keys(c)?;
    let repos = c.in_data(&c.repos_root);
    std::fs::create_dir_all(&repos).map_err(|e| format!("{}: {e}", repos.display()))?;
    let root = RepoRoot::new(&repos).map_err(|e| format!("{}: {e}", repos.display()))?;
    // `[keys] backend = "http"`: the site's API answers for keys and for access alike.
    let api = (c.keys.backend == "http")
        .then(|| http_api(c))
        .transpose()?;
    let (inner, backend_check) = backend(c, api.clone())?;
    let inner = screened(c, inner);
    let router = Arc::new(c.router().map_err(|e| e.to_string())?);
    let handler = Arc::new(FrontDoor {
        root,
        authorizer: Arc::new(RuleAuthorizer::new(c.access.clone())),
        git: find_git(&c.git)?,
        create_on_push: c.create_on_push,
        idle_timeout: Duration::from_secs(c.timeouts.idle_secs),
        router: router.clone(),
        svn: svn_servers(c)?,
        http: api.map(|api| {
            Arc::new(crate::route::HttpAccess::new(
                api,
                Duration::from_secs(c.keys.cache_secs),
            ))
        }),
    });
    let mut server = c.server_config().map_err(|e| e.to_string())?;
    let certs = host_certificates(c, &keys)?;
    if !certs.is_empty() {
        let mut t = (*server.transport).clone();
        t.host_certificates = certs;
        server.transport = Arc::new(t);
    }
    Ok(Site {
        config: Arc::new(server),
        keys: Arc::from(keys),
        lookup: Arc::new(ServiceAccount {
            user: c.user.clone(),
            inner,
        }),
        handler,
        router,
        repos,
        backend_check,
    })
}

/// The key backend, and what the readiness probe checks of it on every probe.
fn backend(
    c: &Config,
    api: Option<Arc<crate::lookup::HttpBackend>>,
) -> Result<(Box<dyn KeyLookup>, BackendCheck), String> {
    if let Some(backend) = api {
        let lookup =
            crate::lookup::HttpLookup::new(backend.clone(), Duration::from_secs(c.keys.cache_secs));
        return Ok((Box::new(lookup), Box::new(move || backend.health())));
    }
    if c.keys.backend == "command" {
        let argv = c.keys.command.clone().unwrap_or_default();
        let (program, args) = argv.split_first().ok_or("keys.command is empty")?;
        let exe = PathBuf::from(program);
        return Ok((
            Box::new(CommandLookup {
                program: program.into(),
                args: args.to_vec(),
                timeout: Duration::from_secs(c.keys.command_timeout_secs),
                check: Some(crate::route::git_commands_only),
            }),
            Box::new(move || {
                std::fs::metadata(&exe)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", exe.display()))
            }),
        ));
    }
    let path = c.in_data(
        c.keys
            .file
            .as_deref()
            .unwrap_or(Path::new("authorized_keys")),
    );
    seed_authorized_keys(&path)?;
    let checked = path.clone();
    Ok((
        Box::new(FileLookup::new(path).with_check(crate::route::git_commands_only)),
        Box::new(move || {
            std::fs::File::open(&checked)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", checked.display()))
        }),
    ))
}

/// `[[svn_servers]]`, each with its password secret (owner-only, in data_dir).
pub fn svn_servers(c: &Config) -> Result<Arc<[Arc<crate::svn::SvnServer>]>, String> {
    let mut out = Vec::new();
    for s in &c.svn_servers {
        if s.name.is_empty() || s.address.is_empty() {
            return Err("svn_servers: name and address are required".into());
        }
        let path = c.in_data(&s.secret_file);
        let secret = zeroize::Zeroizing::new(crate::config::read_secret(&path, "svn secret")?);
        let secret = secret.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            return Err(format!("{}: the svn secret is empty", path.display()));
        }
        out.push(Arc::new(crate::svn::SvnServer::new(
            s,
            secret.as_bytes().to_vec(),
        )));
    }
    Ok(Arc::from(out))
}

/// The site's HTTP API of `[keys] backend = "http"`: its base URL and the shared secret.
fn http_api(c: &Config) -> Result<Arc<crate::lookup::HttpBackend>, String> {
    let base = c.keys.url.as_deref().unwrap_or_default();
    let path = c.in_data(c.keys.secret_file.as_deref().unwrap_or(Path::new("")));
    let secret = zeroize::Zeroizing::new(crate::config::read_secret(&path, "backend secret")?);
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(format!("{}: the backend secret is empty", path.display()));
    }
    let backend = crate::lookup::HttpBackend::new(
        base,
        secret.as_bytes().to_vec(),
        Duration::from_millis(c.keys.http_timeout_ms),
    )
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(backend))
}

/// The host certificates of `host_certificates`: each a host certificate, valid now, of one
/// of `keys` (offered as `*-cert-v01@openssh.com` host key algorithms).
fn host_certificates(
    c: &Config,
    keys: &[PrivateKey],
) -> Result<Vec<crate::keys::cert::Certificate>, String> {
    use crate::keys::cert::{CertKind, Certificate};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::new();
    for p in &c.host_certificates {
        let path = c.in_data(p);
        let bad = |why: &str| format!("{}: {why}", path.display());
        let text = std::fs::read_to_string(&path).map_err(|e| bad(&e.to_string()))?;
        let b64 = text
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| bad("not a certificate"))?;
        let blob = <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64)
            .map_err(|_| bad("not base64"))?;
        let cert = Certificate::decode(&blob).map_err(|e| bad(&e.to_string()))?;
        if cert.kind != CertKind::Host {
            return Err(bad("a user certificate, not a host certificate"));
        }
        cert.check_time(now).map_err(|e| bad(&e.to_string()))?;
        if !keys.iter().any(|k| k.public() == cert.key) {
            return Err(bad("certifies none of host_keys"));
        }
        out.push(cert);
    }
    Ok(out)
}

/// Loads the host keys, generating missing ones (Ed25519 or RSA-3072, by file name) with mode 0600.
pub fn host_keys(c: &Config) -> Result<Vec<PrivateKey>, String> {
    std::fs::create_dir_all(&c.data_dir).map_err(|e| format!("{}: {e}", c.data_dir.display()))?;
    let mut keys = Vec::new();
    for p in &c.host_keys {
        let path = c.in_data(p);
        if !path.exists() {
            generate_host_key(&path)?;
        }
        keys.push(crate::config::load_private_key(&path)?);
    }
    Ok(keys)
}

fn generate_host_key(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut rng = os_rng().map_err(|e| e.to_string())?;
    let rsa = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("rsa"));
    let key = if rsa {
        eprintln!(
            "portcullis: generating RSA-3072 host key {} (a few seconds)",
            path.display()
        );
        PrivateKey::generate_rsa(&mut rng, 3072).ok_or("RSA key generation failed")?
    } else {
        PrivateKey::generate_ed25519(&mut rng)
    };
    let text = key_file::serialize(&key, "portcullis host key", &mut rng);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(
        path.with_extension("pub"),
        key.public().to_openssh() + " portcullis host key\n",
    )
    .map_err(|e| e.to_string())
}

/// First start: an authorized_keys file seeded from the invoking user's ~/.ssh/*.pub.
fn seed_authorized_keys(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let mut lines = String::from(
        "# portcullis authorized_keys: one key per line; the comment names the identity.\n",
    );
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut seeded = Vec::new();
    if let Some(dir) = home
        .map(|h| h.join(".ssh"))
        .and_then(|d| std::fs::read_dir(d).ok())
    {
        let mut pubs: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        pubs.sort();
        for p in pubs {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let line = text.lines().next().unwrap_or_default().trim().to_owned();
            if PublicKey::from_openssh(&line).is_ok() {
                lines.push_str(&line);
                lines.push('\n');
                seeded.push(format!(
                    "{} ({})",
                    p.display(),
                    line.split_whitespace().take(1).collect::<String>()
                ));
            }
        }
    }
    std::fs::write(path, lines).map_err(|e| format!("{}: {e}", path.display()))?;
    if seeded.is_empty() {
        eprintln!(
            "portcullis: created {} (empty: add your public key to it)",
            path.display()
        );
    } else {
        for s in seeded {
            eprintln!("portcullis: authorized {s} in {}", path.display());
        }
    }
    Ok(())
}

/// The key backend behind the revocation list and the user-certificate CAs, when configured.
fn screened(c: &Config, inner: Box<dyn KeyLookup>) -> Box<dyn KeyLookup> {
    let k = &c.keys;
    if k.trusted_user_ca_keys.is_none() && k.revoked_keys.is_none() {
        return inner;
    }
    let certs = k.trusted_user_ca_keys.as_ref().map(|ca| {
        crate::lookup::UserCertificates::new(
            c.in_data(ca),
            k.authorized_principals.as_ref().map(|p| c.in_data(p)),
        )
    });
    let revoked = k.revoked_keys.as_ref().map(|r| c.in_data(r));
    Box::new(crate::lookup::Screened::new(inner, revoked, certs))
}

/// Only the configured service account may log in; the identity comes from the key.
struct ServiceAccount {
    user: String,
    inner: Box<dyn KeyLookup>,
}

impl KeyLookup for ServiceAccount {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        if user != self.user {
            tracing::info!(user, addr = %addr, "wrong user name");
            return Box::pin(async { Ok(None) });
        }
        self.inner.lookup(user, key, addr)
    }

    fn lookup_cert<'a>(
        &'a self,
        user: &'a str,
        cert: &'a crate::keys::cert::Certificate,
        addr: IpAddr,
    ) -> LookupFuture<'a> {
        if user != self.user {
            tracing::info!(user, addr = %addr, "wrong user name");
            return Box::pin(async { Ok(None) });
        }
        self.inner.lookup_cert(user, cert, addr)
    }
}

fn find_git(git: &Path) -> Result<PathBuf, String> {
    if git.components().count() > 1 {
        return Ok(git.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(git))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "`{}` not found in PATH: install the Debian package git",
                git.display()
            )
        })
}
