//! alexnet-edge's WebAssembly kernels on SIMD128: ONNX LRN for NCHW float32, and the
//! int8 kernels of the quantized Gemm and Conv layers.
//!
//! C-ABI exports; every pointer is a byte offset into this module's memory:
//!
//! - `alloc(bytes) -> ptr` and `free(ptr, bytes)`: the heap JavaScript puts tensors in
//!   (see `heap.rs`); `alloc` returns 0 when memory cannot grow. `alloc_static(bytes)`
//!   is for data kept as long as the instance (packed weights): exact size, never freed.
//! - `lrn_f32(x, y, n, c, h, w, size, alpha, beta, bias) -> status`: y = LRN(x) for
//!   x, y: [n, c, h, w] float32 (see `lrn.rs`).
//! - `quantize_u8`, `qgemm_packed_bytes`, `qgemm_pack`, `qlinear_f32`, `qlinear_acc_u8`,
//!   `qconv_f32`, `qconv_acc_u8`: ONNX QuantizeLinear and the quantized Gemm / Conv
//!   (see `quantize.rs`, `qgemm.rs`, `qlinear.rs`, `qconv.rs`).
//! - `qlinear16_f32`, `qlinear16_acc`, `qconv16_f32`: the Gemm and Conv with int8
//!   weights and float input rounded per call on its own grid (see `qlinear.rs`,
//!   `qconv.rs`).
//! - `qgemm_packed7_bytes`, `qgemm_pack7`, `qconv7_f32`, `qconv7_acc_u8`: the same Conv
//!   for 7-bit weights (every w in -63..63) on one 16-wide dot per 16 multiply-adds, and
//!   `use_dot7(index)`: the function-table slot of wasm/relaxed's `dot7` (see
//!   `qconv7.rs`).
//! - `maxpool_f32(x, y, geometry) -> status`: ONNX MaxPool for NCHW float32 (see
//!   `maxpool.rs`).
//!
//! Every status is one of the `STATUS_*` codes.
//!
//! Everything is safe Rust except where raw offsets become memory: turning the
//! offsets JavaScript passes into slices (here), the free-list links inside freed
//! blocks (`heap.rs`) and the v128 loads and stores of `simd.rs`. Each `unsafe` block
//! says why it is sound.
#![no_std]

// Without +simd128 the core::arch::wasm32 intrinsics are not inlined and the
// kernel is many times slower, so refuse to build rather than ship that.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
compile_error!("alexnet_kernels needs wasm32 with +simd128: build it with `bash wasm/build.sh`");

mod heap;
mod lrn;
mod math;
mod maxpool;
mod qconv;
mod qconv7;
mod qgemm;
mod qlinear;
mod quantize;
mod simd;
mod window_blocks;
mod window_sliding;

/// The call ran (or had nothing to do: an empty tensor).
pub const STATUS_OK: i32 = 0;
/// `size` is 0; ONNX requires size >= 1.
pub const STATUS_BAD_SIZE: i32 = 1;
/// The shape is unusable: its bytes overflow the address space, a dimension that must
/// be positive is 0, K exceeds `qgemm::MAX_K`, or rows lie outside the matrix.
pub const STATUS_BAD_SHAPE: i32 = 2;
/// A buffer is not an aligned range inside memory handed out by `alloc`/`alloc_static`.
pub const STATUS_BAD_POINTER: i32 = 3;
/// An output overlaps an input (the LRN sliding window still reads x rows after their
/// y rows are written; the int8 kernels read their inputs throughout).
pub const STATUS_OVERLAP: i32 = 4;
/// A zero point is above 255.
pub const STATUS_BAD_ZERO_POINT: i32 = 5;
/// The heap cannot grow for the kernel's scratch space.
pub const STATUS_OUT_OF_MEMORY: i32 = 6;
/// A weight of a 7-bit packing is outside -63..63.
pub const STATUS_NOT_7BIT: i32 = 7;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Traps, which JavaScript sees as a RuntimeError. Formatting the message would
    // pull core::fmt (several KB) into a module that has nowhere to print it.
    core::arch::wasm32::unreachable()
}

/// Returns a 16-byte-aligned block of at least `bytes` bytes, or 0 when out of memory.
#[no_mangle]
pub extern "C" fn alloc(bytes: usize) -> usize {
    heap::alloc(bytes)
}

/// Gives back a block from `alloc`; `bytes` must be the size it was asked for.
#[no_mangle]
pub extern "C" fn free(ptr: usize, bytes: usize) {
    heap::free(ptr, bytes)
}

/// Returns a 16-byte-aligned block of `bytes` rounded up to 16 that lives as long as
/// the instance (never pass it to `free`), or 0 when out of memory.
#[no_mangle]
pub extern "C" fn alloc_static(bytes: usize) -> usize {
    heap::alloc_static(bytes)
}

