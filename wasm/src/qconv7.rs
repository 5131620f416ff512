//! The quantized Conv for uint8 activations and 7-bit weights (every w in -63..63), on
//! one 16-wide dot per 16 multiply-adds (relaxed SIMD's
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s`, wasm/relaxed/dot7.wat):
//!
//! ```text
//! a = x_q - 128 (i8), v = w + 64 (0..127: exact on every engine)
//! sum over k of (x_q - z_x) * w = dot(a, v) - 64 * sum a + (128 - z_x) * sum w
//! ```
//!
//! sum a is one value per im2col row (shared by every output channel), sum w one per
//! weight row, worked out when packing. The result is the same integer as qconv.rs's
//! acc (every term is exact in i32: |dot| <= K * 128 * 127 < 2^31 for K <= MAX_K, and
//! the wrapping adds give the exact total because the total fits), so both epilogues
//! give the same bits.
//!
//! Packed weights (`packed7_len`): qgemm.rs's layout holding v = w + 64 (0 in the K and
//! row padding), then sum w per row as [blocks * 4] i32. Columns: a per pixel, 0 in the
//! K padding, so the padding adds nothing to the dot nor to sum a.
//!
//! The dot block (4 rows x 2 pixels per pass, up to `PAIRS` pairs per call) comes from
//! the relaxed module when JavaScript has put its `dot7` into this module's function
//! table (`use_dot7`); otherwise, and for an odd last pixel, from `block_core`, the same
//! sums on core SIMD (`i32x4.dot_i16x8_s` on widened values).

use crate::qconv::{fill_bordered, im2col, Geometry, NchwF32, NchwI32, Scratch, Shifted};
use crate::qgemm::{self, reduce4, Sink, KC, ROWS};
use crate::qlinear::Epilogue;
use crate::quantize::{center_u8, quantize_centered, Quantizer};
use crate::simd::*;
use core::arch::wasm32::*;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The dot block's table index (0: none, use `block_core`).
static DOT7: AtomicUsize = AtomicUsize::new(0);

/// The relaxed module's `dot7(w, a, kp, pairs, out)`: out[p] = the four row sums of w
/// against pixel p of a, for 2 * pairs pixels (wasm/relaxed/dot7.wat).
type Dot7 = extern "C" fn(usize, usize, usize, usize, usize);

/// Makes the dot block call table slot `index` (0: back to `block_core`).
pub fn use_dot7(index: usize) {
    DOT7.store(index, Relaxed);
}

/// Whether w fits 7 bits: every value in -63..63.
pub fn fits7(w: &[i8]) -> bool {
    w.iter().all(|w| (-63..=63).contains(w))
}

/// Bytes of the 7-bit packed form of an [m, k] matrix, or None when it overflows.
pub fn packed7_len(m: usize, k: usize) -> Option<usize> {
    let blocks = m.checked_add(ROWS - 1)? / ROWS;
    qgemm::packed_len(m, k)?.checked_add(blocks.checked_mul(ROWS * 4)?)
}

/// Packs rows [row0, row0 + rows) of an [m, k] 7-bit matrix (`fits7`): qgemm's layout of
/// w + 64, then each row's sum of w. src: [rows, k] i8; packed: `packed7_len(m, k)`.
pub fn pack7(packed: &mut [u8], src: &[i8], m: usize, k: usize, row0: usize) {
    let data = qgemm::packed_len(m, k).unwrap_or(0);
    let (weights, sums) = packed.split_at_mut(data);
    qgemm::pack(weights, src, m, k, row0);
    // qgemm::pack wrote w (padding 0): add 64 to the real values only.
    let kp = qgemm::padded_k(k);
    let rows = src.len() / k;
    for r in row0..row0 + rows {
        let block = &mut weights[r / ROWS * ROWS * kp..(r / ROWS + 1) * ROWS * kp];
        for (c, chunk) in block.chunks_exact_mut(ROWS * KC).enumerate() {
            let run = &mut chunk[r % ROWS * KC..(r % ROWS + 1) * KC];
            let real = k.saturating_sub(c * KC).min(KC);
            for v in &mut run[..real] {
                *v = (*v as i8 as i16 + 64) as u8;
            }
        }
        let sum: i32 = src[(r - row0) * k..(r - row0 + 1) * k].iter().map(|w| *w as i32).sum();
        sums[r * 4..r * 4 + 4].copy_from_slice(&sum.to_le_bytes());
    }
    // Padding rows keep v = 0 (qgemm::pack) and sum 0.
    if row0 + rows == m {
        sums[m * 4..].fill(0);
    }
}

