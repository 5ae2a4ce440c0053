//! Small identifiers carried on the wire: room ids, member ids, sender key ids.
//!
//! # Text form
//!
//! Every id has one lossless text form, written by `Display` and read back by
//! `FromStr` / `TryFrom<&str>` (`id.to_string().parse()` gives `id` again):
//!
//! - [`RoomId`] and [`MemberId`] print their bytes as they are when the bytes
//!   are *plain text*: valid UTF-8, not starting with `0x`, no leading or
//!   trailing space, and no control, invisible-format (bidi overrides,
//!   zero-width characters) or whitespace character other than the space.
//!   Any other id prints as `0x` followed by its bytes in lowercase hex.
//!   So `b"alice"` prints `alice` and `[0xff, 0x00]` prints `0xff00`.
//! - [`SenderKeyId`] prints as 32 lowercase hex digits, without a prefix.
//!
//! Parsing accepts exactly the strings `Display` produces, so each id has one
//! text form: a plain-text id written in hex (`0x616c696365` for `alice`) or
//! uppercase hex is refused as [`DecodeError::InvalidValue`]. To make an id
//! from arbitrary bytes (including text that starts with `0x`), use
//! [`RoomId::new`] / [`MemberId::new`] or `TryFrom<&[u8]>` instead.
//!
//! With the `serde` feature, ids serialize as this text form (a string in
//! every format) and deserialize only through the same checks.

use crate::error::{DecodeError, Error};
use crate::limits::{MAX_MEMBER_ID_LEN, MAX_ROOM_ID_LEN};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;
use rand_core::CryptoRng;

/// Random bytes in a [`RoomId::random`] id (128 bits: collisions between
/// rooms are negligible, and the id is not guessable). Hex-encoded, the id is
/// 32 ASCII characters, well under [`MAX_ROOM_ID_LEN`].
const RANDOM_ROOM_ID_BYTES: usize = 16;

/// An app-chosen room id: 1 to [`MAX_ROOM_ID_LEN`] bytes (a UUID, a hash).
///
/// Bound into every key share and message header, so nothing made for one
/// room is accepted in another. For the text form see the [module
/// docs](self).
///
/// ```
/// use secret_chat::RoomId;
/// let room = RoomId::new(b"family-chat-7f3a")?;
/// assert_eq!(room.as_bytes(), b"family-chat-7f3a");
/// assert_eq!(room.to_string(), "family-chat-7f3a");
/// assert_eq!("family-chat-7f3a".parse::<RoomId>()?, room);
/// assert!(RoomId::new(b"").is_err());
/// # Ok::<(), secret_chat::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Vec<u8>);

impl RoomId {
    /// Checks the length and wraps the bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] with [`DecodeError::Empty`] for no bytes, and
    /// with [`DecodeError::LengthLimit`] for more than [`MAX_ROOM_ID_LEN`].
    ///
    /// ```
    /// use secret_chat::{DecodeError, Error, RoomId};
    /// let id = RoomId::new(b"family-chat")?; // an id both sides already agree on
    /// assert_eq!(id.as_bytes(), b"family-chat");
    /// assert_eq!(RoomId::new(&[b'x'; 65]), Err(Error::Malformed(DecodeError::LengthLimit)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        check_len(bytes, MAX_ROOM_ID_LEN)?;
        Ok(Self(bytes.to_vec()))
    }

    /// A fresh random room id from the OS RNG: 16 random bytes written as 32
    /// lowercase hex characters (so it prints, copies and types as is).
    ///
    /// Use it when two devices need a new room (for example after
    /// [`Error::IdentityChanged`]): one side draws the id and sends it to the
    /// other, which passes it to `RoomId::from_str` / `RoomId::new`.
    ///
    /// ```
    /// use secret_chat::RoomId;
    /// let id = RoomId::random();
    /// assert_eq!(id.as_bytes().len(), 32);
    /// assert_eq!(id.to_string().parse::<RoomId>()?, id);
    /// assert_ne!(RoomId::random(), id);
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn random() -> Self {
        Self::random_with_rng(&mut crate::rng::os_rng())
    }

    /// [`RoomId::random`] with a caller-supplied RNG.
    ///
    /// ```
    /// use secret_chat::{RoomId, rand_core::UnwrapErr};
    /// let id = RoomId::random_with_rng(&mut UnwrapErr(getrandom::SysRng));
    /// assert!(id.to_string().bytes().all(|b| b.is_ascii_hexdigit()));
    /// ```
    pub fn random_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut raw = [0u8; RANDOM_ROOM_ID_BYTES];
        rng.fill_bytes(&mut raw);
        let mut text = Vec::with_capacity(2 * RANDOM_ROOM_ID_BYTES);
        for b in raw {
            text.extend_from_slice(&hex_pair(b));
        }
        Self(text)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", Escaped(&self.0))
    }
}

