//! Source secrets sealed at rest. HMAC verification needs each secret itself (a hash would
//! not do), so what Redis holds is the secret encrypted with XChaCha20-Poly1305 under a key
//! only the gateway processes know (`OMNIGATE_SECRET_KEY`): a dump, a backup or a replica
//! of Redis no longer hands out the keys to forge every shop's webhooks.
//!
//! A sealed value reads `sealed:v1:<key id>:<base64(nonce || ciphertext)>`. The key id (the
//! first 8 hex digits of the key's SHA-256) says which key opens it, so a rotation can keep
//! the previous keys until `omnigate secrets rewrap` re-sealed everything with the new one.
//! The associated data is the source id: a sealed secret copied onto another source does
//! not open. Text without the `sealed:` prefix is a secret written before sealing existed
//! (or by a gateway in the insecure plaintext mode) and is taken as it is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

use super::{PluginRecord, PollState, RedisStore, Registry, SecretValue, SourceRecord, Store};
use super::{StoreError, StoreResult};
use crate::config::{KeyText, Settings};

/// What every sealed value starts with; anything else is a legacy plaintext secret.
pub const SEALED_PREFIX: &str = "sealed:";
/// The only format so far; a new one gets a new version so old values stay readable.
const V1: &str = "v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// The rule a key must follow and how to make one, for every message about a bad key.
pub const KEY_RULE: &str = "exactly 32 random bytes in standard base64 \
     (make one with `head -c 32 /dev/urandom | base64`)";

/// One key: its public id and the cipher (which wipes the key bytes when dropped).
struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    /// `name` is the setting the text came from, so the error says which one is wrong;
    /// the text itself is never part of an error.
    fn parse(text: &str, name: &str) -> StoreResult<Self> {
        let bad = |why: String| StoreError::Config(format!("{name} {why}: it must be {KEY_RULE}"));
        let bytes = Zeroizing::new(
            BASE64
                .decode(text.trim())
                .map_err(|_| bad("is not standard base64".into()))?,
        );
        if bytes.len() != KEY_LEN {
            return Err(bad(format!("decodes to {} bytes", bytes.len())));
        }
        // Catches placeholders like 32 zero bytes; real randomness cannot be checked.
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(bad("repeats one byte".into()));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| bad(format!("decodes to {} bytes", bytes.len())))?;
        Ok(SealingKey {
            id: key_id(&bytes),
            cipher,
        })
    }
}

/// The first 8 hex digits of the key's SHA-256: enough to pick among a handful of keys,
/// far too little to learn anything about the key.
fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// Seals and opens secrets: the current key seals, any configured key opens.
pub struct Sealer {
    current: SealingKey,
    /// Keys of a rotation in progress: they still open, never seal.
    previous: Vec<SealingKey>,
}

impl fmt::Debug for Sealer {
    /// Key ids only: they identify keys without revealing them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Sealer")
            .field("current", &self.current.id)
            .field("previous", &previous)
            .finish()
    }
}

impl Sealer {
    /// `current` seals; `previous` (keys being rotated out) still open. Each is base64 of
    /// 32 random bytes.
    pub fn new<K: AsRef<str>>(current: &str, previous: &[K]) -> StoreResult<Self> {
        let current = SealingKey::parse(current, "OMNIGATE_SECRET_KEY")?;
        let mut kept: Vec<SealingKey> = Vec::new();
        for text in previous {
            let key = SealingKey::parse(text.as_ref(), "a key in OMNIGATE_SECRET_KEY_PREVIOUS")?;
            // The current key listed again (a rotation half done) is no extra key.
            if key.id != current.id && kept.iter().all(|k| k.id != key.id) {
                kept.push(key);
            }
        }
        Ok(Sealer {
            current,
            previous: kept,
        })
    }

