//! Client-side balancing over several replicas ([`ClientBuilder::base_urls`]).
//!
//! - A request with a session key (its `X-Session-ID` header, else `X-User-ID`: see
//!   [`ClientBuilder::session_id`]) goes to the replica with the highest rendezvous score
//!   for that key among the healthy ones, so a conversation stays where its prefix is
//!   cached, and when a replica leaves only its own sessions move.
//! - Any other request goes to the less busy of two healthy replicas picked at random
//!   ("power of two choices"): busy counts this client's requests in flight there (a stream
//!   until it is dropped), or, with [`ClientBuilder::balance_by_load`], the larger of that
//!   and the replica's own count from vLLM's `/load`.
//! - A replica that refuses a connection (or does not accept one within the connect
//!   timeout) is ejected at once; a background check asks every replica's `/health` each
//!   [`health_check_interval`](ClientBuilder::health_check_interval) and ejects those that do
//!   not answer 200. An ejected replica is asked again after the interval, then after twice
//!   and four times as long (up to a minute), and comes back when it answers. When every
//!   replica is ejected, requests go to all of them again rather than nowhere.
//! - A request that failed before any response byte arrived, or with a retryable status, is
//!   retried at once on a replica it has not tried yet (after the usual backoff once every
//!   replica has been tried), within the client's `max_retries`.
//!
//! [`ClientBuilder::base_urls`]: crate::ClientBuilder::base_urls
//! [`ClientBuilder::session_id`]: crate::ClientBuilder::session_id
//! [`ClientBuilder::balance_by_load`]: crate::ClientBuilder::balance_by_load

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::HeaderMap;
use vllm_transport::Transport;

/// The header vllm-router (and SGLang's router) hash first for session affinity.
pub const SESSION_ID_HEADER: &str = "x-session-id";
/// The header vllm-router hashes next, and production-stack's session router is usually
/// configured to read.
pub const USER_ID_HEADER: &str = "x-user-id";

/// The longest wait before an ejected replica is asked again.
const MAX_PROBE_BACKOFF: Duration = Duration::from_secs(60);

/// How the replicas are chosen and checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BalanceConfig {
    pub(crate) health_check_interval: Duration,
    pub(crate) by_load: bool,
}

/// The replicas of a client with several base URLs, and their state.
pub(crate) struct Balancer {
    replicas: Box<[Replica]>,
    config: BalanceConfig,
    rng: AtomicU64,
    /// The background health checks, once started (restarted if their runtime went away).
    checker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One replica.
struct Replica {
    /// Its base URL (with `/v1`, no trailing `/`).
    base_url: String,
    /// Its rendezvous seed: a hash of the base URL, the same in every process.
    seed: u64,
    in_flight: AtomicUsize,
    /// The replica's own count from `/load` (`usize::MAX`: not known).
    server_load: AtomicUsize,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    ejected: bool,
    /// Failed checks (or failed requests) in a row.
    failures: u32,
    /// When an ejected replica is asked again.
    next_probe: Option<Instant>,
    /// When it was ejected.
    since: Option<Instant>,
}

/// A replica's state, as [`VllmClient::replicas`](crate::VllmClient::replicas) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Its base URL.
    pub base_url: String,
    /// Whether it is ejected (not chosen while another replica is healthy).
    pub ejected: bool,
    /// This client's requests in flight there (a stream counts until it is dropped).
    pub in_flight: usize,
    /// Failed health checks or requests in a row.
    pub failures: u32,
}

