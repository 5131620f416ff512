//! Window sums by blocks (the van Herk / Gil-Werman trick, applied to sums), for
//! windows of up to `BLOCKS_MAX_SIZE` channels, in f32.
//!
//! Channels are cut into blocks of `size` window starts. A window starting at u
//! within block [b, b + size) ends in the next block, so its sum is
//!
//! ```text
//! S = suffix(u) + prefix(u + size - 1)
//! suffix(u) = sum of squares from u to the end of u's block
//! prefix(v) = sum of squares from the start of v's block to v
//! ```
//!
//! Each square enters one suffix and one prefix, so a sum costs O(1) whatever the
//! size, and only positive terms are ever added: no subtraction, hence none of the
//! cancellation a running sum suffers when a large activation leaves the window
//! (in f32 that error can exceed the small sum left behind, even make it negative).
//! Without subtraction, inf and NaN inputs also affect only their own windows.
//!
//! Work goes tile by tile over H*W so the suffix rows, the prefix row and the x
//! rows they read stay in L1. Each block's outputs are computed in the same loop as
//! the next block's suffix rows: that work then fills the gaps while the division
//! and square roots of the finish are in flight (about 9% faster than two passes).

use crate::lrn::{Finish, Rows, Window, BLOCKS_MAX_SIZE};
use crate::simd::*;
use core::arch::wasm32::*;

/// Pixels per tile at most: rows of 1 KiB, and at most 16 KiB of suffix rows.
const TILE: usize = 256;

/// Stands in for a channel outside [0, C): its squares are 0.
static ZEROS: [f32; TILE] = [0.0; TILE];

// x, y: [C, HW]
pub fn image(x: &[f32], y: &mut [f32], c: usize, hw: usize, w: &Window, f: &dyn Rows) {
    let size = w.size;
    // Suffix rows of the current block and of the next: [2][size][padded]
    let mut suffixes = [0.0f32; 2 * BLOCKS_MAX_SIZE * TILE];
    let mut prefix = [0.0f32; TILE];
    // Takes the next-suffix work of the last block, which has no next block.
    let mut spare = [0.0f32; TILE];
    let mut t0 = 0;
    while t0 < hw {
        let len = TILE.min(hw - t0);
        // Scratch rows hold whole vectors; the padding lanes see only zeros.
        let padded = (len + 3) & !3;
        let tile = Tile { x, hw, c, t0, len, before: w.before };
        let (mut current, mut next) = suffixes.split_at_mut(BLOCKS_MAX_SIZE * TILE);
        // Block 0's suffix rows alone: suffix[i] = q(i) + suffix[i + 1], from its end down.
        for i in (0..size).rev() {
            let (rows, later) = current.split_at_mut((i + 1) * padded);
            let after = if i + 1 < size { &later[..padded] } else { &ZEROS[..padded] };
            square_plus(&mut rows[i * padded..], tile.squared(i), after);
        }
        let mut b = 0;
        while b < c {
            // Channel ch's window starts at u = ch (see Tile::squared) and ends at
            // ch + size - 1, which the prefix takes in just before ch's output.
            // Alongside channel b + k, row size - 1 - k of the next block's suffix is
            // built, so that work overlaps the divisions and square roots.
            let has_next = b + size < c;
            let prefix = &mut prefix[..padded];
            prefix.fill(0.0);
            for (k, ch) in (b..(b + size).min(c)).enumerate() {
                let (next_row, next_src, next_after) = if has_next {
                    let i = size - 1 - k;
                    let (rows, later) = next.split_at_mut((i + 1) * padded);
                    let after = if i + 1 < size { &later[..padded] } else { &ZEROS[..padded] };
                    (&mut rows[i * padded..], tile.squared(b + size + i), after)
                } else {
                    (&mut spare[..padded], &ZEROS[..len], &ZEROS[..padded])
                };
                let row = BlockRow {
                    prefix: &mut *prefix,
                    enter: if k > 0 { tile.squared(ch + size - 1) } else { &ZEROS[..len] },
                    suffix: &current[k * padded..][..padded],
                    x: tile.row(ch),
                    y: &mut y[ch * hw + t0..][..len],
                    next: next_row,
                    next_src,
                    next_after,
                };
                output_row(row, f);
            }
            core::mem::swap(&mut current, &mut next);
            b += size;
        }
        t0 += len;
    }
}

