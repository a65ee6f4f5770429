//! Keys from a site's own application over HTTP: one `POST` per key the server has not seen
//! lately, answered with the identity the key belongs to (the request and its JSON are in the
//! README, "Keys from an HTTP backend"). The site's user database stays where it is; the SSH
//! host holds only a URL and a shared secret.
//!
//! Each request carries `Authorization: Bearer <JWT>`, an HS256 token \[RFC7519\] signed with the
//! shared secret and valid for a minute, as gitlab-shell signs its calls to GitLab. It is made
//! here with the `hmac`/`sha2` the transport already uses: the `jsonwebtoken` crate would bring
//! a second RustCrypto generation for three base64 fields and one MAC.
//!
//! Bounded: a time limit per request, at most `HTTP_LOOKUP_MAX_RESPONSE` bytes read, pooled
//! connections (reqwest). Answers — an identity, and "no such key" alike — are cached for
//! `cache` (at most `HTTP_LOOKUP_CACHE_ENTRIES`), so a client retrying keys or a burst of
//! clones by one user cost one request; failures are not cached. A failure is a
//! [`LookupError`], which the server turns into "temporarily unavailable" for the client,
//! never into "denied"; the readiness probe reports the backend down until a request succeeds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroizing;

use crate::keys::PublicKey;
use crate::limits::{HTTP_LOOKUP_CACHE_ENTRIES, HTTP_LOOKUP_MAX_RESPONSE, HTTP_TOKEN_LIFETIME};
use crate::lookup::{Identity, KeyLookup, LookupError, LookupFuture};

/// The answer of a `200` to `/key`.
#[derive(Debug, serde::Deserialize)]
struct Found {
    identity: String,
    #[serde(default = "yes")]
    touch_required: bool,
    #[serde(default)]
    verify_required: bool,
}

fn yes() -> bool {
    true
}

