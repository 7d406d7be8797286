//! [`RedisStore`]: a [`StateStore`] in Redis.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, FromRedisValue, Pipeline};

use super::store::{FleetState, Record, StateStore, StoreError, StoreFuture};
use super::FleetError;
use crate::error::ConfigError;
use crate::lock::unpoisoned;

/// A [`StateStore`] in Redis, through the `redis` crate's async multiplexed connection.
///
/// Each breaker `name` uses three keys under `prefix`, all with TTLs:
///
/// | key | value | expires |
/// |---|---|---|
/// | `{<prefix>:<name>}:state` | the last published open or close | `record_ttl` after it (plus the open duration) |
/// | `{<prefix>:<name>}:deadline` | present while the fleet's open period runs | at the deadline |
/// | `{<prefix>:<name>}:probe` | the instance holding the probe lease | after the lease's TTL |
///
/// The braces are a Redis Cluster hash tag: the three keys of one breaker hash to the
/// same slot, so the store's transactions (`MULTI` over `:state` and `:deadline`) and
/// pipelines never span slots (no `CROSSSLOT`), while different breakers spread over
/// the cluster. The tag holds the prefix too, so it is never empty (the prefix may not
/// contain braces; a name may, and the tag then ends at its first `}`, the same for
/// all three keys).
///
/// Every command is bounded by [`timeout`](Self::timeout) (connecting included); a
/// failed or timed-out connection is dropped and re-established by the next call, so
/// the store recovers on its own when Redis comes back. Clones share one connection.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::fleet::RedisStore;
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/", "checkout")? // connects lazily
///     .timeout(Duration::from_millis(100))?
///     .record_ttl(Duration::from_secs(600))?;
/// assert_eq!(store.key("payments", "state"), "{checkout:payments}:state");
///
/// let err = RedisStore::open("redis://127.0.0.1:6379/", "checkout")?
///     .timeout(Duration::ZERO)
///     .unwrap_err();
/// assert!(err.to_string().contains("timeout"));
/// # Ok::<(), tower_circuit_breaker::fleet::FleetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    target: Target,
    prefix: Arc<str>,
    timeout: Duration,
    record_ttl: Duration,
    connection: Arc<Mutex<Option<Connection>>>,
}

/// Where the store's Redis is.
#[derive(Debug, Clone)]
enum Target {
    /// One server (or a proxy in front of several).
    Single(Client),
    /// A Redis Cluster, found through any of these nodes; the client is built at each
    /// connection, with the store's timeout.
    Cluster {
        nodes: Arc<[String]>,
        root_certificate: Option<Arc<[u8]>>,
    },
}

