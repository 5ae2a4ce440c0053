//! Sender keys: the seed product's "secret key", one per member, room and epoch.
//!
//! (Skeleton: the ratchet and the skipped-key store land with the message
//! issue; this file fixes the types the key share carries.)

use crate::error::{DecodeError, Error};
use crate::ids::SenderKeyId;
use core::fmt;
use ed25519_dalek::VerifyingKey;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How messages under a sender key are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SenderKeyMode {
    /// Group rooms: every message is signed by the sender key's own Ed25519
    /// key, so members cannot forge each other's messages.
    Signed,
    /// Rooms of exactly two: no signature; the AEAD alone authenticates (only
    /// the two holders know the key) and the chat stays deniable.
    Pairwise,
}

impl SenderKeyMode {
    /// Wire tag: 1 = signed, 2 = pairwise.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Signed => 1,
            Self::Pairwise => 2,
        }
    }

    /// Parses a wire tag.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Signed),
            2 => Some(Self::Pairwise),
            _ => None,
        }
    }
}

/// A 32-byte chain key. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey(pub(crate) [u8; 32]);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// What a key share carries: everything a member needs to decrypt one
/// sender's messages from `index` on (never anything earlier).
#[derive(Clone)]
pub struct SharedSenderKey {
    pub(crate) id: SenderKeyId,
    pub(crate) mode: SenderKeyMode,
    pub(crate) index: u32,
    pub(crate) chain_key: ChainKey,
    /// `Some` exactly when `mode` is [`SenderKeyMode::Signed`].
    pub(crate) signing_public: Option<VerifyingKey>,
}

impl SharedSenderKey {
    /// Assembles a sender key from its parts, checking that `signing_public`
    /// is `Some` exactly when `mode` is [`SenderKeyMode::Signed`].
    pub(crate) fn new(
        id: SenderKeyId,
        mode: SenderKeyMode,
        index: u32,
        chain_key: &[u8; 32],
        signing_public: Option<VerifyingKey>,
    ) -> Result<Self, Error> {
        if (mode == SenderKeyMode::Signed) != signing_public.is_some() {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        Ok(Self {
            id,
            mode,
            index,
            chain_key: ChainKey(*chain_key),
            signing_public,
        })
    }

    /// The sender key's id.
    pub fn id(&self) -> SenderKeyId {
        self.id
    }

    /// Signed (group) or pairwise.
    pub fn mode(&self) -> SenderKeyMode {
        self.mode
    }

    /// The first message index this share can decrypt.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl fmt::Debug for SharedSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSenderKey")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ConstantTimeEq for SharedSenderKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        let public = self.id == other.id
            && self.mode == other.mode
            && self.index == other.index
            && self.signing_public.map(|k| k.to_bytes())
                == other.signing_public.map(|k| k.to_bytes());
        Choice::from(u8::from(public)) & self.chain_key.0.ct_eq(&other.chain_key.0)
    }
}

/// Equality compares the chain key in constant time.
impl PartialEq for SharedSenderKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SharedSenderKey {}