/// An app-level member id (user id, phone number, ...): 1 to
/// [`MAX_MEMBER_ID_LEN`] bytes. The room pins one identity per member id.
/// For the text form see the [module docs](self).
///
/// ```
/// use secret_chat::MemberId;
/// let bob = MemberId::new(b"bob@example.org")?;
/// assert_eq!(bob.as_bytes(), b"bob@example.org");
/// assert_eq!(MemberId::try_from("bob@example.org")?, bob);
/// assert_eq!(MemberId::new(&[0xff, 0x00])?.to_string(), "0xff00");
/// # Ok::<(), secret_chat::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(Vec<u8>);

impl MemberId {
    /// Checks the length and wraps the bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] with [`DecodeError::Empty`] for no bytes, and
    /// with [`DecodeError::LengthLimit`] for more than [`MAX_MEMBER_ID_LEN`].
    ///
    /// ```
    /// use secret_chat::{DecodeError, Error, MemberId};
    /// assert_eq!(MemberId::new(b""), Err(Error::Malformed(DecodeError::Empty)));
    /// ```
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        check_len(bytes, MAX_MEMBER_ID_LEN)?;
        Ok(Self(bytes.to_vec()))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", Escaped(&self.0))
    }
}

/// Random 16-byte id of one sender key, named in every message header.
///
/// Its text form is 32 lowercase hex digits.
///
/// ```
/// use secret_chat::SenderKeyId;
/// let id = SenderKeyId::from_bytes([0xab; 16]);
/// assert_eq!(id.to_string(), "ab".repeat(16));
/// assert_eq!(id.to_string().parse::<SenderKeyId>()?, id);
/// assert_eq!(SenderKeyId::try_from(&[0xab; 16][..])?, id);
/// # Ok::<(), secret_chat::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderKeyId(pub(crate) [u8; 16]);

impl SenderKeyId {
    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Wraps 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SenderKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenderKeyId(")?;
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

fn check_len(bytes: &[u8], max: usize) -> Result<(), Error> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty.into());
    }
    if bytes.len() > max {
        return Err(DecodeError::LengthLimit.into());
    }
    Ok(())
}

/// Implements the text form, `TryFrom` and `AsRef` for a variable-length id.
macro_rules! text_id {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            /// The lossless text form (see the [module docs](self)).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_text(f, &self.0)
            }
        }

        impl FromStr for $ty {
            type Err = Error;

            /// Parses the text form `Display` writes (see the [module
            /// docs](self)).
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(&parse_text(s)?)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = Error;

            /// Same as [`FromStr`]: parses the text form.
            fn try_from(s: &str) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Error;

            /// Same as [`FromStr`]: parses the text form.
            fn try_from(s: String) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl TryFrom<&[u8]> for $ty {
            type Error = Error;

            /// Same as `new`: checks the length and wraps the bytes.
            fn try_from(bytes: &[u8]) -> Result<Self, Error> {
                Self::new(bytes)
            }
        }

        impl AsRef<[u8]> for $ty {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

text_id!(RoomId);
text_id!(MemberId);

impl fmt::Display for SenderKeyId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for SenderKeyId {
    type Err = Error;

    /// Parses exactly 32 lowercase hex digits.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Empty`] for `""`, [`DecodeError::Truncated`] /
    /// [`DecodeError::TrailingBytes`] for fewer / more than 32 digits, and
    /// [`DecodeError::InvalidValue`] for any other character (uppercase
    /// included), all inside [`Error::Malformed`].
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(DecodeError::Empty.into());
        }
        let bytes = decode_hex(s.as_bytes())?;
        Self::try_from(bytes.as_slice())
    }
}

