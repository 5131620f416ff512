/**
 * The size of a GIF's first frame, read from its image descriptor before
 * decoding. A frame may claim more than the logical screen (the decoder
 * allocates the frame, then clips it), so a 10x10 GIF whose first frame says
 * 60000x60000 is a decompression bomb the screen size alone does not catch.
 *
 * @module
 */
import type { Dimensions } from "./_header.ts";

/**
 * The first image descriptor's width and height: past the header, the global
 * colour table and any extension blocks. `null` when the file ends first or a
 * block is not one GIF defines (the decoder then reports it).
 *
 * @example
 * ```ts
 * import { gifFirstFrameSize } from "./_gif_header.ts";
 *
 * gifFirstFrameSize(await Deno.readFile("tests/fixtures/offset_frame.gif")); // { width: 12, height: 8 }
 * ```
 */
export function gifFirstFrameSize(bytes: Uint8Array): Dimensions | null {
  if (bytes.length < 13) return null;
  const packed = bytes[10];
  let at = 13 + ((packed & 0x80) ? 3 * 2 ** ((packed & 7) + 1) : 0);
  while (at < bytes.length) {
    const block = bytes[at];
    if (block === 0x2c) { // image descriptor: x, y, width, height (u16 LE each)
      if (at + 9 > bytes.length) return null;
      return {
        width: bytes[at + 5] | (bytes[at + 6] << 8),
        height: bytes[at + 7] | (bytes[at + 8] << 8),
      };
    }
    if (block !== 0x21) return null; // only extensions may come before the first frame
    at += 2; // introducer and label, then sub-blocks until a zero length
    while (at < bytes.length && bytes[at] !== 0) at += bytes[at] + 1;
    at++;
  }
  return null;
}