/// An open connection, shared by the store's clones.
#[derive(Clone)]
enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl RedisStore {
    /// Default bound on each Redis command, connecting included.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
    /// Default time a published record is kept after it stops mattering.
    pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(3600);

    /// A store at `url` (e.g. `redis://127.0.0.1:6379/`) with keys under `prefix`
    /// (e.g. the service's name). Does not connect yet: the first call does.
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore, FleetError> {
        check_prefix(prefix)?;
        let client = open_client(url)?;
        Ok(RedisStore::at(Target::Single(client), prefix))
    }

    /// A store in the Redis Cluster reached through `nodes` (any of its nodes; e.g.
    /// `["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"]`), with keys under
    /// `prefix`. Each command goes to the node that holds its breaker's slot (all
    /// three keys of a breaker share one, see above), following the cluster when slots
    /// move. Does not connect yet.
    ///
    /// ```
    /// use tower_circuit_breaker::fleet::RedisStore;
    ///
    /// let store = RedisStore::open_cluster(
    ///     &["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"],
    ///     "checkout",
    /// )?;
    /// assert!(RedisStore::open_cluster(&[], "checkout").is_err());
    /// # Ok::<(), tower_circuit_breaker::fleet::FleetError>(())
    /// ```
    pub fn open_cluster(nodes: &[&str], prefix: &str) -> Result<RedisStore, FleetError> {
        check_prefix(prefix)?;
        if nodes.is_empty() {
            return Err(ConfigError::invalid(
                "nodes",
                nodes,
                "must name at least one node of the cluster",
            )
            .into());
        }
        for node in nodes {
            open_client(node)?;
        }
        let nodes = nodes.iter().map(|node| node.to_string()).collect();
        Ok(RedisStore::at(
            Target::Cluster {
                nodes,
                root_certificate: None,
            },
            prefix,
        ))
    }

    fn at(target: Target, prefix: &str) -> RedisStore {
        RedisStore {
            target,
            prefix: prefix.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            record_ttl: Self::DEFAULT_RECORD_TTL,
            connection: Arc::default(),
        }
    }

    /// Trusts `pem` (one or more PEM certificates) as the root of the Redis server's
    /// TLS certificate, instead of the system's roots: a private CA, or a self-signed
    /// server. The store's URL must be `rediss://`.
    ///
    /// ```no_run
    /// use tower_circuit_breaker::fleet::RedisStore;
    ///
    /// let ca = std::fs::read("/etc/redis/ca.pem").expect("the CA certificate");
    /// let store = RedisStore::open("rediss://app:secret@redis.internal:6380/", "checkout")?
    ///     .root_certificate(&ca)?;
    /// # Ok::<(), tower_circuit_breaker::fleet::FleetError>(())
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn root_certificate(self, pem: &[u8]) -> Result<RedisStore, FleetError> {
        let certificates = || trusting(pem);
        let target = match self.target {
            Target::Single(client) => {
                let client =
                    Client::build_with_tls(client.get_connection_info().clone(), certificates())
                        .map_err(|source| FleetError::Certificate { source })?;
                Target::Single(client)
            }
            Target::Cluster { nodes, .. } => {
                // Checked now, so that a bad certificate is a setup error.
                ClusterClient::builder(nodes.iter().cloned())
                    .certs(certificates())
                    .build()
                    .map_err(|source| FleetError::Certificate { source })?;
                Target::Cluster {
                    nodes,
                    root_certificate: Some(pem.into()),
                }
            }
        };
        Ok(RedisStore {
            target,
            connection: Arc::default(),
            ..self
        })
    }

    /// Bounds each Redis command, connecting included (default 250 ms). A store that
    /// does not answer in time counts as unreachable: instances fall back to local state.
    pub fn timeout(self, timeout: Duration) -> Result<RedisStore, FleetError> {
        if timeout.is_zero() {
            return Err(
                ConfigError::invalid("timeout", timeout, "must be longer than zero").into(),
            );
        }
        Ok(RedisStore { timeout, ..self })
    }

    /// How long a published record outlives its relevance (default 1 h): a close, or
    /// an open past its deadline. Instances starting within it learn the fleet's state.
    pub fn record_ttl(self, record_ttl: Duration) -> Result<RedisStore, FleetError> {
        if record_ttl < Duration::from_millis(1) {
            return Err(ConfigError::invalid(
                "record_ttl",
                record_ttl,
                "must be at least one millisecond",
            )
            .into());
        }
        Ok(RedisStore { record_ttl, ..self })
    }

    /// The Redis key of breaker `name`'s `part` (`state`, `deadline` or `probe`):
    /// `{<prefix>:<name>}:<part>`, one hash slot per breaker.
    pub fn key(&self, name: &str, part: &str) -> String {
        format!("{{{}:{name}}}:{part}", self.prefix)
    }

    /// Runs `pipe` on the shared connection, connecting first if needed, all within
    /// the timeout. Any failure drops the connection so the next call reconnects.
    async fn query<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        let result = tokio::time::timeout(self.timeout, async {
            match self.connection().await? {
                Connection::Single(mut connection) => pipe.query_async::<T>(&mut connection).await,
                Connection::Cluster(mut connection) => pipe.query_async::<T>(&mut connection).await,
            }
        })
        .await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.forget_connection();
                Err(StoreError::Unavailable(Box::new(error)))
            }
            Err(_elapsed) => {
                self.forget_connection();
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<Connection> {
        if let Some(connection) = self.lock().clone() {
            return Ok(connection);
        }
        let connection = match &self.target {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout);
                Connection::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            Target::Cluster {
                nodes,
                root_certificate,
            } => {
                let builder = ClusterClient::builder(nodes.iter().cloned())
                    .connection_timeout(self.timeout)
                    .response_timeout(self.timeout)
                    // A command is bounded by the store's timeout: no retries past it.
                    .retries(1);
                #[cfg(feature = "rustls")]
                let builder = match root_certificate {
                    Some(pem) => builder.certs(trusting(pem)),
                    None => builder,
                };
                #[cfg(not(feature = "rustls"))]
                let _ = root_certificate;
                Connection::Cluster(builder.build()?.get_async_connection().await?)
            }
        };
        *self.lock() = Some(connection.clone());
        Ok(connection)
    }

    fn forget_connection(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        // Never held across an await; a poisoned lock still holds a valid Option.
        unpoisoned(self.connection.lock())
    }

    async fn publish_record(&self, name: &str, record: &Record) -> Result<(), StoreError> {
        let (state, deadline) = (self.key(name, "state"), self.key(name, "deadline"));
        let mut pipe = redis::pipe();
        pipe.atomic();
        match &record.state {
            FleetState::Open { open_for, reason } => {
                let value = format!("open\n{}\n{}\n{reason}", record.origin, record.id);
                let ttl = millis(open_for.saturating_add(self.record_ttl));
                pipe.cmd("SET").arg(&state).arg(value).arg("PX").arg(ttl);
                if open_for.as_millis() > 0 {
                    pipe.cmd("SET")
                        .arg(&deadline)
                        .arg(1)
                        .arg("PX")
                        .arg(millis(*open_for));
                } else {
                    pipe.cmd("DEL").arg(&deadline);
                }
            }
            FleetState::Closed => {
                let value = format!("closed\n{}\n{}", record.origin, record.id);
                let ttl = millis(self.record_ttl);
                pipe.cmd("SET").arg(&state).arg(value).arg("PX").arg(ttl);
                pipe.cmd("DEL").arg(&deadline).arg(self.key(name, "probe"));
            }
        }
        self.query::<()>(&pipe).await
    }

    async fn load_record(&self, name: &str) -> Result<Option<Record>, StoreError> {
        let key = self.key(name, "state");
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key);
        pipe.cmd("PTTL").arg(self.key(name, "deadline"));
        let (value, remaining_ms): (Option<String>, i64) = self.query(&pipe).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        parse(&value, remaining_ms)
            .map(Some)
            .ok_or(StoreError::Malformed { key, value })
    }

    async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.key(name, "probe");
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("SET")
            .arg(&key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .ignore();
        pipe.cmd("GET").arg(&key);
        let (current,): (Option<String>,) = self.query(&pipe).await?;
        Ok(current.as_deref() == Some(holder))
    }
}

