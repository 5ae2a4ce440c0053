//! The strict reader and writer every wire format of this crate uses.
//!
//! Rules, enforced here once rather than in every format:
//! - every read is length-checked and returns [`DecodeError::Truncated`]
//!   instead of panicking;
//! - a variable-length field is only allocated after its length has been
//!   checked against both its documented limit and the bytes actually left;
//! - [`Reader::finish`] rejects trailing bytes, so each value has exactly one
//!   encoding;
//! - integers are big-endian.

use crate::error::DecodeError;
use alloc::vec::Vec;
use core::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A cursor over untrusted bytes. Every method is total.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Reads the version byte and checks it equals `expected`.
    pub(crate) fn version(&mut self, expected: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            v if v == expected => Ok(()),
            v => Err(DecodeError::UnsupportedVersion(v)),
        }
    }

    /// Reads `n` bytes as a borrowed slice.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a `u16`-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn vec16(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = usize::from(self.u16()?);
        self.checked(n, max)
    }

    /// Reads a `u32`-length-prefixed byte string of at most `max` bytes.
    // Part of the codec (tested below) though no v1 format uses it yet.
    #[allow(dead_code)]
    pub(crate) fn vec32(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.u32()?).map_err(|_| DecodeError::LengthLimit)?;
        self.checked(n, max)
    }

    /// Reads a `u32` element count of at most `max`, also checking that at
    /// least `count * min_elem_len` bytes remain, so a caller may
    /// `Vec::with_capacity(count)` safely.
    pub(crate) fn count32(
        &mut self,
        max: usize,
        min_elem_len: usize,
    ) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.u32()?).map_err(|_| DecodeError::LengthLimit)?;
        if n > max {
            return Err(DecodeError::LengthLimit);
        }
        if n.saturating_mul(min_elem_len) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn checked(&mut self, n: usize, max: usize) -> Result<&'a [u8], DecodeError> {
        if n > max {
            return Err(DecodeError::LengthLimit);
        }
        self.bytes(n)
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Everything not yet read, consuming it.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Ends decoding: fails if any byte is left.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// An append-only encoder; the counterpart of [`Reader`].
///
/// A writer made by [`secret`](Self::secret) holds secret bytes: when it
/// outgrows its buffer it moves to a bigger one and zeroizes the old one
/// itself (a plain `Vec` would free it with the secret still in it), and it
/// zeroizes its buffer on drop. `Debug` never prints the bytes.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
    secret: bool,
}

impl Writer {
    /// A writer with room for `n` bytes.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            secret: false,
        }
    }

    /// A writer for secret bytes with room for `n` bytes (see the type docs):
    /// no copy of what it holds is left behind in freed memory. Take the
    /// result with [`into_zeroizing`](Self::into_zeroizing).
    pub(crate) fn secret(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            secret: true,
        }
    }

    /// Makes room for `extra` more bytes; a secret writer moves to a larger
    /// buffer by hand so the old one can be zeroized before it is freed.
    fn reserve(&mut self, extra: usize) {
        let spare = self.buf.capacity().saturating_sub(self.buf.len());
        if !self.secret || spare >= extra {
            return;
        }
        let want = self
            .buf
            .len()
            .saturating_add(extra)
            .max(self.buf.capacity().saturating_mul(2));
        let mut bigger = Vec::with_capacity(want);
        bigger.extend_from_slice(&self.buf);
        self.buf.zeroize();
        self.buf = bigger;
    }

    /// Appends raw bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.reserve(b.len());
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends one byte.
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }

    /// Appends a big-endian `u16`.
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a `u16`-length-prefixed byte string.
    ///
    /// Callers only pass values whose length they bounded (a documented
    /// limit below 65,536); a longer value is truncated to keep the writer
    /// total, which the matching reader would then reject.
    pub(crate) fn vec16(&mut self, b: &[u8]) -> &mut Self {
        let n = u16::try_from(b.len()).unwrap_or(u16::MAX);
        self.u16(n);
        self.bytes(b.get(..usize::from(n)).unwrap_or(b))
    }

    /// Appends a `u32`-length-prefixed byte string (values are bounded by
    /// documented limits far below 4 GiB).
    // Part of the codec (tested below) though no v1 format uses it yet.
    #[allow(dead_code)]
    pub(crate) fn vec32(&mut self, b: &[u8]) -> &mut Self {
        let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.u32(n);
        self.bytes(b.get(..n as usize).unwrap_or(b))
    }

    /// Bytes written so far.
    // Part of the codec (tested below) though no v1 format uses it yet.
    #[allow(dead_code)]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes written so far.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }

    /// The encoded bytes, zeroized when dropped (for a [`secret`](Self::secret)
    /// writer).
    pub(crate) fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(core::mem::take(&mut self.buf))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.secret {
            self.buf.zeroize();
        }
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("len", &self.buf.len())
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_are_length_checked() {
        let mut r = Reader::new(&[1, 0, 3, 9]);
        assert_eq!(r.version(1), Ok(()));
        assert_eq!(r.vec16(10), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0, 3, 9, 9, 9]);
        assert_eq!(r.vec16(2), Err(DecodeError::LengthLimit));
        let mut r = Reader::new(&[2]);
        assert_eq!(r.version(1), Err(DecodeError::UnsupportedVersion(2)));
        let r = Reader::new(&[2]);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.count32(usize::MAX, 1), Err(DecodeError::Truncated));
    }

    #[test]
    fn secret_writer_grows_and_keeps_its_bytes() {
        let mut w = Writer::secret(1);
        for i in 0..100u8 {
            w.u8(i).u16(u16::from(i));
        }
        let out = w.into_zeroizing();
        assert_eq!(out.len(), 300);
        assert_eq!(out[3..6], [1, 0, 1]);
        assert_eq!(
            format!("{:?}", Writer::secret(4)),
            "Writer { len: 0, secret: true }"
        );
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
                      v in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut w = Writer::default();
            w.u8(a).u16(b).u32(c).u64(d).vec16(&v).vec32(&v);
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.u8().unwrap(), a);
            prop_assert_eq!(r.u16().unwrap(), b);
            prop_assert_eq!(r.u32().unwrap(), c);
            prop_assert_eq!(r.u64().unwrap(), d);
            prop_assert_eq!(r.vec16(300).unwrap(), &v[..]);
            prop_assert_eq!(r.vec32(300).unwrap(), &v[..]);
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.u8();
            let _ = r.vec16(1000);
            let _ = r.count32(1000, 8);
            let _ = r.vec32(usize::MAX);
            let _ = r.finish();
        }
    }
}
