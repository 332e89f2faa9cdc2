//! Topic against body. Shopify, WooCommerce and Saleor name the topic in an unsigned header,
//! so a captured body can be re-sent under any topic. Two things are checked on the signed
//! body: that it is the kind of resource the topic is about (an order for `orders/*`, a
//! fulfilment for `fulfillments/*`, a customer for `customers/*`: by Shopify's signed
//! `admin_graphql_api_id`, else by fields only that kind has), and that a topic stating a
//! fact (paid, cancelled, fulfilled, deleted, a return's new status) shows it. Otherwise
//! the delivery is refused with a reason that names the field, and quarantined once per
//! body.

use crate::json::Json;

use super::Rejection;

fn text<'a>(body: &'a Json<'_>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Json::as_str)
}

fn refuse(topic: &str, field: &str, expected: &str, got: Option<&str>) -> Rejection {
    Rejection::new(format!(
        "topic {topic:?} does not match the signed body: {field} is {}, expected {expected}",
        got.map_or("absent".to_string(), |g| format!("{g:?}"))
    ))
}

fn expect_one_of(
    topic: &str,
    body: &Json<'_>,
    field: &str,
    allowed: &[&str],
) -> Result<(), Rejection> {
    let got = text(body, field);
    if got.is_some_and(|g| allowed.contains(&g)) {
        Ok(())
    } else {
        Err(refuse(topic, field, &allowed.join(" or "), got))
    }
}

/// The resource kinds of Shopify topics, as `admin_graphql_api_id` names them, and a
/// field only that kind has, for bodies without the id.
fn shopify_kind(topic: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match topic.split('/').next()? {
        "orders" => ("Order", &["line_items", "financial_status"]),
        "fulfillments" => ("Fulfillment", &["tracking_numbers", "shipment_status"]),
        "refunds" => ("Refund", &["refund_line_items", "transactions"]),
        "returns" => ("Return", &["return_line_items"]),
        "customers" if topic != "customers/redact" => ("Customer", &["verified_email"]),
        "inventory_levels" => ("InventoryLevel", &["inventory_item_id"]),
        _ => return None,
    })
}

fn shopify_resource(topic: &str, body: &Json<'_>) -> Result<(), Rejection> {
    match topic {
        // A customer erasure names the customer; a shop erasure names none.
        "customers/redact" if body.get("customer").is_none() => {
            return Err(Rejection::new(
                "topic \"customers/redact\" does not match the signed body: no customer",
            ));
        }
        "shop/redact"
            if body.get("customer").is_some() || body.get("orders_to_redact").is_some() =>
        {
            return Err(Rejection::new(
                "topic \"shop/redact\" does not match the signed body: it names a customer, \
                 so it is a customer erasure",
            ));
        }
        _ => {}
    }
    let Some((kind, fields)) = shopify_kind(topic) else {
        return Ok(());
    };
    match text(body, "admin_graphql_api_id") {
        Some(gid) => {
            let named = gid
                .strip_prefix("gid://shopify/")
                .and_then(|rest| rest.split('/').next());
            if named == Some(kind) {
                Ok(())
            } else {
                Err(Rejection::new(format!(
                    "topic {topic:?} does not match the signed body: admin_graphql_api_id names \
                     a {}, expected a {kind}",
                    named.unwrap_or("different resource")
                )))
            }
        }
        None if fields.iter().any(|f| body.get(f).is_some()) => Ok(()),
        None => Err(Rejection::new(format!(
            "topic {topic:?} does not match the signed body: no {} field, so it is no {kind}",
            fields.join(" or ")
        ))),
    }
}

/// Shopify: the resource kind and the fact a topic states.
pub fn shopify(topic: &str, body: &Json<'_>) -> Result<(), Rejection> {
    shopify_resource(topic, body)?;
    match topic {
        // Shopify sends orders/paid when the order is paid; a later refund still shows it.
        "orders/paid" => expect_one_of(
            topic,
            body,
            "financial_status",
            &["paid", "partially_refunded", "refunded"],
        ),
        "orders/cancelled" => match text(body, "cancelled_at") {
            Some(t) if !t.is_empty() => Ok(()),
            got => Err(refuse(topic, "cancelled_at", "a time", got)),
        },
        "orders/fulfilled" => expect_one_of(topic, body, "fulfillment_status", &["fulfilled"]),
        "returns/request" => expect_one_of(topic, body, "status", &["requested", "open"]),
        "returns/approve" | "returns/reopen" => expect_one_of(topic, body, "status", &["open"]),
        "returns/decline" => expect_one_of(topic, body, "status", &["declined"]),
        "returns/close" => expect_one_of(topic, body, "status", &["closed"]),
        "returns/cancel" => expect_one_of(topic, body, "status", &["canceled", "cancelled"]),
        _ => Ok(()),
    }
}

