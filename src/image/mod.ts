/**
 * The image path: request bytes -> upright RGBA image -> NCHW float32 tensor.
 *
 * ```ts
 * import { decodeImage, preprocess } from "./mod.ts";
 * import { TORCHVISION_PREPROCESSING } from "../model/manifest.ts";
 *
 * const image = await decodeImage(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * const x = preprocess(image, TORCHVISION_PREPROCESSING); // x: [1, 3, 224, 224]
 * ```
 *
 * - {@linkcode sniffImageFormat}: JPEG, PNG or GIF from magic bytes.
 * - {@linkcode decodeImage}: decode (first GIF frame) and apply EXIF orientation.
 * - {@linkcode applyOrientation}: the 8 EXIF orientations on RGBA pixels.
 * - {@linkcode resizeRgba}: antialiased bilinear resize (Pillow/torchvision style).
 * - {@linkcode preprocess}: resize, center crop, normalize, NCHW.
 * - {@linkcode prepareImage}: the resized and cropped image the model sees.
 *
 * Decoding needs `--allow-read` (the decoders' .wasm files under
 * node_modules) and `--allow-env` (imagescript reads `IMAGESCRIPT_WASM_SIMD`);
 * not `--allow-ffi`, since imagescript's main module (which loads a native
 * addon) is never imported.
 *
 * @module
 */
export type { DecodedImage } from "./decoded_image.ts";
export type { PreprocessSpec, ResizePolicy } from "./preprocess_spec.ts";
export { type ImageFormat, sniffImageFormat } from "./sniff.ts";
export { decodeImage, type DecodeOptions, DEFAULT_MAX_PIXELS } from "./decode.ts";
export { applyOrientation, isOrientation, type Orientation } from "./orientation.ts";
export { resizeRgba } from "./resize.ts";
export { prepareImage, preprocess } from "./preprocess.ts";
export { warmUpImagePath } from "./warm_up.ts";
