// The page's side of `cloudarcade bench --client chromium`: what a tester's browser saw.
//
// Driven from Python through Playwright (bench/chromium_client.py), on the session the
// page is playing, with no second connection:
//   start()  logs every presented frame with its frame code (framewatch.js:
//            presentationTime, receiveTime, processingDuration) and opens the `frames`
//            data channel, on which the server sends its record of every frame
//            (cloudarcade/protocol);
//   press()  sends a key press through the page's own input sender, on the events
//            channel, and says when (performance.now(), ms) and with which seq;
//   drain()  hands over what was logged since the last drain, with a getStats()
//            snapshot of the video receiver's cumulative counters.
// Every time is on the page's performance.now() clock; the Python side maps it onto
// time.monotonic() (see docs/browser.md, "Measuring in the browser").

import { FrameWatch } from "./framewatch.js";

const FRAMES_CHANNEL = "frames"; // server/timing.py FRAMES_CHANNEL
// Cumulative inbound-rtp counters the bench turns into per-window stage means.
const COUNTERS = [
  "jitterBufferDelay", "jitterBufferEmittedCount", "jitterBufferTargetDelay",
  "jitterBufferMinimumDelay", "totalAssemblyTime", "framesAssembledFromMultiplePackets",
  "totalDecodeTime", "framesDecoded", "totalProcessingDelay", "framesReceived",
  "framesDropped", "packetsReceived", "packetsLost", "bytesReceived", "nackCount",
  "pliCount", "freezeCount", "totalFreezesDuration",
];

/** The video inbound-rtp counters of one getStats() report, stamped with `at` (ms). */
export function inboundCounters(report, at) {
  let inbound = null;
  report.forEach((stat) => {
    if (stat.type === "inbound-rtp" && stat.kind === "video") inbound = stat;
  });
  if (!inbound) return null;
  const out = { at };
  for (const name of COUNTERS) out[name] = inbound[name] ?? null;
  return out;
}

export class BenchProbe {
  /** @param app the page's App (window.cloudarcade): its connection, video and input sender. */
  constructor(app) {
    this.app = app;
    this.running = false;
    this._reset();
  }

  _reset() {
    this.frames = [];
    this.records = [];
  }

  /** Start logging the current connection's frames and records. */
  start() {
    const connection = this.app.connection;
    if (!connection?.pc) throw new Error("bench: the page is not connected");
    this.stop();
    this._reset();
    this.watch = new FrameWatch(this.app.video);
    this.watch.start();
    this.watch.listen((frame) => this.frames.push(frame));
    this.connection = connection;
    this.running = true;
    // A data channel on the existing association: no renegotiation.
    this.channel = connection.pc.createDataChannel(FRAMES_CHANNEL, { ordered: false });
    this.channel.addEventListener("message", (event) => {
      if (this.running) this.records.push(event.data);
    });
  }

  /** Press and release `code` on the events channel; {seq, sent} of the key-down. */
  press(code = "Space") {
    const down = this.app.input.key(code, true);
    this.app.input.key(code, false);
    if (!down) throw new Error("bench: the key was not sent (no open events channel)");
    return { seq: down.seq, sent: down.ts * 1000 };
  }

  /** Everything logged since the last drain, and the receiver's counters now. */
  async drain() {
    const pc = this.connection?.pc;
    let stats = null;
    if (pc && pc.connectionState !== "closed") {
      stats = inboundCounters(await pc.getStats(), performance.now());
    }
    const out = {
      frames: this.frames,
      records: this.records,
      unreadable: this.watch?.unreadable ?? 0,
      unmatched: this.watch?.unmatched ?? 0,
      stats,
    };
    this._reset();
    return out;
  }

  stop() {
    this.running = false;
    this.watch?.stop();
    try {
      this.channel?.close();
    } catch {
      // Already closed with its connection.
    }
    this.channel = null;
  }
}
