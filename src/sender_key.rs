//! Sender keys: the seed product's "secret key", one per member, room and epoch.
//!
//! A sender key is a 32-byte chain key, the index of the next message, a
//! 16-byte id, a 32-byte *binding* to its owner (see
//! `testing::sender_key_binding`, feature `testing`, and `docs/PROTOCOL.md` section 4.1)
//! and, in group rooms, a fresh Ed25519 signing key used only for this sender
//! key's messages (its id is then derived from the signing public key). The
//! owner holds an [`OutboundSenderKey`]; every other member holds an
//! [`InboundSenderKey`] built from the [`SharedSenderKey`] its key share
//! carried, after checking the share's proof of possession.
//!
//! # Key schedule (protocol version 2)
//!
//! ```text
//! seed_i        = HMAC-SHA256(chain_key_i, 0x01)
//! chain_key_i+1 = HMAC-SHA256(chain_key_i, 0x02)
//! okm (76)      = HKDF-SHA256(salt = header salt (16), IKM = seed_i,
//!                             info = "secret-chat/v2/message-key" || binding (32))
//! key = okm[0..32], nonce = okm[32..44], commitment = okm[44..76]
//! ```
//!
//! The salt is drawn fresh for every message, so even a sender restored from
//! an old state (which reuses index `i` and `seed_i`) never repeats an
//! AES-GCM key and nonce; the receiver refuses the second message at a used
//! index as a replay. A chain key is overwritten by its successor as soon as
//! it is used, so a stolen state cannot decrypt earlier messages (forward
//! secrecy within the chain); skipped seeds are erased when used or evicted.
//!
//! Every secret a container holds (chain keys, skipped seeds, the signing
//! key) is boxed, so moving a key into a map or growing the skipped-key store
//! moves only pointers and never leaves a copy behind in freed memory.

use crate::error::{DecodeError, Error};
use crate::identity::EdPublic;
use crate::ids::{RoomId, SenderKeyId};
use crate::labels;
use crate::limits::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_LEN, MAX_ROOM_ID_LEN, MAX_SKIPPED_KEYS};
use crate::message::{self, Decrypted, Message};
use crate::wire::{Reader, Writer};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

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

/// The 32-byte binding of a sender key to its owner:
///
/// ```text
/// SHA-256("secret-chat/v2/sender-key/binding" || u8(len(room)) || room
///         || owner (32) || instance (32) || u32(epoch))
/// ```
///
/// `owner` is the owner's Ed25519 identity public key and `instance` its
/// membership instance in the room. Both halves of a sender key are built
/// with it: it is mixed into every message key (so a member holding the key
/// under another owner derives other keys) and signed by the proof of
/// possession (so a key cannot be re-shared under another owner).
pub(crate) fn sender_key_binding(
    room: &RoomId,
    owner: &[u8; 32],
    instance: &[u8; 32],
    epoch: u32,
) -> [u8; 32] {
    // Room ids are at most MAX_ROOM_ID_LEN (64) bytes: the length fits a u8.
    Sha256::new()
        .chain_update(labels::SENDER_KEY_BINDING)
        .chain_update([room.as_bytes().len() as u8])
        .chain_update(room.as_bytes())
        .chain_update(owner)
        .chain_update(instance)
        .chain_update(epoch.to_be_bytes())
        .finalize()
        .into()
}

/// The id of a signed sender key: the first 16 bytes of
/// `SHA-256("secret-chat/v2/sender-key/id" || signing public key)`.
pub(crate) fn signed_key_id(public: &[u8; 32]) -> SenderKeyId {
    let digest = Sha256::new()
        .chain_update(labels::SENDER_KEY_ID)
        .chain_update(public)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    SenderKeyId(id)
}

/// What the proof of possession signs: label || binding || key id.
fn possession_input(binding: &[u8; 32], id: SenderKeyId) -> [u8; 84] {
    let mut m = [0u8; 84];
    let (label, rest) = m.split_at_mut(labels::SENDER_KEY_POSSESSION.len());
    label.copy_from_slice(labels::SENDER_KEY_POSSESSION);
    let (b, i) = rest.split_at_mut(32);
    b.copy_from_slice(binding);
    i.copy_from_slice(id.as_bytes());
    m
}

/// A 32-byte chain key. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey(pub(crate) [u8; 32]);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// A 32-byte message seed (the HKDF IKM of one message). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageSeed(pub(crate) [u8; 32]);

/// The AES-256-GCM key and nonce and the key commitment of one message.
/// Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) key: [u8; 32],
    pub(crate) nonce: [u8; 12],
    pub(crate) commitment: [u8; 32],
}

impl ChainKey {
    /// One ratchet step: the message seed for this index and the next chain key.
    pub(crate) fn step(&self) -> (ChainKey, MessageSeed) {
        #[cfg(test)]
        tests::STEPS.with(|c| c.set(c.get() + 1));
        // Both outputs are keyed by the same chain key: key the HMAC once.
        let Ok(mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            // HMAC accepts keys of any length; unreachable.
            return (ChainKey([0; 32]), MessageSeed([0; 32]));
        };
        let mut seed_mac = mac.clone();
        seed_mac.update(labels::MESSAGE_SEED_STEP);
        let mut next_mac = mac;
        next_mac.update(labels::CHAIN_KEY_STEP);
        (
            ChainKey(next_mac.finalize().into_bytes().into()),
            MessageSeed(seed_mac.finalize().into_bytes().into()),
        )
    }

    /// Overwrites this chain key with `next` in place (the box, if any, is
    /// kept: no copy of either key is left in freed memory).
    fn advance_to(&mut self, next: &ChainKey) {
        self.0 = next.0;
    }
}

/// Length of the HKDF output: key, nonce, commitment.
const OKM_LEN: usize = 32 + 12 + 32;

impl MessageSeed {
    /// Derives the message's AES-256-GCM key, nonce and key commitment from
    /// the seed, the header's salt and the sender key's binding.
    pub(crate) fn keys(&self, salt: &[u8; 16], binding: &[u8; 32]) -> MessageKeys {
        let mut okm = Zeroizing::new([0u8; OKM_LEN]);
        let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), &self.0);
        let expanded =
            hk.expand_multi_info(&[labels::MESSAGE_KEY_INFO_V2, binding], okm.as_mut_slice());
        let mut keys = MessageKeys {
            key: [0; 32],
            nonce: [0; 12],
            commitment: [0; 32],
        };
        // 76 bytes is always a valid HKDF-SHA256 output length; on the
        // unreachable failure every field stays zero and nothing verifies.
        if expanded.is_ok() {
            keys.key.copy_from_slice(&okm[..32]);
            keys.nonce.copy_from_slice(&okm[32..44]);
            keys.commitment.copy_from_slice(&okm[44..]);
        }
        keys
    }
}

/// What a key share carries: everything a member needs to decrypt one
/// sender's messages from `index` on (never anything earlier).
#[derive(Clone)]
pub struct SharedSenderKey {
    pub(crate) id: SenderKeyId,
    pub(crate) mode: SenderKeyMode,
    pub(crate) index: u32,
    pub(crate) chain_key: Box<ChainKey>,
    /// `Some` exactly when `mode` is [`SenderKeyMode::Signed`].
    pub(crate) signing_public: Option<EdPublic>,
    /// The proof of possession; `Some` exactly when `mode` is signed.
    pub(crate) possession: Option<[u8; 64]>,
    /// Messages the owner sent under its previous sender key (0 for a first key).
    pub(crate) predecessor_end: u32,
}

