//! Quantized Conv (NCHW, groups, strides, pads, dilations) as im2col + the int8 GEMM:
//!
//! ```text
//! xc[c, h, w]        = QuantizeLinear(x[n, c, h, w]; s_x, z_x) - z_x   (0 in the padding)
//! cols[p, k]         = xc[g * C/G + ci, oy * sh - pad_t + i * dh, ox * sw - pad_l + j * dw]
//!                      with p = oy * OW + ox, k = (ci * kH + i) * kW + j
//! acc[n, g*M/G + m, p] = sum over k of cols[p, k] * w[g * M/G + m, k]         (qgemm.rs)
//! y                  = the float epilogue of qlinear.rs on acc
//! ```
//!
//! Zero padding in float is x = 0, which quantizes to z_x exactly (the zero point is
//! an integer), so padding is xc = 0 and adds nothing to a sum. The weights of group g
//! are rows [g * M/G, (g + 1) * M/G) of W: [M, C/G * kH * kW], packed per group one
//! after the other (`packed_len`).
//!
//! `conv16_f32` is the Conv of a weight-only int8 layer (float input): each image n
//! and group g of x is rounded on its own symmetric grid (quantize.rs) with
//! q_max = min(32767, (2^31 - 1) / (128 K)), K = C/G * kH * kW, s = max |x[n, g]| /
//! q_max, so that |acc| <= K * 128 * q_max < 2^31 and `qgemm::gemm`'s i32 sums stay
//! exact with no extra work: AlexNet's convolutions get q_max 32767 (conv1), 13981
//! (conv2), 7281 (conv3), 9709 (conv4, conv5), 28-128 times finer than a uint8 grid
//! over the same range. The epilogue is the QDQ one with s in place of s_x. One scale per
//! group of an image, not per image, so that a layer split by groups gives the same bits.

use crate::qgemm::{self, Sink};
use crate::qlinear::Epilogue;
use crate::quantize::{center_u8, quantize_centered, symmetric_scale, Quantizer, Q16_MAX};
use core::arch::wasm32::*;

/// Conv attributes and shapes, as JavaScript passes them: 16 u32 in this order.
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub group: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    pub dil_h: usize,
    pub dil_w: usize,
    /// Output height and width, worked out by `Geometry::new`.
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// Checks the shape (None when unusable) and works out the output size.
    pub fn new(v: [u32; 16]) -> Option<Geometry> {
        let [n, c, h, w, m, group, kh, kw, stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w] =
            v.map(|v| v as usize);
        if [c, h, w, m, group, kh, kw, stride_h, stride_w, dil_h, dil_w].contains(&0)
            || c % group != 0
            || m % group != 0
        {
            return None;
        }
        let span_h = (kh - 1).checked_mul(dil_h)? + 1;
        let span_w = (kw - 1).checked_mul(dil_w)? + 1;
        let in_h = h.checked_add(pad_top)?.checked_add(pad_bottom)?;
        let in_w = w.checked_add(pad_left)?.checked_add(pad_right)?;
        if in_h < span_h || in_w < span_w {
            return None;
        }
        let g = Geometry {
            n,
            c,
            h,
            w,
            m,
            group,
            kh,
            kw,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
            pad_bottom,
            pad_right,
            dil_h,
            dil_w,
            oh: (in_h - span_h) / stride_h + 1,
            ow: (in_w - span_w) / stride_w + 1,
        };
        if g.k() > qgemm::MAX_K {
            return None;
        }
        // Every buffer size the kernels use must fit in the address space.
        g.x_len()?;
        g.y_len()?;
        g.packed_len()?;
        g.scratch_len()?;
        Some(g)
    }

    /// Values per image of x: C * H * W.
    pub fn image_len(&self) -> Option<usize> {
        self.c.checked_mul(self.h)?.checked_mul(self.w)
    }

    pub fn x_len(&self) -> Option<usize> {
        self.image_len()?.checked_mul(self.n)
    }

    /// Output pixels per image: OH * OW.
    pub fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    pub fn y_len(&self) -> Option<usize> {
        self.m.checked_mul(self.oh)?.checked_mul(self.ow)?.checked_mul(self.n)
    }

    /// GEMM depth: C/G * kH * kW.
    pub fn k(&self) -> usize {
        self.c / self.group * self.kh * self.kw
    }

    /// Packed bytes of one group's [M/G, K] weights.
    pub fn group_packed_len(&self) -> Option<usize> {
        qgemm::packed_len(self.m / self.group, self.k())
    }

    pub fn packed_len(&self) -> Option<usize> {
        self.group_packed_len()?.checked_mul(self.group)
    }

    /// Height and width of the image with its zero border: H + pads, W + pads.
    pub fn padded_hw(&self) -> (usize, usize) {
        (self.h + self.pad_top + self.pad_bottom, self.w + self.pad_left + self.pad_right)
    }

    /// i16 values of the bordered image: C * (H + pads) * (W + pads).
    pub fn padded_image_len(&self) -> Option<usize> {
        let (hp, wp) = self.padded_hw();
        self.c.checked_mul(hp)?.checked_mul(wp)
    }

    /// Pixels whose columns are built at a time: one tile of the GEMM (`gemm_group`).
    pub fn col_rows(&self) -> Option<usize> {
        let kp = qgemm::padded_k(self.k());
        Some(self.oh.checked_mul(self.ow)?.min(qgemm::tile_samples(kp)))
    }

    /// i16 values of the columns of one tile: `col_rows` * KP.
    pub fn cols_len(&self) -> Option<usize> {
        self.col_rows()?.checked_mul(qgemm::padded_k(self.k()))
    }

    /// i16 values of scratch: one bordered image and the columns of one tile.
    pub fn scratch_len(&self) -> Option<usize> {
        self.padded_image_len()?.checked_add(self.cols_len()?)
    }
}

