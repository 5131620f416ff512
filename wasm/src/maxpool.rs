//! ONNX MaxPool for NCHW float32, 2-D windows with strides, pads and dilations:
//!
//! ```text
//! y[n, c, oy, ox] = max over i < kH, j < kW of x[n, c, iy, ix]
//!   iy = oy * sH - pad_top + i * dH, ix = ox * sW - pad_left + j * dW
//! ```
//!
//! Taps in the padding are skipped (ONNX: padding does not take part in the max). The
//! output size comes from the caller (floor or ceil mode); every window must start
//! inside the input or its top/left padding. The max starts at -inf and takes a value
//! only when it is greater, so NaN never wins (and a window whose taps all fall in the
//! padding, possible only with dilations, gives -inf).

use crate::simd::{load4, store4};
use core::arch::wasm32::{f32x4_pmax, f32x4_splat, i32x4_shuffle};

/// Pool attributes and shapes, as JavaScript passes them: 16 u32 in this order.
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub dil_h: usize,
    pub dil_w: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// Checks the shape: None when a size is 0, a window would start past the input,
    /// or a length overflows. Word order: n, c, h, w, kH, kW, sH, sW, pad_top,
    /// pad_left, pad_bottom, pad_right, dH, dW, OH, OW (bottom/right pads are only
    /// in OH/OW, worked out by the caller).
    pub fn new(v: [u32; 16]) -> Option<Geometry> {
        let [n, c, h, w, kh, kw, stride_h, stride_w, pad_top, pad_left, _, _, dil_h, dil_w, oh, ow] =
            v.map(|v| v as usize);
        if [h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, oh, ow].contains(&0) {
            return None;
        }
        // The last window must start inside the input or its leading padding.
        if (oh - 1).checked_mul(stride_h)? >= h.checked_add(pad_top)?
            || (ow - 1).checked_mul(stride_w)? >= w.checked_add(pad_left)?
        {
            return None;
        }
        // ... and its first tap inside the input must exist (pads smaller than the span).
        if pad_top >= (kh - 1).checked_mul(dil_h)? + 1
            || pad_left >= (kw - 1).checked_mul(dil_w)? + 1
        {
            return None;
        }
        let g = Geometry {
            n,
            c,
            h,
            w,
            kh,
            kw,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
            dil_h,
            dil_w,
            oh,
            ow,
        };
        g.x_len()?;
        g.y_len()?;
        Some(g)
    }

    pub fn x_len(&self) -> Option<usize> {
        self.n.checked_mul(self.c)?.checked_mul(self.h)?.checked_mul(self.w)
    }

    pub fn y_len(&self) -> Option<usize> {
        self.n.checked_mul(self.c)?.checked_mul(self.oh)?.checked_mul(self.ow)
    }
}

/// The taps t in [0, k) whose input index o * s - pad + t * d lies in [0, len), as a
/// range of t, and the input index of the first one.
#[inline(always)]
fn taps(o: usize, s: usize, pad: usize, k: usize, d: usize, len: usize) -> (usize, usize, usize) {
    let start = o * s; // input index + pad
    if d == 1 {
        // Without dilation, no division (this runs once per output value).
        let first = pad.saturating_sub(start);
        let last = k.min(len + pad - start).max(first);
        return (first, last, start + first - pad);
    }
    let first = if start >= pad { 0 } else { (pad - start + d - 1) / d };
    let mut last = k; // exclusive
                      // index of tap t = start + t * d - pad < len  <=>  t * d < len + pad - start
    let room = len + pad - start; // > 0: the window starts before len + pad
    let fit = (room + d - 1) / d;
    if fit < last {
        last = fit;
    }
    (first, last.max(first), start + first * d - pad)
}

/// y = MaxPool(x). x: [N, C, H, W], y: [N, C, OH, OW]; rows: [2 W] scratch.
///
/// Per output row, two passes: the max over the window's input rows, column by column
/// in SIMD (`f32x4.pmax` keeps the running max when the new lane is NaN), then the max
/// over each window's columns of that row (`pool_columns`). Both passes take a value
/// only when it is greater, so the result is the reference's (up to which of +0 and -0
/// wins a tie).
pub fn maxpool_f32(g: &Geometry, x: &[f32], y: &mut [f32], rows: &mut [f32]) {
    let plane = g.h * g.w;
    let (rows, starts) = rows[..2 * g.w].split_at_mut(g.w);
    for (x, y) in x.chunks_exact(plane).zip(y.chunks_exact_mut(g.oh * g.ow)) {
        for (oy, y) in y.chunks_exact_mut(g.ow).enumerate() {
            let (i0, i1, iy0) = taps(oy, g.stride_h, g.pad_top, g.kh, g.dil_h, g.h);
            rows.fill(f32::NEG_INFINITY);
            for i in 0..i1 - i0 {
                let row = &x[(iy0 + i * g.dil_h) * g.w..][..g.w];
                let mut r = rows.chunks_exact_mut(4);
                let mut v = row.chunks_exact(4);
                for (r, v) in (&mut r).zip(&mut v) {
                    store4(r, f32x4_pmax(load4(r), load4(v)));
                }
                for (r, v) in r.into_remainder().iter_mut().zip(v.remainder()) {
                    if *v > *r {
                        *r = *v;
                    }
                }
            }
            pool_columns(g, rows, starts, y);
        }
    }
}

