//! `GET /v1/providers`: what connecting a shop of each provider takes, so a console or a
//! script can ask for exactly those fields. The fields are written here beside the rules
//! `sources::create` enforces; a test creates a source of every provider from each
//! provider's required fields and their examples, and sees each required one refused when
//! left out, so the two cannot drift apart.

use actix_web::{HttpResponse, get};
use omnigate_schemas::api::{
    FieldKind, Provider, ProviderField, ProviderInfo, ProviderList, SourceMode,
};

use crate::providers::{self, Credentials};
use crate::verify::Scheme;

/// One field: `(name, kind, required, description, example)`.
type Spec = (
    &'static str,
    FieldKind,
    bool,
    &'static str,
    Option<&'static str>,
);

const HMAC_EXAMPLE: Option<&str> = Some("3f9c1d7e5a2b4c6d8e0f1a2b3c4d5e6f");

const LOCALE: Spec = (
    "options.locale",
    FieldKind::Text,
    false,
    "The shop's language (BCP 47: `uk`, `pl`, `en-US`), for shipment and return events whose order says none",
    Some("en-US"),
);

const TOLERANCE: Spec = (
    "options.tolerance_s",
    FieldKind::Integer,
    false,
    "Seconds a signed timestamp may be old (default 300, at most 86400)",
    Some("300"),
);

const API_TOKEN: Spec = (
    "credentials.token",
    FieldKind::Secret,
    false,
    "An API token to read the full resource a thin webhook names (enrichment); write-only",
    None,
);

const POLL_OPTIONS: [Spec; 4] = [
    (
        "options.poll_interval_secs",
        FieldKind::Integer,
        false,
        "Seconds between polls once caught up (default 30, 1 to 3600)",
        Some("30"),
    ),
    (
        "options.start_from",
        FieldKind::Text,
        false,
        "Read changes from this RFC 3339 time on at the first poll (default: from the source's creation)",
        Some("2026-01-01T00:00:00Z"),
    ),
    (
        "options.api_base",
        FieldKind::Url,
        false,
        "The API's base URL when not the production one (a sandbox)",
        None,
    ),
    (
        "options.token_url",
        FieldKind::Url,
        false,
        "The OAuth token endpoint when not the production one (Allegro's sandbox)",
        None,
    ),
];

const UNSIGNED: [Spec; 2] = [
    (
        "secret",
        FieldKind::Secret,
        false,
        "The secret that ends the webhook URL (made for you when left empty; shown once, in the answer)",
        None,
    ),
    (
        "options.allow_cidrs",
        FieldKind::Json,
        false,
        "Networks deliveries may come from, as a JSON array of CIDRs (any address when left out)",
        Some(r#"["195.34.21.0/24"]"#),
    ),
];

fn title(provider: Provider) -> &'static str {
    match provider {
        Provider::Shopify => "Shopify",
        Provider::Woocommerce => "WooCommerce",
        Provider::StandardWebhooks => "Standard Webhooks (Medusa and other bridges)",
        Provider::Stripe => "Stripe",
        Provider::Github => "GitHub",
        Provider::Bigcommerce => "BigCommerce",
        Provider::Etsy => "Etsy",
        Provider::Ecwid => "Ecwid",
        Provider::Saleor => "Saleor",
        Provider::Ozon => "Ozon",
        Provider::MercadoLibre => "Mercado Libre",
        Provider::Allegro => "Allegro",
        Provider::Prom => "Prom.ua",
        Provider::Rozetka => "Rozetka",
    }
}

fn verification(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Shopify => {
            "Base64 HMAC-SHA256 of the raw body in X-Shopify-Hmac-Sha256, keyed with the app's client secret"
        }
        Scheme::Woocommerce => {
            "Base64 HMAC-SHA256 of the raw body in X-WC-Webhook-Signature, keyed with the webhook's secret"
        }
        Scheme::StandardWebhooks | Scheme::StandardWebhooksRawKey => {
            "Standard Webhooks: HMAC-SHA256 of id, timestamp and body in webhook-signature; timestamps outside the window are refused"
        }
        Scheme::Stripe => {
            "Stripe-Signature: HMAC-SHA256 of the timestamp and body with the endpoint's signing secret; timestamps outside the window are refused"
        }
        Scheme::Github => "X-Hub-Signature-256: hex HMAC-SHA256 of the raw body",
        Scheme::Ecwid => "X-Ecwid-Webhook-Signature: HMAC-SHA256 of the event's time and id",
        Scheme::Saleor => {
            "Saleor-Signature: a JWS with a detached payload, by the shop's public keys (or, opted in, Saleor's deprecated hex HMAC)"
        }
        Scheme::UrlSecret => {
            "Unsigned by the provider: a secret in the webhook URL, optionally with an allow-list of sender networks"
        }
        Scheme::Polled => {
            "Polled: the gateway reads the provider's API with the shop's credentials; no webhook is accepted"
        }
    }
}