/// Fields only a WooCommerce resource of that kind has.
fn woocommerce_kind(resource: &str) -> Option<&'static [&'static str]> {
    Some(match resource {
        "order" => &["order_key", "line_items"],
        "customer" => &["username", "role", "is_paying_customer"],
        "product" => &["sku", "stock_status"],
        _ => return None,
    })
}

/// WooCommerce: the resource kind (by `_links.self`) and the fact a topic states.
pub fn woocommerce(topic: &str, body: &Json<'_>) -> Result<(), Rejection> {
    let (resource, event) = topic.split_once('.').unwrap_or((topic, ""));
    if event != "deleted"
        && let Some(fields) = woocommerce_kind(resource)
    {
        // `_links.self` names the resource's REST path when the shop sends it.
        let linked = body
            .pointer("/_links/self/0/href")
            .and_then(Json::as_str)
            .map(|href| href.contains(&format!("/{resource}s/")));
        let shaped = fields.iter().any(|f| body.get(f).is_some());
        if linked == Some(false) || !shaped {
            return Err(Rejection::new(format!(
                "topic {topic:?} does not match the signed body: it is no {resource} \
                 (no {} field, or _links.self names another resource)",
                fields.join(" or ")
            )));
        }
    }
    match topic {
        // A deletion body is only the id; a full customer body re-sent as a deletion would
        // turn any signed customer update into an erasure request.
        t if t.ends_with(".deleted") => {
            let only_id = body
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k == "id") && o.contains_key("id"));
            if only_id {
                Ok(())
            } else {
                Err(Rejection::new(format!(
                    "topic {topic:?} does not match the signed body: a deletion body holds \
                     only the id, this one is a full resource"
                )))
            }
        }
        _ => Ok(()),
    }
}

