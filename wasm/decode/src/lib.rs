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
//! - `resample_rgb(ptr, len, out, out_len) -> 0 | -code`: the antialiased resample of an RGBA image
//!   (`resample::resample_rgb`) described by the region `ptr..ptr+len` from `alloc(len)`:
//!   u32 LE `[width, rows, row0, out_w, x_stride, out_h, y_stride, src_at, x_at, y_at]`,
//!   then at `x_at` the x taps (`start` i32 [out_w], `count` i32 [out_w], `weights` f64
//!   [out_w, x_stride], all LE), at `y_at` the y taps likewise, at `src_at` the RGBA rows
//!   `row0..row0 + rows` ([rows, width, 4]). Writes RGB f32 [out_h, out_w, 3] to `out`
//!   (from another `alloc`), or returns `-STATUS_CORRUPT` for a region or taps that do
//!   not fit. Unlike decoding, the caller may keep one instance for many resamples and
//!   reuse its two regions (memory that is already paged in is much cheaper).
//!
//! Nothing `alloc` hands out is ever freed; `input` and the decode's output are reused,
//! so one instance can decode image after image in memory that is already paged in. All code is safe Rust except turning the caller's offsets into slices, here.
#![deny(unsafe_op_in_unsafe_fn)]

// The decoder modules cannot contain unsafe code at all (`forbid` at their tops).
pub mod huffman;
pub mod idct;
pub mod jpeg;
pub mod resample;

use huffman::Error;
use std::cell::RefCell;
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
}

/// Room for `bytes` bytes of encoded file in a buffer this instance reuses, valid until
/// the next `input` call; 0 when memory cannot grow. For a long-lived instance, where
/// `alloc` would leak one file per decode.
#[no_mangle]
pub extern "C" fn input(bytes: usize) -> usize {
    INPUT.with(|v| {
        let mut v = v.borrow_mut();
        let n = bytes.max(1);
        let have = v.len();
        if n > have && v.try_reserve_exact(n - have).is_err() {
            return 0;
        }
        v.resize(n, 0);
        v.as_mut_ptr() as usize
    })
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
    match jpeg::decode(data, denom) {
        Ok(image) => {
            let mut out: Vec<u8> = Vec::new();
            if out.try_reserve_exact(8 + image.rgba.len()).is_err() {
                return -STATUS_OUT_OF_MEMORY;
            }
            out.extend_from_slice(&(image.width as u32).to_le_bytes());
            out.extend_from_slice(&(image.height as u32).to_le_bytes());
            out.extend_from_slice(&image.rgba);
            drop(image);
            let at = out.as_ptr() as i32;
            // Moving the Vec keeps its heap buffer (and `at`) where it is.
            OUTPUT.with(|o| *o.borrow_mut() = out);
            at
        }
        Err(Error::Truncated) => -STATUS_TRUNCATED,
        Err(Error::Corrupt) => -STATUS_CORRUPT,
        Err(Error::Unsupported) => -STATUS_UNSUPPORTED,
        Err(Error::OutOfMemory) => -STATUS_OUT_OF_MEMORY,
    }
}

/// Resamples the image described by the region `ptr..ptr + len` (see the module docs)
/// into `out..out + out_len`; returns 0, or `-STATUS_CORRUPT` if the region or taps do
/// not fit or `out_len` is not the output's size in bytes.
#[no_mangle]
pub extern "C" fn resample_rgb(ptr: usize, len: usize, out: usize, out_len: usize) -> i32 {
    if ptr == 0 || out == 0 || out % 4 != 0 {
        return -STATUS_CORRUPT;
    }
    // SAFETY: as in `jpeg_decode`: `ptr` and `out` came from two `alloc` calls of at
    // least `len` and `out_len` bytes, leaked Vecs of initialized bytes that nothing in
    // Rust references, so the two slices do not overlap and nothing else aliases the
    // mutable one; `out` is 4-aligned (checked above) and any bytes are a valid f32.
    // The caller may reuse both regions for later calls (one at a time: one JS thread).
    let region = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
    let out = unsafe { core::slice::from_raw_parts_mut(out as *mut f32, out_len / 4) };
    match resample_region(region, out) {
        Some(()) => 0,
        None => -STATUS_CORRUPT,
    }
}

/// Reads `resample_rgb`'s region and resamples into `out`; `None` if anything does not fit.
fn resample_region(region: &[u8], out: &mut [f32]) -> Option<()> {
    let bytes = |at: usize, n: usize| region.get(at..at.checked_add(n)?);
    let word = |i: usize| Some(u32::from_le_bytes(bytes(4 * i, 4)?.try_into().ok()?) as usize);
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
    let xt = taps(x_at, out_w, x_stride)?;
    let yt = taps(y_at, out_h, y_stride)?;
    let src = bytes(src_at, width.checked_mul(rows)?.checked_mul(4)?)?;
    resample::resample_rgb(src, width, row0, (&xt, &yt), out)
}
