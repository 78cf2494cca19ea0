//! Requests Tally makes to addresses its users choose (notification endpoints), and the
//! address policy they pass.
//!
//! An endpoint is somebody else's server on the open internet. Tally refuses to send to its
//! own machine or network: loopback, private (RFC 1918), link-local, shared (CGNAT,
//! 100.64.0.0/10), unique-local, multicast, unspecified, documentation and reserved addresses,
//! and the IPv4-mapped, -compatible, NAT64 and 6to4 forms of those. The check runs when an
//! endpoint is saved (so people are told why) and again for every delivery, inside the
//! resolver of the HTTP client: the connection goes to the very addresses that were checked,
//! so a name that later resolves elsewhere (DNS rebinding) is refused then. Redirects are
//! never followed, and TLS certificates are verified against the system's roots.
//!
//! `TALLY_OUTBOX_ALLOW_PRIVATE=1` lifts the policy, and allows plain `http`, for local
//! receivers in development and tests only.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long one delivery may take, all told.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest endpoint address accepted.
const MAX_URL_LEN: usize = 500;

/// Why an address is not one Tally sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is this machine (loopback)")]
    Loopback,
    #[error("it is inside a private network")]
    Private,
    #[error("it is a link-local address (such as a cloud metadata service)")]
    LinkLocal,
    #[error("it is in the shared address space of a carrier network")]
    Shared,
    #[error("it is a unique-local IPv6 address")]
    UniqueLocal,
    #[error("it is a multicast address")]
    Multicast,
    #[error("it is an unspecified address")]
    Unspecified,
    #[error("it is a reserved or documentation address")]
    Reserved,
}

/// Whether Tally may send to `ip`, under the policy.
pub fn check_ip(ip: IpAddr) -> Result<(), Refusal> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), Refusal> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (127, _, _) => Err(Refusal::Loopback),
        (10, _, _) | (192, 168, _) => Err(Refusal::Private),
        (172, 16..=31, _) => Err(Refusal::Private),
        (169, 254, _) => Err(Refusal::LinkLocal),
        (100, 64..=127, _) => Err(Refusal::Shared),
        (0, _, _) => Err(Refusal::Unspecified),
        (224..=239, _, _) => Err(Refusal::Multicast),
        // 240/4 (and the broadcast address), IETF protocol assignments, benchmarking, and
        // the three documentation networks.
        (240..=255, _, _) | (192, 0, 0) | (198, 18..=19, _) => Err(Refusal::Reserved),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Err(Refusal::Reserved),
        _ => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), Refusal> {
    if ip.is_loopback() {
        return Err(Refusal::Loopback);
    }
    if ip.is_unspecified() {
        return Err(Refusal::Unspecified);
    }
    let s = ip.segments();
    // IPv4 in IPv6 clothing is judged as the IPv4 address it carries.
    let embedded = match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),
        // NAT64 (64:ff9b::/96).
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),
        // 6to4 (2002:AABB:CCDD::/48).
        [0x2002, hi, lo, ..] => Some((hi, lo)),
        _ => None,
    };
    if let Some((hi, lo)) = embedded {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        return check_v4(Ipv4Addr::new(a, b, c, d));
    }
    match s[0] {
        0xfc00..=0xfdff => Err(Refusal::UniqueLocal),
        // Link-local (fe80::/10) and the deprecated site-local (fec0::/10).
        0xfe80..=0xfeff => Err(Refusal::LinkLocal),
        0xff00..=0xffff => Err(Refusal::Multicast),
        // Documentation (2001:db8::/32) and the discard prefix (100::/64).
        0x2001 if s[1] == 0x0db8 => Err(Refusal::Reserved),
        0x0100 if s[1..4] == [0, 0, 0] => Err(Refusal::Reserved),
        _ => Ok(()),
    }
}

/// The address policy of outbound requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Local receivers allowed (development and tests): no address checks, `http` too.
    pub allow_private: bool,
}

/// Why an endpoint address is refused, in words for the person who typed it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadEndpoint(pub String);

