//! Host ports held for published container ports. Berth binds (never listens on) the host address and port for as
//! long as the mapping exists: no other program can take the port, a port in use is refused up front with Docker's
//! error, and the traffic itself is forwarded by the kernel (DNAT), with no proxy process per port.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::Error;
use crate::firewall::Proto;

/// A bound socket that keeps a host port for a mapping; dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    _sock: socket2::Socket,
}

/// Binds `ip:port` (`port` 0: any free port) and returns the port.
pub fn reserve(proto: Proto, ip: Ipv4Addr, port: u16) -> Result<(u16, Reservation), Error> {
    let ty = match proto {
        Proto::Tcp => socket2::Type::STREAM,
        Proto::Udp => socket2::Type::DGRAM,
    };
    let what = || format!("{}4 {ip}:{port}", proto.as_str());
    let sock = socket2::Socket::new(socket2::Domain::IPV4, ty, None)
        .map_err(|e| Error::Os(format!("socket for {}", what()), e))?;
    if proto == Proto::Udp {
        // The embedded DNS server holds UDP port 53 on the gateways with SO_REUSEADDR; `-p 53:53/udp` must still
        // be able to take the port on the other addresses.
        sock.set_reuse_address(true).map_err(|e| Error::Os("SO_REUSEADDR".into(), e))?;
    }
    if let Err(e) = sock.bind(&SocketAddrV4::new(ip, port).into()) {
        return Err(Error::PortInUse(format!(
            "Error starting userland proxy: listen {}: bind: {}",
            what(),
            e.to_string().split(" (os error").next().unwrap_or_default().to_lowercase()
        )));
    }
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket_ipv4())
        .ok_or_else(|| Error::Os(format!("local address of {}", what()), std::io::Error::other("not IPv4")))?;
    Ok((local.port(), Reservation { _sock: sock }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_cannot_be_taken_twice() {
        let (port, held) = reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).expect("reserve");
        assert_ne!(port, 0);
        let again = reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, port);
        assert!(matches!(again, Err(Error::PortInUse(ref m)) if m.contains("address already in use")), "{again:?}");
        // UDP is a separate space.
        let udp = reserve(Proto::Udp, Ipv4Addr::LOCALHOST, port);
        drop(udp);
        drop(held);
        assert!(reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, port).is_ok(), "freed when dropped");
    }
}
