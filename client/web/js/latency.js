// "Measure latency": input-to-photon measured in the page with the probe game.
//
// A second connection plays `probe`, whose marker square flips black/white in the
// tick that applies a key press. Each press is stamped with performance.now();
// requestVideoFrameCallback hands us every frame about to be shown with its
// expected display time on the same clock. We draw the centre of the marker to a
// tiny canvas, take its mean luma, and the first frame whose colour differs from
// before the press is that press's photon.

import { Connection } from "./connection.js";
import { CHANNEL_EVENTS, protocolMessage } from "./protocol.js";

// server/games/probe.py: DARK_BELOW, LIGHT_ABOVE.
const DARK_BELOW = 64;
const LIGHT_ABOVE = 192;
const PRESS_TIMEOUT_MS = 1500;
const FIRST_FRAME_TIMEOUT_MS = 10000;

/** Python's round(): halves go to the even neighbour (round(4.5) == 4). */
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const align16 = (value) => Math.floor(Math.trunc(value) / 16) * 16;

/** server/games/probe.py marker_rect(): the square, on the 16-px grid, centred. */
export function markerRect(width, height) {
  const side = Math.max(32, roundHalfEven(height / 4 / 16) * 16);
  return { x: align16((width - side) / 2), y: align16((height - side) / 2), width: side, height: side };
}

/** The centre half of the square that marker_state() reads (pygame Rect.inflate(-w//2, -h//2)). */
export function markerInner(width, height) {
  const r = markerRect(width, height);
  const dw = Math.floor(r.width / 2);
  const dh = Math.floor(r.height / 2);
  return { x: r.x + Math.trunc(dw / 2), y: r.y + Math.trunc(dh / 2), width: r.width - dw, height: r.height - dh };
}

/** true white, false black, null ambiguous: as marker_state() decides it. */
function markerState(meanLuma) {
  if (meanLuma > LIGHT_ABOVE) return true;
  if (meanLuma < DARK_BELOW) return false;
  return null;
}

/** The q-quantile (0..1) of `values`, linear between ranks (numpy's default). */
function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Reads the marker from each frame of `video` as it is presented. */
class MarkerWatcher {
  constructor(video) {
    this.video = video;
    this.canvas = document.createElement("canvas");
    this.canvas.width = 16;
    this.canvas.height = 16;
    this.context = this.canvas.getContext("2d", { willReadFrequently: true });
    this.state = null;
    this.frames = 0;
    this._listeners = new Set();
    this._handle = null;
    this._stopped = false;
  }

  start() {
    const onFrame = (now, metadata) => {
      if (this._stopped) return;
      this._read(metadata);
      this._handle = this.video.requestVideoFrameCallback(onFrame);
    };
    this._handle = this.video.requestVideoFrameCallback(onFrame);
  }

  _read(metadata) {
    const { videoWidth: width, videoHeight: height } = this.video;
    if (!width || !height) return;
    const inner = markerInner(width, height);
    this.context.drawImage(this.video, inner.x, inner.y, inner.width, inner.height, 0, 0, 16, 16);
    const pixels = this.context.getImageData(0, 0, 16, 16).data;
    let sum = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      sum += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
    }
    this.state = markerState(sum / (pixels.length / 4));
    this.frames += 1;
    // expectedDisplayTime is when the frame reaches the screen; presentationTime when
    // it was handed to the compositor. Both are on performance.now()'s clock.
    const photon = metadata.expectedDisplayTime ?? metadata.presentationTime;
    for (const listener of [...this._listeners]) listener(this.state, photon, metadata);
  }

  /** Resolves with [state, photonTime] for the first frame for which `test(state)` holds. */
  next(test, timeoutMs) {
    return new Promise((resolve) => {
      const listener = (state, photon) => {
        if (!test(state)) return;
        done([state, photon]);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (result) => {
        clearTimeout(timer);
        this._listeners.delete(listener);
        resolve(result);
      };
      this._listeners.add(listener);
    });
  }

  stop() {
    this._stopped = true;
    if (this._handle !== null) this.video.cancelVideoFrameCallback?.(this._handle);
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Measure input-to-photon with `presses` key presses on a probe session.
 *
 * `request` holds the /offer fields of the session being played (resolution, fps,
 * codec, bitrate); the game is replaced by `probe`. Resolves with
 * `{samples, p50, p95, misses}` (ms); rejects with a ConnectError.
 */
export async function measureLatency(baseUrl, request, video, { presses = 20, onProgress = () => {} } = {}) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
    throw new Error("this browser has no requestVideoFrameCallback");
  }
  const { join, role, ...own } = request; // A measurement is always a session of its own.
  const connection = new Connection(baseUrl, { ...own, game: "probe" }, video);
  const watcher = new MarkerWatcher(video);
  const samples = [];
  let misses = 0;
  let seq = 0;
  try {
    await connection.open();
    watcher.start();
    if ((await watcher.next((state) => state !== null, FIRST_FRAME_TIMEOUT_MS)) === null) {
      throw new Error("the probe's marker never showed");
    }
    for (let i = 0; i < presses; i += 1) {
      const before = watcher.state;
      const flipped = watcher.next((state) => state !== null && state !== before, PRESS_TIMEOUT_MS);
      const sent = performance.now();
      seq += 1;
      connection.send(CHANNEL_EVENTS, protocolMessage("key", { seq, ts: sent / 1000, code: "Space", down: true }));
      const seen = await flipped;
      seq += 1;
      connection.send(CHANNEL_EVENTS, protocolMessage("key", {
        seq, ts: performance.now() / 1000, code: "Space", down: false,
      }));
      if (seen === null) misses += 1;
      else samples.push(Math.max(0, seen[1] - sent));
      onProgress(i + 1, presses, samples);
      // A random gap, so presses land at every phase of the server's tick.
      await pause(40 + Math.random() * 80);
    }
  } finally {
    watcher.stop();
    connection.close();
  }
  return { samples, p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), misses };
}