/// y[ox] = the max over window ox's columns of `rows` (one output row). Windows wholly
/// inside the row, most of them, read `window_maxima` of every start column (SIMD; at
/// stride 2 half of them go unused, still fewer instructions than a scalar max per
/// window); the others, in the padding, go tap by tap. scratch: [W].
fn pool_columns(g: &Geometry, rows: &[f32], scratch: &mut [f32], y: &mut [f32]) {
    let span = (g.kw - 1) * g.dil_w + 1;
    // Windows starting at input column 0..inside lie wholly inside the row.
    let inside = (g.w + 1).saturating_sub(span);
    if g.stride_w == 2 && g.dil_w == 1 {
        return pool_columns_stride2(g, rows, inside, y);
    }
    let maxima = &mut scratch[..inside];
    window_maxima(rows, g.kw, g.dil_w, maxima);
    for (ox, out) in y.iter_mut().enumerate() {
        let start = ox * g.stride_w; // input column + pad_left
        if start >= g.pad_left && start - g.pad_left < inside {
            *out = maxima[start - g.pad_left];
            continue;
        }
        let (j0, j1, ix0) = taps(ox, g.stride_w, g.pad_left, g.kw, g.dil_w, g.w);
        let mut m = f32::NEG_INFINITY;
        for j in 0..j1 - j0 {
            let v = rows[ix0 + j * g.dil_w];
            if v > m {
                m = v;
            }
        }
        *out = m;
    }
}

/// `pool_columns` for stride 2 without dilation (AlexNet's pools): four outputs at a
/// time from the even lanes of two loads per tap, when all their taps and the loads'
/// odd lanes lie inside the row; the others tap by tap.
fn pool_columns_stride2(g: &Geometry, rows: &[f32], inside: usize, y: &mut [f32]) {
    // Outputs ox in [lo, hi) start inside: 2 ox - pad_left in [0, inside).
    let lo = (g.pad_left + 1) / 2;
    let hi = y.len().min((inside + g.pad_left + 1) / 2);
    let mut ox = 0;
    while ox < y.len() {
        // Four outputs read rows[s .. s + 6 + kw + 1) with s = 2 ox - pad_left.
        if ox >= lo && ox + 4 <= hi && 2 * ox - g.pad_left + 6 + g.kw < g.w {
            let s = 2 * ox - g.pad_left;
            let mut m = f32x4_splat(f32::NEG_INFINITY);
            for j in 0..g.kw {
                let v = &rows[s + j..s + j + 8];
                let even = i32x4_shuffle::<0, 2, 4, 6>(load4(v), load4(&v[4..]));
                m = f32x4_pmax(m, even);
            }
            store4(&mut y[ox..ox + 4], m);
            ox += 4;
            continue;
        }
        let (j0, j1, ix0) = taps(ox, g.stride_w, g.pad_left, g.kw, g.dil_w, g.w);
        let mut m = f32::NEG_INFINITY;
        for j in 0..j1 - j0 {
            let v = rows[ix0 + j];
            if v > m {
                m = v;
            }
        }
        y[ox] = m;
        ox += 1;
    }
}

/// maxima[i] = max over j < k of rows[i + j * d], taps in order, each taken only when
/// greater (`f32x4.pmax(m, v)` is `m < v ? v : m`, the scalar rule); needs
/// i + (k - 1) * d < rows.len() for every i.
fn window_maxima(rows: &[f32], k: usize, d: usize, maxima: &mut [f32]) {
    let done = maxima.len() / 4 * 4;
    let mut out = maxima.chunks_exact_mut(4);
    for (c, m) in (&mut out).enumerate() {
        let mut acc = f32x4_splat(f32::NEG_INFINITY);
        for j in 0..k {
            acc = f32x4_pmax(acc, load4(&rows[4 * c + j * d..]));
        }
        store4(m, acc);
    }
    for (i, m) in out.into_remainder().iter_mut().enumerate() {
        let mut acc = f32::NEG_INFINITY;
        for j in 0..k {
            let v = rows[done + i + j * d];
            if v > acc {
                acc = v;
            }
        }
        *m = acc;
    }
}
