//! The inverse DCT of one 8x8 block straight to a reduced size: `n` outputs per axis for
//! n in {1, 2, 4, 8}, each output the mean of the `8 / n` full-size pixels it covers.
//!
//! The full-size IDCT of JPEG (ITU T.81 A.3.3) is
//! `f(x) = sum_u c(u) / 2 * F(u) * cos((2x + 1) u pi / 16)` per axis, `c(0) = 1/sqrt(2)`,
//! else 1. Averaging `f` over the `8 / n` pixels of output `i` is linear in `F`, so it is
//! one matrix per scale: `T_n[i][u] = mean over j of c(u) / 2 * cos((2(i 8/n + j) + 1) u
//! pi / 16)`. The reduced block is then exactly the full decode box-filtered by `8 / n`,
//! at the cost of an n-point transform (libjpeg instead runs an n-point IDCT on the
//! low frequencies, a close approximation).
//!
//! `idct_reduced` is the fast separable version (rows, then columns, skipping zero rows
//! and coefficients); `idct_reference` is the plain 2-D definition in f64 that the tests
//! compare it with.
#![forbid(unsafe_code)]

/// The averaging IDCT matrices, transposed for the fast path: `t[s][u * 8 + i]` is
/// `T_n[i][u]` for n = 1 << s, zero for i >= n.
pub struct Tables {
    t: [[f32; 64]; 4],
}

fn basis(u: usize, x: usize) -> f64 {
    let c = if u == 0 { core::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
    c / 2.0 * (((2 * x + 1) * u) as f64 * core::f64::consts::PI / 16.0).cos()
}

/// `T_n[i][u]`: output `i` of an `n`-point reduced IDCT, weight of frequency `u`.
pub fn weight(n: usize, i: usize, u: usize) -> f64 {
    let step = 8 / n;
    let mut sum = 0.0;
    for j in 0..step {
        sum += basis(u, i * step + j);
    }
    let w = sum / step as f64;
    // Sums that are 0 in exact arithmetic come out near 1e-17: make them 0 so the
    // fast path can skip them.
    if w.abs() < 1e-12 {
        0.0
    } else {
        w
    }
}

impl Tables {
    pub fn new() -> Tables {
        let mut t = [[0f32; 64]; 4];
        for (s, table) in t.iter_mut().enumerate() {
            let n = 1 << s;
            for u in 0..8 {
                for i in 0..n {
                    table[u * 8 + i] = weight(n, i, u) as f32;
                }
            }
        }
        Tables { t }
    }
}

/// log2 of n in {1, 2, 4, 8}.
pub fn scale_shift(n: usize) -> usize {
    match n {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    }
}

fn to_u8(v: f32) -> u8 {
    let v = v + 128.5;
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        v as u8
    }
}

/// coefs: dequantized F[v * 8 + u] (v vertical frequency), i32 [64] ->
/// out[y * stride + x] for x < nx, y < ny: u8 pixels, level-shifted and clamped.
pub fn idct_reduced(
    tables: &Tables,
    coefs: &[i32; 64],
    nx: usize,
    ny: usize,
    out: &mut [u8],
    stride: usize,
) {
    if nx == 1 && ny == 1 {
        // Every u, v > 0 averages to 0 over the whole block.
        out[0] = to_u8(coefs[0] as f32 / 8.0);
        return;
    }
    // Blocks reduced to 4 or fewer columns run 4-wide (one f32x4), the rest 8-wide.
    if nx <= 4 {
        separable::<4>(tables, coefs, nx, ny, out, stride);
    } else {
        separable::<8>(tables, coefs, nx, ny, out, stride);
    }
}

/// `idct_reduced` for nx <= W: rows then columns, W lanes per output row.
#[inline(always)]
fn separable<const W: usize>(
    tables: &Tables,
    coefs: &[i32; 64],
    nx: usize,
    ny: usize,
    out: &mut [u8],
    stride: usize,
) {
    let tx = &tables.t[scale_shift(nx)];
    let ty = &tables.t[scale_shift(ny)];
    // Rows: tmp[v][x] = sum_u T_nx[x][u] F[v][u]; tmp: f32 [8, W], only nonzero rows.
    let mut tmp = [[0f32; W]; 8];
    let mut rows = [0usize; 8];
    let mut nrows = 0;
    for v in 0..8 {
        let row = &coefs[v * 8..v * 8 + 8];
        if row.iter().all(|&c| c == 0) {
            continue;
        }
        let acc = &mut tmp[nrows];
        for (u, &c) in row.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let c = c as f32;
            let w = &tx[u * 8..u * 8 + W];
            for x in 0..W {
                acc[x] += c * w[x];
            }
        }
        rows[nrows] = v;
        nrows += 1;
    }
    // Columns: out[y][x] = sum_v T_ny[y][v] tmp[v][x].
    for y in 0..ny {
        let mut acc = [0f32; W];
        for r in 0..nrows {
            let w = ty[rows[r] * 8 + y];
            let t = &tmp[r];
            for x in 0..W {
                acc[x] += w * t[x];
            }
        }
        let mut px = [0u8; W];
        for (p, a) in px.chunks_exact_mut(4).zip(acc.chunks_exact(4)) {
            p.copy_from_slice(&pixels4([a[0], a[1], a[2], a[3]]));
        }
        out[y * stride..y * stride + nx].copy_from_slice(&px[..nx]);
    }
}