/// ONNX LRN over x: [n, c, h, w] into y: [n, c, h, w], both float32 in this memory.
#[allow(clippy::too_many_arguments)] // the C ABI has no structs worth passing from JS
#[no_mangle]
pub extern "C" fn lrn_f32(
    x_ptr: usize,
    y_ptr: usize,
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    size: u32,
    alpha: f32,
    beta: f32,
    bias: f32,
) -> i32 {
    if size == 0 {
        return STATUS_BAD_SIZE;
    }
    let hw = (h as usize).checked_mul(w as usize);
    let image = hw.and_then(|hw| hw.checked_mul(c as usize));
    let len = match image.and_then(|image| image.checked_mul(n as usize)) {
        Some(len) => len,
        None => return STATUS_BAD_SHAPE,
    };
    let bytes = match len.checked_mul(4) {
        Some(bytes) => bytes,
        None => return STATUS_BAD_SHAPE,
    };
    if len == 0 {
        return STATUS_OK;
    }
    if x_ptr % 4 != 0 || y_ptr % 4 != 0 || !heap::owns(x_ptr, bytes) || !heap::owns(y_ptr, bytes) {
        return STATUS_BAD_POINTER;
    }
    if x_ptr < y_ptr + bytes && y_ptr < x_ptr + bytes {
        return STATUS_OVERLAP;
    }
    // SAFETY: [x_ptr, x_ptr + bytes) lies inside blocks `alloc` bump-allocated (checked
    // by `heap::owns`), so it is in bounds of linear memory, past Rust's stack and
    // statics, and initialized (wasm memory starts zeroed; any bit pattern is an f32).
    // It is 4-aligned and non-null (the heap starts above 0). Nothing else borrows it:
    // the module is single-threaded and the heap keeps no references into blocks.
    let x = unsafe { core::slice::from_raw_parts(x_ptr as *const f32, len) };
    // SAFETY: as for x, and y is disjoint from x (checked above), so this is the only
    // reference to those bytes for the duration of the call.
    let y = unsafe { core::slice::from_raw_parts_mut(y_ptr as *mut f32, len) };
    let params = lrn::Params { size: size as usize, alpha, beta, bias };
    lrn::lrn_nchw(x, y, c as usize, h as usize * w as usize, &params);
    STATUS_OK
}

/// A buffer JavaScript passed: `bytes` bytes at byte offset `ptr`, checked to lie in
/// the heap and to be aligned for its element type.
#[derive(Clone, Copy)]
struct Buf {
    ptr: usize,
    bytes: usize,
}

impl Buf {
    /// `len` values of T at `ptr`.
    fn new<T>(ptr: usize, len: usize) -> Result<Buf, i32> {
        let bytes = len.checked_mul(core::mem::size_of::<T>()).ok_or(STATUS_BAD_SHAPE)?;
        if ptr == 0 || ptr % core::mem::align_of::<T>() != 0 || !heap::owns(ptr, bytes) {
            return Err(STATUS_BAD_POINTER);
        }
        Ok(Buf { ptr, bytes })
    }

    fn overlaps(self, other: Buf) -> bool {
        self.ptr < other.ptr + other.bytes && other.ptr < self.ptr + self.bytes
    }

    /// SAFETY: the caller guarantees no `slice_mut` of an overlapping Buf is alive.
    /// Otherwise sound: [ptr, ptr + bytes) lies inside blocks the heap handed out
    /// (checked by `new`), so it is in bounds of linear memory, past Rust's stack and
    /// statics, and initialized (wasm memory starts zeroed; the element types take any
    /// bit pattern). It is aligned and non-null, and the heap keeps no references
    /// into blocks.
    unsafe fn slice<'a, T>(self) -> &'a [T] {
        core::slice::from_raw_parts(self.ptr as *const T, self.bytes / core::mem::size_of::<T>())
    }

    /// SAFETY: as for `slice`, and no other slice of an overlapping Buf may be alive.
    unsafe fn slice_mut<'a, T>(self) -> &'a mut [T] {
        core::slice::from_raw_parts_mut(self.ptr as *mut T, self.bytes / core::mem::size_of::<T>())
    }
}

/// A block of the heap for one call's scratch, given back when dropped.
struct Scratch(Buf);

impl Scratch {
    fn new(bytes: usize) -> Result<Scratch, i32> {
        let ptr = heap::alloc(bytes);
        if ptr == 0 {
            return Err(STATUS_OUT_OF_MEMORY);
        }
        Ok(Scratch(Buf { ptr, bytes }))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        heap::free(self.0.ptr, self.0.bytes)
    }
}

fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(STATUS_OK)
}

