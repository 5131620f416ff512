/**
 * Runs one decode for bench/decode_compare.ts in a Worker, so a decode that does not end
 * can be cut off (`worker.terminate()`): posts back its time and result.
 *
 * @module
 */
import { type DecoderName, loadDecoder } from "./decode_compare_wasm.ts";

self.onmessage = async (
  e: MessageEvent<{ decoder: DecoderName; wasm?: string; bytes: Uint8Array }>,
) => {
  const { decoder, wasm, bytes } = e.data;
  const d = await loadDecoder(decoder, wasm);
  const t0 = performance.now();
  let result: string;
  try {
    const out = d.decode(bytes, 1, false);
    result = out.ok ? `decoded ${out.width}x${out.height}` : `refused (${out.error})`;
  } catch (err) {
    result = `trapped (${(err as Error).message})`;
  }
  self.postMessage({ ms: performance.now() - t0, result });
};