/// Four IDCT outputs to pixels: `(v + 128.5)` truncated with saturation (NaN to 0), then
/// clamped to 0..=255 - level shift and rounding, as `idct_reference` does.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn pixels4(v: [f32; 4]) -> [u8; 4] {
    v.map(|v| ((v + 128.5) as i32).clamp(0, 255) as u8)
}

/// `pixels4` in four SIMD128 instructions: LLVM leaves the per-lane float -> int and clamp
/// scalar (an extract, convert, two compares and a store per pixel, most of the IDCT's
/// time at full size); `trunc_sat` converts four lanes as `as i32` does, and the two
/// saturating narrows clamp to 0..=255 exactly as `clamp(0, 255)`. Same results.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn pixels4(v: [f32; 4]) -> [u8; 4] {
    use core::arch::wasm32::{
        f32x4, f32x4_add, f32x4_splat, i16x8_narrow_i32x4, i32x4_extract_lane,
        i32x4_trunc_sat_f32x4, u8x16_narrow_i16x8,
    };
    let ints = i32x4_trunc_sat_f32x4(f32x4_add(f32x4(v[0], v[1], v[2], v[3]), f32x4_splat(128.5)));
    let shorts = i16x8_narrow_i32x4(ints, ints);
    let bytes = u8x16_narrow_i16x8(shorts, shorts);
    (i32x4_extract_lane::<0>(bytes) as u32).to_le_bytes()
}

/// `idct_reduced` for nx = ny = 2 (4:2:0 chroma at 1/8 scale) when `coefs` is zero
/// except at 0 and the natural positions in `nonzero`: each coefficient adds its four
/// products, about 15 operations instead of a 4-lane separable pass.
pub fn idct_2x2_sparse(
    tables: &Tables,
    coefs: &[i32; 64],
    nonzero: &[u8],
    out: &mut [u8],
    stride: usize,
) {
    let t = &tables.t[1]; // T_2[i][u] at t[u * 8 + i]
    let mut s = [0f32; 4];
    let mut add = |pos: usize| {
        let (v, u) = (pos >> 3, pos & 7);
        let c = coefs[pos] as f32;
        let (y0, y1) = (c * t[v * 8], c * t[v * 8 + 1]);
        let (x0, x1) = (t[u * 8], t[u * 8 + 1]);
        s[0] += y0 * x0;
        s[1] += y0 * x1;
        s[2] += y1 * x0;
        s[3] += y1 * x1;
    };
    add(0);
    for &pos in nonzero {
        add(pos as usize & 63);
    }
    let px = pixels4(s);
    out[..2].copy_from_slice(&px[..2]);
    out[stride..stride + 2].copy_from_slice(&px[2..]);
}

/// `idct_reduced` of a block whose only nonzero coefficient is the DC `dc`: every
/// output is `dc / 8` level-shifted (all AC basis functions are 0 there).
pub fn idct_dc(dc: i32, nx: usize, ny: usize, out: &mut [u8], stride: usize) {
    let v = to_u8(dc as f32 / 8.0);
    for y in 0..ny {
        out[y * stride..y * stride + nx].fill(v);
    }
}