/// Scratch of one call: the centred image with a zero border, [C, H + pads, W + pads],
/// and the columns of one tile of pixels, [`Geometry::col_rows`, KP].
pub struct Scratch<'a> {
    pub image: &'a mut [i16],
    pub cols: &'a mut [i16],
}

/// y = the quantized conv of x. x: [N, C, H, W] f32, y: [N, M, OH, OW] f32.
pub fn conv_f32(
    g: &Geometry,
    packed: &[u8],
    x: &[f32],
    quantizer: &Quantizer,
    epilogue: &Epilogue,
    s: Scratch,
    y: &mut [f32],
) {
    let image_len = g.c * g.h * g.w;
    let out_len = g.m * g.pixels();
    for (x, y) in x.chunks_exact(image_len).zip(y.chunks_exact_mut(out_len)) {
        fill_bordered(g, x, s.image, |x, out| quantize_centered(x, out, quantizer));
        for group in 0..g.group {
            let mut sink = NchwF32 { y, pixels: g.pixels(), rows: g.m / g.group, group, epilogue };
            gemm_group(g, packed, s.image, group, s.cols, &mut sink);
        }
    }
}

/// The largest |xc| of `conv16_f32`'s grid for a K (see the module comment).
pub fn q16_max(k: usize) -> f32 {
    (i32::MAX as usize / (128 * k.max(1))).min(Q16_MAX as usize) as f32
}

/// y = the conv of x rounded per image and group on the symmetric grid of `q16_max`
/// (`epilogue.x_scale` is not used). x: [N, C, H, W] f32, y: [N, M, OH, OW] f32.
pub fn conv16_f32(
    g: &Geometry,
    packed: &[u8],
    x: &[f32],
    epilogue: &Epilogue,
    s: Scratch,
    y: &mut [f32],
) {
    let image_len = g.c * g.h * g.w;
    let out_len = g.m * g.pixels();
    let (hp, wp) = g.padded_hw();
    let (group_in, group_padded) = (g.c / g.group * g.h * g.w, g.c / g.group * hp * wp);
    let q_max = q16_max(g.k());
    for (x, y) in x.chunks_exact(image_len).zip(y.chunks_exact_mut(out_len)) {
        for group in 0..g.group {
            let xg = &x[group * group_in..(group + 1) * group_in];
            let scale = symmetric_scale(xg, q_max);
            let quantizer = Quantizer::symmetric(scale, q_max);
            let image = &mut s.image[group * group_padded..(group + 1) * group_padded];
            fill_bordered(g, xg, image, |x, out| quantize_centered(x, out, &quantizer));
            let e = Epilogue { x_scale: scale, ..*epilogue };
            let mut sink =
                NchwF32 { y, pixels: g.pixels(), rows: g.m / g.group, group, epilogue: &e };
            gemm_group(g, packed, s.image, group, s.cols, &mut sink);
        }
    }
}

