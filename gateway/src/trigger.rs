//! `omnigate trigger`: sends a bundled sample (or a file) to a gateway, signed exactly as the
//! provider would, like `stripe trigger`.

use omnigate_schemas::api::{KeyEncoding, Provider};
use serde_json::Value;

use crate::config::TriggerArgs;
use crate::error::{Error, Result};
use crate::samples::{SAMPLES, find};
use crate::sign::{ProviderWebhook, sign};

/// The `--list` text: every bundled sample with the events it becomes.
pub fn list() -> String {
    let mut out = String::from(
        "provider            sample                                 topic                          events\n",
    );
    for s in SAMPLES {
        out.push_str(&format!(
            "{:<19} {:<38} {:<30} {}\n",
            s.provider.as_str(),
            s.name.trim_end_matches(".json"),
            s.topic,
            s.events.join(", ")
        ));
    }
    out
}

/// The provider, the topic and the body a trigger sends: the bundled sample (times moved to
/// now) or the file, with `--set` applied.
pub fn body(args: &TriggerArgs) -> Result<(Provider, String, Vec<u8>)> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .ok_or_else(|| Error::Config(format!("{what} is required")))
    };
    let provider: Provider =
        serde_json::from_value(Value::String(need(&args.provider, "provider")?)).map_err(|_| {
            Error::Config("unknown provider (try `omnigate trigger --list`)".into())
        })?;
    let name = need(&args.topic, "topic")?;
    let (topic, body) = match &args.file {
        Some(path) => (
            name.clone(),
            std::fs::read(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?,
        ),
        None => {
            let s = find(provider, &name).ok_or_else(|| {
                Error::Config(format!(
                    "no bundled {provider} sample {name:?} (try `omnigate trigger --list`)"
                ))
            })?;
            // Fresh times, as the shop would send it now: a gateway refuses signed bodies
            // older than its replay window.
            (s.topic.to_string(), crate::samples::fresh_now(s))
        }
    };
    if args.set.is_empty() {
        return Ok((provider, topic, body));
    }
    let mut json: Value = serde_json::from_slice(&body)
        .map_err(|_| Error::Config("--set needs a JSON body".into()))?;
    for assignment in &args.set {
        set(&mut json, assignment)?;
    }
    let body = serde_json::to_vec(&json).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((provider, topic, body))
}

/// Applies one `path=value` to `json` (a dotted path; the value as JSON, else as a string).
pub fn set(json: &mut Value, assignment: &str) -> Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--set {assignment:?}: expected PATH=VALUE")))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut at = json;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else {
            return Err(Error::Config(format!(
                "--set {path}: {part:?} is not inside an object"
            )));
        };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        at = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Err(Error::Config("--set needs a path".into()))
}

/// The `--show` text: the body that would be sent, pretty-printed when it is JSON.
pub fn show(args: &TriggerArgs) -> Result<String> {
    let (_, topic, body) = body(args)?;
    let text = match serde_json::from_slice::<Value>(&body) {
        Ok(json) => {
            serde_json::to_string_pretty(&json).map_err(|e| Error::Internal(e.to_string()))?
        }
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    Ok(format!("# topic: {topic}\n{text}\n"))
}

/// Signs and sends; returns the HTTP status and the answer's text.
pub async fn run(args: &TriggerArgs) -> Result<(u16, String)> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .ok_or_else(|| Error::Config(format!("{what} is required")))
    };
    let (provider, topic, body) = body(args)?;
    let now = chrono::Utc::now().timestamp();
    let delivery_id = format!("trigger-{}", uuid::Uuid::new_v4().simple());
    let secret = need(&args.secret, "--secret")?;
    let headers = sign(&ProviderWebhook {
        provider,
        secret: &secret,
        key_encoding: KeyEncoding::Base64,
        topic: &topic,
        body: &body,
        now,
        delivery_id: &delivery_id,
    })?;
    let url = format!(
        "{}{}",
        args.url.trim_end_matches('/'),
        crate::sign::webhook_path(provider, &need(&args.source, "--source")?, &secret)
    );
    let mut req = reqwest::Client::new().post(&url).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req
        .send()
        .await
        .map_err(|e| Error::Config(format!("cannot reach {url}: {e}")))?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    Ok((status, text))
}
