//! Small SIMD128 helpers so the kernels read as arithmetic.
//!
//! Loads and stores go through slices, not raw pointers: LLVM merges the four
//! scalar accesses of a 4-element chunk into one `v128.load`/`v128.store` (checked
//! in the disassembly when this was written), so no `unsafe` is needed here.

use core::arch::wasm32::*;

/// Four f32 lanes from `c[0..4]`.
#[inline(always)]
pub fn load4(c: &[f32]) -> v128 {
    f32x4(c[0], c[1], c[2], c[3])
}

/// Writes the four f32 lanes of `v` to `c[0..4]`.
#[inline(always)]
pub fn store4(c: &mut [f32], v: v128) {
    c[0] = f32x4_extract_lane::<0>(v);
    c[1] = f32x4_extract_lane::<1>(v);
    c[2] = f32x4_extract_lane::<2>(v);
    c[3] = f32x4_extract_lane::<3>(v);
}

/// Up to three f32 lanes from `c`, the rest 0: the H*W tail runs the same vector
/// code as the body, so every element gets bit-identical arithmetic.
#[inline(always)]
pub fn load_partial(c: &[f32]) -> v128 {
    let mut lanes = [0.0f32; 4];
    lanes[..c.len()].copy_from_slice(c);
    load4(&lanes)
}

/// Four f64 lanes from `c[0..4]`, as (lanes 0-1, lanes 2-3).
#[inline(always)]
pub fn load_f64x4(c: &[f64]) -> (v128, v128) {
    (f64x2(c[0], c[1]), f64x2(c[2], c[3]))
}

/// Writes four f64 lanes to `c[0..4]`.
#[inline(always)]
pub fn store_f64x4(c: &mut [f64], v: (v128, v128)) {
    c[0] = f64x2_extract_lane::<0>(v.0);
    c[1] = f64x2_extract_lane::<1>(v.0);
    c[2] = f64x2_extract_lane::<0>(v.1);
    c[3] = f64x2_extract_lane::<1>(v.1);
}

/// f32x4 -> (f64x2 of lanes 0-1, f64x2 of lanes 2-3); exact.
#[inline(always)]
pub fn widen(v: v128) -> (v128, v128) {
    let high = i32x4_shuffle::<2, 3, 2, 3>(v, v);
    (f64x2_promote_low_f32x4(v), f64x2_promote_low_f32x4(high))
}

/// (f64x2, f64x2) -> f32x4, each lane rounded once to nearest.
#[inline(always)]
pub fn narrow(low: v128, high: v128) -> v128 {
    i32x4_shuffle::<0, 1, 4, 5>(f32x4_demote_f64x2_zero(low), f32x4_demote_f64x2_zero(high))
}

/// The first 16 bytes of `b` as a v128 (any alignment).
#[inline(always)]
pub fn load_bytes(b: &[u8]) -> v128 {
    let b = &b[..16];
    // SAFETY: `b` is 16 readable bytes; v128_load is an unaligned load.
    unsafe { v128_load(b.as_ptr() as *const v128) }
}

/// The first 8 lanes of `c` as an i16x8 (any alignment).
#[inline(always)]
pub fn load_i16x8(c: &[i16]) -> v128 {
    let c = &c[..8];
    // SAFETY: `c` is 16 readable bytes; v128_load is an unaligned load.
    unsafe { v128_load(c.as_ptr() as *const v128) }
}

/// Writes the 8 i16 lanes of `v` to `c[0..8]`.
#[inline(always)]
pub fn store_i16x8(c: &mut [i16], v: v128) {
    let c = &mut c[..8];
    // SAFETY: `c` is 16 writable bytes borrowed exclusively; v128_store is unaligned.
    unsafe { v128_store(c.as_mut_ptr() as *mut v128, v) }
}

/// Writes the 4 i32 lanes of `v` to `c[0..4]`.
#[inline(always)]
pub fn store_i32x4(c: &mut [i32], v: v128) {
    let c = &mut c[..4];
    // SAFETY: `c` is 16 writable bytes borrowed exclusively; v128_store is unaligned.
    unsafe { v128_store(c.as_mut_ptr() as *mut v128, v) }
}