    /// The id of the key new values are sealed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `secret` for the record `context` (a source id) with the current key and a
    /// fresh random nonce (24 bytes: random nonces never realistically repeat).
    pub fn seal(&self, context: &str, secret: &str) -> StoreResult<String> {
        let nonce = XNonce::try_generate()
            .map_err(|e| StoreError::Internal(format!("no randomness for a nonce: {e}")))?;
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Internal("sealing a secret failed".into()))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{V1}:{}:{}",
            self.current.id,
            BASE64.encode(blob)
        ))
    }

    /// The secret in `text`, stored for the record `context`. Legacy plaintext comes back as
    /// it is; a sealed value opens only with the key it names and only for its own record.
    pub fn open(&self, context: &str, text: &str) -> StoreResult<String> {
        let Some(sealed) = Sealed::parse(context, text)? else {
            return Ok(text.to_string());
        };
        let keys = std::iter::once(&self.current).chain(&self.previous);
        let mut candidates = keys.filter(|k| k.id == sealed.key_id).peekable();
        if candidates.peek().is_none() {
            return Err(StoreError::Config(format!(
                "the secret of {context} is sealed with key {}, which is neither \
                 OMNIGATE_SECRET_KEY ({}) nor in OMNIGATE_SECRET_KEY_PREVIOUS",
                sealed.key_id, self.current.id
            )));
        }
        let (nonce, ciphertext) = sealed.blob.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| corrupt(context, "bad nonce"))?;
        for key in candidates {
            let payload = Payload {
                msg: ciphertext,
                aad: context.as_bytes(),
            };
            if let Ok(plain) = key.cipher.decrypt(&nonce, payload) {
                return String::from_utf8(plain).map_err(|_| corrupt(context, "it is not UTF-8"));
            }
        }
        Err(corrupt(
            context,
            "it does not open: the value was altered, copied from another record, or sealed \
             with another key of the same id",
        ))
    }

    /// True when `text` is already sealed with the current key (nothing to re-seal).
    pub fn is_current(&self, text: &str) -> bool {
        text.strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.strip_prefix(V1))
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.current.id)
    }

    /// A copy of `source` with every secret sealed for it: the form that is stored.
    pub fn seal_source(&self, source: &SourceRecord) -> StoreResult<SourceRecord> {
        let mut sealed = source.clone();
        for secret in &mut sealed.secrets {
            secret.value = SecretValue::new(self.seal(&source.id, secret.value.expose())?);
        }
        if let Some(api) = &mut sealed.api_credentials {
            *api = SecretValue::new(self.seal(&api_context(&source.id), api.expose())?);
        }
        Ok(sealed)
    }

    /// How many of a stored source's sealed values are not sealed with the current key.
    pub fn stale_in_source(&self, source: &SourceRecord) -> usize {
        source
            .secrets
            .iter()
            .map(|s| &s.value)
            .chain(&source.api_credentials)
            .filter(|v| !self.is_current(v.expose()))
            .count()
    }

    /// `source` as stored, with every secret opened.
    pub fn open_source(&self, mut source: SourceRecord) -> StoreResult<SourceRecord> {
        if source
            .secrets
            .iter()
            .map(|s| &s.value)
            .chain(&source.api_credentials)
            .any(|v| !v.expose().starts_with(SEALED_PREFIX))
        {
            tracing::warn!(
                source_id = %source.id,
                "a secret of this source is stored in plaintext; run `omnigate secrets rewrap`"
            );
        }
        for secret in &mut source.secrets {
            secret.value = SecretValue::new(self.open(&source.id, secret.value.expose())?);
        }
        let context = api_context(&source.id);
        if let Some(api) = &mut source.api_credentials {
            *api = SecretValue::new(self.open(&context, api.expose())?);
        }
        Ok(source)
    }
}

/// A stored source's secrets opened, with the sealer when there is one. Without one (the
/// insecure plaintext mode) plaintext passes and a sealed value is an error naming the
/// missing key, rather than a secret that would silently never verify.
pub fn open_source(sealer: Option<&Sealer>, source: SourceRecord) -> StoreResult<SourceRecord> {
    if let Some(sealer) = sealer {
        return sealer.open_source(source);
    }
    if source
        .secrets
        .iter()
        .map(|s| &s.value)
        .chain(&source.api_credentials)
        .any(|v| v.expose().starts_with(SEALED_PREFIX))
    {
        return Err(StoreError::Config(format!(
            "the secrets of {} are sealed, but no OMNIGATE_SECRET_KEY is set to open them",
            source.id
        )));
    }
    Ok(source)
}

/// The form of `source` to store: sealed with the sealer, else as it is (insecure mode).
pub fn seal_source(sealer: Option<&Sealer>, source: &SourceRecord) -> StoreResult<SourceRecord> {
    match sealer {
        Some(sealer) => sealer.seal_source(source),
        None => Ok(source.clone()),
    }
}

/// The context a thin source's API credentials are sealed for: not the source's own (its
/// API token moved into its secrets does not open there).
fn api_context(source_id: &str) -> String {
    format!("api:{source_id}")
}

/// The context a source's poll tokens are sealed for: not the source's own (a token moved
/// into its secrets does not open there).
fn poll_context(source_id: &str) -> String {
    format!("poll:{source_id}")
}