impl AddressPolicy {
    fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private {
            Ok(())
        } else {
            check_ip(ip)
        }
    }

    /// Checks an endpoint address as it is saved: a full `https://` address (plain `http`
    /// only for local receivers) of at most 500 characters, with a host whose every address
    /// passes the policy. Returns the address as it will be stored.
    pub async fn check_endpoint(&self, url: &str) -> Result<url::Url, BadEndpoint> {
        let parsed = self.check_syntax(url)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addresses = match literal_ip(&parsed) {
            Some(ip) => vec![ip],
            None => tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| BadEndpoint(format!("{host} could not be looked up in time")))?
            .map_err(|_| BadEndpoint(format!("{host} could not be found (DNS)")))?
            .map(|a| a.ip())
            .collect(),
        };
        for ip in addresses {
            self.check(ip).map_err(|why| {
                BadEndpoint(format!("Tally does not send to {host} ({ip}): {why}"))
            })?;
        }
        Ok(parsed)
    }

    /// The checks that need no network: scheme, length, host, no credentials, and a literal
    /// IP address against the policy.
    pub fn check_syntax(&self, url: &str) -> Result<url::Url, BadEndpoint> {
        let url = url.trim();
        if url.len() > MAX_URL_LEN {
            return Err(BadEndpoint(format!(
                "the address is longer than {MAX_URL_LEN} characters"
            )));
        }
        let parsed = url::Url::parse(url).map_err(|_| {
            BadEndpoint("enter a full address such as https://example.com/hooks/tally".into())
        })?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(BadEndpoint("the address has no valid host".into()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(BadEndpoint(
                "the address may not carry a user name or password".into(),
            ));
        }
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err(BadEndpoint("use an https:// address".into())),
            _ => return Err(BadEndpoint("use an https:// address".into())),
        }
        if let Some(ip) = literal_ip(&parsed) {
            self.check(ip)
                .map_err(|why| BadEndpoint(format!("Tally does not send to {ip}: {why}")))?;
        }
        Ok(parsed)
    }
}

