// Presented frames of the stream being played, each with its frame code.
//
// Two sources meet by RTP timestamp:
// - requestVideoFrameCallback on the <video>: every frame presented, with its
//   presentationTime (the photon), receiveTime, processingDuration and rtpTimestamp;
// - a MediaStreamTrackProcessor on a clone of the played track: every decoded frame,
//   with its own rtpTimestamp, whose frame code (frame id, last applied input seq) is
//   read from the luma of the top band (framecode.js, about 0.2 ms a 720p frame).
// Reading the <video> inside the frame callback instead races the compositor: under
// load the element already holds the next frame (up to 15% of callbacks here), and
// its code would go with the wrong times. A presented frame waits for its code;
// frames are handed on in the order presented. Used by the bench's instrument
// (bench.js) and by "Measure latency" (latency.js): one definition of the photon.

import { readFrameCode } from "./framecode.js";

const KEEP_CODES = 600;
const CODE_WAIT_MS = 500; // a presented frame whose code has not come by then is dropped

export class FrameWatch {
  /** @param video the <video> playing the session's track */
  constructor(video) {
    this.video = video;
    this.running = false;
    this.unreadable = 0; // decoded frames without a readable code
    this.unmatched = 0; // presented frames whose code never came
    this._codes = new Map();
    this._waiting = [];
    this._listeners = new Set();
  }

  /** Start watching; throws when the page has no video yet or the browser lacks the APIs. */
  start() {
    const track = this.video.srcObject?.getVideoTracks?.()[0];
    if (!track) throw new Error("no video track yet");
    if (typeof MediaStreamTrackProcessor === "undefined" || typeof VideoFrame === "undefined") {
      throw new Error("this browser has no MediaStreamTrackProcessor/VideoFrame");
    }
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
      throw new Error("this browser has no requestVideoFrameCallback");
    }
    this.stop();
    this.running = true;
    const onFrame = (now, metadata) => {
      if (!this.running) return;
      this._handle = this.video.requestVideoFrameCallback(onFrame);
      this._waiting.push({
        rtp: metadata.rtpTimestamp ?? null,
        presented: metadata.presentationTime,
        received: metadata.receiveTime ?? null,
        processing: metadata.processingDuration ?? null,
      });
      this._flush();
    };
    this._handle = this.video.requestVideoFrameCallback(onFrame);
    this._readCodes(track.clone());
  }

  async _readCodes(track) {
    this._track = track;
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
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
        if (!code || rtp === null) {
          this.unreadable += 1;
        } else {
          this._codes.set(rtp, code);
          if (this._codes.size > KEEP_CODES) this._codes.delete(this._codes.keys().next().value);
        }
      } finally {
        frame.close();
      }
      this._flush();
    }
  }

  _flush() {
    while (this._waiting.length) {
      const shown = this._waiting[0];
      const code = this._codes.get(shown.rtp);
      if (!code) {
        if (performance.now() - shown.presented < CODE_WAIT_MS) return;
        this._waiting.shift();
        this.unmatched += 1;
        continue;
      }
      this._waiting.shift();
      const frame = { ...shown, id: code.frameId, seq: code.inputSeq };
      for (const listener of [...this._listeners]) listener(frame);
    }
  }

  /** Calls `listener(frame)` for every presented frame; returns a function that stops it. */
  listen(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** The first presented frame for which `test(frame)` holds, or null after `timeoutMs`. */
  next(test, timeoutMs) {
    return new Promise((resolve) => {
      let stopListening = () => {};
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (frame) => {
        clearTimeout(timer);
        stopListening();
        resolve(frame);
      };
      stopListening = this.listen((frame) => {
        if (test(frame)) done(frame);
      });
    });
  }

  stop() {
    this.running = false;
    if (this._handle !== undefined) this.video.cancelVideoFrameCallback?.(this._handle);
    this._handle = undefined;
    this._reader?.cancel().catch(() => {});
    this._track?.stop();
    this._reader = this._track = null;
    this._waiting = [];
    this._codes.clear();
  }
}
