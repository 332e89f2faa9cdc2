//! Money as exact decimal strings with the currency's ISO 4217 exponent.
//!
//! Rules: amounts are parsed as decimals, never through `f64` arithmetic. JSON numbers
//! (Saleor's `84.9`) are read through their shortest round-trip text. Amounts with more
//! fraction digits than the currency has are rounded half away from zero (commercial
//! rounding). Minor units (Stripe) are shifted by the exponent. The currency code is
//! upper-cased and must be a known ISO 4217 code.

use omnigate_schemas::Money;
use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

/// The ISO 4217 minor-unit exponent of `code` (any case); `None` for unknown codes.
pub fn exponent(code: &str) -> Option<u32> {
    let code = code.to_ascii_uppercase();
    let currency = iso_currency::Currency::from_code(&code)?;
    // Codes without minor units (XAU, XXX…) are not used for prices; treat them as 0.
    Some(currency.exponent().map(u32::from).unwrap_or(0))
}

/// Parses a decimal string such as `"2300.00"`, `"-400.00"`, `"84.9"`.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if text.is_empty() || text.contains(['e', 'E', '_']) {
        return None;
    }
    Decimal::from_str(text).ok()
}

/// Formats `amount` in `currency`, rounded to its exponent.
pub fn money(amount: Decimal, currency: &str) -> Option<Money> {
    let code = currency.to_ascii_uppercase();
    let exp = exponent(&code)?;
    let mut d = amount.round_dp_with_strategy(exp, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(exp);
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    Some(Money {
        amount: d.to_string(),
        currency: code,
    })
}

/// `"229.97"` + `"usd"` → `{229.97 USD}`.
pub fn from_str(amount: &str, currency: &str) -> Option<Money> {
    money(parse_decimal(amount)?, currency)
}

/// A JSON number (float or integer) in major units.
pub fn from_number(n: &serde_json::Number, currency: &str) -> Option<Money> {
    // serde_json prints floats with the shortest text that round-trips, so 84.9 → "84.9".
    money(parse_decimal(&n.to_string())?, currency)
}

/// Integer minor units (Stripe's `5478` + `eur` → `54.78`).
pub fn from_minor_units(units: i64, currency: &str) -> Option<Money> {
    let exp = exponent(currency)?;
    money(Decimal::new(units, exp), currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(amount: &str, currency: &str) -> Money {
        Money {
            amount: amount.into(),
            currency: currency.into(),
        }
    }

    #[test]
    fn keeps_the_currency_exponent() {
        assert_eq!(from_str("2300.00", "UAH"), Some(m("2300.00", "UAH")));
        assert_eq!(from_str("26480", "HUF"), Some(m("26480.00", "HUF")));
        assert_eq!(from_str("1200", "jpy"), Some(m("1200", "JPY")));
        assert_eq!(from_str("1.5", "KWD"), Some(m("1.500", "KWD")));
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(from_str("10.005", "EUR"), Some(m("10.01", "EUR")));
        assert_eq!(from_str("-10.005", "EUR"), Some(m("-10.01", "EUR")));
        assert_eq!(from_str("19.9950", "USD"), Some(m("20.00", "USD")));
        assert_eq!(from_str("-0.001", "USD"), Some(m("0.00", "USD")));
    }

    #[test]
    fn floats_go_through_their_shortest_text() {
        let n: serde_json::Number = serde_json::from_str("84.9").unwrap();
        assert_eq!(from_number(&n, "USD"), Some(m("84.90", "USD")));
        let n: serde_json::Number = serde_json::from_str("0.1").unwrap();
        assert_eq!(from_number(&n, "USD"), Some(m("0.10", "USD")));
    }

    #[test]
    fn minor_units_shift_by_the_exponent() {
        assert_eq!(from_minor_units(5478, "eur"), Some(m("54.78", "EUR")));
        assert_eq!(from_minor_units(34750, "ron"), Some(m("347.50", "RON")));
        assert_eq!(from_minor_units(1200, "jpy"), Some(m("1200", "JPY")));
    }

    #[test]
    fn extreme_amounts_do_not_panic() {
        let max = "79228162514264337593543950335";
        let _ = from_str(max, "EUR");
        let _ = from_str(&format!("-{max}"), "KWD");
        let _ = from_minor_units(i64::MIN, "usd");
        assert_eq!(from_str("792281625142643375935439503350", "EUR"), None);
    }

    #[test]
    fn rejects_what_is_not_money() {
        assert_eq!(from_str("12,50", "EUR"), None);
        assert_eq!(from_str("1e3", "EUR"), None);
        assert_eq!(from_str("", "EUR"), None);
        assert_eq!(from_str("1.00", "ZZZ"), None);
    }
}