impl TryFrom<&str> for SenderKeyId {
    type Error = Error;

    /// Same as [`FromStr`]: 32 lowercase hex digits.
    fn try_from(s: &str) -> Result<Self, Error> {
        s.parse()
    }
}

impl TryFrom<String> for SenderKeyId {
    type Error = Error;

    /// Same as [`FromStr`]: 32 lowercase hex digits.
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl TryFrom<&[u8]> for SenderKeyId {
    type Error = Error;

    /// Exactly 16 bytes; fewer is [`DecodeError::Truncated`], more is
    /// [`DecodeError::TrailingBytes`] (inside [`Error::Malformed`]).
    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        match <[u8; 16]>::try_from(bytes) {
            Ok(a) => Ok(Self(a)),
            Err(_) if bytes.is_empty() => Err(DecodeError::Empty.into()),
            Err(_) if bytes.len() < 16 => Err(DecodeError::Truncated.into()),
            Err(_) => Err(DecodeError::TrailingBytes.into()),
        }
    }
}

impl AsRef<[u8]> for SenderKeyId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{MemberId, RoomId, SenderKeyId};
    use alloc::string::String;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    macro_rules! serde_text {
        ($ty:ident) => {
            impl Serialize for $ty {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }

            impl<'de> Deserialize<'de> for $ty {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let text = String::deserialize(d)?;
                    text.parse().map_err(D::Error::custom)
                }
            }
        };
    }

    serde_text!(RoomId);
    serde_text!(MemberId);
    serde_text!(SenderKeyId);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_pair(b: u8) -> [u8; 2] {
    let digit = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
    [digit(b >> 4), digit(b & 0x0f)]
}

/// Whether `s` prints as itself in the text form (see the module docs).
fn is_plain_text(s: &str) -> bool {
    !s.starts_with("0x")
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && s.chars()
            .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace() || is_invisible_format(c)))
}

/// Invisible formatting characters that would let two different ids look the
/// same on screen (Unicode `Cf` characters in common use, and tags).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

