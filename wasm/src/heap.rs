//! A size-class allocator over linear memory, for the buffers JavaScript asks for
//! through `alloc`/`free`.
//!
//! Why this shape: the callers hold a few large, long-lived tensors (an input and an
//! output region, reused across calls and grown rarely), so simplicity wins over
//! packing. Each request is rounded up to a power of two of at least 16 bytes, which
//! keeps every block 16-byte aligned for v128 loads. Freed blocks go on one singly
//! linked free list per size class; the link lives in the block's first word. A
//! request whose class list is empty is bump-allocated at the end of the heap, which
//! starts at the end of the memory the module was instantiated with (past Rust's
//! stack and statics) and grows with `memory.grow`. Blocks are never split, merged
//! or returned (wasm memory cannot shrink): the price is up to 2x per block and no
//! reuse across classes. Data that lives as long as the instance (a layer's packed
//! int8 weights: 36 MiB for AlexNet's fc6, which a size class would round to 64 MiB)
//! takes `alloc_static` instead: bump-allocated at its size rounded up to 16 bytes,
//! never freed. The module is single-threaded (no shared memory).

use core::arch::wasm32;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const PAGE: usize = 65536;
/// Smallest block: 16 bytes (one v128, and room for the free-list link).
const MIN_SHIFT: u32 = 4;
/// Largest block: 2 GiB, so a block end always fits in a 32-bit usize.
const MAX_SHIFT: u32 = 31;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

// Atomics instead of `static mut`: they are safe to touch, and without the wasm
// atomics feature they compile to plain loads and stores.
/// First heap byte; 0 until the first `alloc`.
static START: AtomicUsize = AtomicUsize::new(0);
/// One past the last bump-allocated byte.
static END: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)] // only the array initializer below uses it
const NO_BLOCK: AtomicUsize = AtomicUsize::new(0);
/// Head of each size class's free list (0 = empty).
static FREE: [AtomicUsize; CLASSES] = [NO_BLOCK; CLASSES];

/// (class index, block size) for a request of `bytes`.
fn class_of(bytes: usize) -> Option<(usize, usize)> {
    let size = bytes.max(1 << MIN_SHIFT).checked_next_power_of_two()?;
    let shift = size.trailing_zeros();
    (shift <= MAX_SHIFT).then(|| ((shift - MIN_SHIFT) as usize, size))
}

/// Whether [ptr, ptr + bytes) lies inside memory this heap has handed out.
pub fn owns(ptr: usize, bytes: usize) -> bool {
    let start = START.load(Relaxed);
    start != 0
        && ptr >= start
        && ptr.checked_add(bytes).map_or(false, |end| end <= END.load(Relaxed))
}

pub fn alloc(bytes: usize) -> usize {
    let (class, size) = match class_of(bytes) {
        Some(class) => class,
        None => return 0,
    };
    let head = FREE[class].load(Relaxed);
    if head != 0 {
        FREE[class].store(read_link(head), Relaxed);
        return head;
    }
    bump(size)
}

/// A block of `bytes` rounded up to 16 (at least 16) at the end of the heap, for data
/// kept until the instance goes away; it must never reach `free`. 0 when out of memory.
pub fn alloc_static(bytes: usize) -> usize {
    match bytes.max(1).checked_add(15) {
        Some(size) if size <= 1 << MAX_SHIFT => bump(size & !15),
        _ => 0,
    }
}

pub fn free(ptr: usize, bytes: usize) {
    let size = match class_of(bytes) {
        Some((_, size)) => size,
        None => return,
    };
    // A pointer this heap did not hand out is ignored rather than threaded into a
    // free list, where it would later hand out memory that is not ours.
    if ptr % (1 << MIN_SHIFT) != 0 || !owns(ptr, size) {
        return;
    }
    let class = (size.trailing_zeros() - MIN_SHIFT) as usize;
    write_link(ptr, FREE[class].load(Relaxed));
    FREE[class].store(ptr, Relaxed);
}

/// Takes `size` bytes from the end of the heap, growing memory when needed.
fn bump(size: usize) -> usize {
    let mut end = END.load(Relaxed);
    if end == 0 {
        // The first block starts at the current end of memory: everything below is
        // Rust's stack and statics. The end of memory is 64 KiB-aligned.
        end = match wasm32::memory_size(0).checked_mul(PAGE) {
            Some(end) => end,
            None => return 0,
        };
        START.store(end, Relaxed);
        END.store(end, Relaxed);
    }
    let new_end = match end.checked_add(size) {
        Some(new_end) => new_end,
        None => return 0,
    };
    // memory_size * PAGE overflows only at the full 4 GiB, when nothing can grow.
    let have = wasm32::memory_size(0).checked_mul(PAGE).unwrap_or(usize::MAX);
    if new_end > have {
        let pages = (new_end - have + PAGE - 1) / PAGE;
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return 0;
        }
    }
    END.store(new_end, Relaxed);
    end
}

fn read_link(block: usize) -> usize {
    // SAFETY: `block` is the head of a free list, so `free` checked it is a 16-aligned
    // block inside bump-allocated memory (in bounds, at least 16 bytes) and wrote its
    // first word. No Rust reference points into heap blocks between calls.
    let next = unsafe { (block as *const usize).read() };
    // JavaScript may have written over a freed block: drop a link that is not ours
    // rather than hand that memory out.
    if next % (1 << MIN_SHIFT) == 0 && owns(next, 1 << MIN_SHIFT) {
        next
    } else {
        0
    }
}

fn write_link(block: usize, next: usize) {
    // SAFETY: `free` checked `block` is a 16-aligned block inside bump-allocated
    // memory, so its first word is in bounds and aligned; the caller gave the block
    // back, so no live Rust reference covers it.
    unsafe { (block as *mut usize).write(next) }
}