/// acc = the exact int32 sums for x_q. xq: [N, C, H, W] u8, acc: [N, M, OH, OW] i32.
pub fn conv_acc(
    g: &Geometry,
    packed: &[u8],
    xq: &[u8],
    zero_point: u8,
    s: Scratch,
    acc: &mut [i32],
) {
    let image_len = g.c * g.h * g.w;
    let out_len = g.m * g.pixels();
    for (xq, acc) in xq.chunks_exact(image_len).zip(acc.chunks_exact_mut(out_len)) {
        fill_bordered(g, xq, s.image, |xq, out| center_u8(xq, out, zero_point));
        for group in 0..g.group {
            let mut sink = NchwI32 { acc, pixels: g.pixels(), rows: g.m / g.group, group };
            gemm_group(g, packed, s.image, group, s.cols, &mut sink);
        }
    }
}

/// The GEMM of one group, one tile of output pixels at a time: the tile's columns are
/// built (`im2col`) right before the GEMM reads them, so they are still in cache and
/// the scratch holds one tile (conv1's columns for the whole image were 2.2 MB; ~2%
/// of the convolutions' time, wasm/README.md). cols: at least
/// [`qgemm::tile_samples`, KP] i16.
fn gemm_group(
    g: &Geometry,
    packed: &[u8],
    image: &[i16],
    group: usize,
    cols: &mut [i16],
    sink: &mut impl Sink,
) {
    let len = qgemm::packed_len(g.m / g.group, g.k()).unwrap_or(0);
    let kp = qgemm::padded_k(g.k());
    let tile = qgemm::tile_samples(kp);
    let packed = &packed[group * len..(group + 1) * len];
    let mut p0 = 0;
    while p0 < g.pixels() {
        let p1 = g.pixels().min(p0 + tile);
        let cols = &mut cols[..(p1 - p0) * kp];
        im2col(g, image, group, p0, cols);
        qgemm::gemm(packed, kp, cols, &mut Shifted { sink: &mut *sink, p0 });
        p0 = p1;
    }
}

/// A sink for the pixels from `p0` on: sample n of the GEMM is pixel p0 + n.
pub struct Shifted<'a, S: Sink> {
    pub sink: &'a mut S,
    pub p0: usize,
}

impl<S: Sink> Sink for Shifted<'_, S> {
    #[inline(always)]
    fn put(&mut self, n: usize, block: usize, acc: v128) {
        self.sink.put(self.p0 + n, block, acc);
    }
}

/// image = the centred x of one image inside a zero border of the pads, row by row.
/// x: [C, H, W], image: [C, H + pads, W + pads].
pub fn fill_bordered<T>(
    g: &Geometry,
    x: &[T],
    image: &mut [i16],
    mut center: impl FnMut(&[T], &mut [i16]),
) {
    let (hp, wp) = g.padded_hw();
    image.fill(0);
    for (x, plane) in x.chunks_exact(g.h * g.w).zip(image.chunks_exact_mut(hp * wp)) {
        for (x, row) in x.chunks_exact(g.w).zip(plane[g.pad_top * wp..].chunks_exact_mut(wp)) {
            center(x, &mut row[g.pad_left..g.pad_left + g.w]);
        }
    }
}

/// cols[p - p0, k] for one group and the pixels p0.. that `cols` has rows for: every
/// window lies inside the bordered image, so each of its rows is a plain (strided when
/// dilated) copy. image: [C, H + pads, W + pads] i16, cols: [rows, KP] i16 (padding
/// columns 0).
pub fn im2col<T: Copy + Default>(
    g: &Geometry,
    image: &[T],
    group: usize,
    p0: usize,
    cols: &mut [T],
) {
    let (hp, wp) = g.padded_hw();
    let plane = hp * wp;
    let cg = g.c / g.group;
    let channels = &image[group * cg * plane..(group + 1) * cg * plane];
    // Window rows of a constant width compile to fixed-size copies, without a loop;
    // these are AlexNet's (11, 5, 3).
    match (g.kw, g.dil_w, g.dil_h) {
        (3, 1, 1) => dense_rows::<T, 3>(g, channels, p0, cols),
        (5, 1, 1) => dense_rows::<T, 5>(g, channels, p0, cols),
        (11, 1, 1) => dense_rows::<T, 11>(g, channels, p0, cols),
        _ => pixels(g, channels, p0, cols),
    }
}