fn zero_point(z: u32) -> Result<u8, i32> {
    u8::try_from(z).map_err(|_| STATUS_BAD_ZERO_POINT)
}

/// Fails with STATUS_OVERLAP when the output overlaps any of the inputs.
fn disjoint(output: Buf, inputs: &[Option<Buf>]) -> Result<(), i32> {
    match inputs.iter().flatten().any(|b| output.overlaps(*b)) {
        true => Err(STATUS_OVERLAP),
        false => Ok(()),
    }
}

/// The [m, k] weight matrix's packed size, when m and k are usable.
fn packed_len(m: u32, k: u32) -> Result<usize, i32> {
    let (m, k) = (m as usize, k as usize);
    if m == 0 || k == 0 || k > qgemm::MAX_K {
        return Err(STATUS_BAD_SHAPE);
    }
    qgemm::packed_len(m, k).ok_or(STATUS_BAD_SHAPE)
}

/// Optional per-row floats: ptr 0 means none.
fn optional_f32(ptr: usize, len: usize) -> Result<Option<Buf>, i32> {
    if ptr == 0 {
        Ok(None)
    } else {
        Buf::new::<f32>(ptr, len).map(Some)
    }
}

/// q = ONNX QuantizeLinear(x) to uint8. x: [len] f32, q: [len] u8.
#[no_mangle]
pub extern "C" fn quantize_u8(x_ptr: usize, q_ptr: usize, len: u32, scale: f32, zero: u32) -> i32 {
    status((|| {
        let z = zero_point(zero)?;
        if len == 0 {
            return Ok(());
        }
        let x = Buf::new::<f32>(x_ptr, len as usize)?;
        let q = Buf::new::<u8>(q_ptr, len as usize)?;
        disjoint(q, &[Some(x)])?;
        // SAFETY: q is disjoint from x (checked above); see `Buf::slice`.
        let (x, q) = unsafe { (x.slice(), q.slice_mut()) };
        quantize::quantize_u8(x, q, &quantize::Quantizer::new(scale, z));
        Ok(())
    })())
}

/// Bytes of the packed form of an [m, k] int8 weight matrix; 0 when m or k is 0,
/// k > 65536, or the size overflows.
#[no_mangle]
pub extern "C" fn qgemm_packed_bytes(m: u32, k: u32) -> usize {
    packed_len(m, k).unwrap_or(0)
}

/// Packs rows [row0, row0 + rows) of an [m, k] int8 matrix (src: [rows, k] i8) into
/// `packed` (`qgemm_packed_bytes(m, k)` bytes). Packing the last row also writes the
/// padding rows, so packing every row once, in any order of calls, fills the block.
#[no_mangle]
pub extern "C" fn qgemm_pack(
    packed_ptr: usize,
    src_ptr: usize,
    m: u32,
    k: u32,
    row0: u32,
    rows: u32,
) -> i32 {
    status((|| {
        let len = packed_len(m, k)?;
        let (m, k, row0, rows) = (m as usize, k as usize, row0 as usize, rows as usize);
        if row0.checked_add(rows).map_or(true, |end| end > m) {
            return Err(STATUS_BAD_SHAPE);
        }
        let packed = Buf::new::<u8>(packed_ptr, len)?;
        let src = Buf::new::<i8>(src_ptr, rows * k)?;
        disjoint(packed, &[Some(src)])?;
        // SAFETY: packed is disjoint from src (checked above); see `Buf::slice`.
        let (packed, src) = unsafe { (packed.slice_mut(), src.slice()) };
        qgemm::pack(packed, src, m, k, row0);
        Ok(())
    })())
}

/// The buffers of a quantized Gemm call, checked.
struct LinearBufs {
    packed: Buf,
    scales: Option<Buf>,
    bias: Option<Buf>,
    scratch: Scratch,
}

/// scales, bias: None when the call takes none (the raw sums). The scratch holds xc:
/// [n, KP] i16, then `extra` bytes per sample.
fn linear_bufs(
    n: usize,
    m: u32,
    k: u32,
    packed: usize,
    scales: Option<usize>,
    bias: Option<usize>,
    extra: usize,
) -> Result<LinearBufs, i32> {
    let len = packed_len(m, k)?;
    let kp = qgemm::padded_k(k as usize);
    let scratch = n.checked_mul(kp * 2 + extra).ok_or(STATUS_BAD_SHAPE)?;
    Ok(LinearBufs {
        packed: Buf::new::<u8>(packed, len)?,
        scales: scales.map(|p| Buf::new::<f32>(p, m as usize)).transpose()?,
        bias: match bias {
            Some(p) => optional_f32(p, m as usize)?,
            None => None,
        },
        scratch: Scratch::new(scratch)?,
    })
}

