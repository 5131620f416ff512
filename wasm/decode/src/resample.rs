//! The separable antialiased resample of `src/image/_resample.ts` (`resampleRgbReference`),
//! for images already decoded: RGBA bytes to RGB floats with precomputed per-axis taps.
//!
//! It does the reference's arithmetic step for step (each horizontal sum in f64, stored as
//! f32; each vertical step `out = f32(out + w * tmp)` in f64), so the two agree bit for
//! bit; `tests/image/resample_wasm_test.ts` checks that on random and edge shapes. The
//! speed comes from SIMD128 (LLVM vectorizes the vertical pass's contiguous rows) and
//! from no bounds checks in the inner loops, which read validated slices.
#![forbid(unsafe_code)]

/// Taps of one axis: output k reads `count[k]` inputs from `start[k]` with weights
/// `weights[k * stride..]`; an output with count 0 is padding (value 0).
pub struct Taps {
    pub start: Vec<usize>,
    pub count: Vec<usize>,
    pub weights: Vec<f64>,
    pub stride: usize,
}

impl Taps {
    /// Whether every output's taps lie within `0..inputs` and its weights within `weights`.
    fn fits(&self, inputs: usize) -> bool {
        let n = self.start.len();
        self.count.len() == n
            && self.weights.len() >= n * self.stride
            && (0..n).all(|k| {
                let c = self.count[k];
                c <= self.stride && (c == 0 || self.start[k] + c <= inputs)
            })
    }
}

/// src: RGBA u8 [rows, width, 4], the source image's rows `row0..row0 + rows` ->
/// out: RGB f32 [yt outputs, xt outputs, 3], 0..255, not rounded (overwritten). `None`
/// when a tap reads outside `src` (the rows given must cover every row `yt` reads) or
/// `out` has another size.
pub fn resample_rgb(
    src: &[u8],
    width: usize,
    row0: usize,
    (xt, yt): (&Taps, &Taps),
    out: &mut [f32],
) -> Option<()> {
    let rows = src.len() / (width * 4).max(1);
    let (out_w, out_h) = (xt.start.len(), yt.start.len());
    if width == 0 || !xt.fits(width) || !yt.fits(row0 + rows) || out.len() != out_h * out_w * 3 {
        return None;
    }
    out.fill(0.0);
    // The source rows some output row reads (all of them lie in row0..row0 + rows).
    let used = (0..out_h).filter(|&k| yt.count[k] > 0);
    let lo = used.clone().map(|k| yt.start[k]).min();
    let hi = used.map(|k| yt.start[k] + yt.count[k]).max();
    let (lo, hi) = match (lo, hi) {
        (Some(lo), Some(hi)) if lo >= row0 => (lo, hi),
        (None, _) => return Some(()),
        _ => return None,
    };
    // Horizontal pass. tmp: RGB f32 [hi - lo, out_w, 3]
    let row_len = out_w * 3;
    let mut tmp = vec![0f32; (hi - lo) * row_len];
    for (row, t) in (lo..hi).zip(tmp.chunks_exact_mut(row_len.max(1))) {
        let line = &src[(row - row0) * width * 4..(row - row0 + 1) * width * 4];
        for (ox, px) in t.chunks_exact_mut(3).enumerate() {
            let n = xt.count[ox];
            let taps = &line[xt.start[ox] * 4..(xt.start[ox] + n) * 4];
            let w = &xt.weights[ox * xt.stride..ox * xt.stride + n];
            let [r, g, b] = weighted_sum(taps, w);
            px[0] = r as f32;
            px[1] = g as f32;
            px[2] = b as f32;
        }
    }
    // Vertical pass, whole rows at a time (contiguous reads and writes).
    for (oy, o) in out.chunks_exact_mut(row_len.max(1)).enumerate() {
        let n = yt.count[oy];
        for k in 0..n {
            let w = yt.weights[oy * yt.stride + k];
            let s = (yt.start[oy] + k - lo) * row_len;
            for (o, &t) in o.iter_mut().zip(&tmp[s..s + row_len]) {
                *o = (*o as f64 + w * t as f64) as f32;
            }
        }
    }
    Some(())
}

