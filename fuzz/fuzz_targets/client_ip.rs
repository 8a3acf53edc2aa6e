//! The client address behind reverse proxies: `Forwarded` (RFC 7239) and `X-Forwarded-For`,
//! believed only from trusted peers and only as far as the chain of trusted proxies goes.
//!
//! Input (see `hookline_fuzz::Input`): request headers. Controls: `x-fuzz-peer` (the connecting
//! address, default 127.0.0.1), `x-fuzz-trust` (comma-separated trusted networks, default
//! 127.0.0.1/32 and 10.0.0.0/8).
//!
//! Checked beyond "no panic": an untrusted peer is the client whatever it sends; the answer is
//! never an IPv4-mapped IPv6 address; hops a client adds on the left never change an answer that
//! is not a trusted proxy; and a hop the nearest proxy could not name (`unknown`) ends the
//! chain: nothing to its left is believed.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};
use hookline::fuzzing::TrustedProxies;
use hookline_fuzz::Input;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let peer_ip: IpAddr = input
        .control_text("peer")
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let trusted: Vec<IpNet> = match input.control_text("trust") {
        Some(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        None => vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ],
    };
    let proxies = TrustedProxies::new(trusted);
    let peer = SocketAddr::new(peer_ip, 4000);
    let canonical_peer = canonical(peer_ip);
    let client = proxies.client_ip(peer, &input.headers);

    assert_eq!(client, canonical(client), "an IPv4-mapped address came out");
    if !proxies.trusts(peer_ip) {
        assert_eq!(
            client, canonical_peer,
            "an untrusted peer chose its address"
        );
        return;
    }
    let (name, spoof, unknown) = if uses_forwarded(&input.headers) {
        ("forwarded", "for=6.6.6.6", "for=unknown")
    } else {
        ("x-forwarded-for", "6.6.6.6", "unknown")
    };
    if !proxies.trusts(client) {
        let spoofed = with_hop_first(&input.headers, name, spoof);
        assert_eq!(
            proxies.client_ip(peer, &spoofed),
            client,
            "a hop on the left won"
        );
    }
    let mut unnamed = input.headers.clone();
    unnamed.append(name, HeaderValue::from_static(unknown));
    assert_eq!(
        proxies.client_ip(peer, &unnamed),
        canonical_peer,
        "believed a hop left of one the proxy could not name"
    );
});

/// Whether the chain comes from `Forwarded`: it wins over `X-Forwarded-For` when present.
fn uses_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key("forwarded")
}

/// The headers with `hop` as the leftmost entry of `name`'s chain, as a client would add it.
fn with_hop_first(headers: &HeaderMap, name: &'static str, hop: &str) -> HeaderMap {
    let mut spoofed = headers.clone();
    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    spoofed.remove(name);
    spoofed.append(
        name,
        HeaderValue::from_str(hop).expect("an address is a header value"),
    );
    for value in values {
        spoofed.append(name, value);
    }
    spoofed
}

/// IPv4-mapped IPv6 addresses as IPv4, as hookline compares them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}