impl SharedSenderKey {
    /// Assembles a sender key from its parts, checking that `signing_public`
    /// and `possession` are `Some` exactly when `mode` is
    /// [`SenderKeyMode::Signed`] and that a signed key's id is the one
    /// derived from its signing key ([`Error::SenderKeyIdMismatch`]). The
    /// proof of possession is verified later, against the receiver's
    /// binding, by [`InboundSenderKey::new`].
    pub(crate) fn new(
        id: SenderKeyId,
        mode: SenderKeyMode,
        index: u32,
        chain_key: &[u8; 32],
        signing: Option<(EdPublic, [u8; 64])>,
        predecessor_end: u32,
    ) -> Result<Self, Error> {
        if (mode == SenderKeyMode::Signed) != signing.is_some() {
            return Err(Error::Malformed(DecodeError::InvalidValue));
        }
        if let Some((public, _)) = &signing
            && signed_key_id(public.as_bytes()) != id
        {
            return Err(Error::SenderKeyIdMismatch);
        }
        Ok(Self {
            id,
            mode,
            index,
            chain_key: Box::new(ChainKey(*chain_key)),
            possession: signing.as_ref().map(|(_, s)| *s),
            signing_public: signing.map(|(p, _)| p),
            predecessor_end,
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

    /// The public half of the sender key's signing key, encoded (group
    /// mode only).
    pub fn signing_public(&self) -> Option<&[u8; 32]> {
        self.signing_public.as_ref().map(EdPublic::as_bytes)
    }

    /// How many messages the owner sent under the sender key this one
    /// replaced (0 for a first key): the receiver retires that key at this
    /// index ([`InboundSenderKey::retire`]).
    pub fn predecessor_end(&self) -> u32 {
        self.predecessor_end
    }
}

/// Length of a pairwise sender key in a key share's plaintext: mode, id,
/// index, chain key, predecessor end.
pub(crate) const SHARE_PLAINTEXT_PAIRWISE_LEN: usize = 1 + 16 + 4 + 32 + 4;
/// Length of a signed sender key in a key share's plaintext: the pairwise
/// fields plus the sender key's Ed25519 public key and proof of possession.
pub(crate) const SHARE_PLAINTEXT_SIGNED_LEN: usize = SHARE_PLAINTEXT_PAIRWISE_LEN + 32 + 64;

impl SharedSenderKey {
    /// The plaintext a key share carries (see `docs/PROTOCOL.md` section
    /// 4.2): `mode | id (16) | index u32 | chain key (32) | [signing public
    /// (32) | proof of possession (64), signed only] | predecessor_end u32`.
    pub(crate) fn to_share_plaintext(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut pt = Zeroizing::new(Vec::with_capacity(SHARE_PLAINTEXT_SIGNED_LEN));
        pt.push(self.mode.to_byte());
        pt.extend_from_slice(self.id.as_bytes());
        pt.extend_from_slice(&self.index.to_be_bytes());
        pt.extend_from_slice(&self.chain_key.0);
        match (self.mode, &self.signing_public, &self.possession) {
            (SenderKeyMode::Signed, Some(public), Some(proof)) => {
                pt.extend_from_slice(public.as_bytes());
                pt.extend_from_slice(proof);
            }
            (SenderKeyMode::Pairwise, None, None) => {}
            _ => return Err(Error::Malformed(DecodeError::InvalidValue)),
        }
        pt.extend_from_slice(&self.predecessor_end.to_be_bytes());
        Ok(pt)
    }

    /// Parses what [`to_share_plaintext`](Self::to_share_plaintext) wrote
    /// (total: a value or a typed error). A signed key's id must be the one
    /// derived from its signing key ([`Error::SenderKeyIdMismatch`]).
    pub(crate) fn from_share_plaintext(pt: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(pt);
        let mode =
            SenderKeyMode::from_byte(r.u8()?).ok_or(Error::Malformed(DecodeError::InvalidValue))?;
        let id = SenderKeyId::from_bytes(r.array()?);
        let index = r.u32()?;
        let mut chain_key = Zeroizing::new([0u8; 32]);
        chain_key.copy_from_slice(r.bytes(32)?);
        let signing = match mode {
            SenderKeyMode::Signed => {
                let public = EdPublic::parse(&r.array()?)?;
                Some((public, r.array::<64>()?))
            }
            SenderKeyMode::Pairwise => None,
        };
        let predecessor_end = r.u32()?;
        r.finish()?;
        SharedSenderKey::new(id, mode, index, &chain_key, signing, predecessor_end)
    }
}

impl fmt::Debug for SharedSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSenderKey")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("index", &self.index)
            .field("predecessor_end", &self.predecessor_end)
            .finish_non_exhaustive()
    }
}

impl ConstantTimeEq for SharedSenderKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        let public = self.id == other.id
            && self.mode == other.mode
            && self.index == other.index
            && self.predecessor_end == other.predecessor_end
            && self.possession == other.possession
            && self.signing_public == other.signing_public;
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

/// My own sender key in one room and epoch: encrypts my messages.
///
/// ```
/// use secret_chat::{OutboundSenderKey, InboundSenderKey, RoomId, SenderKeyMode, Message};
/// let room = RoomId::new(b"room-1").unwrap();
/// // The room computes the binding from the owner's identity, room and epoch.
/// let binding = [7u8; 32];
/// let mut mine = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Signed, binding, 0);
/// // What a key share carries to the other members (its proof of
/// // possession is checked against the receiver's binding):
/// let mut theirs = InboundSenderKey::new(room, 0, mine.share(), binding).unwrap();
/// let wire = mine.encrypt(b"hello").unwrap();
/// let got = theirs.decrypt(&Message::from_bytes(&wire).unwrap()).unwrap();
/// assert_eq!(got.plaintext(), b"hello");
/// ```
pub struct OutboundSenderKey {
    room: RoomId,
    epoch: u32,
    id: SenderKeyId,
    mode: SenderKeyMode,
    binding: [u8; 32],
    predecessor_end: u32,
    index: u32,
    chain_key: Box<ChainKey>,
    signing: Option<Box<SigningKey>>,
}

impl OutboundSenderKey {
    /// A fresh sender key from the OS RNG. `binding` comes from the room
    /// (see `docs/PROTOCOL.md` section 4.1); `predecessor_end` is the index
    /// my previous sender key in this room would have used next (0 for a
    /// first key).
    ///
    /// ```
    /// use secret_chat::{OutboundSenderKey, RoomId, SenderKeyMode};
    /// let room = RoomId::new(b"room-1").unwrap();
    /// let first = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Signed, [1; 32], 0);
    /// let next = OutboundSenderKey::new(room, 1, SenderKeyMode::Signed, [2; 32], first.index());
    /// assert_eq!(next.share().predecessor_end(), 0);
    /// ```
    pub fn new(
        room: RoomId,
        epoch: u32,
        mode: SenderKeyMode,
        binding: [u8; 32],
        predecessor_end: u32,
    ) -> Self {
        Self::new_with_rng(
            room,
            epoch,
            mode,
            binding,
            predecessor_end,
            &mut crate::rng::os_rng(),
        )
    }

