//! `unisockets._rtc`: one WebRTC peer connection (str0m) as a sans-IO object for Python.
//!
//! A [`Peer`] wraps a `str0m::Rtc` and the one UDP socket its host candidate
//! names. It never blocks and starts no thread: the Python side waits until
//! the socket is readable or the next timeout comes (`fileno()` and the delay
//! every call returns), then calls [`Peer::poll_io`], which reads what is
//! there, feeds it to str0m, sends what str0m outputs and hands back the
//! events. Every call that changes the peer (an SDP step, a send, a channel
//! opened or closed) drains str0m's output right away, as str0m requires
//! ("every mutation must be followed by a full drain", `str0m::Rtc`).
//!
//! The GIL is released while str0m works (crypto, SCTP, the socket calls).
//! Nothing panics across the boundary: every call runs under `catch_unwind`,
//! and a panic becomes an `InternalError` and kills the peer (later calls raise
//! it again), so a bad datagram or SDP can only ever raise our typed errors.

mod stun;
mod udp;

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

create_exception!(
    _rtc,
    RtcError,
    PyException,
    "Base of every error the native WebRTC core raises."
);
create_exception!(
    _rtc,
    SdpError,
    RtcError,
    "An SDP that does not parse or cannot be applied."
);
create_exception!(
    _rtc,
    CandidateError,
    RtcError,
    "An ICE candidate that does not parse."
);
create_exception!(
    _rtc,
    ChannelError,
    RtcError,
    "No such data channel, or it cannot take the call."
);
create_exception!(
    _rtc,
    StateError,
    RtcError,
    "The call does not fit the peer's state (closed, no offer pending)."
);
create_exception!(
    _rtc,
    InternalError,
    RtcError,
    "str0m failed or panicked: the peer is dead."
);

/// Datagrams read per `poll_io` call at most (the rest wait for the next call).
const MAX_BATCH: usize = 256;

/// What str0m told us, kept until Python takes it.
enum Ev {
    Ice(&'static str),
    Connected,
    Open(u64, String, String),
    Data(u64, Vec<u8>),
    Close(u64),
    Low(u64),
    Closed,
    Candidate(String),
}

enum Fault {
    Sdp(String),
    Candidate(String),
    Channel(String),
    State(String),
    Internal(String),
}

impl Fault {
    fn into_py(self) -> PyErr {
        match self {
            Fault::Sdp(m) => SdpError::new_err(m),
            Fault::Candidate(m) => CandidateError::new_err(m),
            Fault::Channel(m) => ChannelError::new_err(m),
            Fault::State(m) => StateError::new_err(m),
            Fault::Internal(m) => InternalError::new_err(m),
        }
    }
}

struct Inner {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    ids: HashMap<u64, ChannelId>,
    numbers: HashMap<ChannelId, u64>,
    next_number: u64,
    events: VecDeque<Ev>,
    timeout: Instant,
    /// `udp::SLOTS` receive slots of `udp::SLOT` bytes, for one `recvmmsg`.
    buffer: Vec<u8>,
    /// The datagrams str0m output since the last flush (one `sendmmsg` at the end of a call).
    out: Vec<(Vec<u8>, SocketAddr)>,
    dead: Option<String>,
    /// The STUN Binding requests still waiting for an answer (None once all are done).
    gatherer: Option<stun::Gatherer>,
    /// Our srflx candidates so far ("candidate:..." lines).
    reflexive: Vec<String>,
    datagrams_in: u64,
    datagrams_out: u64,
    send_errors: u64,
    last_heard: Instant,
}

impl Inner {
    fn check_alive(&self) -> Result<(), Fault> {
        match &self.dead {
            Some(why) => Err(Fault::Internal(why.clone())),
            None => Ok(()),
        }
    }

    fn number_of(&mut self, id: ChannelId) -> u64 {
        if let Some(n) = self.numbers.get(&id) {
            return *n;
        }
        let n = self.next_number;
        self.next_number += 1;
        self.ids.insert(n, id);
        self.numbers.insert(id, n);
        n
    }

    fn channel_id(&self, number: u64) -> Result<ChannelId, Fault> {
        self.ids
            .get(&number)
            .copied()
            .ok_or_else(|| Fault::Channel(format!("no data channel {number}")))
    }

