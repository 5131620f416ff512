/**
 * A first decode costs several times a later one: the decode module is compiled, its memory
 * grown and the resampler's code is still cold (a 448x288 photo: 38-70 ms the first time, 11-17
 * after a warm-up, 7-11 later, on the project's VM). Decoding and preprocessing this small
 * built-in JPEG once, where the time is free (an inference Worker waiting for its model while the
 * server's thread reads it), leaves a server's first request the warm cost.
 *
 * @module
 */
import { decodeImage } from "./decode.ts";
import { preprocess } from "./preprocess.ts";
import type { PreprocessSpec } from "./preprocess_spec.ts";

/** A 64x48 colour gradient, baseline JPEG, 1,164 bytes (made with imagescript, quality 75). */
const WARM_JPEG_BASE64 =
  "/9j/4AAQSkZJRgABAgAAAQABAAD/wAARCAAwAEADAREAAhEBAxEB/9sAQwAIBgYHBgUIBwcHCQkICgwUDQwLCwwZEhMP" +
  "FB0aHx4dGhwcICQuJyAiLCMcHCg3KSwwMTQ0NB8nOT04MjwuMzQy/9sAQwEJCQkMCwwYDQ0YMiEcITIyMjIyMjIyMjIy" +
  "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI" +
  "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol" +
  "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip" +
  "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA" +
  "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR" +
  "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX" +
  "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA" +
  "PwDw+K19qqJMKpditfatYnZCqXIrX2raJ206pcitfatonZTql2K19q2idtOqXIrX2raJ2U6pcitfatonbCqXIrX2raJ2" +
  "QqnCRWvtXykT8XhVLkVr7VtE7YVS5Fa+1bROyFUuRWvtW0TthVLsVr7VtE7KdUuRWvtW0Ttp1S5Fa+1bROynVLsVr7Vt" +
  "E7IVTg4rX2r5SJ+MU6pcitfatonZCqXIrX2raJ2wql2K19q2idlOqXIrX2raJ2QqlyK19q2idtOqXYrX2raJ2U6pbjtg" +
  "Bk8AVo5xhFyk7JHbTqHCRWvtXy0T8Xp1S5Fa+1bROynVLsVr7VtE7YVS5Fa+1bROyFUuRWvtW0Ttp1S7Fa+1bROynVLc" +
  "dsAMngCtHOMIuUnZI7adQhmzMdicRj9a/Os8z6WOl7GjpSX/AJN5vy7L5vWyXs4f3dXuctFa+1fRRPwqnVLsVr7VtE7a" +
  "dUuRWvtW0TshVLkVr7VtE7YVS5Fa+1bROyFUuR2wAyeAOtaOcYRcpOyW7O2nUIJszHYnEY/WvzrPM+ljpexo6Ul/5N5v" +
  "y7L5vWyXs4f3dXuPitfavAielCqYEVr7V+jxPwWnVLsVr7VtE7KdUuRWvtW0Ttp1S5Fa+1bROyFUuR2wAyeAK0c4wi5S" +
  "dkt2dtOoQTZmOxOIx+tfnWeZ9LHS9jR0pL/ybzfl2XzetkvZw/u6vcfFa+1eBE9KFUuRWvtWsTshVP/Z";

/** ImageNet's preprocessing, as most models here take it. */
const IMAGENET: PreprocessSpec = {
  width: 224,
  height: 224,
  resize: { mode: "shorter_side", size: 256 },
  channelOrder: "RGB",
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/**
 * Decodes and preprocesses the built-in JPEG once; returns the tensor's length (0 when it
 * failed: a warm-up that fails leaves the first request to pay as before).
 *
 * @example
 * ```ts
 * await warmUpImagePath(); // 3 * 224 * 224
 * ```
 */
export async function warmUpImagePath(spec: PreprocessSpec = IMAGENET): Promise<number> {
  try {
    const bytes = Uint8Array.fromBase64(WARM_JPEG_BASE64);
    return preprocess(await decodeImage(bytes, { fitFor: spec }), spec).length;
  } catch {
    return 0;
  }
}