/// `pixels` for undilated windows with rows of KW values (fixed-size copies), the
/// source offset carried from row to row (+ W + pads) instead of recomputed with two
/// multiplies per copy (~2% of the convolutions' time, wasm/README.md). Same columns
/// as `pixels`.
fn dense_rows<T: Copy + Default, const KW: usize>(
    g: &Geometry,
    channels: &[T],
    p0: usize,
    cols: &mut [T],
) {
    let k = g.k();
    let kp = qgemm::padded_k(k);
    let (hp, wp) = g.padded_hw();
    let plane = hp * wp;
    let rows = g.pixels().saturating_sub(p0);
    for (p, col) in (p0..).zip(cols.chunks_exact_mut(kp).take(rows)) {
        let base = p / g.ow * g.stride_h * wp + p % g.ow * g.stride_w;
        let (windows, padding) = col.split_at_mut(k);
        let mut dst = windows.chunks_exact_mut(KW);
        for channel in channels.chunks_exact(plane) {
            let mut at = base;
            for _ in 0..g.kh {
                if let Some(d) = dst.next() {
                    d.copy_from_slice(&channel[at..at + KW]);
                }
                at += wp;
            }
        }
        padding.fill(T::default());
    }
}

/// `im2col` for any window: one strided copy per window row.
fn pixels<T: Copy + Default>(g: &Geometry, channels: &[T], p0: usize, cols: &mut [T]) {
    let k = g.k();
    let kp = qgemm::padded_k(k);
    let (hp, wp) = g.padded_hw();
    let span = (g.kw - 1) * g.dil_w + 1;
    let rows = g.pixels().saturating_sub(p0);
    for (p, col) in (p0..).zip(cols.chunks_exact_mut(kp).take(rows)) {
        let (y0, x0) = (p / g.ow * g.stride_h, p % g.ow * g.stride_w);
        let mut out = col[..k].chunks_exact_mut(g.kw);
        for channel in channels.chunks_exact(hp * wp) {
            for i in 0..g.kh {
                let at = (y0 + i * g.dil_h) * wp + x0;
                let (window, dst) = (&channel[at..at + span], out.next().unwrap_or_default());
                for (d, v) in dst.iter_mut().zip(window.iter().step_by(g.dil_w)) {
                    *d = *v;
                }
            }
        }
        col[k..].fill(T::default());
    }
}

/// y: [M, P] of one image; the sink of group `group` writes its M/G rows.
pub struct NchwF32<'a> {
    pub y: &'a mut [f32],
    pub pixels: usize,
    pub rows: usize,
    pub group: usize,
    pub epilogue: &'a Epilogue<'a>,
}

impl Sink for NchwF32<'_> {
    #[inline(always)]
    fn put(&mut self, p: usize, block: usize, acc: v128) {
        let row0 = self.group * self.rows + block * qgemm::ROWS;
        let v = self.epilogue.apply(acc, row0);
        let lanes = [
            f32x4_extract_lane::<0>(v),
            f32x4_extract_lane::<1>(v),
            f32x4_extract_lane::<2>(v),
            f32x4_extract_lane::<3>(v),
        ];
        let count = qgemm::ROWS.min(self.rows - block * qgemm::ROWS);
        for (r, value) in lanes.iter().enumerate().take(count) {
            self.y[(row0 + r) * self.pixels + p] = *value;
        }
    }
}

/// acc: [M, P] of one image.
pub struct NchwI32<'a> {
    pub acc: &'a mut [i32],
    pub pixels: usize,
    pub rows: usize,
    pub group: usize,
}

impl Sink for NchwI32<'_> {
    #[inline(always)]
    fn put(&mut self, p: usize, block: usize, v: v128) {
        let row0 = self.group * self.rows + block * qgemm::ROWS;
        let lanes = [
            i32x4_extract_lane::<0>(v),
            i32x4_extract_lane::<1>(v),
            i32x4_extract_lane::<2>(v),
            i32x4_extract_lane::<3>(v),
        ];
        let count = qgemm::ROWS.min(self.rows - block * qgemm::ROWS);
        for (r, value) in lanes.iter().enumerate().take(count) {
            self.acc[(row0 + r) * self.pixels + p] = *value;
        }
    }
}
