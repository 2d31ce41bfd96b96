//! The byte form of the ABI: [`Wire`] for integers and arrays, and `wire_struct!`, which
//! declares a kernel struct with its size asserted and its [`Wire`] impl derived from its
//! fields. Exported by `#[macro_use]` to the sibling files that declare structs.

use std::mem::size_of;

/// A fixed-size value with a byte form on the FUSE wire.
pub trait Wire: Sized {
    /// Bytes the value occupies.
    const SIZE: usize;
    /// The value stored at `off` in `bytes`; `None` if the bytes end before it does.
    fn read_at(bytes: &[u8], off: usize) -> Option<Self>;
    /// Stores the value at `off` in `bytes` (padding zeroed); `None` if it does not fit.
    fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SIZE: usize = size_of::<$t>();
            fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
                let raw = bytes.get(off..off.checked_add(Self::SIZE)?)?;
                Some(<$t>::from_ne_bytes(raw.try_into().ok()?))
            }
            fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
                let raw = bytes.get_mut(off..off.checked_add(Self::SIZE)?)?;
                raw.copy_from_slice(&self.to_ne_bytes());
                Some(())
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, i32, i64);

impl<T: Wire + Copy + Default, const N: usize> Wire for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
        let mut out = [T::default(); N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = T::read_at(bytes, off.checked_add(i.checked_mul(T::SIZE)?)?)?;
        }
        Some(out)
    }
    fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
        for (i, item) in self.iter().enumerate() {
            item.write_at(bytes, off.checked_add(i.checked_mul(T::SIZE)?)?)?;
        }
        Some(())
    }
}

/// Declares a kernel struct, asserts its size, and implements [`Wire`] from its field list.
macro_rules! wire_struct {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident [$size:literal] {
            $(pub $field:ident: $ty:ty $(=> $doc:literal)?,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[doc = $doc])? pub $field: $ty,)*
        }
        // The size, and no padding the compiler added: the field list is the whole layout.
        const _: () = assert!(size_of::<$name>() == $size && 0 $(+ size_of::<$ty>())* == $size);
        impl Wire for $name {
            const SIZE: usize = $size;
            fn read_at(bytes: &[u8], off: usize) -> Option<Self> {
                let raw = bytes.get(off..off.checked_add($size)?)?;
                Some($name { $($field: <$ty as Wire>::read_at(raw, offset_of!($name, $field))?,)* })
            }
            fn write_at(&self, bytes: &mut [u8], off: usize) -> Option<()> {
                let raw = bytes.get_mut(off..off.checked_add($size)?)?;
                raw.fill(0);
                $(self.$field.write_at(raw, offset_of!($name, $field))?;)*
                Some(())
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::uring::abi::{FUSE_READ_LOCKOWNER, fuse_read_in};

    #[test]
    fn wire_round_trip_keeps_field_order() {
        let rd = fuse_read_in {
            fh: 0x0102_0304_0506_0708,
            offset: 9,
            size: 10,
            read_flags: FUSE_READ_LOCKOWNER,
            lock_owner: 11,
            flags: 12,
            padding: 0,
        };
        let mut buf = [0xffu8; 41];
        rd.write_at(&mut buf, 1).expect("fits");
        assert_eq!(buf[0], 0xff, "bytes before the struct are untouched");
        assert_eq!(&buf[1..9], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&buf[17..21], &10u32.to_ne_bytes());
        assert_eq!(&buf[25..33], &11u64.to_ne_bytes());
        assert_eq!(fuse_read_in::read_at(&buf, 1), Some(rd));
        assert_eq!(fuse_read_in::read_at(&buf, 2), None, "one byte short");
        assert_eq!(rd.write_at(&mut buf, 2), None);
    }
}