/// The plain definition: the full 8x8 IDCT in f64 (T.81 A.3.3), then the mean of each
/// (8/nx) x (8/ny) cell, level-shifted and clamped. Same shapes as `idct_reduced`.
pub fn idct_reference(coefs: &[i32; 64], nx: usize, ny: usize, out: &mut [u8], stride: usize) {
    let mut full = [0f64; 64];
    for y in 0..8 {
        for x in 0..8 {
            let mut s = 0.0;
            for v in 0..8 {
                for u in 0..8 {
                    s += basis(v, y) * basis(u, x) * coefs[v * 8 + u] as f64;
                }
            }
            full[y * 8 + x] = s;
        }
    }
    let (sx, sy) = (8 / nx, 8 / ny);
    for oy in 0..ny {
        for ox in 0..nx {
            let mut s = 0.0;
            for y in 0..sy {
                for x in 0..sx {
                    s += full[(oy * sy + y) * 8 + ox * sx + x];
                }
            }
            let v = s / (sx * sy) as f64 + 128.0;
            out[oy * stride + ox] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u32) -> u32 {
        *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        *seed >> 8
    }

    fn check(coefs: &[i32; 64], what: &str) {
        let tables = Tables::new();
        for &nx in &[1usize, 2, 4, 8] {
            for &ny in &[1usize, 2, 4, 8] {
                let mut fast = [0u8; 64];
                let mut slow = [0u8; 64];
                idct_reduced(&tables, coefs, nx, ny, &mut fast, 8);
                idct_reference(coefs, nx, ny, &mut slow, 8);
                for i in 0..64 {
                    let d = (fast[i] as i32 - slow[i] as i32).abs();
                    // f32 vs f64 can land on either side of a rounding boundary.
                    assert!(d <= 1, "{what} {nx}x{ny}: pixel {i} fast {} ref {}", fast[i], slow[i]);
                }
            }
        }
    }

    #[test]
    fn reduced_idct_matches_the_reference_on_random_blocks() {
        let mut seed = 1;
        for case in 0..2000 {
            let mut coefs = [0i32; 64];
            let nonzero = (lcg(&mut seed) % 64) as usize;
            for _ in 0..nonzero {
                let i = (lcg(&mut seed) % 64) as usize;
                coefs[i] = (lcg(&mut seed) % 512) as i32 - 256;
            }
            coefs[0] = (lcg(&mut seed) % 2048) as i32 - 1024;
            check(&coefs, &format!("case {case}"));
        }
    }

    #[test]
    fn reduced_idct_matches_the_reference_on_edge_blocks() {
        check(&[0; 64], "zero");
        let mut dc = [0; 64];
        dc[0] = 1016; // 127 * 8: saturates at 255
        check(&dc, "dc max");
        dc[0] = -1032;
        check(&dc, "dc min");
        for i in 0..64 {
            let mut one = [0; 64];
            one[i] = 1000;
            check(&one, &format!("single {i}"));
            one[i] = -2047;
            check(&one, &format!("single negative {i}"));
        }
        check(&[2047; 64], "all max");
        check(&[-2048; 64], "all min");
    }

    #[test]
    fn sparse_2x2_idct_matches_the_reference_on_random_sparse_blocks() {
        let tables = Tables::new();
        let mut seed = 3;
        for case in 0..5000 {
            let mut coefs = [0i32; 64];
            coefs[0] = (lcg(&mut seed) % 2048) as i32 - 1024;
            let mut nonzero = Vec::new();
            for _ in 0..(lcg(&mut seed) % 12) {
                let pos = 1 + (lcg(&mut seed) % 63) as usize;
                let value = (lcg(&mut seed) % 1024) as i32 - 512;
                if coefs[pos] == 0 && value != 0 {
                    coefs[pos] = value;
                    nonzero.push(pos as u8);
                }
            }
            let (mut fast, mut slow) = ([0u8; 16], [0u8; 16]);
            idct_2x2_sparse(&tables, &coefs, &nonzero, &mut fast, 8);
            idct_reference(&coefs, 2, 2, &mut slow, 8);
            for i in [0, 1, 8, 9] {
                let d = (fast[i] as i32 - slow[i] as i32).abs();
                assert!(d <= 1, "case {case} pixel {i}: {} vs {}", fast[i], slow[i]);
            }
        }
    }

    #[test]
    fn idct_dc_matches_the_reference_for_dc_only_blocks() {
        for dc in (-1100..1100).step_by(7) {
            let mut coefs = [0; 64];
            coefs[0] = dc;
            for &n in &[1usize, 2, 4, 8] {
                let (mut fast, mut slow) = ([0u8; 64], [0u8; 64]);
                idct_dc(dc, n, n, &mut fast, 8);
                idct_reference(&coefs, n, n, &mut slow, 8);
                for i in 0..64 {
                    let d = (fast[i] as i32 - slow[i] as i32).abs();
                    assert!(d <= 1, "dc {dc} n {n} pixel {i}: {} vs {}", fast[i], slow[i]);
                }
            }
        }
    }

    #[test]
    fn a_flat_block_decodes_to_its_dc_at_every_scale() {
        let tables = Tables::new();
        let mut coefs = [0; 64];
        coefs[0] = 80; // +10 after the level shift
        for &n in &[1usize, 2, 4, 8] {
            let mut out = [0u8; 64];
            idct_reduced(&tables, &coefs, n, n, &mut out, 8);
            for y in 0..n {
                for x in 0..n {
                    assert_eq!(out[y * 8 + x], 138, "n = {n}");
                }
            }
        }
    }
}
