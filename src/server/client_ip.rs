//! The client's address behind reverse proxies: `X-Forwarded-For` and `Forwarded` are believed
//! only when the connecting peer is a trusted proxy, and only as far as the chain of trusted
//! proxies goes, so a client cannot pick its own address by sending the header itself.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Networks whose connections may tell us the real client address.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    /// Trusted networks; empty means trust nobody and use the peer address.
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// From CIDRs such as `10.0.0.0/8` or single addresses such as `127.0.0.1`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        TrustedProxies { networks }
    }

    /// Whether `ip` belongs to a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client address: the peer, or when the peer is trusted, the nearest address in the
    /// forwarding chain (right to left) that is not itself a trusted proxy.
    ///
    /// A hop that cannot be read (`for=unknown`, an obfuscated `for=_hidden`, garbage) ends the
    /// walk at the trusted proxy that wrote it: whatever stands to its left came from a client
    /// that proxy could not name, and believing it would let that client pick its address.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer_ip = canonical(peer.ip());
        if !self.trusts(peer_ip) {
            return peer_ip;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer_ip;
        for hop in chain.into_iter().rev() {
            let Some(hop) = hop else {
                break;
            };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }

    /// Whether a trusted proxy says the client reached it over TLS (`X-Forwarded-Proto: https`,
    /// or `proto=https` in `Forwarded`); a header from anyone else means nothing.
    pub fn forwarded_https(&self, peer: SocketAddr, headers: &HeaderMap) -> bool {
        if !self.trusts(peer.ip()) {
            return false;
        }
        let said = |name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
                .collect()
        };
        let forwarded = said("forwarded");
        let proto = forwarded
            .iter()
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|pair| pair.trim().strip_prefix("proto="))
            .map(|p| p.trim_matches('"').to_owned())
            .next_back()
            .or_else(|| said("x-forwarded-proto").pop());
        proto.is_some_and(|p| p.split(',').next_back().map(str::trim) == Some("https"))
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) to IPv4, as dual-stack sockets report them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The hops of the forwarding chain, leftmost (original client) first, `None` for a hop that
/// cannot be read (which ends the chain, see [`TrustedProxies::client_ip`]): from `Forwarded`
/// (RFC 7239) when present, else from `X-Forwarded-For`. A header value that is not text is one
/// unreadable hop.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let (name, hop): (_, fn(&str) -> Option<IpAddr>) = if headers.contains_key("forwarded") {
        ("forwarded", forwarded_for)
    } else {
        ("x-forwarded-for", |entry| {
            parse_ip(entry.trim()).map(canonical)
        })
    };
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(hop).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` address of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_ip(value.trim().trim_matches('"')))
            .flatten()
            .map(canonical)
    })
}

/// An address with an optional port: `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `::1`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 4000)
    }

    #[test]
    fn only_a_trusted_proxy_can_say_the_client_came_over_tls() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(trusted.forwarded_https(peer("10.1.2.3"), &https));
        assert!(!trusted.forwarded_https(peer("203.0.113.9"), &https));
        let http = headers(&[("x-forwarded-proto", "http")]);
        assert!(!trusted.forwarded_https(peer("10.1.2.3"), &http));
        let forwarded = headers(&[("forwarded", "for=1.1.1.1;proto=https")]);
        assert!(trusted.forwarded_https(peer("10.1.2.3"), &forwarded));
        assert!(!trusted.forwarded_https(peer("10.1.2.3"), &headers(&[])));
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            trusted.client_ip(peer("203.0.113.9"), &h).to_string(),
            "203.0.113.9"
        );
    }

    #[test]
    fn trusted_peer_forwards_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7, 10.1.2.3")]);
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1"), &h).to_string(),
            "198.51.100.7"
        );
    }

    #[test]
    fn spoofed_leftmost_entries_are_ignored() {
        let trusted = proxies(&["127.0.0.1/32"]);
        // The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1"), &h).to_string(),
            "198.51.100.7"
        );
    }

    #[test]
    fn forwarded_header_wins_and_handles_ports_and_ipv6() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::1]:4711\";proto=https, for=127.0.0.1",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1"), &h).to_string(),
            "2001:db8::1"
        );
    }

    /// Found by fuzz/fuzz_targets/client_ip.rs: `unknown` and other unreadable hops were
    /// skipped, so a client could put its chosen address left of a proxy's `for=unknown`.
    #[test]
    fn a_hop_that_cannot_be_read_ends_the_chain() {
        let trusted = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let client = |pairs: &[(&'static str, &'static str)]| {
            trusted
                .client_ip(peer("127.0.0.1"), &headers(pairs))
                .to_string()
        };
        let xff = [
            ("x-forwarded-for", "10.0.0.3, 10.0.0.2"),
            ("x-forwarded-for", "unknown"),
        ];
        assert_eq!(client(&xff), "127.0.0.1");
        assert_eq!(
            client(&[("forwarded", "for=6.6.6.6, for=unknown")]),
            "127.0.0.1"
        );
        assert_eq!(
            client(&[("forwarded", "for=6.6.6.6, for=_hidden, for=10.0.0.2")]),
            "10.0.0.2"
        );
        assert_eq!(
            client(&[("x-forwarded-for", "6.6.6.6, , 10.0.0.2")]),
            "10.0.0.2"
        );
        // Unreadable hops left of the client are the client's business.
        assert_eq!(
            client(&[("x-forwarded-for", "garbage, 198.51.100.7, 10.0.0.2")]),
            "198.51.100.7"
        );
    }

    #[test]
    fn a_forwarded_value_that_is_not_text_is_an_unreadable_hop() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let mut map = headers(&[("forwarded", "for=6.6.6.6")]);
        map.append("forwarded", HeaderValue::from_bytes(b"for=\xff").unwrap());
        map.append("x-forwarded-for", HeaderValue::from_static("9.9.9.9"));
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1"), &map).to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn no_header_from_trusted_peer_means_the_peer() {
        let trusted = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            trusted
                .client_ip(peer("127.0.0.1"), &HeaderMap::new())
                .to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            trusted.client_ip(peer("::ffff:127.0.0.1"), &h).to_string(),
            "198.51.100.7"
        );
    }
}