/// The fields of `provider`'s sources, required first.
fn specs(provider: Provider) -> Vec<Spec> {
    let secret =
        |description: &'static str| ("secret", FieldKind::Secret, true, description, HMAC_EXAMPLE);
    let mut fields = match provider {
        Provider::Shopify => vec![secret(
            "The app's client secret (Partner Dashboard → app → Client credentials), or the secret shown under Settings → Notifications → Webhooks",
        )],
        Provider::Woocommerce => vec![secret(
            "The secret of the webhook (WooCommerce → Settings → Advanced → Webhooks)",
        )],
        Provider::StandardWebhooks => vec![
            (
                "secret",
                FieldKind::Secret,
                true,
                "The endpoint's signing secret (`whsec_` and base64 unless options.key_encoding says raw)",
                Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ),
            (
                "options.key_encoding",
                FieldKind::Text,
                false,
                "`base64` (the specification's `whsec_` form, default) or `raw` (the secret's own bytes)",
                Some("base64"),
            ),
            TOLERANCE,
            (
                "options.api.base_url",
                FieldKind::Url,
                false,
                "Medusa bridges: the backend's URL, to read full orders (with credentials.token)",
                None,
            ),
            API_TOKEN,
        ],
        Provider::Stripe => vec![
            (
                "secret",
                FieldKind::Secret,
                true,
                "The endpoint's signing secret (Developers → Webhooks → endpoint → Signing secret)",
                Some("whsec_3f9c1d7e5a2b4c6d8e0f1a2b3c4d5e6f"),
            ),
            TOLERANCE,
        ],
        Provider::Github => vec![secret("The webhook's secret")],
        Provider::Bigcommerce => vec![
            secret("The app's client secret (BigCommerce signs with its bytes)"),
            (
                "options.api.store_hash",
                FieldKind::Text,
                false,
                "The store hash (`stores/{store_hash}` in API paths), to read full orders",
                Some("abc123xyz"),
            ),
            API_TOKEN,
        ],
        Provider::Etsy => vec![
            (
                "secret",
                FieldKind::Secret,
                true,
                "The webhook's signing secret (`whsec_` and base64)",
                Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ),
            TOLERANCE,
            (
                "options.api.shop_id",
                FieldKind::Text,
                false,
                "The shop's number, to read receipts (only this shop's)",
                Some("12345678"),
            ),
            (
                "credentials.client_id",
                FieldKind::Text,
                false,
                "The app's keystring (x-api-key), with credentials.token",
                None,
            ),
            API_TOKEN,
        ],
        Provider::Ecwid => vec![
            secret("The app's client secret"),
            (
                "options.api.store_id",
                FieldKind::Text,
                false,
                "The store's number, to read full orders (with credentials.token)",
                Some("1003"),
            ),
            API_TOKEN,
        ],
        Provider::Saleor => vec![
            // Required here, as the secure choice a form should lead to; the API also takes
            // `options.jwks`, or the deprecated HMAC.
            (
                "options.jwks_url",
                FieldKind::Url,
                true,
                "Where the shop publishes its public keys (https://<shop>/.well-known/jwks.json); the API takes options.jwks instead too",
                Some("https://shop.example.com/.well-known/jwks.json"),
            ),
            (
                "options.jwks",
                FieldKind::Json,
                false,
                "The shop's public keys as a JWKS document ({\"keys\": […]})",
                None,
            ),
            (
                "options.legacy_hmac",
                FieldKind::Boolean,
                false,
                "Accept Saleor's deprecated hex HMAC instead, with a secret: never together with public keys",
                None,
            ),
            (
                "secret",
                FieldKind::Secret,
                false,
                "Only with options.legacy_hmac: the app's secret key",
                None,
            ),
        ],
        Provider::Ozon => UNSIGNED.to_vec(),
        Provider::MercadoLibre => {
            let mut fields = UNSIGNED.to_vec();
            fields.push((
                "credentials.token",
                FieldKind::Secret,
                false,
                "An access token to read full orders; or client_id, client_secret and refresh_token to keep one fresh",
                None,
            ));
            fields
        }
        Provider::Allegro => vec![
            (
                "credentials.client_id",
                FieldKind::Text,
                true,
                "The application's client id",
                Some("0f3e6c2b7a9d4e18b5c1"),
            ),
            (
                "credentials.client_secret",
                FieldKind::Secret,
                true,
                "The application's client secret",
                Some("s3cr3t-client-value"),
            ),
            (
                "credentials.refresh_token",
                FieldKind::Secret,
                true,
                "A refresh token from the shop owner's authorization of the application",
                Some("eyJhbGciOiJSUzI1NiJ9.refresh"),
            ),
        ],
        Provider::Prom => vec![(
            "credentials.token",
            FieldKind::Secret,
            true,
            "The shop's API token (settings → API tokens, with access to orders)",
            Some("4c1f0e9d8b7a6c5d4e3f"),
        )],
        Provider::Rozetka => vec![
            (
                "credentials.username",
                FieldKind::Text,
                true,
                "The seller account's login (a manager of the shop with access to orders)",
                Some("manager@example.com"),
            ),
            (
                "credentials.password",
                FieldKind::Secret,
                true,
                "That account's password",
                Some("correct-horse-battery"),
            ),
        ],
    };
    if providers::of(provider).credentials == Credentials::Api {
        fields.extend(POLL_OPTIONS);
    }
    fields.push(LOCALE);
    fields
}

