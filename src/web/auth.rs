//! HTTP basic authentication against bcrypt hashes (`basic_auth_users`), with a bounded cache of
//! successful checks so that a Prometheus scraping every few seconds does not pay bcrypt (tens to
//! hundreds of milliseconds at cost 10) on every scrape.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;

use aws_lc_rs::hmac;
use axum::http::HeaderValue;

/// Successful checks remembered; the oldest is forgotten first.
const CACHE_ENTRIES: usize = 256;

/// bcrypt costs exporter-toolkit (Go's bcrypt) accepts.
const COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Whether `hash` is a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost from 4 to 31, 53
/// characters of salt and hash), as `htpasswd -nBC 10` prints after the colon.
pub fn is_bcrypt_hash(hash: &str) -> bool {
    let Ok(parts) = hash.parse::<bcrypt::HashParts>() else {
        return false;
    };
    ["$2a$", "$2b$", "$2x$", "$2y$"].iter().any(|p| hash.starts_with(p)) && COSTS.contains(&parts.get_cost())
}

/// The user name and password of an `Authorization: Basic` header, if it is one.
fn credentials(header: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = header.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = aws_smithy_types::base64::decode(token.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// Checks credentials; one per server, kept across reloads of the web configuration.
pub struct BasicAuth {
    /// Keys the cache: an HMAC of user, hash and password under a key made at start, so the
    /// cache holds no password and nothing that can be tried offline faster than bcrypt.
    key: hmac::Key,
    cache: Mutex<Cache>,
    /// One bcrypt computation at a time: a flood of wrong passwords costs one core, not all.
    bcrypt: tokio::sync::Semaphore,
}

#[derive(Default)]
struct Cache {
    known: HashSet<Tag>,
    order: VecDeque<Tag>,
}

/// An HMAC-SHA256 of a check.
type Tag = [u8; 32];

impl Default for BasicAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl BasicAuth {
    pub fn new() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random generator works");
        BasicAuth {
            key,
            cache: Mutex::new(Cache::default()),
            bcrypt: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether the `Authorization` header names one of `users` with the right password. An
    /// unknown user costs a bcrypt computation too, so that timing does not tell which users
    /// exist.
    pub async fn check(&self, users: &BTreeMap<String, String>, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let known = users.get(&user).cloned();
        let tag = {
            let mut ctx = hmac::Context::with_key(&self.key);
            for part in [user.as_bytes(), known.as_deref().unwrap_or("").as_bytes(), &password] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
            let mut tag = [0u8; 32];
            tag.copy_from_slice(ctx.sign().as_ref());
            tag
        };
        if known.is_some() && self.cached(&tag) {
            return true;
        }
        // For an unknown user: the same work at the users' highest cost, against nothing.
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(10);
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        let verified = tokio::task::spawn_blocking(move || match &known {
            Some(hash) => bcrypt::verify(&password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::hash_with_salt(&password, cost, [0u8; 16]);
                false
            }
        })
        .await
        .unwrap_or(false);
        if verified {
            self.remember(tag);
        }
        verified
    }

    fn cached(&self, tag: &Tag) -> bool {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).known.contains(tag)
    }

    fn remember(&self, tag: Tag) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.known.insert(tag) {
            return;
        }
        cache.order.push_back(tag);
        if cache.order.len() > CACHE_ENTRIES
            && let Some(oldest) = cache.order.pop_front()
        {
            cache.known.remove(&oldest);
        }
    }

    /// Successful checks remembered now.
    pub fn cached_entries(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let token = aws_smithy_types::base64::encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    #[test]
    fn bcrypt_hashes_are_recognised() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        assert!(is_bcrypt_hash(&hash));
        assert!(is_bcrypt_hash(&hash.replacen("$2b$", "$2y$", 1)));
        assert!(!is_bcrypt_hash("secret"));
        assert!(!is_bcrypt_hash("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="));
        assert!(!is_bcrypt_hash(&hash[..hash.len() - 1]));
        assert!(!is_bcrypt_hash(&hash.replacen("$04$", "$03$", 1)));
    }

    #[test]
    fn the_authorization_header_is_parsed_strictly() {
        assert_eq!(
            credentials(&basic("alice", "pa:ss")),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        let lower =
            HeaderValue::from_str(basic("a", "b").to_str().unwrap().replace("Basic", "basic").as_str()).unwrap();
        assert!(credentials(&lower).is_some());
        for bad in ["Bearer abc", "Basic", "Basic !!!", "Basic YWxpY2U="] {
            assert_eq!(credentials(&HeaderValue::from_static(bad)), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn right_wrong_and_unknown_and_the_cache() {
        let users = BTreeMap::from([("alice".to_string(), bcrypt::hash("right", 4).unwrap())]);
        let auth = BasicAuth::new();
        assert!(!auth.check(&users, None).await);
        assert!(!auth.check(&users, Some(&basic("alice", "wrong"))).await);
        assert!(!auth.check(&users, Some(&basic("bob", "right"))).await);
        assert_eq!(auth.cached_entries(), 0, "failures are not cached");
        assert!(auth.check(&users, Some(&basic("alice", "right"))).await);
        assert!(auth.check(&users, Some(&basic("alice", "right"))).await);
        assert_eq!(auth.cached_entries(), 1);
        // A new hash for the same user (a reload) does not match the cached check.
        let changed = BTreeMap::from([("alice".to_string(), bcrypt::hash("other", 4).unwrap())]);
        assert!(!auth.check(&changed, Some(&basic("alice", "right"))).await);
        assert!(auth.check(&changed, Some(&basic("alice", "other"))).await);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let auth = BasicAuth::new();
        for i in 0..CACHE_ENTRIES + 10 {
            let mut tag = [0u8; 32];
            tag[..8].copy_from_slice(&(i as u64).to_be_bytes());
            auth.remember(tag);
        }
        assert_eq!(auth.cached_entries(), CACHE_ENTRIES);
    }
}
