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

use crate::qgemm::{self, Sink};
use crate::quantize::{center_u8, quantize_centered, Quantizer};
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
        let scale = f32x4_mul(f32x4_splat(self.x_scale), load_upto4(&self.scales[row0..]));
        let mut y = f32x4_mul(f32x4_convert_i32x4(acc), scale);
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
        let out = &mut self.y[n * self.m + row0..(n + 1) * self.m];
        if out.len() >= 4 {
            store4(out, v);
        } else {
            let lanes = [
                f32x4_extract_lane::<0>(v),
                f32x4_extract_lane::<1>(v),
                f32x4_extract_lane::<2>(v),
            ];
            let len = out.len();
            out.copy_from_slice(&lanes[..len]);
        }
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