/// A site's HTTP API: the pooled client, the base URL, the shared secret for the tokens, the
/// time limit, and whether the last request failed. Shared by the key lookup (`/key`) and the
/// access decision (`/access`, [`crate::route::HttpAccess`]).
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    secret: Zeroizing<Vec<u8>>,
    timeout: Duration,
    /// Why the last request failed, until one succeeds (for the readiness probe).
    down: Mutex<Option<String>>,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpBackend {
    /// The API at `base` (`http://host:port/path`), each request signed with `secret` and
    /// bounded by `timeout`.
    pub fn new(base: &str, secret: Vec<u8>, timeout: Duration) -> Result<Self, LookupError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // The token goes to the backend only: never through an HTTP_PROXY from the
            // environment.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| LookupError::Failed(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            secret: Zeroizing::new(secret),
            timeout,
            down: Mutex::new(None),
        })
    }

    /// `Err(why)` while the backend's last answer was a failure (the readiness probe's check).
    pub fn health(&self) -> Result<(), String> {
        match self.down.lock().map(|d| d.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(why),
            Err(_) => Err("state poisoned".into()),
        }
    }

    /// A token for one request: `{"alg":"HS256","typ":"JWT"}`, then issuer, issued-at and
    /// expiry [RFC7519 §4.1], signed with the shared secret.
    pub fn token(&self, now: SystemTime) -> Result<String, LookupError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let exp = iat.saturating_add(HTTP_TOKEN_LIFETIME.as_secs());
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = format!(r#"{{"iss":"portcullis","iat":{iat},"exp":{exp}}}"#);
        let signed = format!(
            "{header}.{}",
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let mac = crate::crypto::hmac::hmac_sha256(&self.secret, signed.as_bytes())
            .ok_or_else(|| LookupError::Failed("HS256 refused the secret".into()))?;
        Ok(format!(
            "{signed}.{}",
            Base64UrlUnpadded::encode_string(&mac)
        ))
    }

    /// POSTs `body` to `base/endpoint`: `Some(answer)` for a `200`, `None` for a `404`, an
    /// error for anything else, a late answer or one over `HTTP_LOOKUP_MAX_RESPONSE` bytes.
    /// Every outcome updates [`HttpBackend::health`].
    pub async fn post(
        &self,
        endpoint: &str,
        body: &serde_json::Value,
    ) -> Result<Option<Vec<u8>>, LookupError> {
        let url = format!("{}/{endpoint}", self.base);
        // The client's own timeout covers the exchange; this one also bounds a body that
        // trickles in.
        let answer = tokio::time::timeout(self.timeout, self.exchange(&url, body))
            .await
            .unwrap_or(Err(LookupError::Timeout));
        if let Ok(mut d) = self.down.lock() {
            *d = answer.as_ref().err().map(|e| format!("POST {url}: {e}"));
        }
        answer
    }

    async fn exchange(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Option<Vec<u8>>, LookupError> {
        let token = self.token(SystemTime::now())?;
        let send = self
            .client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        let mut resp = send.await.map_err(|e| {
            if e.is_timeout() {
                LookupError::Timeout
            } else {
                LookupError::Failed(e.to_string())
            }
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status != reqwest::StatusCode::OK {
            return Err(LookupError::Failed(format!("answered {status}")));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| LookupError::Failed(e.to_string()))?
        {
            if bytes.len().saturating_add(chunk.len()) > HTTP_LOOKUP_MAX_RESPONSE {
                return Err(LookupError::Failed(format!(
                    "answer over {HTTP_LOOKUP_MAX_RESPONSE} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }
}

/// Answers kept for a while, at most `HTTP_LOOKUP_CACHE_ENTRIES`: when full, expired ones go,
/// then the oldest (rather than grow).
pub(crate) struct AnswerCache<K, V> {
    keep: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> AnswerCache<K, V> {
    /// Keeps each answer for `keep` (zero: never).
    pub(crate) fn new(keep: Duration) -> Self {
        Self {
            keep,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A live answer for `k`.
    pub(crate) fn get(&self, k: &K, now: Instant) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(k)
            .filter(|(until, _)| *until > now)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `v` for `k`.
    pub(crate) fn put(&self, k: K, v: V, now: Instant) {
        if self.keep.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= HTTP_LOOKUP_CACHE_ENTRIES {
            entries.retain(|_, (until, _)| *until > now);
        }
        if entries.len() >= HTTP_LOOKUP_CACHE_ENTRIES {
            // All live: the oldest goes (one scan, after an HTTP request that costs far more).
            let oldest = entries.iter().min_by_key(|(_, (until, _))| *until);
            if let Some(k) = oldest.map(|(k, _)| k.clone()) {
                entries.remove(&k);
            }
        }
        if let Some(until) = now.checked_add(self.keep) {
            entries.insert(k, (until, v));
        }
    }
}

/// (user, key blob, client address): what an answer depends on.
type CacheKey = (String, Vec<u8>, IpAddr);

/// Key lookup through a site's HTTP API (`POST base/key`).
pub struct HttpLookup {
    backend: Arc<HttpBackend>,
    cache: AnswerCache<CacheKey, Option<Identity>>,
}

impl std::fmt::Debug for HttpLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpLookup")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl HttpLookup {
    /// Asks `backend`, caching answers for `cache_for` (zero: never).
    pub fn new(backend: Arc<HttpBackend>, cache_for: Duration) -> Self {
        Self {
            backend,
            cache: AnswerCache::new(cache_for),
        }
    }

    async fn ask(
        &self,
        user: &str,
        key: &PublicKey,
        addr: IpAddr,
    ) -> Result<Option<Identity>, LookupError> {
        let body = serde_json::json!({
            "user": user,
            "key": key.to_openssh(),
            "fingerprint": key.fingerprint(),
            "address": addr.to_string(),
        });
        let Some(bytes) = self.backend.post("key", &body).await? else {
            return Ok(None);
        };
        let found: Found = serde_json::from_slice(&bytes)
            .map_err(|e| LookupError::Failed(format!("/key: answer not understood: {e}")))?;
        Ok(Some(Identity {
            touch_required: found.touch_required,
            verify_required: found.verify_required,
            ..Identity::named(found.identity, key.fingerprint())
        }))
    }
}

impl KeyLookup for HttpLookup {
    fn lookup<'a>(&'a self, user: &'a str, key: &'a PublicKey, addr: IpAddr) -> LookupFuture<'a> {
        Box::pin(async move {
            let k = (user.to_owned(), key.to_blob(), addr);
            if let Some(hit) = self.cache.get(&k, Instant::now()) {
                return Ok(hit);
            }
            let answer = self.ask(user, key, addr).await;
            if let Ok(who) = &answer {
                self.cache.put(k, who.clone(), Instant::now());
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 §4.3 (test case 2): HMAC-SHA-256 with a key shorter than the block.
    #[test]
    fn hmac_sha256_known_answer() {
        let mac =
            crate::crypto::hmac::hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The token is `base64url(header).base64url(claims).base64url(HMAC-SHA256)` [RFC7519
    /// §7.1], with a minute between `iat` and `exp`.
    #[test]
    fn tokens_are_hs256_jwts_valid_for_a_minute() {
        let l = HttpBackend::new(
            "http://127.0.0.1:9",
            b"secret".to_vec(),
            Duration::from_secs(1),
        )
        .unwrap();
        let t = l
            .token(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| Base64UrlUnpadded::decode_vec(p).unwrap();
        assert_eq!(decode(parts[0]), br#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(
            decode(parts[1]),
            br#"{"iss":"portcullis","iat":1700000000,"exp":1700000060}"#
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let mac = crate::crypto::hmac::hmac_sha256(b"secret", signed.as_bytes()).unwrap();
        assert_eq!(decode(parts[2]), mac);
        assert_ne!(
            decode(parts[2]),
            crate::crypto::hmac::hmac_sha256(b"other", signed.as_bytes()).unwrap()
        );
    }

    /// A full cache of live answers drops its oldest one, not the others; expired ones are
    /// not answered and go first.
    #[test]
    fn a_full_cache_drops_its_oldest_answer() {
        let cache = AnswerCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        for i in 0..HTTP_LOOKUP_CACHE_ENTRIES {
            cache.put(i, i, t0 + Duration::from_millis(i as u64));
        }
        let late = t0 + Duration::from_secs(10);
        cache.put(usize::MAX, 7, late);
        assert_eq!(cache.get(&0, late), None);
        assert_eq!(cache.get(&1, late), Some(1));
        assert_eq!(cache.get(&usize::MAX, late), Some(7));
        // Every answer has expired: the next one finds room without dropping a live one.
        let after = late + Duration::from_secs(30);
        assert_eq!(cache.get(&usize::MAX, after), None);
        cache.put(1, 1, after);
        assert_eq!(cache.get(&1, after), Some(1));
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }
}