    /// Send the queued transmits (one `sendmmsg`), as the last step of every call.
    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let (sent, failed) = udp::send_many(&self.socket, &mut self.out);
        self.datagrams_out += sent;
        self.send_errors += failed;
    }

    /// Drain str0m's output: queue the transmits (see `flush`) and the events, keep the timeout.
    fn drain(&mut self) -> Result<(), Fault> {
        loop {
            let output = self
                .rtc
                .poll_output()
                .map_err(|e| Fault::Internal(format!("str0m: {e}")))?;
            match output {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => self.out.push((t.contents.into(), t.destination)),
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected => self.events.push_back(Ev::Connected),
            Event::IceConnectionStateChange(state) => self.events.push_back(Ev::Ice(match state {
                IceConnectionState::New => "new",
                IceConnectionState::Checking => "checking",
                IceConnectionState::Connected => "connected",
                IceConnectionState::Completed => "completed",
                IceConnectionState::Disconnected => "disconnected",
            })),
            Event::ChannelOpen(id, label) => {
                let protocol = self
                    .rtc
                    .channel(id)
                    .and_then(|c| c.config().map(|c| c.protocol.clone()))
                    .unwrap_or_default();
                let n = self.number_of(id);
                self.events.push_back(Ev::Open(n, label, protocol));
            }
            Event::ChannelData(data) => {
                let n = self.number_of(data.id);
                self.events.push_back(Ev::Data(n, data.data));
            }
            Event::ChannelClose(id) => {
                let n = self.number_of(id);
                self.ids.remove(&n);
                self.numbers.remove(&id);
                self.events.push_back(Ev::Close(n));
            }
            Event::ChannelBufferedAmountLow(id) => {
                let n = self.number_of(id);
                self.events.push_back(Ev::Low(n));
            }
            Event::Closed => self.events.push_back(Ev::Closed),
            _ => {}
        }
    }

    fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> Result<(), Fault> {
        self.datagrams_in += 1;
        if let Some(gatherer) = self.gatherer.as_mut() {
            match gatherer.handle(source, data) {
                stun::Answer::NotOurs => {}
                stun::Answer::Nothing => return Ok(()),
                stun::Answer::Mapped(address) => return self.add_reflexive(address),
            }
        }
        // A datagram that is not STUN, DTLS, RTP or RTCP, or not ours, is dropped
        // (anyone can send to a UDP port).
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return Ok(());
        };
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            return Ok(());
        }
        self.last_heard = now;
        if let Err(e) = self.rtc.handle_input(input) {
            // Bad bytes from the network fail that datagram, not the peer.
            log_drop(&e);
        }
        self.drain()
    }

    /// A STUN server saw our socket as `address`: a srflx candidate (RFC 8445 §5.1.1.2),
    /// trickled as a "candidate" event unless str0m finds it redundant (the same as
    /// the host candidate: no NAT between us and the server).
    fn add_reflexive(&mut self, address: SocketAddr) -> Result<(), Fault> {
        let Ok(candidate) = Candidate::server_reflexive(address, self.local, "udp") else {
            return Ok(()); // an address ICE cannot use (unspecified, multicast)
        };
        if let Some(added) = self.rtc.add_local_candidate(candidate) {
            let line = added.to_sdp_string();
            self.reflexive.push(line.clone());
            self.events.push_back(Ev::Candidate(line));
        }
        self.drain()
    }

    /// Send the STUN requests due at `now`; forget the gatherer once it is done.
    fn gather(&mut self, now: Instant) {
        if let Some(gatherer) = self.gatherer.as_mut() {
            gatherer.poll(now, &mut self.out);
            if gatherer.finished() {
                self.gatherer = None;
            }
        }
    }

    /// Read up to `max` datagrams, a `recvmmsg` batch at a time, and hand each to str0m.
    fn poll_io(&mut self, max: usize) -> Result<(), Fault> {
        self.check_alive()?;
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut batch = Vec::with_capacity(udp::SLOTS);
        let mut left = max;
        let mut result = Ok(());
        while left > 0 && result.is_ok() {
            let slots = left.min(udp::SLOTS);
            batch.clear();
            let got =
                match udp::recv_many(&self.socket, &mut buffer[..slots * udp::SLOT], &mut batch) {
                    Ok(got) => got,
                    // ICMP port unreachable and the like: the peer may be gone; ICE tells.
                    Err(_) => {
                        left -= 1;
                        continue;
                    }
                };
            let now = Instant::now();
            for &(slot, len, source) in &batch {
                let start = slot * udp::SLOT;
                result = self.receive(now, source, &buffer[start..start + len]);
                if result.is_err() {
                    break;
                }
            }
            if got < slots {
                break; // the socket is empty
            }
            left -= got;
        }
        self.buffer = buffer;
        result?;
        let now = Instant::now();
        self.gather(now);
        if now >= self.timeout {
            self.rtc
                .handle_input(Input::Timeout(now))
                .map_err(|e| Fault::Internal(format!("str0m: {e}")))?;
            self.drain()?;
        }
        Ok(())
    }

    fn handle_datagrams(&mut self, batch: &[(Vec<u8>, SocketAddr)]) -> Result<(), Fault> {
        self.check_alive()?;
        for (data, source) in batch {
            self.receive(Instant::now(), *source, data)?;
        }
        Ok(())
    }

    fn delay(&self) -> f64 {
        let due = match self
            .gatherer
            .as_ref()
            .and_then(stun::Gatherer::next_timeout)
        {
            Some(stun) => stun.min(self.timeout),
            None => self.timeout,
        };
        due.saturating_duration_since(Instant::now())
            .min(Duration::from_secs(3600))
            .as_secs_f64()
    }
}

