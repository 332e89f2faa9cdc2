//! Names checked once at the edge, so the code behind a handler holds a value that is
//! known to be well formed: a tenant (shop) name and a source id.

use rand::Rng;
use std::fmt;

/// Why a name was refused; the HTTP layer answers it as a 422 (or 400 on a path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(&'static str);

/// A tenant: 1-128 characters of `A-Z`, `a-z`, `0-9`, `-`, `_` or `.`. It names a shop in
/// logs, Redis keys and URLs, so nothing else gets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    pub const RULE: &'static str =
        "tenant must be 1-128 characters of A-Z, a-z, 0-9, '-', '_' or '.'";

    pub fn parse(name: impl Into<String>) -> Result<Tenant, InvalidName> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(Tenant(name))
        } else {
            Err(InvalidName(Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Tenant {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Source ids: `src_` and 16 characters of an alphabet without look-alikes (no `l`, `o`).
pub mod source_id {
    use super::Rng;

    const ALPHABET: &[u8] = b"0123456789abcdefghijkmnpqrstuvwxyz";

    /// Whether `id` has the shape of a source id; anything else is refused before a store
    /// lookup.
    pub fn is_valid(id: &str) -> bool {
        id.strip_prefix("src_")
            .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| ALPHABET.contains(&b)))
    }

    pub fn generate() -> String {
        let mut rng = rand::rng();
        let suffix: String = (0..16)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        format!("src_{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_plain_names() {
        for ok in ["shop-a", "A.b_c-9", &"x".repeat(128)] {
            assert_eq!(Tenant::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "a/b", "ä", "a:b", &"x".repeat(129)] {
            assert_eq!(
                Tenant::parse(bad),
                Err(InvalidName(Tenant::RULE)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_source_ids_are_valid_ones() {
        for _ in 0..100 {
            assert!(source_id::is_valid(&source_id::generate()));
        }
        for bad in [
            "src_",
            "src_0123456789abcdeL",
            "xrc_0123456789abcdef",
            "src_0123456789abcdefg",
        ] {
            assert!(!source_id::is_valid(bad), "{bad}");
        }
    }
}
