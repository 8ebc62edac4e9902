//! The one HTTP client for every call Patchbay makes to the outside (partner
//! callbacks, OAuth token endpoints, webhooks): connect and total timeouts, a
//! response size cap, no redirects, and an SSRF guard that refuses loopback,
//! private, link-local and cloud-metadata addresses after DNS resolution,
//! unless the configuration's allow list names the `host:port`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode, Url};

pub use crate::sandbox::Call;
use crate::sandbox::OutboundFault;

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// `host:port` pairs exempt from the address guard (e.g. `127.0.0.1:9200`).
    pub allow: Vec<String>,
    /// Exempts loopback addresses (127.0.0.0/8, ::1) from the guard; for tests and `demo`.
    pub allow_loopback: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: 1024 * 1024,
            allow: Vec::new(),
            allow_loopback: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid outbound URL")]
    BadUrl,
    #[error("refused to contact {0}: not a public address (add it to outbound.allow to permit)")]
    Refused(String),
    #[error("the remote server did not answer in time")]
    Timeout,
    #[error("the response exceeded {0} bytes")]
    TooLarge(usize),
    #[error("outbound request failed: {0}")]
    Transport(String),
}

/// A response read in full (within the size cap).
#[derive(Debug)]
pub struct OutboundResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// True for addresses an outbound call must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// IPv6: the special ranges, and every form that carries an IPv4 address inside
/// it (the guard would otherwise be bypassed by writing a refused IPv4 address
/// in IPv6 notation).
fn forbidden_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return forbidden_v4(v4); // ::ffff:a.b.c.d
    }
    // ::a.b.c.d (IPv4-compatible, deprecated by RFC 4291; includes :: and ::1) and
    // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765): never a public host's address.
    if s[..6] == [0; 6] || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0) {
        return true;
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2])); // 6to4 2002:AABB:CCDD::/48
    }
    v6.is_multicast()
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 and 64:ff9b:1::/48, to any IPv4
        || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32 (embeds the server's and an obfuscated client's IPv4)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] == 0x100 && s[1..4] == [0; 3]) // discard-only 100::/64
        || (s[0] & 0xfe00) == 0xfc00 // unique local, incl. fd00:ec2::254 (AWS metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, incl. 169.254.169.254 metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240
}

fn refused(ip: IpAddr, allow_loopback: bool) -> bool {
    let loopback = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    is_forbidden(ip) && !(allow_loopback && loopback)
}

