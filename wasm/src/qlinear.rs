//! Quantized Gemm (transB layout) with a float epilogue, as our QDQ models define it:
//!
//! ```text
//! x_q[n, k] = QuantizeLinear(x[n, k]; s_x, z_x)                     (quantize.rs)
//! acc[n, m] = sum over k of (x_q[n, k] - z_x) * w[m, k]            (qgemm.rs, exact)
//! y[n, m]   = f32(acc[n, m]) * (s_x * s_w[m]) + bias[m], then max(y, 0) with ReLU
//! ```
//!
//! Every step of the last line is one f32 operation in that order (no fused
//! multiply-add), so plain TypeScript with Math.fround reproduces it bit for bit.
//!
//! The int16 layers (`linear16_f32`: weight-only int8 layers of the model, whose
//! input is float) take the same weights but round each sample n of x on its own
//! int16 grid (quantize.rs, `symmetric_scale`): s_n = max |x[n]| / 32767, xc = x / s_n
//! rounded, then the exact sums of `qgemm::gemm_wide` and the same epilogue with
//! s_n for s_x and f32(acc) rounded once from the exact sum. The input's rounding
//! error is at most s_n / 2 = max |x[n]| / 65534 per value, about 1/128 of a uint8
//! grid over the same range; the weights are read as often as in the uint8 layers.

use crate::qgemm::{self, Sink, WideSink};
use crate::quantize::{center_u8, quantize_centered, symmetric_scale, Quantizer, Q16_MAX};
use crate::simd::*;
use core::arch::wasm32::*;

/// One layer's weights: `qgemm::packed_len(m, k)` bytes packed from W: [m, k] i8.
pub struct Layer<'a> {
    pub packed: &'a [u8],
    pub m: usize,
    pub k: usize,
}

/// The float epilogue: y = f32(acc) * (s_x * s_w[m]) + bias[m] (then ReLU) for four
/// rows from `row0` (fewer at the end: `m` rows in all).
pub struct Epilogue<'a> {
    pub x_scale: f32,
    pub scales: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// acc: exact i32x4 of rows [row0, row0 + 4) -> f32x4 (lanes past the rows are junk).
    #[inline(always)]
    pub fn apply(&self, acc: v128, row0: usize) -> v128 {
        self.apply_f32(f32x4_convert_i32x4(acc), row0, self.x_scale)
    }

    /// As `apply` for sums already in f32 (f32x4 `acc`) and the input scale `x_scale`.
    #[inline(always)]
    pub fn apply_f32(&self, acc: v128, row0: usize, x_scale: f32) -> v128 {
        let scale = f32x4_mul(f32x4_splat(x_scale), load_upto4(&self.scales[row0..]));
        let mut y = f32x4_mul(acc, scale);
        if let Some(bias) = self.bias {
            y = f32x4_add(y, load_upto4(&bias[row0..]));
        }
        if self.relu {
            y = f32x4_max(y, f32x4_splat(0.0));
        }
        y
    }
}

/// Up to four f32 lanes from the start of `c`, the rest 0.
#[inline(always)]
fn load_upto4(c: &[f32]) -> v128 {
    if c.len() >= 4 {
        load4(c)
    } else {
        load_partial(c)
    }
}

/// y = the layer on x. x: [N, K] f32, y: [N, M] f32; xc: [N, KP] i16 scratch.
pub fn linear_f32(
    layer: &Layer,
    x: &[f32],
    xc: &mut [i16],
    quantizer: &Quantizer,
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let kp = qgemm::padded_k(layer.k);
    for (x, xc) in x.chunks_exact(layer.k).zip(xc.chunks_exact_mut(kp)) {
        quantize_centered(x, &mut xc[..layer.k], quantizer);
        xc[layer.k..].fill(0);
    }
    qgemm::gemm(layer.packed, kp, xc, &mut RowMajorF32 { y, m: layer.m, epilogue });
}

/// acc = the exact int32 sums for x_q. xq: [N, K] u8, acc: [N, M] i32; xc as above.
pub fn linear_acc(layer: &Layer, xq: &[u8], zero_point: u8, xc: &mut [i16], acc: &mut [i32]) {
    let kp = qgemm::padded_k(layer.k);
    for (q, xc) in xq.chunks_exact(layer.k).zip(xc.chunks_exact_mut(kp)) {
        center_u8(q, &mut xc[..layer.k], zero_point);
        xc[layer.k..].fill(0);
    }
    qgemm::gemm(layer.packed, kp, xc, &mut RowMajorI32 { acc, m: layer.m });
}

