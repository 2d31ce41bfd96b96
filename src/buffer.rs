//! Buffers whose address suits `O_DIRECT`: a file the caller opened with `O_DIRECT` is
//! opened so on BACKING too, and ext4 then refuses (`EINVAL`) a buffer that is not aligned to
//! its logical block size, whatever the caller's own buffer was.

/// Address alignment given to data buffers: the logical block size of any disk, at most a page.
pub const DIRECT_IO_ALIGN: usize = 4096;

/// A byte buffer starting at a [`DIRECT_IO_ALIGN`]-aligned address.
#[derive(Debug)]
pub struct AlignedBuf {
    /// Over-allocated by one alignment unit; the buffer is `storage[start..start + len]`.
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + DIRECT_IO_ALIGN];
        let start = storage.as_ptr().align_offset(DIRECT_IO_ALIGN);
        // align_offset may decline (usize::MAX); then the buffer is just unaligned.
        let start = if start < DIRECT_IO_ALIGN { start } else { 0 };
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    /// Makes the buffer `len` bytes long, reusing its memory when it is big enough. The bytes
    /// are whatever the buffer held before: callers hand on only what they wrote.
    pub fn resize(&mut self, len: usize) {
        if self.storage.len() < self.start + len {
            *self = AlignedBuf::zeroed(len);
        } else {
            self.len = len;
        }
    }

    /// An aligned copy of `data`.
    pub fn copy_of(data: &[u8]) -> AlignedBuf {
        let mut buf = AlignedBuf::zeroed(data.len());
        buf.as_mut_slice().copy_from_slice(data);
        buf
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    /// Shortens the buffer to `len` bytes (no-op if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Whether `data` starts at a [`DIRECT_IO_ALIGN`]-aligned address.
pub fn is_aligned(data: &[u8]) -> bool {
    (data.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_sized() {
        for len in [0, 1, 4095, 4096, 131_072 + 7] {
            let buf = AlignedBuf::zeroed(len);
            assert!(is_aligned(buf.as_slice()), "len {len}");
            assert_eq!(buf.as_slice().len(), len);
        }
        let mut copy = AlignedBuf::copy_of(b"hello");
        assert!(is_aligned(copy.as_slice()));
        copy.truncate(4);
        assert_eq!(copy.as_slice(), b"hell");
        copy.truncate(10);
        assert_eq!(copy.as_slice(), b"hell");
        let mut reused = AlignedBuf::zeroed(8192);
        let before = reused.as_slice().as_ptr();
        reused.resize(100);
        assert_eq!(reused.as_slice().len(), 100);
        assert_eq!(
            reused.as_slice().as_ptr(),
            before,
            "shrinking keeps the memory"
        );
        reused.resize(1 << 20);
        assert_eq!(reused.as_slice().len(), 1 << 20);
        assert!(is_aligned(reused.as_slice()));
    }
}
