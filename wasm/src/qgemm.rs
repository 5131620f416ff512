//! The int8 GEMM under the quantized Gemm and Conv kernels:
//!
//! ```text
//! acc[n, m] = sum over k of xc[n, k] * w[m, k]      (exact in i32)
//! xc = x_q - z_x in [-255, 255] (i16), w in [-128, 127] (i8), K <= MAX_K
//! ```
//!
//! Packed weights: rows in blocks of `ROWS` = 4 and K padded with zeros to KP, a
//! multiple of 16. Block b holds rows 4b..4b+3 as KP/16 chunks of 64 bytes, one
//! 16-byte run of k = 16c..16c+15 per row, so the kernel reads one sequential
//! stream. Rows past M are zeros too.
//!
//! The inner step is, per row and 16 weights: two `v128.load8x8_s` (load and
//! sign-extend to i16 in one instruction: `pmovsxbw` on x64), two
//! `i32x4.dot_i16x8_s` against the 16 xc values and two adds; the xc loads are
//! shared by the four rows. Measured against other shapes of this loop (in V8 on
//! Zen 4): storing w + 128 as u8 and unpacking with `and`/`shr` (then subtracting
//! 128 * sum xc) was about 13% slower; two blocks per pass (two weight streams) gained
//! at most ~7% on fc6 (best of 50 calls), inside this VM's noise, so the single stream
//! stays. Four rows times two samples per pass (`block_acc2`, convolutions and batches)
//! shares each widened weight load between two samples: written as two half-chunks of
//! 8 (8 accumulators + 2 x + 1 weight vector live) it runs the AlexNet convolutions in
//! 0.79x the time of one sample per pass (an A/B of both modules in one process,
//! 2026-11-28); an earlier version holding both half-chunks at once needed more than
//! x64's 16 vector registers and was 1.8x slower. Storing the weights pre-widened to
//! i16 was no faster (a micro-benchmark: 22 vs 22 GMAC/s one sample per pass).
//!
//! One sample (the batch-1 Gemm layers, `gemm_one` / `gemm_wide_one`) runs blocks b and
//! b + B/2 in one pass: two weight streams, each x load shared by 8 rows. On fc6's shape
//! the loop alone reads 15-18 GB/s against 10-14 for one block per pass (hand-written
//! wat loops over 37.7 MB, 2026-12-08), and the kernels run fc6 in 0.66-0.75x, fc7 in
//! 0.69-0.81x of the time (uint8 and int16 inputs). Blocks b and b + 1 instead were
//! ~5% slower than b and b + B/2 in the wat loops.
//!
//! Exactness: a dot lane adds two products of at most 255 * 128, and the sum over K
//! is at most K * 255 * 128 < 2^31 for K <= MAX_K.
//!
//! `gemm_wide` is the same loop for full-range i16 activations (the int16 layers of
//! qlinear.rs): a lane of `block_acc` gets 4 products per 16 weights, each at most
//! 32768 * 128 = 2^22 in magnitude, so an i32 lane stays exact over `WIDE_KC` = 1024
//! values of K (256 products: at most 2^30). After each such slice the lanes are
//! converted to f64 (exact) and added there; every partial sum is an integer below
//! MAX_K * 2^22 = 2^38 < 2^53, so the f64 totals are the exact sums whatever the
//! order. The conversion costs ~20 instructions per 4096 multiply-adds.

use crate::simd::*;
use core::arch::wasm32::*;

/// Rows per packed block.
pub const ROWS: usize = 4;
/// K is padded to a multiple of this.
pub const KC: usize = 16;
/// Largest K whose sums fit in i32 (see the module comment).
pub const MAX_K: usize = 65536;
/// K per exact i32 slice in `gemm_wide` (see the module comment).
pub const WIDE_KC: usize = 1024;
/// Bytes of xc per tile of samples: a tile stays in cache while every weight block
/// passes over it (each block, at most 4 * KP bytes, stays in L1 across the tile).
const TILE_BYTES: usize = 96 * 1024;

