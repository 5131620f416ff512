/**
 * The three decoders, called straight from imagescript's WASM modules.
 *
 * Why not imagescript's `Image.decode` / `GIF.decode`: importing its main
 * module loads a native encoder addon, which needs `--allow-ffi`, and its
 * JPEG path repacks RGB to RGBA with one `subarray` per pixel (half the time
 * of a 12-megapixel decode). These are the same decoders with the same
 * output; a test checks them against `Image.decode` and `GIF.decode` on the
 * fixtures. Each call gets a fresh WASM instance (that is how `init()` works),
 * so a decoder trap on bad input cannot poison the next decode.
 *
 * Needs `--allow-read` (the .wasm files) and `--allow-env`
 * (`IMAGESCRIPT_WASM_SIMD` is read).
 *
 * @module
 */
import gifWasm from "imagescript/wasm/node/gif.js";
import jpegWasm from "imagescript/wasm/node/jpeg.js";
import pngWasm from "imagescript/wasm/node/png.js";
import type { DecodedImage } from "./decoded_image.ts";

/** The JPEG decoder's output: format 0 gray, 1 RGB, 2 CMYK; 1, 3 or 4 bytes a pixel. */
interface JpegFramebuffer {
  width: number;
  height: number;
  format: number;
  buffer: Uint8Array;
}

/** One GIF frame: RGBA [height, width, 4] placed at (x, y) on the logical screen. */
interface GifFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  buffer: Uint8Array;
}

interface Codecs {
  jpeg: { init(): Promise<{ decode(bytes: Uint8Array): JpegFramebuffer }> };
  png: {
    init(): Promise<{
      decode(bytes: Uint8Array): { width: number; height: number; framebuffer: Uint8Array };
    }>;
  };
  gif: {
    init(): Promise<{
      Decoder: new (
        bytes: Uint8Array,
      ) => { width: number; height: number; frame(): GifFrame | null };
    }>;
  };
}

const codecs = { jpeg: jpegWasm, png: pngWasm, gif: gifWasm } as Codecs;

/** Decodes a JPEG into RGBA (alpha 255). Throws the decoder's own error. */
export async function decodeJpeg(bytes: Uint8Array): Promise<DecodedImage> {
  const { width, height, format, buffer: src } = (await codecs.jpeg.init()).decode(bytes);
  const n = width * height;
  const data = new Uint8Array(n * 4);
  if (format === 1) {
    for (let i = 0, s = 0, o = 0; i < n; i++, s += 3, o += 4) {
      data[o] = src[s];
      data[o + 1] = src[s + 1];
      data[o + 2] = src[s + 2];
      data[o + 3] = 255;
    }
  } else if (format === 0) {
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      data[o] = data[o + 1] = data[o + 2] = src[i];
      data[o + 3] = 255;
    }
  } else if (format === 2) {
    // CMYK to RGB exactly as imagescript's Image.decode does it (clamped assignment rounds).
    const out = new Uint8ClampedArray(data.buffer);
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      const k = 1 - src[o + 3] / 255;
      out[o] = 255 * (1 - src[o] / 255) * k;
      out[o + 1] = 255 * (1 - src[o + 1] / 255) * k;
      out[o + 2] = 255 * (1 - src[o + 2] / 255) * k;
      out[o + 3] = 255;
    }
  } else {
    throw new Error(`jpg: unknown pixel format ${format}`);
  }
  return { width, height, data };
}

/** Decodes a PNG (any bit depth and colour type) into RGBA. Throws the decoder's own error. */
export async function decodePng(bytes: Uint8Array): Promise<DecodedImage> {
  const { width, height, framebuffer } = (await codecs.png.init()).decode(bytes);
  return { width, height, data: framebuffer };
}

/**
 * Decodes the first frame of a GIF into RGBA at the logical screen size; the
 * frame is placed at its offset and pixels outside it or transparent are
 * (0, 0, 0, 0), as imagescript's `GIF.decode` composites it. Later frames are
 * never read, so a file cut short after the first frame still decodes.
 */
export async function decodeGifFirstFrame(bytes: Uint8Array): Promise<DecodedImage> {
  const decoder = new (await codecs.gif.init()).Decoder(bytes);
  const { width, height } = decoder;
  const frame = decoder.frame();
  if (frame === null) throw new Error("gif: no frames");
  const data = new Uint8Array(width * height * 4);
  const canvas = new Uint32Array(data.buffer);
  const pixels = new Uint32Array(
    frame.buffer.buffer,
    frame.buffer.byteOffset,
    frame.width * frame.height,
  );
  const { buffer: src } = frame;
  // Clip to the logical screen: a frame may claim to reach past it.
  const xEnd = Math.min(frame.width, width - frame.x);
  const yEnd = Math.min(frame.height, height - frame.y);
  for (let y = 0; y < yEnd; y++) {
    for (let x = 0; x < xEnd; x++) {
      const i = y * frame.width + x;
      if (src[i * 4 + 3] !== 0) canvas[(frame.y + y) * width + frame.x + x] = pixels[i];
    }
  }
  return { width, height, data };
}
