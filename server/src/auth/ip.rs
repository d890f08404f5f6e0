//! Client addresses: CIDR blocks, the `--allow-ip`/`--deny-ip` lists, and `X-Forwarded-For`
//! read only when the peer is a `--trusted-proxy`.
//! [`IpNet`] is a thin layer over the `ipnet` crate that keeps two RestMQ habits: a bare address
//! is a one-address block, and an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) counts as IPv4.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

use crate::error::ApiError;

/// An address block such as `10.0.0.0/8`, `::1/128`, or a single address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR block (like 10.0.0.0/8)");
        let text = text.trim();
        let net = match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
                let prefix = prefix.parse::<u8>().map_err(|_| bad())?;
                ipnet::IpNet::new(addr, prefix).map_err(|_| bad())?
            }
            None => ipnet::IpNet::from(text.parse::<IpAddr>().map_err(|_| bad())?.to_canonical()),
        };
        Ok(Self(net))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The address lists of the command line.
#[derive(Debug, Clone, Default)]
pub struct IpRules {
    /// When not empty, only these clients are served.
    pub allow: Vec<IpNet>,
    /// These clients are never served.
    pub deny: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl IpRules {
    /// Whether any list restricts clients.
    pub fn is_active(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }

    /// 403 unless `client` passes the lists; deny wins over allow.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        if !self.is_active() {
            return Ok(());
        }
        let Some(ip) = client else {
            return Err(ApiError::Forbidden("the client address is unknown".to_owned()));
        };
        let denied = self.deny.iter().any(|n| n.contains(ip));
        let allowed = self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip));
        if denied || !allowed {
            return Err(ApiError::Forbidden(format!("address {ip} is not allowed")));
        }
        Ok(())
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
    /// nearest `X-Forwarded-For` hop that is not one. `None` when the server was not given
    /// connection info (a router called without a socket). A trusted proxy's unreadable
    /// header is a 400.
    pub fn client_addr(&self, parts: &Parts) -> Result<Option<IpAddr>, ApiError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(None);
        };
        let mut client = peer.ip().to_canonical();
        if !self.trusted(client) {
            return Ok(Some(client));
        }
        let hops: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().map_err(|_| bad_forwarded()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            if !self.trusted(client) {
                break;
            }
            client = parse_hop(hop).ok_or_else(bad_forwarded)?;
        }
        Ok(Some(client))
    }
}

fn bad_forwarded() -> ApiError {
    ApiError::InvalidArgument("X-Forwarded-For must list IP addresses".to_owned())
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_contain_their_addresses() {
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.10")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("::1").contains(ip("::1")));
        assert!(net("fe80::/10").contains(ip("fe80::1")));
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.5")));
        assert!(!net("::/0").contains(ip("1.2.3.4")));
        for bad in ["", "10.0.0.0/33", "::/129", "host", "10.0.0/8", "1.2.3.4/x", "1.2.3.4/"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    /// IPv6 blocks of every prefix length, host bits set in the written address, and mapped
    /// IPv4 addresses on either side.
    #[test]
    fn ipv6_and_mapped_blocks() {
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("2001:db8::1/64").contains(ip("2001:db8::ffff")), "host bits are ignored");
        assert!(net("::/0").contains(ip("::1")));
        assert!(net("::1/128").contains(ip("::1")) && !net("::1/128").contains(ip("::2")));
        assert!(net("::ffff:10.0.0.0/8").contains(ip("10.1.2.3")), "a mapped block is IPv4");
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("10.0.0.0/8").contains(ip("::a01:203")), "an IPv4-compatible address is IPv6");
        assert_eq!(net(" 10.1.2.3/8 ").to_string(), "10.1.2.3/8");
        assert_eq!(net("::1").to_string(), "::1/128");
        assert_eq!(net("127.0.0.1").to_string(), "127.0.0.1/32");
    }

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut req = Request::builder();
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let mut req = req.body(()).unwrap();
        req.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req.into_parts().0
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let rules = IpRules { trusted_proxies: vec![net("10.0.0.0/8")], ..IpRules::default() };
        let from = |peer, fwd: &[&str]| rules.client_addr(&parts(peer, fwd)).unwrap().unwrap();
        assert_eq!(from("1.2.3.4:1", &["9.9.9.9"]), ip("1.2.3.4"));
        assert_eq!(from("10.0.0.1:1", &["9.9.9.9"]), ip("9.9.9.9"));
        assert_eq!(from("10.0.0.1:1", &["6.6.6.6, 9.9.9.9, 10.0.0.2"]), ip("9.9.9.9"));
        assert_eq!(from("10.0.0.1:1", &["6.6.6.6", "9.9.9.9:80"]), ip("9.9.9.9"));
        assert_eq!(from("10.0.0.1:1", &[]), ip("10.0.0.1"));
        assert!(rules.client_addr(&parts("10.0.0.1:1", &["nonsense"])).is_err());
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let rules =
            IpRules { allow: vec![net("127.0.0.0/8")], deny: vec![net("127.0.0.2")], ..IpRules::default() };
        assert!(rules.check(Some(ip("127.0.0.1"))).is_ok());
        assert!(rules.check(Some(ip("127.0.0.2"))).is_err());
        assert!(rules.check(Some(ip("10.0.0.1"))).is_err());
        assert!(rules.check(None).is_err());
        assert!(IpRules::default().check(None).is_ok());
    }
}
