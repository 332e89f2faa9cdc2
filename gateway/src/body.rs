//! JSON request bodies checked against the schema the OpenAPI document publishes for them,
//! before they are turned into Rust values. What the spec declares (patterns, lengths,
//! ranges, formats, required fields, objects not arrays) is what the gateway enforces, in
//! one place, so the two cannot drift apart; a body that breaks it is a 400 naming the
//! field (422; 400 when it is not JSON at all). Rules the schema cannot express (a secret's
//! decoded length, a tenant's installation) stay with the handlers.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// A JSON body of type `T`, valid against `T`'s schema in the OpenAPI document.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> FromRequest for Body<T>
where
    T: DeserializeOwned + utoipa::ToSchema + 'static,
{
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/json") || ct.ends_with("+json"));
        let timeout_ms = req
            .app_data::<web::Data<crate::state::AppState>>()
            .map_or(10_000, |s| s.settings.body_timeout_ms);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(Error::MalformedBody(
                    "the body must be JSON (Content-Type: application/json)".into(),
                ));
            }
            let bytes =
                match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), bytes)
                    .await
                {
                    Ok(read) => read.map_err(|e| Error::MalformedBody(e.to_string()))?,
                    Err(_) => return Err(Error::BodyTimeout { timeout_ms }),
                };
            parse::<T>(&bytes).map(Body)
        })
    }
}

/// Parses `bytes` as a `T`: JSON, valid against `T`'s published schema, then typed.
pub fn parse<T: DeserializeOwned + utoipa::ToSchema>(bytes: &[u8]) -> Result<T> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::MalformedBody(format!("not JSON: {e}")))?;
    check::<T>(&value)?;
    // JSON Schema counts 20.0 as an integer; so does the gateway.
    integral_floats(&mut value);
    serde_json::from_value(value).map_err(|e| Error::MalformedBody(e.to_string()))
}

type Validator = Arc<jsonschema::Validator>;

/// The validator of `T`'s schema, as the OpenAPI document publishes it (the schema and
/// every component it refers to come from the same `ToSchema` the document is built from),
/// compiled once per type.
fn validator<T: utoipa::ToSchema>() -> Result<Validator> {
    static COMPILED: OnceLock<Mutex<HashMap<String, Validator>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(Mutex::default);
    let name = T::name();
    if let Some(v) = compiled
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name.as_ref())
    {
        return Ok(v.clone());
    }
    let mut components = vec![(name.to_string(), T::schema())];
    T::schemas(&mut components);
    let schemas: serde_json::Map<String, Value> = components
        .into_iter()
        .map(|(n, schema)| Ok((n, serde_json::to_value(schema)?)))
        .collect::<serde_json::Result<_>>()
        .map_err(|e| Error::Internal(format!("schema of {name}: {e}")))?;
    let root = serde_json::json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": {"schemas": schemas},
    });
    let v = jsonschema::options()
        .should_validate_formats(true)
        .offline()
        .build(&root)
        .map_err(|e| Error::Internal(format!("schema of {name}: {e}")))?;
    let v = Arc::new(v);
    compiled
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_string(), v.clone());
    Ok(v)
}

fn check<T: utoipa::ToSchema>(value: &Value) -> Result<()> {
    let validator = validator::<T>()?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| {
            // The message names the rule; the offending value is left out, since it may be
            // a secret.
            let message = e.to_string();
            let shown = e.instance().to_string();
            let message = match message.strip_prefix(&shown) {
                Some(rest) if !shown.is_empty() => format!("the value{rest}"),
                _ => message,
            };
            let at = e.instance_path().to_string();
            if at.is_empty() {
                message
            } else {
                format!("{at}: {message}")
            }
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::Validation {
        detail: format!(
            "the body does not match {}: {}",
            T::name(),
            errors.join("; ")
        ),
        errors,
    })
}

/// Numbers with no fractional part become integers, as JSON Schema reads them.
fn integral_floats(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats),
        Value::Object(map) => map.values_mut().for_each(integral_floats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate_schemas::api::{CreateSource, PullRequest};

    #[test]
    fn what_the_spec_declares_is_enforced() {
        assert!(parse::<PullRequest>(br#"{"max": 10, "wait_ms": 20000.0}"#).is_ok());
        for bad in [
            r#"[null, null]"#,
            r#"{"max": 0}"#,
            r#"{"max": 101}"#,
            r#"{"wait_ms": 30001}"#,
            r#"{"max": "ten"}"#,
            r#"{"colour": "red"}"#,
        ] {
            let err = parse::<PullRequest>(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Validation { .. }), "{bad}: {err}");
        }
        assert!(matches!(
            parse::<PullRequest>(b"{"),
            Err(Error::MalformedBody(_))
        ));
        // A rule is named without repeating the value: it may be a secret.
        let err = parse::<CreateSource>(
            br#"{"tenant": "a", "provider": "shopify", "secret": "hunter2-secret"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/secret") && err.contains("16"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse::<CreateSource>(
            br#"{"tenant": "a b", "provider": "shopify", "secret": "0123456789abcdef"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/tenant"), "{err}");
        let err = parse::<CreateSource>(
            br#"{"tenant": "a", "provider": "shopify", "options": [null, null]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/options"), "{err}");
    }
}