/// Samples per tile of `gemm` for a padded K: an even count (pairs go through
/// `block_acc2`) whose xc fits in `TILE_BYTES`, at least 2.
pub fn tile_samples(kp: usize) -> usize {
    (TILE_BYTES / (2 * kp.max(1)) & !1).max(2)
}

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
/// packed: `packed_len(m, k)` bytes. Packing row m - 1 also zeroes the padding rows.
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
        match row.and_then(|row| row.get(c * KC..(c + 1) * KC)) {
            // A whole run of KC weights: one 16-byte copy (the same bits as u8), not KC
            // checked reads; packing the synthetic int8 AlexNet went from ~95 to ~55 ms.
            Some(src) => {
                for (d, s) in run.iter_mut().zip(src) {
                    *d = *s as u8;
                }
            }
            // The last, partial run of a row (zero-padded to KC), or a padding row.
            None => {
                for j in 0..KC {
                    let w = row.and_then(|row| row.get(c * KC + j)).map_or(0, |w| *w);
                    run[j] = w as u8;
                }
            }
        }
    }
}

/// Receives the sums: acc[n, 4b..4b + 4] as i32x4 (lanes past M are 0).
pub trait Sink {
    fn put(&mut self, n: usize, block: usize, acc: v128);
}

/// For every sample n and block b: sink.put(n, b, acc[n, 4b..4b + 4]).
/// packed: [blocks, KP / 16, 4, 16] i8 (as u8); xc: [N, KP] i16.
pub fn gemm(packed: &[u8], kp: usize, xc: &[i16], sink: &mut impl Sink) {
    let n = xc.len() / kp;
    let blocks = packed.len() / (ROWS * kp);
    if n == 1 {
        return gemm_one(&packed[..blocks * ROWS * kp], kp, xc, sink);
    }
    let tile = tile_samples(kp);
    let mut t0 = 0;
    while t0 < n {
        let t1 = n.min(t0 + tile);
        for (b, w) in packed.chunks_exact(ROWS * kp).enumerate().take(blocks) {
            // Two samples per pass share each weight load; an odd last one goes alone.
            let mut s = t0;
            while s + 1 < t1 {
                let (a0, a1) =
                    block_acc2(w, &xc[s * kp..(s + 1) * kp], &xc[(s + 1) * kp..(s + 2) * kp]);
                sink.put(s, b, a0);
                sink.put(s + 1, b, a1);
                s += 2;
            }
            if s < t1 {
                sink.put(s, b, block_acc(w, &xc[s * kp..(s + 1) * kp]));
            }
        }
        t0 = t1;
    }
}

/// `gemm` for one sample (the batch-1 Gemm layers, bound by reading their weights):
/// blocks b and b + B/2 in one pass, two weight streams and 8 rows per x load.
fn gemm_one(packed: &[u8], kp: usize, x: &[i16], sink: &mut impl Sink) {
    let blocks = packed.len() / (ROWS * kp);
    let half = blocks / 2;
    let (first, second) = packed.split_at(half * ROWS * kp);
    for (b, (w0, w1)) in
        first.chunks_exact(ROWS * kp).zip(second.chunks_exact(ROWS * kp)).enumerate()
    {
        let (a0, a1) = row_lanes2(w0, w1, x);
        sink.put(0, b, reduce4(a0));
        sink.put(0, b + half, reduce4(a1));
    }
    if blocks % 2 == 1 {
        sink.put(0, blocks - 1, block_acc(&second[half * ROWS * kp..], x));
    }
}

/// Receives the exact sums of `gemm_wide`: acc[n, 4b..4b + 4] as two f64x2
/// (rows 4b, 4b + 1 and rows 4b + 2, 4b + 3; lanes past M are 0).
pub trait WideSink {
    fn put(&mut self, n: usize, block: usize, acc: (v128, v128));
}

/// `gemm` for xc anywhere in i16 (not only [-255, 255]): for every sample n and block
/// b, sink.put(n, b, acc[n, 4b..4b + 4]) as exact f64. One sample per pass (the
/// batch-1 fc layers it is for are bound by reading the weights).
pub fn gemm_wide(packed: &[u8], kp: usize, xc: &[i16], sink: &mut impl WideSink) {
    let n = xc.len() / kp;
    if n == 1 {
        return gemm_wide_one(packed, kp, xc, sink);
    }
    let tile = (TILE_BYTES / (2 * kp)).max(1);
    let mut t0 = 0;
    while t0 < n {
        let t1 = n.min(t0 + tile);
        for (b, w) in packed.chunks_exact(ROWS * kp).enumerate() {
            for s in t0..t1 {
                sink.put(s, b, block_acc_wide(w, &xc[s * kp..(s + 1) * kp]));
            }
        }
        t0 = t1;
    }
}

