// Inputs → protocol v1 messages (docs/protocol.md).
//
// Keys go on the reliable channel (a lost key-up would leave a key held) and, as
// copies spread over 60 ms, on the unordered, no-retransmit channel, so that one lost
// packet does not cost an SCTP retransmission (the server keeps the first to arrive);
// pointer and pad messages carry the full state and go on the unordered channel only,
// at most one of each per animation frame and only when something changed.

import { CHANNEL_EVENTS, CHANNEL_STATE, KEY_COPY_DELAYS_MS, protocolMessage } from "./protocol.js";

const CODE_RE = /^[A-Za-z0-9]{1,32}$/;
const SEQ_MAX = 2 ** 31 - 1;
const MAX_DELTA = 10000;
const MAX_PADS = 4;
const MAX_PAD_BUTTONS = 32;
const MAX_PAD_AXES = 8;
/** Axis values below this magnitude are sent as 0: sticks rest slightly off-centre. */
const AXIS_DEADZONE = 0.15;
// Keys the page keeps for itself (stats overlay); never sent to the game.
const PAGE_KEYS = new Set(["F2", "Backquote"]);
// Keys whose browser default (scrolling, button activation) would fight the game.
const GAME_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Space", "Tab"]);

const round2 = (value) => Math.round(value * 100) / 100;
const clamp = (value, lo, hi) => Math.min(hi, Math.max(lo, value));

/** A pad axis with the dead zone applied, rounded so that noise does not count as a change. */
function shapeAxis(value) {
  return Math.abs(value) < AXIS_DEADZONE ? 0 : clamp(round2(value), -1, 1);
}

/**
 * Turns keyboard, pointer-lock mouse, gamepad and touch input into messages on a connection.
 *
 * `attach(connection)` starts sending (null stops); `now()` gives the `ts` clock in ms.
 */
export class InputSender {
  constructor({ video, touchRoot, now = () => performance.now() }) {
    this.video = video;
    this.touchRoot = touchRoot;
    this.now = now;
    this.connection = null;
    this.seq = 0;
    this.held = new Set();
    this.pointer = { x: 0.5, y: 0.5, dx: 0, dy: 0, buttons: 0, dirty: false };
    this.pads = new Map(); // index → JSON of the last state sent
    this._frame = null;
    this._listen();
  }

  attach(connection) {
    if (this.connection && this.connection !== connection) this.releaseAll();
    this.connection = connection;
    this.seq = 0; // One counter per connection: a new session starts from 1.
    this.pads.clear();
    if (connection && this._frame === null) this._frame = requestAnimationFrame(() => this._poll());
    if (!connection && this._frame !== null) {
      cancelAnimationFrame(this._frame);
      this._frame = null;
    }
  }

  _nextSeq() {
    this.seq = this.seq >= SEQ_MAX ? 1 : this.seq + 1;
    return this.seq;
  }

  _send(label, fields) {
    if (!this.connection) return null;
    const message = protocolMessage(fields.t, { seq: this._nextSeq(), ts: this.now() / 1000, ...fields });
    return this.connection.send(label, message) ? message : null;
  }

  /** Send a key event; returns the message sent (with its seq) or null. */
  key(code, down) {
    if (!CODE_RE.test(code)) return null;
    if (down) this.held.add(code);
    else this.held.delete(code);
    const message = this._send(CHANNEL_EVENTS, { t: "key", code, down });
    if (message) this._sendCopies(message);
    return message;
  }

  /** A key event's copies, spread in time: SCTP may bundle messages queued together. */
  _sendCopies(message) {
    const connection = this.connection;
    for (const delay of KEY_COPY_DELAYS_MS) {
      const send = () => connection.send(CHANNEL_STATE, message);
      if (delay === 0) send();
      else setTimeout(send, delay);
    }
  }

  /** Key-up for everything held: on blur, a lost connection, or leaving the page. */
  releaseAll() {
    for (const code of [...this.held]) this.key(code, false);
    this.held.clear();
    if (this.pointer.buttons) {
      this.pointer.buttons = 0;
      this.pointer.dirty = true;
      this._flushPointer();
    }
  }

