//! Registering plugins, their keys and their installations: plain functions the admin
//! handlers call.

use chrono::{DateTime, Duration, Utc};
use omnigate_schemas::api::{
    CreateInstallation, CreatePlugin, Delivery, DeliveryMode, DeliveryView, InstallationView,
    KeyInfo, PluginView, PublishedType, RotateKey, UpdatePlugin,
};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::normalize::time;
use crate::push::target;
use crate::store::{
    InstallationRecord, PluginRecord, PushRecord, SecretValue, SigningSecret, StoredKey,
};

/// How long the previous keys stay valid after a rotation, unless told otherwise.
pub const DEFAULT_KEY_GRACE: Duration = Duration::hours(24);

fn random(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The stored form of an API key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key (`ogk_` + 32 base62 characters, 190 bits) and its stored form.
pub fn new_key(now: DateTime<Utc>) -> (String, StoredKey) {
    let key = format!("ogk_{}", random(32));
    let stored = StoredKey {
        id: format!("key_{}", random(12).to_ascii_lowercase()),
        hash: hash_key(&key),
        created_at: now,
        expires_at: None,
    };
    (key, stored)
}

fn check_type_name(t: &str, what: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 100
        && t.split('.').count() >= 2
        && t.split('.').enumerate().all(|(i, part)| {
            (part == "*" && i > 0)
                || (!part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "{what} {t:?} must be dotted lower-case words (`order.paid`, `order.*`)"
        )))
    }
}

/// Families of the canonical catalog: facts only shops' signed webhooks establish. A plugin
/// publishing `order.refund_approved` would be trusted by every plugin that reads orders.
pub const RESERVED_FAMILIES: &[&str] = &[
    "order", "shipment", "refund", "return", "customer", "stock", "review", "message", "dispute",
];

/// The namespace of an event type: its first segment (`loyalty` of `loyalty.points.changed`).
pub fn namespace(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}

/// The namespaces a plugin publishes in, each once.
pub fn namespaces(plugin: &PluginRecord) -> Vec<String> {
    let mut out: Vec<String> = plugin
        .publishes
        .iter()
        .map(|p| namespace(&p.event_type).to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::validation("name must be 1-200 characters"));
    }
    Ok(name.to_string())
}

fn check_publishes(publishes: &[PublishedType]) -> Result<()> {
    for p in publishes {
        check_type_name(&p.event_type, "published type")?;
        if p.event_type.contains('*') {
            return Err(Error::validation("a published type is exact, not a family"));
        }
        let family = namespace(&p.event_type);
        if RESERVED_FAMILIES.contains(&family)
            || omnigate_schemas::catalog::event_type(&p.event_type).is_some()
        {
            return Err(Error::validation(format!(
                "{} is in the canonical family {family:?}, which only shops' webhooks write; \
                 plugins publish their own namespace (`loyalty.points.changed`)",
                p.event_type
            )));
        }
        jsonschema::options()
            .should_validate_formats(true)
            .offline()
            .build(&p.schema)
            .map_err(|e| Error::validation(format!("schema of {}: {e}", p.event_type)))?;
    }
    let mut types: Vec<&str> = publishes.iter().map(|p| p.event_type.as_str()).collect();
    types.sort_unstable();
    if let Some(twice) = types.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::validation(format!(
            "{} is declared twice in publishes",
            twice[0]
        )));
    }
    Ok(())
}

/// Event types plugins declared, by namespace: what a subscription may name besides the
/// catalog.
pub type Declared = HashMap<String, Vec<String>>;

