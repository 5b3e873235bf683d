// Receive-side figures from RTCPeerConnection.getStats(), as rates over the last interval.
//
// The overlay shows them; every REPORT_EVERY samples they go to the server as a
// protocol v1 `stats` message, so its metrics know what the client sees.

import { CHANNEL_EVENTS, protocolMessage } from "./protocol.js";

const SAMPLE_MS = 1000;
const REPORT_EVERY = 2; // samples: one report every 2 s

/** The inbound video figures, candidate-pair RTT and codec from one getStats() report. */
function readReport(report) {
  let inbound = null;
  let pair = null;
  let transportPairId = null;
  const byId = new Map();
  report.forEach((stat) => {
    byId.set(stat.id, stat);
    if (stat.type === "inbound-rtp" && stat.kind === "video") inbound = stat;
    if (stat.type === "transport" && stat.selectedCandidatePairId) {
      transportPairId = stat.selectedCandidatePairId;
    }
  });
  if (transportPairId) pair = byId.get(transportPairId) ?? null;
  if (!pair) {
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") pair = stat;
    });
  }
  const codec = inbound?.codecId ? byId.get(inbound.codecId) : null;
  return { inbound, pair, codec };
}

/** Figures over the interval between two readReport() results (`before` may be null). */
function computeFigures(before, after, elapsedMs) {
  const now = after.inbound;
  if (!now) return null;
  const prev = before?.inbound ?? null;
  const seconds = elapsedMs / 1000;
  const delta = (name) => (prev && now[name] !== undefined ? now[name] - (prev[name] ?? 0) : null);
  const perSecond = (name) => {
    const d = delta(name);
    return d === null || seconds <= 0 ? null : d / seconds;
  };
  const decoded = delta("framesDecoded");
  const emitted = delta("jitterBufferEmittedCount");
  const decodeSeconds = delta("totalDecodeTime");
  const jitterSeconds = delta("jitterBufferDelay");
  const bytes = delta("bytesReceived");
  const rtt = after.pair?.currentRoundTripTime;
  return {
    fpsReceived: perSecond("framesReceived"),
    fpsDecoded: perSecond("framesDecoded"),
    bitrateKbps: bytes === null || seconds <= 0 ? null : (bytes * 8) / 1000 / seconds,
    rttMs: rtt === undefined || rtt === null ? null : rtt * 1000,
    jitterBufferMs: emitted ? (jitterSeconds * 1000) / emitted : null,
    decodeMs: decoded ? (decodeSeconds * 1000) / decoded : null,
    packetsLost: now.packetsLost ?? null,
    freezes: now.freezeCount ?? null,
    framesDecoded: now.framesDecoded ?? 0,
    width: now.frameWidth ?? null,
    height: now.frameHeight ?? null,
    codec: after.codec?.mimeType?.replace(/^video\//i, "") ?? null,
  };
}

/** The protocol v1 stats message for `figures` (see docs/protocol.md). */
export function statsMessage(figures, tsSeconds, inputToPhotonMs) {
  const finite = (value) => (Number.isFinite(value) && value >= 0 ? Math.round(value * 100) / 100 : null);
  const count = (value) => (Number.isInteger(value) && value >= 0 ? value : null);
  return protocolMessage("stats", {
    ts: tsSeconds,
    fps: finite(figures.fpsDecoded),
    decode_ms: finite(figures.decodeMs),
    jitter_buffer_ms: finite(figures.jitterBufferMs),
    freezes: count(figures.freezes),
    input_to_photon_ms: finite(inputToPhotonMs),
    rtt_ms: finite(figures.rttMs),
    packets_lost: count(figures.packetsLost),
    frames_decoded: count(figures.framesDecoded),
  });
}

const fixed = (value, digits = 1) => (value === null || value === undefined ? "–" : value.toFixed(digits));

/** Rows for the overlay: [label, text]. */
export function overlayRows(figures, latency) {
  if (!figures) return [["video", "waiting for frames"]];
  const size = figures.width ? `${figures.width}×${figures.height}` : "–";
  return [
    ["fps received / decoded", `${fixed(figures.fpsReceived)} / ${fixed(figures.fpsDecoded)}`],
    ["bitrate", figures.bitrateKbps === null ? "–" : `${(figures.bitrateKbps / 1000).toFixed(2)} Mb/s`],
    ["RTT", `${fixed(figures.rttMs)} ms`],
    ["jitter buffer", `${fixed(figures.jitterBufferMs)} ms`],
    ["decode", `${fixed(figures.decodeMs, 2)} ms`],
    ["packets lost", `${figures.packetsLost ?? "–"}`],
    ["freezes", `${figures.freezes ?? "–"}`],
    ["frames decoded", `${figures.framesDecoded}`],
    ["resolution", size],
    ["codec", figures.codec ?? "–"],
    ["input→photon p50 / p95", latency ? `${fixed(latency.p50)} / ${fixed(latency.p95)} ms` : "–"],
  ];
}

/**
 * Samples a connection's stats every SAMPLE_MS; calls `onSample(figures)` and reports
 * to the server. `latest` holds the last figures; `latency` is set by the page.
 */
export class StatsMonitor {
  constructor(connection, { onSample = () => {}, now = () => performance.now() } = {}) {
    this.connection = connection;
    this.onSample = onSample;
    this.now = now;
    this.latest = null;
    this.latency = null;
    this.reports = 0;
    this._previous = null;
    this._previousAt = 0;
    this._count = 0;
    this._timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  async sample() {
    const pc = this.connection.pc;
    if (!pc || this.connection.closed) return null;
    const at = this.now();
    let current;
    try {
      current = readReport(await pc.getStats());
    } catch {
      return null; // Closed between the check and the call.
    }
    const figures = computeFigures(this._previous, current, at - this._previousAt);
    this._previous = current;
    this._previousAt = at;
    this.latest = figures;
    this._count += 1;
    if (figures && this._count % REPORT_EVERY === 0) {
      const message = statsMessage(figures, at / 1000, this.latency?.p50 ?? null);
      if (this.connection.send(CHANNEL_EVENTS, message)) this.reports += 1;
    }
    this.onSample(figures);
    return figures;
  }

  stop() {
    clearInterval(this._timer);
  }
}
