//! Where a webhook may be sent. A URL an admin gives makes scimd send
//! requests from inside the deployment's network, so by default an address
//! that reaches inside it — loopback, private, link-local, the cloud
//! metadata services, anything reserved — is refused (server-side request
//! forgery). The check is made when the URL is saved and again on every
//! delivery, on the addresses the name resolves to then, so a name that
//! later resolves inside is refused too. `--webhook-allow-private` lifts it
//! for on-premises receivers and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a webhook URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not an absolute http or https URL")]
    NotHttp,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the URL must not have a fragment")]
    Fragment,
    #[error("{host} resolves to {address}, a {kind} address")]
    Inside {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// What kind of inside address `ip` is; none for a public one.
pub fn inside(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => inside_v4(v4),
        IpAddr::V6(v6) => inside_v6(v6),
    }
}

fn inside_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    // The metadata services of the clouds: AWS, GCP and Azure
    // (169.254.169.254), Oracle (192.0.0.192), Alibaba (100.100.100.200).
    if [[169, 254, 169, 254], [192, 0, 0, 192], [100, 100, 100, 200]].contains(&[a, b, c, d]) {
        return Some("metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918, and the carrier-grade NAT range (RFC 6598).
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link-local");
    }
    let reserved = a == 0 // "this network"
        || a >= 224 // multicast, reserved, broadcast
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113);
    reserved.then_some("reserved")
}

fn inside_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), the deprecated
    // compatible form (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach the
    // IPv4 address they carry.
    let s = ip.segments();
    let embedded =
        |s: &[u16; 8]| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || (s[5] == 0 && !(s[6] == 0 && s[7] <= 1))) {
        return inside_v4(embedded(&s));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return inside_v4(embedded(&s));
    }
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some("metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("private");
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Some("link-local");
    }
    let reserved = ip.is_unspecified() || ip.is_multicast() || (s[0] == 0x2001 && s[1] == 0x0db8);
    reserved.then_some("reserved")
}

/// Checks a URL's form (http or https, absolute, no credentials, no
/// fragment, not too long) and, when it names an IP address, the address.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, Refused> {
    if text.len() > MAX_URL_LEN {
        return Err(Refused::TooLong);
    }
    let url = Url::parse(text).map_err(|_| Refused::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Refused::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    if url.fragment().is_some() {
        return Err(Refused::Fragment);
    }
    if !allow_private {
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            check_address(&ip.to_string(), ip)?;
        }
    }
    Ok(url)
}

fn check_address(host: &str, address: IpAddr) -> Result<(), Refused> {
    match inside(address) {
        Some(kind) => Err(Refused::Inside {
            host: host.to_owned(),
            address,
            kind,
        }),
        None => Ok(()),
    }
}

/// The addresses `host` resolves to, refused if any is inside (a name
/// with one inside address among public ones could be steered to it).
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Refused::Unresolved(host.to_owned()))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused::Unresolved(host.to_owned()));
    }
    if !allow_private {
        for a in &addresses {
            check_address(host, a.ip())?;
        }
    }
    Ok(addresses)
}

/// The resolver the delivery client uses: every name is checked where it
/// resolves at the moment of sending. (An IP literal is not resolved; the
/// deliverer checks it with [`check_url`].)
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addresses = resolve(name.as_str(), 0, allow)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(allow_private: bool) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        inside(ip.parse().unwrap())
    }

    #[test]
    fn inside_addresses_are_named() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("fd12:3456::1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("fd00:ec2::254", "metadata"),
            ("192.0.0.192", "metadata"),
            ("100.100.100.200", "metadata"),
            ("0.0.0.0", "reserved"),
            ("::", "reserved"),
            ("255.255.255.255", "reserved"),
            ("224.0.0.1", "reserved"),
            ("ff02::1", "reserved"),
            ("198.18.0.1", "reserved"),
            ("2001:db8::1", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::192.168.0.1", "private"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_form_and_literal_addresses() {
        assert!(check_url("https://hooks.example.com/scim?x=1", false).is_ok());
        assert!(check_url("http://203.0.114.7:8080/", false).is_ok());
        assert_eq!(
            check_url("ftp://example.com/", false),
            Err(Refused::NotHttp)
        );
        assert_eq!(check_url("/relative", false), Err(Refused::NotHttp));
        assert_eq!(
            check_url("https://u:p@example.com/", false),
            Err(Refused::Credentials)
        );
        assert_eq!(
            check_url("https://example.com/#x", false),
            Err(Refused::Fragment)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false), Err(Refused::TooLong));
        for url in [
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(Refused::Inside { .. })),
                "{url}"
            );
            assert!(check_url(url, true).is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_unless_allowed() {
        let refused = resolve("localhost", 80, false).await.unwrap_err();
        assert!(
            matches!(
                refused,
                Refused::Inside {
                    kind: "loopback",
                    ..
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().starts_with("localhost resolves to "));
        let allowed = resolve("localhost", 80, true).await.unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()));
    }
}
