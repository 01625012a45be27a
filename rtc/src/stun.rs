//! Server-reflexive candidates: a STUN Binding request (RFC 8489 §5, no
//! authentication, as a public STUN server takes it) to each configured server,
//! sent from the peer's own UDP socket, whose XOR-MAPPED-ADDRESS (§14.2; or the
//! MAPPED-ADDRESS of an RFC 3489 server, §14.1) is the address a NAT gave that
//! socket: a srflx candidate (RFC 8445 §5.1.1.2).
//!
//! Requests are resent after 500 ms, doubling (RFC 8489 §6.2.1), and a server
//! that has not answered within the bounded wait (`timeout`) is given up: the
//! peer goes on with its other candidates. Answers are matched by source address
//! and transaction id; anything else goes on to str0m.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The magic cookie of every RFC 5389/8489 message.
const MAGIC: u32 = 0x2112_A442;
/// RFC 8489 §6.2.1: the first retransmission timeout.
const RTO: Duration = Duration::from_millis(500);
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

struct Query {
    server: SocketAddr,
    id: [u8; 12],
    next: Instant,
    rto: Duration,
    done: bool,
}

/// The Binding requests of one peer, until each is answered or given up.
pub struct Gatherer {
    queries: Vec<Query>,
    deadline: Instant,
}

/// What a datagram was to the gatherer.
pub enum Answer {
    /// Not an answer to one of our requests: str0m's.
    NotOurs,
    /// An answer without a usable address (an error response, or no address).
    Nothing,
    /// The server saw our socket as this address.
    Mapped(SocketAddr),
}

impl Gatherer {
    /// Ask each of `servers`, the first time at `now`; give up at `now + timeout`.
    pub fn new(servers: &[SocketAddr], now: Instant, timeout: Duration) -> Gatherer {
        Gatherer {
            queries: servers
                .iter()
                .map(|server| Query {
                    server: *server,
                    id: transaction_id(),
                    next: now,
                    rto: RTO,
                    done: false,
                })
                .collect(),
            deadline: now + timeout,
        }
    }

    /// Whether every request was answered or given up.
    pub fn finished(&self) -> bool {
        self.queries.iter().all(|q| q.done)
    }

    /// The requests due at `now` (first sends and resends), as (datagram, server).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        for query in &mut self.queries {
            if query.done {
                continue;
            }
            if now >= self.deadline {
                query.done = true;
                continue;
            }
            if now >= query.next {
                out.push((request(&query.id), query.server));
                query.next = now + query.rto;
                query.rto *= 2;
            }
        }
    }

    /// When `poll` is due next (None once finished).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.queries
            .iter()
            .filter(|q| !q.done)
            .map(|q| q.next.min(self.deadline))
            .min()
    }

    /// Look at a datagram from `source`: an answer to one of our requests?
    pub fn handle(&mut self, source: SocketAddr, data: &[u8]) -> Answer {
        if data.len() < 20 || data[0] & 0xC0 != 0 {
            return Answer::NotOurs;
        }
        let kind = u16::from_be_bytes([data[0], data[1]]);
        let length = u16::from_be_bytes([data[2], data[3]]) as usize;
        let cookie = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        if cookie != MAGIC || 20 + length > data.len() {
            return Answer::NotOurs;
        }
        let id = &data[8..20];
        let Some(query) = self
            .queries
            .iter_mut()
            .find(|q| !q.done && q.server == source && q.id == id)
        else {
            return Answer::NotOurs;
        };
        if kind != BINDING_SUCCESS && kind != BINDING_ERROR {
            return Answer::NotOurs;
        }
        query.done = true;
        if kind == BINDING_ERROR {
            return Answer::Nothing;
        }
        match mapped(&data[20..20 + length], &query.id) {
            Some(address) => Answer::Mapped(address),
            None => Answer::Nothing,
        }
    }
}

/// A Binding request without attributes (RFC 8489 §5: header only).
fn request(id: &[u8; 12]) -> Vec<u8> {
    let mut message = Vec::with_capacity(20);
    message.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(&MAGIC.to_be_bytes());
    message.extend_from_slice(id);
    message
}

/// The XOR-MAPPED-ADDRESS of a response's attributes, else its MAPPED-ADDRESS.
fn mapped(mut attributes: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    let mut plain = None;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let length = u16::from_be_bytes([attributes[2], attributes[3]]) as usize;
        let padded = (length + 3) & !3;
        if attributes.len() < 4 + length {
            return plain;
        }
        let value = &attributes[4..4 + length];
        if kind == XOR_MAPPED_ADDRESS {
            if let Some(address) = address(value, Some(id)) {
                return Some(address);
            }
        } else if kind == MAPPED_ADDRESS && plain.is_none() {
            plain = address(value, None);
        }
        attributes = &attributes[(4 + padded).min(attributes.len())..];
    }
    plain
}

/// An address attribute's value (RFC 8489 §14.1, §14.2); XORed when `id` is given.
fn address(value: &[u8], id: Option<&[u8; 12]>) -> Option<SocketAddr> {
    if value.len() < 4 {
        return None;
    }
    let mut port = u16::from_be_bytes([value[2], value[3]]);
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC.to_be_bytes());
    if let Some(id) = id {
        port ^= (MAGIC >> 16) as u16;
        key[4..].copy_from_slice(id);
    }
    let xor = |bytes: &[u8]| -> Vec<u8> {
        bytes
            .iter()
            .zip(key.iter())
            .map(|(b, k)| if id.is_some() { b ^ k } else { *b })
            .collect()
    };
    let ip = match (value[1], value.len()) {
        (0x01, 8) => {
            let b = xor(&value[4..8]);
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        (0x02, 20) => {
            let b: [u8; 16] = xor(&value[4..20]).try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// 96 random bits (RFC 8489 §5 wants them cryptographically random: getrandom(2)).
fn transaction_id() -> [u8; 12] {
    let mut id = [0u8; 12];
    #[cfg(target_os = "linux")]
    {
        // SAFETY: writes at most 12 bytes into `id`.
        let got = unsafe { libc::getrandom(id.as_mut_ptr() as *mut libc::c_void, id.len(), 0) };
        if got == id.len() as isize {
            return id;
        }
    }
    use std::hash::{BuildHasher, Hasher};
    for chunk in id.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(Instant::now().elapsed().as_nanos());
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_rfc5769_ipv4_response() {
        // RFC 5769 §2.2's sample response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
        let id = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let attribute = [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        let address = address(&attribute, Some(&id)).unwrap();
        assert_eq!(address, "192.0.2.1:32853".parse().unwrap());
    }
}