impl StateStore for RedisStore {
    fn publish<'a>(&'a self, name: &'a str, record: &'a Record) -> StoreFuture<'a, ()> {
        Box::pin(self.publish_record(name, record))
    }

    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(self.load_record(name))
    }

    fn acquire_probe_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.lease(name, holder, ttl))
    }
}

/// TLS settings that trust `pem` as the server certificate's root (no client
/// certificate).
#[cfg(feature = "rustls")]
fn trusting(pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

/// The prefix may not be empty, nor hold the braces of the keys' hash tag.
fn check_prefix(prefix: &str) -> Result<(), FleetError> {
    if prefix.is_empty() {
        return Err(ConfigError::invalid("prefix", prefix, "must not be empty").into());
    }
    if prefix.contains(['{', '}']) {
        return Err(ConfigError::invalid(
            "prefix",
            prefix,
            "must not contain `{` or `}`: the keys wrap the prefix and the breaker's \
             name in a Redis Cluster hash tag",
        )
        .into());
    }
    Ok(())
}

/// A client for `url`, or an error naming it (`rediss://` needs the `rustls` feature).
fn open_client(url: &str) -> Result<Client, FleetError> {
    if url.starts_with("rediss://") && cfg!(not(feature = "rustls")) {
        return Err(FleetError::TlsNotEnabled {
            url: url.to_owned(),
        });
    }
    #[cfg(feature = "rustls")]
    install_crypto_provider();
    Client::open(url).map_err(|source| FleetError::Url {
        url: url.to_owned(),
        source,
    })
}

/// Makes rustls use *ring* for the process unless a provider is installed already (an
/// application's own choice wins). rustls picks one by itself only when exactly one is
/// compiled in, which another crate in the build may change.
#[cfg(feature = "rustls")]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whole milliseconds, at least one (Redis rejects `PX 0`).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Reads a stored `state` value; `remaining_ms` is the deadline key's PTTL (negative
/// when it has expired).
fn parse(value: &str, remaining_ms: i64) -> Option<Record> {
    let mut parts = value.splitn(4, '\n');
    let kind = parts.next()?;
    let origin = parts.next()?.to_owned();
    let id = parts.next()?.parse().ok()?;
    let state = match kind {
        "open" => FleetState::Open {
            open_for: Duration::from_millis(u64::try_from(remaining_ms).unwrap_or(0)),
            reason: parts.next().unwrap_or_default().to_owned(),
        },
        "closed" => FleetState::Closed,
        _ => return None,
    };
    Some(Record { state, origin, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_stored_form() {
        let open = parse("open\nhost-1\n42\n5 consecutive failures\nand more", 1500).unwrap();
        assert_eq!(
            open,
            Record {
                state: FleetState::Open {
                    open_for: Duration::from_millis(1500),
                    reason: "5 consecutive failures\nand more".into(),
                },
                origin: "host-1".into(),
                id: 42,
            }
        );
        let elapsed = parse("open\nhost-1\n42\nx", -2).unwrap();
        assert!(matches!(elapsed.state, FleetState::Open { open_for, .. } if open_for.is_zero()));
        let closed = parse("closed\nhost-2\n7", -2).unwrap();
        assert_eq!(closed.state, FleetState::Closed);
        assert_eq!((closed.origin.as_str(), closed.id), ("host-2", 7));
    }

    #[test]
    fn unreadable_values_are_rejected() {
        for bad in [
            "",
            "open",
            "open\nhost",
            "open\nhost\nnot-a-number",
            "ajar\nhost\n1",
        ] {
            assert_eq!(parse(bad, 10), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_settings_name_the_field() {
        let url = "redis://127.0.0.1:1/";
        let field = |err: FleetError| match err {
            FleetError::Invalid(invalid) => invalid.field().to_owned(),
            other => panic!("expected an invalid field, got {other}"),
        };
        assert_eq!(field(RedisStore::open(url, "").unwrap_err()), "prefix");
        assert_eq!(field(RedisStore::open(url, "a{b").unwrap_err()), "prefix");
        assert_eq!(field(RedisStore::open(url, "}").unwrap_err()), "prefix");
        let store = RedisStore::open(url, "p").unwrap();
        assert_eq!(
            field(store.clone().timeout(Duration::ZERO).unwrap_err()),
            "timeout"
        );
        assert_eq!(
            field(store.record_ttl(Duration::ZERO).unwrap_err()),
            "record_ttl"
        );
        assert!(matches!(
            RedisStore::open("not a url", "p"),
            Err(FleetError::Url { .. })
        ));
    }

    /// Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag (the part between the
    /// first `{` and the next `}`, when that is not empty) or of the whole key, mod 16384.
    fn hash_slot(key: &str) -> u16 {
        let bytes = key.as_bytes();
        let hashed = match key.find('{') {
            Some(open) => match key[open + 1..].find('}') {
                Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
                _ => bytes,
            },
            None => bytes,
        };
        let mut crc: u16 = 0;
        for &byte in hashed {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc % 16384
    }

    #[test]
    fn every_key_of_a_breaker_is_in_one_cluster_slot() {
        // The reference values from the Redis Cluster specification.
        assert_eq!(hash_slot("123456789"), 0x31C3); // CRC16/XMODEM check value, < 16384
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("foo{}{bar}"), hash_slot("foo{}{bar}"));
        assert_ne!(
            hash_slot("{}a"),
            hash_slot("{}b"),
            "an empty tag hashes the whole key"
        );

        let store = RedisStore::open("redis://127.0.0.1:1/", "checkout").unwrap();
        let mut slots = std::collections::HashSet::new();
        for name in [
            "payments",
            "",
            "}",
            "a}b",
            "{x}",
            "{",
            "users/10.0.0.7:8080",
        ] {
            let slot = hash_slot(&store.key(name, "state"));
            // Every key a command of the store names together: the transactions of
            // `publish` (state, deadline, probe) and the pipelines of `load` and `lease`.
            for part in ["deadline", "probe"] {
                assert_eq!(hash_slot(&store.key(name, part)), slot, "{name:?} {part}");
            }
            slots.insert(slot);
        }
        assert!(
            slots.len() > 1,
            "different breakers spread over the cluster"
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_bounded_error() {
        // Port 1 is reserved and closed: connecting fails at once or times out.
        let store = RedisStore::open("redis://127.0.0.1:1/", "p")
            .unwrap()
            .timeout(Duration::from_millis(200))
            .unwrap();
        let started = std::time::Instant::now();
        assert!(store.load("db").await.is_err());
        assert!(store
            .acquire_probe_lease("db", "me", Duration::from_secs(1))
            .await
            .is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
