//! An rtnetlink socket that sends requests back to back and collects
//! their acknowledgements afterwards: the kernel handles a socket's
//! requests in order, so a host's link, addresses and routes cost one
//! round of system calls, not one process each.

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;

/// Requests sent before their acknowledgements are read: well within a
/// socket's receive buffer, even for error answers that quote the
/// request.
const MAX_IN_FLIGHT: usize = 256;

/// A request the kernel refused.
#[derive(Debug)]
pub struct Error {
    /// What was asked, as `ip` would say it (`addr add 10.0.0.1/24 dev 7`).
    pub request: String,
    pub source: io::Error,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` failed: {}", self.request, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Error {
        Error {
            request: "rtnetlink".to_owned(),
            source,
        }
    }
}

/// An address on a link, as a dump shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Link-local (`true`) or wider.
    pub link_scope: bool,
    /// Still in duplicate address detection.
    pub tentative: bool,
}

/// An rtnetlink socket in the namespace of the thread that opened it.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    /// Requests sent and not yet acknowledged: sequence number, and what
    /// each asked.
    waiting: Vec<(u32, String)>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl")
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            socket,
            seq: 0,
            waiting: Vec::new(),
            buf: vec![0; 64 * 1024],
        })
    }

    /// A request under the next sequence number, serialised.
    fn packet(&mut self, message: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        bytes
    }

    /// Sends one request that is acknowledged; `request` names it in an
    /// error.
    fn send(
        &mut self,
        request: String,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), Error> {
        if self.waiting.len() >= MAX_IN_FLIGHT {
            self.finish()?;
        }
        let bytes = self.packet(message, NLM_F_ACK | flags);
        self.socket.send(&bytes, 0).map_err(|source| Error {
            request: request.clone(),
            source,
        })?;
        self.waiting.push((self.seq, request));
        Ok(())
    }

    /// Waits for the acknowledgement of every request sent; the first
    /// refusal is the error (the rest are read all the same).
    pub fn finish(&mut self) -> Result<(), Error> {
        let mut first = None;
        while !self.waiting.is_empty() {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..n])
                else {
                    break;
                };
                let len = msg.header.length as usize;
                if let NetlinkPayload::Error(e) = &msg.payload {
                    let seq = msg.header.sequence_number;
                    if let Some(i) = self.waiting.iter().position(|(s, _)| *s == seq) {
                        let (_, request) = self.waiting.swap_remove(i);
                        if let (Some(code), None) = (e.code, &first) {
                            first = Some(Error {
                                request,
                                source: io::Error::from_raw_os_error(-code.get()),
                            });
                        }
                    }
                }
                if len == 0 {
                    break;
                }
                at += len.next_multiple_of(4);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Sets link `index` up, and its GSO size limit if given (`ip link
    /// set DEV up gso_max_size N`).
    pub fn set_up(&mut self, index: u32, gso_max_size: Option<u32>) -> Result<(), Error> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        let mut request = format!("ip link set {index} up");
        if let Some(size) = gso_max_size {
            m.attributes.push(LinkAttribute::GsoMaxSize(size));
            request += &format!(" gso_max_size {size}");
        }
        self.send(request, RouteNetlinkMessage::SetLink(m), 0)
    }

    /// Adds an address to link `index` (`ip addr add ADDR dev DEV`);
    /// `nodad` skips IPv6 duplicate address detection.
    pub fn add_address(&mut self, index: u32, addr: IpNet, nodad: bool) -> Result<(), Error> {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = addr.prefix_len();
        m.header.scope = AddressScope::Universe;
        m.header.family = family(addr.addr());
        if nodad {
            m.header.flags = AddressHeaderFlags::Nodad;
        }
        m.attributes.push(AddressAttribute::Local(addr.addr()));
        if let IpNet::V4(net) = addr {
            m.attributes.push(AddressAttribute::Address(addr.addr()));
            if net.prefix_len() < 31 {
                m.attributes
                    .push(AddressAttribute::Broadcast(net.broadcast()));
            }
        }
        self.send(
            format!("ip addr add {addr} dev {index}"),
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Adds a route to `to` through `via`, out of link `index` if given
    /// (`ip route add TO via VIA [dev DEV]`).
    pub fn add_route(&mut self, to: IpNet, via: IpAddr, index: Option<u32>) -> Result<(), Error> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(via);
        m.header.destination_prefix_length = to.prefix_len();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        if to.prefix_len() > 0 {
            m.attributes
                .push(RouteAttribute::Destination(route_address(to.addr())));
        }
        m.attributes
            .push(RouteAttribute::Gateway(route_address(via)));
        let mut request = format!("ip route add {to} via {via}");
        if let Some(i) = index {
            m.attributes.push(RouteAttribute::Oif(i));
            request += &format!(" dev {i}");
        }
        self.send(
            request,
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// The addresses of link `index` (`ip addr show dev DEV`).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<Address>, Error> {
        self.finish()?;
        let dump = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        let bytes = self.packet(dump, NLM_F_DUMP);
        self.socket.send(&bytes, 0)?;
        let mut found = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..n])
                else {
                    return Ok(found);
                };
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(e) => {
                        if let Some(code) = e.code {
                            return Err(Error {
                                request: "ip addr show".to_owned(),
                                source: io::Error::from_raw_os_error(-code.get()),
                            });
                        }
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a))
                        if a.header.index == index =>
                    {
                        let addr = a.attributes.iter().find_map(|x| match x {
                            AddressAttribute::Address(a) => Some(*a),
                            _ => None,
                        });
                        if let Some(addr) = addr {
                            found.push(Address {
                                addr,
                                prefix_len: a.header.prefix_len,
                                link_scope: a.header.scope == AddressScope::Link,
                                tentative: a.header.flags.contains(AddressHeaderFlags::Tentative),
                            });
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    return Ok(found);
                }
                at += len.next_multiple_of(4);
            }
        }
    }
}

fn family(a: IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_address(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}
