/**
 * Where the model's input comes from in the decoded image: the resized size
 * and the crop offset, computed exactly as torchvision's `Resize(size)` and
 * `CenterCrop` do (including their rounding), so tensors match training.
 *
 * @module
 */
import type { PreprocessSpec } from "./preprocess_spec.ts";

/** The resize and crop for one image and spec. */
export interface Plan {
  /** Size the whole image is resized to. */
  resizedWidth: number;
  resizedHeight: number;
  /** Offset of the crop in the resized image; negative when the crop pads. */
  left: number;
  top: number;
}

/** Python's `round()`: halves go to the even neighbour (58.5 -> 58, 59.5 -> 60). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// torchvision's center_crop: round((size - crop) / 2); when the crop is larger
// it first pads (crop - size) // 2 on the leading side.
function cropOffset(size: number, crop: number): number {
  return size >= crop ? roundHalfEven((size - crop) / 2) : -Math.floor((crop - size) / 2);
}

/**
 * The resize and crop of a `width` x `height` image under `spec`.
 *
 * shorter_side: the shorter side becomes `size` and the longer
 * `int(size * long / short)` (truncated, as torchvision does); a square
 * image counts as width-shorter. Then a center crop to the input size.
 * direct: resized straight to the input size, no crop.
 */
export function planResize(width: number, height: number, spec: PreprocessSpec): Plan {
  if (spec.resize.mode === "direct") {
    return { resizedWidth: spec.width, resizedHeight: spec.height, left: 0, top: 0 };
  }
  const { size } = spec.resize;
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc(size * long / short);
  const [resizedWidth, resizedHeight] = width <= height ? [size, newLong] : [newLong, size];
  return {
    resizedWidth,
    resizedHeight,
    left: cropOffset(resizedWidth, spec.width),
    top: cropOffset(resizedHeight, spec.height),
  };
}
