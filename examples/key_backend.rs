//! `key_backend`: a reference implementation of the HTTP key backend (`[keys] backend =
//! "http"`), the part of a site's application portcullis asks which identity a key belongs
//! to. It serves the keys of an `authorized_keys` file (the comment names the identity) and
//! checks each request's HS256 token against the shared secret, as a site's own service would.
//!
//! ```text
//! cargo run --example key_backend -- --listen 127.0.0.1:8080 --secret-file backend_secret \
//!     --keys authorized_keys [--delay-ms N]
//! ```
//!
//! `POST /key` with `{"user", "key", "fingerprint", "address"}`: `200 {"identity": NAME}` for a
//! listed key, `404` for another, `401` for a missing, forged or expired token. `--delay-ms`
//! makes every answer late (to see the server's time limit at work).

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
    /// Wait this long before every answer.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

struct Backend {
    secret: Vec<u8>,
    keys: PathBuf,
    delay: Duration,
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

async fn key(
    State(b): State<Arc<Backend>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    tokio::time::sleep(b.delay).await;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| valid(t, &b.secret)) {
        return (StatusCode::UNAUTHORIZED, "bad token\n".into());
    }
    let Ok(asked) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON\n".into());
    };
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
        delay: Duration::from_millis(args.delay_ms),
    });
    let app = Router::new().route("/key", post(key)).with_state(backend);
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