/// Resolves names, then drops every forbidden address; fails when none remain.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| !refused(a.ip(), allow_loopback)).collect();
            if allowed.is_empty() {
                return Err(Box::new(OutboundError::Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Clone)]
pub struct Outbound {
    guarded: Client,
    open: Client,
    config: Arc<OutboundConfig>,
    /// Outbound fault rules and the journal, when the sandbox is on.
    sandbox: Option<Arc<crate::sandbox::Sandbox>>,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> Self {
        let base = || {
            Client::builder()
                .connect_timeout(config.connect_timeout)
                .timeout(config.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
        };
        // No proxy from the environment for the guarded client: a proxy would resolve
        // and connect for it, out of the guard's sight.
        let guarded = base()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback: config.allow_loopback }))
            .build()
            .expect("static client configuration");
        let open = base().build().expect("static client configuration");
        Self { guarded, open, config: Arc::new(config), sandbox: None }
    }

    /// The same client, with the sandbox's outbound rules and journal.
    pub fn with_sandbox(mut self, sandbox: Option<Arc<crate::sandbox::Sandbox>>) -> Self {
        self.sandbox = sandbox;
        self
    }

    fn allowed(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.config.allow.iter().any(|a| {
            a.rsplit_once(':').is_some_and(|(h, p)| {
                h.trim_start_matches('[').trim_end_matches(']').eq_ignore_ascii_case(host) && p.parse() == Ok(port)
            })
        })
    }

    /// Starts a request to `url`, choosing the guarded or the open client.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<RequestBuilder, OutboundError> {
        let url = Url::parse(url).map_err(|_| OutboundError::BadUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::BadUrl);
        }
        let host = url.host_str().ok_or(OutboundError::BadUrl)?.to_string();
        let port = url.port_or_known_default().ok_or(OutboundError::BadUrl)?;
        if self.allowed(&host, port) {
            return Ok(self.open.request(method, url));
        }
        // IP literals bypass DNS, so the guard checks them here.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && refused(ip, self.config.allow_loopback)
        {
            return Err(OutboundError::Refused(host));
        }
        Ok(self.guarded.request(method, url))
    }

    /// Sends a request (the `call` it is, for sandbox rules and the journal) and
    /// reads the whole response, within the size cap.
    pub async fn send(&self, call: Call, req: RequestBuilder) -> Result<OutboundResponse, OutboundError> {
        let Some(sandbox) = &self.sandbox else {
            return self.read(req.send().await.map_err(map_err)?).await;
        };
        let (client, built) = req.build_split();
        let request = built.map_err(map_err)?;
        let (journal, fault) = crate::sandbox::OutboundCall::begin(sandbox, call, &request);
        let result = match fault {
            None => match client.execute(request).await {
                Ok(resp) => self.read(resp).await,
                Err(e) => Err(map_err(e)),
            },
            Some(OutboundFault::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                match client.execute(request).await {
                    Ok(resp) => self.read(resp).await,
                    Err(e) => Err(map_err(e)),
                }
            }
            Some(OutboundFault::Answer(status, body)) => {
                let mut headers = HeaderMap::new();
                headers.insert(reqwest::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
                Ok(OutboundResponse { status, headers, body: Bytes::from(body.to_string()) })
            }
            Some(OutboundFault::Timeout) => Err(OutboundError::Timeout),
            Some(OutboundFault::Dropped) => {
                Err(OutboundError::Transport("the connection closed before an answer (sandbox fault)".into()))
            }
        };
        journal.finish(match &result {
            Ok(r) => {
                Ok((r.status, r.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &r.body))
            }
            Err(e) => Err(e.to_string()),
        });
        result
    }

    async fn read(&self, mut resp: reqwest::Response) -> Result<OutboundResponse, OutboundError> {
        let cap = self.config.max_response_bytes;
        if resp.content_length().is_some_and(|n| n as usize > cap) {
            return Err(OutboundError::TooLarge(cap));
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > cap {
                return Err(OutboundError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse { status, headers, body: Bytes::from(body) })
    }

    /// GET a URL (as a call of this kind).
    pub async fn get(&self, call: Call, url: &str) -> Result<OutboundResponse, OutboundError> {
        let req = self.request(reqwest::Method::GET, url)?;
        self.send(call, req).await
    }
}

fn map_err(e: reqwest::Error) -> OutboundError {
    if e.is_timeout() {
        return OutboundError::Timeout;
    }
    // Walk the source chain for the guard's refusal.
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = src {
        if let Some(OutboundError::Refused(h)) = s.downcast_ref::<OutboundError>() {
            return OutboundError::Refused(h.clone());
        }
        src = s.source();
    }
    // Never echo the URL: it may carry credentials in its query.
    OutboundError::Transport(e.without_url().to_string())
}

/// Every IPv6 form of a refused address the guard must catch (used by the tests
/// of each outbound path too).
pub const FORBIDDEN_V6_FORMS: &[&str] = &[
    "::127.0.0.1",                          // IPv4-compatible loopback
    "::7f00:1",                             // the same, in hex
    "::10.0.0.1",                           // IPv4-compatible private
    "::169.254.169.254",                    // IPv4-compatible metadata
    "::ffff:0:127.0.0.1",                   // IPv4-translated
    "::ffff:169.254.169.254",               // IPv4-mapped metadata
    "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
    "2002:a00:1::1",                        // 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::",                     // 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",                      // NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",                     // local-use NAT64
    "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo (client 127.0.0.1, obfuscated)
    "fc00::1",                              // unique local
    "fd12:3456::1",                         // unique local
    "fe80::1",                              // link-local
    "febf::1",                              // link-local, top of the range
    "fec0::1",                              // site-local
    "ff02::1",                              // multicast
    "::",                                   // unspecified
    "::1",                                  // loopback
    "2001:db8::1",                          // documentation
    "100::1",                               // discard-only
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in FORBIDDEN_V6_FORMS {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "2a00:1450::1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }
}
