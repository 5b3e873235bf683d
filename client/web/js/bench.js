// The page's side of `cloudarcade bench --client chromium`: what a tester's browser saw.
//
// Driven from Python through Playwright (bench/chromium_client.py), on the session the
// page is playing, with no second connection:
//   start()  logs every presented frame (requestVideoFrameCallback: rtpTimestamp,
//            presentationTime, receiveTime, processingDuration), reads the frame code
//            of every decoded frame (see below) and opens the `frames` data channel, on
//            which the server sends its record of every frame (cloudarcade/protocol.py);
//   press()  sends a key press through the page's own input sender, on the events
//            channel, and says when (performance.now(), ms) and with which seq;
//   drain()  hands over what was logged since the last drain, with a getStats()
//            snapshot of the video receiver's cumulative counters.
// Presented frames and codes meet by RTP timestamp (in Python). The codes are read
// from a MediaStreamTrackProcessor on a clone of the played track: every decoded frame
// with its own rtpTimestamp. Reading the <video> inside the frame callback instead
// races the compositor: under load the element already holds the next frame (seen
// here for up to 15% of callbacks), and its code would go with the wrong times.
// Every time is on the page's performance.now() clock; the Python side maps it onto
// time.monotonic() (see docs/browser.md, "Measuring in the browser").

import { readFrameCode } from "./framecode.js";

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
    this.codes = [];
    this.records = [];
    this.unreadable = 0;
  }

  /** Start logging the current connection's frames and records. */
  start() {
    const connection = this.app.connection;
    if (!connection?.pc) throw new Error("bench: the page is not connected");
    const track = this.app.video.srcObject?.getVideoTracks()[0];
    if (!track) throw new Error("bench: no video track yet");
    if (typeof MediaStreamTrackProcessor === "undefined") {
      throw new Error("bench: this browser has no MediaStreamTrackProcessor");
    }
    this.stop();
    this._reset();
    this.connection = connection;
    this.running = true;
    // A data channel on the existing association: no renegotiation.
    this.channel = connection.pc.createDataChannel(FRAMES_CHANNEL, { ordered: false });
    this.channel.addEventListener("message", (event) => {
      if (this.running) this.records.push(event.data);
    });
    const video = this.app.video;
    const onFrame = (now, metadata) => {
      if (!this.running) return;
      this._handle = video.requestVideoFrameCallback(onFrame);
      this.frames.push({
        rtp: metadata.rtpTimestamp ?? null,
        presented: metadata.presentationTime,
        expected: metadata.expectedDisplayTime,
        received: metadata.receiveTime ?? null,
        processing: metadata.processingDuration ?? null,
      });
    };
    this._handle = video.requestVideoFrameCallback(onFrame);
    this._readCodes(track);
  }

  async _readCodes(track) {
    this._track = track.clone();
    const reader = new MediaStreamTrackProcessor({ track: this._track }).readable.getReader();
    this._reader = reader;
    while (this.running) {
      let result;
      try {
        result = await reader.read();
      } catch {
        return; // Cancelled by stop(), or the track ended.
      }
      if (result.done) return;
      const frame = result.value;
      try {
        const rtp = frame.metadata?.().rtpTimestamp ?? null;
        const code = await readFrameCode(frame);
        if (!code || rtp === null) this.unreadable += 1;
        else this.codes.push({ rtp, id: code.frameId, seq: code.inputSeq });
      } finally {
        frame.close();
      }
    }
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
      codes: this.codes,
      records: this.records,
      unreadable: this.unreadable,
      stats,
    };
    this._reset();
    return out;
  }

  stop() {
    this.running = false;
    if (this._handle !== undefined) this.app.video.cancelVideoFrameCallback?.(this._handle);
    this._handle = undefined;
    this._reader?.cancel().catch(() => {});
    this._track?.stop();
    this._reader = this._track = null;
    try {
      this.channel?.close();
    } catch {
      // Already closed with its connection.
    }
    this.channel = null;
  }
}
