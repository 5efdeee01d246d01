//! HTTP basic authentication against bcrypt hashes (`basic_auth_users`), with a bounded cache of
//! successful checks so that a Prometheus scraping every few seconds does not pay bcrypt (tens to
//! hundreds of milliseconds at cost 10) on every scrape.
//!
//! What a flood of wrong passwords can cost is bounded: [`HASHES_AT_ONCE`] bcrypt computations
//! run at once, each holding its permit until the hash ends (a client that disconnects does not
//! free it for the next), at most [`WAITING`] checks wait or run (the next gets 429 at once), and
//! no hash above cost [`MAX_BCRYPT_COST`] is accepted at load.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::http::HeaderValue;
use tokio::sync::Semaphore;

use super::WebConfig;

/// Successful checks remembered; the oldest is forgotten first.
const CACHE_ENTRIES: usize = 256;

/// bcrypt costs that make a bcrypt hash (as Go's bcrypt reads them).
const COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// The highest cost accepted in `basic_auth_users`: a check at cost 14 takes about 1.1 s of CPU
/// here; each step doubles it (cost 31 would take days).
pub const MAX_BCRYPT_COST: u32 = 14;

/// bcrypt computations running at once: a flood of wrong passwords costs one core, not all.
pub const HASHES_AT_ONCE: usize = 1;

/// Checks waiting or running at once (the running ones included); beyond it a request gets 429
/// at once instead of queueing behind hashes it would wait seconds for.
pub const WAITING: usize = 8;

