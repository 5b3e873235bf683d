// "Measure latency": input-to-photon measured in the page, on the stream being played.
//
// No second connection: each measuring press is an input on the session being played,
// sent by the page's own input sender (on `input-events`, with copies on `input-state`)
// and stamped with performance.now(). Every frame carries its frame code (cloudarcade/framecode.py):
// its id and the seq of the last input the game had applied when it was rendered. The
// press's photon is the presentationTime of the first presented frame whose code
// carries the press's seq or a later one (framewatch.js), the same rule as
// `cloudarcade bench --client chromium`, so the two agree by construction.
//
// The key pressed is F24: no game reacts to it, so measuring does not disturb play;
// it still counts as the game's last applied input.

import { FrameWatch } from "./framewatch.js";

const KEY = "F24";
const PRESS_TIMEOUT_MS = 1500;
const FIRST_FRAME_TIMEOUT_MS = 10000;

/** The q-quantile (0..1) of `values`, linear between ranks (numpy's default). */
export function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Measure input-to-photon with `presses` presses on the session `app` is playing.
 *
 * Resolves with `{samples, p50, p95, misses}` (ms); rejects with an Error saying why
 * (not connected, a spectator, a browser without the APIs, no frames).
 */
export async function measureLatency(app, { presses = 20, onProgress = () => {} } = {}) {
  if (!app.connection || app.state !== "playing") throw new Error("not playing");
  if (app.info?.role === "spectator") throw new Error("a spectator sends no inputs");
  const watch = new FrameWatch(app.video);
  watch.start();
  const samples = [];
  let misses = 0;
  try {
    if ((await watch.next(() => true, FIRST_FRAME_TIMEOUT_MS)) === null) {
      throw new Error("no frame with a readable frame code was shown");
    }
    for (let i = 0; i < presses; i += 1) {
      const down = app.input.key(KEY, true);
      app.input.key(KEY, false);
      if (!down) throw new Error("the input channel is not open");
      const sent = down.ts * 1000;
      const seen = await watch.next((frame) => frame.seq >= down.seq, PRESS_TIMEOUT_MS);
      if (seen === null) misses += 1;
      else samples.push(Math.max(0, seen.presented - sent));
      onProgress(i + 1, presses, samples);
      // A random gap, so presses land at every phase of the server's tick.
      await pause(40 + Math.random() * 80);
    }
  } finally {
    watch.stop();
  }
  return { samples, p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), misses };
}
