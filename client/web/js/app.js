// The page: choose a game, connect, play; states, reconnects, stats, sharing.
//
// States (body[data-state]): idle → connecting → playing; a lost connection goes to
// reconnecting (automatic, exponential back-off) and back to playing, or to failed
// with the reason once retrying cannot help or the attempts run out.
//
// URL parameters: ?join=TOKEN&role=spectator|player joins a shared session at once;
// game, resolution, fps, codec, bitrate preset the form; stack, cc, ladder, profile and
// seed go into the offer as they are; autoconnect=1 connects at once.

import { BenchProbe } from "./bench.js";
import { backoffDelay, ConnectError, Connection, receivableCodecs } from "./connection.js";
import { InputSender } from "./input.js";
import { bandHeight } from "./framecode.js";
import { measureLatency } from "./latency.js";
import { overlayRows, StatsMonitor } from "./stats.js";

const MAX_ATTEMPTS = 8;
const STALL_MS = 6000; // Connected but no new frame for this long: treat as lost.
const FIELDS = ["game", "resolution", "fps", "codec", "bitrate"];
// Offer fields the form does not show, taken from the page URL as they are (the server
// validates them): the stack (tuned|stock) and a netsim profile on the media path.
const URL_FIELDS = ["stack", "cc", "ladder", "profile", "seed"];

const $ = (id) => document.getElementById(id);

const FAILURE_TITLES = {
  unreachable: "Server unreachable",
  full: "Server full",
  ice: "ICE failed",
  rejected: "Request rejected",
  "not-found": "Shared session not found",
  server: "Server error",
  dropped: "Connection lost",
};

const FAILURE_HINTS = {
  unreachable: "Is `cloudarcade serve` running at this address?",
  full: "Every session slot is taken; try again in a moment.",
  ice: "No media path between the browser and the server. On loopback, Chromium needs "
    + "--allow-loopback-in-peer-connection.",
  "not-found": "The session behind this share link has ended. Start your own with Connect.",
};

class App {
  constructor() {
    this.params = new URLSearchParams(location.search);
    this.join = this.params.get("join");
    this.role = this.params.get("role") === "spectator" ? "spectator" : "player";
    // A server started with --token wants it in every offer: ?token=... in the page URL.
    this.token = this.params.get("token");
    this.video = $("video");
    this.input = new InputSender({ video: this.video, touchRoot: $("touch") });
    // Players do not see the instrument: the frame code's strip along the top of every
    // frame is cropped away (object-view-box, in the video's own pixels); the page
    // still reads it from the decoded frames (framewatch.js).
    this.video.addEventListener("resize", () => this._hideFrameCode());
    this.connection = null;
    this.monitor = null;
    this.state = "idle";
    this.attempt = 0;
    this.lastError = null;
    this.latency = null;
    this.info = null;
    // The bench's instrument (bench/chromium_client.py); idle unless started.
    this.bench = new BenchProbe(this);
    this._retryTimer = null;
    this._generation = 0; // Bumped on every connect/disconnect: late results of old ones are ignored.
    this._stall = { frames: -1, since: 0 };
    this._presetForm();
    this._bind();
    this._render();
    this._loadCatalog();
    if (this.join || this.params.get("autoconnect") === "1") this.connect();
  }

  _hideFrameCode() {
    const band = bandHeight(this.video.videoWidth);
    this.video.style.objectViewBox = band ? `inset(${band}px 0 0 0)` : "";
  }

  _presetForm() {
    for (const name of FIELDS) {
      const value = this.params.get(name);
      const select = $(name);
      if (!value) continue;
      // A value the list lacks (the bench's 2M or 800x600) is added; the server validates it.
      if (![...select.options].some((o) => o.value === value)) select.add(new Option(value, value));
      select.value = value;
    }
    const codecs = receivableCodecs();
    for (const option of $("codec").options) {
      if (codecs.length && !codecs.includes(option.value)) {
        option.disabled = true;
        option.textContent += " (not supported here)";
      }
    }
    if ($("codec").selectedOptions[0]?.disabled) $("codec").value = codecs[0];
  }

  _bind() {
    $("setup").addEventListener("submit", (event) => {
      event.preventDefault();
      this.connect();
    });
    $("disconnect").addEventListener("click", () => this.disconnect());
    $("retry").addEventListener("click", () => this.connect());
    $("stats-toggle").addEventListener("click", () => this.toggleStats());
    $("fullscreen").addEventListener("click", () => this.toggleFullscreen());
    $("measure").addEventListener("click", () => this.measure());
    $("copy-player").addEventListener("click", () => copy($("share-player")));
    $("copy-spectator").addEventListener("click", () => copy($("share-spectator")));
    window.addEventListener("keydown", (event) => {
      if (event.repeat || event.target.matches?.("input, select, textarea")) return;
      if (event.code === "F2" || event.code === "Backquote") {
        event.preventDefault();
        this.toggleStats();
      }
    });
    document.addEventListener("fullscreenchange", () => {
      $("fullscreen").textContent = document.fullscreenElement ? "Exit fullscreen" : "Fullscreen";
    });
    window.addEventListener("pagehide", () => this.connection?.close());
  }

