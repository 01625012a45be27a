// One peer of a two-process WebRTC benchmark over libdatachannel (npm node-datachannel)
// or libwebrtc (npm @roamhq/wrtc), driven by benchmarks/webrtc_stacks.py.
//
//   node peer.mjs <ndc|wrtc> <offer|answer>
//
// JSON lines on stdin/stdout; logs on stderr. Both peers print {"ready": {...}} first.
// Signalling goes through the parent (which may rewrite candidates to a lossy relay):
// each peer prints {"signal": {pc, sdp, type} | {pc, candidate, mid}} and takes the
// other's on stdin. Only host candidates (no ICE servers, no STUN).
//
// The answering peer serves every data channel as benchmarks/streams.py serves a stream:
// a first message "s" + 8-byte big-endian length makes a sink that answers "k" once that
// many bytes arrived; "e" makes it echo every later message.
// The offering peer takes {"run": {kind: "bulk"|"rtt"|"setup", ...}} and prints
// {"result": {...}} (seconds), or {"error": "..."}; each run sets up a fresh peer
// connection and closes it after. Every wait is bounded by the run's "timeout" (s).

import readline from "node:readline";

const [stack, role] = process.argv.slice(2);
const HIGH_WATER = 256 * 1024; // as benchmarks/raw_aiortc.py and our pipes
const LOW_WATER = 64 * 1024;

