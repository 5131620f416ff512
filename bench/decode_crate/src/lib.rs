//! jpeg-decoder 0.2.6 behind the C ABI the benchmark drives: `input(bytes) -> ptr`, then
//! `decode(ptr, len, want_w, want_h) -> ptr | -1` with `[width u32 LE, height u32 LE,
//! RGBA]` like wasm/decode's `jpeg_decode`, scaled with `Decoder::scale(want_w, want_h)`
//! (its smallest DCT scale whose output is at least that large on one side). RGBA so both
//! decoders hand over what `DecodedImage` holds.
use std::cell::RefCell;

thread_local! {
    static INPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    static OUTPUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

/// Room for the encoded file, reused by the next call.
#[no_mangle]
pub extern "C" fn input(bytes: usize) -> usize {
    INPUT.with(|v| {
        let mut v = v.borrow_mut();
        v.resize(bytes.max(1), 0);
        v.as_mut_ptr() as usize
    })
}

/// Decodes the file in `input`'s buffer (`len` bytes) scaled towards `want_w` x `want_h`.
#[no_mangle]
pub extern "C" fn decode(len: usize, want_w: u32, want_h: u32) -> i32 {
    INPUT.with(|data| {
        let data = data.borrow();
        let mut decoder = jpeg_decoder::Decoder::new(&data[..len.min(data.len())]);
        let clamp = |n: u32| n.min(u16::MAX as u32) as u16;
        if decoder.scale(clamp(want_w), clamp(want_h)).is_err() {
            return -1;
        }
        let pixels = match decoder.decode() {
            Ok(p) => p,
            Err(_) => return -1,
        };
        let info = match decoder.info() {
            Some(i) => i,
            None => return -1,
        };
        let (w, h) = (info.width as usize, info.height as usize);
        OUTPUT.with(|out| {
            let mut out = out.borrow_mut();
            out.clear();
            out.extend_from_slice(&(w as u32).to_le_bytes());
            out.extend_from_slice(&(h as u32).to_le_bytes());
            to_rgba(&pixels, info.pixel_format, &mut out);
            out.as_ptr() as i32
        })
    })
}

/// The crate's L8, RGB24 or CMYK32 output as RGBA (its CMYK is ink: 0 is none).
fn to_rgba(pixels: &[u8], format: jpeg_decoder::PixelFormat, out: &mut Vec<u8>) {
    use jpeg_decoder::PixelFormat::*;
    match format {
        L8 => pixels.iter().for_each(|&g| out.extend_from_slice(&[g, g, g, 255])),
        RGB24 => pixels.chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[0], p[1], p[2], 255])),
        CMYK32 => pixels.chunks_exact(4).for_each(|p| {
            let k = 255 - p[3] as u32;
            let ch = |c: u8| (((255 - c as u32) * k + 127) / 255) as u8;
            out.extend_from_slice(&[ch(p[0]), ch(p[1]), ch(p[2]), 255]);
        }),
        L16 => pixels.chunks_exact(2).for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0], 255])),
    }
}
