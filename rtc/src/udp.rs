//! Batched UDP I/O: every datagram waiting read by one `recvmmsg(2)`, every datagram
//! due sent by one `sendmmsg(2)` (Linux); one `recv_from`/`send_to` per datagram
//! elsewhere.
//!
//! The kernel's per-call cost (the syscall, the socket lock, the wake-up) is paid
//! once per batch instead of once per datagram: a 16 KiB data-channel message is
//! about 14 datagrams of str0m's ~1,150 B MTU, plus the SACKs coming back.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Bytes per receive slot: more than any datagram a WebRTC peer sends (str0m,
/// aiortc and libwebrtc keep them under ~1,200 B, RFC 8261 §5). A longer
/// datagram is truncated by the kernel and dropped here (it is not ours).
pub const SLOT: usize = 2048;
/// Receive slots per `recvmmsg` call.
pub const SLOTS: usize = 64;
/// The socket buffers asked for (the kernel caps them at `net.core.{r,w}mem_max`):
/// a burst of SCTP's window (up to 128 KiB of payload, twice that in kernel
/// accounting on loopback) must not overflow the default ~208 KiB while the
/// reading task waits for its turn.
pub const SOCKET_BUFFER: usize = 2 * 1024 * 1024;

/// Enlarge the socket's send and receive buffers (best effort: errors are ignored).
pub fn enlarge_buffers(socket: &UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = socket.as_raw_fd();
        let size = SOCKET_BUFFER as libc::c_int;
        for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: a valid fd and a c_int option value of the right length.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    option,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Read the datagrams waiting on the non-blocking `socket`, at most `buffer.len() / SLOT`.
///
/// Datagram `i` lands in `buffer[i * SLOT..]`; `out` gets `(slot, length, source)`
/// for each one kept (truncated ones and unknown address families are skipped).
/// Returns how many datagrams the kernel handed over (0 when none was waiting).
/// Errors other than "would block" are returned (ICMP errors queued on the socket).
#[cfg(target_os = "linux")]
pub fn recv_many(
    socket: &UdpSocket,
    buffer: &mut [u8],
    out: &mut Vec<(usize, usize, SocketAddr)>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let slots = buffer.len() / SLOT;
    if slots == 0 {
        return Ok(0);
    }
    // SAFETY: sockaddr_storage and mmsghdr are plain C structs; all zero is valid.
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; slots];
    let mut iovs: Vec<libc::iovec> = buffer
        .chunks_exact_mut(SLOT)
        .map(|chunk| libc::iovec {
            iov_base: chunk.as_mut_ptr() as *mut libc::c_void,
            iov_len: SLOT,
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(slots);
    for i in 0..slots {
        // SAFETY: as above.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = &mut names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
        header.msg_hdr.msg_namelen =
            std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        header.msg_hdr.msg_iov = &mut iovs[i];
        header.msg_hdr.msg_iovlen = 1;
        headers.push(header);
    }
    // SAFETY: every header points at a live name and iovec of the right length,
    // and every iovec at SLOT bytes of `buffer`, all of which outlive the call.
    let got = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            slots as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(error);
    }
    let got = got as usize;
    for (i, header) in headers.iter().enumerate().take(got) {
        if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            continue;
        }
        if let Some(source) = address_of(&names[i]) {
            out.push((i, header.msg_len as usize, source));
        }
    }
    Ok(got)
}

/// As the Linux `recv_many`, one `recv_from` per datagram.
#[cfg(not(target_os = "linux"))]
pub fn recv_many(
    socket: &UdpSocket,
    buffer: &mut [u8],
    out: &mut Vec<(usize, usize, SocketAddr)>,
) -> io::Result<usize> {
    let mut got = 0;
    for (i, chunk) in buffer.chunks_exact_mut(SLOT).enumerate() {
        match socket.recv_from(chunk) {
            Ok((len, source)) => {
                got += 1;
                if len <= SLOT {
                    out.push((i, len, source));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(got)
}

/// Send every datagram of `queue` (contents, destination) and empty it.
///
/// Returns (sent, failed): a datagram the kernel refuses (a full buffer, an
/// unreachable destination) is lost, as the network may lose it; SCTP
/// retransmits and ICE tells when a peer is gone.
#[cfg(target_os = "linux")]
pub fn send_many(socket: &UdpSocket, queue: &mut Vec<(Vec<u8>, SocketAddr)>) -> (u64, u64) {
    use std::os::fd::AsRawFd;
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut start = 0;
    while start < queue.len() {
        let batch = &queue[start..(start + 1024).min(queue.len())];
        // SAFETY: plain C structs; all zero is valid.
        let mut names: Vec<libc::sockaddr_storage> =
            vec![unsafe { std::mem::zeroed() }; batch.len()];
        let mut lengths = Vec::with_capacity(batch.len());
        for (i, (_, destination)) in batch.iter().enumerate() {
            lengths.push(write_address(*destination, &mut names[i]));
        }
        let mut iovs: Vec<libc::iovec> = batch
            .iter()
            .map(|(data, _)| libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            // SAFETY: as above.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name =
                &mut names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            header.msg_hdr.msg_namelen = lengths[i];
            header.msg_hdr.msg_iov = &mut iovs[i];
            header.msg_hdr.msg_iovlen = 1;
            headers.push(header);
        }
        let mut done = 0;
        while done < headers.len() {
            // SAFETY: every header points at a live name, iovec and datagram
            // (sendmmsg only reads the datagrams' bytes).
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers[done..].as_mut_ptr(),
                    (headers.len() - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                sent += r as u64;
                done += r as usize;
            } else {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                failed += 1; // the datagram at `done` is lost; go on with the next
                done += 1;
            }
        }
        start += batch.len();
    }
    queue.clear();
    (sent, failed)
}

/// As the Linux `send_many`, one `send_to` per datagram.
#[cfg(not(target_os = "linux"))]
pub fn send_many(socket: &UdpSocket, queue: &mut Vec<(Vec<u8>, SocketAddr)>) -> (u64, u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    for (data, destination) in queue.drain(..) {
        match socket.send_to(&data, destination) {
            Ok(_) => sent += 1,
            Err(_) => failed += 1,
        }
    }
    (sent, failed)
}

#[cfg(target_os = "linux")]
fn address_of(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match name.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (ss_family says so).
            let v4 =
                unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (ss_family says so).
            let v6 =
                unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
fn write_address(address: SocketAddr, name: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match address {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let v4 =
                unsafe { &mut *(name as *mut libc::sockaddr_storage as *mut libc::sockaddr_in) };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = a.port().to_be();
            v4.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
            let v6 =
                unsafe { &mut *(name as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6) };
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_port = a.port().to_be();
            v6.sin6_flowinfo = a.flowinfo();
            v6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            v6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}