    /// A fresh sender key from `rng`: draws the 32-byte chain key, then
    /// either the 32-byte Ed25519 seed (signed mode; the id is derived from
    /// its public key) or the random 16-byte id (pairwise mode).
    pub fn new_with_rng<R: CryptoRng + ?Sized>(
        room: RoomId,
        epoch: u32,
        mode: SenderKeyMode,
        binding: [u8; 32],
        predecessor_end: u32,
        rng: &mut R,
    ) -> Self {
        let mut chain_key = Box::new(ChainKey([0; 32]));
        rng.fill_bytes(&mut chain_key.0);
        let (id, signing) = match mode {
            SenderKeyMode::Signed => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut_slice());
                let signing = Box::new(SigningKey::from_bytes(&seed));
                (
                    signed_key_id(signing.verifying_key().as_bytes()),
                    Some(signing),
                )
            }
            SenderKeyMode::Pairwise => {
                let mut id = [0u8; 16];
                rng.fill_bytes(&mut id);
                (SenderKeyId(id), None)
            }
        };
        Self {
            room,
            epoch,
            id,
            mode,
            binding,
            predecessor_end,
            index: 0,
            chain_key,
            signing,
        }
    }

    /// The sender key's id.
    pub fn id(&self) -> SenderKeyId {
        self.id
    }

    /// Signed (group) or pairwise.
    pub fn mode(&self) -> SenderKeyMode {
        self.mode
    }

    /// The index the next message will use (= messages sent so far, if the
    /// key was created here). Pass it as the successor's `predecessor_end`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The room this key belongs to.
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The binding this key was created with.
    pub fn binding(&self) -> &[u8; 32] {
        &self.binding
    }

    /// The end of my previous sender key that this key carries in its shares.
    pub fn predecessor_end(&self) -> u32 {
        self.predecessor_end
    }

    /// What a key share carries: the current chain key and index, so a
    /// receiver can read every message from now on and nothing before; in
    /// signed mode also the signing public key and a fresh proof of
    /// possession (an Ed25519 signature over the binding and the id).
    pub fn share(&self) -> SharedSenderKey {
        let signing = self.signing.as_ref().map(|k| {
            let proof = k.sign(&possession_input(&self.binding, self.id));
            (EdPublic::from_key(k.verifying_key()), proof.to_bytes())
        });
        SharedSenderKey {
            id: self.id,
            mode: self.mode,
            index: self.index,
            chain_key: self.chain_key.clone(),
            possession: signing.as_ref().map(|(_, s)| *s),
            signing_public: signing.map(|(p, _)| p),
            predecessor_end: self.predecessor_end,
        }
    }

    /// Encrypts (and in signed mode signs) one message with a fresh salt
    /// from the OS RNG; advances the ratchet and erases the used chain key.
    ///
    /// Fails with [`Error::LimitExceeded`] above
    /// [`MAX_PLAINTEXT_LEN`] and with
    /// [`Error::ChainExhausted`] after 2^32 - 1 messages; the state is then
    /// unchanged.
    ///
    /// ```
    /// use secret_chat::{OutboundSenderKey, RoomId, SenderKeyMode};
    /// let room = RoomId::new(b"room-1").unwrap();
    /// let mut key = OutboundSenderKey::new(room, 0, SenderKeyMode::Pairwise, [3; 32], 0);
    /// let wire = key.encrypt(b"hi").unwrap();
    /// assert_eq!(key.index(), 1);
    /// assert_eq!(wire[0], secret_chat::labels::MESSAGE_VERSION);
    /// ```
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.encrypt_with_rng(plaintext, &mut crate::rng::os_rng())
    }

    /// [`encrypt`](Self::encrypt) with the 16-byte salt drawn from `rng`.
    ///
    /// The salt is what keeps a restored (rolled back) sender from reusing an
    /// AES-GCM key and nonce: production code must pass a generator whose
    /// state is never saved or restored with the sender key (the OS RNG).
    pub fn encrypt_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::LimitExceeded);
        }
        let next_index = self.index.checked_add(1).ok_or(Error::ChainExhausted)?;
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let (next_chain, seed) = self.chain_key.step();
        let keys = seed.keys(&salt, &self.binding);
        let header = message::Header {
            mode: self.mode,
            room_id: self.room.as_bytes(),
            epoch: self.epoch,
            sender_key: self.id,
            index: self.index,
            salt,
            commitment: keys.commitment,
        };
        let out = message::seal(&header, &keys, plaintext, self.signing.as_deref())?;
        self.chain_key.advance_to(&next_chain);
        self.index = next_index;
        Ok(out)
    }

    /// Length of [`encode_state`](Self::encode_state)'s output.
    pub(crate) fn state_len(&self) -> usize {
        let signing = if self.signing.is_some() { 32 } else { 0 };
        1 + self.room.as_bytes().len() + 4 + 16 + 1 + 32 + 4 + 4 + 32 + signing
    }

    /// Appends the full state (secrets included) for the encrypted storage:
    /// `room (u8 len) | epoch u32 | id (16) | mode u8 | binding (32) |
    /// predecessor_end u32 | index u32 | chain key (32) | [Ed25519 seed
    /// (32), signed mode only]`.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        write_key_header(w, &self.room, self.epoch, self.id, self.mode);
        w.bytes(&self.binding)
            .u32(self.predecessor_end)
            .u32(self.index)
            .bytes(&self.chain_key.0);
        if let Some(s) = &self.signing {
            w.bytes(s.as_bytes());
        }
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote (a signed key's
    /// id must be the one derived from its signing key).
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (room, epoch, id, mode) = read_key_header(r)?;
        let binding = r.array()?;
        let predecessor_end = r.u32()?;
        let index = r.u32()?;
        let mut chain_key = Box::new(ChainKey([0; 32]));
        chain_key.0.copy_from_slice(r.bytes(32)?);
        let signing = match mode {
            SenderKeyMode::Signed => {
                let seed = Zeroizing::new(r.array::<32>()?);
                let signing = Box::new(SigningKey::from_bytes(&seed));
                if signed_key_id(signing.verifying_key().as_bytes()) != id {
                    return Err(DecodeError::InvalidValue);
                }
                Some(signing)
            }
            SenderKeyMode::Pairwise => None,
        };
        Ok(Self {
            room,
            epoch,
            id,
            mode,
            binding,
            predecessor_end,
            index,
            chain_key,
            signing,
        })
    }
}

impl fmt::Debug for OutboundSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundSenderKey")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("epoch", &self.epoch)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// "Not retired": no index limit beyond the chain's own.
const NOT_RETIRED: u32 = u32::MAX;

/// Another member's sender key, as its key share delivered it: decrypts
/// that member's messages, out of order within limits, each exactly once.
pub struct InboundSenderKey {
    room: RoomId,
    epoch: u32,
    id: SenderKeyId,
    mode: SenderKeyMode,
    signing_public: Option<EdPublic>,
    binding: [u8; 32],
    predecessor_end: u32,
    /// First index the share allowed; anything earlier is [`Error::TooOld`].
    first_index: u32,
    /// Index `chain_key` belongs to: every index below it was received,
    /// skipped (seed in `skipped`) or evicted.
    next_index: u32,
    chain_key: Box<ChainKey>,
    /// Seeds of skipped indices, oldest evicted beyond `MAX_SKIPPED_KEYS`.
    /// Boxed: the map moves its values when it rebalances.
    skipped: BTreeMap<u32, Box<MessageSeed>>,
    /// Every index below this that is not in `skipped` is gone for good:
    /// received or evicted, reported as [`Error::TooOld`].
    evicted_below: u32,
    /// Set by [`retire`](Self::retire): indices at or above are refused
    /// ([`Error::RetiredKeyIndex`]). `u32::MAX` when not retired (that index
    /// is never valid anyway).
    end: u32,
}

