//! Typed reads from provider JSON that name the offending field when they fail, so a
//! quarantined payload says exactly what was wrong (`line_items[1].price: …`).

use crate::json::{Json, Object};
use chrono::{DateTime, Utc};
use omnigate_schemas::Money;

use super::{Rejection, money, time};

/// A JSON object and the path it was reached by.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    map: &'a Object<'a>,
    path: &'a str,
}

/// Owned path, for objects reached through arrays.
pub struct Owned<'a> {
    map: &'a Object<'a>,
    path: String,
}

impl<'a> Owned<'a> {
    pub fn obj(&self) -> Obj<'_> {
        Obj {
            map: self.map,
            path: &self.path,
        }
    }
}

impl<'a> Obj<'a> {
    /// The payload's root object.
    pub fn root(value: &'a Json<'a>) -> Result<Self, Rejection> {
        match value {
            Json::Object(map) => Ok(Obj { map, path: "" }),
            _ => Err(Rejection::new("payload is not a JSON object")),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn err(&self, key: &str, what: &str) -> Rejection {
        Rejection::new(format!("{}: {what}", self.name(key)))
    }

    /// The raw value, treating `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A non-empty string, or absent (null, missing and `""` are all absent).
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_ref())),
            Some(_) => Err(self.err(key, "expected a string")),
        }
    }

    pub fn str(&self, key: &str) -> Result<&'a str, Rejection> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, "required string is missing"))
    }

    /// An id sent as an integer or a string; `0` and `""` mean "none".
    pub fn opt_id(&self, key: &str) -> Result<Option<String>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) if n.as_u64() == Some(0) => Ok(None),
            Some(Json::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(Json::String(s)) if s.trim().is_empty() || s == "0" => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.to_string())),
            Some(_) => Err(self.err(key, "expected an integer or string id")),
        }
    }

    pub fn id(&self, key: &str) -> Result<String, Rejection> {
        self.opt_id(key)?
            .ok_or_else(|| self.err(key, "required id is missing"))
    }

    pub fn u64(&self, key: &str) -> Result<u64, Rejection> {
        self.get(key)
            .and_then(Json::as_u64)
            .ok_or_else(|| self.err(key, "expected a non-negative integer"))
    }

    pub fn opt_obj(&self, key: &str) -> Result<Option<Owned<'a>>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Object(map)) => Ok(Some(Owned {
                map,
                path: self.name(key),
            })),
            Some(_) => Err(self.err(key, "expected an object")),
        }
    }

    /// The objects of an array (absent or null = empty).
    pub fn objects(&self, key: &str) -> Result<Vec<Owned<'a>>, Rejection> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(_) => return Err(self.err(key, "expected an array")),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Object(map) => Ok(Owned {
                    map,
                    path: format!("{}[{i}]", self.name(key)),
                }),
                _ => Err(Rejection::new(format!(
                    "{}[{i}]: expected an object",
                    self.name(key)
                ))),
            })
            .collect()
    }

    /// A decimal string in `currency`.
    pub fn opt_money(&self, key: &str, currency: &str) -> Result<Option<Money>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::String(s)) => money::from_str(s, currency)
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("{s:?} is not an amount in {currency}"))),
            Some(Json::Number(n)) => money::from_number(n, currency)
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("{n} is not an amount in {currency}"))),
            Some(_) => Err(self.err(key, "expected a decimal amount")),
        }
    }

    pub fn money(&self, key: &str, currency: &str) -> Result<Money, Rejection> {
        self.opt_money(key, currency)?
            .ok_or_else(|| self.err(key, "required amount is missing"))
    }

    /// A timestamp in any accepted textual form.
    pub fn opt_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => time::parse(s)
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("{s:?} is not a timestamp"))),
        }
    }

    pub fn time(&self, key: &str) -> Result<DateTime<Utc>, Rejection> {
        self.opt_time(key)?
            .ok_or_else(|| self.err(key, "required timestamp is missing"))
    }

    /// A currency code (validated against ISO 4217), upper case.
    pub fn currency(&self, key: &str) -> Result<String, Rejection> {
        let code = self.str(key)?;
        if money::exponent(code).is_none() {
            return Err(self.err(key, &format!("{code:?} is not an ISO 4217 currency")));
        }
        Ok(code.to_ascii_uppercase())
    }
}

/// `first last`, trimmed, or absent.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let name = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}