fn log_drop(_e: &str0m::RtcError) {}

fn channel_config(
    label: String,
    protocol: String,
    ordered: bool,
    max_retransmits: Option<u16>,
) -> ChannelConfig {
    ChannelConfig {
        label,
        ordered,
        reliability: match max_retransmits {
            None => Reliability::Reliable,
            Some(n) => Reliability::MaxRetransmits { retransmits: n },
        },
        negotiated: None,
        protocol,
    }
}

/// One WebRTC peer connection with its UDP socket (see the module docs).
///
/// `Peer(host)` binds a UDP socket to `host` (an IP address, e.g. "127.0.0.1")
/// on a free port and makes it the peer's one host candidate.
#[pyclass(module = "unisockets._rtc")]
struct Peer {
    inner: Mutex<Inner>,
}

impl Peer {
    /// Run `f` on the inner state without the GIL, under `catch_unwind`.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Inner) -> Result<T, Fault> + Send,
    ) -> PyResult<T> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let inner: &mut Inner = &mut guard;
        py.detach(move || {
            if let Some(why) = &inner.dead {
                return Err(Fault::Internal(why.clone()));
            }
            match catch_unwind(AssertUnwindSafe(|| {
                let result = f(&mut *inner);
                inner.flush(); // what the call made str0m output leaves in one sendmmsg
                result
            })) {
                Ok(result) => result,
                Err(panic) => {
                    let text = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    let why = format!("the WebRTC core panicked: {text}");
                    inner.dead = Some(why.clone());
                    Err(Fault::Internal(why))
                }
            }
        })
        .map_err(Fault::into_py)
    }

    fn take_events<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, f64)> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let list = PyList::empty(py);
        while let Some(ev) = guard.events.pop_front() {
            let item: Bound<'py, PyTuple> = match ev {
                Ev::Ice(state) => PyTuple::new(
                    py,
                    [
                        ("ice").into_pyobject(py)?.into_any(),
                        state.into_pyobject(py)?.into_any(),
                    ],
                )?,
                Ev::Connected => PyTuple::new(py, [("connected").into_pyobject(py)?.into_any()])?,
                Ev::Open(n, label, protocol) => PyTuple::new(
                    py,
                    [
                        "open".into_pyobject(py)?.into_any(),
                        n.into_pyobject(py)?.into_any(),
                        label.into_pyobject(py)?.into_any(),
                        protocol.into_pyobject(py)?.into_any(),
                    ],
                )?,
                Ev::Data(n, data) => PyTuple::new(
                    py,
                    [
                        "data".into_pyobject(py)?.into_any(),
                        n.into_pyobject(py)?.into_any(),
                        PyBytes::new(py, &data).into_any(),
                    ],
                )?,
                Ev::Close(n) => PyTuple::new(
                    py,
                    [
                        "close".into_pyobject(py)?.into_any(),
                        n.into_pyobject(py)?.into_any(),
                    ],
                )?,
                Ev::Low(n) => PyTuple::new(
                    py,
                    [
                        "low".into_pyobject(py)?.into_any(),
                        n.into_pyobject(py)?.into_any(),
                    ],
                )?,
                Ev::Closed => PyTuple::new(py, ["closed".into_pyobject(py)?.into_any()])?,
                Ev::Candidate(line) => PyTuple::new(
                    py,
                    [
                        "candidate".into_pyobject(py)?.into_any(),
                        line.into_pyobject(py)?.into_any(),
                    ],
                )?,
            };
            list.append(item)?;
        }
        let delay = guard.delay();
        Ok((list, delay))
    }
}