/// The form of a poll state to store: its OAuth tokens sealed.
pub fn seal_poll(
    sealer: Option<&Sealer>,
    source_id: &str,
    state: &PollState,
) -> StoreResult<PollState> {
    let mut sealed = state.clone();
    if let Some(sealer) = sealer {
        let context = poll_context(source_id);
        for token in [&mut sealed.access_token, &mut sealed.refresh_token]
            .into_iter()
            .flatten()
        {
            *token = SecretValue::new(sealer.seal(&context, token.expose())?);
        }
    }
    Ok(sealed)
}

/// A stored poll state with its tokens opened.
pub fn open_poll(
    sealer: Option<&Sealer>,
    source_id: &str,
    mut state: PollState,
) -> StoreResult<PollState> {
    let context = poll_context(source_id);
    for token in [&mut state.access_token, &mut state.refresh_token]
        .into_iter()
        .flatten()
    {
        let text = token.expose();
        let opened = match sealer {
            Some(sealer) => sealer.open(&context, text)?,
            None if text.starts_with(SEALED_PREFIX) => {
                return Err(StoreError::Config(format!(
                    "the poll tokens of {source_id} are sealed, but no OMNIGATE_SECRET_KEY is \
                     set to open them"
                )));
            }
            None => continue,
        };
        *token = SecretValue::new(opened);
    }
    Ok(state)
}

/// The form of `plugin` to store: its push signing secrets sealed for it (with the
/// sealer; as they are in the insecure plaintext mode).
pub fn seal_plugin(sealer: Option<&Sealer>, plugin: &PluginRecord) -> StoreResult<PluginRecord> {
    let mut sealed = plugin.clone();
    if let (Some(sealer), Some(push)) = (sealer, sealed.push.as_mut()) {
        for secret in &mut push.secrets {
            secret.value = SecretValue::new(sealer.seal(&plugin.id, secret.value.expose())?);
        }
    }
    Ok(sealed)
}

/// A stored plugin with its push signing secrets opened; a sealed one without a sealer is
/// an error naming the missing key.
pub fn open_plugin(sealer: Option<&Sealer>, mut plugin: PluginRecord) -> StoreResult<PluginRecord> {
    let id = plugin.id.clone();
    let Some(push) = plugin.push.as_mut() else {
        return Ok(plugin);
    };
    for secret in &mut push.secrets {
        let text = secret.value.expose();
        let opened = match sealer {
            Some(sealer) => sealer.open(&id, text)?,
            None if text.starts_with(SEALED_PREFIX) => {
                return Err(StoreError::Config(format!(
                    "the signing secrets of {id} are sealed, but no OMNIGATE_SECRET_KEY is set \
                     to open them"
                )));
            }
            None => continue,
        };
        secret.value = SecretValue::new(opened);
    }
    Ok(plugin)
}

/// The parts of a sealed value; `None` for legacy plaintext.
struct Sealed<'a> {
    key_id: &'a str,
    /// Nonce followed by ciphertext and tag; at least long enough for nonce and tag.
    blob: Vec<u8>,
}

impl<'a> Sealed<'a> {
    fn parse(context: &str, text: &'a str) -> StoreResult<Option<Self>> {
        let Some(rest) = text.strip_prefix(SEALED_PREFIX) else {
            return Ok(None);
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(version), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt(context, "the sealed value is incomplete"));
        };
        if version != V1 {
            return Err(corrupt(
                context,
                format!("sealed format {version:?} is unknown to this version"),
            ));
        }
        let blob = BASE64
            .decode(blob)
            .map_err(|_| corrupt(context, "the sealed value is not base64"))?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(corrupt(context, "the sealed value is too short"));
        }
        Ok(Some(Sealed { key_id, blob }))
    }
}

fn corrupt(context: &str, why: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("the sealed secret of {context}: {why}"))
}

/// The message for Redis without a key: what to set, how to make a key, and the way out.
pub const MISSING_KEY: &str = "OMNIGATE_SECRET_KEY (or --secret-key) is required with Redis: \
     source secrets are encrypted with it before they are stored. Make one with \
     `head -c 32 /dev/urandom | base64` and keep it with the admin token. To store secrets in \
     plaintext instead (not for production), pass --insecure-plaintext-secrets \
     (OMNIGATE_INSECURE_PLAINTEXT_SECRETS=true)";

