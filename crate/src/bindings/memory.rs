//! Linear memory, checked: records copied in and out, and the float regions one call touches.

use core::mem::{align_of, size_of};

use crate::abi::{Plain, Ptr};
use crate::status::Error;

/// Bytes of linear memory.
pub fn memory_bytes() -> u64 {
    core::arch::wasm32::memory_size::<0>() as u64 * 65536
}

/// A `T` at `ptr`: non-zero, aligned for `T` and inside memory.
fn check_at<T>(ptr: Ptr, memory: u64) -> Result<(), Error> {
    if ptr == 0 || !(ptr as usize).is_multiple_of(align_of::<T>()) || ptr as u64 + size_of::<T>() as u64 > memory {
        return Err(Error::InvalidArgs);
    }
    Ok(())
}

/// A copy of the `T` at `ptr` (non-zero, aligned, inside memory). The call reads this copy
/// from then on, so nothing it writes can change what it was told.
pub fn read<T: Plain>(ptr: Ptr) -> Result<T, Error> {
    check_at::<T>(ptr, memory_bytes())?;
    // SAFETY: in bounds and aligned (checked); every bit pattern is a valid `T` (`Plain`); no
    // Rust reference to this memory is live.
    Ok(unsafe { (ptr as usize as *const T).read() })
}

/// Whether a call may write a region.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A byte range `[start, end)` of linear memory.
#[derive(Clone, Copy)]
struct Region {
    start: u64,
    end: u64,
    access: Access,
}

/// At most: the args block, 13 arrays (x … db, pack), the rule records with up to 3 buffers
/// each, the adapt record with its 6 arrays, and the results.
const MAX_REGIONS: usize = 1 + 13 + 1 + 3 * 3 + 1 + 6 + 1;

/// The regions one call touches; a written region may not overlap any other.
pub struct Regions {
    list: [Region; MAX_REGIONS],
    n: usize,
    memory: u64,
}

impl Regions {
    pub fn new() -> Self {
        let none = Region { start: 0, end: 0, access: Access::Read };
        Regions { list: [none; MAX_REGIONS], n: 0, memory: memory_bytes() }
    }

    /// Notes a region. A full list is an error, never a region left unchecked (it cannot
    /// happen: `MAX_REGIONS` counts every region a call can have).
    fn push(&mut self, start: Ptr, bytes: u64, access: Access) -> Result<(), Error> {
        if bytes == 0 {
            return Ok(());
        }
        let slot = self.list.get_mut(self.n).ok_or(Error::InvalidArgs)?;
        *slot = Region { start: start as u64, end: start as u64 + bytes, access };
        self.n += 1;
        Ok(())
    }

    /// `len` floats at `ptr`: with `len = 0` anything goes (nothing is touched); otherwise
    /// `ptr` is non-zero, 4-byte aligned and the floats lie inside memory.
    pub fn floats(&mut self, ptr: Ptr, len: usize, access: Access) -> Result<Span, Error> {
        if len == 0 {
            return Ok(Span { ptr: 0, len: 0 });
        }
        let bytes = len as u64 * 4;
        if ptr == 0 || !ptr.is_multiple_of(4) || ptr as u64 + bytes > self.memory {
            return Err(Error::InvalidArgs);
        }
        self.push(ptr, bytes, access)?;
        Ok(Span { ptr, len })
    }

    /// Optional floats: `ptr = 0` means absent.
    pub fn optional_floats(&mut self, ptr: Ptr, len: usize, access: Access) -> Result<Option<Span>, Error> {
        if ptr == 0 {
            Ok(None)
        } else {
            self.floats(ptr, len, access).map(Some)
        }
    }

    /// The `T` at `ptr`, checked as `read` does and noted as a region.
    pub fn record<T: Plain>(&mut self, ptr: Ptr, access: Access) -> Result<(), Error> {
        check_at::<T>(ptr, self.memory)?;
        self.push(ptr, size_of::<T>() as u64, access)
    }

    /// The `T` at `ptr`, noted as a region the call only reads, and copied.
    pub fn read<T: Plain>(&mut self, ptr: Ptr) -> Result<T, Error> {
        self.record::<T>(ptr, Access::Read)?;
        read(ptr)
    }

    /// No written region overlaps another region.
    pub fn check_disjoint(&self) -> Result<(), Error> {
        let l = &self.list[..self.n];
        for (i, a) in l.iter().enumerate() {
            for c in &l[i + 1..] {
                let written = a.access == Access::Write || c.access == Access::Write;
                if written && a.start < c.end && c.start < a.end {
                    return Err(Error::InvalidArgs);
                }
            }
        }
        Ok(())
    }
}

/// Floats `Regions::floats` checked: empty, or inside memory, aligned and non-null.
#[derive(Clone, Copy)]
pub struct Span {
    ptr: Ptr,
    len: usize,
}

impl Span {
    /// # Safety
    /// `check_disjoint` passed for the regions this span was noted in, and no mutable
    /// reference to these floats is live for `'a`.
    pub unsafe fn slice<'a>(self) -> &'a [f32] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: per the function contract the floats are in bounds, aligned and non-null.
        unsafe { core::slice::from_raw_parts(self.ptr as usize as *const f32, self.len) }
    }

    /// # Safety
    /// As for `slice`, the span was noted with `Access::Write` (so no other region overlaps
    /// it), and no other reference to these floats is live for `'a`.
    pub unsafe fn slice_mut<'a>(self) -> &'a mut [f32] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: per the function contract the floats are in bounds, aligned, non-null and
        // overlap no other region of this call.
        unsafe { core::slice::from_raw_parts_mut(self.ptr as usize as *mut f32, self.len) }
    }
}

/// Writes `value` at `ptr`.
///
/// # Safety
/// `ptr` was noted by `Regions::record::<T>(ptr, Access::Write)` and `check_disjoint` passed;
/// no reference to that memory is live.
pub unsafe fn write<T: Plain>(ptr: Ptr, value: T) {
    // SAFETY: per the function contract the record is in bounds, aligned and unaliased.
    unsafe { (ptr as usize as *mut T).write(value) }
}