fn write_text(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match core::str::from_utf8(bytes) {
        Ok(s) if is_plain_text(s) => f.write_str(s),
        _ => {
            f.write_str("0x")?;
            for &b in bytes {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// Reads the text form back into bytes (the length is checked by the caller).
fn parse_text(s: &str) -> Result<Vec<u8>, Error> {
    match s.strip_prefix("0x") {
        None if s.is_empty() => Err(DecodeError::Empty.into()),
        None if is_plain_text(s) => Ok(s.as_bytes().to_vec()),
        None => Err(DecodeError::InvalidValue.into()),
        Some("") => Err(DecodeError::Empty.into()),
        Some(hex) => {
            let bytes = decode_hex(hex.as_bytes())?;
            // One text form per id: text that prints as itself is never
            // accepted in hex.
            match core::str::from_utf8(&bytes) {
                Ok(t) if is_plain_text(t) => Err(DecodeError::InvalidValue.into()),
                _ => Ok(bytes),
            }
        }
    }
}

/// Lowercase hex to bytes; total (odd length or any other digit is refused).
fn decode_hex(hex: &[u8]) -> Result<Vec<u8>, Error> {
    if !hex.len().is_multiple_of(2) {
        return Err(DecodeError::InvalidValue.into());
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Ok(d - b'0'),
        b'a'..=b'f' => Ok(d - b'a' + 10),
        _ => Err(Error::from(DecodeError::InvalidValue)),
    };
    hex.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Ok((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => Err(DecodeError::InvalidValue.into()),
        })
        .collect()
}

/// Prints printable ASCII as is and everything else as `\xNN`.
pub(crate) struct Escaped<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn malformed(e: DecodeError) -> Error {
        Error::Malformed(e)
    }

    #[test]
    fn empty_ids_are_empty_not_over_a_limit() {
        assert_eq!(MemberId::new(b""), Err(malformed(DecodeError::Empty)));
        assert_eq!(RoomId::new(b""), Err(malformed(DecodeError::Empty)));
        assert_eq!("".parse::<MemberId>(), Err(malformed(DecodeError::Empty)));
        assert_eq!(RoomId::try_from(""), Err(malformed(DecodeError::Empty)));
        assert_eq!("0x".parse::<RoomId>(), Err(malformed(DecodeError::Empty)));
        assert_eq!(
            SenderKeyId::try_from(&[][..]),
            Err(malformed(DecodeError::Empty))
        );
        assert_eq!(
            "".parse::<SenderKeyId>(),
            Err(malformed(DecodeError::Empty))
        );
        assert!(!malformed(DecodeError::Empty).to_string().contains("limit"));
    }

    #[test]
    fn over_long_ids_hit_the_limit() {
        let long = [b'a'; MAX_MEMBER_ID_LEN + 1];
        assert_eq!(
            MemberId::new(&long),
            Err(malformed(DecodeError::LengthLimit))
        );
        assert!(MemberId::new(&long[1..]).is_ok());
        let long = [b'a'; MAX_ROOM_ID_LEN + 1];
        assert_eq!(RoomId::new(&long), Err(malformed(DecodeError::LengthLimit)));
        let text = "a".repeat(MAX_ROOM_ID_LEN + 1);
        assert_eq!(
            text.parse::<RoomId>(),
            Err(malformed(DecodeError::LengthLimit))
        );
        assert!(RoomId::new(&long[1..]).is_ok());
    }

    #[test]
    fn text_form_examples() {
        let show = |b: &[u8]| MemberId::new(b).unwrap().to_string();
        assert_eq!(show(b"alice"), "alice");
        assert_eq!(show("zoë é 漢字".as_bytes()), "zoë é 漢字");
        assert_eq!(show(b"a b"), "a b");
        assert_eq!(show(&[0xff, 0x00]), "0xff00");
        assert_eq!(show(b"0xab"), "0x30786162");
        assert_eq!(show(b" alice"), "0x20616c696365");
        assert_eq!(show(b"alice "), "0x616c69636520");
        assert_eq!(show(b"a\nb"), "0x610a62");
        assert_eq!(show(b"a\tb"), "0x610962");
        assert_eq!(show("a\u{202e}b".as_bytes()), "0x61e280ae62");
        assert_eq!(show("a\u{200b}b".as_bytes()), "0x61e2808b62");
        assert_eq!(show("a\u{a0}b".as_bytes()), "0x61c2a062");
    }

    #[test]
    fn only_the_canonical_text_form_parses() {
        // Text that prints as itself is refused in hex, and uppercase hex.
        assert_eq!(
            "0x616c696365".parse::<MemberId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            "0xFF00".parse::<MemberId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            "0xff0".parse::<MemberId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            "0xzz".parse::<MemberId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            " a".parse::<MemberId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            "a\n".parse::<RoomId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            "0xff00".parse::<MemberId>().unwrap().as_bytes(),
            &[0xff, 0x00]
        );
        // Raw bytes are always accepted by `new` / `TryFrom<&[u8]>`.
        let raw = MemberId::try_from(&b"0xzz"[..]).unwrap();
        assert_eq!(raw.to_string().parse::<MemberId>().unwrap(), raw);
    }

    #[test]
    fn sender_key_id_text_and_bytes() {
        let id = SenderKeyId::from_bytes(core::array::from_fn(|i| i as u8));
        let text = id.to_string();
        assert_eq!(text, "000102030405060708090a0b0c0d0e0f");
        assert_eq!(text.parse::<SenderKeyId>().unwrap(), id);
        assert_eq!(SenderKeyId::try_from(id.as_ref()).unwrap(), id);
        assert_eq!(
            text[..30].parse::<SenderKeyId>(),
            Err(malformed(DecodeError::Truncated))
        );
        assert_eq!(
            alloc::format!("{text}00").parse::<SenderKeyId>(),
            Err(malformed(DecodeError::TrailingBytes))
        );
        assert_eq!(
            text.to_uppercase().parse::<SenderKeyId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            alloc::format!("0x{}", &text[2..]).parse::<SenderKeyId>(),
            Err(malformed(DecodeError::InvalidValue))
        );
        assert_eq!(
            SenderKeyId::try_from(&[0u8; 15][..]),
            Err(malformed(DecodeError::Truncated))
        );
        assert_eq!(
            SenderKeyId::try_from(&[0u8; 17][..]),
            Err(malformed(DecodeError::TrailingBytes))
        );
    }

    #[test]
    fn random_room_ids() {
        let mut rng = crate::testing::VectorRng::new(b"room id");
        let a = RoomId::random_with_rng(&mut rng);
        let b = RoomId::random_with_rng(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 2 * RANDOM_ROOM_ID_BYTES);
        assert!(a.as_bytes().iter().all(|c| HEX.contains(c)));
        assert_eq!(a.to_string().as_bytes(), a.as_bytes());
        assert_ne!(RoomId::random(), RoomId::random());
    }

    proptest! {
        #[test]
        fn text_form_round_trips(bytes in proptest::collection::vec(any::<u8>(), 1..=MAX_ROOM_ID_LEN)) {
            let id = RoomId::new(&bytes).unwrap();
            let text = id.to_string();
            prop_assert_eq!(text.parse::<RoomId>().unwrap(), id.clone());
            prop_assert_eq!(RoomId::try_from(text.as_str()).unwrap(), id);
        }

        #[test]
        fn text_round_trips_for_strings(s in "\\PC{1,40}") {
            let id = MemberId::new(s.as_bytes()).unwrap();
            prop_assert_eq!(id.to_string().parse::<MemberId>().unwrap(), id);
        }

        /// Parsing is total, and whatever parses prints back as the same text.
        #[test]
        fn parsed_text_is_canonical(s in "(0x)?[0-9a-fA-Fx \\PC]{0,70}") {
            if let Ok(id) = s.parse::<MemberId>() {
                prop_assert_eq!(id.to_string(), s);
            }
        }

        #[test]
        fn sender_key_id_round_trips(bytes in any::<[u8; 16]>()) {
            let id = SenderKeyId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<SenderKeyId>().unwrap(), id);
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_checked_text_form() {
        let room = RoomId::new(&[0xff, 1]).unwrap();
        let json = serde_json::to_string(&room).unwrap();
        assert_eq!(json, "\"0xff01\"");
        assert_eq!(serde_json::from_str::<RoomId>(&json).unwrap(), room);
        let member = MemberId::new(b"bob").unwrap();
        assert_eq!(serde_json::to_string(&member).unwrap(), "\"bob\"");
        assert!(serde_json::from_str::<MemberId>("\"\"").is_err());
        assert!(serde_json::from_str::<MemberId>("[98,111,98]").is_err());
        let key = SenderKeyId::from_bytes([7; 16]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<SenderKeyId>(&json).unwrap(), key);
        assert!(serde_json::from_str::<SenderKeyId>("\"07\"").is_err());
    }
}
