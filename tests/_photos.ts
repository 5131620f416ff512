/**
 * Realistic photos for accuracy checks: deterministic variants of the real
 * fixture photos (random crops, flips, exposure and colour casts), the kind of
 * differences between two snapshots of a scene.
 */
import { type DecodedImage, decodeImage, resizeRgba } from "../src/image/mod.ts";
import { mulberry32 } from "../src/graph/weights.ts";

/** The distinct real photos under tests/fixtures. */
export const SOURCE_PHOTOS = [
  "chelsea.jpg",
  "coffee.png",
  "rocket.jpg",
  "astronaut_progressive.jpg",
  "camera_gray.jpg",
];

function crop(img: DecodedImage, x: number, y: number, w: number, h: number): DecodedImage {
  const data = new Uint8Array(w * h * 4);
  for (let r = 0; r < h; r++) {
    const from = ((y + r) * img.width + x) * 4;
    data.set(img.data.subarray(from, from + w * 4), r * w * 4);
  }
  return { width: w, height: h, data };
}

/**
 * `count` variants of the source photos, cycling through them; the same seed
 * gives the same images.
 */
export async function realisticPhotos(count: number, seed: number): Promise<DecodedImage[]> {
  const sources = await Promise.all(
    SOURCE_PHOTOS.map(async (name) =>
      decodeImage(await Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url)))
    ),
  );
  const random = mulberry32(seed);
  const out: DecodedImage[] = [];
  for (let i = 0; i < count; i++) {
    const src = sources[i % sources.length];
    const area = 0.4 + 0.6 * random();
    const aspect = 0.75 + 0.58 * random();
    const w = Math.min(src.width, Math.round(Math.sqrt(area * src.width * src.height * aspect)));
    const h = Math.min(src.height, Math.round(Math.sqrt(area * src.width * src.height / aspect)));
    const x = Math.floor(random() * (src.width - w + 1));
    const y = Math.floor(random() * (src.height - h + 1));
    const img = resizeRgba(crop(src, x, y, w, h), Math.round(w * 0.9), Math.round(h * 0.9));
    const flip = random() < 0.5;
    const gain = 0.75 + 0.5 * random();
    const cast = [0.9 + 0.2 * random(), 0.9 + 0.2 * random(), 0.9 + 0.2 * random()];
    const contrast = 0.8 + 0.4 * random();
    const d = img.data;
    for (let r = 0; r < img.height; r++) {
      if (flip) {
        for (let a = 0, b = img.width - 1; a < b; a++, b--) {
          for (let c = 0; c < 4; c++) {
            const p = (r * img.width + a) * 4 + c, q = (r * img.width + b) * 4 + c;
            [d[p], d[q]] = [d[q], d[p]];
          }
        }
      }
    }
    for (let p = 0; p < d.length; p += 4) {
      for (let c = 0; c < 3; c++) {
        const v = ((d[p + c] - 128) * contrast + 128) * gain * cast[c];
        d[p + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
    out.push(img);
  }
  return out;
}
