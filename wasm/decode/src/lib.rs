//! alexnet-edge's JPEG decoder with DCT-domain downscaling, for WebAssembly.
//!
//! C-ABI exports; pointers are byte offsets into this module's memory:
//!
//! - `alloc(bytes) -> ptr`: room for the encoded file (0 when memory cannot grow).
//! - `jpeg_decode(ptr, len, denom) -> ptr | -code`: decodes the JPEG at `ptr..ptr+len`
//!   at scale 1/`denom` (1, 2, 4 or 8). On success returns the offset of
//!   `[width: u32 LE, height: u32 LE, RGBA u8 [height, width, 4]]`; otherwise a negative
//!   `STATUS_*` code.
//!
//! An instance decodes one image and is then dropped by the caller, so nothing is ever
//! freed. All code is safe Rust except turning the caller's offsets into slices, here.
#![deny(unsafe_op_in_unsafe_fn)]

// The decoder modules cannot contain unsafe code at all (`forbid` at their tops).
pub mod huffman;
pub mod idct;
pub mod jpeg;

use huffman::Error;
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

/// Decodes the JPEG at `ptr..ptr + len` (filled by the caller after `alloc(len)`).
#[no_mangle]
pub extern "C" fn jpeg_decode(ptr: usize, len: usize, denom: usize) -> i32 {
    if ptr == 0 {
        return -STATUS_OUT_OF_MEMORY;
    }
    // SAFETY: `ptr` came from `alloc(len)`, which leaked a Vec of exactly `len` (or 1
    // for 0) initialized bytes that nothing else references or ever frees; the caller
    // (one JavaScript thread) only wrote the file into it before this call. A caller
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
            out.leak().as_ptr() as i32
        }
        Err(Error::Truncated) => -STATUS_TRUNCATED,
        Err(Error::Corrupt) => -STATUS_CORRUPT,
        Err(Error::Unsupported) => -STATUS_UNSUPPORTED,
        Err(Error::OutOfMemory) => -STATUS_OUT_OF_MEMORY,
    }
}
