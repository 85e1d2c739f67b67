//! Checks that an organisation owns a domain, now: a TXT look-up, or a GET
//! of the file on the domain. An unverifiable domain is an answer (a
//! [`CheckOutcome`] with a reason a person can act on), never an error.
//!
//! Names are resolved by `hickory-resolver`, through `--dns-nameserver`
//! when it is set and the system's configuration otherwise, for the TXT
//! look-up and the HTTP check alike, so both see the same DNS. A resolver
//! is built for each check: nothing is cached, so a record just published
//! is seen by the next check.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, Resolver, TokioResolver};

use crate::directory::domain::{
    expected_text, judge_file, judge_txt, CheckMethod, CheckOutcome, DomainName, HTTP_FILE_PATH,
};

/// The most bytes of the file that are read: the expected line is about
/// 62 bytes, so anything much larger is not the file.
pub const MAX_FILE_BYTES: usize = 4096;

/// Same-host redirects followed at most (`http` → `https`, a trailing
/// slash); a redirect to another host is never followed.
pub const MAX_REDIRECTS: usize = 3;

/// How the checks reach the outside world.
#[derive(Clone, Debug)]
pub struct DomainChecker {
    /// The DNS server to ask (`IP:port`); None: the system's.
    pub nameserver: Option<SocketAddr>,
    /// Ports of the HTTP check; None: 443 and 80.
    pub https_port: Option<u16>,
    pub http_port: Option<u16>,
    /// Each DNS query, each connection and each whole HTTP request.
    pub timeout: Duration,
}

impl DomainChecker {
    /// Checks `domain` for `token` by `method`.
    pub async fn check(
        &self,
        method: CheckMethod,
        domain: &DomainName,
        token: &str,
    ) -> CheckOutcome {
        let resolver = match self.resolver() {
            Ok(r) => r,
            Err(reason) => return CheckOutcome::failed(reason),
        };
        match method {
            CheckMethod::Dns => self.check_dns(&resolver, domain, token).await,
            CheckMethod::Http => self.check_http(resolver, domain, token).await,
        }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.nameserver {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                Resolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => Resolver::builder_tokio().map_err(|e| {
                format!(
                    "the server's DNS configuration could not be read ({e}); set --dns-nameserver"
                )
            })?,
        };
        let opts = builder.options_mut();
        opts.timeout = self.timeout;
        opts.attempts = 1;
        // Large TXT sets (many services' tokens) fit one UDP answer.
        opts.edns0 = true;
        Ok(builder.build())
    }

    fn seconds(&self) -> String {
        let s = self.timeout.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s} s")
        }
    }

    async fn check_dns(
        &self,
        resolver: &TokioResolver,
        domain: &DomainName,
        token: &str,
    ) -> CheckOutcome {
        match resolver.txt_lookup(format!("{domain}.")).await {
            Ok(found) => {
                let records: Vec<String> = found
                    .iter()
                    .map(|txt| {
                        let bytes: Vec<u8> = txt
                            .txt_data()
                            .iter()
                            .flat_map(|s| s.iter().copied())
                            .collect();
                        String::from_utf8_lossy(&bytes).into_owned()
                    })
                    .collect();
                judge_txt(domain, token, &records)
            }
            Err(e) if e.is_nx_domain() => CheckOutcome::failed(format!(
                "no TXT record {} found at {domain}: the domain does not exist (NXDOMAIN)",
                expected_text(token)
            )),
            Err(e) if e.is_no_records_found() => judge_txt(domain, token, &[]),
            Err(e) if is_timeout(&e) => CheckOutcome::failed(format!(
                "the DNS query for TXT records at {domain} timed out after {}",
                self.seconds()
            )),
            Err(e) => CheckOutcome::failed(format!(
                "the DNS query for TXT records at {domain} failed: {e}"
            )),
        }
    }

    async fn check_http(
        &self,
        resolver: TokioResolver,
        domain: &DomainName,
        token: &str,
    ) -> CheckOutcome {
        let client = match self.client(resolver, domain) {
            Ok(c) => c,
            Err(e) => {
                return CheckOutcome::failed(format!(
                    "the HTTP check could not start: {}",
                    cause(&e)
                ))
            }
        };
        let https = self.url("https", self.https_port, domain);
        let http = self.url("http", self.http_port, domain);
        match self.fetch(&client, &https, token).await {
            Fetched::Outcome(outcome) => outcome,
            Fetched::NoConnection(https_reason) => match self.fetch(&client, &http, token).await {
                Fetched::Outcome(outcome) => outcome,
                Fetched::NoConnection(http_reason) => CheckOutcome::failed(format!(
                    "could not connect to {https} ({https_reason}) nor to {http} ({http_reason})"
                )),
            },
        }
    }

    fn url(&self, scheme: &str, port: Option<u16>, domain: &DomainName) -> String {
        match port {
            Some(port) => format!("{scheme}://{domain}:{port}{HTTP_FILE_PATH}"),
            None => format!("{scheme}://{domain}{HTTP_FILE_PATH}"),
        }
    }

    fn client(
        &self,
        resolver: TokioResolver,
        domain: &DomainName,
    ) -> reqwest::Result<reqwest::Client> {
        let host = domain.as_str().to_owned();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS
                || attempt.url().host_str() != Some(host.as_str())
            {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder()
            .redirect(policy)
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .no_proxy()
            .user_agent(concat!(
                "scimd/",
                env!("CARGO_PKG_VERSION"),
                " (domain verification)"
            ))
            .dns_resolver(std::sync::Arc::new(Hickory(resolver)))
            .build()
    }

    async fn fetch(&self, client: &reqwest::Client, url: &str, token: &str) -> Fetched {
        let failed = |reason: String| Fetched::Outcome(CheckOutcome::failed(reason));
        let mut resp = match client.get(url).send().await {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => {
                return failed(format!("GET {url} timed out after {}", self.seconds()))
            }
            Err(e) if e.is_connect() => return Fetched::NoConnection(cause(&e)),
            Err(e) => return failed(format!("GET {url} failed: {}", cause(&e))),
        };
        let status = resp.status();
        let at = resp.url().to_string();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            return failed(format!(
                "HTTP {} from {at} redirects to {location}: only up to {MAX_REDIRECTS} redirects on the same host are followed",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return failed(format!("HTTP {} from {at}", status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_FILE_BYTES as u64)
        {
            return failed(format!(
                "the file at {at} is larger than {MAX_FILE_BYTES} bytes"
            ));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_FILE_BYTES {
                        return failed(format!(
                            "the file at {at} is larger than {MAX_FILE_BYTES} bytes"
                        ));
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return failed(format!("GET {at} timed out after {}", self.seconds()))
                }
                Err(e) => return failed(format!("reading {at} failed: {}", cause(&e))),
            }
        }
        Fetched::Outcome(judge_file(&at, token, &String::from_utf8_lossy(&body)))
    }
}

/// What one GET came to: an answer, or no connection (so the next scheme
/// is tried).
enum Fetched {
    Outcome(CheckOutcome),
    NoConnection(String),
}

fn is_timeout(e: &ResolveError) -> bool {
    e.proto()
        .is_some_and(|p| matches!(p.kind(), ProtoErrorKind::Timeout))
}

/// The innermost cause of an error: "Connection refused (os error 111)"
/// says more than "error sending request for url".
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// reqwest's name resolution through the check's own resolver.
struct Hickory(TokioResolver);

impl reqwest::dns::Resolve for Hickory {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        Box::pin(async move {
            let found = resolver.lookup_ip(format!("{}.", name.as_str())).await?;
            let addrs: reqwest::dns::Addrs = Box::new(
                found
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}
