//! Plugins installed without the `customer_pii` scope see events with personal data
//! removed: e-mail, phone and names of every party, and whole addresses. Ids stay, so a
//! plugin can still count orders per customer.

use serde_json::Value;

/// Fields that are a person's contact data wherever they appear in `data`.
const CONTACT: &[&str] = &["email", "phone", "name", "first_name", "last_name"];
/// Fields that hold a whole address.
const ADDRESSES: &[&str] = &[
    "shipping_address",
    "billing_address",
    "default_address",
    "destination",
];

/// Removes personal data from an event's `data` in place.
pub fn redact(data: &mut Value) {
    match data {
        Value::Object(map) => {
            for key in ADDRESSES {
                map.remove(*key);
            }
            // Only text is contact data: `marketing_consent.email` is a flag and stays.
            map.retain(|k, v| !(CONTACT.contains(&k.as_str()) && v.is_string()));
            for v in map.values_mut() {
                redact(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validators;
    use omnigate_schemas::catalog;
    use serde_json::json;

    /// Every catalog example, redacted, holds none of the PII it had and still validates.
    #[test]
    fn every_event_type_loses_its_pii_and_stays_valid() {
        let validators = Validators::compile().unwrap();
        let mut carried = Vec::new();
        for t in catalog::EVENT_TYPES {
            let schema: Value = serde_json::from_str(t.schema.text).unwrap();
            for example in schema["examples"].as_array().unwrap() {
                let mut pii = Vec::new();
                collect(&example["data"], &mut pii);
                let mut event = example.clone();
                redact(&mut event["data"]);
                let text = event["data"].to_string();
                for value in &pii {
                    assert!(!text.contains(value.as_str()), "{}: {value} left", t.name);
                }
                if !pii.is_empty() {
                    carried.push(t.name);
                }
                validators.check_event(t.name, &event).unwrap();
            }
        }
        for t in [
            "order.created",
            "customer.created",
            "customer.updated",
            "customer.erasure_requested",
            "review.created",
            "message.received",
        ] {
            assert!(
                carried.contains(&t),
                "the {t} example carries PII to test with"
            );
        }
    }

    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let contact = CONTACT.contains(&k.as_str()) && v.is_string();
                    if contact || ADDRESSES.contains(&k.as_str()) {
                        leaves(v, out);
                    } else {
                        collect(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }

    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() > 3 => out.push(s.clone()),
            Value::Object(m) => m.values().for_each(|v| leaves(v, out)),
            _ => {}
        }
    }

    #[test]
    fn ids_and_consent_flags_stay() {
        let mut d = json!({"customer": {"customer_id": "7", "email": "a@example.com"},
                           "marketing_consent": {"email": true, "sms": false}});
        redact(&mut d);
        assert_eq!(
            d,
            json!({"customer": {"customer_id": "7"},
                   "marketing_consent": {"email": true, "sms": false}})
        );
    }
}