function out(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function log(...args) {
  process.stderr.write(`peer ${stack} ${role}: ${args.join(" ")}\n`);
}

let lib;
try {
  lib = stack === "ndc" ? (await import("node-datachannel")).default : (await import("@roamhq/wrtc")).default;
} catch (error) {
  out({ error: `cannot load ${stack}: ${error.message}` });
  process.exit(2);
}

// ---- one adapter per stack: a peer connection and its channels --------------------

class Channel {
  // A data channel seen the same way for both stacks.
  constructor() {
    this.onopen = () => {};
    this.onmessage = () => {};
    this.onlow = () => {};
  }
}

function ndcChannel(dc) {
  const ch = new Channel();
  ch.send = (buf) => dc.sendMessageBinary(buf);
  ch.buffered = () => dc.bufferedAmount();
  ch.close = () => dc.close();
  dc.setBufferedAmountLowThreshold(LOW_WATER);
  dc.onOpen(() => ch.onopen());
  dc.onMessage((msg) => ch.onmessage(typeof msg === "string" ? Buffer.from(msg) : msg));
  dc.onBufferedAmountLow(() => ch.onlow());
  ch.isOpen = () => dc.isOpen();
  return ch;
}

function wrtcChannel(dc) {
  const ch = new Channel();
  dc.binaryType = "arraybuffer";
  dc.bufferedAmountLowThreshold = LOW_WATER;
  ch.send = (buf) => dc.send(buf);
  ch.buffered = () => dc.bufferedAmount;
  ch.close = () => dc.close();
  dc.onopen = () => ch.onopen();
  dc.onmessage = (event) => ch.onmessage(Buffer.from(event.data));
  dc.onbufferedamountlow = () => ch.onlow();
  ch.isOpen = () => dc.readyState === "open";
  return ch;
}

function newPeer(id, onChannel) {
  // A peer connection whose signals are printed; returns {createChannel, signal, close}.
  const signal = (body) => out({ signal: { pc: id, ...body } });
  if (stack === "ndc") {
    const pc = new lib.PeerConnection(`p${id}`, { iceServers: [], bindAddress: "127.0.0.1" });
    pc.onLocalDescription((sdp, type) => signal({ sdp, type: type.toLowerCase() }));
    pc.onLocalCandidate((candidate, mid) => signal({ candidate, mid }));
    pc.onDataChannel((dc) => onChannel(ndcChannel(dc)));
    let described = false;
    const early = []; // candidates that overtook the description (callbacks of two threads)
    return {
      createChannel: (label) => ndcChannel(pc.createDataChannel(label)),
      async remote(sig) {
        if (sig.sdp !== undefined) {
          pc.setRemoteDescription(sig.sdp, sig.type);
          described = true;
          for (const c of early.splice(0)) pc.addRemoteCandidate(c.candidate, c.mid);
        } else if (described) pc.addRemoteCandidate(sig.candidate, sig.mid);
        else early.push(sig);
      },
      close: () => pc.close(),
    };
  }
  const pc = new lib.RTCPeerConnection({ iceServers: [] });
  const early = [];
  pc.onicecandidate = (event) => {
    if (event.candidate) signal({ candidate: event.candidate.candidate, mid: event.candidate.sdpMid });
  };
  pc.ondatachannel = (event) => onChannel(wrtcChannel(event.channel));
  return {
    createChannel(label) {
      const ch = wrtcChannel(pc.createDataChannel(label));
      (async () => {
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        signal({ sdp: offer.sdp, type: "offer" });
      })().catch((error) => fail(error));
      return ch;
    },
    async remote(sig) {
      if (sig.sdp !== undefined) {
        await pc.setRemoteDescription({ type: sig.type, sdp: sig.sdp });
        for (const c of early.splice(0)) await pc.addIceCandidate(c);
        if (sig.type === "offer") {
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          signal({ sdp: answer.sdp, type: "answer" });
        }
      } else {
        const c = { candidate: sig.candidate, sdpMid: sig.mid };
        if (pc.remoteDescription) await pc.addIceCandidate(c);
        else early.push(c);
      }
    },
    close: () => pc.close(),
  };
}

function fail(error) {
  out({ error: String(error && error.stack ? error.stack : error) });
  process.exit(1);
}

// ---- the answering side --------------------------------------------------------------

function serve(ch) {
  let mode = "";
  let remaining = 0;
  ch.onmessage = (data) => {
    if (mode === "e") ch.send(data);
    else if (mode === "s") {
      remaining -= data.length;
      if (remaining <= 0) ch.send(Buffer.from("k"));
    } else {
      mode = String.fromCharCode(data[0]);
      if (mode === "s") remaining = Number(data.readBigUInt64BE(1));
    }
  };
}

// ---- the offering side ---------------------------------------------------------------

const peers = new Map();
let nextId = 0;
let timeoutMs = 120000;

function bounded(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${timeoutMs / 1000} s for ${what}: the link is dead`)), timeoutMs);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

class Inbox {
  // Messages of one channel, awaited one at a time.
  constructor(ch) {
    this.queue = [];
    this.waiter = null;
    ch.onmessage = (data) => {
      this.queue.push(data);
      if (this.waiter) this.waiter();
    };
  }
  async next() {
    while (this.queue.length === 0) await bounded(new Promise((resolve) => (this.waiter = resolve)), "a message");
    this.waiter = null;
    return this.queue.shift();
  }
}

async function openLink() {
  // A fresh peer connection with one open channel: {peer, ch, inbox, id}.
  const id = nextId++;
  const peer = newPeer(id, () => {});
  peers.set(id, peer);
  const ch = peer.createChannel("boot");
  const inbox = new Inbox(ch);
  await bounded(new Promise((resolve) => (ch.onopen = resolve)), "the channel to open");
  return { peer, ch, inbox, id };
}

async function send(ch, buf) {
  if (ch.buffered() > HIGH_WATER) {
    // the low-threshold event, or (should a stack miss it) bufferedAmount seen low
    let poll;
    const drained = new Promise((resolve) => {
      ch.onlow = resolve;
      poll = setInterval(() => ch.buffered() <= LOW_WATER && resolve(), 5);
    });
    try {
      await bounded(drained, `the send buffer to drain (${ch.buffered()} bytes buffered)`);
    } finally {
      clearInterval(poll);
    }
  }
  ch.send(buf);
}

function closeLink(link) {
  link.ch.close();
  link.peer.close();
  peers.delete(link.id);
  out({ signal: { pc: link.id, bye: true } }); // the answering side closes its end too
}

const now = () => performance.now() / 1000;

async function run(spec) {
  timeoutMs = (spec.timeout ?? 120) * 1000;
  if (spec.kind === "setup") {
    const times = [];
    for (let i = 0; i < spec.samples; i++) {
      const started = now();
      const link = await openLink();
      link.ch.send(Buffer.from("e"));
      link.ch.send(Buffer.from("!"));
      await link.inbox.next();
      times.push(now() - started);
      closeLink(link);
    }
    return { times };
  }
  const link = await openLink();
  try {
    if (spec.kind === "bulk") {
      const header = Buffer.alloc(9);
      header.write("s");
      header.writeBigUInt64BE(BigInt(spec.bytes), 1);
      link.ch.send(header);
      const payload = Buffer.alloc(spec.chunk, 120);
      const started = now();
      let sent = 0;
      while (sent < spec.bytes) {
        const piece = Math.min(spec.chunk, spec.bytes - sent);
        await send(link.ch, piece === spec.chunk ? payload : payload.subarray(0, piece));
        sent += piece;
      }
      await link.inbox.next();
      return { seconds: now() - started };
    }
    if (spec.kind === "rtt") {
      link.ch.send(Buffer.from("e"));
      const message = Buffer.alloc(spec.size, 120);
      const times = [];
      for (let i = 0; i < spec.warmup + spec.count; i++) {
        const started = now();
        link.ch.send(message);
        let got = 0;
        while (got < spec.size) got += (await link.inbox.next()).length;
        if (i >= spec.warmup) times.push(now() - started);
      }
      return { times };
    }
    throw new Error(`unknown run kind ${spec.kind}`);
  } finally {
    closeLink(link);
  }
}

// ---- the parent's lines ----------------------------------------------------------------

const version = stack === "ndc" ? (lib.getLibraryVersion ? `libdatachannel ${lib.getLibraryVersion()}` : "") : "";
out({ ready: { stack, role, node: process.version, version } });
const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  const message = JSON.parse(line);
  queue = queue.then(async () => {
    if (message.signal) {
      const sig = message.signal;
      let peer = peers.get(sig.pc);
      if (sig.bye) {
        if (peer) peer.close();
        peers.delete(sig.pc);
        return;
      }
      if (!peer && role === "answer") {
        peer = newPeer(sig.pc, serve);
        peers.set(sig.pc, peer);
      }
      if (peer) await peer.remote(sig);
    } else if (message.run) {
      run(message.run).then(
        (result) => out({ result }),
        (error) => fail(`${message.run.kind} run: ${error && error.stack ? error.stack : error}`),
      );
    }
  }).catch(fail);
});
lines.on("close", () => {
  for (const peer of peers.values()) peer.close();
  if (stack === "ndc") lib.cleanup();
  process.exit(0);
});
