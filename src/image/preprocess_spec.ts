/**
 * How a model wants its input image: the part of a model manifest that the
 * image path reads. Defined here (not in src/model) so data flows one way:
 * image -> tensor -> runtime.
 *
 * @module
 */

/** How the decoded image is brought to the model's input size. */
export type ResizePolicy =
  /** Resize so the shorter side equals `size` (keeping aspect ratio), then center-crop to the input size. */
  | { mode: "shorter_side"; size: number }
  /** Resize straight to the input size, ignoring aspect ratio (no crop). */
  | { mode: "direct" };

/**
 * Turning RGB pixels into the input tensor.
 *
 * For a pixel value p in 0..255 of channel c (R, G or B), the tensor holds
 * `(p * scale - mean[c]) / std[c]`; `mean` and `std` are always given in RGB
 * order, then the channels are written in `channelOrder`. Layout is NCHW.
 */
export interface PreprocessSpec {
  /** Model input width in pixels. */
  width: number;
  /** Model input height in pixels. */
  height: number;
  /** Resize policy before the (optional) center crop. */
  resize: ResizePolicy;
  /** Channel order of the tensor. */
  channelOrder: "RGB" | "BGR";
  /** Multiplier applied to 0..255 pixel values first (1/255 for [0, 1] inputs, 1 for raw). */
  scale: number;
  /** Per-channel mean in RGB order, subtracted after scaling. */
  mean: [number, number, number];
  /** Per-channel std in RGB order, divided after mean subtraction. */
  std: [number, number, number];
}