/// taps: RGBA u8 [n, 4], w: f64 [n] -> the weighted sums of R, G and B, each `sum += w * p`
/// in f64, tap after tap (the reference's order).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn weighted_sum(taps: &[u8], w: &[f64]) -> [f64; 3] {
    let (mut r, mut g, mut b) = (0f64, 0f64, 0f64);
    for (p, &w) in taps.chunks_exact(4).zip(w) {
        r += w * p[0] as f64;
        g += w * p[1] as f64;
        b += w * p[2] as f64;
    }
    [r, g, b]
}

/// `weighted_sum` with the channels in two f64x2 lanes (R, G and B, A): each lane does the
/// same IEEE multiply and add as the scalar version, in the same order, so the sums are
/// equal bit for bit; LLVM leaves this loop scalar (three converts, multiplies and adds per
/// tap), the horizontal pass's whole cost.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn weighted_sum(taps: &[u8], w: &[f64]) -> [f64; 3] {
    use core::arch::wasm32::{
        f64x2_add, f64x2_convert_low_i32x4, f64x2_extract_lane, f64x2_mul, f64x2_splat,
        i32x4_shuffle, u16x8_extend_low_u8x16, u32x4, u32x4_extend_low_u16x8,
    };
    let (mut rg, mut ba) = (f64x2_splat(0.0), f64x2_splat(0.0));
    for (p, &w) in taps.chunks_exact(4).zip(w) {
        let packed = u32x4(u32::from_le_bytes([p[0], p[1], p[2], p[3]]), 0, 0, 0);
        let ints = u32x4_extend_low_u16x8(u16x8_extend_low_u8x16(packed)); // [R, G, B, A]
        let high = i32x4_shuffle::<2, 3, 2, 3>(ints, ints);
        let w = f64x2_splat(w);
        rg = f64x2_add(rg, f64x2_mul(w, f64x2_convert_low_i32x4(ints)));
        ba = f64x2_add(ba, f64x2_mul(w, f64x2_convert_low_i32x4(high)));
    }
    [f64x2_extract_lane::<0>(rg), f64x2_extract_lane::<1>(rg), f64x2_extract_lane::<0>(ba)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taps(start: Vec<usize>, count: Vec<usize>, weights: Vec<f64>, stride: usize) -> Taps {
        Taps { start, count, weights, stride }
    }

    #[test]
    fn halves_a_two_pixel_row_and_pads() {
        // src: RGBA [1, 2, 4]; output 0 averages both pixels, output 1 is padding.
        let src = [10, 20, 30, 255, 30, 40, 50, 255];
        let xt = taps(vec![0, 0], vec![2, 0], vec![0.5, 0.5, 0.0, 0.0], 2);
        let yt = taps(vec![0], vec![1], vec![1.0], 1);
        let mut out = [7.0; 6];
        resample_rgb(&src, 2, 0, (&xt, &yt), &mut out).unwrap();
        assert_eq!(out, [20.0, 30.0, 40.0, 0.0, 0.0, 0.0]);
        assert!(resample_rgb(&src, 2, 0, (&xt, &yt), &mut [0.0; 5]).is_none());
    }

    #[test]
    fn refuses_taps_outside_the_rows_given() {
        let src = [0u8; 16]; // [2, 2, 4]
        let xt = taps(vec![0], vec![2], vec![0.5, 0.5], 2);
        let past = taps(vec![1], vec![2], vec![1.0, 0.0], 2);
        let above = taps(vec![0], vec![1], vec![1.0], 1);
        let out = &mut [0.0; 3];
        assert!(resample_rgb(&src, 2, 0, (&xt, &past), out).is_none());
        assert!(resample_rgb(&src, 2, 1, (&xt, &above), out).is_none());
        assert!(resample_rgb(&src, 2, 0, (&past, &xt), out).is_none());
    }
}