/// A request counted as in flight on a replica until this is dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    balancer: Arc<Balancer>,
    index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.balancer.replicas[self.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("replicas", &self.status())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    pub(crate) fn new(base_urls: Vec<String>, config: BalanceConfig) -> Self {
        let replicas = base_urls
            .into_iter()
            .map(|base_url| Replica {
                seed: fnv1a(base_url.as_bytes()),
                base_url,
                in_flight: AtomicUsize::new(0),
                server_load: AtomicUsize::new(usize::MAX),
                health: Mutex::new(Health::default()),
            })
            .collect();
        let seed = std::collections::hash_map::RandomState::new();
        Balancer {
            replicas,
            config,
            rng: AtomicU64::new(std::hash::BuildHasher::hash_one(&seed, Instant::now())),
            checker: Mutex::new(None),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.replicas.len()
    }

    pub(crate) fn base_url(&self, index: usize) -> &str {
        &self.replicas[index].base_url
    }

    pub(crate) fn base_urls(&self) -> impl Iterator<Item = &str> {
        self.replicas.iter().map(|r| r.base_url.as_str())
    }

    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .map(|r| {
                let health = r.health();
                ReplicaStatus {
                    base_url: r.base_url.clone(),
                    ejected: health.ejected,
                    in_flight: r.in_flight.load(Ordering::Relaxed),
                    failures: health.failures,
                }
            })
            .collect()
    }

    /// Counts a request as in flight on replica `index`.
    pub(crate) fn start(self: &Arc<Self>, index: usize) -> InFlight {
        self.replicas[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        InFlight {
            balancer: self.clone(),
            index,
        }
    }

    /// The replica for a request with these headers that has not tried the replicas in
    /// `tried` yet (they are skipped while others are left).
    pub(crate) fn pick(&self, headers: &HeaderMap, tried: &[usize]) -> usize {
        let usable = |i: usize, healthy_only: bool, fresh_only: bool| {
            (!healthy_only || !self.replicas[i].health().ejected)
                && (!fresh_only || !tried.contains(&i))
        };
        // Healthy and untried; else healthy; else untried; else any.
        let mut candidates: Vec<usize> = Vec::with_capacity(self.replicas.len());
        for (healthy_only, fresh_only) in [(true, true), (true, false), (false, true)] {
            candidates
                .extend((0..self.replicas.len()).filter(|&i| usable(i, healthy_only, fresh_only)));
            if !candidates.is_empty() {
                break;
            }
        }
        if candidates.is_empty() {
            candidates.extend(0..self.replicas.len());
        }
        if let Some(key) = session_key(headers) {
            let key = fnv1a(key);
            return candidates
                .into_iter()
                .max_by_key(|&i| (mix(key ^ self.replicas[i].seed), i))
                .unwrap_or(0);
        }
        match candidates.len() {
            0 => 0,
            1 => candidates[0],
            n => {
                let r = self.random();
                let a = (r % n as u64) as usize;
                let mut b = ((r >> 32) % (n as u64 - 1)) as usize;
                if b >= a {
                    b += 1;
                }
                let (a, b) = (candidates[a], candidates[b]);
                if self.busy(b) < self.busy(a) { b } else { a }
            }
        }
    }

    /// How busy replica `index` is.
    fn busy(&self, index: usize) -> usize {
        let replica = &self.replicas[index];
        let ours = replica.in_flight.load(Ordering::Relaxed);
        if !self.config.by_load {
            return ours;
        }
        match replica.server_load.load(Ordering::Relaxed) {
            usize::MAX => ours,
            theirs => ours.max(theirs),
        }
    }

    /// A request to replica `index` failed before any response byte: eject it until a
    /// health check finds it answering.
    pub(crate) fn failed(&self, index: usize) {
        self.replicas[index].set_failed(self.config.health_check_interval, Instant::now());
    }

    /// Starts the background health checks (once, from inside a Tokio runtime); they stop
    /// when the last clone of the client is dropped.
    pub(crate) fn ensure_checker(
        self: &Arc<Self>,
        transport: &Transport,
        headers: impl FnOnce() -> HeaderMap,
    ) {
        let mut checker = self.checker.lock().unwrap_or_else(|e| e.into_inner());
        if checker.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let transport = transport.clone();
        *checker = Some(runtime.spawn(check_forever(weak, transport, headers())));
    }

    /// One round of health checks: every replica due for one, at once.
    async fn check_round(self: Arc<Self>, transport: &Transport, headers: &HeaderMap) {
        let now = Instant::now();
        let interval = self.config.health_check_interval;
        let timeout = interval.clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut checks = Vec::new();
        for index in 0..self.replicas.len() {
            let due = {
                let health = self.replicas[index].health();
                !health.ejected || health.next_probe.is_none_or(|at| at <= now)
            };
            if !due {
                continue;
            }
            let balancer = self.clone();
            let transport = transport.clone();
            let headers = headers.clone();
            checks.push(tokio::spawn(async move {
                let replica = &balancer.replicas[index];
                let ok = probe(&transport, &headers, &replica.base_url, "/health", timeout)
                    .await
                    .is_some_and(|(status, _)| status == 200);
                if ok {
                    replica.set_healthy();
                    if balancer.config.by_load {
                        let load = probe(&transport, &headers, &replica.base_url, "/load", timeout)
                            .await
                            .filter(|(status, _)| *status == 200)
                            .and_then(|(_, body)| server_load(&body));
                        replica
                            .server_load
                            .store(load.unwrap_or(usize::MAX), Ordering::Relaxed);
                    }
                } else {
                    replica.set_failed(interval, Instant::now());
                }
            }));
        }
        for check in checks {
            let _ = check.await;
        }
    }

    fn random(&self) -> u64 {
        // splitmix64 over an atomic counter: cheap, and good enough to pick two replicas.
        let state = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(state)
    }
}

impl Replica {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_failed(&self, interval: Duration, now: Instant) {
        let mut health = self.health();
        health.failures = health.failures.saturating_add(1);
        if !health.ejected {
            health.ejected = true;
            health.since = Some(now);
        }
        // Asked again after the interval, then twice, four times… as long.
        let backoff = interval
            .saturating_mul(1 << (health.failures - 1).min(16))
            .min(MAX_PROBE_BACKOFF.max(interval));
        health.next_probe = Some(now + backoff);
    }

    fn set_healthy(&self) {
        let mut health = self.health();
        *health = Health::default();
    }
}

async fn check_forever(balancer: Weak<Balancer>, transport: Transport, headers: HeaderMap) {
    loop {
        let Some(interval) = balancer.upgrade().map(|b| b.config.health_check_interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(strong) = balancer.upgrade() else {
            return;
        };
        strong.check_round(&transport, &headers).await;
    }
}

/// GETs `path` at the server's root (the base URL without `/v1`): its status and body, or
/// `None` when it did not answer within `timeout`.
async fn probe(
    transport: &Transport,
    headers: &HeaderMap,
    base_url: &str,
    path: &str,
    timeout: Duration,
) -> Option<(u16, bytes::Bytes)> {
    let root = base_url.strip_suffix("/v1").unwrap_or(base_url);
    let request = transport
        .get(format!("{root}{path}"))
        .headers(headers.clone())
        .max_retries(0)
        .timeout(timeout);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            Some((status, response.bytes().await.ok()?))
        }
        Err(e) => e.status().map(|s| (s.as_u16(), bytes::Bytes::new())),
    }
}

