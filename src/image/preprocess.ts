/**
 * Decoded image to model input: resize by the spec's policy, center-crop,
 * normalize and lay out as NCHW float32.
 *
 * The crop is folded into the resize: only the output pixels inside the crop
 * window are computed, from only the source rows they read. Each output pixel
 * has the same weights as in a full resize, so the result is identical to
 * resizing everything and cropping afterwards, just cheaper.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import type { PreprocessSpec } from "./preprocess_spec.ts";
import { planResize } from "./_geometry.ts";
import { reducedTriangleTaps, triangleTaps } from "./_filter.ts";
import { checkImage, checkSize, resampleRgb, rgbToRgba } from "./_resample.ts";

// RGB float [spec.height, spec.width, 3], 0..255: resized and cropped, not rounded.
function resizeAndCrop(img: DecodedImage, spec: PreprocessSpec): Float32Array {
  checkImage(img, "preprocess image");
  checkSize(spec.width, spec.height, "preprocess image to the model input");
  const r = img.reduction;
  if (r) {
    // A reduced decode: same plan as the full-size picture, taps mapped onto the reduced pixels.
    const plan = planResize(r.width, r.height, spec);
    const xt = reducedTriangleTaps(
      img.width,
      { fullSize: r.width, scale: r.scale, left: r.left },
      plan.resizedWidth,
      plan.left,
      spec.width,
    );
    const yt = reducedTriangleTaps(
      img.height,
      { fullSize: r.height, scale: r.scale, left: r.top },
      plan.resizedHeight,
      plan.top,
      spec.height,
    );
    return resampleRgb(img, xt, yt);
  }
  const plan = planResize(img.width, img.height, spec);
  const xt = triangleTaps(img.width, plan.resizedWidth, plan.left, spec.width);
  const yt = triangleTaps(img.height, plan.resizedHeight, plan.top, spec.height);
  return resampleRgb(img, xt, yt);
}

/**
 * Turns an upright RGBA image into one model input x: [1, 3, height, width]
 * float32, NCHW, written to `out` from `offset` (a new array when `out` is
 * omitted). Returns `out`, so batches can be filled image by image.
 *
 * Steps, matching torchvision's `Resize(size)` + `CenterCrop` + `ToTensor` +
 * `Normalize` on Pillow images:
 * 1. Resize with an antialiased bilinear filter: `shorter_side` makes the
 *    shorter side `size` (the other `int(size * long / short)`), `direct`
 *    goes straight to `width` x `height`.
 * 2. Center crop to `width` x `height` at `round((W - w) / 2)` (Python's
 *    round); a crop larger than the image pads with 0.
 * 3. For RGB value p (0..255, not rounded) of channel c: `(p * scale -
 *    mean[c]) / std[c]`, `mean`/`std` in RGB order; channels written in
 *    `channelOrder`. Alpha is ignored.
 *
 * @throws {RangeError} If the image or input size is invalid, or `out` is too
 * short for `3 * width * height` values from `offset`.
 *
 * @example
 * ```ts
 * import { decodeImage, preprocess } from "./mod.ts";
 *
 * const image = await decodeImage(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * const x = preprocess(image, {
 *   width: 224,
 *   height: 224,
 *   resize: { mode: "shorter_side", size: 256 },
 *   channelOrder: "RGB",
 *   scale: 1 / 255,
 *   mean: [0.485, 0.456, 0.406],
 *   std: [0.229, 0.224, 0.225],
 * });
 * x.length; // 3 * 224 * 224
 * ```
 */
export function preprocess(
  img: DecodedImage,
  spec: PreprocessSpec,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  const { width, height, scale, mean, std } = spec;
  const plane = width * height;
  const tensor = out ?? new Float32Array(3 * plane);
  if (!Number.isInteger(offset) || offset < 0 || tensor.length < offset + 3 * plane) {
    throw new RangeError(
      `Cannot preprocess into the output: it needs ${3 * plane} values from offset ${offset}, ` +
        `its length is ${tensor.length}`,
    );
  }
  const rgb = resizeAndCrop(img, spec);
  // value = p * a[c] + b[c], with a = scale / std and b = -mean / std (RGB order).
  const order = spec.channelOrder === "BGR" ? [2, 1, 0] : [0, 1, 2];
  for (let ch = 0; ch < 3; ch++) {
    const c = order[ch];
    const a = scale / std[c];
    const b = -mean[c] / std[c];
    const base = offset + ch * plane;
    for (let i = 0, p = c; i < plane; i++, p += 3) tensor[base + i] = rgb[p] * a + b;
  }
  return tensor;
}

/**
 * The model's-eye view of an image: what {@linkcode preprocess} feeds the
 * model before normalizing, i.e. resized and center-cropped to the input
 * size, as an opaque RGBA image rounded to bytes (for previews).
 *
 * @throws {RangeError} If the image or input size is invalid.
 *
 * @example
 * ```ts
 * import { decodeImage, prepareImage } from "./mod.ts";
 *
 * const image = await decodeImage(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * const view = prepareImage(image, {
 *   width: 224,
 *   height: 224,
 *   resize: { mode: "shorter_side", size: 256 },
 *   channelOrder: "RGB",
 *   scale: 1 / 255,
 *   mean: [0.485, 0.456, 0.406],
 *   std: [0.229, 0.224, 0.225],
 * });
 * [view.width, view.height]; // [224, 224]
 * ```
 */
export function prepareImage(img: DecodedImage, spec: PreprocessSpec): DecodedImage {
  return rgbToRgba(resizeAndCrop(img, spec), spec.width, spec.height);
}