/// Saleor: the event name the body was issued for.
pub fn saleor(topic: &str, body: &Json<'_>) -> Result<(), Rejection> {
    let order = &body["order"];
    match topic {
        "ORDER_FULLY_PAID" => expect_one_of(topic, order, "chargeStatus", &["FULL", "OVERCHARGED"])
            .map_err(|r| Rejection::new(format!("{} (order.chargeStatus)", r.reason()))),
        "ORDER_CANCELLED" => expect_one_of(topic, order, "status", &["CANCELED"])
            .map_err(|r| Rejection::new(format!("{} (order.status)", r.reason()))),
        "ORDER_FULFILLED" => expect_one_of(
            topic,
            order,
            "status",
            &["FULFILLED", "PARTIALLY_FULFILLED"],
        )
        .map_err(|r| Rejection::new(format!("{} (order.status)", r.reason()))),
        "FULFILLMENT_CREATED" if body.get("fulfillment").is_none() => Err(Rejection::new(
            "topic \"FULFILLMENT_CREATED\" does not match the signed body: no fulfillment",
        )),
        t if t.starts_with("CUSTOMER_") && body.get("user").is_none() => Err(Rejection::new(
            format!("topic {t:?} does not match the signed body: no user"),
        )),
        t if t.starts_with("ORDER_") && body.get("order").is_none() => Err(Rejection::new(
            format!("topic {t:?} does not match the signed body: no order"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Rejection;
    use crate::json::Json;

    fn shopify(topic: &str, body: &Value) -> Result<(), Rejection> {
        super::shopify(topic, &Json::from(body))
    }

    fn woocommerce(topic: &str, body: &Value) -> Result<(), Rejection> {
        super::woocommerce(topic, &Json::from(body))
    }

    fn saleor(topic: &str, body: &Value) -> Result<(), Rejection> {
        super::saleor(topic, &Json::from(body))
    }

    #[test]
    fn shopify_topics_that_state_a_fact_need_the_body_to_show_it() {
        let unpaid = json!({"id": 1, "financial_status": "pending", "cancelled_at": null,
                            "line_items": []});
        assert!(shopify("orders/create", &unpaid).is_ok());
        let r = shopify("orders/paid", &unpaid).unwrap_err();
        assert!(r.reason().contains("financial_status"), "{r}");
        let r = shopify("orders/cancelled", &unpaid).unwrap_err();
        assert!(r.reason().contains("cancelled_at"), "{r}");
        assert!(shopify("orders/fulfilled", &unpaid).is_err());
        let paid = json!({"financial_status": "paid", "cancelled_at": "2025-03-14T10:00:00Z",
                          "line_items": []});
        assert!(shopify("orders/paid", &paid).is_ok());
        assert!(shopify("orders/cancelled", &paid).is_ok());
        let requested = json!({"status": "requested", "return_line_items": []});
        assert!(shopify("returns/request", &requested).is_ok());
        assert!(shopify("returns/decline", &requested).is_err());
        assert!(shopify("returns/close", &requested).is_err());
    }

    #[test]
    fn a_body_of_another_resource_is_refused() {
        let refund = json!({"id": 1, "order_id": 2, "created_at": "2025-03-14T10:00:00Z",
                            "admin_graphql_api_id": "gid://shopify/Refund/1",
                            "refund_line_items": [], "transactions": []});
        assert!(shopify("refunds/create", &refund).is_ok());
        let r = shopify("fulfillments/create", &refund).unwrap_err();
        assert!(r.reason().contains("admin_graphql_api_id"), "{r}");
        // Without the signed gid, by the fields only that kind has.
        let mut bare = refund.clone();
        bare.as_object_mut().unwrap().remove("admin_graphql_api_id");
        assert!(shopify("fulfillments/update", &bare).is_err());
        assert!(shopify("refunds/create", &bare).is_ok());
        let customer_erasure = json!({"shop_domain": "a.myshopify.com",
                                      "customer": {"id": 1}, "orders_to_redact": []});
        assert!(shopify("customers/redact", &customer_erasure).is_ok());
        assert!(shopify("shop/redact", &customer_erasure).is_err());
        let shop_erasure = json!({"shop_id": 1, "shop_domain": "a.myshopify.com"});
        assert!(shopify("shop/redact", &shop_erasure).is_ok());
        assert!(shopify("customers/redact", &shop_erasure).is_err());
        // WooCommerce: an order is no customer, a customer no product.
        let order = json!({"id": 52907, "order_key": "wc_order_x", "line_items": [],
                           "_links": {"self": [{"href": "https://s.example/wp-json/wc/v3/orders/52907"}]}});
        assert!(woocommerce("order.updated", &order).is_ok());
        assert!(woocommerce("customer.updated", &order).is_err());
        assert!(woocommerce("product.updated", &order).is_err());
        let mut linked = order.clone();
        linked["username"] = json!("x");
        assert!(
            woocommerce("customer.created", &linked).is_err(),
            "_links.self names an order"
        );
    }

    #[test]
    fn a_full_woocommerce_body_is_no_deletion() {
        assert!(woocommerce("customer.deleted", &json!({"id": 7})).is_ok());
        let full = json!({"id": 7, "email": "a@example.com", "role": "customer"});
        assert!(woocommerce("customer.deleted", &full).is_err());
        assert!(woocommerce("customer.updated", &full).is_ok());
    }

    #[test]
    fn saleor_event_names_must_match_the_body() {
        let created = json!({"order": {"id": "T3JkZXI6MQ==", "status": "UNFULFILLED",
                                        "chargeStatus": "NONE"}});
        assert!(saleor("ORDER_CREATED", &created).is_ok());
        assert!(saleor("ORDER_FULLY_PAID", &created).is_err());
        assert!(saleor("ORDER_CANCELLED", &created).is_err());
        assert!(saleor("CUSTOMER_UPDATED", &created).is_err());
        assert!(saleor("FULFILLMENT_CREATED", &created).is_err());
        let user = json!({"user": {"id": "VXNlcjo0Mg=="}});
        assert!(saleor("ORDER_CREATED", &user).is_err());
        assert!(saleor("CUSTOMER_UPDATED", &user).is_ok());
    }
}
