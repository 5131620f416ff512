//! The int8 GEMM under the quantized Gemm and Conv kernels:
//!
//! ```text
//! acc[n, m] = sum over k of xc[n, k] * w[m, k]      (exact in i32)
//! xc = x_q - z_x in [-255, 255] (i16), w in [-128, 127] (i8), K <= MAX_K
//! ```
//!
//! Packed weights: rows in blocks of `ROWS` = 4, K padded to `KP`, a multiple of 16,
//! and stored as w' = w + 128 (u8). Block b holds rows 4b..4b+3 as K/16 chunks of
//! 64 bytes, one 16-byte run per row, so the kernel reads one stream. Within a run,
//! byte 2j holds w'[16c + j] and byte 2j + 1 holds w'[16c + 8 + j]: seen as eight
//! u16 lanes, `v & 0xff` gives w' of k = 16c..16c+7 and `v >> 8` those of
//! 16c+8..16c+15, two instructions for 16 weights where sign-extending i8 takes
//! three. Both pair with the natural order of xc in i32x4.dot_i16x8_s, so
//!
//! ```text
//! sum xc * w = sum xc * w' - 128 * sum xc
//! ```
//!
//! and the second term is one subtraction per sample. Padding rows and columns hold
//! w' = 128 (w = 0) and padding xc is 0, so neither changes a sum.
//!
//! Exactness: a dot lane adds two products of at most 255 * 255, and i32 lanes wrap,
//! so only the final sum must fit: K * 255 * 128 < 2^31 for K <= MAX_K.

use crate::simd::*;
use core::arch::wasm32::*;

/// Rows per packed block.
pub const ROWS: usize = 4;
/// K is padded to a multiple of this.
pub const KC: usize = 16;
/// Largest K whose sums fit in i32 (see the module comment).
pub const MAX_K: usize = 65536;
/// Samples per tile: the tile's xc rows (TILE * KP * 2 bytes) are kept hot in cache
/// while every weight block passes over them.
const TILE_BYTES: usize = 96 * 1024;

/// K padded to a multiple of `KC`.
pub fn padded_k(k: usize) -> usize {
    (k + KC - 1) / KC * KC
}

/// Bytes of the packed weights of an [m, k] matrix, or None when it overflows.
pub fn packed_len(m: usize, k: usize) -> Option<usize> {
    let blocks = m.checked_add(ROWS - 1)? / ROWS;
    blocks.checked_mul(ROWS)?.checked_mul(padded_k(k))
}

/// Packs rows [row0, row0 + rows) of an [m, k] int8 matrix. src: [rows, k] i8;
/// packed: `packed_len(m, k)` bytes. Packing row m - 1 also fills the padding rows.
pub fn pack(packed: &mut [u8], src: &[i8], m: usize, k: usize, row0: usize) {
    let kp = padded_k(k);
    let rows = src.len() / k;
    for r in row0..row0 + rows {
        write_row(packed, kp, r, Some(&src[(r - row0) * k..(r - row0 + 1) * k]));
    }
    if row0 + rows == m {
        for r in m..(m + ROWS - 1) / ROWS * ROWS {
            write_row(packed, kp, r, None);
        }
    }
}

/// Writes row r (None: zeros) into its place in the packed layout.
fn write_row(packed: &mut [u8], kp: usize, r: usize, row: Option<&[i8]>) {
    let block = &mut packed[r / ROWS * ROWS * kp..(r / ROWS + 1) * ROWS * kp];
    let lane = r % ROWS;
    for (c, chunk) in block.chunks_exact_mut(ROWS * KC).enumerate() {
        let run = &mut chunk[lane * KC..(lane + 1) * KC];
        for j in 0..KC {
            let k = c * KC + j / 2 + (j % 2) * (KC / 2);
            let w = row.and_then(|row| row.get(k)).map_or(0, |w| *w as i32);
            run[j] = (w + 128) as u8;
        }
    }
}

/// Receives the sums: rows [4b, 4b + 4) of sample n as i32x4, still holding
/// `128 * sum xc[n]` (see `exact`).
pub trait Sink {
    fn put(&mut self, n: usize, block: usize, sums: v128);
}