  /** Offer the games the server actually has (the page's list is the fallback). */
  async _loadCatalog() {
    try {
      const response = await fetch("/catalog");
      if (!response.ok) return;
      const { games } = await response.json();
      const select = $("game");
      const current = select.value;
      select.replaceChildren(...games.map((name) => new Option(name, name, false, name === current)));
    } catch {
      // An older server or a network hiccup: keep the built-in list.
    }
  }

  /** The form's session settings: game, resolution, fps, codec, bitrate. */
  _settings() {
    return Object.fromEntries(FIELDS.map((name) => [name, $(name).value]));
  }

  request() {
    // A joiner watches the host's stream: the session's own settings apply.
    const request = this.join ? { join: this.join } : this._settings();
    for (const name of URL_FIELDS) {
      const value = this.params.get(name);
      if (value && !this.join) request[name] = name === "seed" ? Number(value) : value;
    }
    request.role = this.role;
    if (this.token) request.token = this.token;
    return request;
  }

  /** Connect now (from idle, failed, or to change settings), resetting the back-off. */
  connect() {
    this.attempt = 0;
    this._attemptConnect("connecting");
  }

  async _attemptConnect(state) {
    clearTimeout(this._retryTimer);
    this._teardown();
    const generation = ++this._generation;
    this._setState(state);
    const connection = new Connection(location.origin, this.request(), this.video);
    this.connection = connection;
    try {
      const info = await connection.open();
      if (generation !== this._generation) return connection.close();
      this.info = info;
      this.attempt = 0;
      this.lastError = null;
      connection.addEventListener("dropped", (event) => this._dropped(generation, event.detail));
      this.monitor = new StatsMonitor(connection, { onSample: (figures) => this._sampled(figures) });
      this.monitor.latency = this.latency;
      this.input.attach(info.role === "spectator" ? null : connection);
      this._stall = { frames: -1, since: performance.now() };
      this._setState("playing");
      // Keys must reach the game, not the Connect button or a select that kept focus.
      if (document.activeElement !== this.video) this.video.focus({ preventScroll: true });
    } catch (error) {
      connection.close();
      if (generation !== this._generation) return;
      const failure = error instanceof ConnectError ? error : new ConnectError("server", String(error));
      this._failedAttempt(failure);
    }
  }

  _dropped(generation, error) {
    if (generation !== this._generation) return;
    this.input.attach(null);
    this.lastError = error;
    this.attempt = 0;
    this._scheduleRetry(error);
  }

  _failedAttempt(error) {
    this.lastError = error;
    // The first, user-initiated attempt fails at once with its reason; after a drop
    // (state "reconnecting") retryable errors keep the back-off going.
    if (this.state === "reconnecting" && error.retryable && this.attempt < MAX_ATTEMPTS) {
      this._scheduleRetry(error);
    } else {
      this._teardown();
      this._setState("failed");
    }
  }

  _scheduleRetry(error) {
    this._teardown();
    const delay = Math.max(backoffDelay(this.attempt), (error.retryAfter ?? 0) * 1000);
    this.attempt += 1;
    this._setState("reconnecting");
    this._retryTimer = setTimeout(() => this._attemptConnect("reconnecting"), delay);
  }

  disconnect() {
    clearTimeout(this._retryTimer);
    this._generation += 1;
    this._teardown();
    this.info = null;
    this.video.srcObject = null;
    this._setState("idle");
  }

  _teardown() {
    this.input.attach(null);
    this.monitor?.stop();
    this.monitor = null;
    this.connection?.close();
    this.connection = null;
  }

  _sampled(figures) {
    this._renderStats(figures);
    if (this.state !== "playing" || !figures) return;
    const now = performance.now();
    if (figures.framesDecoded !== this._stall.frames) {
      this._stall = { frames: figures.framesDecoded, since: now };
    } else if (now - this._stall.since > STALL_MS) {
      this.connection?.drop(`no video for ${STALL_MS / 1000} s`);
    }
  }

  toggleStats(show) {
    const panel = $("stats");
    panel.hidden = show === undefined ? !panel.hidden : !show;
    $("stats-toggle").setAttribute("aria-pressed", String(!panel.hidden));
    this._renderStats(this.monitor?.latest ?? null);
  }