/// str0m's initial STUN retransmission timeout (its default).
const INITIAL_STUN_RTO: Duration = Duration::from_millis(250);

/// The STUN timing that makes ICE give a connected pair up after about `lifetime` s.
///
/// A pair is checked every `max_rto` (= `interval`); unanswered, the check is
/// resent after 250 ms, doubling up to `max_rto`, and the pair is dropped when
/// the retransmits run out: `is`'s `StunTiming::timeout` is the sum of the
/// delays. Returns the smallest retransmit count whose timeout reaches `lifetime`.
fn stun_timing(interval: f64, lifetime: f64) -> (Duration, usize) {
    let max_rto = Duration::from_secs_f64(interval).max(INITIAL_STUN_RTO);
    let delay = |n: usize| -> Duration {
        let shift = (n.saturating_sub(1)).min(20) as u32;
        (INITIAL_STUN_RTO * 2u32.pow(shift)).min(max_rto)
    };
    let goal = Duration::from_secs_f64(lifetime);
    let mut retransmits = 2;
    while retransmits < 1000 {
        let total: Duration = (2..=retransmits).map(delay).sum::<Duration>() + delay(retransmits);
        if total >= goal {
            break;
        }
        retransmits += 1;
    }
    (max_rto, retransmits)
}

fn parse_addr(host: &str, port: u16) -> Result<SocketAddr, Fault> {
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| Fault::Candidate(format!("not an IP address: {host:?}")))?;
    Ok(SocketAddr::new(ip, port))
}

