//! What keeps a browser from being turned against the control plane: the `Host` check
//! against DNS rebinding, and headers that forbid framing and foreign content.
//!
//! DNS rebinding: a page from `evil.example` re-points its name at 127.0.0.1 and then
//! reads (or, with a token it stole elsewhere, drives) the API as "same origin". Its
//! requests still say `Host: evil.example`, so only names this control plane is
//! known by are answered: localhost names, any IP address (an address in the URL
//! cannot be rebound), and the names in `allowed_hosts`. `/metrics` and `/health`
//! carry nothing secret and are scraped by whatever name a monitoring system uses, so
//! they answer every Host.

use crate::api::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// Paths any Host may read.
const OPEN_PATHS: [&str; 2] = ["/metrics", "/health"];

/// The page loads only its own scripts, styles and API; nothing may frame it.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Host names besides localhost and IP addresses that requests may be addressed to.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// `names` as the config file's `allowed_hosts` has them (checked there).
    pub fn new(names: &[String]) -> Self {
        AllowedHosts(Arc::new(names.iter().map(|n| canonical(n)).collect()))
    }

    /// Whether a `Host` header value (name or address, optional port) is ours.
    pub fn allows(&self, host: &str) -> bool {
        let name = canonical(strip_port(host));
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        name == "localhost" || name.ends_with(".localhost") || self.0.contains(&name)
    }
}

/// Lower case, without the root's trailing dot or an IPv6 literal's brackets.
fn canonical(name: &str) -> String {
    let name = name.trim_end_matches('.');
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.to_ascii_lowercase()
}

/// `name:port` -> `name`; `[v6]:port` -> `[v6]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Refuse requests addressed to a name that is not ours (see the module docs).
pub async fn check_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // HTTP/2 carries the authority in the URI instead; clients without either are
    // not browsers, which always send one.
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !allowed.allows(&host) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this control plane does not answer to the name {host:?} (a guard \
                 against DNS rebinding); open it by IP address or localhost, or add the \
                 name to allowed_hosts in its config file"
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Headers on every response: no framing, no foreign content, no type sniffing.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_addresses_and_configured_names_are_allowed() {
        let hosts = AllowedHosts::new(&["Rig1.Example.NET".into()]);
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "dash.localhost:8080",
            "127.0.0.1:8080",
            "192.0.2.7",
            "[::1]:8080",
            "[2001:db8::1]",
            "rig1.example.net",
            "rig1.example.net.:8080",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "rig1.example.net.evil.example",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
    }
}