/// Scratch of a 7-bit conv call beside qconv's: the bordered image as a = x_q - 128,
/// [C, H + pads, W + pads] i8, the columns of one tile of pixels, [rows, KP] i8, and
/// each row's sum of a, [rows] i32.
pub struct Scratch7<'a> {
    pub image: &'a mut [i8],
    pub cols: &'a mut [i8],
    pub sums: &'a mut [i32],
}

/// y = the quantized conv of x, as `qconv::conv_f32`. x: [N, C, H, W] f32,
/// y: [N, M, OH, OW] f32; packed: each group's `pack7` form, one after the other.
#[allow(clippy::too_many_arguments)]
pub fn conv7_f32(
    g: &Geometry,
    packed: &[u8],
    x: &[f32],
    quantizer: &Quantizer,
    zero_point: u8,
    epilogue: &Epilogue,
    s: Scratch,
    s7: Scratch7,
    y: &mut [f32],
) {
    let image_len = g.c * g.h * g.w;
    let out_len = g.m * g.pixels();
    for (x, y) in x.chunks_exact(image_len).zip(y.chunks_exact_mut(out_len)) {
        fill_bordered(g, x, s.image, |x, out| quantize_centered(x, out, quantizer));
        to_a(s.image, zero_point, s7.image);
        for group in 0..g.group {
            let mut sink = NchwF32 { y, pixels: g.pixels(), rows: g.m / g.group, group, epilogue };
            gemm_group7(
                g,
                packed,
                s7.image,
                group,
                zero_point,
                (&mut *s7.cols, &mut *s7.sums),
                &mut sink,
            );
        }
    }
}

/// acc = the exact int32 sums for x_q, as `qconv::conv_acc`. xq: [N, C, H, W] u8,
/// acc: [N, M, OH, OW] i32.
pub fn conv7_acc(
    g: &Geometry,
    packed: &[u8],
    xq: &[u8],
    zero_point: u8,
    s: Scratch,
    s7: Scratch7,
    acc: &mut [i32],
) {
    let image_len = g.c * g.h * g.w;
    let out_len = g.m * g.pixels();
    for (xq, acc) in xq.chunks_exact(image_len).zip(acc.chunks_exact_mut(out_len)) {
        fill_bordered(g, xq, s.image, |xq, out| center_u8(xq, out, zero_point));
        to_a(s.image, zero_point, s7.image);
        for group in 0..g.group {
            let mut sink = NchwI32 { acc, pixels: g.pixels(), rows: g.m / g.group, group };
            gemm_group7(
                g,
                packed,
                s7.image,
                group,
                zero_point,
                (&mut *s7.cols, &mut *s7.sums),
                &mut sink,
            );
        }
    }
}

/// `qconv::gemm_group` on the 7-bit form: per tile of pixels, the columns of a
/// (`im2col` of the image of a), their sums (`row_sums`), then the dot blocks.
fn gemm_group7(
    g: &Geometry,
    packed: &[u8],
    image: &[i8],
    group: usize,
    zero_point: u8,
    (a, sums_a): (&mut [i8], &mut [i32]),
    sink: &mut impl Sink,
) {
    let (mg, k) = (g.m / g.group, g.k());
    let len = packed7_len(mg, k).unwrap_or(0);
    let data = qgemm::packed_len(mg, k).unwrap_or(0);
    let (weights, sums_w) = packed[group * len..(group + 1) * len].split_at(data);
    let kp = qgemm::padded_k(k);
    let tile = qgemm::tile_samples(kp);
    let z_term = 128 - zero_point as i32;
    let mut p0 = 0;
    while p0 < g.pixels() {
        let p1 = g.pixels().min(p0 + tile);
        let (a, sums_a) = (&mut a[..(p1 - p0) * kp], &mut sums_a[..p1 - p0]);
        im2col(g, image, group, p0, a);
        row_sums(a, kp, sums_a);
        gemm7(weights, sums_w, kp, a, sums_a, z_term, &mut Shifted { sink: &mut *sink, p0 });
        p0 = p1;
    }
}