/// `sums` of `Sink::put` without the w' offset: the exact acc[n, 4b..4b+4].
#[inline(always)]
pub fn exact(sums: v128, xc_sum: i32) -> v128 {
    i32x4_sub(sums, i32x4_splat(xc_sum.wrapping_mul(128)))
}

/// For every sample n and block b: sink.put(n, b, sum over k of xc[n, k] * w'[4b.., k]).
/// packed: [blocks, KP / 16, 4, 16] u8; xc: [N, KP] i16.
pub fn gemm(packed: &[u8], kp: usize, xc: &[i16], sink: &mut impl Sink) {
    let n = xc.len() / kp;
    let blocks = packed.len() / (ROWS * kp);
    let tile = (TILE_BYTES / (2 * kp)).max(2) & !1;
    let mut t0 = 0;
    while t0 < n {
        let t1 = n.min(t0 + tile);
        for (b, w) in packed.chunks_exact(ROWS * kp).enumerate().take(blocks) {
            let mut s = t0;
            while s + 2 <= t1 {
                let x0 = &xc[s * kp..(s + 1) * kp];
                let x1 = &xc[(s + 1) * kp..(s + 2) * kp];
                let [a, c] = block2(w, x0, x1);
                sink.put(s, b, a);
                sink.put(s + 1, b, c);
                s += 2;
            }
            if s < t1 {
                sink.put(s, b, block1(w, &xc[s * kp..(s + 1) * kp]));
            }
        }
        t0 = t1;
    }
}

/// Four rows against one sample. w: [KP / 16, 4, 16] u8, x: [KP] i16.
#[inline(never)]
fn block1(w: &[u8], x: &[i16]) -> v128 {
    let mask = u16x8_splat(0xff);
    let mut acc = [i32x4_splat(0); ROWS];
    for (w, x) in w.chunks_exact(ROWS * KC).zip(x.chunks_exact(KC)) {
        let xl = load_i16x8(&x[0..8]);
        let xh = load_i16x8(&x[8..16]);
        for r in 0..ROWS {
            let v = load_bytes(&w[r * KC..(r + 1) * KC]);
            let d = i32x4_add(
                i32x4_dot_i16x8(v128_and(v, mask), xl),
                i32x4_dot_i16x8(u16x8_shr(v, 8), xh),
            );
            acc[r] = i32x4_add(acc[r], d);
        }
    }
    reduce4(acc)
}

/// Four rows against two samples, unpacking each weight run once for both.
#[inline(never)]
fn block2(w: &[u8], x0: &[i16], x1: &[i16]) -> [v128; 2] {
    let mask = u16x8_splat(0xff);
    let mut acc0 = [i32x4_splat(0); ROWS];
    let mut acc1 = [i32x4_splat(0); ROWS];
    for ((w, x0), x1) in w.chunks_exact(ROWS * KC).zip(x0.chunks_exact(KC)).zip(x1.chunks_exact(KC))
    {
        let x0l = load_i16x8(&x0[0..8]);
        let x0h = load_i16x8(&x0[8..16]);
        let x1l = load_i16x8(&x1[0..8]);
        let x1h = load_i16x8(&x1[8..16]);
        for r in 0..ROWS {
            let v = load_bytes(&w[r * KC..(r + 1) * KC]);
            let lo = v128_and(v, mask);
            let hi = u16x8_shr(v, 8);
            acc0[r] = i32x4_add(
                acc0[r],
                i32x4_add(i32x4_dot_i16x8(lo, x0l), i32x4_dot_i16x8(hi, x0h)),
            );
            acc1[r] = i32x4_add(
                acc1[r],
                i32x4_add(i32x4_dot_i16x8(lo, x1l), i32x4_dot_i16x8(hi, x1h)),
            );
        }
    }
    [reduce4(acc0), reduce4(acc1)]
}

/// [sum of a[0]'s lanes, sum of a[1]'s, sum of a[2]'s, sum of a[3]'s]
#[inline(always)]
fn reduce4(a: [v128; ROWS]) -> v128 {
    let s01 = i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(a[0], a[1]), i32x4_shuffle::<1, 5, 3, 7>(a[0], a[1]));
    let s23 = i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(a[2], a[3]), i32x4_shuffle::<1, 5, 3, 7>(a[2], a[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
}