impl InboundSenderKey {
    /// Builds the receiving half from what a key share carried, bound to
    /// `binding` (the receiver computes it for the share's owner, room and
    /// epoch; see `testing::sender_key_binding` (feature `testing`)
    /// and `docs/PROTOCOL.md` section 4.1).
    ///
    /// A signed key's proof of possession must verify (strict Ed25519)
    /// over this binding and the key id, else [`Error::BadPossessionProof`]:
    /// a key re-shared by a member who does not own it, or shared for another
    /// room or epoch, is refused here.
    ///
    /// ```
    /// use secret_chat::{Error, InboundSenderKey, OutboundSenderKey, RoomId, SenderKeyMode};
    /// let room = RoomId::new(b"room-1").unwrap();
    /// let alice = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Signed, [1; 32], 0);
    /// assert!(InboundSenderKey::new(room.clone(), 0, alice.share(), [1; 32]).is_ok());
    /// // Filed under another owner (another binding): refused.
    /// assert_eq!(
    ///     InboundSenderKey::new(room, 0, alice.share(), [2; 32]).unwrap_err(),
    ///     Error::BadPossessionProof
    /// );
    /// ```
    pub fn new(
        room: RoomId,
        epoch: u32,
        shared: SharedSenderKey,
        binding: [u8; 32],
    ) -> Result<Self, Error> {
        match (&shared.signing_public, &shared.possession) {
            (Some(public), Some(proof)) => public
                .verify_strict(
                    &possession_input(&binding, shared.id),
                    &Signature::from_bytes(proof),
                )
                .map_err(|_| Error::BadPossessionProof)?,
            (None, None) if shared.mode == SenderKeyMode::Pairwise => {}
            _ => return Err(Error::Malformed(DecodeError::InvalidValue)),
        }
        Ok(Self {
            room,
            epoch,
            id: shared.id,
            mode: shared.mode,
            signing_public: shared.signing_public,
            binding,
            predecessor_end: shared.predecessor_end,
            first_index: shared.index,
            next_index: shared.index,
            chain_key: shared.chain_key.clone(),
            skipped: BTreeMap::new(),
            evicted_below: shared.index,
            end: NOT_RETIRED,
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

    /// The public half of the sender key's signing key, encoded (group
    /// mode only).
    pub fn signing_public(&self) -> Option<&[u8; 32]> {
        self.signing_public.as_ref().map(EdPublic::as_bytes)
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The binding this key was built with.
    pub fn binding(&self) -> &[u8; 32] {
        &self.binding
    }

    /// The end of the owner's previous sender key, as this key's share
    /// carried it: retire the previous key at this index.
    pub fn predecessor_end(&self) -> u32 {
        self.predecessor_end
    }

    /// Retires this key: from now on it accepts only indices below `end`
    /// (the successor key's [`predecessor_end`](Self::predecessor_end)); a
    /// message at `end` or later is refused with [`Error::RetiredKeyIndex`].
    /// Skipped seeds at or above `end` are erased. Retiring twice keeps the
    /// lower end. How long a retired key is kept (its grace) is the room's
    /// policy.
    ///
    /// ```
    /// use secret_chat::{Error, InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};
    /// let room = RoomId::new(b"room-1").unwrap();
    /// let mut old = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Pairwise, [1; 32], 0);
    /// let mut theirs = InboundSenderKey::new(room.clone(), 0, old.share(), [1; 32]).unwrap();
    /// let first = old.encrypt(b"before the rotation").unwrap();
    /// let next = OutboundSenderKey::new(room, 1, SenderKeyMode::Pairwise, [2; 32], old.index());
    /// theirs.retire(next.predecessor_end());
    /// assert!(theirs.decrypt(&Message::from_bytes(&first).unwrap()).is_ok());
    /// let late = old.encrypt(b"after").unwrap(); // index 1 >= end 1
    /// assert_eq!(
    ///     theirs.decrypt(&Message::from_bytes(&late).unwrap()).unwrap_err(),
    ///     Error::RetiredKeyIndex
    /// );
    /// ```
    pub fn retire(&mut self, end: u32) {
        self.end = self.end.min(end);
        let end = self.end;
        // Dropping a boxed seed zeroizes it.
        self.skipped.retain(|&i, _| i < end);
    }

    /// The retirement end set by [`retire`](Self::retire), if any.
    pub fn retired_end(&self) -> Option<u32> {
        (self.end != NOT_RETIRED).then_some(self.end)
    }

    /// Indices that were skipped and have not arrived yet (still decryptable,
    /// oldest first).
    pub fn missing_indices(&self) -> Vec<u32> {
        self.skipped.keys().copied().collect()
    }

    /// Every index below this that is not in
    /// [`missing_indices`](Self::missing_indices) has been received or can
    /// no longer be decrypted (its key was evicted, or it predates the share).
    pub fn lost_below(&self) -> u32 {
        self.evicted_below
    }

    /// The highest index received so far plus one (the ratchet position).
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Verifies and decrypts one message under this sender key.
    ///
    /// Order: the header must name this key, room and epoch
    /// ([`Error::NotForMe`]); in signed mode the signature is verified first
    /// ([`Error::SignatureRequired`], [`Error::BadSignature`]); then the
    /// index checks, before any ratchet work ([`Error::RetiredKeyIndex`],
    /// [`Error::TooOld`], [`Error::Replay`], [`Error::TooFarAhead`]); then
    /// the key is derived on a copy, the key commitment compared in constant
    /// time ([`Error::CommitmentMismatch`]), the AEAD opened
    /// ([`Error::Tampered`]) and the padding checked ([`Error::BadPadding`]).
    /// Only a message that passed every check changes the state; any failure
    /// leaves it exactly as it was.
    ///
    /// ```
    /// use secret_chat::{Error, InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};
    /// let room = RoomId::new(b"room-1").unwrap();
    /// let mut out = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Signed, [1; 32], 0);
    /// let mut inb = InboundSenderKey::new(room, 0, out.share(), [1; 32]).unwrap();
    /// let wire = out.encrypt(b"hello").unwrap();
    /// let msg = Message::from_bytes(&wire).unwrap();
    /// assert_eq!(inb.decrypt(&msg).unwrap().plaintext(), b"hello");
    /// assert_eq!(inb.decrypt(&msg).unwrap_err(), Error::Replay);
    /// ```
    pub fn decrypt(&mut self, msg: &Message<'_>) -> Result<Decrypted, Error> {
        if msg.sender_key() != self.id
            || msg.room_id() != self.room.as_bytes()
            || msg.epoch() != self.epoch
        {
            return Err(Error::NotForMe);
        }
        match (self.mode, msg.mode()) {
            (SenderKeyMode::Signed, SenderKeyMode::Pairwise) => {
                return Err(Error::SignatureRequired);
            }
            (SenderKeyMode::Pairwise, SenderKeyMode::Signed) => return Err(Error::Tampered),
            _ => {}
        }
        if let Some(key) = &self.signing_public {
            msg.verify_signature(key)?;
        }
        let index = msg.index();
        if index >= self.end {
            return Err(Error::RetiredKeyIndex);
        }
        if index < self.next_index {
            if index < self.first_index {
                return Err(Error::TooOld);
            }
            let Some(seed) = self.skipped.get(&index) else {
                return Err(if index < self.evicted_below {
                    Error::TooOld
                } else {
                    Error::Replay
                });
            };
            let plaintext = open_checked(msg, seed, &self.binding)?;
            self.skipped.remove(&index);
            return Ok(Decrypted::new(plaintext, self.id, index));
        }
        let jump = index - self.next_index;
        if jump > MAX_FORWARD_JUMP {
            return Err(Error::TooFarAhead);
        }
        if index == u32::MAX {
            return Err(Error::ChainExhausted);
        }
        // Work on copies: nothing is committed before the AEAD tag verified.
        // Seeds are boxed from the start so committing them moves pointers.
        let mut chain = self.chain_key.clone();
        let mut new_skipped = Vec::with_capacity(jump as usize);
        for i in self.next_index..index {
            let (next, seed) = chain.step();
            new_skipped.push((i, Box::new(seed)));
            chain.advance_to(&next);
        }
        let (next, seed) = chain.step();
        let plaintext = open_checked(msg, &seed, &self.binding)?;
        self.chain_key.advance_to(&next);
        self.next_index = index + 1;
        self.skipped.extend(new_skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            if let Some((evicted, _seed)) = self.skipped.pop_first() {
                self.evicted_below = self.evicted_below.max(evicted + 1);
            }
        }
        Ok(Decrypted::new(plaintext, self.id, index))
    }

    /// The room this key belongs to.
    pub(crate) fn room(&self) -> &RoomId {
        &self.room
    }

    /// Length of [`encode_state`](Self::encode_state)'s output.
    pub(crate) fn state_len(&self) -> usize {
        let signing = if self.signing_public.is_some() { 32 } else { 0 };
        1 + self.room.as_bytes().len()
            + 4
            + 16
            + 1
            + 32
            + signing
            + 4
            + 16
            + 32
            + 4
            + self.skipped.len() * 36
    }

    /// Appends the full state (secrets included) for the encrypted storage:
    /// `room (u8 len) | epoch u32 | id (16) | mode u8 | binding (32) |
    /// [Ed25519 public (32), signed mode only] | predecessor_end u32 |
    /// first_index u32 | next_index u32 | evicted_below u32 | end u32 |
    /// chain key (32) | count u32 | count x (index u32, seed (32))`, skipped
    /// indices strictly increasing; `end` = `0xffffffff` when not retired.
    ///
    /// The proof of possession is not stored: it was verified when the key
    /// was built, and the stored state is authenticated by the storage key.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        write_key_header(w, &self.room, self.epoch, self.id, self.mode);
        w.bytes(&self.binding);
        if let Some(k) = &self.signing_public {
            w.bytes(k.as_bytes());
        }
        w.u32(self.predecessor_end)
            .u32(self.first_index)
            .u32(self.next_index)
            .u32(self.evicted_below)
            .u32(self.end)
            .bytes(&self.chain_key.0)
            .u32(self.skipped.len() as u32);
        for (i, seed) in &self.skipped {
            w.u32(*i).bytes(&seed.0);
        }
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote, checking the
    /// index invariants, the signed key's id and the order of the skipped keys.
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (room, epoch, id, mode) = read_key_header(r)?;
        let binding = r.array()?;
        let signing_public = match mode {
            SenderKeyMode::Signed => {
                // Checked when the key arrived; the record's tag vouches for
                // it now: decompressed on first use only.
                let public: [u8; 32] = r.array()?;
                if signed_key_id(&public) != id {
                    return Err(DecodeError::InvalidValue);
                }
                Some(EdPublic::stored(public))
            }
            SenderKeyMode::Pairwise => None,
        };
        let predecessor_end = r.u32()?;
        let first_index = r.u32()?;
        let next_index = r.u32()?;
        let evicted_below = r.u32()?;
        let end = r.u32()?;
        let mut chain_key = Box::new(ChainKey([0; 32]));
        chain_key.0.copy_from_slice(r.bytes(32)?);
        if first_index > evicted_below || evicted_below > next_index {
            return Err(DecodeError::InvalidValue);
        }
        let n = r.count32(MAX_SKIPPED_KEYS, 36)?;
        let mut skipped = BTreeMap::new();
        let mut last = None;
        for _ in 0..n {
            let i = r.u32()?;
            // Strictly increasing (canonical), within [evicted_below,
            // min(next_index, end)).
            if last.is_some_and(|l| i <= l) || i < evicted_below || i >= next_index || i >= end {
                return Err(DecodeError::InvalidValue);
            }
            last = Some(i);
            let mut seed = Box::new(MessageSeed([0; 32]));
            seed.0.copy_from_slice(r.bytes(32)?);
            skipped.insert(i, seed);
        }
        Ok(Self {
            room,
            epoch,
            id,
            mode,
            signing_public,
            binding,
            predecessor_end,
            first_index,
            next_index,
            chain_key,
            skipped,
            evicted_below,
            end,
        })
    }
}

/// Derives the message keys from `seed` on the header's salt, compares the
/// key commitment in constant time before any decryption, then opens.
fn open_checked(
    msg: &Message<'_>,
    seed: &MessageSeed,
    binding: &[u8; 32],
) -> Result<message::Plaintext, Error> {
    let keys = seed.keys(msg.salt(), binding);
    if !bool::from(keys.commitment.ct_eq(msg.commitment())) {
        return Err(Error::CommitmentMismatch);
    }
    msg.open(&keys)
}

impl fmt::Debug for InboundSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSenderKey")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("epoch", &self.epoch)
            .field("next_index", &self.next_index)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for InboundSenderKey {
    /// Constant-time over the secret parts; used to check that a failed
    /// operation left the state untouched.
    fn eq(&self, other: &Self) -> bool {
        let mut a = Writer::secret(self.state_len());
        let mut b = Writer::secret(other.state_len());
        self.encode_state(&mut a);
        other.encode_state(&mut b);
        let (a, b) = (a.into_zeroizing(), b.into_zeroizing());
        a.len() == b.len() && bool::from(a.as_slice().ct_eq(b.as_slice()))
    }
}

/// The state prefix both sender-key halves share:
/// `room (u8 len) | epoch u32 | id (16) | mode u8`.
fn write_key_header(
    w: &mut Writer,
    room: &RoomId,
    epoch: u32,
    id: SenderKeyId,
    mode: SenderKeyMode,
) {
    // Room ids are at most MAX_ROOM_ID_LEN (64) bytes: the length fits a u8.
    w.u8(room.as_bytes().len() as u8)
        .bytes(room.as_bytes())
        .u32(epoch)
        .bytes(&id.0)
        .u8(mode.to_byte());
}

/// Reads what [`write_key_header`] wrote.
fn read_key_header(
    r: &mut Reader<'_>,
) -> Result<(RoomId, u32, SenderKeyId, SenderKeyMode), DecodeError> {
    let room = read_room(r)?;
    let epoch = r.u32()?;
    let id = SenderKeyId(r.array()?);
    let mode = SenderKeyMode::from_byte(r.u8()?).ok_or(DecodeError::InvalidValue)?;
    Ok((room, epoch, id, mode))
}

/// Reads a room id as the sender-key states encode it (`u8` length, bytes).
pub(crate) fn read_room(r: &mut Reader<'_>) -> Result<RoomId, DecodeError> {
    let n = usize::from(r.u8()?);
    if n > MAX_ROOM_ID_LEN {
        return Err(DecodeError::LengthLimit);
    }
    RoomId::new(r.bytes(n)?).map_err(|_| DecodeError::LengthLimit)
}

/// Test and vector hooks (re-exported through [`crate::testing`]).
#[cfg(any(test, feature = "testing"))]
pub(crate) mod hooks {
    use super::*;

    /// One ratchet step from a raw chain key: (next chain key, seed).
    pub(crate) fn ratchet(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        let (next, seed) = ChainKey(*chain_key).step();
        (next.0, seed.0)
    }

    /// The (key, nonce, commitment) of a seed under a salt and binding.
    pub(crate) fn message_keys(
        seed: &[u8; 32],
        salt: &[u8; 16],
        binding: &[u8; 32],
    ) -> ([u8; 32], [u8; 12], [u8; 32]) {
        let k = MessageSeed(*seed).keys(salt, binding);
        (k.key, k.nonce, k.commitment)
    }

    /// The current chain key of an outbound key (what its next message uses).
    pub(crate) fn outbound_chain_key(key: &OutboundSenderKey) -> [u8; 32] {
        key.chain_key.0
    }

    /// Encodes / decodes an outbound key's state (a save and a restore).
    pub(crate) fn outbound_state(key: &OutboundSenderKey) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::secret(key.state_len());
        key.encode_state(&mut w);
        w.into_zeroizing()
    }

    /// Restores what [`outbound_state`] saved.
    pub(crate) fn outbound_from_state(bytes: &[u8]) -> Result<OutboundSenderKey, Error> {
        let mut r = Reader::new(bytes);
        let key = OutboundSenderKey::decode_state(&mut r)?;
        r.finish()?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;
    use core::cell::Cell;
    use serde_json::{Value, json};

    std::thread_local! {
        /// Ratchet steps taken on this test thread.
        pub(super) static STEPS: Cell<u64> = const { Cell::new(0) };
    }

    const BINDING: [u8; 32] = [0xb1; 32];

    fn room(name: &[u8]) -> RoomId {
        RoomId::new(name).unwrap()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn pair(mode: SenderKeyMode, seed: &[u8]) -> (OutboundSenderKey, InboundSenderKey) {
        let out = OutboundSenderKey::new_with_rng(
            room(b"r"),
            3,
            mode,
            BINDING,
            0,
            &mut VectorRng::new(seed),
        );
        let inb = InboundSenderKey::new(room(b"r"), 3, out.share(), BINDING).unwrap();
        (out, inb)
    }

    #[test]
    fn debug_shows_no_secrets() {
        let (out, inb) = pair(SenderKeyMode::Signed, b"dbg");
        let ck = hex(&out.chain_key.0);
        let o = format!("{out:?}");
        let i = format!("{inb:?}");
        let s = format!("{:?}", out.share());
        assert_eq!(
            o,
            format!(
                "OutboundSenderKey {{ id: {:?}, mode: Signed, epoch: 3, index: 0, .. }}",
                out.id()
            )
        );
        assert_eq!(
            i,
            format!(
                "InboundSenderKey {{ id: {:?}, mode: Signed, epoch: 3, next_index: 0, skipped: 0, .. }}",
                out.id()
            )
        );
        assert_eq!(
            s,
            format!(
                "SharedSenderKey {{ id: {:?}, mode: Signed, index: 0, predecessor_end: 0, .. }}",
                out.id()
            )
        );
        assert_eq!(format!("{:?}", out.chain_key), "ChainKey(..)");
        for text in [o, i, s] {
            assert!(!text.contains(&ck[..8]));
        }
    }

    /// Insider forgery: B holds A's chain key and A's public signing key, as
    /// every member does. B computes A's message keys and signs with its own
    /// key, or drops the signature: both are refused.
    #[test]
    fn member_cannot_forge_another_members_message() {
        let (a_out, mut c_view_of_a) = pair(SenderKeyMode::Signed, b"alice");
        let b_view_of_a = a_out.share();
        let mut forger = OutboundSenderKey::new_with_rng(
            room(b"r"),
            3,
            SenderKeyMode::Signed,
            BINDING,
            0,
            &mut VectorRng::new(b"bob"),
        );
        forger.id = b_view_of_a.id;
        forger.chain_key = b_view_of_a.chain_key.clone();
        let forged = forger.encrypt(b"pay mallory").unwrap();
        let before_steps = STEPS.with(Cell::get);
        assert_eq!(
            c_view_of_a
                .decrypt(&Message::from_bytes(&forged).unwrap())
                .unwrap_err(),
            Error::BadSignature
        );
        assert_eq!(
            STEPS.with(Cell::get),
            before_steps,
            "no ratchet work before the signature"
        );
        // Unsigned (pairwise header) under a signed key: a downgrade.
        let mut unsigned = OutboundSenderKey::new_with_rng(
            room(b"r"),
            3,
            SenderKeyMode::Pairwise,
            BINDING,
            0,
            &mut VectorRng::new(b"bob2"),
        );
        unsigned.id = b_view_of_a.id;
        unsigned.chain_key = b_view_of_a.chain_key.clone();
        let downgraded = unsigned.encrypt(b"pay mallory").unwrap();
        assert_eq!(
            c_view_of_a
                .decrypt(&Message::from_bytes(&downgraded).unwrap())
                .unwrap_err(),
            Error::SignatureRequired
        );
        // The genuine message still decrypts afterwards.
        let mut a_out = a_out;
        let real = a_out.encrypt(b"hi").unwrap();
        let got = c_view_of_a
            .decrypt(&Message::from_bytes(&real).unwrap())
            .unwrap();
        assert_eq!(got.plaintext(), b"hi");
    }

    /// Owner binding: Mallory re-shares Alice's sender key as his own. The
    /// receiver files it under Mallory, i.e. with Mallory's binding: a signed
    /// key's proof of possession does not verify; a pairwise key (no proof)
    /// derives other message keys, so none of Alice's messages is ever shown
    /// as Mallory's (the commitment does not match), and Alice's own share is
    /// still accepted under her binding.
    #[test]
    fn reshared_key_cannot_be_filed_under_another_owner() {
        let alice = sender_key_binding(&room(b"r"), &[0xa1; 32], &[0; 32], 3);
        let mallory = sender_key_binding(&room(b"r"), &[0x3a; 32], &[0; 32], 3);
        for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
            let mut out = OutboundSenderKey::new_with_rng(
                room(b"r"),
                3,
                mode,
                alice,
                0,
                &mut VectorRng::new(b"owner"),
            );
            let share = out.share();
            let wire = out.encrypt(b"from alice").unwrap();
            let msg = Message::from_bytes(&wire).unwrap();
            match InboundSenderKey::new(room(b"r"), 3, share.clone(), mallory) {
                Err(e) => {
                    assert_eq!(mode, SenderKeyMode::Signed);
                    assert_eq!(e, Error::BadPossessionProof);
                }
                Ok(mut as_mallory) => {
                    assert_eq!(mode, SenderKeyMode::Pairwise);
                    assert_eq!(
                        as_mallory.decrypt(&msg).unwrap_err(),
                        Error::CommitmentMismatch
                    );
                }
            }
            let mut genuine = InboundSenderKey::new(room(b"r"), 3, share.clone(), alice).unwrap();
            assert_eq!(genuine.decrypt(&msg).unwrap().plaintext(), b"from alice");
            // Another room or epoch is another binding too.
            let other_epoch = sender_key_binding(&room(b"r"), &[0xa1; 32], &[0; 32], 4);
            if mode == SenderKeyMode::Signed {
                assert_eq!(
                    InboundSenderKey::new(room(b"r"), 3, share, other_epoch).unwrap_err(),
                    Error::BadPossessionProof
                );
            }
        }
    }

    #[test]
    fn signed_key_id_is_derived_and_checked() {
        let (out, _) = pair(SenderKeyMode::Signed, b"id");
        let share = out.share();
        assert_eq!(
            share.id,
            signed_key_id(share.signing_public.as_ref().unwrap().as_bytes())
        );
        let mut pt = share.to_share_plaintext().unwrap();
        pt[1] ^= 1;
        assert_eq!(
            SharedSenderKey::from_share_plaintext(&pt).unwrap_err(),
            Error::SenderKeyIdMismatch
        );
        // The stored state is checked the same way.
        let mut w = Writer::default();
        out.encode_state(&mut w);
        let mut bytes = w.into_vec();
        bytes[2 + 4] ^= 1; // first id byte after room "r" and the epoch
        assert_eq!(
            OutboundSenderKey::decode_state(&mut Reader::new(&bytes)).unwrap_err(),
            DecodeError::InvalidValue
        );
    }

    #[test]
    fn share_plaintext_round_trips_and_has_the_documented_length() {
        for (mode, len) in [
            (SenderKeyMode::Signed, SHARE_PLAINTEXT_SIGNED_LEN),
            (SenderKeyMode::Pairwise, SHARE_PLAINTEXT_PAIRWISE_LEN),
        ] {
            let out = OutboundSenderKey::new_with_rng(
                room(b"r"),
                1,
                mode,
                BINDING,
                77,
                &mut VectorRng::new(b"pt"),
            );
            let share = out.share();
            let pt = share.to_share_plaintext().unwrap();
            assert_eq!(pt.len(), len);
            let back = SharedSenderKey::from_share_plaintext(&pt).unwrap();
            assert!(back == share);
            assert_eq!(back.predecessor_end(), 77);
            assert_eq!(*back.to_share_plaintext().unwrap(), *pt);
            for n in 0..pt.len() {
                assert!(SharedSenderKey::from_share_plaintext(&pt[..n]).is_err());
            }
            let mut long = pt.to_vec();
            long.push(0);
            assert_eq!(
                SharedSenderKey::from_share_plaintext(&long).unwrap_err(),
                Error::Malformed(DecodeError::TrailingBytes)
            );
        }
    }

    #[test]
    fn too_far_jump_is_refused_before_any_ratchet_work() {
        for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
            let (mut out, mut inb) = pair(mode, b"jump");
            // Let the sender legitimately run ahead.
            for _ in 0..=MAX_FORWARD_JUMP {
                out.index += 1;
                let (next, _) = out.chain_key.step();
                out.chain_key.advance_to(&next);
            }
            let far = out.encrypt(b"too far").unwrap();
            let msg = Message::from_bytes(&far).unwrap();
            assert_eq!(msg.index(), MAX_FORWARD_JUMP + 1);
            let before = STEPS.with(Cell::get);
            assert_eq!(inb.decrypt(&msg).unwrap_err(), Error::TooFarAhead);
            assert_eq!(STEPS.with(Cell::get), before);
            // Exactly at the limit is fine.
            let (mut out2, mut inb2) = pair(mode, b"jump2");
            for _ in 0..MAX_FORWARD_JUMP {
                out2.encrypt(b"x").unwrap();
            }
            let edge = out2.encrypt(b"edge").unwrap();
            assert!(inb2.decrypt(&Message::from_bytes(&edge).unwrap()).is_ok());
            assert_eq!(inb2.missing_indices().len(), MAX_FORWARD_JUMP as usize);
        }
    }

    #[test]
    fn skipped_store_is_bounded_and_evicts_oldest() {
        let (mut out, mut inb) = pair(SenderKeyMode::Pairwise, b"evict");
        let mut msgs = Vec::new();
        for i in 0..(MAX_SKIPPED_KEYS as u32 + 10) {
            msgs.push(out.encrypt(&i.to_be_bytes()).unwrap());
        }
        // Receive only index 1000 then the last: 1000 + (MAX+9-1001) skipped > MAX.
        inb.decrypt(&Message::from_bytes(&msgs[1000]).unwrap())
            .unwrap();
        inb.decrypt(&Message::from_bytes(msgs.last().unwrap()).unwrap())
            .unwrap();
        assert_eq!(inb.missing_indices().len(), MAX_SKIPPED_KEYS);
        let lost = inb.lost_below();
        assert!(lost > 0);
        assert_eq!(
            inb.decrypt(&Message::from_bytes(&msgs[0]).unwrap())
                .unwrap_err(),
            Error::TooOld
        );
        let kept = inb.missing_indices()[0];
        assert!(kept >= lost);
        assert!(
            inb.decrypt(&Message::from_bytes(&msgs[kept as usize]).unwrap())
                .is_ok()
        );
        assert_eq!(
            inb.decrypt(&Message::from_bytes(&msgs[kept as usize]).unwrap())
                .unwrap_err(),
            Error::Replay
        );
    }

    #[test]
    fn state_encoding_round_trips() {
        let (mut out, mut inb) = pair(SenderKeyMode::Signed, b"state");
        let m: Vec<_> = (0..6).map(|_| out.encrypt(b"m").unwrap()).collect();
        inb.decrypt(&Message::from_bytes(&m[3]).unwrap()).unwrap();
        inb.retire(5);
        let mut w = Writer::default();
        inb.encode_state(&mut w);
        assert_eq!(w.len(), inb.state_len());
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        let mut back = InboundSenderKey::decode_state(&mut r).unwrap();
        r.finish().unwrap();
        assert!(back == inb);
        assert_eq!(back.retired_end(), Some(5));
        assert!(back.decrypt(&Message::from_bytes(&m[1]).unwrap()).is_ok());
        assert_eq!(
            back.decrypt(&Message::from_bytes(&m[5]).unwrap())
                .unwrap_err(),
            Error::RetiredKeyIndex
        );
        // A skipped index at or above the retirement end is not canonical.
        let mut bad = bytes.clone();
        let end_at = bytes.len() - 3 * 36 - 4 - 32 - 4;
        bad[end_at..end_at + 4].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(
            InboundSenderKey::decode_state(&mut Reader::new(&bad)).unwrap_err(),
            DecodeError::InvalidValue
        );
        let mut w = Writer::default();
        out.encode_state(&mut w);
        assert_eq!(w.len(), out.state_len());
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        let mut out2 = OutboundSenderKey::decode_state(&mut r).unwrap();
        r.finish().unwrap();
        let salt = [9u8; 16];
        assert_eq!(
            out2.encrypt_with_rng(b"z", &mut VectorRng::new(&salt))
                .unwrap(),
            out.encrypt_with_rng(b"z", &mut VectorRng::new(&salt))
                .unwrap()
        );
    }

    /// Secrets a container holds are boxed: moving the key (into a map, a
    /// vector that grows) moves pointers, never the key bytes. The freed
    /// memory scan in `tests/freed-memory` checks the same end to end.
    #[test]
    fn secrets_in_containers_are_boxed() {
        let (out, mut inb) = pair(SenderKeyMode::Signed, b"box");
        let mut out = out;
        let m: Vec<_> = (0..4).map(|_| out.encrypt(b"m").unwrap()).collect();
        inb.decrypt(&Message::from_bytes(&m[3]).unwrap()).unwrap();
        let chain_at = core::ptr::from_ref::<ChainKey>(&inb.chain_key);
        let seed_at = core::ptr::from_ref::<MessageSeed>(&inb.skipped[&1]);
        let out_chain_at = core::ptr::from_ref::<ChainKey>(&out.chain_key);
        let mut moved = Vec::new();
        moved.push((out, inb));
        moved.reserve(100);
        let (out, inb) = moved.pop().unwrap();
        assert_eq!(core::ptr::from_ref::<ChainKey>(&inb.chain_key), chain_at);
        assert_eq!(
            core::ptr::from_ref::<MessageSeed>(&inb.skipped[&1]),
            seed_at
        );
        assert_eq!(
            core::ptr::from_ref::<ChainKey>(&out.chain_key),
            out_chain_at
        );
    }

    /// One receive-side negative vector: built by `make`, expected `error`.
    struct Negative {
        name: &'static str,
        receive_first: Vec<usize>,
        retire: Option<u32>,
        binding: Option<[u8; 32]>,
        message: Vec<u8>,
        error: Error,
    }

    /// Rebuilds the signature of a tampered signed message (so a test of a
    /// later check is not stopped by the signature).
    fn resign(wire: &mut Vec<u8>, header_len: usize, signer: &SigningKey) {
        wire.truncate(wire.len() - 64);
        let (header, body) = wire.split_at(header_len);
        let sig = signer.sign(&message::signature_input(header, body));
        wire.extend_from_slice(&sig.to_bytes());
    }

    fn negatives(
        out: &OutboundSenderKey,
        msgs: &[Vec<u8>],
        salt_rng: &mut VectorRng,
        initial: &[u8; 32],
    ) -> Vec<Negative> {
        let mode = out.mode;
        let m0 = &msgs[0];
        let header_len = Message::from_bytes(m0).unwrap().header().len();
        let signed = mode == SenderKeyMode::Signed;
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = m0.clone();
            f(&mut m);
            m
        };
        let mut v = vec![
            Negative {
                name: "version-1",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[0] = 1),
                error: Error::Malformed(DecodeError::UnsupportedVersion(1)),
            },
            Negative {
                name: "unknown-mode",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[1] = 3),
                error: Error::Malformed(DecodeError::InvalidValue),
            },
            Negative {
                name: "room-id-length-0",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[2] = 0),
                error: Error::Malformed(DecodeError::Empty),
            },
            Negative {
                name: "room-id-length-65",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[2] = 65),
                error: Error::Malformed(DecodeError::LengthLimit),
            },
            Negative {
                name: "header-truncated",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: m0[..header_len - 1].to_vec(),
                error: Error::Malformed(DecodeError::Truncated),
            },
            Negative {
                name: "body-too-short",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: m0[..header_len + 47 + if signed { 64 } else { 0 }].to_vec(),
                error: Error::Malformed(DecodeError::Truncated),
            },
            Negative {
                name: "body-not-a-padme-bucket",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m.push(0)),
                error: Error::Malformed(DecodeError::InvalidValue),
            },
            Negative {
                name: "other-room",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[3] ^= 1),
                error: Error::NotForMe,
            },
            Negative {
                name: "other-sender-key",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[header_len - 68] ^= 1),
                error: Error::NotForMe,
            },
            Negative {
                name: "replay",
                receive_first: vec![0],
                retire: None,
                binding: None,
                message: m0.clone(),
                error: Error::Replay,
            },
            Negative {
                name: "index-at-retired-end",
                receive_first: vec![],
                retire: Some(3),
                binding: None,
                message: msgs[3].clone(),
                error: Error::RetiredKeyIndex,
            },
        ];
        // Header fields checked after the signature: in signed mode a change
        // is a bad signature; the pairwise receiver reaches the later check.
        let later = |e: Error| if signed { Error::BadSignature } else { e };
        v.extend([
            Negative {
                name: "index-too-far-ahead",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| {
                    m[header_len - 52..header_len - 48].copy_from_slice(&2001u32.to_be_bytes())
                }),
                error: later(Error::TooFarAhead),
            },
            Negative {
                name: "salt-changed",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[header_len - 48] ^= 1),
                error: later(Error::CommitmentMismatch),
            },
            Negative {
                name: "commitment-changed",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[header_len - 1] ^= 1),
                error: later(Error::CommitmentMismatch),
            },
            Negative {
                name: "ciphertext-bit-flip",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| m[header_len] ^= 1),
                error: later(Error::Tampered),
            },
            Negative {
                name: "receiver-binding-differs",
                receive_first: vec![],
                retire: None,
                binding: Some([0; 32]),
                message: m0.clone(),
                error: if signed {
                    Error::BadPossessionProof
                } else {
                    Error::CommitmentMismatch
                },
            },
        ]);
        if let Some(signer) = out.signing.as_deref() {
            let signer = signer.clone();
            v.push(Negative {
                name: "signature-bit-flip",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| *m.last_mut().unwrap() ^= 1),
                error: Error::BadSignature,
            });
            v.push(Negative {
                name: "signature-stripped-mode-pairwise",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| {
                    m.truncate(m.len() - 64);
                    m[1] = SenderKeyMode::Pairwise.to_byte();
                }),
                error: Error::SignatureRequired,
            });
            v.push(Negative {
                name: "commitment-changed-resigned",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| {
                    m[header_len - 1] ^= 1;
                    resign(m, header_len, &signer);
                }),
                error: Error::CommitmentMismatch,
            });
            v.push(Negative {
                name: "ciphertext-bit-flip-resigned",
                receive_first: vec![],
                retire: None,
                binding: None,
                message: with(&|m| {
                    m[header_len] ^= 1;
                    resign(m, header_len, &signer);
                }),
                error: Error::Tampered,
            });
        }
        // A correctly encrypted (and signed) message whose padding is not
        // canonical: 0x81 instead of 0x80 after the plaintext, at index 0.
        let mut salt = [0u8; 16];
        rand_core::Rng::fill_bytes(salt_rng, &mut salt);
        v.push(Negative {
            name: "bad-padding",
            receive_first: vec![],
            retire: None,
            binding: None,
            message: bad_padding_message(out, initial, &salt),
            error: Error::BadPadding,
        });
        v
    }

    /// A message at `index` under `out`'s chain whose padding is `0x81 00*`.
    fn bad_padding_message(
        out: &OutboundSenderKey,
        initial: &[u8; 32],
        salt: &[u8; 16],
    ) -> Vec<u8> {
        let (_, seed) = ChainKey(*initial).step();
        let keys = seed.keys(salt, &out.binding);
        let header = message::Header {
            mode: out.mode,
            room_id: out.room.as_bytes(),
            epoch: out.epoch,
            sender_key: out.id,
            index: 0,
            salt: *salt,
            commitment: keys.commitment,
        };
        message::seal_padded(&header, &keys, 32, out.signing.as_deref(), |b| {
            b.extend_from_slice(b"bad padding");
            b.push(0x81);
        })
        .unwrap()
    }

    /// (name, share plaintext, receiver binding if not the case's, error).
    type ShareNegative = (&'static str, Vec<u8>, Option<[u8; 32]>, Error);

    fn message_vectors() -> Value {
        let owner = SigningKey::from_bytes(&[0x0a; 32])
            .verifying_key()
            .to_bytes();
        let mut cases = Vec::new();
        let mut negative = Vec::new();
        let mut negative_shares = Vec::new();
        for (case_no, (mode, seed, room_id, epoch, predecessor_end)) in [
            (
                SenderKeyMode::Signed,
                &b"message-vector-signed"[..],
                &b"room-group-1"[..],
                7u32,
                12u32,
            ),
            (
                SenderKeyMode::Pairwise,
                &b"message-vector-pairwise"[..],
                &b"room-1:1"[..],
                0u32,
                0u32,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let instance = [case_no as u8 + 1; 32];
            let binding = sender_key_binding(&room(room_id), &owner, &instance, epoch);
            let mut out = OutboundSenderKey::new_with_rng(
                room(room_id),
                epoch,
                mode,
                binding,
                predecessor_end,
                &mut VectorRng::new(seed),
            );
            let share = out.share();
            let share_pt = share.to_share_plaintext().unwrap();
            let salt_seed = [seed, b"/salt"].concat();
            let mut salt_rng = VectorRng::new(&salt_seed);
            let mut msgs = Vec::new();
            let mut wires = Vec::new();
            for i in 0..6u32 {
                let chain_key = out.chain_key.0;
                let plaintext = format!("message {i} of a {mode:?} chain").into_bytes();
                let mut padded = plaintext.clone();
                padded.push(0x80);
                padded.resize(message::padded_len(plaintext.len() + 1), 0);
                let wire = out.encrypt_with_rng(&plaintext, &mut salt_rng).unwrap();
                let parsed = Message::from_bytes(&wire).unwrap();
                let salt = *parsed.salt();
                let (next, msg_seed) = ChainKey(chain_key).step();
                let keys = msg_seed.keys(&salt, &binding);
                assert_eq!(next.0, out.chain_key.0);
                assert_eq!(parsed.commitment(), &keys.commitment);
                msgs.push(json!({
                    "index": i,
                    "chain_key": hex(&chain_key),
                    "message_seed": hex(&msg_seed.0),
                    "next_chain_key": hex(&next.0),
                    "salt": hex(&salt),
                    "aes_key": hex(&keys.key),
                    "nonce": hex(&keys.nonce),
                    "commitment": hex(&keys.commitment),
                    "plaintext": hex(&plaintext),
                    "padded": hex(&padded),
                    "header": hex(parsed.header()),
                    "message": hex(&wire),
                }));
                wires.push(wire);
            }
            let mode_name = format!("{mode:?}").to_lowercase();
            let initial = share.chain_key.0;
            for n in negatives(&out, &wires, &mut salt_rng, &initial) {
                // Check the documented outcome against the code now.
                let mut inb = InboundSenderKey::new(
                    room(room_id),
                    epoch,
                    share.clone(),
                    n.binding.unwrap_or(binding),
                );
                let got = match &mut inb {
                    Err(e) => Err(e.clone()),
                    Ok(inb) => {
                        for &i in &n.receive_first {
                            inb.decrypt(&Message::from_bytes(&wires[i]).unwrap())
                                .unwrap();
                        }
                        if let Some(end) = n.retire {
                            inb.retire(end);
                        }
                        Message::from_bytes(&n.message).and_then(|m| inb.decrypt(&m).map(|_| ()))
                    }
                };
                assert_eq!(got, Err(n.error.clone()), "{mode_name} {}", n.name);
                negative.push(json!({
                    "case": case_no,
                    "name": n.name,
                    "receive_first": n.receive_first,
                    "retire": n.retire,
                    "receiver_binding": n.binding.map(|b| hex(&b)),
                    "message": hex(&n.message),
                    "error": format!("{:?}", n.error),
                }));
            }
            let mut share_negs: Vec<ShareNegative> = vec![
                (
                    "truncated",
                    share_pt[..share_pt.len() - 1].to_vec(),
                    None,
                    Error::Malformed(DecodeError::Truncated),
                ),
                (
                    "trailing-byte",
                    [&share_pt[..], &[0]].concat(),
                    None,
                    Error::Malformed(DecodeError::TrailingBytes),
                ),
                (
                    "unknown-mode",
                    [&[3u8][..], &share_pt[1..]].concat(),
                    None,
                    Error::Malformed(DecodeError::InvalidValue),
                ),
            ];
            if mode == SenderKeyMode::Signed {
                let mut id = share_pt.to_vec();
                id[1] ^= 1;
                let mut proof = share_pt.to_vec();
                proof[SHARE_PLAINTEXT_SIGNED_LEN - 5] ^= 1;
                share_negs.extend([
                    ("id-not-derived", id, None, Error::SenderKeyIdMismatch),
                    (
                        "possession-bit-flip",
                        proof,
                        None,
                        Error::BadPossessionProof,
                    ),
                    (
                        "possession-other-binding",
                        share_pt.to_vec(),
                        Some([0; 32]),
                        Error::BadPossessionProof,
                    ),
                ]);
            }
            for (name, pt, other, err) in share_negs {
                let got = SharedSenderKey::from_share_plaintext(&pt).and_then(|k| {
                    InboundSenderKey::new(room(room_id), epoch, k, other.unwrap_or(binding))
                });
                assert_eq!(got.map(|_| ()), Err(err.clone()), "share {name}");
                negative_shares.push(json!({
                    "case": case_no,
                    "name": name,
                    "share_plaintext": hex(&pt),
                    "receiver_binding": other.map(|b| hex(&b)),
                    "error": format!("{err:?}"),
                }));
            }
            cases.push(json!({
                "mode": mode_name,
                "rng_seed": hex(seed),
                "salt_rng_seed": hex(&salt_seed),
                "room_id": hex(room_id),
                "epoch": epoch,
                "owner": hex(&owner),
                "instance": hex(&instance),
                "binding": hex(&binding),
                "sender_key_id": hex(share.id.as_bytes()),
                "initial_chain_key": hex(&share.chain_key.0),
                "signing_seed": out.signing.as_ref().map(|k| hex(k.as_bytes())),
                "signing_public": share.signing_public.as_ref().map(|k| hex(k.as_bytes())),
                "possession": share.possession.map(|p| hex(&p)),
                "predecessor_end": predecessor_end,
                "share_plaintext": hex(&share_pt),
                "messages": msgs,
                "receive_order": [0, 3, 1, 5, 2, 4],
            }));
        }
        json!({
            "description": "secret-chat message vectors, protocol version 2 (docs/PROTOCOL.md \
                section 4). Sender keys from VectorRng(rng_seed): 32-byte chain key, then the \
                32-byte Ed25519 seed (signed) or the 16-byte id (pairwise). Salts: 16 bytes per \
                message, in order, from VectorRng(salt_rng_seed); the bad-padding negative takes \
                the next 16. owner/instance/epoch/room give the binding. receive_order exercises \
                skipped keys. negative: a fresh receiver (case's share, receiver_binding or the \
                case binding) that first decrypts receive_first and retires at retire, then gets \
                message: error. negative_shares: the share plaintext parsed and installed \
                under receiver_binding (or the case binding): error.",
            "cases": cases,
            "negative": negative,
            "negative_shares": negative_shares,
        })
    }

    /// The published vectors equal what the code produces; with
    /// `REGENERATE_VECTORS=1` the file is rewritten instead.
    #[test]
    fn message_vectors_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/message.json");
        let fresh = message_vectors();
        if std::env::var_os("REGENERATE_VECTORS").is_some() {
            std::fs::write(path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
        }
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(stored, fresh, "tests/vectors/message.json is stale");
    }
}
