//! ONNX LRN (opsets 1 and 13) for NCHW float32:
//!
//! ```text
//! y[n, c, h, w] = x[n, c, h, w] / (bias + alpha / size * S[n, c, h, w])^beta
//! S[n, c, h, w] = sum of x[n, i, h, w]^2 for i in
//!                 [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] clipped to [0, C)
//! ```
//!
//! Both window-sum strategies (`window_blocks` for size <= `BLOCKS_MAX_SIZE`,
//! `window_sliding` above) walk an image in tiles of pixels, four pixels per f32x4
//! vector, and hand each channel's window sums to a `Finish`, which forms
//! d = bias + alpha/size * S and y = x / d^beta:
//! - beta == 0.75 (AlexNet): y = x / sqrt(d * sqrt(d)) in f32, two correctly rounded
//!   square roots and a division instead of exp/log (about 2 ulp);
//! - beta == 0: y = x, as d^0 == 1 for every d (NaN included, like Math.pow);
//! - otherwise: d and d^-beta in f64 (`math::Pow`), y = x * d^-beta rounded once
//!   to f32 (a multiply where x / d^beta would cost a second division; the two
//!   agree on zero, infinite and negative d as well).

use crate::math::{F64x4, Pow};
use crate::simd::widen;
use crate::window_blocks::{self, BlockRow};
use crate::window_sliding;
use core::arch::wasm32::*;

/// Largest size summed in f32 by `window_blocks`: a sum of `size` rounded squares
/// with size - 1 rounded additions, all of positive terms, is within size * 2^-24
/// relative (<= 9.6e-7 at 16), half the 2e-6 budget even in the worst case. Larger
/// windows (rare: AlexNet and GoogLeNet use 5) take the f64 running sums of
/// `window_sliding`.
pub const BLOCKS_MAX_SIZE: usize = 16;

pub struct Params {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

/// Channels of the window below and above its centre: floor((size - 1) / 2) and
/// ceil((size - 1) / 2).
pub struct Window {
    pub size: usize,
    pub before: usize,
    pub after: usize,
}

/// x, y: [N, C, H*W] with N = x.len() / (C * H*W); `c * hw` must be > 0.
pub fn lrn_nchw(x: &[f32], y: &mut [f32], c: usize, hw: usize, p: &Params) {
    if p.beta == 0.0 {
        y.copy_from_slice(x);
        return;
    }
    let before = (p.size - 1) / 2;
    let window = Window { size: p.size, before, after: p.size - 1 - before };
    let scale = p.alpha as f64 / p.size as f64;
    if p.beta == 0.75 {
        let f = Beta075 { bias: f32x4_splat(p.bias), scale: f32x4_splat(scale as f32) };
        images(x, y, c, hw, &window, &f);
    } else {
        let f = General {
            bias: f64x2_splat(p.bias as f64),
            scale: f64x2_splat(scale),
            inverse: Pow::new(-p.beta),
        };
        images(x, y, c, hw, &window, &f);
    }
}

// x, y: [N, C, HW]
fn images(x: &[f32], y: &mut [f32], c: usize, hw: usize, window: &Window, f: &dyn Rows) {
    for (x, y) in x.chunks_exact(c * hw).zip(y.chunks_exact_mut(c * hw)) {
        if window.size <= BLOCKS_MAX_SIZE {
            window_blocks::image(x, y, c, hw, window, f);
        } else {
            window_sliding::image(x, y, c, hw, window, f);
        }
    }
}

/// The per-row loops, compiled once per `Finish` with the finish inlined: the hot
/// code. The tiling code above them takes `&dyn Rows` (one dynamic call per row of
/// up to 256 pixels), so it exists once in the module instead of once per `Finish`.
pub trait Rows {
    /// `window_blocks`: see `BlockRow`. Slices: [4k]
    fn blocks_row(&self, row: BlockRow);
    /// `window_sliding`: s += enter^2 - leave^2 in f64, y = finish(x, s). Slices: [4k]
    fn sliding_row(&self, s: &mut [f64], enter: &[f32], leave: &[f32], x: &[f32], y: &mut [f32]);
}

impl<F: Finish> Rows for F {
    // Out of line also so that V8 sees one loop per function; the loop's constants
    // then stay put rather than being rebuilt per vector.
    #[inline(never)]
    fn blocks_row(&self, row: BlockRow) {
        window_blocks::output_vectors(row, self)
    }

    #[inline(never)]
    fn sliding_row(&self, s: &mut [f64], enter: &[f32], leave: &[f32], x: &[f32], y: &mut [f32]) {
        window_sliding::step_vectors(s, enter, leave, x, y, self)
    }
}

/// Turns four pixels' window sums into their outputs.
pub trait Finish {
    /// x: [4] f32, s: [4] f32 window sums (>= 0 or NaN) -> y: [4] f32
    fn finish(&self, x: v128, s: v128) -> v128;
}

struct Beta075 {
    bias: v128,
    scale: v128,
}

impl Finish for Beta075 {
    #[inline(always)]
    fn finish(&self, x: v128, s: v128) -> v128 {
        let d = f32x4_add(self.bias, f32x4_mul(self.scale, s));
        // d^0.75 = sqrt(d * sqrt(d)).
        f32x4_div(x, f32x4_sqrt(f32x4_mul(d, f32x4_sqrt(d))))
    }
}

struct General {
    bias: v128,
    scale: v128,
    /// d -> d^-beta
    inverse: Pow,
}

impl Finish for General {
    #[inline(always)]
    fn finish(&self, x: v128, s: v128) -> v128 {
        let (x_lo, x_hi) = widen(x);
        let (s_lo, s_hi) = widen(s);
        let d = F64x4(
            f64x2_add(self.bias, f64x2_mul(self.scale, s_lo)),
            f64x2_add(self.bias, f64x2_mul(self.scale, s_hi)),
        );
        let r = self.inverse.apply(d);
        crate::simd::narrow(f64x2_mul(x_lo, r.0), f64x2_mul(x_hi, r.1))
    }
}
