//! Forwarding headers (`X-Forwarded-For`/`-Host`/`-Proto`, RFC 7239 `Forwarded`): believed
//! only from the proxies in `server.trusted_proxies`, and only the one header family
//! `server.proxy_header` names. Pure functions of the headers, so a fuzzer can call them.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::ProxyHeader;

/// Which proxies to believe, and through which header.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub nets: Vec<ipnet::IpNet>,
    pub header: ProxyHeader,
}

impl TrustedProxies {
    /// Whether `ip` is one of the proxies (an IPv4-mapped IPv6 peer counts as its IPv4).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip.to_canonical()))
    }
}

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// the configured forwarding header is walked from the right (the entries our proxies
/// appended) to the first address that is not itself a trusted proxy. Entries further left
/// were written by the client and could say anything. Only one header is ever believed: if
/// the mere presence of another could switch headers, a client could add it and pick its IP.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    if !proxies.trusts(peer) {
        return peer;
    }
    let mut chain = forwarded_chain(headers, proxies.header);
    chain.reverse();
    chain.into_iter().find(|ip| !proxies.trusts(*ip)).unwrap_or(peer)
}

/// Addresses from the configured header, left to right.
fn forwarded_chain(headers: &HeaderMap, header: ProxyHeader) -> Vec<IpAddr> {
    let values = |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    match header {
        ProxyHeader::XForwardedFor => {
            values("x-forwarded-for").into_iter().flat_map(|v| v.split(',')).filter_map(parse_node).collect()
        }
        ProxyHeader::Forwarded => values("forwarded")
            .into_iter()
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|part| {
                let (k, v) = part.trim().split_once('=')?;
                k.eq_ignore_ascii_case("for").then(|| parse_node(v))?
            })
            .collect(),
    }
}

/// `192.0.2.1`, `"[2001:db8::1]:4711"`, `192.0.2.1:80` → the address.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|sa| sa.ip())
}

/// The host and scheme a trusted proxy says the client asked for: `X-Forwarded-Host` and
/// `X-Forwarded-Proto`, or the `host=` and `proto=` of `Forwarded`. `None` from a peer that is
/// not a trusted proxy, and for what the proxy did not say. The right-most value is taken:
/// it was written by the proxy nearest to us, anything left of it may come from the client.
pub fn forwarded_host_proto<'h>(
    peer: Option<IpAddr>,
    headers: &'h HeaderMap,
    proxies: &TrustedProxies,
) -> (Option<&'h str>, Option<&'h str>) {
    if !peer.is_some_and(|p| proxies.trusts(p)) {
        return (None, None);
    }
    let last = |name: &str| {
        let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next().map(str::trim).filter(|v| !v.is_empty())
    };
    match proxies.header {
        ProxyHeader::XForwardedFor => (last("x-forwarded-host"), last("x-forwarded-proto")),
        ProxyHeader::Forwarded => {
            let Some(element) = headers
                .get_all("forwarded")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
            else {
                return (None, None);
            };
            let pair = |key: &str| {
                element.split(';').find_map(|part| {
                    let (k, v) = part.trim().split_once('=')?;
                    k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"')).filter(|v| !v.is_empty())
                })
            };
            (pair("host"), pair("proto"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn forwarding_headers_are_ignored_from_untrusted_peers() {
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("203.0.113.1"), &TrustedProxies::default()), peer);
    }

    #[test]
    fn trusted_proxy_chain_is_walked_from_the_right() {
        let trusted = TrustedProxies { nets: vec!["10.0.0.0/8".parse().unwrap()], header: ProxyHeader::XForwardedFor };
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        // The client claims to be 1.1.1.1; our proxy 10.0.0.2 saw 203.0.113.9.
        let h = xff("1.1.1.1, 203.0.113.9, 10.0.0.2");
        assert_eq!(client_ip(peer, &h, &trusted), "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rfc7239_forwarded_is_understood_when_configured() {
        let trusted = TrustedProxies { nets: vec!["127.0.0.1/32".parse().unwrap()], header: ProxyHeader::Forwarded };
        let mut h = xff("203.0.113.5");
        h.insert("forwarded", HeaderValue::from_static("for=\"[2001:db8::1]:4711\";proto=https"));
        let ip = client_ip("127.0.0.1".parse().unwrap(), &h, &trusted);
        assert_eq!(ip, "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_added_forwarded_header_does_not_displace_x_forwarded_for() {
        let trusted =
            TrustedProxies { nets: vec!["127.0.0.1/32".parse().unwrap()], header: ProxyHeader::XForwardedFor };
        let mut h = xff("203.0.113.7");
        h.insert("forwarded", HeaderValue::from_static("for=10.66.1.1"));
        assert_eq!(client_ip("127.0.0.1".parse().unwrap(), &h, &trusted), "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    proptest::proptest! {
        #[test]
        fn forwarding_parsers_never_panic(xff in ".{0,120}", fwd in ".{0,120}", host in ".{0,40}", proto in ".{0,10}") {
            let mut h = HeaderMap::new();
            for (k, v) in [("x-forwarded-for", &xff), ("forwarded", &fwd), ("x-forwarded-host", &host), ("x-forwarded-proto", &proto)] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            let peer: IpAddr = "10.0.0.1".parse().unwrap();
            for header in [ProxyHeader::XForwardedFor, ProxyHeader::Forwarded] {
                let proxies = TrustedProxies { nets: vec!["10.0.0.0/8".parse().unwrap()], header };
                let _ = client_ip(peer, &h, &proxies);
                let _ = forwarded_host_proto(Some(peer), &h, &proxies);
            }
        }
    }

    #[test]
    fn forwarded_host_and_proto_come_only_from_trusted_proxies_and_from_the_right() {
        let trusted = TrustedProxies { nets: vec!["10.0.0.0/8".parse().unwrap()], header: ProxyHeader::XForwardedFor };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example, auth.example.com"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let proxy = Some("10.1.2.3".parse().unwrap());
        assert_eq!(forwarded_host_proto(proxy, &h, &trusted), (Some("auth.example.com"), Some("https")));
        assert_eq!(forwarded_host_proto(Some("203.0.113.1".parse().unwrap()), &h, &trusted), (None, None));
        assert_eq!(forwarded_host_proto(None, &h, &trusted), (None, None));
        let rfc = TrustedProxies { header: ProxyHeader::Forwarded, ..trusted };
        assert_eq!(forwarded_host_proto(proxy, &h, &rfc), (None, None), "only the configured family counts");
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;host=evil, for=5.6.7.8;host=\"auth.example.com\";proto=https"),
        );
        assert_eq!(forwarded_host_proto(proxy, &h, &rfc), (Some("auth.example.com"), Some("https")));
    }
}
