//! `serde` support (feature `serde`) for the public value types that have a
//! canonical byte encoding: they travel as the lowercase hex of that
//! encoding, in every format (like the ids' text form), and come back only
//! through the same strict parser as the bytes (`from_bytes` and friends).
//!
//! Hex is canonical: lowercase only, an even number of digits, nothing else;
//! the length is checked against the type's maximum before anything is
//! decoded or allocated.

use crate::error::{DecodeError, Error};
use alloc::vec::Vec;
use core::fmt;
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0');
            f.write_fmt(format_args!("{}{}", char::from(hi), char::from(lo)))?;
        }
        Ok(())
    }
}

/// Serializes `bytes` as a lowercase hex string.
pub(crate) fn serialize_hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Hex(bytes))
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes canonical lowercase hex of at most `max_len` bytes.
///
/// Errors ([`Error::Malformed`]): [`DecodeError::Empty`] for an empty
/// string, [`DecodeError::LengthLimit`] above `max_len` bytes (checked
/// before decoding), [`DecodeError::InvalidValue`] for an odd length or a
/// character that is not a lowercase hex digit.
pub(crate) fn decode_hex(text: &str, max_len: usize) -> Result<Vec<u8>, Error> {
    let raw = text.as_bytes();
    if raw.is_empty() {
        return Err(DecodeError::Empty.into());
    }
    if raw.len() > max_len.saturating_mul(2) {
        return Err(DecodeError::LengthLimit.into());
    }
    if !raw.len().is_multiple_of(2) {
        return Err(DecodeError::InvalidValue.into());
    }
    let mut out = Vec::with_capacity(raw.len() / 2);
    for pair in raw.chunks_exact(2) {
        match (
            pair.first().copied().and_then(digit),
            pair.get(1).copied().and_then(digit),
        ) {
            (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
            _ => return Err(DecodeError::InvalidValue.into()),
        }
    }
    Ok(out)
}

/// Exactly `N` bytes: [`DecodeError::Truncated`] for fewer,
/// [`DecodeError::TrailingBytes`] for more.
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        if bytes.len() < N {
            DecodeError::Truncated.into()
        } else {
            DecodeError::TrailingBytes.into()
        }
    })
}

struct HexVisitor {
    max_len: usize,
}

impl Visitor<'_> for HexVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lowercase hex of at most {} bytes", self.max_len)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        decode_hex(v, self.max_len).map_err(E::custom)
    }
}

/// Deserializes a hex string of at most `max_len` bytes (see [`decode_hex`]).
pub(crate) fn deserialize_hex<'de, D: Deserializer<'de>>(
    d: D,
    max_len: usize,
) -> Result<Vec<u8>, D::Error> {
    d.deserialize_str(HexVisitor { max_len })
}

/// `Serialize` and `Deserialize` for `$ty` through its canonical encoding
/// (`$enc`, anything `AsRef<[u8]>`, of `$v: &$ty`) and its strict parser
/// (`$dec`, a `Result<$ty, Error>` of `$b: &[u8]`), at most `$max` bytes.
macro_rules! serde_via_hex {
    ($ty:ty, $max:expr, |$v:ident| $enc:expr, |$b:ident| $dec:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let $v = self;
                let encoded = $enc;
                crate::serde_support::serialize_hex(AsRef::<[u8]>::as_ref(&encoded), s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes = crate::serde_support::deserialize_hex(d, $max)?;
                let $b: &[u8] = &bytes;
                let parsed: Result<$ty, crate::error::Error> = $dec;
                parsed.map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use serde_via_hex;