/// a = xc + z_x - 128 (= x_q - 128; the border's xc = 0 becomes z_x - 128, the a of
/// x_q = z_x). xc: the bordered image, i16 in [-z_x, 255 - z_x]; a: the same, i8.
fn to_a(xc: &[i16], zero_point: u8, a: &mut [i8]) {
    let shift = i16x8_splat(zero_point as i16 - 128);
    let mut xs = xc.chunks_exact(16);
    let mut outs = a.chunks_exact_mut(16);
    for (xc, a) in (&mut xs).zip(&mut outs) {
        let lo = i16x8_add(load_i16x8(&xc[0..8]), shift);
        let hi = i16x8_add(load_i16x8(&xc[8..16]), shift);
        store_bytes(a, i8x16_narrow_i16x8(lo, hi));
    }
    for (xc, a) in xs.remainder().iter().zip(outs.into_remainder()) {
        *a = (*xc + zero_point as i16 - 128) as i8;
    }
}

/// sums[p] = the sum of row p of a: [rows, KP] i8 (the K padding holds 0).
fn row_sums(a: &[i8], kp: usize, sums: &mut [i32]) {
    for (row, sum) in a.chunks_exact(kp).zip(sums.iter_mut()) {
        let mut lanes = i32x4_splat(0);
        for chunk in row.chunks_exact(16) {
            // SAFETY: `chunk` is 16 readable bytes; v128_load is an unaligned load.
            let v = unsafe { v128_load(chunk.as_ptr() as *const v128) };
            lanes = i32x4_add(lanes, i32x4_extadd_pairwise_i16x8(i16x8_extadd_pairwise_i8x16(v)));
        }
        *sum = lanes_sum(lanes);
    }
}

/// The sum of an i32x4's lanes.
#[inline(always)]
fn lanes_sum(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        .wrapping_add(i32x4_extract_lane::<1>(v))
        .wrapping_add(i32x4_extract_lane::<2>(v))
        .wrapping_add(i32x4_extract_lane::<3>(v))
}

/// Writes the 16 bytes of `v` to `b[0..16]`.
#[inline(always)]
fn store_bytes(b: &mut [i8], v: v128) {
    let b = &mut b[..16];
    // SAFETY: `b` is 16 writable bytes borrowed exclusively; v128_store is unaligned.
    unsafe { v128_store(b.as_mut_ptr() as *mut v128, v) }
}

/// For every sample n and block b: sink.put(n, b, acc[n, 4b..4b + 4]) with
/// acc = dot(a, v) - 64 * sum a + z_term * sum w (z_term = 128 - z_x).
/// weights: [blocks, KP / 16, 4, 16] v; sums_w: [blocks * 4] i32 (LE bytes);
/// a: [N, KP] i8; sums_a: [N].
fn gemm7(
    weights: &[u8],
    sums_w: &[u8],
    kp: usize,
    a: &[i8],
    sums_a: &[i32],
    z_term: i32,
    sink: &mut impl Sink,
) {
    let n = sums_a.len();
    let dot = DOT7.load(Relaxed);
    let mut out = [i32x4_splat(0); 2 * PAIRS];
    for (b, w) in weights.chunks_exact(ROWS * kp).enumerate() {
        let w_term = i32x4_mul(load_bytes(&sums_w[b * 16..b * 16 + 16]), i32x4_splat(z_term));
        let mut put = |s: usize, sum: v128| {
            let a_term = i32x4_splat(sums_a[s].wrapping_mul(64));
            sink.put(s, b, i32x4_sub(i32x4_add(sum, w_term), a_term));
        };
        let mut s = 0;
        while s + 1 < n {
            // Pixels s.. in pairs, up to PAIRS pairs per call of the relaxed block.
            let pairs = PAIRS.min((n - s) / 2);
            let out = &mut out[..2 * pairs];
            dot_pairs(dot, w, &a[s * kp..(s + 2 * pairs) * kp], out);
            for (i, sum) in out.iter().enumerate() {
                put(s + i, *sum);
            }
            s += 2 * pairs;
        }
        if s < n {
            let x = &a[s * kp..(s + 1) * kp];
            let raw = block_core(w, x, x);
            put(s, reduce4([raw[0], raw[1], raw[2], raw[3]]));
        }
    }
}

