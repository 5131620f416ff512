//! alexnet-edge's JPEG decoder with DCT-domain downscaling, for WebAssembly.
//!
//! C-ABI exports; pointers are byte offsets into this module's memory:
//!
//! - `alloc(bytes) -> ptr`: room for the encoded file (0 when memory cannot grow).
//! - `input(bytes) -> ptr`: the same from one reused buffer, for a long-lived instance.
//! - `jpeg_decode(ptr, len, denom) -> ptr | -code`: decodes the JPEG at `ptr..ptr+len`
//!   at scale 1/`denom` (1, 2, 4 or 8). On success returns the offset of
//!   `[width: u32 LE, height: u32 LE, RGBA u8 [height, width, 4]]`, valid until the next
//!   decode (which frees it); otherwise a negative `STATUS_*` code.
//! - `jpeg_work(which) -> f64`: the last decode's scans (0), block visits (1) and
//!   block-visit budget (2), for tests and the log (`budget.rs` sets the limits).
//! - `region(bytes) -> ptr`: a reused buffer for a resample region (0 when memory cannot
//!   grow), laid out as u32 LE `[width, rows, row0, out_w, x_stride, out_h, y_stride,
//!   src_at, x_at, y_at]`, then at `x_at` the x taps (`start` i32 [out_w], `count` i32
//!   [out_w], `weights` f64 [out_w, x_stride], all LE), at `y_at` the y taps likewise,
//!   and (for `source` 0) at `src_at` the RGBA rows `row0..row0 + rows` ([rows, width, 4]).
//! - `resample(len, source) -> ptr | -code`: the antialiased resample of an RGBA image
//!   (`resample::resample_rgb`) described by the region's first `len` bytes, reading the
//!   rows from the region (`source` 0) or from the last decode's output where it lies
//!   (`source` 1: no copy out of the module and back). Returns the offset of RGB f32
//!   [out_h, out_w, 3], valid until the next `resample`, or `-STATUS_CORRUPT` for a region
//!   or taps that do not fit.
//!
//! - `png_rows(bytes) -> ptr`: room for three PNG scanlines of up to `bytes` bytes (slots 0,
//!   1, 2, each `bytes + png::SLACK` long, one after another) in a buffer this instance
//!   reuses; 0 when memory cannot grow.
//! - `png_unfilter(kind, n, bpp, raw, prev, out) -> 0 | -code`: undoes filter `kind` of the
//!   `n`-byte scanline in slot `raw`, slot `prev` holding the line above, into slot `out`
//!   (`png::unfilter`); `-STATUS_CORRUPT` for a filter type over 4, a bad `bpp`, `n` over
//!   the slots' size or slots that are not three different ones.
//!
//! Nothing `alloc` hands out is ever freed; `input`, `region`, the decode's output and the
//! resample's result are reused, so one instance can decode and resample image after image
//! in memory that is already paged in. All code is safe Rust except turning the caller's
//! offsets into the encoded file's slice, here.
#![deny(unsafe_op_in_unsafe_fn)]

// The decoder modules cannot contain unsafe code at all (`forbid` at their tops).
pub mod budget;
pub mod huffman;
pub mod idct;
pub mod jpeg;
pub mod png;
pub mod resample;

use huffman::Error;
use std::cell::{Cell, RefCell};
use std::vec::Vec;

/// The data ends before the image does.
pub const STATUS_TRUNCATED: i32 = 1;
/// The data breaks the JPEG format.
pub const STATUS_CORRUPT: i32 = 2;
/// Valid JPEG that this decoder does not handle (arithmetic coding, lossless,
/// hierarchical, 12-bit, 2 components, DNL, 3:1 sampling): use a full decoder.
pub const STATUS_UNSUPPORTED: i32 = 3;
/// Memory could not grow for the image.
pub const STATUS_OUT_OF_MEMORY: i32 = 4;
/// More scans than `budget::MAX_SCANS`: refused, not for a full decoder either.
pub const STATUS_TOO_MANY_SCANS: i32 = 5;
/// Scans that would visit more 8x8 blocks than `budget::VISITS_PER_BLOCK` times the
/// frame's: refused, not for a full decoder either.
pub const STATUS_OVER_BUDGET: i32 = 6;

/// Room for `bytes` bytes, kept until the instance is dropped; 0 when memory is full.
#[no_mangle]
pub extern "C" fn alloc(bytes: usize) -> usize {
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(bytes.max(1)).is_err() {
        return 0;
    }
    v.resize(bytes.max(1), 0);
    v.leak().as_mut_ptr() as usize
}

thread_local! {
    /// `input`'s buffer, reused (and grown) from call to call.
    static INPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    /// The last decode's output, kept until the next decode replaces (and frees) it.
    static OUTPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    /// `region`'s buffer, and `resample`'s last result (both reused).
    static REGION: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    static RESULT: RefCell<Vec<f32>> = RefCell::new(Vec::new());
    /// The last decode's scans and block visits, and its block budget (`jpeg_work`).
    static WORK: RefCell<budget::Work> = RefCell::new(budget::Work::default());
    /// `png_rows`'s three scanline slots, and the length of one.
    static PNG_ROWS: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    static PNG_SLOT: Cell<usize> = Cell::new(0);
}