/// The start-up check: the sealer the settings ask for. With Redis a key is required
/// unless `insecure_plaintext_secrets` is set (then `None`, with a loud warning); the memory
/// store needs none (a given key is still checked, so a bad one fails before production).
pub fn from_settings(settings: &Settings) -> StoreResult<Option<Arc<Sealer>>> {
    let current = settings
        .secret_key
        .as_ref()
        .map(KeyText::expose)
        .filter(|k| !k.trim().is_empty());
    let previous: Vec<&str> = settings
        .secret_key_previous
        .iter()
        .map(KeyText::expose)
        .filter(|k| !k.trim().is_empty())
        .collect();
    match current {
        Some(key) => Ok(Some(Arc::new(Sealer::new(key, &previous)?))),
        None if !previous.is_empty() => Err(StoreError::Config(
            "OMNIGATE_SECRET_KEY_PREVIOUS is set without OMNIGATE_SECRET_KEY: during a \
             rotation the new key goes in OMNIGATE_SECRET_KEY and the old one in \
             OMNIGATE_SECRET_KEY_PREVIOUS"
                .into(),
        )),
        None if settings.redis_url.is_none() => Ok(None),
        None if settings.insecure_plaintext_secrets => {
            tracing::warn!(
                "INSECURE: --insecure-plaintext-secrets is set, so source secrets are stored \
                 in Redis IN PLAINTEXT; anyone who can read Redis or its backups can forge \
                 every shop's webhooks. Set OMNIGATE_SECRET_KEY (`head -c 32 /dev/urandom | \
                 base64`) and run `omnigate secrets rewrap`."
            );
            Ok(None)
        }
        None => Err(StoreError::Config(MISSING_KEY.into())),
    }
}

/// What `omnigate secrets rewrap` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// The id of the key everything is now sealed with.
    pub key_id: String,
    /// Sources looked at.
    pub sources: usize,
    /// Sources written, because at least one of their secrets was not sealed with the
    /// current key.
    pub resealed_sources: usize,
    /// Secrets re-sealed: plaintext ones and those sealed with a previous key.
    pub resealed_secrets: usize,
    /// Push plugins' signing secrets re-sealed, in how many plugins.
    pub resealed_signing_secrets: usize,
    pub resealed_plugins: usize,
    /// Poll sources' OAuth tokens re-sealed.
    pub resealed_poll_tokens: usize,
}

impl fmt::Display for RewrapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "re-sealed {} secrets in {} of {} sources, {} signing secrets in {} push plugins \
             and {} poll tokens with key {}; every stored secret is now sealed with it, so \
             OMNIGATE_SECRET_KEY_PREVIOUS can be dropped",
            self.resealed_secrets,
            self.resealed_sources,
            self.sources,
            self.resealed_signing_secrets,
            self.resealed_plugins,
            self.resealed_poll_tokens,
            self.key_id
        )
    }
}

/// Re-seals every source in `store` with the current key of the store's sealer. Safe to run
/// while gateways serve (each write is a compare-and-set) and to run again.
pub async fn rewrap(store: &RedisStore) -> StoreResult<RewrapReport> {
    let sealer = store
        .sealer()
        .ok_or_else(|| StoreError::Config(REWRAP_NEEDS_KEY.into()))?;
    let mut report = RewrapReport {
        key_id: sealer.key_id().to_string(),
        ..RewrapReport::default()
    };
    for id in store.source_ids().await? {
        report.resealed_poll_tokens += store.reseal_poll_state(&id).await?;
        match store.reseal_source(&id).await? {
            Some(0) => report.sources += 1,
            Some(n) => {
                report.sources += 1;
                report.resealed_sources += 1;
                report.resealed_secrets += n;
            }
            None => {}
        }
    }
    for id in store.plugin_ids().await? {
        if let Some(n @ 1..) = store.reseal_plugin(&id).await? {
            report.resealed_plugins += 1;
            report.resealed_signing_secrets += n;
        }
    }
    Ok(report)
}

/// `omnigate secrets rewrap`: connects to Redis with the `serve` settings and re-seals
/// every source. Needs the new key in OMNIGATE_SECRET_KEY and, while a rotation is under
/// way, the old ones in OMNIGATE_SECRET_KEY_PREVIOUS.
pub async fn rewrap_with_settings(settings: &Settings) -> StoreResult<RewrapReport> {
    let url = settings.redis_url.as_deref().ok_or_else(|| {
        StoreError::Config(
            "OMNIGATE_REDIS_URL (or --redis-url) is required to rewrap secrets".into(),
        )
    })?;
    if settings
        .secret_key
        .as_ref()
        .is_none_or(|k| k.expose().trim().is_empty())
    {
        return Err(StoreError::Config(REWRAP_NEEDS_KEY.into()));
    }
    let store = RedisStore::connect(url, super::redis_options(settings)?).await?;
    store.ping().await?;
    rewrap(&store).await
}

