// The input protocol in the page: channel names and the one message encoder
// (docs/protocol.md; cloudarcade/protocol/inputs.py parses what this writes).

export const PROTOCOL_VERSION = 1;
export const CHANNEL_EVENTS = "input-events";
export const CHANNEL_STATE = "input-state";
/**
 * When a key event's copies go on CHANNEL_STATE, in ms after the reliable send
 * (KEY_COPY_DELAYS in cloudarcade/protocol/redundancy.py; why in docs/protocol.md).
 */
export const KEY_COPY_DELAYS_MS = [0, 10, 30, 60];

/** A message of type `t` with `fields`, carrying the protocol version first. */
export function protocolMessage(t, fields) {
  return { v: PROTOCOL_VERSION, t, ...fields };
}