/// Room for `bytes` bytes of encoded file in a buffer this instance reuses, valid until
/// the next `input` call; 0 when memory cannot grow. For a long-lived instance, where
/// `alloc` would leak one file per decode.
#[no_mangle]
pub extern "C" fn input(bytes: usize) -> usize {
    INPUT.with(|v| reuse(&mut v.borrow_mut(), bytes))
}

/// Decodes the JPEG at `ptr..ptr + len` (filled by the caller after `alloc(len)` or
/// `input(len)`). The output stays valid until the next `jpeg_decode` call.
#[no_mangle]
pub extern "C" fn jpeg_decode(ptr: usize, len: usize, denom: usize) -> i32 {
    if ptr == 0 {
        return -STATUS_OUT_OF_MEMORY;
    }
    // SAFETY: `ptr` came from `alloc(len)`, which leaked a Vec of exactly `len` (or 1
    // for 0) initialized bytes that nothing else references or ever frees, or from
    // `input(len)`, whose Vec lives in INPUT and is neither borrowed nor resized until
    // the next `input` call (never during this one); the caller (one JavaScript thread)
    // only wrote the file into it before this call. A caller
    // passing anything else breaks the contract above, and wasm's bounds-checked memory
    // still confines the read to this instance.
    let data = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
    let mut work = budget::Work::default();
    let decoded = jpeg::decode_counted(data, denom, &mut work);
    WORK.with(|w| *w.borrow_mut() = work);
    match decoded {
        Ok(image) => {
            let at = image.data.as_ptr() as i32;
            // Moving the Vec keeps its heap buffer (and `at`) where it is.
            OUTPUT.with(|o| *o.borrow_mut() = image.data);
            at
        }
        Err(Error::Truncated) => -STATUS_TRUNCATED,
        Err(Error::Corrupt) => -STATUS_CORRUPT,
        Err(Error::Unsupported) => -STATUS_UNSUPPORTED,
        Err(Error::OutOfMemory) => -STATUS_OUT_OF_MEMORY,
        Err(Error::TooManyScans) => -STATUS_TOO_MANY_SCANS,
        Err(Error::OverBudget) => -STATUS_OVER_BUDGET,
    }
}

/// The last `jpeg_decode`'s work: `which` 0 scans started, 1 block visits charged, 2 the
/// block-visit budget (a number, as f64 so it never wraps).
#[no_mangle]
pub extern "C" fn jpeg_work(which: u32) -> f64 {
    WORK.with(|w| {
        let w = w.borrow();
        match which {
            0 => w.scans as f64,
            1 => w.block_visits as f64,
            _ => w.block_budget as f64,
        }
    })
}

/// Room for `bytes` bytes of a resample region (see the module docs) in a buffer this
/// instance reuses, valid until the next `region` call; 0 when memory cannot grow.
#[no_mangle]
pub extern "C" fn region(bytes: usize) -> usize {
    REGION.with(|v| reuse(&mut v.borrow_mut(), bytes))
}

/// Resamples the image described by `region`'s first `len` bytes: its source rows are the
/// region's own (`source` 0) or the last decode's output (`source` 1, pixels left where
/// the decode put them, so they are never copied out and back in). Returns the offset of
/// the RGB f32 result [out_h, out_w, 3], valid until the next `resample`, or
/// `-STATUS_CORRUPT` if the region or taps do not fit (or there is no decoded image of
/// that width), `-STATUS_OUT_OF_MEMORY`.
#[no_mangle]
pub extern "C" fn resample(len: usize, source: u32) -> i32 {
    REGION.with(|region| {
        let region = region.borrow();
        let region = match region.get(..len) {
            Some(r) => r,
            None => return -STATUS_CORRUPT,
        };
        RESULT.with(|result| {
            let mut result = result.borrow_mut();
            let status = if source == 1 {
                OUTPUT.with(|o| resample_region(region, Some(&o.borrow()), &mut result))
            } else {
                resample_region(region, None, &mut result)
            };
            match status {
                Ok(()) => result.as_ptr() as i32,
                Err(e) => -(e as i32),
            }
        })
    })
}

/// Room for three PNG scanlines of up to `bytes` bytes (see the module docs); 0 when memory
/// cannot grow. Later calls reuse (and grow) the same buffer.
#[no_mangle]
pub extern "C" fn png_rows(bytes: usize) -> usize {
    let slot = match bytes.checked_add(png::SLACK) {
        Some(s) => s,
        None => return 0,
    };
    let at = match slot.checked_mul(3) {
        Some(all) => PNG_ROWS.with(|v| reuse(&mut v.borrow_mut(), all)),
        None => 0,
    };
    PNG_SLOT.with(|s| s.set(if at == 0 { 0 } else { slot }));
    at
}

