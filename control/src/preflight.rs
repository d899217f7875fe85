//! What the program checks before it builds or starts anything, so a mistake fails at
//! once with what to do instead: the listen address is free, the demo's interface
//! exists, and whether logs may carry colours.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener};

/// Bind the HTTP listener now, before any worker, probe or lab exists.
pub fn bind(listen: SocketAddr) -> Result<TcpListener> {
    let listener = match TcpListener::bind(listen) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let mut other = listen;
            other.set_port(listen.port().wrapping_add(1).max(1));
            bail!(
                "{listen} is already in use (another reflector-control or demo?): stop it, \
                 or serve on another address with --listen {other}"
            );
        }
        Err(e) => return Err(e).with_context(|| format!("listening on {listen}")),
    };
    // tokio takes it over as a non-blocking socket.
    listener
        .set_nonblocking(true)
        .with_context(|| format!("listening on {listen}"))?;
    Ok(listener)
}

/// The demo on a named interface: it must exist (the long-running service instead
/// waits for an interface that is not there yet).
pub fn interface_exists(name: &str) -> Result<()> {
    if nix::net::if_::if_nametoindex(name).is_ok() {
        return Ok(());
    }
    let mut names: Vec<String> = nix::net::if_::if_nameindex()
        .map(|all| {
            all.iter()
                .map(|i| i.name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    bail!(
        "no interface named {name:?}; this machine has {}. Without an interface, \
         `reflector-control demo` builds a virtual lab instead",
        names.join(", ")
    );
}
