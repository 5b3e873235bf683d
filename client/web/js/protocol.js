// The input protocol in the page: channel names and the one message encoder
// (docs/protocol.md; cloudarcade/protocol/inputs.py parses what this writes).

export const PROTOCOL_VERSION = 1;
export const CHANNEL_EVENTS = "input-events";
export const CHANNEL_STATE = "input-state";

/** A message of type `t` with `fields`, carrying the protocol version first. */
export function protocolMessage(t, fields) {
  return { v: PROTOCOL_VERSION, t, ...fields };
}
