//! Event types a plugin publishes, declared from Rust types: the JSON Schema registered at
//! the gateway is derived from the type (with [`schemars`]), so the schema the gateway
//! checks publications against and the data the plugin serialises cannot drift apart.
//!
//! ```
//! use omnigate_sdk::PluginEvent;
//! use omnigate_sdk::api::CreatePlugin;
//! use schemars::JsonSchema;
//! use serde::Serialize;
//!
//! /// A customer's points balance changed.
//! #[derive(Serialize, JsonSchema)]
//! struct PointsChanged {
//!     customer_id: String,
//!     delta: i64,
//!     balance: i64,
//!     /// Removed for plugins installed without the `customer_pii` scope.
//!     #[schemars(extend("x-pii" = true))]
//!     email: Option<String>,
//! }
//!
//! impl PluginEvent for PointsChanged {
//!     const TYPE: &'static str = "loyalty.points.changed";
//! }
//!
//! let registration = CreatePlugin {
//!     name: "Loyalty".into(),
//!     event_types: vec!["order.paid".into()],
//!     publishes: vec![PointsChanged::declaration()],
//!     delivery: None,
//! };
//! // An `Option` is optional; everything else is required.
//! let schema = &registration.publishes[0].schema;
//! assert_eq!(schema["required"], serde_json::json!(["customer_id", "delta", "balance"]));
//!
//! let event = PointsChanged { customer_id: "c1".into(), delta: 10, balance: 110, email: None }
//!     .publication("shop-a")?
//!     .subject("customer/c1");
//! assert_eq!(event.event_type, "loyalty.points.changed");
//! assert_eq!(event.data["balance"], 110);
//! # Ok::<(), serde_json::Error>(())
//! ```

use omnigate_schemas::api::{PublishEvent, PublishedType};
use schemars::JsonSchema;
use serde::Serialize;

/// An event type the plugin publishes, as a Rust type (derive `Serialize` and
/// `schemars::JsonSchema`, then name the type).
pub trait PluginEvent: Serialize + JsonSchema {
    /// The event type, in the plugin's own namespace (`loyalty.points.changed`).
    const TYPE: &'static str;

    /// What to put in [`CreatePlugin::publishes`](crate::api::CreatePlugin::publishes)
    /// (or a `PATCH` of the registration): the type and the JSON Schema (2020-12) derived
    /// from `Self`.
    fn declaration() -> PublishedType {
        PublishedType {
            event_type: Self::TYPE.to_string(),
            schema: schemars::schema_for!(Self).to_value(),
        }
    }

    /// A publication of this event into `tenant`'s log; subject, time and idempotency key
    /// take their defaults until set ([`PublishEvent::subject`] …). Fails (a
    /// [`serde_json::Error`], which `?` turns into a [`HandlerError`](crate::HandlerError))
    /// only when `Self` cannot be serialised as JSON: a map with non-string keys.
    fn publication(&self, tenant: &str) -> Result<PublishEvent, serde_json::Error> {
        Ok(PublishEvent::new(
            tenant,
            Self::TYPE,
            serde_json::to_value(self)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declared::Declared;
    use omnigate_schemas::api::PluginView;

    #[derive(Serialize, JsonSchema)]
    struct Answered {
        score: u8,
        comment: Option<String>,
        #[serde(rename = "order")]
        order_id: String,
    }

    impl PluginEvent for Answered {
        const TYPE: &'static str = "nps.survey.answered";
    }

    fn declared() -> Declared {
        Declared::new(&PluginView {
            id: "plg_1".into(),
            name: "nps".into(),
            event_types: vec![],
            publishes: vec![Answered::declaration()],
            keys: vec![],
            created_at: "2025-03-14T09:00:00Z".into(),
            inbox: None,
            delivery: None,
        })
    }

    #[test]
    fn what_the_type_serialises_is_what_its_schema_accepts() {
        let ok = Answered {
            score: 9,
            comment: None,
            order_id: "1001".into(),
        };
        declared().check(&ok.publication("shop").unwrap()).unwrap();
        // Data from elsewhere that does not have the type's shape is refused by name.
        let mut wrong = ok.publication("shop").unwrap();
        wrong.data = serde_json::json!({"score": 11.5, "order": "1001"});
        let why = declared().check(&wrong).unwrap_err();
        assert!(why.contains("nps.survey.answered"), "{why}");
        wrong.data = serde_json::json!({"score": 9});
        assert!(declared().check(&wrong).unwrap_err().contains("order"));
    }

    #[test]
    fn the_declaration_compiles_as_the_gateway_compiles_it() {
        let d = Answered::declaration();
        assert_eq!(d.event_type, "nps.survey.answered");
        jsonschema::options()
            .should_validate_formats(true)
            .offline()
            .build(&d.schema)
            .expect("a schema the gateway accepts");
        assert_eq!(d.schema["properties"]["score"]["maximum"], 255);
    }
}
