//! Who sent a request: the TCP peer, or behind trusted proxies (`--trusted-proxies`) the
//! address they forwarded for. `X-Forwarded-For` is read right to left: each hop appends
//! the address it received from, so the rightmost entry not itself a trusted proxy is the
//! sender; anything left of it could have been written by the sender.

use ipnet::IpNet;
use std::net::IpAddr;

/// The sender of a request from `peer` with these `X-Forwarded-For` values (in order).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&unmapped(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut sender = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A hop that is not an address: the chain cannot be followed past it.
            break;
        };
        sender = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    sender
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.2`, what a socket bound to `[::]` sees)
/// as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in any of `cidrs` (IPv4-mapped IPv6 addresses count as IPv4).
pub fn allowed(ip: IpAddr, cidrs: &[IpNet]) -> bool {
    let ip = unmapped(ip);
    cidrs.iter().any(|net| net.contains(&ip))
}

/// Parses a source's `allow_cidrs`; a bare address is a /32 (or /128).
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{c:?} is not a CIDR (`195.34.21.0/24`) or an address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = parse_cidrs(&["10.0.0.0/8".into()]).unwrap();
        // Straight from the internet: the header is the sender's to write, so ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["195.34.21.7"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        // Through our proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["195.34.21.7"].into_iter(), &trusted),
            ip("195.34.21.7")
        );
        // A forged entry left of the real hop is not believed.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["195.34.21.7, 203.0.113.9", "10.0.0.3"].into_iter(),
                &trusted
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), std::iter::empty(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn allow_lists_match_networks_and_mapped_addresses() {
        let nets = parse_cidrs(&["195.34.21.0/24".into(), "2001:db8::1".into()]).unwrap();
        assert!(allowed(ip("195.34.21.200"), &nets));
        assert!(allowed(ip("::ffff:195.34.21.1"), &nets));
        assert!(allowed(ip("2001:db8::1"), &nets));
        assert!(!allowed(ip("195.34.22.1"), &nets));
        assert!(parse_cidrs(&["195.34.21.0/33".into()]).is_err());
    }
}