/// `gemm_wide` for one sample, blocks b and b + B/2 in one pass as in `gemm_one`.
fn gemm_wide_one(packed: &[u8], kp: usize, x: &[i16], sink: &mut impl WideSink) {
    let blocks = packed.len() / (ROWS * kp);
    let half = blocks / 2;
    let (first, second) = packed[..blocks * ROWS * kp].split_at(half * ROWS * kp);
    for (b, (w0, w1)) in
        first.chunks_exact(ROWS * kp).zip(second.chunks_exact(ROWS * kp)).enumerate()
    {
        let (a0, a1) = block_acc_wide2(w0, w1, x);
        sink.put(0, b, a0);
        sink.put(0, b + half, a1);
    }
    if blocks % 2 == 1 {
        sink.put(0, blocks - 1, block_acc_wide(&second[half * ROWS * kp..], x));
    }
}

/// The exact sums of four rows for one sample, `WIDE_KC` values of K at a time in
/// i32, then in f64: ([row 0, row 1], [row 2, row 3]).
#[inline(never)]
fn block_acc_wide(w: &[u8], x: &[i16]) -> (v128, v128) {
    let mut total = [f64x2_splat(0.0); ROWS];
    for (w, x) in w.chunks(ROWS * WIDE_KC).zip(x.chunks(WIDE_KC)) {
        add_wide(&mut total, row_lanes(w, x));
    }
    reduce_wide(total)
}

/// `block_acc_wide` of two blocks against one sample in one pass (`row_lanes2`).
#[inline(never)]
fn block_acc_wide2(w0: &[u8], w1: &[u8], x: &[i16]) -> ((v128, v128), (v128, v128)) {
    let mut t0 = [f64x2_splat(0.0); ROWS];
    let mut t1 = [f64x2_splat(0.0); ROWS];
    for ((w0, w1), x) in
        w0.chunks(ROWS * WIDE_KC).zip(w1.chunks(ROWS * WIDE_KC)).zip(x.chunks(WIDE_KC))
    {
        let (a0, a1) = row_lanes2(w0, w1, x);
        add_wide(&mut t0, a0);
        add_wide(&mut t1, a1);
    }
    (reduce_wide(t0), reduce_wide(t1))
}

/// total[r] += the i32 lanes of acc[r] as f64 (lanes 0 + 2, lanes 1 + 3; exact).
#[inline(always)]
fn add_wide(total: &mut [v128; ROWS], acc: [v128; ROWS]) {
    for r in 0..ROWS {
        let high = i32x4_shuffle::<2, 3, 2, 3>(acc[r], acc[r]);
        let pair = f64x2_add(f64x2_convert_low_i32x4(acc[r]), f64x2_convert_low_i32x4(high));
        total[r] = f64x2_add(total[r], pair);
    }
}

/// ([row 0, row 1], [row 2, row 3]): each row's two f64 lanes summed.
#[inline(always)]
fn reduce_wide(total: [v128; ROWS]) -> (v128, v128) {
    let sum =
        |a: v128, b: v128| f64x2_add(i64x2_shuffle::<0, 2>(a, b), i64x2_shuffle::<1, 3>(a, b));
    (sum(total[0], total[1]), sum(total[2], total[3]))
}

/// acc of four rows (one block) for one sample. w: [KP / 16, 4, 16] i8 as u8, x: [KP] i16.
#[inline(never)]
fn block_acc(w: &[u8], x: &[i16]) -> v128 {
    reduce4(row_lanes(w, x))
}

/// The i32 lane sums of four rows against one sample, unreduced: lane j of row r
/// holds the products of every 4th pair from j. w: [len / 16, 4, 16] i8 as u8.
#[inline(always)]
fn row_lanes(w: &[u8], x: &[i16]) -> [v128; ROWS] {
    let mut acc = [i32x4_splat(0); ROWS];
    for (w, x) in w.chunks_exact(ROWS * KC).zip(x.chunks_exact(KC)) {
        let xl = load_i16x8(&x[0..8]);
        let xh = load_i16x8(&x[8..16]);
        for r in 0..ROWS {
            let (lo, hi) = load_i8x16_as_i16(&w[r * KC..(r + 1) * KC]);
            let d = i32x4_add(i32x4_dot_i16x8(lo, xl), i32x4_dot_i16x8(hi, xh));
            acc[r] = i32x4_add(acc[r], d);
        }
    }
    acc
}