/// Pixel pairs per call of the relaxed block (its output: 1 KiB on the stack).
const PAIRS: usize = 32;

/// out[p] = the four row sums of w ([KP / 16, 4, 16] v) against pixel p of a
/// ([out.len(), KP] i8; an even count): the relaxed module's `dot7` at table slot `dot`,
/// or `block_core` (0).
#[inline(always)]
fn dot_pairs(dot: usize, w: &[u8], a: &[i8], out: &mut [v128]) {
    let kp = a.len() / out.len();
    if dot == 0 {
        for (x, out) in a.chunks_exact(2 * kp).zip(out.chunks_exact_mut(2)) {
            let raw = block_core(w, &x[..kp], &x[kp..]);
            out[0] = reduce4([raw[0], raw[1], raw[2], raw[3]]);
            out[1] = reduce4([raw[4], raw[5], raw[6], raw[7]]);
        }
        return;
    }
    let (w, pairs) = (&w[..ROWS * kp], out.len() / 2);
    // SAFETY: a wasm32 function pointer is its table index; `use_dot7` was given the
    // slot JavaScript filled with the relaxed module's `dot7`, whose wasm type
    // (i32, i32, i32, i32, i32) -> () is `Dot7`'s. It reads w[..4 KP] and
    // a[..2 * pairs * KP] and writes out[..2 * pairs], all borrowed here, in this memory.
    let f: Dot7 = unsafe { core::mem::transmute::<usize, Dot7>(dot) };
    f(w.as_ptr() as usize, a.as_ptr() as usize, kp, pairs, out.as_mut_ptr() as usize);
}

/// `dot7` on core SIMD: widened to i16, `i32x4.dot_i16x8_s` (products of at most
/// 128 * 127, pair sums far from overflow). The lanes group the products differently
/// from the relaxed dot, but each row's four lanes add up to the same sum.
#[inline(never)]
fn block_core(w: &[u8], x0: &[i8], x1: &[i8]) -> [v128; 8] {
    let mut a = [i32x4_splat(0); ROWS];
    let mut b = [i32x4_splat(0); ROWS];
    for ((w, x0), x1) in w.chunks_exact(ROWS * KC).zip(x0.chunks_exact(KC)).zip(x1.chunks_exact(KC))
    {
        for half in 0..2 {
            let xa = load_i8x8_as_i16(&x0[half * 8..half * 8 + 8]);
            let xb = load_i8x8_as_i16(&x1[half * 8..half * 8 + 8]);
            for r in 0..ROWS {
                let wv = load_u8x8_as_i16(&w[r * KC + half * 8..r * KC + half * 8 + 8]);
                a[r] = i32x4_add(a[r], i32x4_dot_i16x8(wv, xa));
                b[r] = i32x4_add(b[r], i32x4_dot_i16x8(wv, xb));
            }
        }
    }
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// 8 i8 sign-extended to an i16x8.
#[inline(always)]
fn load_i8x8_as_i16(b: &[i8]) -> v128 {
    let b = &b[..8];
    // SAFETY: `b` is 8 readable bytes; the load is an unaligned 8-byte load.
    unsafe { i16x8_load_extend_i8x8(b.as_ptr()) }
}

/// 8 u8 zero-extended to an i16x8.
#[inline(always)]
fn load_u8x8_as_i16(b: &[u8]) -> v128 {
    let b = &b[..8];
    // SAFETY: `b` is 8 readable bytes; the load is an unaligned 8-byte load.
    unsafe { u16x8_load_extend_u8x8(b.as_ptr()) }
}
