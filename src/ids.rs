//! Small identifiers carried on the wire: room ids, member ids, sender key ids.

use crate::error::{DecodeError, Error};
use crate::limits::{MAX_MEMBER_ID_LEN, MAX_ROOM_ID_LEN};
use alloc::vec::Vec;
use core::fmt;

/// An app-chosen room id: 1 to [`MAX_ROOM_ID_LEN`] bytes (a UUID, a hash).
///
/// Bound into every key share and message header, so nothing made for one
/// room is accepted in another.
///
/// ```
/// use secret_chat::RoomId;
/// let room = RoomId::new(b"family-chat-7f3a").unwrap();
/// assert_eq!(room.as_bytes(), b"family-chat-7f3a");
/// assert!(RoomId::new(b"").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Vec<u8>);

impl RoomId {
    /// Checks the length and wraps the bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX_ROOM_ID_LEN {
            return Err(Error::Malformed(DecodeError::LengthLimit));
        }
        Ok(Self(bytes.to_vec()))
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
///
/// ```
/// use secret_chat::MemberId;
/// let bob = MemberId::new(b"bob@example.org").unwrap();
/// assert_eq!(bob.as_bytes(), b"bob@example.org");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(Vec<u8>);

impl MemberId {
    /// Checks the length and wraps the bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX_MEMBER_ID_LEN {
            return Err(Error::Malformed(DecodeError::LengthLimit));
        }
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