/// The host of `url` when it is an IP address (such hosts are never looked up, so they are
/// checked before connecting).
fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Resolves names for the delivery client and refuses any whose addresses the policy does not
/// allow; the connection then goes to exactly the addresses checked here.
#[derive(Debug)]
struct CheckedResolver {
    policy: AddressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &found {
                policy.check(address.ip()).map_err(|why| {
                    Box::new(PolicyRefused {
                        host: host.clone(),
                        why,
                    }) as Box<dyn std::error::Error + Send + Sync>
                })?;
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// A delivery stopped by the address policy (at connect time).
#[derive(Debug, thiserror::Error)]
#[error("Tally does not send to {host}: {why}")]
pub struct PolicyRefused {
    host: String,
    why: Refusal,
}

/// Settings of outbound requests.
#[derive(Clone, Debug, Default)]
pub struct OutboundConfig {
    pub policy: AddressPolicy,
    /// Extra certificate authorities to trust (PEM), besides the system's roots: for a
    /// private CA, and for tests.
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// Why the outbound client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("outbound HTTP cannot be set up: {0}")]
pub struct OutboundError(String);

/// The HTTP client of outbound requests and the policy it enforces.
#[derive(Clone, Debug)]
pub struct Outbound {
    client: reqwest::Client,
    policy: AddressPolicy,
}

/// What happened to one request.
#[derive(Debug)]
pub enum Sent {
    /// The endpoint answered with this status.
    Answered(reqwest::StatusCode),
    /// It was not sent, or no answer came; the reason is for the delivery log.
    Failed(String),
}

impl Outbound {
    pub fn new(config: &OutboundConfig) -> Result<Outbound, OutboundError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect could point anywhere, past the policy.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve names itself, past the policy.
            .no_proxy()
            .user_agent("Tally-Webhooks/1")
            .dns_resolver(Arc::new(CheckedResolver {
                policy: config.policy,
            }));
        if let Some(pem) = &config.extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| OutboundError(format!("the extra CA file is not PEM: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| OutboundError(e.to_string()))?;
        Ok(Outbound {
            client,
            policy: config.policy,
        })
    }

    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Posts a JSON `body` with `headers` to `url`, if the policy allows the address.
    pub async fn post_json(&self, url: &str, headers: &[(&str, String)], body: String) -> Sent {
        let parsed = match self.policy.check_syntax(url) {
            Ok(parsed) => parsed,
            Err(why) => return Sent::Failed(why.0),
        };
        let mut request = self
            .client
            .post(parsed)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.body(body).send().await {
            Ok(response) => Sent::Answered(response.status()),
            Err(err) => Sent::Failed(describe(&err)),
        }
    }
}

/// Why a request got no answer, in words for the delivery log. Where the policy stopped it,
/// that is all it says, so the log cannot be used to probe a network.
fn describe(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<PolicyRefused>() {
            return refused.to_string();
        }
        let text = cause.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("handshake") || text.contains("ssl") {
            return "the endpoint's TLS certificate could not be verified".into();
        }
        source = cause.source();
    }
    if err.is_timeout() {
        "the endpoint did not answer in time".into()
    } else {
        "the endpoint could not be reached".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused() {
        for (address, why) in [
            ("127.0.0.1", Refusal::Loopback),
            ("127.255.0.9", Refusal::Loopback),
            ("10.0.0.1", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("172.31.255.254", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("169.254.169.254", Refusal::LinkLocal),
            ("100.64.0.1", Refusal::Shared),
            ("100.127.255.255", Refusal::Shared),
            ("0.0.0.0", Refusal::Unspecified),
            ("224.0.0.1", Refusal::Multicast),
            ("255.255.255.255", Refusal::Reserved),
            ("192.0.2.10", Refusal::Reserved),
            ("::1", Refusal::Loopback),
            ("::", Refusal::Unspecified),
            ("fd00::1", Refusal::UniqueLocal),
            ("fc12:3456::1", Refusal::UniqueLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("ff02::1", Refusal::Multicast),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("::ffff:10.1.2.3", Refusal::Private),
            ("::ffff:169.254.169.254", Refusal::LinkLocal),
            ("::10.0.0.1", Refusal::Private),
            ("64:ff9b::a9fe:a9fe", Refusal::LinkLocal),
            ("2002:c0a8:0101::1", Refusal::Private),
            ("2001:db8::1", Refusal::Reserved),
        ] {
            assert_eq!(check_ip(ip(address)), Err(why), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.253.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(check_ip(ip(address)), Ok(()), "{address}");
        }
    }

    proptest! {
        /// An IPv4 address and its IPv4-mapped IPv6 form always get the same verdict.
        #[test]
        fn mapped_addresses_are_judged_as_what_they_carry(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            prop_assert_eq!(check_ip(IpAddr::V4(v4)), check_ip(IpAddr::V6(v4.to_ipv6_mapped())));
        }

        /// Nothing in 10/8, 172.16/12, 192.168/16, 127/8 or 169.254/16 ever passes.
        #[test]
        fn private_networks_never_pass(host in any::<u32>(), net in 0usize..5) {
            let (base, len) = [(0x0a00_0000u32, 8), (0xac10_0000, 12), (0xc0a8_0000, 16), (0x7f00_0000, 8), (0xa9fe_0000, 16)][net];
            let address = base | (host >> len);
            prop_assert!(check_ip(IpAddr::V4(Ipv4Addr::from(address))).is_err());
        }
    }

    #[test]
    fn endpoint_addresses_are_full_https_addresses() {
        let strict = AddressPolicy::default();
        assert!(strict
            .check_syntax("https://hooks.example.com/tally")
            .is_ok());
        for bad in [
            "http://hooks.example.com/tally",
            "ftp://example.com",
            "example.com/hook",
            "https://",
            "https://user@evil.example",
            "https://user:pw@evil.example",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/hook",
            "https://[::1]:8443/x",
            "https://[::ffff:127.0.0.1]/x",
        ] {
            assert!(strict.check_syntax(bad).is_err(), "{bad}");
        }
        let local = AddressPolicy {
            allow_private: true,
        };
        assert!(local.check_syntax("http://127.0.0.1:8080/in").is_ok());
        assert!(local.check_syntax("ftp://127.0.0.1/in").is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_and_their_addresses_checked_when_saved() {
        let strict = AddressPolicy::default();
        let err = strict
            .check_endpoint("https://localhost:6379/")
            .await
            .unwrap_err();
        assert!(err.0.contains("loopback"), "{err}");
        let local = AddressPolicy {
            allow_private: true,
        };
        assert!(local.check_endpoint("http://localhost:6379/").await.is_ok());
    }
}