const REWRAP_NEEDS_KEY: &str = "rewrapping seals every secret with OMNIGATE_SECRET_KEY \
     (or --secret-key), which is not set: make one with `head -c 32 /dev/urandom | base64`";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredSecret;
    use chrono::{TimeZone, Utc};

    // Test keys only: base64 of 32 fixed bytes each.
    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    const NONE: [&str; 0] = [];

    fn sealer(current: &str, previous: &[&str]) -> Sealer {
        Sealer::new(current, previous).unwrap()
    }

    fn source(id: &str, secrets: &[&str]) -> SourceRecord {
        let at = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
        serde_json::from_value(serde_json::json!({
            "id": id, "tenant": "t", "provider": "shopify", "name": null, "options": {},
            "secrets": [], "created_at": at, "updated_at": at,
        }))
        .map(|mut s: SourceRecord| {
            s.secrets = secrets
                .iter()
                .map(|v| StoredSecret {
                    value: SecretValue::new(*v),
                    created_at: at,
                    expires_at: None,
                })
                .collect();
            s
        })
        .unwrap()
    }

    #[test]
    fn a_sealed_secret_round_trips_and_hides_the_secret() {
        let s = sealer(KEY_A, &[]);
        let sealed = s.seal("src_1", "shpss_0123456789abcdef").unwrap();
        assert!(sealed.starts_with(&format!("sealed:v1:{}:", s.key_id())));
        assert!(!sealed.contains("shpss_0123456789abcdef"));
        assert_eq!(s.key_id().len(), 8);
        assert_eq!(s.open("src_1", &sealed).unwrap(), "shpss_0123456789abcdef");
        // A fresh nonce each time: the same secret never seals to the same text.
        assert_ne!(s.seal("src_1", "x").unwrap(), s.seal("src_1", "x").unwrap());
        assert!(s.is_current(&sealed));
    }

    #[test]
    fn api_credentials_are_sealed_apart_from_the_secrets() {
        let s = sealer(KEY_A, &[]);
        let mut source = source("src_1", &["whsec-signing-secret"]);
        source.api_credentials = Some(SecretValue::new(r#"{"token":"api-token-1"}"#));
        let stored = s.seal_source(&source).unwrap();
        let api = stored.api_credentials.as_ref().unwrap().expose();
        assert!(api.starts_with("sealed:") && !api.contains("api-token-1"));
        assert_eq!(s.stale_in_source(&stored), 0);
        assert_eq!(s.stale_in_source(&source), 2, "both are plaintext");
        // Sealed for the API, it does not open as the source's webhook secret.
        assert!(s.open("src_1", api).is_err());
        let opened = s.open_source(stored).unwrap();
        assert_eq!(opened.api_credentials, source.api_credentials);
        assert_eq!(opened.secrets, source.secrets);
    }

    #[test]
    fn another_key_does_not_open_and_says_which_key_it_needs() {
        let sealed = sealer(KEY_A, &[]).seal("src_1", "secret").unwrap();
        let b = sealer(KEY_B, &[]);
        let err = b.open("src_1", &sealed).unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err}");
        assert!(err.to_string().contains("OMNIGATE_SECRET_KEY_PREVIOUS"));
        assert!(!b.is_current(&sealed));
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let s = sealer(KEY_A, &[]);
        let sealed = s.seal("src_1", "secret-secret").unwrap();
        let (head, blob) = sealed.rsplit_once(':').unwrap();
        let mut bytes = BASE64.decode(blob).unwrap();
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = format!("{head}:{}", BASE64.encode(&bytes));
            let err = s.open("src_1", &tampered).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            bytes[i] ^= 1;
        }
        for broken in [
            "sealed:",
            "sealed:v1:abcd",
            "sealed:v2:abcd:AAAA",
            "sealed:v1:abcd:not base64!",
            "sealed:v1:abcd:AAAA",
        ] {
            assert!(s.open("src_1", broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn a_secret_sealed_for_one_source_does_not_open_for_another() {
        let s = sealer(KEY_A, &[]);
        let sealed = s.seal("src_1", "secret").unwrap();
        let err = s.open("src_2", &sealed).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_previous_key_still_opens_but_never_seals() {
        let old = sealer(KEY_A, &[]).seal("src_1", "secret").unwrap();
        let rotating = sealer(KEY_B, &[KEY_A]);
        assert_eq!(rotating.open("src_1", &old).unwrap(), "secret");
        assert!(!rotating.is_current(&old));
        let new = rotating.seal("src_1", "secret").unwrap();
        assert!(rotating.is_current(&new));
        assert_eq!(sealer(KEY_B, &[]).open("src_1", &new).unwrap(), "secret");
        // The current key repeated among the previous ones is harmless.
        assert_eq!(sealer(KEY_B, &[KEY_B, KEY_A]).previous.len(), 1);
    }

    #[test]
    fn legacy_plaintext_passes_through() {
        let s = sealer(KEY_A, &[]);
        assert_eq!(s.open("src_1", "shpss_plain").unwrap(), "shpss_plain");
        assert!(!s.is_current("shpss_plain"));
        let plain = source("src_1", &["shpss_plain_0123456"]);
        assert_eq!(open_source(None, plain.clone()).unwrap(), plain);
        assert_eq!(open_source(Some(&s), plain.clone()).unwrap(), plain);
    }

    #[test]
    fn whole_sources_seal_and_open_and_need_the_key() {
        let s = sealer(KEY_A, &[]);
        let plain = source("src_1", &["new-secret-0123456", "old-secret-0123456"]);
        let sealed = seal_source(Some(&s), &plain).unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains("secret-0123456"), "{json}");
        assert_eq!(open_source(Some(&s), sealed.clone()).unwrap(), plain);
        assert_eq!(seal_source(None, &plain).unwrap(), plain);
        let err = open_source(None, sealed).unwrap_err();
        assert!(err.to_string().contains("OMNIGATE_SECRET_KEY"), "{err}");
    }

    #[test]
    fn bad_key_text_is_refused_naming_the_rule() {
        let short = BASE64.encode([7u8; 16]);
        let zeros = BASE64.encode([0u8; 32]);
        for bad in ["", "not base64 at all", short.as_str(), zeros.as_str()] {
            let err = Sealer::new(bad, &NONE).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, StoreError::Config(_)), "{text}");
            assert!(text.contains("32 random bytes"), "{text}");
            assert!(text.contains("OMNIGATE_SECRET_KEY"), "{text}");
        }
        let err = Sealer::new(KEY_A, &["nope"]).unwrap_err();
        assert!(err.to_string().contains("OMNIGATE_SECRET_KEY_PREVIOUS"));
        // Surrounding whitespace (a trailing newline from `base64`) is fine.
        assert!(Sealer::new(&format!("{KEY_A}\n"), &NONE).is_ok());
    }

    #[test]
    fn key_material_never_prints() {
        let s = sealer(KEY_B, &[KEY_A]);
        let shown = format!("{s:?}");
        assert!(!shown.contains(KEY_A) && !shown.contains(KEY_B), "{shown}");
        assert!(shown.contains(s.key_id()));
        assert_eq!(format!("{:?}", KeyText::from(KEY_A)), "KeyText(***)");
        let err = Sealer::new("c2hvcnQ=", &NONE).unwrap_err().to_string();
        assert!(!err.contains("c2hvcnQ="), "{err}");
    }

    #[test]
    fn redis_without_a_key_is_refused_unless_insecure_is_asked_for() {
        let redis = Settings {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            ..Settings::default()
        };
        let err = from_settings(&redis).unwrap_err().to_string();
        for needed in [
            "OMNIGATE_SECRET_KEY",
            "head -c 32 /dev/urandom | base64",
            "--insecure-plaintext-secrets",
        ] {
            assert!(err.contains(needed), "{err}");
        }
        let insecure = Settings {
            insecure_plaintext_secrets: true,
            ..redis.clone()
        };
        assert!(from_settings(&insecure).unwrap().is_none());
        let keyed = Settings {
            secret_key: Some(KEY_A.into()),
            secret_key_previous: vec![KEY_B.into()],
            ..redis.clone()
        };
        let sealer = from_settings(&keyed).unwrap().unwrap();
        assert_eq!(sealer.previous.len(), 1);
        let orphan = Settings {
            secret_key_previous: vec![KEY_B.into()],
            ..redis
        };
        assert!(from_settings(&orphan).is_err());
        assert!(from_settings(&Settings::default()).unwrap().is_none());
    }
}
