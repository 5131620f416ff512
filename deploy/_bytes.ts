/**
 * Small byte helpers shared by the deploy scripts: base64 and sha256 with
 * Web-standard APIs only, so the scripts need no npm package.
 *
 * @module
 */

/** Bytes as standard base64 (with padding). */
export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  // Chunks keep String.fromCharCode's argument list short.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(out);
}

/** The hex sha256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