  async toggleFullscreen() {
    try {
      if (document.fullscreenElement) await document.exitFullscreen();
      else await $("stage").requestFullscreen({ navigationUI: "hide" });
    } catch {
      // Refused (no user gesture, or not allowed in a frame): nothing to undo.
    }
  }

  /** Measure input-to-photon on the session being played; resolves with the outcome or null. */
  async measure(options = {}) {
    const button = $("measure");
    const result = $("latency-result");
    button.disabled = true;
    result.textContent = "measuring…";
    document.body.dataset.latency = "running";
    try {
      const outcome = await measureLatency(this, {
        ...options,
        onProgress: (done, total) => {
          result.textContent = `measuring… ${done}/${total}`;
        },
      });
      if (outcome.samples.length === 0) throw new Error("no press was seen on screen");
      this.latency = outcome;
      if (this.monitor) this.monitor.latency = outcome;
      result.textContent = `input→photon p50 ${outcome.p50.toFixed(1)} ms, p95 ${outcome.p95.toFixed(1)} ms `
        + `(${outcome.samples.length} presses${outcome.misses ? `, ${outcome.misses} missed` : ""})`;
      document.body.dataset.latency = "done";
      return outcome;
    } catch (error) {
      result.textContent = `latency measurement failed: ${error.message}`;
      document.body.dataset.latency = "failed";
      return null;
    } finally {
      button.disabled = false;
      this._renderStats(this.monitor?.latest ?? null);
    }
  }

  _setState(state) {
    this.state = state;
    this._render();
  }

  _render() {
    const { state, info } = this;
    document.body.dataset.state = state;
    document.body.dataset.role = info?.role ?? this.role;
    const busy = state === "connecting" || state === "reconnecting";
    const live = busy || state === "playing";
    if (this.join) $("connect").textContent = state === "playing" ? "Rejoin" : "Join";
    else $("connect").textContent = state === "playing" ? "Restart" : "Connect";
    // A joiner sees the host's session; its settings are not the joiner's to pick.
    document.body.dataset.joined = this.join ? "true" : "false";
    $("connect").disabled = busy;
    $("disconnect").hidden = !live;

    const role = info?.role === "spectator" ? "spectating"
      : info?.player !== null && info?.player !== undefined ? `player ${info.player + 1}` : "";
    $("status").textContent = state === "playing" && role ? `playing · ${role}` : state;

    let title = "";
    let detail = "";
    const error = this.lastError;
    if (state === "idle") {
      title = this.join ? "Joining a shared session…" : "Choose a game and press Connect.";
      detail = "Keys: arrows / WASD, Space. Click the video to lock the mouse. F2 or ` toggles stats.";
    } else if (state === "connecting") {
      title = this.join ? "Joining the shared session…" : "Connecting…";
    } else if (state === "reconnecting") {
      title = `Reconnecting (attempt ${this.attempt} of ${MAX_ATTEMPTS})…`;
      detail = error ? `${capitalize(error.message)}.` : "";
    } else if (state === "failed" && error) {
      title = FAILURE_TITLES[error.kind] ?? "Failed";
      detail = [`${capitalize(error.message)}.`, FAILURE_HINTS[error.kind] ?? ""].join(" ");
      if (error.kind === "full" && error.retryAfter) detail += ` The server suggests ${error.retryAfter} s.`;
    }
    $("notice-title").textContent = title;
    $("notice-detail").textContent = detail;
    $("retry").hidden = state !== "failed";
    document.body.dataset.failure = state === "failed" && error ? error.kind : "";

    const share = state === "playing" && info?.share;
    $("share").hidden = !share;
    if (share) {
      const link = new URL("/", location.origin);
      link.searchParams.set("join", info.share);
      // Whoever may join needs the server's access token too.
      if (this.token) link.searchParams.set("token", this.token);
      $("share-player").value = link.href;
      link.searchParams.set("role", "spectator");
      $("share-spectator").value = link.href;
      $("role").textContent = role;
    }
  }

  _renderStats(figures) {
    const body = $("stats-rows");
    if ($("stats").hidden) return;
    const rows = overlayRows(figures, this.latency);
    body.replaceChildren(
      ...rows.map(([label, text]) => {
        const tr = document.createElement("tr");
        const th = document.createElement("th");
        const td = document.createElement("td");
        th.textContent = label;
        td.textContent = text;
        tr.append(th, td);
        return tr;
      }),
    );
  }
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

async function copy(input) {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    document.execCommand?.("copy"); // Clipboard API needs a secure context; 127.0.0.1 is one, a LAN IP is not.
  }
}

// Exposed for tests and for poking at a running session from the console.
window.cloudarcade = new App();