/// Undoes filter `kind` of the `n`-byte scanline in slot `raw` into slot `out`, slot `prev`
/// holding the line above (`png::unfilter`). 0, or `-STATUS_CORRUPT` (see the module docs).
#[no_mangle]
pub extern "C" fn png_unfilter(
    kind: u32,
    n: usize,
    bpp: usize,
    raw: u32,
    prev: u32,
    out: u32,
) -> i32 {
    let slot = PNG_SLOT.with(|s| s.get());
    let distinct = raw != prev && prev != out && raw != out;
    if !distinct || raw > 2 || prev > 2 || out > 2 || n > slot.saturating_sub(png::SLACK) {
        return -STATUS_CORRUPT;
    }
    PNG_ROWS.with(|v| {
        let mut v = v.borrow_mut();
        // Three disjoint slots, no allocation (memory must not grow under the caller's views).
        let (s0, rest) = v[..3 * slot].split_at_mut(slot);
        let (s1, s2) = rest.split_at_mut(slot);
        let mut slots = [Some(s0), Some(s1), Some(s2)];
        let out_row = slots[out as usize].take().unwrap_or_default();
        let row = |i: u32| slots[i as usize].as_deref().unwrap_or_default();
        if png::unfilter(kind, row(raw), row(prev), out_row, n, bpp) {
            0
        } else {
            -STATUS_CORRUPT
        }
    })
}

/// `v` grown (never shrunk) to at least `bytes` (min 1) bytes; its address, or 0.
fn reuse(v: &mut Vec<u8>, bytes: usize) -> usize {
    let n = bytes.max(1);
    let have = v.len();
    if n > have && v.try_reserve_exact(n - have).is_err() {
        return 0;
    }
    if n > have {
        v.resize(n, 0);
    }
    v.as_mut_ptr() as usize
}

/// Reads `resample`'s region and resamples into `out` (resized to the output's size), from
/// the region's rows or, with `decoded`, from a decode's output `[width, height, RGBA]`.
fn resample_region(region: &[u8], decoded: Option<&[u8]>, out: &mut Vec<f32>) -> Result<(), i32> {
    const BAD: i32 = STATUS_CORRUPT;
    let bytes = |at: usize, n: usize| region.get(at..at.checked_add(n)?);
    let word = |i: usize| -> Result<usize, i32> {
        let b = bytes(4 * i, 4).ok_or(BAD)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (width, rows, row0) = (word(0)?, word(1)?, word(2)?);
    let (out_w, x_stride, out_h, y_stride) = (word(3)?, word(4)?, word(5)?, word(6)?);
    let (src_at, x_at, y_at) = (word(7)?, word(8)?, word(9)?);
    let taps = |at: usize, n: usize, stride: usize| -> Option<resample::Taps> {
        let ints = |at: usize| -> Option<Vec<usize>> {
            let b = bytes(at, n.checked_mul(4)?)?;
            let v = b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            v.map(|i| usize::try_from(i).ok()).collect()
        };
        let w = bytes(at + 8 * n, n.checked_mul(stride)?.checked_mul(8)?)?;
        let weights = w.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()));
        Some(resample::Taps {
            start: ints(at)?,
            count: ints(at + 4 * n)?,
            weights: weights.collect(),
            stride,
        })
    };
    let xt = taps(x_at, out_w, x_stride).ok_or(BAD)?;
    let yt = taps(y_at, out_h, y_stride).ok_or(BAD)?;
    let row_bytes = width.checked_mul(4).ok_or(BAD)?;
    let src = match decoded {
        Some(d) => {
            // The decode's own size must be the region's, and rows row0..row0 + rows in it.
            let size = |i: usize| {
                d.get(4 * i..4 * i + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            if size(0) != Some(width) {
                return Err(BAD);
            }
            let from = row0.checked_mul(row_bytes).and_then(|f| f.checked_add(8)).ok_or(BAD)?;
            let n = rows.checked_mul(row_bytes).ok_or(BAD)?;
            match size(1) {
                Some(h) if row0.checked_add(rows).map_or(false, |end| end <= h) => {}
                _ => return Err(BAD),
            }
            d.get(from..from.checked_add(n).ok_or(BAD)?).ok_or(BAD)?
        }
        None => bytes(src_at, rows.checked_mul(row_bytes).ok_or(BAD)?).ok_or(BAD)?,
    };
    let n = out_h.checked_mul(out_w).and_then(|n| n.checked_mul(3)).ok_or(BAD)?;
    if n > out.len() && out.try_reserve_exact(n - out.len()).is_err() {
        return Err(STATUS_OUT_OF_MEMORY);
    }
    out.resize(n, 0.0);
    resample::resample_rgb(src, width, row0, (&xt, &yt), out).ok_or(BAD)
}
