//! Window sums for large windows (size > `BLOCKS_MAX_SIZE`): running sums in f64.
//!
//! Channels are walked in order with a sliding sum per pixel: add the square of the
//! channel entering the window, subtract the one leaving. An f32 square is exact in
//! f64, so the subtraction takes back what was added up to f64 rounding (~1e-16 of
//! the largest sum seen); an f32 running sum would drift and, after a large
//! activation leaves, could be wrong by more than the small sum that remains.
//!
//! An inf or NaN input poisons a running sum for every later channel (inf - inf),
//! so a tile whose final sums are not finite is recomputed with direct sums.

use crate::lrn::{Finish, Rows, Window};
use crate::simd::*;
use core::arch::wasm32::*;

/// Pixels per tile: 1 KiB rows and a 2 KiB f64 sum buffer.
const TILE: usize = 256;

/// Stands in for the channel entering or leaving the window when there is none:
/// adding and subtracting 0 leaves a sum unchanged, so the loop has no edge cases.
static ZEROS: [f32; TILE] = [0.0; TILE];

// x, y: [C, HW]
pub fn image(x: &[f32], y: &mut [f32], c: usize, hw: usize, w: &Window, f: &dyn Rows) {
    let mut sums = [0.0f64; TILE];
    let mut t0 = 0;
    while t0 < hw {
        let tile = Tile { c, hw, t0, len: TILE.min(hw - t0), before: w.before, after: w.after };
        // Whole vectors, so the tail's padding lanes have sums too (they stay 0).
        let s = &mut sums[..(tile.len + 3) & !3];
        tile.sliding(x, y, s, f);
        if !s.iter().all(|v| v.is_finite()) {
            tile.direct(x, y, s, f);
        }
        t0 += tile.len;
    }
}

/// Pixels [t0, t0 + len) of every channel of one image.
struct Tile {
    c: usize,
    hw: usize,
    t0: usize,
    len: usize,
    before: usize,
    after: usize,
}

impl Tile {
    // x: [C, HW] -> the tile's pixels of channel ch: [len]
    fn row<'a>(&self, x: &'a [f32], ch: usize) -> &'a [f32] {
        &x[ch * self.hw + self.t0..][..self.len]
    }

    fn row_mut<'a>(&self, y: &'a mut [f32], ch: usize) -> &'a mut [f32] {
        &mut y[ch * self.hw + self.t0..][..self.len]
    }

    /// Running window sums: O(1) per output whatever the size.
    fn sliding(&self, x: &[f32], y: &mut [f32], s: &mut [f64], f: &dyn Rows) {
        let zeros = &ZEROS[..self.len];
        // Window of channel 0: [0, after].
        s.fill(0.0);
        for ch in 0..=self.after.min(self.c - 1) {
            add_squares(s, self.row(x, ch));
        }
        for ch in 0..self.c {
            // Moving from ch - 1 to ch, channel ch + after enters, ch - 1 - before leaves.
            let entering = ch + self.after;
            let enter = if ch > 0 && entering < self.c { self.row(x, entering) } else { zeros };
            let leave = if ch > self.before { self.row(x, ch - 1 - self.before) } else { zeros };
            step(s, enter, leave, self.row(x, ch), self.row_mut(y, ch), f);
        }
    }

    /// Each window summed afresh: O(size) per output, immune to inf - inf.
    fn direct(&self, x: &[f32], y: &mut [f32], s: &mut [f64], f: &dyn Rows) {
        let zeros = &ZEROS[..self.len];
        for ch in 0..self.c {
            s.fill(0.0);
            let last = (ch + self.after).min(self.c - 1);
            for k in ch.saturating_sub(self.before)..=last {
                add_squares(s, self.row(x, k));
            }
            step(s, zeros, zeros, self.row(x, ch), self.row_mut(y, ch), f);
        }
    }
}

/// s += r^2 lane-wise. s: [len rounded up to 4], r: [len]
fn add_squares(s: &mut [f64], r: &[f32]) {
    let full = r.len() & !3;
    for (s4, r4) in s.chunks_exact_mut(4).zip(r[..full].chunks_exact(4)) {
        store_f64x4(s4, slide(load_f64x4(s4), load4(r4), f32x4_splat(0.0)));
    }
    if full < r.len() {
        let s4 = &mut s[full..full + 4];
        store_f64x4(s4, slide(load_f64x4(s4), load_partial(&r[full..]), f32x4_splat(0.0)));
    }
}

/// One channel of a tile: slide the window sums, then y = finish(x, S).
/// s: [len rounded up to 4]; enter, leave, x, y: [len]
fn step(s: &mut [f64], enter: &[f32], leave: &[f32], x: &[f32], y: &mut [f32], f: &dyn Rows) {
    let full = x.len() & !3;
    f.sliding_row(&mut s[..full], &enter[..full], &leave[..full], &x[..full], &mut y[..full]);
    if full < x.len() {
        // The last 1-3 pixels go through the same loop on zero-padded copies.
        let (mut e, mut l, mut x4, mut y4) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
        let rest = x.len() - full;
        e[..rest].copy_from_slice(&enter[full..]);
        l[..rest].copy_from_slice(&leave[full..]);
        x4[..rest].copy_from_slice(&x[full..]);
        f.sliding_row(&mut s[full..full + 4], &e, &l, &x4, &mut y4);
        y[full..].copy_from_slice(&y4[..rest]);
    }
}

/// `step` on whole vectors: every slice is [4k]. Compiled once per `Finish`
/// through `Rows::sliding_row`.
#[inline(always)]
pub fn step_vectors<F: Finish>(
    s: &mut [f64],
    enter: &[f32],
    leave: &[f32],
    x: &[f32],
    y: &mut [f32],
    f: &F,
) {
    let rows = enter.chunks_exact(4).zip(leave.chunks_exact(4));
    let pixels = x.chunks_exact(4).zip(y.chunks_exact_mut(4));
    for ((s4, (e4, l4)), (x4, y4)) in s.chunks_exact_mut(4).zip(rows).zip(pixels) {
        let sum = slide(load_f64x4(s4), load4(e4), load4(l4));
        store_f64x4(s4, sum);
        store4(y4, f.finish(load4(x4), to_f32(sum)));
    }
}

/// s + enter^2 - leave^2 for four lanes, squares and sums in f64.
#[inline(always)]
fn slide(s: (v128, v128), enter: v128, leave: v128) -> (v128, v128) {
    let (e_lo, e_hi) = widen(enter);
    let (l_lo, l_hi) = widen(leave);
    (
        f64x2_sub(f64x2_add(s.0, f64x2_mul(e_lo, e_lo)), f64x2_mul(l_lo, l_lo)),
        f64x2_sub(f64x2_add(s.1, f64x2_mul(e_hi, e_hi)), f64x2_mul(l_hi, l_hi)),
    )
}

/// The sums as f32 for `Finish`. The true sum is >= 0; rounding can leave a tiny
/// negative residue where it should be 0, so clamp (pmax keeps a NaN first operand).
#[inline(always)]
fn to_f32(s: (v128, v128)) -> v128 {
    let zero = f64x2_splat(0.0);
    narrow(f64x2_pmax(s.0, zero), f64x2_pmax(s.1, zero))
}