#[pymethods]
impl Peer {
    /// `Peer(host, consent_interval=5.0, consent_lifetime=30.0, stun_servers=[],
    /// stun_timeout=4.0)`: the UDP socket binds `host`; ICE checks a connected pair
    /// every `consent_interval` s and declares it disconnected once no check was
    /// answered for about `consent_lifetime` s (RFC 7675). Each of `stun_servers`
    /// ((ip, port) pairs) gets a STUN Binding request from that socket; an answer
    /// within `stun_timeout` s adds a srflx candidate ("candidate" event).
    #[new]
    #[pyo3(signature = (
        host,
        consent_interval = 5.0,
        consent_lifetime = 30.0,
        stun_servers = Vec::new(),
        stun_timeout = 4.0,
    ))]
    fn new(
        py: Python<'_>,
        host: &str,
        consent_interval: f64,
        consent_lifetime: f64,
        stun_servers: Vec<(String, u16)>,
        stun_timeout: f64,
    ) -> PyResult<Self> {
        if !(consent_interval.is_finite()
            && consent_interval > 0.0
            && consent_lifetime.is_finite()
            && consent_lifetime > 0.0)
        {
            return Err(RtcError::new_err(
                "consent_interval and consent_lifetime must be positive seconds",
            ));
        }
        if !(stun_timeout.is_finite() && stun_timeout >= 0.0) {
            return Err(RtcError::new_err("stun_timeout must be seconds, >= 0"));
        }
        let mut servers = Vec::with_capacity(stun_servers.len());
        for (ip, port) in &stun_servers {
            servers.push(parse_addr(ip, *port).map_err(Fault::into_py)?);
        }
        let (max_rto, retransmits) =
            stun_timing(consent_interval.min(3600.0), consent_lifetime.min(86400.0));
        let addr = parse_addr(host, 0).map_err(Fault::into_py)?;
        let socket = UdpSocket::bind(addr)
            .map_err(|e| RtcError::new_err(format!("cannot bind a UDP socket on {host}: {e}")))?;
        socket.set_nonblocking(true).map_err(|e| {
            RtcError::new_err(format!("cannot make the UDP socket non-blocking: {e}"))
        })?;
        udp::enlarge_buffers(&socket);
        let local = socket
            .local_addr()
            .map_err(|e| RtcError::new_err(format!("no local address: {e}")))?;
        let made = py.detach(move || {
            catch_unwind(AssertUnwindSafe(move || -> Result<Inner, Fault> {
                let now = Instant::now();
                let mut config = Rtc::builder();
                config.set_max_stun_rto(max_rto);
                config.set_max_stun_retransmits(retransmits);
                let mut rtc = config.build(now);
                let candidate = Candidate::host(local, "udp")
                    .map_err(|e| Fault::Candidate(format!("bad host candidate {local}: {e}")))?;
                rtc.add_local_candidate(candidate);
                // Only servers of the socket's family can answer it.
                servers.retain(|s| s.is_ipv4() == local.is_ipv4());
                let gatherer = (!servers.is_empty()).then(|| {
                    stun::Gatherer::new(
                        &servers,
                        now,
                        Duration::from_secs_f64(stun_timeout.min(60.0)),
                    )
                });
                let mut inner = Inner {
                    rtc,
                    socket,
                    local,
                    pending: None,
                    ids: HashMap::new(),
                    numbers: HashMap::new(),
                    next_number: 1,
                    events: VecDeque::new(),
                    timeout: now,
                    buffer: vec![0; udp::SLOT * udp::SLOTS],
                    out: Vec::new(),
                    dead: None,
                    datagrams_in: 0,
                    datagrams_out: 0,
                    send_errors: 0,
                    last_heard: now,
                    gatherer,
                    reflexive: Vec::new(),
                };
                inner.gather(now); // the first requests leave at once
                inner.flush();
                Ok(inner)
            }))
            .unwrap_or_else(|_| {
                Err(Fault::Internal(
                    "the WebRTC core panicked at creation".into(),
                ))
            })
        });
        let inner = made.map_err(Fault::into_py)?;
        Ok(Peer {
            inner: Mutex::new(inner),
        })
    }

    /// The UDP socket's file descriptor (wait until it is readable, then call poll_io).
    fn fileno(&self) -> PyResult<i64> {
        use std::os::fd::AsRawFd;
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        Ok(guard.socket.as_raw_fd() as i64)
    }

    /// The UDP socket's address: (host, port).
    #[getter]
    fn local_address(&self) -> PyResult<(String, u16)> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        Ok((guard.local.ip().to_string(), guard.local.port()))
    }

    /// Our candidate lines ("candidate:..."): the host one, then the srflx ones found so far.
    fn local_candidates(&self) -> PyResult<Vec<String>> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        let c = Candidate::host(guard.local, "udp")
            .map_err(|e| CandidateError::new_err(e.to_string()))?;
        let mut lines = vec![c.to_sdp_string()];
        lines.extend(guard.reflexive.iter().cloned());
        Ok(lines)
    }

    /// Make an offer with one data channel (label, DCEP sub-protocol); returns (sdp, channel).
    fn create_offer(
        &self,
        py: Python<'_>,
        label: String,
        protocol: String,
    ) -> PyResult<(String, u64)> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let mut change = inner.rtc.sdp_api();
            let id = change.add_channel_with_config(channel_config(label, protocol, true, None));
            let (offer, pending) = change
                .apply()
                .ok_or_else(|| Fault::State("nothing to offer".into()))?;
            inner.pending = Some(pending);
            let n = inner.number_of(id);
            inner.drain()?;
            Ok((offer.to_sdp_string(), n))
        })
    }

    /// Take the peer's offer; returns our answer's SDP.
    fn accept_offer(&self, py: Python<'_>, sdp: String) -> PyResult<String> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let offer = SdpOffer::from_sdp_string(&sdp)
                .map_err(|e| Fault::Sdp(format!("bad offer: {e}")))?;
            let answer = inner
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| Fault::Sdp(format!("cannot accept the offer: {e}")))?;
            inner.drain()?;
            Ok(answer.to_sdp_string())
        })
    }

    /// Take the peer's answer to our offer.
    fn accept_answer(&self, py: Python<'_>, sdp: String) -> PyResult<()> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let answer = SdpAnswer::from_sdp_string(&sdp)
                .map_err(|e| Fault::Sdp(format!("bad answer: {e}")))?;
            let pending = inner
                .pending
                .take()
                .ok_or_else(|| Fault::State("no offer of ours is pending".into()))?;
            inner
                .rtc
                .sdp_api()
                .accept_answer(pending, answer)
                .map_err(|e| Fault::Sdp(format!("cannot accept the answer: {e}")))?;
            inner.drain()
        })
    }

    /// Add one of the peer's ICE candidates (its "candidate:..." line, with or without "a=").
    fn add_remote_candidate(&self, py: Python<'_>, line: String) -> PyResult<()> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let text = line.trim().trim_start_matches("a=");
            let candidate = Candidate::from_sdp_string(text)
                .map_err(|e| Fault::Candidate(format!("bad candidate {text:?}: {e}")))?;
            inner.rtc.add_remote_candidate(candidate);
            inner.drain()
        })
    }

    /// Open a data channel (DCEP, in band); returns its number (its "open" event follows).
    #[pyo3(signature = (label, protocol = String::new(), ordered = true, max_retransmits = None))]
    fn open_channel(
        &self,
        py: Python<'_>,
        label: String,
        protocol: String,
        ordered: bool,
        max_retransmits: Option<u16>,
    ) -> PyResult<u64> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let id = inner.rtc.direct_api().create_data_channel(channel_config(
                label,
                protocol,
                ordered,
                max_retransmits,
            ));
            let n = inner.number_of(id);
            inner.drain()?;
            Ok(n)
        })
    }

    /// Close a data channel (its SCTP stream is reset once what was sent left).
    fn close_channel(&self, py: Python<'_>, channel: u64) -> PyResult<()> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let Ok(id) = inner.channel_id(channel) else {
                return Ok(()); // closed already
            };
            inner.rtc.direct_api().close_data_channel(id);
            inner.drain()
        })
    }

    /// Send one binary message; False when the SCTP send buffer has no room (try again later).
    fn send(&self, py: Python<'_>, channel: u64, data: &[u8]) -> PyResult<bool> {
        self.with(py, move |inner| {
            inner.check_alive()?;
            let id = inner.channel_id(channel)?;
            let Some(mut ch) = inner.rtc.channel(id) else {
                return Err(Fault::Channel(format!(
                    "data channel {channel} is not open"
                )));
            };
            let accepted = ch.write(true, data).map_err(|e| {
                Fault::Channel(format!("cannot send on data channel {channel}: {e}"))
            })?;
            inner.drain()?;
            Ok(accepted)
        })
    }

    /// Send messages in order until the SCTP send buffer refuses one (one call for a
    /// pipe's whole backlog: the GIL is released once, the datagrams leave in one
    /// `sendmmsg`).
    ///
    /// Returns (accepted, events, delay): how many of `messages` were taken (the
    /// rest wait for room), then as `events()`, so the caller needs no second call.
    fn send_many<'py>(
        &self,
        py: Python<'py>,
        channel: u64,
        messages: Vec<Bound<'py, PyBytes>>,
    ) -> PyResult<(usize, Bound<'py, PyList>, f64)> {
        let slices: Vec<&[u8]> = messages.iter().map(|m| m.as_bytes()).collect();
        let accepted = self.with(py, move |inner| {
            inner.check_alive()?;
            let id = inner.channel_id(channel)?;
            let mut accepted = 0;
            for data in slices {
                let Some(mut ch) = inner.rtc.channel(id) else {
                    return Err(Fault::Channel(format!(
                        "data channel {channel} is not open"
                    )));
                };
                let taken = ch.write(true, data).map_err(|e| {
                    Fault::Channel(format!("cannot send on data channel {channel}: {e}"))
                })?;
                inner.drain()?; // str0m: every mutation is followed by a full drain
                if !taken {
                    break;
                }
                accepted += 1;
            }
            Ok(accepted)
        })?;
        let (events, delay) = self.take_events(py)?;
        Ok((accepted, events, delay))
    }

    /// Bytes queued on the channel and not yet acknowledged by SCTP (0 if it is gone).
    fn buffered_amount(&self, py: Python<'_>, channel: u64) -> PyResult<usize> {
        self.with(py, move |inner| {
            let Ok(id) = inner.channel_id(channel) else {
                return Ok(0);
            };
            Ok(inner
                .rtc
                .channel(id)
                .map(|mut c| c.buffered_amount())
                .unwrap_or(0))
        })
    }

    /// Emit a "low" event when the channel's buffered amount falls to `threshold` bytes.
    fn set_low_threshold(&self, py: Python<'_>, channel: u64, threshold: usize) -> PyResult<()> {
        self.with(py, move |inner| {
            let id = inner.channel_id(channel)?;
            if let Some(mut c) = inner.rtc.channel(id) {
                c.set_buffered_amount_low_threshold(threshold);
            }
            Ok(())
        })
    }

    /// Read up to `max` datagrams from the socket, handle them and any due timeout.
    ///
    /// Returns (events, delay): the events since the last call, as tuples
    /// ("ice", state), ("connected",), ("open", channel, label, protocol),
    /// ("data", channel, bytes), ("close", channel), ("low", channel),
    /// ("closed",), ("candidate", line) (a srflx candidate to trickle); and the seconds until poll_io must be called again.
    #[pyo3(signature = (max = MAX_BATCH))]
    fn poll_io<'py>(&self, py: Python<'py>, max: usize) -> PyResult<(Bound<'py, PyList>, f64)> {
        self.with(py, move |inner| inner.poll_io(max))?;
        self.take_events(py)
    }

    /// Handle datagrams received elsewhere: a list of (bytes, (host, port)); then as poll_io.
    fn handle_datagrams<'py>(
        &self,
        py: Python<'py>,
        batch: Vec<(Vec<u8>, (String, u16))>,
    ) -> PyResult<(Bound<'py, PyList>, f64)> {
        let mut parsed = Vec::with_capacity(batch.len());
        for (data, (host, port)) in batch {
            parsed.push((data, parse_addr(&host, port).map_err(Fault::into_py)?));
        }
        self.with(py, move |inner| inner.handle_datagrams(&parsed))?;
        self.take_events(py)
    }

    /// The events queued by earlier calls, and the seconds until poll_io is due.
    fn events<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, f64)> {
        self.take_events(py)
    }

    /// Seconds since the peer last sent a datagram this peer connection accepted
    /// (STUN, DTLS: ICE consent checks and their answers included).
    fn silence(&self) -> PyResult<f64> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        Ok(guard.last_heard.elapsed().as_secs_f64())
    }

    /// Whether the peer connection still lives (not closed, not dead).
    fn is_alive(&self) -> PyResult<bool> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        Ok(guard.dead.is_none() && guard.rtc.is_alive())
    }

    /// Close the peer connection: SCTP SHUTDOWN and DTLS close_notify are sent
    /// at once (str0m's `Rtc::close`, without waiting for replies); idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, move |inner| {
            if inner.rtc.is_alive() {
                if inner.rtc.close().is_ok() {
                    for _ in 0..16 {
                        if inner.drain().is_err() || !inner.rtc.is_alive() {
                            break;
                        }
                        let now = Instant::now().max(inner.timeout);
                        if inner.rtc.handle_input(Input::Timeout(now)).is_err() {
                            break;
                        }
                    }
                }
                inner.rtc.disconnect();
            }
            let _ = inner.drain();
            Ok(())
        })
    }

    /// Counters: {"datagrams_in", "datagrams_out", "send_errors"}.
    fn stats(&self) -> PyResult<HashMap<&'static str, u64>> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| InternalError::new_err("poisoned"))?;
        Ok(HashMap::from([
            ("datagrams_in", guard.datagrams_in),
            ("datagrams_out", guard.datagrams_out),
            ("send_errors", guard.send_errors),
        ]))
    }
}

/// The module: `Peer` and the exception types.
#[pymodule]
fn _rtc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Peer>()?;
    m.add("RtcError", py.get_type::<RtcError>())?;
    m.add("SdpError", py.get_type::<SdpError>())?;
    m.add("CandidateError", py.get_type::<CandidateError>())?;
    m.add("ChannelError", py.get_type::<ChannelError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("MAX_BATCH", MAX_BATCH)?;
    Ok(())
}
