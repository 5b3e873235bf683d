// One WebRTC connection to a cloudarcade server: offer, signaling, channels, drop detection.
//
// The browser is the offerer (aiortc answers), so it creates the input channels
// before the offer. aiortc does no trickle ICE: the offer is sent once gathering
// is complete. All candidates are host candidates on loopback/LAN: iceServers is
// empty on purpose, nothing is asked of a STUN server.

import { CHANNEL_EVENTS, CHANNEL_STATE } from "./protocol.js";

export { CHANNEL_EVENTS, CHANNEL_STATE };

const GATHER_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 20000;
// "disconnected" often recovers by itself (a consent check missed); "failed" does not.
const DISCONNECTED_GRACE_MS = 2500;

/** Why a connection could not be opened or was lost; `kind` picks the user's message. */
export class ConnectError extends Error {
  /**
   * @param {"unreachable"|"full"|"ice"|"rejected"|"not-found"|"server"|"dropped"} kind
   * @param {string} message
   * @param {{retryAfter?: number}} [extra]
   */
  constructor(kind, message, extra = {}) {
    super(message);
    this.name = "ConnectError";
    this.kind = kind;
    this.retryAfter = extra.retryAfter ?? null;
  }

  /** Whether trying again later may succeed without the user changing anything. */
  get retryable() {
    return ["unreachable", "full", "ice", "server", "dropped"].includes(this.kind);
  }
}

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with ±20% jitter. */
export function backoffDelay(attempt, { baseMs = 500, capMs = 15000, random = Math.random } = {}) {
  const plain = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(plain * (0.8 + 0.4 * random()));
}

function waitForIceGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    // Send what we have if gathering hangs (a dead interface); host candidates come first.
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function postOffer(baseUrl, body) {
  let response;
  try {
    response = await fetch(new URL("/offer", baseUrl), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ConnectError("unreachable", `no answer from ${new URL(baseUrl).host}`);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // A proxy's HTML error page, or an empty body.
  }
  if (response.ok && payload && payload.type === "answer") return payload;
  const reason = payload?.error ?? `HTTP ${response.status} ${response.statusText}`;
  if (response.status === 503) {
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ConnectError("full", reason, { retryAfter });
  }
  if (response.status === 404) throw new ConnectError("not-found", reason);
  if (response.status >= 400 && response.status < 500) throw new ConnectError("rejected", reason);
  if (response.status === 502 || response.status === 504) {
    throw new ConnectError("unreachable", reason);
  }
  throw new ConnectError("server", reason);
}

/**
 * A peer connection to the server, playing into `video`.
 *
 * Events: "dropped" (detail: ConnectError) once, when an open connection is lost.
 */
export class Connection extends EventTarget {
  /**
   * @param {string} baseUrl the server's origin, e.g. location.origin
   * @param {object} request /offer fields besides sdp/type: game, resolution, fps, codec,
   *   bitrate, join, role (missing or null fields are left out)
   * @param {HTMLVideoElement} video
   */
  constructor(baseUrl, request, video) {
    super();
    this.baseUrl = baseUrl;
    this.request = Object.fromEntries(
      Object.entries(request).filter(([, value]) => value !== null && value !== undefined && value !== ""),
    );
    this.video = video;
    this.pc = null;
    this.channels = {};
    /** The server's answer fields: session, share, role, player. */
    this.info = null;
    this.closed = false;
    this._dropped = false;
    this._disconnectTimer = null;
  }

  /** Open the connection; resolves when media can flow, rejects with a ConnectError. */
  async open() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    this.channels[CHANNEL_EVENTS] = pc.createDataChannel(CHANNEL_EVENTS);
    this.channels[CHANNEL_STATE] = pc.createDataChannel(CHANNEL_STATE, {
      ordered: false,
      maxRetransmits: 0,
    });
    const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
    preferCodec(transceiver, this.request.codec);
    lowestPlayoutDelay(transceiver.receiver);
    pc.addEventListener("track", (event) => {
      lowestPlayoutDelay(event.receiver);
      // The element keeps showing the last frame after close(), behind the
      // reconnecting notice, until the next connection's track replaces it.
      this.video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      this.video.play().catch(() => {
        // Autoplay of a muted video is allowed; a refusal leaves the poster, not an error.
      });
    });

    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    if (this.closed) throw new ConnectError("dropped", "closed while connecting");
    const answer = await postOffer(this.baseUrl, {
      sdp: pc.localDescription.sdp,
      type: "offer",
      ...this.request,
    });
    if (this.closed) throw new ConnectError("dropped", "closed while connecting");
    this.info = {
      session: answer.session ?? null,
      share: answer.share ?? null,
      role: answer.role ?? "player",
      player: answer.player ?? null,
    };
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    await this._connected();
    this._watch();
    return this.info;
  }

  _connected() {
    const pc = this.pc;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new ConnectError("ice", `no media path after ${CONNECT_TIMEOUT_MS / 1000} s`)),
        CONNECT_TIMEOUT_MS,
      );
      const finish = (error) => {
        clearTimeout(timer);
        pc.removeEventListener("connectionstatechange", check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        const state = pc.connectionState;
        if (state === "connected") finish(null);
        else if (state === "failed") {
          finish(new ConnectError("ice", "no ICE candidate pair worked between the browser and the server"));
        } else if (state === "closed") finish(new ConnectError("dropped", "closed while connecting"));
      };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  _watch() {
    const pc = this.pc;
    pc.addEventListener("connectionstatechange", () => {
      const state = pc.connectionState;
      clearTimeout(this._disconnectTimer);
      if (state === "failed") this.drop("the connection to the server failed");
      else if (state === "closed") this.drop("the server closed the connection");
      else if (state === "disconnected") {
        this._disconnectTimer = setTimeout(
          () => this.drop("lost contact with the server"),
          DISCONNECTED_GRACE_MS,
        );
      }
    });
    // The server closing the session closes the SCTP association: the channels close
    // at once, well before ICE consent checks would notice.
    this.channels[CHANNEL_EVENTS].addEventListener("close", () => {
      this.drop("the server ended the session");
    });
  }

  /** Declare the connection lost (once): a "dropped" event with a ConnectError carrying `reason`. */
  drop(reason) {
    if (this.closed || this._dropped) return;
    this._dropped = true;
    this.dispatchEvent(new CustomEvent("dropped", { detail: new ConnectError("dropped", reason) }));
  }

  /** Send `message` (an object) on `label` if that channel is open; returns whether it was sent. */
  send(label, message) {
    const channel = this.channels[label];
    if (!channel || channel.readyState !== "open") return false;
    channel.send(JSON.stringify(message));
    return true;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._disconnectTimer);
    try {
      this.pc?.close();
    } catch {
      // Already closed.
    }
  }
}

function lowestPlayoutDelay(receiver) {
  // jitterBufferTarget (ms) is the standard name; playoutDelayHint (s) the older Chromium one.
  try {
    if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = 0;
  } catch {
    // Read-only or out of range in some versions.
  }
  try {
    receiver.playoutDelayHint = 0;
  } catch {
    // Not supported.
  }
}

const CODEC_MIME = { h264: "video/H264", vp8: "video/VP8" };

function preferCodec(transceiver, codec) {
  const mime = CODEC_MIME[codec];
  if (!mime || !transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
  const all = RTCRtpReceiver.getCapabilities("video")?.codecs ?? [];
  const chosen = all.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  if (chosen.length === 0) return; // The server's 400 will name the codecs we offered.
  const rest = all.filter((c) => c.mimeType.toLowerCase() !== mime.toLowerCase());
  transceiver.setCodecPreferences([...chosen, ...rest]);
}

/** Video codecs this browser can receive, by the names the server uses. */
export function receivableCodecs() {
  const mimes = (RTCRtpReceiver.getCapabilities?.("video")?.codecs ?? []).map((c) =>
    c.mimeType.toLowerCase(),
  );
  return Object.keys(CODEC_MIME).filter((name) => mimes.includes(CODEC_MIME[name].toLowerCase()));
}