/// y = the int16 layer on x: each sample rounded to int16 on its own scale, exact
/// sums, the float epilogue (`epilogue.x_scale` is not used). x: [N, K] f32, y: [N, M]
/// f32; xc: [N, KP] i16 and x_scales: [N] f32 scratch (x_scales gets each s_n).
pub fn linear16_f32(
    layer: &Layer,
    x: &[f32],
    xc: &mut [i16],
    x_scales: &mut [f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let kp = qgemm::padded_k(layer.k);
    for ((x, xc), s) in
        x.chunks_exact(layer.k).zip(xc.chunks_exact_mut(kp)).zip(x_scales.iter_mut())
    {
        *s = symmetric_scale(x, Q16_MAX);
        quantize_centered(x, &mut xc[..layer.k], &Quantizer::symmetric(*s, Q16_MAX));
        xc[layer.k..].fill(0);
    }
    let mut sink = RowMajorWide { y, m: layer.m, x_scales, epilogue };
    qgemm::gemm_wide(layer.packed, kp, xc, &mut sink);
}

/// acc = the exact sums for any i16 input: sum over k of xq[n, k] * w[m, k].
/// xq: [N, K] i16, acc: [N, M] f64 (exact integers); xc: [N, KP] i16 scratch.
pub fn linear16_acc(layer: &Layer, xq: &[i16], xc: &mut [i16], acc: &mut [f64]) {
    let kp = qgemm::padded_k(layer.k);
    for (q, xc) in xq.chunks_exact(layer.k).zip(xc.chunks_exact_mut(kp)) {
        xc[..layer.k].copy_from_slice(q);
        xc[layer.k..].fill(0);
    }
    qgemm::gemm_wide(layer.packed, kp, xc, &mut RowMajorF64 { acc, m: layer.m });
}

/// y: [N, M] row-major, from the exact f64 sums and per-sample input scales.
struct RowMajorWide<'a> {
    y: &'a mut [f32],
    m: usize,
    x_scales: &'a [f32],
    epilogue: &'a Epilogue<'a>,
}

impl WideSink for RowMajorWide<'_> {
    #[inline(always)]
    fn put(&mut self, n: usize, block: usize, acc: (v128, v128)) {
        let row0 = block * qgemm::ROWS;
        // f32(acc): each exact sum rounded once.
        let v = self.epilogue.apply_f32(narrow(acc.0, acc.1), row0, self.x_scales[n]);
        store_upto4(&mut self.y[n * self.m + row0..(n + 1) * self.m], v);
    }
}

/// acc: [N, M] f64 row-major.
struct RowMajorF64<'a> {
    acc: &'a mut [f64],
    m: usize,
}

impl WideSink for RowMajorF64<'_> {
    #[inline(always)]
    fn put(&mut self, n: usize, block: usize, acc: (v128, v128)) {
        let row0 = block * qgemm::ROWS;
        let lanes = [
            f64x2_extract_lane::<0>(acc.0),
            f64x2_extract_lane::<1>(acc.0),
            f64x2_extract_lane::<0>(acc.1),
            f64x2_extract_lane::<1>(acc.1),
        ];
        let out = &mut self.acc[n * self.m + row0..(n + 1) * self.m];
        let len = out.len().min(qgemm::ROWS);
        out[..len].copy_from_slice(&lanes[..len]);
    }
}

/// Writes f32 lanes of `v` to the start of `out` (all four, or fewer at the end).
#[inline(always)]
fn store_upto4(out: &mut [f32], v: v128) {
    if out.len() >= 4 {
        store4(out, v);
    } else {
        let lanes =
            [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v)];
        let len = out.len();
        out.copy_from_slice(&lanes[..len]);
    }
}

/// y: [N, M] row-major.
struct RowMajorF32<'a> {
    y: &'a mut [f32],
    m: usize,
    epilogue: &'a Epilogue<'a>,
}

impl Sink for RowMajorF32<'_> {
    #[inline(always)]
    fn put(&mut self, n: usize, block: usize, acc: v128) {
        let row0 = block * qgemm::ROWS;
        let v = self.epilogue.apply(acc, row0);
        store_upto4(&mut self.y[n * self.m + row0..(n + 1) * self.m], v);
    }
}

/// acc: [N, M] row-major.
struct RowMajorI32<'a> {
    acc: &'a mut [i32],
    m: usize,
}

impl Sink for RowMajorI32<'_> {
    #[inline(always)]
    fn put(&mut self, n: usize, block: usize, v: v128) {
        let row0 = block * qgemm::ROWS;
        let out = &mut self.acc[n * self.m + row0..(n + 1) * self.m];
        if out.len() >= 4 {
            store_i32x4(out, v);
        } else {
            let lanes = [
                i32x4_extract_lane::<0>(v),
                i32x4_extract_lane::<1>(v),
                i32x4_extract_lane::<2>(v),
            ];
            let len = out.len();
            out.copy_from_slice(&lanes[..len]);
        }
    }
}
