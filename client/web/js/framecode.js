// The frame code (cloudarcade/framecode.py) read in the page: frame_id and input_seq.
//
// The server draws 80 bits as 16x16 black/white blocks along the top of every frame.
// We read them from the luma plane of the frame being shown: `new VideoFrame(video)`
// shares the decoded picture and `copyTo` with a rect copies only the band (about
// 0.2 ms at 720p here). Drawing the video into a canvas instead converts the whole
// frame to RGB first: 9 ms a frame at 720p on this 2-core machine, enough to slow
// the page that is being measured.

export const BLOCK = 16;
const PAYLOAD_BITS = 80;
const MIN_WIDTH = 320;
const CRC_XOR = 0x5a3c;
const ERASURE_MARGIN = 48;
const MAX_ERASURES = 3;
const MAX_DOUBTFUL = 16;
const LUMA_FORMATS = new Set(["I420", "I420A", "I422", "I444", "NV12"]);
const RGB_FORMATS = new Set(["RGBA", "RGBX", "BGRA", "BGRX"]);

/** Pixel rows the code takes at the top of a frame `width` px wide (0 when too narrow). */
export function bandHeight(width) {
  if (width < MIN_WIDTH) return 0;
  const perRow = Math.floor(width / BLOCK);
  return Math.ceil(PAYLOAD_BITS / perRow) * BLOCK;
}

/** CRC-16/CCITT-FALSE of `bytes`. */
export function crc16(bytes) {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

function word32(bits, start) {
  let value = 0;
  for (let i = start; i < start + 32; i += 1) value = value * 2 + bits[i];
  return value;
}

/** {frameId, inputSeq} from 80 bits (0/1), or null when the check fails. */
export function decodeBits(bits) {
  const frameId = word32(bits, 0);
  const inputSeq = word32(bits, 32);
  let check = 0;
  for (let i = 64; i < 80; i += 1) check = check * 2 + bits[i];
  const bytes = [];
  for (const value of [frameId, inputSeq]) {
    bytes.push((value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
  }
  return check === (crc16(bytes) ^ CRC_XOR) ? { frameId, inputSeq } : null;
}

/**
 * The code in a luma band: `luma` holds at least bandHeight(width) rows of `stride`
 * bytes. Each block's centre 8x8 mean is thresholded at 128; when the check fails,
 * the (at most 3) blocks nearest mid-grey are tried both ways, as framecode.read().
 */
export function readLuma(luma, stride, width) {
  const height = bandHeight(width);
  if (!height) return null;
  const perRow = Math.floor(width / BLOCK);
  const means = new Float32Array(PAYLOAD_BITS);
  for (let i = 0; i < PAYLOAD_BITS; i += 1) {
    const x0 = (i % perRow) * BLOCK + 4;
    const y0 = Math.floor(i / perRow) * BLOCK + 4;
    let sum = 0;
    for (let y = y0; y < y0 + 8; y += 1) {
      const row = y * stride;
      for (let x = x0; x < x0 + 8; x += 1) sum += luma[row + x];
    }
    means[i] = sum / 64;
  }
  const bits = Array.from(means, (mean) => (mean >= 128 ? 1 : 0));
  const code = decodeBits(bits);
  if (code) return code;
  const margins = Array.from(means, (mean) => Math.abs(mean - 128));
  if (margins.filter((m) => m < ERASURE_MARGIN).length > MAX_DOUBTFUL) return null;
  const doubtful = margins
    .map((margin, index) => [margin, index])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .slice(0, MAX_ERASURES)
    .filter(([margin]) => margin < ERASURE_MARGIN)
    .map(([, index]) => index);
  for (let pattern = 1; pattern < 1 << doubtful.length; pattern += 1) {
    const candidate = [...bits];
    doubtful.forEach((index, j) => {
      if ((pattern >> j) & 1) candidate[index] ^= 1;
    });
    const found = decodeBits(candidate);
    if (found) return found;
  }
  return null;
}

/**
 * Read the code of the frame `source` (a <video> or a VideoFrame) shows now.
 * Resolves with {frameId, inputSeq}, or null when the frame has no readable code.
 */
export async function readFrameCode(source) {
  let frame;
  try {
    frame = source instanceof VideoFrame ? source : new VideoFrame(source);
  } catch {
    return null; // No frame yet, or a frame that cannot be wrapped.
  }
  try {
    const width = frame.visibleRect?.width ?? frame.codedWidth;
    const rows = bandHeight(width);
    if (!rows || !frame.format) return null;
    const rect = { x: 0, y: 0, width: width - (width % 2), height: rows };
    if (LUMA_FORMATS.has(frame.format)) {
      const buffer = new Uint8Array(frame.allocationSize({ rect }));
      const layout = await frame.copyTo(buffer, { rect });
      return readLuma(buffer.subarray(layout[0].offset), layout[0].stride, rect.width);
    }
    if (RGB_FORMATS.has(frame.format)) {
      const buffer = new Uint8Array(frame.allocationSize({ rect }));
      const [{ offset, stride }] = await frame.copyTo(buffer, { rect });
      const blue = frame.format.startsWith("B");
      const luma = new Uint8Array(rect.width * rows);
      for (let y = 0; y < rows; y += 1) {
        for (let x = 0; x < rect.width; x += 1) {
          const p = offset + y * stride + x * 4;
          const [r, b] = blue ? [buffer[p + 2], buffer[p]] : [buffer[p], buffer[p + 2]];
          luma[y * rect.width + x] = 0.299 * r + 0.587 * buffer[p + 1] + 0.114 * b;
        }
      }
      return readLuma(luma, rect.width, rect.width);
    }
    return null;
  } catch {
    return null;
  } finally {
    if (frame !== source) frame.close();
  }
}