/// `server_load` from vLLM's `/load` answer.
fn server_load(body: &[u8]) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    usize::try_from(value.get("server_load")?.as_u64()?).ok()
}

/// The session key a request carries: `X-Session-ID`, else `X-User-ID`.
pub(crate) fn session_key(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(SESSION_ID_HEADER)
        .or_else(|| headers.get(USER_ID_HEADER))
        .map(|v| v.as_bytes())
        .filter(|v| !v.is_empty())
}

/// FNV-1a, 64 bits: the same in every process and Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(n: usize) -> Arc<Balancer> {
        Arc::new(Balancer::new(
            (0..n)
                .map(|i| format!("http://10.0.0.{i}:8000/v1"))
                .collect(),
            BalanceConfig {
                health_check_interval: Duration::from_secs(1),
                by_load: false,
            },
        ))
    }

    fn with_session(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_ID_HEADER, id.parse().unwrap());
        headers
    }

    #[test]
    fn a_session_keeps_its_replica_and_only_the_ejected_ones_move() {
        let b = balancer(3);
        let before: Vec<usize> = (0..3000)
            .map(|i| b.pick(&with_session(&format!("s{i}")), &[]))
            .collect();
        // Spread: each replica gets about a third of the sessions.
        for r in 0..3 {
            let n = before.iter().filter(|&&x| x == r).count();
            assert!((900..=1100).contains(&n), "replica {r}: {n} of 3000");
        }
        // The same key, the same replica.
        for (i, &home) in before.iter().enumerate() {
            assert_eq!(b.pick(&with_session(&format!("s{i}")), &[]), home);
        }
        b.failed(1);
        for (i, &home) in before.iter().enumerate() {
            let now = b.pick(&with_session(&format!("s{i}")), &[]);
            if home == 1 {
                assert_ne!(now, 1);
            } else {
                assert_eq!(now, home, "session s{i} moved");
            }
        }
        b.replicas[1].set_healthy();
        for (i, &home) in before.iter().enumerate() {
            assert_eq!(b.pick(&with_session(&format!("s{i}")), &[]), home);
        }
    }

    #[test]
    fn the_user_header_is_the_key_without_a_session() {
        let b = balancer(5);
        let mut headers = HeaderMap::new();
        headers.insert(USER_ID_HEADER, "alice".parse().unwrap());
        let first = b.pick(&headers, &[]);
        assert!((0..20).all(|_| b.pick(&headers, &[]) == first));
        assert_eq!(session_key(&headers), Some(&b"alice"[..]));
        headers.insert(SESSION_ID_HEADER, "chat-1".parse().unwrap());
        assert_eq!(session_key(&headers), Some(&b"chat-1"[..]));
    }

    #[test]
    fn two_choices_prefer_the_less_busy_and_skip_the_tried() {
        let b = balancer(2);
        let busy = b.start(0);
        let _more = b.start(0);
        // With two replicas both are always the two choices: the idle one wins.
        assert!((0..50).all(|_| b.pick(&HeaderMap::new(), &[]) == 1));
        drop(busy);
        // Tried replicas are skipped while an untried one is left, then allowed again.
        assert!((0..50).all(|_| b.pick(&HeaderMap::new(), &[1]) == 0));
        assert!((0..50).all(|_| b.pick(&with_session("x"), &[0, 1]) < 2));
    }

    #[test]
    fn ejected_replicas_wait_longer_each_time_and_all_ejected_means_all_used() {
        let b = balancer(2);
        let t0 = Instant::now();
        b.replicas[0].set_failed(Duration::from_secs(1), t0);
        b.replicas[0].set_failed(Duration::from_secs(1), t0);
        b.replicas[0].set_failed(Duration::from_secs(1), t0);
        let health = b.replicas[0].health();
        assert!(health.ejected);
        assert_eq!(health.next_probe, Some(t0 + Duration::from_secs(4)));
        drop(health);
        assert!((0..50).all(|_| b.pick(&HeaderMap::new(), &[]) == 1));
        b.failed(1);
        let seen: std::collections::HashSet<usize> =
            (0..200).map(|_| b.pick(&HeaderMap::new(), &[])).collect();
        assert_eq!(seen.len(), 2, "every replica ejected: all are used again");
    }

    #[test]
    fn vllm_load_answers_are_read() {
        assert_eq!(server_load(br#"{"server_load": 7}"#), Some(7));
        assert_eq!(server_load(br#"{"other": 1}"#), None);
        assert_eq!(server_load(b"not json"), None);
    }
}
