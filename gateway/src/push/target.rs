//! Where a plugin's pushed events may go: `https` URLs of hosts on the public internet,
//! never the gateway's own network (loopback, private ranges, link-local, cloud metadata),
//! checked when the URL is registered and again on every connection, at the addresses the
//! connection really uses (so a DNS answer that changes after registration, "DNS
//! rebinding", cannot point a push inside). `allow_private` (for local development and
//! tests) lifts both the `https` and the address rules.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

/// Why a push URL or address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Url(String),
    #[error("{host} resolves to {addr}, which is not a public address")]
    Private { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {why}")]
    Unresolved { host: String, why: String },
}

/// Longest push URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a push URL's form (and, for an IP literal, its address). Hosts named by DNS are
/// checked when resolved ([`resolve`], [`Resolver`]).
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let refuse = |why: &str| Err(TargetError::Url(format!("push url {raw:?}: {why}")));
    if raw.len() > MAX_URL_LEN {
        return refuse(&format!("longer than {MAX_URL_LEN} characters"));
    }
    let url = match Url::parse(raw) {
        Ok(url) => url,
        Err(e) => return refuse(&e.to_string()),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return refuse("must be https"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not carry credentials");
    }
    if url.fragment().is_some() {
        return refuse("must not have a fragment");
    }
    let Some(host) = url.host() else {
        return refuse("has no host");
    };
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if let Some(addr) = literal
        && !allow_private
        && is_forbidden(addr)
    {
        return Err(TargetError::Private {
            host: host.to_string(),
            addr,
        });
    }
    Ok(url)
}

/// Whether a push must never connect to `addr`: anything but a public unicast address.
pub fn is_forbidden(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing is judged as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 old site-local
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                // 64:ff9b::/96 NAT64 (reaches IPv4, private ranges included), 2001:db8::/32
                // documentation, ::/96 IPv4-compatible (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4])
                // 64:ff9b:1::/48 local-use NAT64, 2002::/16 6to4 and 2001::/32 Teredo: all
                // carry an IPv4 address that may be a private one
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0..6] == [0; 6] && !v6.is_loopback())
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local() // 169.254/16: cloud metadata at 169.254.169.254
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // 192.0.0/24 protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || a >= 240 // reserved
}

/// Resolves `host` and refuses it unless every address is allowed: one private address
/// among public ones is enough to refuse (a rebinding answer would mix them).
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| TargetError::Unresolved {
            host: host.to_string(),
            why: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolved {
            host: host.to_string(),
            why: "no address".into(),
        });
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(TargetError::Private {
            host: host.to_string(),
            addr: bad.ip(),
        });
    }
    Ok(addrs)
}

/// A DNS resolver for the push HTTP client that refuses forbidden addresses, so the check
/// holds at connection time: the connection uses exactly the addresses checked. (An IP
/// literal URL does not go through a resolver: [`check_url`] judges it before each push.)
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host, 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Resolver {
    pub fn shared(allow_private: bool) -> Arc<Resolver> {
        Arc::new(Resolver { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111"] {
            assert!(!is_forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn push_urls_are_https_without_credentials_or_private_literals() {
        assert!(check_url("https://plugin.example.com/hooks", false).is_ok());
        for bad in [
            "http://plugin.example.com/hooks",
            "ftp://plugin.example.com/",
            "https://user:pw@plugin.example.com/",
            "https://plugin.example.com/#frag",
            "https://127.0.0.1/hooks",
            "https://[::1]/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://0x7f000001/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        // Local development: plain http to this machine.
        assert!(check_url("http://127.0.0.1:3000/hooks", true).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_this_machine_is_refused() {
        let err = resolve("localhost", 443, false).await.unwrap_err();
        assert!(matches!(err, TargetError::Private { .. }), "{err}");
        assert!(resolve("localhost", 443, true).await.is_ok());
    }
}
