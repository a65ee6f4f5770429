//! `key_backend`: a reference implementation of the HTTP backend (`[keys] backend = "http"`),
//! the part of a site's application portcullis asks which identity a key belongs to and what
//! that identity may do. It serves the keys of an `authorized_keys` file (the comment names
//! the identity), lets every listed identity read and the `--writers` write, sends
//! repositories under a `--route PREFIX=UPSTREAM` to that upstream, and checks each request's
//! HS256 token against the shared secret, as a site's own service would.
//!
//! ```text
//! cargo run --example key_backend -- --listen 127.0.0.1:8080 --secret-file backend_secret \
//!     --keys authorized_keys [--writers alice,bob] [--route PREFIX=UPSTREAM] [--delay-ms N]
//! ```
//!
//! - `POST /key` with `{"user", "key", "fingerprint", "address"}`: `200 {"identity": NAME}`
//!   for a listed key, `404` for another.
//! - `POST /access` with `{"identity", "fingerprint", "repository", "access", "address"}`:
//!   `200 {"allow": true}` (or `{"allow": true, "upstream": NAME}` under a route), or
//!   `{"allow": false, "message": …}` for a write by a reader.
//!
//! A missing, forged or expired token gets `401`. `--delay-ms` makes every answer late (to see
//! the server's time limit at work).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64ct::{Base64UrlUnpadded, Encoding};
use clap::Parser;
use portcullis::keys::PublicKey;
use portcullis::keys::authorized_keys::AuthorizedKeys;

#[derive(Parser, Debug)]
#[command(about = "reference HTTP key backend for portcullis")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The shared secret (the same file portcullis reads).
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// The keys, in `authorized_keys` format; re-read on every request.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// Identities that may push (comma-separated); every listed identity may read.
    #[arg(long, value_delimiter = ',')]
    writers: Vec<String>,
    /// Repositories starting with PREFIX run on the upstream UPSTREAM.
    #[arg(long = "route", value_name = "PREFIX=UPSTREAM")]
    routes: Vec<String>,
    /// Wait this long before every answer.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

struct Backend {
    secret: Vec<u8>,
    keys: PathBuf,
    writers: Vec<String>,
    routes: Vec<(String, String)>,
    delay: Duration,
}

type Answer = (StatusCode, String);

/// Checks the request's token and parses its body, then lets `answer` decide.
async fn serve(
    b: &Backend,
    headers: &HeaderMap,
    body: &[u8],
    answer: fn(&Backend, &serde_json::Value) -> Answer,
) -> Answer {
    tokio::time::sleep(b.delay).await;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| valid(t, &b.secret)) {
        return (StatusCode::UNAUTHORIZED, "bad token\n".into());
    }
    match serde_json::from_slice(body) {
        Ok(asked) => answer(b, &asked),
        Err(_) => (StatusCode::BAD_REQUEST, "not JSON\n".into()),
    }
}

/// `/access`: readers read, writers write, routes route.
fn access(b: &Backend, asked: &serde_json::Value) -> Answer {
    let (who, repo) = (
        asked["identity"].as_str().unwrap_or_default(),
        asked["repository"].as_str().unwrap_or_default(),
    );
    let answer = if asked["access"] == "write" && !b.writers.iter().any(|w| w == who) {
        serde_json::json!({ "allow": false, "message": format!("{who} may only read {repo}") })
    } else if let Some((_, upstream)) = b.routes.iter().find(|(p, _)| repo.starts_with(p)) {
        serde_json::json!({ "allow": true, "upstream": upstream })
    } else {
        serde_json::json!({ "allow": true })
    };
    eprintln!("key_backend: {who} {} {repo}: {answer}", asked["access"]);
    (StatusCode::OK, answer.to_string())
}

/// Whether `token` is `header.claims.signature` signed with `secret` and not expired.
fn valid(token: &str, secret: &[u8]) -> bool {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Some(mac) = portcullis::crypto::hmac::hmac_sha256(secret, signed.as_bytes()) else {
        return false;
    };
    let Ok(given) = Base64UrlUnpadded::decode_vec(signature) else {
        return false;
    };
    if !portcullis::crypto::ct::eq(&given, &mac) {
        return false;
    }
    let Some(claims) = signed
        .split_once('.')
        .and_then(|(_, c)| Base64UrlUnpadded::decode_vec(c).ok())
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
    else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    claims["exp"].as_u64().is_some_and(|exp| exp > now)
}

/// `/key`: the identity of a listed key.
fn key(b: &Backend, asked: &serde_json::Value) -> Answer {
    let Some(key) = asked["key"]
        .as_str()
        .and_then(|k| PublicKey::from_openssh(k).ok())
    else {
        return (StatusCode::BAD_REQUEST, "no key\n".into());
    };
    let text = std::fs::read_to_string(&b.keys).unwrap_or_default();
    let known = AuthorizedKeys::parse(&text);
    match known.entries.iter().find(|e| e.key == key) {
        Some(entry) => {
            eprintln!("key_backend: {} is {}", key.fingerprint(), entry.name);
            let answer = serde_json::json!({ "identity": entry.name });
            (StatusCode::OK, answer.to_string())
        }
        None => {
            eprintln!("key_backend: {} is unknown", key.fingerprint());
            (StatusCode::NOT_FOUND, "unknown key\n".into())
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let secret = match std::fs::read_to_string(&args.secret_file) {
        Ok(s) => s.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
        Err(e) => {
            eprintln!("key_backend: {}: {e}", args.secret_file.display());
            std::process::exit(1);
        }
    };
    let backend = Arc::new(Backend {
        secret,
        keys: args.keys,
        writers: args.writers,
        routes: args
            .routes
            .iter()
            .filter_map(|r| r.split_once('='))
            .map(|(p, u)| (p.to_owned(), u.to_owned()))
            .collect(),
        delay: Duration::from_millis(args.delay_ms),
    });
    let app = Router::new()
        .route(
            "/key",
            post(
                |State(b): State<Arc<Backend>>, h: HeaderMap, body: Bytes| async move {
                    serve(&b, &h, &body, key).await
                },
            ),
        )
        .route(
            "/access",
            post(
                |State(b): State<Arc<Backend>>, h: HeaderMap, body: Bytes| async move {
                    serve(&b, &h, &body, access).await
                },
            ),
        )
        .with_state(backend);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("key_backend: {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    eprintln!("key_backend: listening on {}", args.listen);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("key_backend: {e}");
        std::process::exit(1);
    }
}
