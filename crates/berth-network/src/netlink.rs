//! A small synchronous rtnetlink client: links (bridges, veth pairs), addresses and routes. A socket talks to the
//! network namespace it was created in, so a thread that has joined a container's namespace opens its own.

use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::Error;

/// Which bridge [`Netlink::ensure_bridge`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeUse {
    /// Only a bridge that exists (one Berth did not create, such as `berthd --bridge`'s: never created or deleted).
    Existing,
    /// The existing bridge Berth's records say it created, or a new one.
    Own,
    /// Only a new one: any existing link of the name is refused (`network create`).
    New,
}

/// One rtnetlink socket, bound to the network namespace of the thread that opened it.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn nl_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Netlink(format!("{what}: {e}"))
}

impl Netlink {
    pub fn open() -> Result<Netlink, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("open netlink socket", e))?;
        sock.bind_auto().map_err(|e| nl_err("bind netlink socket", e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| nl_err("connect netlink socket", e))?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and collects the answers until the kernel's acknowledgement (or the end of a dump).
    fn request(&mut self, what: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| nl_err(what, e))?;
        let mut out = Vec::new();
        let mut rx = Vec::with_capacity(64 * 1024);
        loop {
            rx.clear();
            self.sock.recv(&mut rx, 0).map_err(|e| nl_err(what, e))?;
            let mut off = 0;
            while off < rx.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..])
                    .map_err(|e| nl_err(&format!("{what}: malformed answer"), e))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(Error::Netlink(format!("{what}: empty netlink message")));
                }
                off += len;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => {
                                Err(Error::Os(what.to_string(), std::io::Error::from_raw_os_error(-code.get())))
                            }
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of a link by name.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, Error> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(&format!("find link {name}"), RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of a link by name and whether it is a Linux bridge.
    pub fn link_info(&mut self, name: &str) -> Result<Option<(u32, bool)>, Error> {
        Ok(self.link_kind(name)?.map(|(i, kind)| (i, kind == Some(InfoKind::Bridge))))
    }

    /// The index of a link by name and its kind (`None` for a link without one, such as `lo` or a physical NIC).
    fn link_kind(&mut self, name: &str) -> Result<Option<(u32, Option<InfoKind>)>, Error> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(&format!("find link {name}"), RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => {
                    let kind = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                            LinkInfo::Kind(k) => Some(k.clone()),
                            _ => None,
                        }),
                        _ => None,
                    });
                    Some((l.header.index, kind))
                }
                _ => None,
            })),
            Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link's name and index.
    pub fn links(&mut self) -> Result<Vec<(String, u32)>, Error> {
        let answers = self.request("list links", RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((n.clone(), l.header.index)),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Brings up a bridge as `want` allows: an existing one, or a new one (created up). Returns its index and
    /// whether it was created now. An existing link that is not a bridge is always refused (never configured). A
    /// new bridge's MAC address is fixed (derived from its name): left alone, a bridge takes the lowest MAC of its
    /// ports, which changes as containers come and go and leaves the containers' ARP entries for their gateway stale.
    pub fn ensure_bridge(&mut self, name: &str, mtu: Option<u32>, want: BridgeUse) -> Result<(u32, bool), Error> {
        let exists_not_ours = || {
            Error::Conflict(format!(
                "bridge {name} already exists and was not created by berth: berth does not take over interfaces it did not create"
            ))
        };
        match (self.link_info(name)?, want) {
            (Some((_, false)), _) => return Err(Error::Conflict(format!("existing interface {name} is not a bridge"))),
            (Some(_), BridgeUse::New) => return Err(exists_not_ours()),
            (Some((i, true)), _) => {
                self.set_up(i)?;
                return Ok((i, false));
            }
            (None, BridgeUse::Existing) => return Err(Error::InvalidArgument(format!("bridge {name} not found"))),
            (None, _) => {}
        }
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Address(bridge_mac(name).to_vec()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        match self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            // Someone else's, created in between.
            Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::EEXIST) => return Err(exists_not_ours()),
            r => r?,
        };
        let i =
            self.link_index(name)?.ok_or_else(|| Error::Netlink(format!("bridge {name} vanished after creation")))?;
        Ok((i, true))
    }

    pub fn set_up(&mut self, index: u32) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request("set link up", RouteNetlinkMessage::SetLink(msg), NLM_F_ACK).map(drop)
    }

    pub fn delete_link(&mut self, index: u32) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request("delete link", RouteNetlinkMessage::DelLink(msg), NLM_F_ACK).map(drop)
    }

    /// Deletes a bridge by name; a link that is gone already is fine, a link of that name that is not a bridge is
    /// left alone (refused).
    pub fn delete_bridge_named(&mut self, name: &str) -> Result<(), Error> {
        self.delete_named_if(name, InfoKind::Bridge, "bridge")
    }

    /// Deletes (the host end of) a veth pair by name, as [`Netlink::delete_bridge_named`] a bridge.
    pub fn delete_veth_named(&mut self, name: &str) -> Result<(), Error> {
        self.delete_named_if(name, InfoKind::Veth, "veth")
    }

    fn delete_named_if(&mut self, name: &str, want: InfoKind, what: &str) -> Result<(), Error> {
        match self.link_kind(name)? {
            Some((i, Some(k))) if k == want => match self.delete_link(i) {
                Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
                r => r,
            },
            Some(_) => Err(Error::Conflict(format!("interface {name} is not a {what}: not deleting it"))),
            None => Ok(()),
        }
    }

    /// Creates a veth pair: `host` (up, enslaved to `bridge`) here, `peer` (down, with `mac`) directly in the network
    /// namespace open at `peer_ns`, so its name never clashes with the host's interfaces.
    pub fn create_veth(
        &mut self,
        host: &str,
        bridge: u32,
        peer: &str,
        peer_ns: RawFd,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<(), Error> {
        // The peer cannot be brought up here: while it is created its other end does not exist yet (ENOTCONN).
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::Address(mac.to_vec()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_ns));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(bridge));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            &format!("create veth {host}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The IPv4 addresses (with prefix lengths) of a link.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
        Ok(self.all_addresses()?.into_iter().filter(|(i, _, _)| *i == index).map(|(_, ip, p)| (ip, p)).collect())
    }

    /// Every IPv4 address of this namespace: (link index, address, prefix length).
    pub fn all_addresses(&mut self) -> Result<Vec<(u32, Ipv4Addr, u8)>, Error> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let answers = self.request("list addresses", RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip))
                    | AddressAttribute::Address(std::net::IpAddr::V4(ip)) => {
                        Some((a.header.index, *ip, a.header.prefix_len))
                    }
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Adds an IPv4 address to a link; an address it has already is fine.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), Error> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip.into()));
        msg.attributes.push(AddressAttribute::Address(ip.into()));
        if prefix < 31 {
            let bcast = u32::from(ip) | (u32::MAX >> prefix);
            msg.attributes.push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
        }
        match self.request(
            &format!("add address {ip}/{prefix}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(Error::Os(_, e)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Removes an IPv4 address from a link.
    pub fn delete_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), Error> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip.into()));
        self.request(&format!("delete address {ip}"), RouteNetlinkMessage::DelAddress(msg), NLM_F_ACK).map(drop)
    }

    /// Adds the default route via `gateway` on link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> Result<(), Error> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(
            &format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

/// A locally administered unicast MAC address derived from a bridge's name.
fn bridge_mac(name: &str) -> [u8; 6] {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let v = h.finish().to_be_bytes();
    [0x02, v[1], v[2], v[3], v[4], v[5]]
}