  _listen() {
    const typing = (event) => {
      const target = event.target;
      return target instanceof HTMLElement && target.matches("input, select, textarea");
    };
    window.addEventListener("keydown", (event) => {
      if (!this.connection || PAGE_KEYS.has(event.code) || typing(event)) return;
      if (GAME_KEYS.has(event.code)) event.preventDefault();
      if (event.repeat) return; // The server folds state; repeats would only add traffic.
      this.key(event.code, true);
    });
    window.addEventListener("keyup", (event) => {
      if (!this.connection || PAGE_KEYS.has(event.code)) return;
      if (GAME_KEYS.has(event.code)) event.preventDefault();
      if (this.held.has(event.code)) this.key(event.code, false);
    });
    window.addEventListener("blur", () => this.releaseAll());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.releaseAll();
    });

    // Mouse: a click on the video locks the pointer; while locked, movement and buttons are sent.
    this.video.addEventListener("click", () => {
      if (this.connection && document.pointerLockElement !== this.video) {
        this.video.requestPointerLock?.()?.catch?.(() => {});
      }
    });
    document.addEventListener("pointerlockchange", () => {
      if (document.pointerLockElement !== this.video && this.pointer.buttons) {
        this.pointer.buttons = 0;
        this.pointer.dirty = true;
      }
    });
    const locked = () => document.pointerLockElement === this.video;
    document.addEventListener("mousemove", (event) => {
      if (!locked() || !this.connection) return;
      const rect = this.video.getBoundingClientRect();
      const p = this.pointer;
      p.dx += event.movementX;
      p.dy += event.movementY;
      p.x = clamp(p.x + event.movementX / Math.max(1, rect.width), 0, 1);
      p.y = clamp(p.y + event.movementY / Math.max(1, rect.height), 0, 1);
      p.dirty = true;
    });
    for (const type of ["mousedown", "mouseup"]) {
      document.addEventListener(type, (event) => {
        if (!locked() || !this.connection) return;
        this.pointer.buttons = event.buttons & 31;
        this.pointer.dirty = true;
        this._flushPointer(); // Presses are sent at once, not at the next frame.
      });
    }

    // Touch: on-screen buttons act as the keys they name.
    for (const button of this.touchRoot.querySelectorAll("button[data-code]")) {
      const code = button.dataset.code;
      const press = (event) => {
        event.preventDefault();
        button.setPointerCapture?.(event.pointerId);
        button.classList.add("held");
        if (!this.held.has(code)) this.key(code, true);
      };
      const release = (event) => {
        event.preventDefault();
        button.classList.remove("held");
        if (this.held.has(code)) this.key(code, false);
      };
      button.addEventListener("pointerdown", press);
      button.addEventListener("pointerup", release);
      button.addEventListener("pointercancel", release);
      button.addEventListener("lostpointercapture", release);
      button.addEventListener("contextmenu", (event) => event.preventDefault());
    }
  }

  _flushPointer() {
    const p = this.pointer;
    if (!p.dirty) return;
    p.dirty = false;
    this._send(CHANNEL_STATE, {
      t: "pointer",
      x: Math.round(p.x * 1000) / 1000,
      y: Math.round(p.y * 1000) / 1000,
      dx: clamp(p.dx, -MAX_DELTA, MAX_DELTA),
      dy: clamp(p.dy, -MAX_DELTA, MAX_DELTA),
      buttons: p.buttons,
    });
    p.dx = 0;
    p.dy = 0;
  }

  _pollPads() {
    const pads = navigator.getGamepads?.() ?? [];
    const seen = new Set();
    for (const pad of pads) {
      if (!pad || !pad.connected || pad.index >= MAX_PADS) continue;
      seen.add(pad.index);
      const buttons = pad.buttons.slice(0, MAX_PAD_BUTTONS).map((b) => clamp(round2(b.value), 0, 1));
      const axes = pad.axes.slice(0, MAX_PAD_AXES).map(shapeAxis);
      this._sendPad(pad.index, buttons, axes);
    }
    // A pad unplugged while a button was held: release everything once.
    for (const index of [...this.pads.keys()]) {
      if (!seen.has(index)) {
        this._sendPad(index, [], []);
        this.pads.delete(index);
      }
    }
  }

  _sendPad(index, buttons, axes) {
    const key = JSON.stringify([buttons, axes]);
    if (this.pads.get(index) === key) return;
    if (this._send(CHANNEL_STATE, { t: "pad", index, buttons, axes })) this.pads.set(index, key);
  }

  _poll() {
    this._frame = null;
    if (!this.connection) return;
    this._flushPointer();
    this._pollPads();
    this._frame = requestAnimationFrame(() => this._poll());
  }
}