/// One channel's row of a tile, and one row of the next block's suffix.
/// prefix, suffix, next, next_after: [padded]; enter, x, y, next_src: [len]
pub struct BlockRow<'a> {
    /// Squares of the current block up to the channel entering the window.
    pub prefix: &'a mut [f32],
    /// The entering channel (zeros when none).
    pub enter: &'a [f32],
    /// Squares from the window's start to the end of its block.
    pub suffix: &'a [f32],
    pub x: &'a [f32],
    pub y: &'a mut [f32],
    /// next = next_src^2 + next_after: a suffix row of the next block.
    pub next: &'a mut [f32],
    pub next_src: &'a [f32],
    pub next_after: &'a [f32],
}

/// The pixels [t0, t0 + len) of every channel of one image.
struct Tile<'a> {
    x: &'a [f32],
    hw: usize,
    c: usize,
    t0: usize,
    len: usize,
    before: usize,
}

impl<'a> Tile<'a> {
    // x: [C, HW] -> channel ch's pixels: [len]
    fn row(&self, ch: usize) -> &'a [f32] {
        &self.x[ch * self.hw + self.t0..][..self.len]
    }

    /// The row whose squares sit at window position u. Positions are shifted by
    /// `before` so that channel ch's window is [ch, ch + size - 1] and never
    /// negative; positions off either end of [0, C) are zeros (the clipping).
    fn squared(&self, u: usize) -> &'a [f32] {
        match u.checked_sub(self.before) {
            Some(ch) if ch < self.c => self.row(ch),
            _ => &ZEROS[..self.len],
        }
    }
}

/// out = src^2 + next. out, next: [padded]; src: [len]
fn square_plus(out: &mut [f32], src: &[f32], next: &[f32]) {
    let full = src.len() & !3;
    for ((o4, s4), n4) in
        out.chunks_exact_mut(4).zip(src[..full].chunks_exact(4)).zip(next.chunks_exact(4))
    {
        let s = load4(s4);
        store4(o4, f32x4_add(f32x4_mul(s, s), load4(n4)));
    }
    if full < src.len() {
        let s = load_partial(&src[full..]);
        let o4 = &mut out[full..full + 4];
        store4(o4, f32x4_add(f32x4_mul(s, s), load4(&next[full..full + 4])));
    }
}

/// prefix += enter^2, y = finish(x, suffix + prefix), next = next_src^2 + next_after.
fn output_row(r: BlockRow, f: &dyn Rows) {
    let len = r.x.len();
    let full = len & !3;
    f.blocks_row(BlockRow {
        prefix: &mut r.prefix[..full],
        enter: &r.enter[..full],
        suffix: &r.suffix[..full],
        x: &r.x[..full],
        y: &mut r.y[..full],
        next: &mut r.next[..full],
        next_src: &r.next_src[..full],
        next_after: &r.next_after[..full],
    });
    if full < len {
        // The last 1-3 pixels go through the same loop on zero-padded copies, so
        // they get bit-identical arithmetic and the loop body exists once.
        let (mut e, mut x4, mut src, mut y4) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
        let rest = len - full;
        e[..rest].copy_from_slice(&r.enter[full..]);
        x4[..rest].copy_from_slice(&r.x[full..]);
        src[..rest].copy_from_slice(&r.next_src[full..]);
        f.blocks_row(BlockRow {
            prefix: &mut r.prefix[full..full + 4],
            enter: &e,
            suffix: &r.suffix[full..full + 4],
            x: &x4,
            y: &mut y4,
            next: &mut r.next[full..full + 4],
            next_src: &src,
            next_after: &r.next_after[full..full + 4],
        });
        r.y[full..].copy_from_slice(&y4[..rest]);
    }
}

/// `output_row` on whole vectors: every slice is [4k]. Compiled once per `Finish`
/// through `Rows::blocks_row`.
#[inline(always)]
pub fn output_vectors<F: Finish>(r: BlockRow, f: &F) {
    let sums = r.prefix.chunks_exact_mut(4).zip(r.suffix.chunks_exact(4));
    let pixels = r.enter.chunks_exact(4).zip(r.x.chunks_exact(4)).zip(r.y.chunks_exact_mut(4));
    let next = r
        .next
        .chunks_exact_mut(4)
        .zip(r.next_src.chunks_exact(4))
        .zip(r.next_after.chunks_exact(4));
    for (((p4, s4), ((e4, x4), y4)), ((n4, src4), a4)) in sums.zip(pixels).zip(next) {
        let e = load4(e4);
        let p = f32x4_add(load4(p4), f32x4_mul(e, e));
        store4(p4, p);
        store4(y4, f.finish(load4(x4), f32x4_add(load4(s4), p)));
        let q = load4(src4);
        store4(n4, f32x4_add(f32x4_mul(q, q), load4(a4)));
    }
}
