//! ONNX QuantizeLinear to uint8 with one scale and zero point per tensor, computed
//! the way onnxruntime computes it (mlas `quantize.cpp`):
//!
//! ```text
//! q = clamp(round_half_even(x / scale) + zero_point, 0, 255)
//! ```
//!
//! `x / scale` is one f32 division (a multiply by 1 / scale would round differently),
//! rounded to the nearest integer with ties to even, then saturated; +-inf saturate to
//! 0 or 255 and NaN gives 0, as in onnxruntime-web (tests/runtime/kernels/
//! qlinear_ort_test.ts). The GEMM works on the centred value xc = q - zero_point in
//! [-255, 255], which `quantize_centered` writes directly as i16.
//!
//! The int16 layers (qlinear.rs) round their input per call and per sample instead,
//! symmetric over the sample's own range:
//!
//! ```text
//! s  = f32(max |x| / q_max) over the finite values of x (1 when that is 0)
//! xc = clamp(round_half_even(x / s), -q_max, q_max)      (NaN -> 0, +-inf saturate)
//! ```
//!
//! with q_max = 32767 for the Gemm (`Q16_MAX`) and smaller for the Conv (qconv.rs).

use crate::simd::*;
use core::arch::wasm32::*;

/// Quantization parameters as lanes, worked out once per call.
pub struct Quantizer {
    scale: v128,
    /// -zero_point and 255 - zero_point: the saturation bounds of q - zero_point.
    lo: v128,
    hi: v128,
    /// -zero_point as i32 lanes: where NaN ends up once the zero point is added back.
    nan: v128,
    zero_point: v128,
}

impl Quantizer {
    pub fn new(scale: f32, zero_point: u8) -> Quantizer {
        let z = zero_point as i32;
        Quantizer {
            scale: f32x4_splat(scale),
            lo: f32x4_splat(-z as f32),
            hi: f32x4_splat((255 - z) as f32),
            nan: i32x4_splat(-z),
            zero_point: i32x4_splat(z),
        }
    }

    /// The symmetric grid of `scale`: xc in [-q_max, q_max] (q_max <= 32767), NaN to 0.
    pub fn symmetric(scale: f32, q_max: f32) -> Quantizer {
        Quantizer {
            scale: f32x4_splat(scale),
            lo: f32x4_splat(-q_max),
            hi: f32x4_splat(q_max),
            nan: i32x4_splat(0),
            zero_point: i32x4_splat(0),
        }
    }

    /// x: 4 f32 lanes -> q - zero_point as 4 i32 lanes in [-zero_point, 255 - zero_point].
    #[inline(always)]
    pub fn centered4(&self, x: v128) -> v128 {
        let r = f32x4_nearest(f32x4_div(x, self.scale));
        // f32x4.max/min give NaN when either lane is NaN; trunc_sat then makes it 0,
        // so NaN lanes are patched to -zero_point (q = 0) by the select.
        let c = i32x4_trunc_sat_f32x4(f32x4_min(f32x4_max(r, self.lo), self.hi));
        v128_bitselect(c, self.nan, f32x4_eq(r, r))
    }
}

/// Largest |xc| of the int16 grid (symmetric: -32768 is not used).
pub const Q16_MAX: f32 = 32767.0;

/// The symmetric scale of x for the grid [-q_max, q_max]: f32(max |x| / q_max) over
/// its finite values (NaN and +-inf are left out), or 1 when that is 0 (x all zeros).
pub fn symmetric_scale(x: &[f32], q_max: f32) -> f32 {
    let inf = f32x4_splat(f32::INFINITY);
    // |x|, with NaN and inf lanes as 0 (a < inf is false for both).
    let finite_abs = |v: v128| {
        let a = f32x4_abs(v);
        v128_and(a, f32x4_lt(a, inf))
    };
    let mut m = f32x4_splat(0.0);
    let mut xs = x.chunks_exact(4);
    for x in &mut xs {
        m = f32x4_max(m, finite_abs(load4(x)));
    }
    for v in xs.remainder() {
        m = f32x4_max(m, finite_abs(f32x4_splat(*v)));
    }
    let mut max = 0.0f32;
    for v in [
        f32x4_extract_lane::<0>(m),
        f32x4_extract_lane::<1>(m),
        f32x4_extract_lane::<2>(m),
        f32x4_extract_lane::<3>(m),
    ] {
        if v > max {
            max = v;
        }
    }
    let s = max / q_max;
    if s > 0.0 {
        s
    } else {
        1.0
    }
}

/// q = QuantizeLinear(x). x, q: [len]
pub fn quantize_u8(x: &[f32], q: &mut [u8], p: &Quantizer) {
    let mut xs = x.chunks_exact(16);
    let mut qs = q.chunks_exact_mut(16);
    for (x, q) in (&mut xs).zip(&mut qs) {
        let a = i32x4_add(p.centered4(load4(&x[0..4])), p.zero_point);
        let b = i32x4_add(p.centered4(load4(&x[4..8])), p.zero_point);
        let c = i32x4_add(p.centered4(load4(&x[8..12])), p.zero_point);
        let d = i32x4_add(p.centered4(load4(&x[12..16])), p.zero_point);
        // Every lane is in [0, 255], so the saturating narrows are exact.
        let v = u8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b), i16x8_narrow_i32x4(c, d));
        let q: &mut [u8; 16] = (&mut q[..16]).try_into().unwrap();
        *q = u8x16_bytes(v);
    }
    for (x, q) in xs.remainder().iter().zip(qs.into_remainder()) {
        let v = i32x4_add(p.centered4(f32x4_splat(*x)), p.zero_point);
        *q = i32x4_extract_lane::<0>(v) as u8;
    }
}

/// xc = QuantizeLinear(x) - zero_point as i16. x, xc: [len]
pub fn quantize_centered(x: &[f32], xc: &mut [i16], p: &Quantizer) {
    let mut xs = x.chunks_exact(8);
    let mut cs = xc.chunks_exact_mut(8);
    for (x, c) in (&mut xs).zip(&mut cs) {
        let a = p.centered4(load4(&x[0..4]));
        let b = p.centered4(load4(&x[4..8]));
        store_i16x8(c, i16x8_narrow_i32x4(a, b));
    }
    for (x, c) in xs.remainder().iter().zip(cs.into_remainder()) {
        *c = i32x4_extract_lane::<0>(p.centered4(f32x4_splat(*x))) as i16;
    }
}

/// xc = q - zero_point as i16. q, xc: [len]
pub fn center_u8(q: &[u8], xc: &mut [i16], zero_point: u8) {
    let z = i16x8_splat(zero_point as i16);
    let mut qs = q.chunks_exact(16);
    let mut cs = xc.chunks_exact_mut(16);
    for (q, c) in (&mut qs).zip(&mut cs) {
        let v = load_bytes(q);
        let lo = i16x8_sub(u16x8_extend_low_u8x16(v), z);
        let hi = i16x8_sub(u16x8_extend_high_u8x16(v), z);
        store_i16x8(&mut c[0..8], lo);
        store_i16x8(&mut c[8..16], hi);
    }
    for (q, c) in qs.remainder().iter().zip(cs.into_remainder()) {
        *c = *q as i16 - zero_point as i16;
    }
}

#[inline(always)]
fn u8x16_bytes(v: v128) -> [u8; 16] {
    // SAFETY: v128 and [u8; 16] have the same size and every bit pattern is valid.
    unsafe { core::mem::transmute::<v128, [u8; 16]>(v) }
}
