/**
 * The control words shared by split.ts and _split_worker.ts (an Int32Array over a
 * SharedArrayBuffer; X_SCALE is read through a Float32Array over the same bytes).
 *
 * A run: the main thread writes the input to the data block, the fields below, then
 * increments REQUEST and notifies it; the helper (waiting on REQUEST) runs the layer,
 * writes its output at OUT_OFFSET of the data block, STATUS, then stores the REQUEST
 * value it served in DONE and notifies DONE, on which the main thread waits.
 *
 * @module
 */
export const CONTROL = {
  REQUEST: 0,
  DONE: 1,
  STATUS: 2,
  LAYER: 3,
  N: 4,
  C: 5,
  H: 6,
  W: 7,
  RELU: 8,
  X_SCALE: 9,
  X_ZERO: 10,
  IN_LEN: 11,
  OUT_LEN: 12,
  OUT_OFFSET: 13,
  QUIT: 14,
  ACK: 15,
} as const;

/** Int32 words of the control block. */
export const CONTROL_WORDS = 16;