/// `row_lanes(w0, x)` and `row_lanes(w1, x)` in one pass: each x load serves 8 rows of
/// two weight streams (8 accumulators, 2 x and 2 weight vectors live).
#[inline(always)]
fn row_lanes2(w0: &[u8], w1: &[u8], x: &[i16]) -> ([v128; ROWS], [v128; ROWS]) {
    let mut a = [i32x4_splat(0); ROWS];
    let mut b = [i32x4_splat(0); ROWS];
    for ((w0, w1), x) in
        w0.chunks_exact(ROWS * KC).zip(w1.chunks_exact(ROWS * KC)).zip(x.chunks_exact(KC))
    {
        let xl = load_i16x8(&x[0..8]);
        let xh = load_i16x8(&x[8..16]);
        for r in 0..ROWS {
            let (lo, hi) = load_i8x16_as_i16(&w0[r * KC..(r + 1) * KC]);
            a[r] = i32x4_add(a[r], i32x4_add(i32x4_dot_i16x8(lo, xl), i32x4_dot_i16x8(hi, xh)));
            let (lo, hi) = load_i8x16_as_i16(&w1[r * KC..(r + 1) * KC]);
            b[r] = i32x4_add(b[r], i32x4_add(i32x4_dot_i16x8(lo, xl), i32x4_dot_i16x8(hi, xh)));
        }
    }
    (a, b)
}

/// acc of four rows (one block) for two samples: `block_acc(w, x0)`, `block_acc(w, x1)`.
/// Each half-chunk of 8 weights is loaded and widened once for both samples; 8
/// accumulators, 2 x vectors and 1 weight vector stay in registers (x64 has 16).
#[inline(never)]
fn block_acc2(w: &[u8], x0: &[i16], x1: &[i16]) -> (v128, v128) {
    let mut a = [i32x4_splat(0); ROWS];
    let mut b = [i32x4_splat(0); ROWS];
    for ((w, x0), x1) in w.chunks_exact(ROWS * KC).zip(x0.chunks_exact(KC)).zip(x1.chunks_exact(KC))
    {
        for half in 0..2 {
            let xa = load_i16x8(&x0[half * 8..half * 8 + 8]);
            let xb = load_i16x8(&x1[half * 8..half * 8 + 8]);
            for r in 0..ROWS {
                let wv = load_i8x8_as_i16(&w[r * KC + half * 8..r * KC + half * 8 + 8]);
                a[r] = i32x4_add(a[r], i32x4_dot_i16x8(wv, xa));
                b[r] = i32x4_add(b[r], i32x4_dot_i16x8(wv, xb));
            }
        }
    }
    (reduce4(a), reduce4(b))
}

/// The 8 bytes of `b` as i8, sign-extended to an i16x8.
#[inline(always)]
fn load_i8x8_as_i16(b: &[u8]) -> v128 {
    let b = &b[..8];
    // SAFETY: `b` is 8 readable bytes; the load is an unaligned 8-byte load.
    unsafe { i16x8_load_extend_i8x8(b.as_ptr() as *const i8) }
}

/// [sum of a[0]'s lanes, sum of a[1]'s, sum of a[2]'s, sum of a[3]'s]
#[inline(always)]
pub fn reduce4(a: [v128; ROWS]) -> v128 {
    let s01 =
        i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(a[0], a[1]), i32x4_shuffle::<1, 5, 3, 7>(a[0], a[1]));
    let s23 =
        i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(a[2], a[3]), i32x4_shuffle::<1, 5, 3, 7>(a[2], a[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
}

/// The 16 bytes of `b` as i8, sign-extended: (i16x8 of 0..8, i16x8 of 8..16).
#[inline(always)]
fn load_i8x16_as_i16(b: &[u8]) -> (v128, v128) {
    let b = &b[..16];
    // SAFETY: `b` is 16 readable bytes; the loads are unaligned 8-byte loads.
    unsafe {
        (
            i16x8_load_extend_i8x8(b.as_ptr() as *const i8),
            i16x8_load_extend_i8x8(b.as_ptr().add(8) as *const i8),
        )
    }
}
