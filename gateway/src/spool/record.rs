//! One spooled delivery as bytes: a small JSON header (who sent it, when, the headers the
//! pipeline reads) followed by the body exactly as it was signed.

use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::SpoolError;

/// A verified delivery the store could not take in time, kept until it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledDelivery {
    pub source_id: String,
    pub tenant: String,
    pub provider: Provider,
    /// When the gateway received it: the drain runs the pipeline as of this time.
    pub received_at: DateTime<Utc>,
    /// The request headers, credentials (`Authorization`, cookies) left out.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Bumped when the layout changes; a record of an unknown version is never guessed at.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    v: u32,
    source_id: String,
    tenant: String,
    provider: Provider,
    received_at: DateTime<Utc>,
    headers: BTreeMap<String, String>,
}

impl SpooledDelivery {
    /// `header length (u32 LE) | header JSON | body`.
    pub fn encode(&self) -> Vec<u8> {
        let header = Header {
            v: VERSION,
            source_id: self.source_id.clone(),
            tenant: self.tenant.clone(),
            provider: self.provider,
            received_at: self.received_at,
            headers: self.headers.clone(),
        };
        // A struct of strings and a map of strings always serializes.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + json.len() + self.body.len());
        out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<SpooledDelivery, SpoolError> {
        let bad = |why: String| SpoolError::Corrupt(format!("spooled record: {why}"));
        let (len, rest) = payload
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("shorter than its header".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad("header longer than the record".into()));
        }
        let (json, body) = rest.split_at(len);
        let header: Header = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        if header.v != VERSION {
            return Err(bad(format!(
                "layout version {} (this gateway reads {VERSION})",
                header.v
            )));
        }
        Ok(SpooledDelivery {
            source_id: header.source_id,
            tenant: header.tenant,
            provider: header.provider,
            received_at: header.received_at,
            headers: header.headers,
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: &[u8]) -> SpooledDelivery {
        SpooledDelivery {
            source_id: "src_0123456789abcdef".into(),
            tenant: "acme".into(),
            provider: Provider::Shopify,
            received_at: DateTime::from_timestamp(1_764_000_000, 123_000_000).unwrap(),
            headers: [("x-shopify-topic".to_string(), "orders/create".to_string())].into(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn a_delivery_reads_back_byte_exact() {
        let d = delivery(b"{\"id\": 1,  \"note\": \"\\u00e9\"}\n");
        assert_eq!(SpooledDelivery::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn damaged_or_foreign_records_are_errors_not_guesses() {
        let d = delivery(b"{}");
        let bytes = d.encode();
        assert!(SpooledDelivery::decode(&bytes[..2]).is_err());
        assert!(SpooledDelivery::decode(&bytes[..10]).is_err());
        let mut future = bytes.clone();
        let at = future.windows(5).position(|w| w == b"\"v\":1").unwrap();
        future[at + 4] = b'9';
        let err = SpooledDelivery::decode(&future).unwrap_err();
        assert!(err.to_string().contains("layout version 9"), "{err}");
    }
}
