//! `X-Forwarded-For`, RFC 7239 `Forwarded`, `X-Forwarded-Host`/`-Proto`: the client address is
//! the socket peer unless the peer is a trusted proxy, and is never itself a trusted proxy
//! unless it is the peer; nothing is believed from an untrusted peer.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tessera_server::config::ProxyHeader;
use tessera_server::http::forwarded::{TrustedProxies, client_ip, forwarded_host_proto};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else { return };
    let peer = match selector % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        1 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        2 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()),
    };
    let header = if selector & 4 == 0 { ProxyHeader::XForwardedFor } else { ProxyHeader::Forwarded };
    let proxies = TrustedProxies {
        nets: ["10.0.0.0/8", "::1/128", "192.0.2.0/24"].iter().map(|n| n.parse().unwrap()).collect(),
        header,
    };
    let (xff, rest) = common::split2(data);
    let (forwarded, rest) = common::split2(rest);
    let (host, proto) = common::split2(rest);
    let mut headers = common::headers("x-forwarded-for", xff);
    common::append(&mut headers, "forwarded", forwarded);
    common::append(&mut headers, "x-forwarded-host", host);
    common::append(&mut headers, "x-forwarded-proto", proto);

    let client = client_ip(peer, &headers, &proxies);
    if !proxies.trusts(peer) {
        assert_eq!(client, peer, "an untrusted peer's headers were believed");
    } else {
        assert!(client == peer || !proxies.trusts(client), "a trusted proxy was taken for the client");
    }
    let (h, p) = forwarded_host_proto(Some(peer), &headers, &proxies);
    if !proxies.trusts(peer) {
        assert!(h.is_none() && p.is_none());
    }
    for v in [h, p].into_iter().flatten() {
        assert!(!v.is_empty() && !v.contains(','));
    }
    assert_eq!(forwarded_host_proto(None, &headers, &proxies), (None, None));
});