/// y = Gemm(QuantizeLinear(x; x_scale, x_zero), W^T) scaled to float, + bias, ReLU
/// if `relu` != 0 (see `qlinear.rs`). x: [n, k] f32, y: [n, m] f32, packed: the
/// `qgemm_pack`ed [m, k] weights, scales: [m] f32, bias: [m] f32 or 0 for none.
#[allow(clippy::too_many_arguments)] // the C ABI has no structs worth passing from JS
#[no_mangle]
pub extern "C" fn qlinear_f32(
    x_ptr: usize,
    y_ptr: usize,
    n: u32,
    packed_ptr: usize,
    m: u32,
    k: u32,
    scales_ptr: usize,
    bias_ptr: usize,
    x_scale: f32,
    x_zero: u32,
    relu: u32,
) -> i32 {
    status((|| {
        let z = zero_point(x_zero)?;
        packed_len(m, k)?;
        if n == 0 {
            return Ok(());
        }
        let n = n as usize;
        let x = Buf::new::<f32>(x_ptr, n.checked_mul(k as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let y = Buf::new::<f32>(y_ptr, n.checked_mul(m as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let b = linear_bufs(n, m, k, packed_ptr, Some(scales_ptr), Some(bias_ptr), 0)?;
        disjoint(y, &[Some(x), Some(b.packed), b.scales, b.bias])?;
        // SAFETY: y is disjoint from every input (checked above), the scratch block is
        // fresh from the heap; see `Buf::slice`.
        let (x, y, packed, scales, bias, xc) = unsafe {
            (
                x.slice(),
                y.slice_mut(),
                b.packed.slice(),
                b.scales.map_or(&[][..], |s| s.slice()),
                b.bias.map(|b| b.slice()),
                b.scratch.0.slice_mut(),
            )
        };
        let layer = qlinear::Layer { packed, m: m as usize, k: k as usize };
        let epilogue = qlinear::Epilogue { x_scale, scales, bias, relu: relu != 0 };
        qlinear::linear_f32(&layer, x, xc, &quantize::Quantizer::new(x_scale, z), &epilogue, y);
        Ok(())
    })())
}

/// acc = the exact int32 sums of the quantized Gemm: sum over k of (xq - x_zero) * w.
/// xq: [n, k] u8, acc: [n, m] i32, packed: the `qgemm_pack`ed [m, k] weights.
#[no_mangle]
pub extern "C" fn qlinear_acc_u8(
    xq_ptr: usize,
    acc_ptr: usize,
    n: u32,
    packed_ptr: usize,
    m: u32,
    k: u32,
    x_zero: u32,
) -> i32 {
    status((|| {
        let z = zero_point(x_zero)?;
        packed_len(m, k)?;
        if n == 0 {
            return Ok(());
        }
        let n = n as usize;
        let xq = Buf::new::<u8>(xq_ptr, n.checked_mul(k as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let acc = Buf::new::<i32>(acc_ptr, n.checked_mul(m as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let b = linear_bufs(n, m, k, packed_ptr, None, None, 0)?;
        disjoint(acc, &[Some(xq), Some(b.packed)])?;
        // SAFETY: acc is disjoint from every input (checked above), the scratch block is
        // fresh from the heap; see `Buf::slice`.
        let (xq, acc, packed, xc) =
            unsafe { (xq.slice(), acc.slice_mut(), b.packed.slice(), b.scratch.0.slice_mut()) };
        let layer = qlinear::Layer { packed, m: m as usize, k: k as usize };
        qlinear::linear_acc(&layer, xq, z, xc, acc);
        Ok(())
    })())
}

/// y = the Gemm of x with int8 weights, x rounded per sample to int16 on its own
/// scale, + bias, ReLU if `relu` != 0 (see `qlinear.rs`). x: [n, k] f32, y: [n, m]
/// f32, packed: the `qgemm_pack`ed [m, k] weights, scales: [m] f32, bias: [m] f32 or
/// 0 for none.
#[allow(clippy::too_many_arguments)] // the C ABI has no structs worth passing from JS
#[no_mangle]
pub extern "C" fn qlinear16_f32(
    x_ptr: usize,
    y_ptr: usize,
    n: u32,
    packed_ptr: usize,
    m: u32,
    k: u32,
    scales_ptr: usize,
    bias_ptr: usize,
    relu: u32,
) -> i32 {
    status((|| {
        packed_len(m, k)?;
        if n == 0 {
            return Ok(());
        }
        let n = n as usize;
        let x = Buf::new::<f32>(x_ptr, n.checked_mul(k as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let y = Buf::new::<f32>(y_ptr, n.checked_mul(m as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let b = linear_bufs(n, m, k, packed_ptr, Some(scales_ptr), Some(bias_ptr), 4)?;
        disjoint(y, &[Some(x), Some(b.packed), b.scales, b.bias])?;
        let xc_bytes = n * qgemm::padded_k(k as usize) * 2;
        let at = b.scratch.0.ptr;
        // SAFETY: y is disjoint from every input (checked above); the scratch block is
        // fresh from the heap and cut into two disjoint parts (xc_bytes is a multiple
        // of 32, so the f32 part is aligned); see `Buf::slice`.
        let (x, y, packed, scales, bias, xc, x_scales) = unsafe {
            (
                x.slice(),
                y.slice_mut(),
                b.packed.slice(),
                b.scales.map_or(&[][..], |s| s.slice()),
                b.bias.map(|b| b.slice()),
                Buf { ptr: at, bytes: xc_bytes }.slice_mut(),
                Buf { ptr: at + xc_bytes, bytes: n * 4 }.slice_mut(),
            )
        };
        let layer = qlinear::Layer { packed, m: m as usize, k: k as usize };
        let epilogue = qlinear::Epilogue { x_scale: 1.0, scales, bias, relu: relu != 0 };
        qlinear::linear16_f32(&layer, x, xc, x_scales, &epilogue, y);
        Ok(())
    })())
}

/// acc = the exact sums of the int8-weight Gemm for any int16 input: sum over k of
/// xq * w, as f64 (exact integers). xq: [n, k] i16, acc: [n, m] f64, packed: the
/// `qgemm_pack`ed [m, k] weights.
#[no_mangle]
pub extern "C" fn qlinear16_acc(
    xq_ptr: usize,
    acc_ptr: usize,
    n: u32,
    packed_ptr: usize,
    m: u32,
    k: u32,
) -> i32 {
    status((|| {
        packed_len(m, k)?;
        if n == 0 {
            return Ok(());
        }
        let n = n as usize;
        let xq = Buf::new::<i16>(xq_ptr, n.checked_mul(k as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let acc = Buf::new::<f64>(acc_ptr, n.checked_mul(m as usize).ok_or(STATUS_BAD_SHAPE)?)?;
        let b = linear_bufs(n, m, k, packed_ptr, None, None, 0)?;
        disjoint(acc, &[Some(xq), Some(b.packed)])?;
        // SAFETY: acc is disjoint from every input (checked above), the scratch block is
        // fresh from the heap; see `Buf::slice`.
        let (xq, acc, packed, xc) =
            unsafe { (xq.slice(), acc.slice_mut(), b.packed.slice(), b.scratch.0.slice_mut()) };
        let layer = qlinear::Layer { packed, m: m as usize, k: k as usize };
        qlinear::linear16_acc(&layer, xq, xc, acc);
        Ok(())
    })())
}

/// Reads the 16 u32 of a conv geometry (see `qconv::Geometry`).
fn geometry(ptr: usize) -> Result<qconv::Geometry, i32> {
    let buf = Buf::new::<u32>(ptr, 16)?;
    // SAFETY: see `Buf::slice`; nothing writes while the values are copied out.
    let v: [u32; 16] = unsafe { buf.slice::<u32>() }.try_into().map_err(|_| STATUS_BAD_POINTER)?;
    qconv::Geometry::new(v).ok_or(STATUS_BAD_SHAPE)
}

/// The scratch of a conv call as its three parts.
/// SAFETY: the scratch block is this call's alone.
unsafe fn conv_scratch<'a>(scratch: &Scratch, g: &qconv::Geometry) -> qconv::Scratch<'a> {
    let image = g.padded_image_len().unwrap_or(0);
    let cols = g.cols_len().unwrap_or(0);
    let at = scratch.0.ptr;
    qconv::Scratch {
        image: Buf { ptr: at, bytes: image * 2 }.slice_mut(),
        cols: Buf { ptr: at + image * 2, bytes: cols * 2 }.slice_mut(),
    }
}

fn conv_scratch_bytes(g: &qconv::Geometry) -> Result<usize, i32> {
    let values = g.scratch_len().ok_or(STATUS_BAD_SHAPE)?;
    values.checked_mul(2).ok_or(STATUS_BAD_SHAPE)
}

/// Where a 7-bit conv's own scratch starts past `conv_scratch_bytes` (16-aligned), and
/// its bytes: the sums of a, [col_rows] i32, the columns of a, [col_rows, KP] i8, then
/// the bordered image of a, [C, H + pads, W + pads] i8.
fn conv7_scratch_at(g: &qconv::Geometry) -> Result<(usize, usize), i32> {
    let at = conv_scratch_bytes(g)?.checked_add(15).ok_or(STATUS_BAD_SHAPE)? / 16 * 16;
    let rows = g.col_rows().ok_or(STATUS_BAD_SHAPE)?;
    let bytes = g.cols_len().ok_or(STATUS_BAD_SHAPE)?.checked_add(rows * 4);
    let bytes = bytes.and_then(|b| b.checked_add(g.padded_image_len()?));
    Ok((at, bytes.ok_or(STATUS_BAD_SHAPE)?))
}

/// The 7-bit part of a conv call's scratch (see `conv7_scratch_at`).
/// SAFETY: the scratch block is this call's alone and `conv7_scratch_at`'s size past it.
unsafe fn conv7_scratch<'a>(scratch: &Scratch, g: &qconv::Geometry) -> qconv7::Scratch7<'a> {
    let (at, _) = conv7_scratch_at(g).unwrap_or((0, 0));
    let rows = g.col_rows().unwrap_or(0);
    let cols = g.cols_len().unwrap_or(0);
    let image = g.padded_image_len().unwrap_or(0);
    let at = scratch.0.ptr + at;
    qconv7::Scratch7 {
        sums: Buf { ptr: at, bytes: rows * 4 }.slice_mut(),
        cols: Buf { ptr: at + rows * 4, bytes: cols }.slice_mut(),
        image: Buf { ptr: at + rows * 4 + cols, bytes: image }.slice_mut(),
    }
}

/// The packed length of a conv's weights: qgemm's form, or `qconv7::pack7`'s (`seven`).
fn conv_packed_len(g: &qconv::Geometry, seven: bool) -> Result<usize, i32> {
    let len = match seven {
        false => g.packed_len(),
        true => qconv7::packed7_len(g.m / g.group, g.k()).and_then(|l| l.checked_mul(g.group)),
    };
    len.ok_or(STATUS_BAD_SHAPE)
}

/// The conv scratch block: qconv's part, and the 7-bit part when `seven`.
fn conv_scratch_block(g: &qconv::Geometry, seven: bool) -> Result<Scratch, i32> {
    let bytes = match seven {
        false => conv_scratch_bytes(g)?,
        true => {
            let (at, bytes) = conv7_scratch_at(g)?;
            at.checked_add(bytes).ok_or(STATUS_BAD_SHAPE)?
        }
    };
    Scratch::new(bytes)
}

/// The checks and slices both float-output conv exports share: `ptrs` are x, y,
/// geometry, packed, scales and bias (0: none) as the exports take them; `conv` runs
/// the layer on them.
fn conv_f32_call(
    ptrs: [usize; 6],
    x_scale: f32,
    relu: u32,
    seven: bool,
    conv: impl FnOnce(
        &qconv::Geometry,
        &[u8],
        &[f32],
        &qlinear::Epilogue<'_>,
        qconv::Scratch<'_>,
        Option<qconv7::Scratch7<'_>>,
        &mut [f32],
    ),
) -> i32 {
    let [x_ptr, y_ptr, geometry_ptr, packed_ptr, scales_ptr, bias_ptr] = ptrs;
    status((|| {
        let g = geometry(geometry_ptr)?;
        if g.n == 0 {
            return Ok(());
        }
        let x = Buf::new::<f32>(x_ptr, g.x_len().ok_or(STATUS_BAD_SHAPE)?)?;
        let y = Buf::new::<f32>(y_ptr, g.y_len().ok_or(STATUS_BAD_SHAPE)?)?;
        let packed = Buf::new::<u8>(packed_ptr, conv_packed_len(&g, seven)?)?;
        let scales = Buf::new::<f32>(scales_ptr, g.m)?;
        let bias = optional_f32(bias_ptr, g.m)?;
        disjoint(y, &[Some(x), Some(packed), Some(scales), bias])?;
        let scratch = conv_scratch_block(&g, seven)?;
        // SAFETY: y is disjoint from every input (checked above), the scratch block is
        // fresh from the heap; see `Buf::slice`.
        let (x, y, packed, scales, bias, s, s7) = unsafe {
            (
                x.slice(),
                y.slice_mut(),
                packed.slice(),
                scales.slice(),
                bias.map(|b| b.slice()),
                conv_scratch(&scratch, &g),
                seven.then(|| conv7_scratch(&scratch, &g)),
            )
        };
        let epilogue = qlinear::Epilogue { x_scale, scales, bias, relu: relu != 0 };
        conv(&g, packed, x, &epilogue, s, s7, y);
        Ok(())
    })())
}

/// y = the quantized Conv of x (see `qconv.rs`), scaled to float, + bias, ReLU if
/// `relu` != 0. x: [N, C, H, W] f32, y: [N, M, OH, OW] f32; geometry: 16 u32
/// (`qconv::Geometry`); packed: the groups' [M/G, C/G * kH * kW] weights, each
/// `qgemm_pack`ed, one after the other; scales: [M] f32, bias: [M] f32 or 0.
#[allow(clippy::too_many_arguments)] // the C ABI has no structs worth passing from JS
#[no_mangle]
pub extern "C" fn qconv_f32(
    x_ptr: usize,
    y_ptr: usize,
    geometry_ptr: usize,
    packed_ptr: usize,
    scales_ptr: usize,
    bias_ptr: usize,
    x_scale: f32,
    x_zero: u32,
    relu: u32,
) -> i32 {
    let quantizer = match zero_point(x_zero) {
        Ok(z) => quantize::Quantizer::new(x_scale, z),
        Err(code) => return code,
    };
    conv_f32_call(
        [x_ptr, y_ptr, geometry_ptr, packed_ptr, scales_ptr, bias_ptr],
        x_scale,
        relu,
        false,
        |g, packed, x, epilogue, s, _, y| qconv::conv_f32(g, packed, x, &quantizer, epilogue, s, y),
    )
}

/// y = the Conv of x with int8 weights, each image and group of x rounded on its own
/// symmetric grid (see `qconv.rs`), + bias, ReLU if `relu` != 0. Arguments as for
/// `qconv_f32`, without the input's scale and zero point.
#[no_mangle]
pub extern "C" fn qconv16_f32(
    x_ptr: usize,
    y_ptr: usize,
    geometry_ptr: usize,
    packed_ptr: usize,
    scales_ptr: usize,
    bias_ptr: usize,
    relu: u32,
) -> i32 {
    conv_f32_call(
        [x_ptr, y_ptr, geometry_ptr, packed_ptr, scales_ptr, bias_ptr],
        1.0,
        relu,
        false,
        |g, packed, x, epilogue, s, _, y| qconv::conv16_f32(g, packed, x, epilogue, s, y),
    )
}

/// acc = the exact int32 sums of the quantized Conv for xq: [N, C, H, W] u8 into
/// acc: [N, M, OH, OW] i32 (arguments as for `qconv_f32`).
#[no_mangle]
pub extern "C" fn qconv_acc_u8(
    xq_ptr: usize,
    acc_ptr: usize,
    geometry_ptr: usize,
    packed_ptr: usize,
    x_zero: u32,
) -> i32 {
    conv_acc_call([xq_ptr, acc_ptr, geometry_ptr, packed_ptr], x_zero, false)
}

/// `qconv_acc_u8` and `qconv7_acc_u8` (`seven`: the packed weights are `pack7`'s).
fn conv_acc_call(ptrs: [usize; 4], x_zero: u32, seven: bool) -> i32 {
    let [xq_ptr, acc_ptr, geometry_ptr, packed_ptr] = ptrs;
    status((|| {
        let z = zero_point(x_zero)?;
        let g = geometry(geometry_ptr)?;
        if g.n == 0 {
            return Ok(());
        }
        let xq = Buf::new::<u8>(xq_ptr, g.x_len().ok_or(STATUS_BAD_SHAPE)?)?;
        let acc = Buf::new::<i32>(acc_ptr, g.y_len().ok_or(STATUS_BAD_SHAPE)?)?;
        let packed = Buf::new::<u8>(packed_ptr, conv_packed_len(&g, seven)?)?;
        disjoint(acc, &[Some(xq), Some(packed)])?;
        let scratch = conv_scratch_block(&g, seven)?;
        // SAFETY: acc is disjoint from every input (checked above), the scratch block is
        // fresh from the heap; see `Buf::slice`.
        let (xq, acc, packed, s) =
            unsafe { (xq.slice(), acc.slice_mut(), packed.slice(), conv_scratch(&scratch, &g)) };
        match seven {
            // SAFETY: the scratch block was sized for the 7-bit part (`conv_scratch_block`).
            true => {
                qconv7::conv7_acc(&g, packed, xq, z, s, unsafe { conv7_scratch(&scratch, &g) }, acc)
            }
            false => qconv::conv_acc(&g, packed, xq, z, s, acc),
        }
        Ok(())
    })())
}

/// Bytes of the 7-bit packed form of an [m, k] matrix (`qconv7::packed7_len`), or 0
/// when the shape is unusable.
#[no_mangle]
pub extern "C" fn qgemm_packed7_bytes(m: u32, k: u32) -> usize {
    packed_len(m, k).ok().and_then(|_| qconv7::packed7_len(m as usize, k as usize)).unwrap_or(0)
}

/// `qgemm_pack` into the 7-bit form (`qgemm_packed7_bytes(m, k)` bytes); refuses
/// (STATUS_NOT_7BIT) rows with a value outside -63..63.
#[no_mangle]
pub extern "C" fn qgemm_pack7(
    packed_ptr: usize,
    src_ptr: usize,
    m: u32,
    k: u32,
    row0: u32,
    rows: u32,
) -> i32 {
    status((|| {
        packed_len(m, k)?;
        let len = qconv7::packed7_len(m as usize, k as usize).ok_or(STATUS_BAD_SHAPE)?;
        let (m, k, row0, rows) = (m as usize, k as usize, row0 as usize, rows as usize);
        if row0.checked_add(rows).map_or(true, |end| end > m) {
            return Err(STATUS_BAD_SHAPE);
        }
        let packed = Buf::new::<u8>(packed_ptr, len)?;
        let src = Buf::new::<i8>(src_ptr, rows * k)?;
        disjoint(packed, &[Some(src)])?;
        // SAFETY: packed is disjoint from src (checked above); see `Buf::slice`.
        let (packed, src) = unsafe { (packed.slice_mut(), src.slice()) };
        if !qconv7::fits7(src) {
            return Err(STATUS_NOT_7BIT);
        }
        qconv7::pack7(packed, src, m, k, row0);
        Ok(())
    })())
}

/// `qconv_f32` on `qgemm_pack7`ed weights (each group's block one after the other):
/// the same outputs, bit for bit.
#[allow(clippy::too_many_arguments)] // the C ABI has no structs worth passing from JS
#[no_mangle]
pub extern "C" fn qconv7_f32(
    x_ptr: usize,
    y_ptr: usize,
    geometry_ptr: usize,
    packed_ptr: usize,
    scales_ptr: usize,
    bias_ptr: usize,
    x_scale: f32,
    x_zero: u32,
    relu: u32,
) -> i32 {
    let (quantizer, z) = match zero_point(x_zero) {
        Ok(z) => (quantize::Quantizer::new(x_scale, z), z),
        Err(code) => return code,
    };
    conv_f32_call(
        [x_ptr, y_ptr, geometry_ptr, packed_ptr, scales_ptr, bias_ptr],
        x_scale,
        relu,
        true,
        |g, packed, x, epilogue, s, s7, y| {
            if let Some(s7) = s7 {
                qconv7::conv7_f32(g, packed, x, &quantizer, z, epilogue, s, s7, y)
            }
        },
    )
}

/// `qconv_acc_u8` on `qgemm_pack7`ed weights: the same sums.
#[no_mangle]
pub extern "C" fn qconv7_acc_u8(
    xq_ptr: usize,
    acc_ptr: usize,
    geometry_ptr: usize,
    packed_ptr: usize,
    x_zero: u32,
) -> i32 {
    conv_acc_call([xq_ptr, acc_ptr, geometry_ptr, packed_ptr], x_zero, true)
}

/// Makes the 7-bit convs call function-table slot `index` for their dot block: the slot
/// where JavaScript put wasm/relaxed's `dot7` (type (i32, i32, i32, i32, i32) -> ()),
/// sharing this memory. 0 goes back to the core-SIMD block.
#[no_mangle]
pub extern "C" fn use_dot7(index: usize) {
    qconv7::use_dot7(index)
}

/// y = ONNX MaxPool(x) (see `maxpool.rs`). x: [N, C, H, W] f32, y: [N, C, OH, OW] f32;
/// geometry: 16 u32 (`maxpool::Geometry`).
#[no_mangle]
pub extern "C" fn maxpool_f32(x_ptr: usize, y_ptr: usize, geometry_ptr: usize) -> i32 {
    status((|| {
        let buf = Buf::new::<u32>(geometry_ptr, 16)?;
        // SAFETY: see `Buf::slice`; nothing writes while the values are copied out.
        let v: [u32; 16] =
            unsafe { buf.slice::<u32>() }.try_into().map_err(|_| STATUS_BAD_POINTER)?;
        let g = maxpool::Geometry::new(v).ok_or(STATUS_BAD_SHAPE)?;
        let len = g.x_len().ok_or(STATUS_BAD_SHAPE)?;
        if len == 0 || g.y_len() == Some(0) {
            return Ok(());
        }
        let x = Buf::new::<f32>(x_ptr, len)?;
        let y = Buf::new::<f32>(y_ptr, g.y_len().ok_or(STATUS_BAD_SHAPE)?)?;
        disjoint(y, &[Some(x)])?;
        let scratch = Scratch::new(g.w.checked_mul(8).ok_or(STATUS_BAD_SHAPE)?)?;
        // SAFETY: y is disjoint from x (checked above), the scratch block is fresh from
        // the heap; see `Buf::slice`.
        let (x, y, rows) = unsafe { (x.slice(), y.slice_mut(), scratch.0.slice_mut()) };
        maxpool::maxpool_f32(&g, x, y, rows);
        Ok(())
    })())
}