/// The catalog, in `Provider::ALL` order.
pub fn catalog() -> ProviderList {
    let providers = Provider::ALL
        .iter()
        .map(|&provider| {
            let descriptor = providers::of(provider);
            let mut topics: Vec<String> = Vec::new();
            for mapping in descriptor.mappings() {
                if !topics.iter().any(|t| t == mapping.topic) {
                    topics.push(mapping.topic.to_string());
                }
            }
            ProviderInfo {
                provider,
                title: title(provider).to_string(),
                mode: if descriptor.credentials == Credentials::Api {
                    SourceMode::Poll
                } else {
                    SourceMode::Push
                },
                verification: verification(descriptor.scheme).to_string(),
                fields: specs(provider)
                    .into_iter()
                    .map(
                        |(name, kind, required, description, example)| ProviderField {
                            name: name.to_string(),
                            kind,
                            required,
                            description: description.to_string(),
                            example: example.map(str::to_string),
                        },
                    )
                    .collect(),
                topics,
                url_secret: descriptor.scheme == Scheme::UrlSecret,
            }
        })
        .collect();
    ProviderList { providers }
}

/// List the providers a source can be connected to, with what each needs.
///
/// For each: how its deliveries are verified, whether it pushes webhooks or is polled, the
/// members of `POST /v1/sources` it takes (by dotted path, with their kind, whether they
/// are required, and an example of their form), and the topics it maps.
#[utoipa::path(
    tag = "sources",
    responses((status = 200, description = "The providers", body = ProviderList))
)]
#[get("/v1/providers")]
pub async fn list_providers() -> HttpResponse {
    HttpResponse::Ok().json(catalog())
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate_schemas::api::CreateSource;
    use serde_json::{Map, Value, json};

    /// `fields` as a `POST /v1/sources` body.
    fn body(provider: Provider, fields: &[&ProviderField]) -> CreateSource {
        let mut doc = json!({"tenant": "shop-1", "provider": provider});
        for field in fields {
            let example = field
                .example
                .as_deref()
                .expect("a required field has an example");
            let value = match field.kind {
                FieldKind::Integer | FieldKind::Boolean | FieldKind::Json => {
                    serde_json::from_str(example).expect("the example is JSON")
                }
                _ => Value::String(example.to_string()),
            };
            let mut at = &mut doc;
            let mut path = field.name.split('.').peekable();
            while let Some(part) = path.next() {
                if path.peek().is_none() {
                    at[part] = value.clone();
                } else {
                    if at.get(part).is_none() {
                        at[part] = Value::Object(Map::new());
                    }
                    at = &mut at[part];
                }
            }
        }
        serde_json::from_value(doc).expect("a CreateSource")
    }

    #[test]
    fn every_provider_connects_with_its_required_fields_and_refuses_one_missing() {
        let now = chrono::Utc::now();
        for info in catalog().providers {
            let required: Vec<&ProviderField> = info.fields.iter().filter(|f| f.required).collect();
            crate::admin::sources::create(body(info.provider, &required), now).unwrap_or_else(
                |e| {
                    panic!(
                        "{}: its required fields do not make a source: {e}",
                        info.provider
                    )
                },
            );
            for left_out in &required {
                let rest: Vec<&ProviderField> = required
                    .iter()
                    .copied()
                    .filter(|f| f.name != left_out.name)
                    .collect();
                assert!(
                    crate::admin::sources::create(body(info.provider, &rest), now).is_err(),
                    "{}: {} is said to be required but is not",
                    info.provider,
                    left_out.name
                );
            }
        }
    }

    #[test]
    fn optional_examples_are_accepted_too() {
        let now = chrono::Utc::now();
        for info in catalog().providers {
            for field in info
                .fields
                .iter()
                .filter(|f| !f.required && f.example.is_some())
            {
                let mut fields: Vec<&ProviderField> =
                    info.fields.iter().filter(|f| f.required).collect();
                fields.push(field);
                crate::admin::sources::create(body(info.provider, &fields), now)
                    .unwrap_or_else(|e| panic!("{} with {}: {e}", info.provider, field.name));
            }
        }
    }

    #[test]
    fn the_catalog_names_every_provider_once_with_its_topics() {
        let list = catalog();
        assert_eq!(list.providers.len(), Provider::ALL.len());
        let shopify = &list.providers[0];
        assert_eq!(shopify.provider, Provider::Shopify);
        assert!(shopify.topics.iter().any(|t| t == "orders/create"));
        let rozetka = list
            .providers
            .iter()
            .find(|p| p.provider == Provider::Rozetka);
        assert_eq!(rozetka.map(|p| p.mode), Some(SourceMode::Poll));
    }
}
