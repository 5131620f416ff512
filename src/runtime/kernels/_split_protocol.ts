/**
 * The control words shared by split.ts and _split_worker.ts (an Int32Array over a
 * SharedArrayBuffer; X_SCALE is read through a Float32Array over the same bytes).
 *
 * A run: the main thread writes the input to the data block, the fields below, then
 * increments REQUEST and notifies it; the helper (waiting on REQUEST) runs the layer,
 * writes its output at OUT_OFFSET of the data block, STATUS, then stores the REQUEST
 * value it served in DONE and notifies DONE, on which the main thread waits.
 *
 * A chain (several layers per hand-off) reads x from, and writes its channels of y
 * into, buffers shared once with every helper (IN_BUFFER at IN_OFFSET, OUT_BUFFER at
 * OUT_OFFSET), so the output of one chain is the next one's input without a copy.
 * Between runs of an inference the helper blocks in `Atomics.wait` (a futex wake-up,
 * far quicker than the event-loop turn of `Atomics.waitAsync`); the main thread
 * notifies REQUEST without a new request to send it back to its event loop for a
 * set-up message.
 *
 * Request r is run by whoever first moves CLAIM from r - 1 to r: the helper always
 * tries; the main thread, for a chain (which also holds the helpers' shares), tries
 * once its own share is done and runs the helper's share itself if it wins, so a
 * helper that the OS has not scheduled yet costs a serial run, not a wait.
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
  /** Chains: the shared buffers (ids given with `{ op: "buffer" }`) and byte offset of x. */
  IN_BUFFER: 16,
  IN_OFFSET: 17,
  OUT_BUFFER: 18,
  /** The last request claimed, by the helper or (a conv-less chain) the main thread. */
  CLAIM: 19,
} as const;

/** Int32 words of the control block. */
export const CONTROL_WORDS = 20;

/**
 * How long a thread polls a control word before it blocks in `Atomics.wait` (µs):
 * within an inference the other side usually answers sooner than a futex wake-up
 * takes, and a short poll costs little even when a core is oversubscribed.
 */
export const SPIN_MICROS = 50;

/** Polls `words[index]` for up to SPIN_MICROS until `ready` holds for it; whether it did. */
export function spinFor(
  words: Int32Array,
  index: number,
  ready: (value: number) => boolean,
): boolean {
  const until = performance.now() + SPIN_MICROS / 1000;
  do {
    if (ready(Atomics.load(words, index))) return true;
  } while (performance.now() < until);
  return false;
}
