//! A small first-fit allocator for the shipped modules (cargo feature `small-alloc`, which
//! `scripts/build-wasm.sh` turns on): std's dlmalloc is about a sixth of the module otherwise.
//!
//! The core allocates few, long-lived blocks (parameters, a batch's work, args blocks; see
//! `bindings::allocate`), so a free list suffices: blocks sorted by address, coalesced on
//! release, first fit, memory grown by whole pages when nothing fits. Every block has a 16-byte
//! header holding its size in bytes (header included) and starts 16-byte aligned; larger
//! alignments are refused (null). The list has no lock: one thread allocates (in the threads
//! module too, where workers only run kernels on the caller's blocks: crate/src/parallel).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32::{memory_grow, memory_size};
use core::cell::Cell;
use core::ptr::null_mut;

const HEADER: usize = 16;
const PAGE: usize = 65536;

/// A free block: its size (bytes, header included) and the next free block (higher address).
#[repr(C)]
struct Free {
    size: usize,
    next: *mut Free,
}

pub struct Heap {
    /// First free block, lowest address first; null when empty.
    head: Cell<*mut Free>,
    /// False until the memory after `__heap_base` has been put on the list.
    ready: Cell<bool>,
}

// SAFETY: one thread allocates and frees (in the threads module the calling thread alone:
// workers never allocate), so the cells are never used from two threads.
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        Heap { head: Cell::new(null_mut()), ready: Cell::new(false) }
    }

    /// Adds `[start, start + size)` to the list, merging with free neighbours.
    ///
    /// # Safety
    /// The range is 16-byte aligned, at least `HEADER` bytes, inside memory and not in use.
    unsafe fn release(&self, start: usize, size: usize) {
        let mut prev: *mut Free = null_mut();
        let mut next = self.head.get();
        while !next.is_null() && (next as usize) < start {
            prev = next;
            // SAFETY: list entries are valid free blocks.
            next = unsafe { (*next).next };
        }
        let block = start as *mut Free;
        // SAFETY: the caller hands over the range; it can hold a `Free`.
        unsafe { block.write(Free { size, next }) };
        // SAFETY (both merges): `block`, `next` and `prev` are valid free blocks.
        if !next.is_null() && start + size == next as usize {
            unsafe {
                (*block).size += (*next).size;
                (*block).next = (*next).next;
            }
        }
        if prev.is_null() {
            self.head.set(block);
        } else if prev as usize + unsafe { (*prev).size } == start {
            unsafe {
                (*prev).size += (*block).size;
                (*prev).next = (*block).next;
            }
        } else {
            unsafe { (*prev).next = block };
        }
    }

    /// Puts the memory between `__heap_base` and the end of memory on the list, once.
    fn start(&self) {
        if self.ready.replace(true) {
            return;
        }
        extern "C" {
            static __heap_base: u8;
        }
        // The linker defines `__heap_base`; only its address is used.
        let base = (core::ptr::addr_of!(__heap_base) as usize + 15) & !15;
        let end = memory_size::<0>() * PAGE;
        if end >= base + 2 * HEADER {
            // SAFETY: memory above `__heap_base` belongs to the allocator alone.
            unsafe { self.release(base, end - base) };
        }
    }

    /// Grows memory by enough pages for `need` bytes and frees the new range.
    fn grow(&self, need: usize) -> bool {
        let pages = need.div_ceil(PAGE);
        let old = memory_grow::<0>(pages);
        if old == usize::MAX {
            return false;
        }
        // SAFETY: the new pages are ours, page-aligned and at least `need` bytes.
        unsafe { self.release(old * PAGE, pages * PAGE) };
        true
    }
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

// SAFETY: `alloc` returns a 16-byte aligned block of at least `layout.size()` bytes that no
// other live allocation overlaps (blocks leave the free list when handed out, and come back
// only through `dealloc`), or null; `dealloc` takes back exactly the block `alloc` gave.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > HEADER {
            return null_mut();
        }
        let Some(need) = layout.size().checked_add(2 * HEADER - 1).map(|n| n & !(HEADER - 1)) else {
            return null_mut();
        };
        self.start();
        for attempt in 0..2 {
            let mut prev: *mut Free = null_mut();
            let mut cur = self.head.get();
            while !cur.is_null() {
                // SAFETY: list entries are valid free blocks.
                let (size, next) = unsafe { ((*cur).size, (*cur).next) };
                if size >= need {
                    // Split off the tail when it can hold a block of its own.
                    let after = if size - need >= 2 * HEADER {
                        let rest = (cur as usize + need) as *mut Free;
                        // SAFETY: the tail lies inside this free block.
                        unsafe { rest.write(Free { size: size - need, next }) };
                        rest
                    } else {
                        next
                    };
                    let taken = if after == next { size } else { need };
                    if prev.is_null() {
                        self.head.set(after);
                    } else {
                        // SAFETY: `prev` is a valid free block.
                        unsafe { (*prev).next = after };
                    }
                    // SAFETY: the header is the start of the block we now own.
                    unsafe { (cur as *mut usize).write(taken) };
                    return (cur as usize + HEADER) as *mut u8;
                }
                prev = cur;
                cur = next;
            }
            if attempt == 0 && !self.grow(need) {
                break;
            }
        }
        null_mut()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        let start = ptr as usize - HEADER;
        // SAFETY: `ptr` came from `alloc`, which wrote the block's size in its header.
        let size = unsafe { (start as *const usize).read() };
        // SAFETY: the block is ours again, aligned and at least 2 headers long.
        unsafe { self.release(start, size) };
    }
}