/// The namespaces `event_types` name outside the catalog's families: those whose declared
/// types [`check_subscriptions`] needs.
pub fn foreign_namespaces(event_types: &[String]) -> Vec<String> {
    let mut out: Vec<String> = event_types
        .iter()
        .map(|t| namespace(t))
        .filter(|ns| !RESERVED_FAMILIES.contains(ns))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every subscription must be able to match something: a catalog type or family, or a type
/// (or family) some plugin declares it publishes. A typo is refused, naming the closest
/// known type, instead of silently matching nothing.
pub fn check_subscriptions(event_types: &[String], declared: &Declared) -> Result<()> {
    let catalog = omnigate_schemas::catalog::EVENT_TYPES
        .iter()
        .map(|t| t.name);
    let known: Vec<&str> = catalog
        .chain(declared.values().flatten().map(String::as_str))
        .collect();
    for t in event_types {
        check_type_name(t, "event type")?;
        let matches = match t.strip_suffix(".*") {
            Some(family) if !family.contains('*') => known
                .iter()
                .any(|k| k.strip_prefix(family).is_some_and(|r| r.starts_with('.'))),
            Some(_) => false,
            None if t.contains('*') => {
                return Err(Error::validation(format!(
                    "event type {t:?}: a family ends in `.*` (`order.*`) and has no other `*`"
                )));
            }
            None => known.contains(&t.as_str()),
        };
        if matches {
            continue;
        }
        let ns = namespace(t);
        let why = if RESERVED_FAMILIES.contains(&ns) {
            "is not in the catalog (GET /v1/event-types)".to_string()
        } else if declared.contains_key(ns) {
            format!("is not among the types declared in the namespace {ns:?}")
        } else {
            format!(
                "names the namespace {ns:?}, in which no plugin declares it publishes; \
                 register the publishing plugin first"
            )
        };
        let hint = closest(t, &known)
            .map(|k| format!("; did you mean {k:?}?"))
            .unwrap_or_default();
        return Err(Error::validation(format!("event type {t:?} {why}{hint}")));
    }
    Ok(())
}

/// The known type (or family, for a family) nearest to a typo, when one is near enough to
/// be what was meant.
fn closest(t: &str, known: &[&str]) -> Option<String> {
    let candidates: Vec<String> = if t.ends_with(".*") {
        known
            .iter()
            .filter_map(|k| k.rsplit_once('.').map(|(family, _)| format!("{family}.*")))
            .collect()
    } else {
        known.iter().map(|k| k.to_string()).collect()
    };
    candidates
        .into_iter()
        .map(|k| (strsim::jaro_winkler(t, &k), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Pushes in flight at once per process, unless the plugin says otherwise.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 10;
/// The most a plugin may ask for.
pub const MAX_IN_FLIGHT: u32 = 100;

/// A new signing secret (`whsec_` + base64 of 32 random bytes, as Standard Webhooks
/// writes them) and its stored form.
pub fn new_signing_secret(now: DateTime<Utc>) -> (SigningSecret, String) {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::rng().random();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    let stored = SigningSecret {
        id: format!("whs_{}", random(12).to_ascii_lowercase()),
        value: SecretValue::new(secret.clone()),
        created_at: now,
        expires_at: None,
    };
    (stored, secret)
}

/// A push URL as registered: its form checked, and for an IP literal its address; a host
/// name is checked again on every connection.
pub fn check_push_url(url: &str, allow_private: bool) -> Result<String> {
    target::check_url(url, allow_private)
        .map(|u| u.to_string())
        .map_err(|e| {
            Error::validation(format!(
                "{e}; pushes go only to https URLs of public hosts \
                 (OMNIGATE_PUSH_ALLOW_PRIVATE=true lifts this for local development)"
            ))
        })
}

/// The push setup a `delivery` asks for, from what the plugin has (`current`): the
/// signing secrets stay when it was push already; a new one is made (and returned, to
/// show once) when it becomes push.
fn push_setup(
    delivery: Delivery,
    current: Option<&PushRecord>,
    allow_private: bool,
    now: DateTime<Utc>,
) -> Result<(Option<PushRecord>, Option<String>)> {
    match delivery.mode {
        DeliveryMode::Pull => {
            if delivery.url.is_some() || delivery.max_in_flight.is_some() {
                return Err(Error::validation(
                    "url and max_in_flight are for delivery mode push",
                ));
            }
            Ok((None, None))
        }
        DeliveryMode::Push => {
            let url = delivery
                .url
                .as_deref()
                .ok_or_else(|| Error::validation("delivery mode push needs a url"))?;
            let url = check_push_url(url, allow_private)?;
            let max_in_flight = delivery.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
            if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
                return Err(Error::validation(format!(
                    "max_in_flight must be between 1 and {MAX_IN_FLIGHT}"
                )));
            }
            Ok(match current {
                Some(p) => (
                    Some(PushRecord {
                        url,
                        max_in_flight,
                        ..p.clone()
                    }),
                    None,
                ),
                None => {
                    let (stored, secret) = new_signing_secret(now);
                    let push = PushRecord {
                        url,
                        max_in_flight,
                        secrets: vec![stored],
                        paused_at: None,
                    };
                    (Some(push), Some(secret))
                }
            })
        }
    }
}

/// A plugin from an admin request, with its first key and, for a push plugin, its signing
/// secret (each returned once). Its subscriptions are checked by the caller
/// ([`check_subscriptions`]), which knows what others declared.
pub fn create(
    req: CreatePlugin,
    allow_private: bool,
    now: DateTime<Utc>,
) -> Result<(PluginRecord, String, Option<String>)> {
    let name = check_name(&req.name)?;
    for t in &req.event_types {
        check_type_name(t, "event type")?;
    }
    check_publishes(&req.publishes)?;
    let (push, secret) = match req.delivery {
        Some(d) => push_setup(d, None, allow_private, now)?,
        None => (None, None),
    };
    let (key, stored) = new_key(now);
    let plugin = PluginRecord {
        id: format!("plg_{}", random(14).to_ascii_lowercase()),
        name,
        event_types: req.event_types,
        publishes: req.publishes,
        keys: vec![stored],
        created_at: now,
        push,
    };
    Ok((plugin, key, secret))
}

/// Applies a `PATCH`: each field given replaces the plugin's. Returns the signing secret
/// it made, when it switched the plugin to push.
pub fn update(
    plugin: &mut PluginRecord,
    req: UpdatePlugin,
    allow_private: bool,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let mut secret = None;
    if let Some(delivery) = req.delivery {
        let (push, made) = push_setup(delivery, plugin.push.as_ref(), allow_private, now)?;
        plugin.push = push;
        secret = made;
    }
    if let Some(name) = req.name {
        plugin.name = check_name(&name)?;
    }
    if let Some(publishes) = req.publishes {
        check_publishes(&publishes)?;
        plugin.publishes = publishes;
    }
    if let Some(event_types) = req.event_types {
        for t in &event_types {
            check_type_name(t, "event type")?;
        }
        plugin.event_types = event_types;
    }
    Ok(secret)
}

fn push_of(plugin: &mut PluginRecord) -> Result<&mut PushRecord> {
    let id = plugin.id.clone();
    plugin.push.as_mut().ok_or_else(|| {
        Error::Conflict(format!(
            "plugin {id:?} pulls its events: only push plugins have signing secrets and \
             delivery to pause"
        ))
    })
}

/// Adds a signing secret to a push plugin. The others keep signing (each push carries a
/// signature by each) until `previous_expires_at` (default now + 24 h), or stop at once
/// with `revoke_previous`; expired ones are dropped.
pub fn rotate_signing_secret(
    plugin: &mut PluginRecord,
    req: RotateKey,
    now: DateTime<Utc>,
) -> Result<(SigningSecret, String)> {
    let until = grace_until(&req, now)?;
    let push = push_of(plugin)?;
    for s in &mut push.secrets {
        if s.expires_at.is_none_or(|at| at > until) {
            s.expires_at = Some(until);
        }
    }
    push.secrets
        .retain(|s| s.expires_at.is_none_or(|at| at > now));
    let (stored, secret) = new_signing_secret(now);
    push.secrets.insert(0, stored.clone());
    Ok((stored, secret))
}

/// Pauses (`Some(now)`) or resumes (`None`) a push plugin's delivery.
pub fn set_paused(plugin: &mut PluginRecord, paused_at: Option<DateTime<Utc>>) -> Result<()> {
    push_of(plugin)?.paused_at = paused_at;
    Ok(())
}

/// When the previous keys or secrets stop, as a rotation request says.
fn grace_until(req: &RotateKey, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    Ok(
        match (req.revoke_previous, req.previous_expires_at.as_deref()) {
            (true, Some(_)) => {
                return Err(Error::validation(
                    "give revoke_previous or previous_expires_at, not both",
                ));
            }
            (true, None) => now,
            (false, Some(t)) => time::rfc3339(t)
                .ok_or_else(|| Error::validation("previous_expires_at must be an RFC 3339 time"))?,
            (false, None) => now + DEFAULT_KEY_GRACE,
        },
    )
}

/// Adds a key. The others expire at `previous_expires_at` (default now + 24 h), or at once
/// with `revoke_previous`. Returns the new key and the hashes no longer valid at all.
pub fn rotate(
    plugin: &mut PluginRecord,
    req: RotateKey,
    now: DateTime<Utc>,
) -> Result<(StoredKey, String)> {
    let until = grace_until(&req, now)?;
    for k in &mut plugin.keys {
        if k.expires_at.is_none_or(|at| at > until) {
            k.expires_at = Some(until);
        }
    }
    let (key, stored) = new_key(now);
    plugin.keys.insert(0, stored.clone());
    Ok((stored, key))
}

/// Removes keys that expired; their hashes should leave the index.
pub fn prune_keys(plugin: &mut PluginRecord, now: DateTime<Utc>) -> Vec<String> {
    let (keep, gone): (Vec<_>, Vec<_>) = plugin
        .keys
        .drain(..)
        .partition(|k| k.expires_at.is_none_or(|at| at > now));
    plugin.keys = keep;
    gone.into_iter().map(|k| k.hash).collect()
}

/// Revokes one key at once; its hash, or `None` if the plugin has no such key.
pub fn revoke(plugin: &mut PluginRecord, key_id: &str) -> Option<String> {
    let i = plugin.keys.iter().position(|k| k.id == key_id)?;
    Some(plugin.keys.remove(i).hash)
}

pub fn view(plugin: &PluginRecord, now: DateTime<Utc>) -> PluginView {
    PluginView {
        id: plugin.id.clone(),
        name: plugin.name.clone(),
        event_types: plugin.event_types.clone(),
        publishes: plugin.publishes.clone(),
        keys: plugin
            .keys
            .iter()
            .filter(|k| k.expires_at.is_none_or(|at| at > now))
            .map(|k| KeyInfo {
                id: k.id.clone(),
                created_at: time::format(k.created_at),
                expires_at: k.expires_at.map(time::format),
            })
            .collect(),
        created_at: time::format(plugin.created_at),
        inbox: None,
        delivery: plugin.push.as_ref().map(|p| DeliveryView {
            mode: DeliveryMode::Push,
            url: Some(p.url.clone()),
            max_in_flight: Some(p.max_in_flight),
            paused_at: p.paused_at.map(time::format),
            signing_secrets: p
                .signing_secrets(now)
                .into_iter()
                .map(|s| KeyInfo {
                    id: s.id.clone(),
                    created_at: time::format(s.created_at),
                    expires_at: s.expires_at.map(time::format),
                })
                .collect(),
            endpoints: Vec::new(),
        }),
    }
}

/// Whether `plugin` subscribed to `event_type` (exactly or through `family.*`).
pub fn subscribed(plugin: &PluginRecord, event_type: &str) -> bool {
    plugin
        .event_types
        .iter()
        .any(|t| match t.strip_suffix(".*") {
            Some(family) => event_type
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('.')),
            None => t == event_type,
        })
}

pub fn installation(
    plugin: &PluginRecord,
    req: CreateInstallation,
    allow_private: bool,
    now: DateTime<Utc>,
) -> Result<InstallationRecord> {
    let tenant = crate::ids::Tenant::parse(req.tenant)?;
    let mut scopes = req.scopes;
    scopes.sort();
    scopes.dedup();
    let push_url = match req.push_url {
        Some(_) if plugin.push.is_none() => {
            return Err(Error::Conflict(format!(
                "push_url is for push plugins; plugin {:?} pulls its events",
                plugin.id
            )));
        }
        Some(url) => Some(check_push_url(&url, allow_private)?),
        None => None,
    };
    Ok(InstallationRecord {
        plugin_id: plugin.id.clone(),
        tenant: tenant.into_inner(),
        scopes,
        installed_at: now,
        push_url,
    })
}

pub fn installation_view(i: &InstallationRecord) -> InstallationView {
    InstallationView {
        plugin_id: i.plugin_id.clone(),
        tenant: i.tenant.clone(),
        scopes: i.scopes.clone(),
        installed_at: time::format(i.installed_at),
        push_url: i.push_url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use omnigate_schemas::api::PublishedType;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap()
    }

    fn req(types: &[&str]) -> CreatePlugin {
        CreatePlugin {
            name: "Loyalty".into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            publishes: vec![PublishedType {
                event_type: "loyalty.points.changed".into(),
                schema: json!({"type": "object", "required": ["balance"]}),
            }],
            delivery: None,
        }
    }

    #[test]
    fn keys_are_shown_once_and_stored_hashed() {
        let (plugin, key, _) = create(req(&["order.paid"]), false, t0()).unwrap();
        assert!(key.starts_with("ogk_") && key.len() == 36);
        assert_eq!(plugin.keys[0].hash, hash_key(&key));
        let text = format!(
            "{plugin:?}{}",
            serde_json::to_string(&view(&plugin, t0())).unwrap()
        );
        assert!(!text.contains(&key[4..]), "the key itself is nowhere");
    }

    #[test]
    fn subscriptions_match_exact_types_and_families() {
        let (plugin, _, _) = create(req(&["order.*", "refund.created"]), false, t0()).unwrap();
        assert!(subscribed(&plugin, "order.paid"));
        assert!(subscribed(&plugin, "order.created"));
        assert!(subscribed(&plugin, "refund.created"));
        assert!(!subscribed(&plugin, "orders.paid"));
        assert!(!subscribed(&plugin, "shipment.created"));
        assert!(!subscribed(&plugin, "order"));
    }

    #[test]
    fn bad_plugins_are_refused() {
        assert!(create(req(&["Order.Paid"]), false, t0()).is_err());
        assert!(create(req(&["*"]), false, t0()).is_err());
        let mut canonical = req(&["order.paid"]);
        canonical.publishes[0].event_type = "order.paid".into();
        assert!(
            create(canonical, false, t0()).is_err(),
            "cannot publish canonical types"
        );
        let mut bad_schema = req(&["order.paid"]);
        bad_schema.publishes[0].schema = json!({"type": 12});
        assert!(create(bad_schema, false, t0()).is_err());
    }

    fn subscribe(types: &[&str], declared: &[(&str, &[&str])]) -> Result<()> {
        let types: Vec<String> = types.iter().map(|s| s.to_string()).collect();
        let declared: Declared = declared
            .iter()
            .map(|(ns, ts)| (ns.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect();
        check_subscriptions(&types, &declared)
    }

    fn refusal(types: &[&str], declared: &[(&str, &[&str])]) -> String {
        match subscribe(types, declared) {
            Err(Error::Validation { detail, .. }) => detail,
            other => panic!("{types:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn subscriptions_name_catalog_types_or_declared_ones() {
        let loyalty: (&str, &[&str]) = ("loyalty", &["loyalty.points.changed"]);
        subscribe(&["order.paid", "order.*", "refund.created"], &[]).unwrap();
        subscribe(&["loyalty.points.changed", "loyalty.*"], &[loyalty]).unwrap();
        subscribe(&["loyalty.points.*"], &[loyalty]).unwrap();
        assert!(
            refusal(&["order.payed"], &[]).contains("did you mean \"order.paid\""),
            "a typo names the type meant"
        );
        assert!(refusal(&["ordr.*"], &[]).contains("did you mean \"order.*\""));
        assert!(refusal(&["loyalty.points.chnged"], &[loyalty]).contains("loyalty.points.changed"));
        assert!(refusal(&["returns.approved"], &[]).contains("register the publishing plugin"));
        assert!(refusal(&["loyalty.tiers.*"], &[loyalty]).contains("not among the types"));
        assert!(refusal(&["order.*.paid"], &[]).contains("a family ends in"));
    }

    #[test]
    fn an_update_replaces_only_what_it_names() {
        let (mut plugin, _, _) = create(req(&["order.paid"]), false, t0()).unwrap();
        let publishes = plugin.publishes.clone();
        update(
            &mut plugin,
            UpdatePlugin {
                event_types: Some(vec!["order.*".into()]),
                ..UpdatePlugin::default()
            },
            false,
            t0(),
        )
        .unwrap();
        assert_eq!(plugin.event_types, ["order.*"]);
        assert_eq!(plugin.publishes, publishes);
        assert_eq!(plugin.name, "Loyalty");
        let twice = UpdatePlugin {
            publishes: Some(vec![publishes[0].clone(), publishes[0].clone()]),
            ..UpdatePlugin::default()
        };
        assert!(update(&mut plugin, twice, false, t0()).is_err());
        let blank = UpdatePlugin {
            name: Some("  ".into()),
            ..UpdatePlugin::default()
        };
        assert!(update(&mut plugin, blank, false, t0()).is_err());
    }

    fn push(url: &str) -> Delivery {
        Delivery {
            mode: DeliveryMode::Push,
            url: Some(url.into()),
            max_in_flight: None,
        }
    }

    #[test]
    fn a_push_plugin_gets_a_signing_secret_once_and_keeps_it_across_changes() {
        let mut r = req(&["order.paid"]);
        r.delivery = Some(push("https://loyalty.example.com/hooks"));
        let (mut plugin, _, secret) = create(r, false, t0()).unwrap();
        let secret = secret.expect("a push plugin gets a secret");
        assert!(secret.starts_with("whsec_"));
        let push_rec = plugin.push.clone().unwrap();
        assert_eq!(push_rec.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(push_rec.secrets[0].value.expose(), secret);
        let shown = format!(
            "{plugin:?}{}",
            serde_json::to_string(&view(&plugin, t0())).unwrap()
        );
        assert!(
            !shown.contains(&secret[6..]),
            "the secret is shown only once"
        );

        // A new URL keeps the secret; back to pull drops it; push again makes a new one.
        let moved = UpdatePlugin {
            delivery: Some(push("https://crm.example.com/in")),
            ..UpdatePlugin::default()
        };
        assert_eq!(update(&mut plugin, moved, false, t0()).unwrap(), None);
        assert_eq!(plugin.push.as_ref().unwrap().secrets, push_rec.secrets);
        let pull = UpdatePlugin {
            delivery: Some(Delivery {
                mode: DeliveryMode::Pull,
                url: None,
                max_in_flight: None,
            }),
            ..UpdatePlugin::default()
        };
        update(&mut plugin, pull, false, t0()).unwrap();
        assert!(plugin.push.is_none());
        let again = UpdatePlugin {
            delivery: Some(push("https://crm.example.com/in")),
            ..UpdatePlugin::default()
        };
        let fresh = update(&mut plugin, again, false, t0()).unwrap().unwrap();
        assert_ne!(fresh, secret);
    }

    #[test]
    fn push_urls_must_be_https_and_public_unless_private_is_allowed() {
        for url in [
            "http://loyalty.example.com/hooks",
            "https://127.0.0.1/hooks",
            "https://[::1]/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://user:pw@loyalty.example.com/",
            "ftp://loyalty.example.com/",
        ] {
            let mut r = req(&["order.paid"]);
            r.delivery = Some(push(url));
            let err = create(r, false, t0()).unwrap_err();
            assert!(matches!(err, Error::Validation { .. }), "{url}: {err:?}");
        }
        let mut local = req(&["order.paid"]);
        local.delivery = Some(push("http://127.0.0.1:3000/webhooks"));
        assert!(create(local, true, t0()).is_ok(), "allowed for development");
        let mut no_url = req(&["order.paid"]);
        no_url.delivery = Some(Delivery {
            mode: DeliveryMode::Push,
            url: None,
            max_in_flight: Some(5),
        });
        assert!(create(no_url, false, t0()).is_err());
        let mut too_many = req(&["order.paid"]);
        too_many.delivery = Some(Delivery {
            max_in_flight: Some(MAX_IN_FLIGHT + 1),
            ..push("https://loyalty.example.com/hooks")
        });
        assert!(create(too_many, false, t0()).is_err());
    }

    #[test]
    fn signing_secrets_rotate_with_a_grace_period() {
        let mut r = req(&["order.paid"]);
        r.delivery = Some(push("https://loyalty.example.com/hooks"));
        let (mut plugin, _, first) = create(r, false, t0()).unwrap();
        let (_, second) = rotate_signing_secret(&mut plugin, RotateKey::default(), t0()).unwrap();
        let signing = |p: &PluginRecord, at| -> Vec<String> {
            p.push
                .as_ref()
                .unwrap()
                .signing_secrets(at)
                .iter()
                .map(|s| s.value.expose().to_string())
                .collect()
        };
        assert_eq!(signing(&plugin, t0()), [second.clone(), first.unwrap()]);
        assert_eq!(signing(&plugin, t0() + DEFAULT_KEY_GRACE), [second]);
        let revoke = RotateKey {
            revoke_previous: true,
            previous_expires_at: None,
        };
        let (_, third) = rotate_signing_secret(&mut plugin, revoke, t0()).unwrap();
        assert_eq!(signing(&plugin, t0()), [third]);
        assert_eq!(
            plugin.push.as_ref().unwrap().secrets.len(),
            1,
            "expired ones dropped"
        );

        let (mut pulling, _, _) = create(req(&["order.paid"]), false, t0()).unwrap();
        assert!(rotate_signing_secret(&mut pulling, RotateKey::default(), t0()).is_err());
        assert!(set_paused(&mut pulling, Some(t0())).is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_for_a_grace_period_or_revokes_them() {
        let (mut plugin, _, _) = create(req(&["order.paid"]), false, t0()).unwrap();
        let (new, _) = rotate(&mut plugin, RotateKey::default(), t0()).unwrap();
        assert_eq!(plugin.keys.len(), 2);
        assert_eq!(plugin.keys[0].id, new.id);
        assert_eq!(plugin.keys[1].expires_at, Some(t0() + DEFAULT_KEY_GRACE));
        assert!(prune_keys(&mut plugin, t0()).is_empty());
        let gone = prune_keys(&mut plugin, t0() + DEFAULT_KEY_GRACE);
        assert_eq!(gone.len(), 1);
        let revoke_all = RotateKey {
            revoke_previous: true,
            previous_expires_at: None,
        };
        rotate(&mut plugin, revoke_all, t0()).unwrap();
        assert_eq!(prune_keys(&mut plugin, t0()).len(), 1);
        assert_eq!(plugin.keys.len(), 1);
    }
}