/// The cost of a bcrypt hash, if it is one.
pub fn cost(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

/// A hash to verify unknown user names against, at the median cost of `hashes` (10 when there
/// are none): verifying costs what it costs for a real user, and it matches no password (its
/// digest is all zero bits, which bcrypt of a password gives with probability 2^-184). And
/// whether the costs differ.
pub fn dummy_hash<'a>(hashes: impl Iterator<Item = &'a str>) -> (String, bool) {
    let mut costs: Vec<u32> = hashes.filter_map(cost).collect();
    costs.sort_unstable();
    let median = costs.get(costs.len() / 2).copied().unwrap_or(10);
    let differ = costs.first() != costs.last();
    (format!("$2b${median:02}${}", ".".repeat(53)), differ)
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No credentials, a wrong password or an unknown user.
    Denied,
    /// Too many checks waiting: not checked.
    Busy,
}

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
    /// [`HASHES_AT_ONCE`] permits, each held by a blocking task until its hash ends.
    hashing: Arc<Semaphore>,
    /// [`WAITING`] places, each held from before waiting for a permit until the hash ends.
    places: Arc<Semaphore>,
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
            hashing: Arc::new(Semaphore::new(HASHES_AT_ONCE)),
            places: Arc::new(Semaphore::new(WAITING)),
        }
    }

    /// bcrypt computations running now.
    pub fn hashing(&self) -> usize {
        HASHES_AT_ONCE - self.hashing.available_permits()
    }

    /// Checks waiting or running now.
    pub fn waiting(&self) -> usize {
        WAITING - self.places.available_permits()
    }

    /// Whether the `Authorization` header names one of `config`'s users with the right password.
    /// An unknown user costs a bcrypt computation too, against a hash of the users' median cost
    /// (see [`dummy_hash`]).
    pub async fn check(&self, config: &WebConfig, header: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = header.and_then(credentials) else {
            return Verdict::Denied;
        };
        let known = config.users.get(&user).cloned();
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
            return Verdict::Allowed;
        }
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            return Verdict::Busy;
        };
        // Waiting here ends with the request (a client that gives up while waiting costs
        // nothing); once the permit is taken, it is the blocking task's until the hash ends.
        let Ok(permit) = self.hashing.clone().acquire_owned().await else {
            return Verdict::Denied;
        };
        let is_known = known.is_some();
        let hash = known.unwrap_or_else(|| config.dummy_hash.clone());
        let verified = tokio::task::spawn_blocking(move || {
            let verified = bcrypt::verify(&password, &hash).unwrap_or(false);
            drop((permit, place));
            verified
        })
        .await
        .unwrap_or(false);
        if verified && is_known {
            self.remember(tag);
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
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

    /// A web configuration with these users and nothing else.
    fn config(users: &[(&str, &str)]) -> WebConfig {
        let users: std::collections::BTreeMap<String, String> =
            users.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect();
        let (dummy_hash, costs_differ) = dummy_hash(users.values().map(String::as_str));
        WebConfig {
            path: "web.yml".into(),
            tls: None,
            client_auth: super::super::ClientAuth::None,
            users,
            headers: Default::default(),
            min_version: None,
            dummy_hash,
            costs_differ,
            system_roots: false,
            digest: [0; 32],
            watched: Vec::new(),
        }
    }

    #[tokio::test]
    async fn right_wrong_and_unknown_and_the_cache() {
        let users = config(&[("alice", &bcrypt::hash("right", 4).unwrap())]);
        let auth = BasicAuth::new();
        assert_eq!(auth.check(&users, None).await, Verdict::Denied);
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "wrong"))).await,
            Verdict::Denied
        );
        assert_eq!(auth.check(&users, Some(&basic("bob", "right"))).await, Verdict::Denied);
        assert_eq!(auth.cached_entries(), 0, "failures are not cached");
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "right"))).await,
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "right"))).await,
            Verdict::Allowed
        );
        assert_eq!(auth.cached_entries(), 1);
        // A new hash for the same user (a reload) does not match the cached check.
        let changed = config(&[("alice", &bcrypt::hash("other", 4).unwrap())]);
        assert_eq!(
            auth.check(&changed, Some(&basic("alice", "right"))).await,
            Verdict::Denied
        );
        assert_eq!(
            auth.check(&changed, Some(&basic("alice", "other"))).await,
            Verdict::Allowed
        );
    }

    #[test]
    fn unknown_users_are_checked_against_a_hash_of_the_median_cost() {
        let at = |cost: u32| bcrypt::hash("x", cost).unwrap();
        let (dummy, differ) = dummy_hash([at(4), at(6), at(5)].iter().map(String::as_str));
        assert_eq!(cost(&dummy), Some(5));
        assert!(is_bcrypt_hash(&dummy), "{dummy}");
        assert!(differ);
        let (dummy, differ) = dummy_hash([at(4), at(4)].iter().map(String::as_str));
        assert_eq!((cost(&dummy), differ), (Some(4), false));
        assert_eq!(cost(&dummy_hash(std::iter::empty()).0), Some(10));
        // It matches no password, the empty one included.
        for password in ["", "x", "password"] {
            assert!(!bcrypt::verify(password, &dummy).unwrap());
        }
    }

    /// 40 wrong-password requests whose clients give up after a moment (the request future is
    /// dropped, as hyper drops it on a disconnect): at most HASHES_AT_ONCE hashes run at any
    /// time, each to its end, at most WAITING wait, and the rest are told at once to come back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disconnecting_clients_cannot_run_more_hashes_than_allowed() {
        // Cost 12 (about 280 ms): one hash outlasts the 50 ms below by far, so one is running at
        // the abort.
        let users = Arc::new(config(&[("alice", &bcrypt::hash("right", 12).unwrap())]));
        let auth = Arc::new(BasicAuth::new());
        let mut busy = 0;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (auth, users) = (auth.clone(), users.clone());
            let task =
                tokio::spawn(async move { auth.check(&users, Some(&basic("alice", &format!("wrong-{i}")))).await });
            tasks.push(task);
        }
        // Let every request start, then disconnect them all.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for task in &tasks {
            task.abort();
        }
        let mut seen_hashing = auth.hashing() > 0;
        for task in tasks {
            if let Ok(Verdict::Busy) = task.await {
                busy += 1;
            }
        }
        assert!(busy >= 40 - WAITING, "{busy} of 40 were told to come back");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (hashing, waiting) = (auth.hashing(), auth.waiting());
            assert!(hashing <= HASHES_AT_ONCE, "{hashing} hashes at once");
            assert!(
                waiting <= HASHES_AT_ONCE,
                "only started hashes hold a place after a disconnect: {waiting}"
            );
            seen_hashing |= hashing > 0;
            if hashing == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the hash never ended");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(seen_hashing, "the started hash kept its permit after the disconnect");
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "right"))).await,
            Verdict::Allowed
        );
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
