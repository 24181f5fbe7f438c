//! Which URLs an endpoint may have (SSRF): `https` (plain `http` only to hosts configured for
//! it), no credentials, and a host that resolves only to public addresses — never private,
//! loopback, link-local, unique-local, multicast, unspecified, CGNAT, documentation or other
//! special-purpose ranges, in IPv4 and IPv6 (an IPv4 address inside IPv6, mapped, compatible,
//! NAT64 or 6to4, is judged as that IPv4 address) — unless the configuration allows private
//! targets. The api checks at registration; the webhooks participant checks again each time it
//! connects, on the addresses it resolved itself and then connects to (no DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where webhooks may go (`WEBHOOKS_ALLOW_PRIVATE_TARGETS`, `WEBHOOKS_HTTP_HOSTS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Private, loopback and other special-purpose addresses allowed (development, tests).
    pub allow_private: bool,
    /// Hosts (lowercase, as in the URL) that may be reached over plain `http`.
    pub http_hosts: Vec<String>,
}

/// Why a target is refused; the message is shown to the publisher.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("not a valid absolute URL: {0}")]
    Malformed(String),
    #[error("the URL must use https")]
    Scheme,
    #[error("the URL may not carry a user name or password")]
    Credentials,
    #[error("the URL needs a host")]
    NoHost,
    #[error("the host {0} does not resolve")]
    Unresolvable(String),
    #[error("the host resolves to {0}, a private or special-purpose address")]
    Forbidden(IpAddr),
}

impl TargetPolicy {
    /// Parses `raw` and checks its shape (scheme, credentials, host, a literal address); the
    /// addresses of a host name are checked by [`TargetPolicy::resolve`].
    pub fn check_url(&self, raw: &str) -> Result<url::Url, TargetError> {
        let url = url::Url::parse(raw.trim()).map_err(|e| TargetError::Malformed(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        let host = url
            .host_str()
            .ok_or(TargetError::NoHost)?
            .to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http"
                if self
                    .http_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(&host)) => {}
            _ => return Err(TargetError::Scheme),
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
            None => return Err(TargetError::NoHost),
        }
        Ok(url)
    }

    /// Whether `ip` may be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(TargetError::Forbidden(ip))
        }
    }

    /// Resolves `host` and checks every address (one forbidden address refuses the host: a
    /// name that mixes public and private addresses is an attack on whoever picks one).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, TargetError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| TargetError::Unresolvable(host.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable(host.to_owned()));
        }
        for a in &addrs {
            self.check_ip(a.ip())?;
        }
        Ok(addrs)
    }

    /// [`TargetPolicy::check_url`], then [`TargetPolicy::resolve`] of its host.
    pub async fn check(&self, raw: &str) -> Result<url::Url, TargetError> {
        let url = self.check_url(raw)?;
        let host = url.host_str().ok_or(TargetError::NoHost)?;
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve(host, port).await?;
        Ok(url)
    }
}

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network", unspecified
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT, 100.64.0.0/10
        || (a == 169 && b == 254) // link-local (cloud metadata)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        // ::, ::1 and the deprecated compatible form.
        return ip != Ipv6Addr::UNSPECIFIED
            && ip != Ipv6Addr::LOCALHOST
            && is_public_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4: the IPv4 address in bits 16..48.
        return is_public_v4(embedded(s[1], s[2]));
    }
    let special = (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (an IPv4 address in disguise)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // NAT64 local use, 64:ff9b:1::/48
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only, 100::/64
        || (s[0] & 0xe000) != 0x2000; // outside global unicast, 2000::/3
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn special_addresses_are_not_public() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "fec0::1",
        ] {
            assert!(!is_public(ip(s)), "{s} is special");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn urls_are_https_without_credentials_unless_allowed() {
        let strict = TargetPolicy::default();
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert_eq!(
            strict.check_url("http://hooks.example.com/x"),
            Err(TargetError::Scheme)
        );
        assert_eq!(
            strict.check_url("ftp://hooks.example.com/x"),
            Err(TargetError::Scheme)
        );
        assert_eq!(
            strict.check_url("https://u:p@hooks.example.com/x"),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            strict.check_url("https://127.0.0.1/x"),
            Err(TargetError::Forbidden(ip("127.0.0.1")))
        );
        assert_eq!(
            strict.check_url("https://[::ffff:169.254.169.254]/x"),
            Err(TargetError::Forbidden(ip("::ffff:169.254.169.254")))
        );
        assert!(matches!(
            strict.check_url("not a url"),
            Err(TargetError::Malformed(_))
        ));
        let dev = TargetPolicy {
            allow_private: true,
            http_hosts: vec!["127.0.0.1".into()],
        };
        assert!(dev.check_url("http://127.0.0.1:9000/hook").is_ok());
    }
}
