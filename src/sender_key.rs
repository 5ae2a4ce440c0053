//! Sender keys: the seed product's "secret key", one per member, room and epoch.
//!
//! A sender key is a 32-byte chain key, the index of the next message, a
//! random 16-byte id and, in group rooms, a fresh Ed25519 signing key used
//! only for this sender key's messages. The owner holds an
//! [`OutboundSenderKey`]; every other member holds an [`InboundSenderKey`]
//! built from the [`SharedSenderKey`] its key share carried.
//!
//! # Key schedule
//!
//! ```text
//! seed_i        = HMAC-SHA256(chain_key_i, 0x01)
//! chain_key_i+1 = HMAC-SHA256(chain_key_i, 0x02)
//! key_i || nonce_i = HKDF-SHA256-Expand(PRK = seed_i, info = "secret-chat/v1/message-key", L = 44)
//! ```
//!
//! Each message key is used once. A chain key is overwritten by its successor
//! as soon as it is used, so a stolen state cannot decrypt earlier messages
//! (forward secrecy within the chain); skipped seeds are erased when used or
//! evicted.

use crate::error::{DecodeError, Error};
use crate::ids::{RoomId, SenderKeyId};
use crate::labels;
use crate::limits::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_LEN, MAX_ROOM_ID_LEN, MAX_SKIPPED_KEYS};
use crate::message::{self, Decrypted, Message};
use crate::wire::{Reader, Writer};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
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

/// A 32-byte chain key. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey(pub(crate) [u8; 32]);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// A 32-byte message seed (the HKDF PRK of one message). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageSeed(pub(crate) [u8; 32]);

/// The AES-256-GCM key and nonce of one message. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) key: [u8; 32],
    pub(crate) nonce: [u8; 12],
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
}

impl MessageSeed {
    /// Expands the seed to the message's AES-256-GCM key and nonce.
    pub(crate) fn keys(&self) -> MessageKeys {
        let mut okm = Zeroizing::new([0u8; 44]);
        let expanded = hkdf::Hkdf::<Sha256>::from_prk(&self.0)
            .ok()
            .and_then(|h| h.expand(labels::MESSAGE_KEY_INFO, okm.as_mut_slice()).ok());
        let mut keys = MessageKeys {
            key: [0; 32],
            nonce: [0; 12],
        };
        if expanded.is_some() {
            keys.key.copy_from_slice(&okm[..32]);
            keys.nonce.copy_from_slice(&okm[32..]);
        }
        // A 32-byte PRK and a 44-byte output are always valid for HKDF-SHA256.
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

    /// The public half of the sender key's signing key (group mode only).
    pub fn signing_public(&self) -> Option<&VerifyingKey> {
        self.signing_public.as_ref()
    }
}

/// Length of a pairwise sender key in a key share's plaintext: mode, id,
/// index, chain key.
pub(crate) const SHARE_PLAINTEXT_PAIRWISE_LEN: usize = 1 + 16 + 4 + 32;
/// Length of a signed sender key in a key share's plaintext: the pairwise
/// fields, then the sender key's Ed25519 public key.
pub(crate) const SHARE_PLAINTEXT_SIGNED_LEN: usize = SHARE_PLAINTEXT_PAIRWISE_LEN + 32;

impl SharedSenderKey {
    /// The plaintext a key share carries (see `docs/PROTOCOL.md`): mode, id,
    /// index, chain key and, for signed keys, the signing public key.
    pub(crate) fn to_share_plaintext(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut pt = Zeroizing::new(Vec::with_capacity(SHARE_PLAINTEXT_SIGNED_LEN));
        pt.push(self.mode.to_byte());
        pt.extend_from_slice(self.id.as_bytes());
        pt.extend_from_slice(&self.index.to_be_bytes());
        pt.extend_from_slice(&self.chain_key.0);
        match (self.mode, &self.signing_public) {
            (SenderKeyMode::Signed, Some(public)) => pt.extend_from_slice(public.as_bytes()),
            (SenderKeyMode::Pairwise, None) => {}
            _ => return Err(Error::Malformed(DecodeError::InvalidValue)),
        }
        Ok(pt)
    }

    /// Parses what [`to_share_plaintext`](Self::to_share_plaintext) wrote
    /// (total: a value or a typed error).
    pub(crate) fn from_share_plaintext(pt: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(pt);
        let mode =
            SenderKeyMode::from_byte(r.u8()?).ok_or(Error::Malformed(DecodeError::InvalidValue))?;
        let id = SenderKeyId::from_bytes(r.array()?);
        let index = r.u32()?;
        let mut chain_key = Zeroizing::new([0u8; 32]);
        chain_key.copy_from_slice(r.bytes(32)?);
        let signing_public = match mode {
            SenderKeyMode::Signed => Some(crate::identity::parse_ed25519_public(&r.array()?)?),
            SenderKeyMode::Pairwise => None,
        };
        r.finish()?;
        SharedSenderKey::new(id, mode, index, &chain_key, signing_public)
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

/// My own sender key in one room and epoch: encrypts my messages.
///
/// ```
/// use secret_chat::{OutboundSenderKey, InboundSenderKey, RoomId, SenderKeyMode, Message};
/// let room = RoomId::new(b"room-1").unwrap();
/// let mut mine = OutboundSenderKey::new(room.clone(), 0, SenderKeyMode::Signed);
/// // What a key share carries to the other members:
/// let mut theirs = InboundSenderKey::new(room, 0, mine.share());
/// let wire = mine.encrypt(b"hello").unwrap();
/// let got = theirs.decrypt(&Message::from_bytes(&wire).unwrap()).unwrap();
/// assert_eq!(got.plaintext(), b"hello");
/// ```
pub struct OutboundSenderKey {
    room: RoomId,
    epoch: u32,
    id: SenderKeyId,
    mode: SenderKeyMode,
    index: u32,
    chain_key: ChainKey,
    signing: Option<SigningKey>,
}

impl OutboundSenderKey {
    /// A fresh sender key from the OS RNG.
    pub fn new(room: RoomId, epoch: u32, mode: SenderKeyMode) -> Self {
        Self::new_with_rng(room, epoch, mode, &mut crate::rng::os_rng())
    }

    /// A fresh sender key from `rng`: draws the 16-byte id, the 32-byte chain
    /// key and (signed mode) the 32-byte Ed25519 seed, in that order.
    pub fn new_with_rng<R: CryptoRng + ?Sized>(
        room: RoomId,
        epoch: u32,
        mode: SenderKeyMode,
        rng: &mut R,
    ) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut chain_key = ChainKey([0; 32]);
        rng.fill_bytes(&mut chain_key.0);
        let signing = match mode {
            SenderKeyMode::Signed => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut_slice());
                Some(SigningKey::from_bytes(&seed))
            }
            SenderKeyMode::Pairwise => None,
        };
        Self {
            room,
            epoch,
            id: SenderKeyId(id),
            mode,
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
    /// key was created here).
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

    /// What a key share carries: the current chain key and index, so a
    /// receiver can read every message from now on and nothing before.
    pub fn share(&self) -> SharedSenderKey {
        SharedSenderKey {
            id: self.id,
            mode: self.mode,
            index: self.index,
            chain_key: self.chain_key.clone(),
            signing_public: self.signing.as_ref().map(SigningKey::verifying_key),
        }
    }

    /// Encrypts (and in signed mode signs) one message; advances the ratchet
    /// and erases the used chain key.
    ///
    /// Fails with [`Error::LimitExceeded`] above
    /// [`MAX_PLAINTEXT_LEN`] and with
    /// [`Error::ChainExhausted`] after 2^32 - 1 messages; the state is then
    /// unchanged.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::LimitExceeded);
        }
        let next_index = self.index.checked_add(1).ok_or(Error::ChainExhausted)?;
        let (next_chain, seed) = self.chain_key.step();
        let keys = seed.keys();
        let header = message::Header {
            mode: self.mode,
            room_id: self.room.as_bytes(),
            epoch: self.epoch,
            sender_key: self.id,
            index: self.index,
        };
        let out = message::seal(&header, &keys, plaintext, self.signing.as_ref())?;
        self.chain_key = next_chain;
        self.index = next_index;
        Ok(out)
    }

    /// Length of [`encode_state`](Self::encode_state)'s output.
    pub(crate) fn state_len(&self) -> usize {
        let signing = if self.signing.is_some() { 32 } else { 0 };
        1 + self.room.as_bytes().len() + 4 + 16 + 1 + 4 + 32 + signing
    }

    /// Appends the full state (secrets included) for the encrypted storage:
    /// `room (u8 len) | epoch u32 | id (16) | mode u8 | index u32 |
    /// chain key (32) | [Ed25519 seed (32), signed mode only]`.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        write_key_header(w, &self.room, self.epoch, self.id, self.mode);
        w.u32(self.index).bytes(&self.chain_key.0);
        if let Some(s) = &self.signing {
            w.bytes(s.as_bytes());
        }
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote.
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (room, epoch, id, mode) = read_key_header(r)?;
        let index = r.u32()?;
        let chain_key = ChainKey(r.array()?);
        let signing = match mode {
            SenderKeyMode::Signed => {
                let seed = Zeroizing::new(r.array::<32>()?);
                Some(SigningKey::from_bytes(&seed))
            }
            SenderKeyMode::Pairwise => None,
        };
        Ok(Self {
            room,
            epoch,
            id,
            mode,
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

/// Another member's sender key, as its key share delivered it: decrypts
/// that member's messages, out of order within limits, each exactly once.
pub struct InboundSenderKey {
    room: RoomId,
    epoch: u32,
    id: SenderKeyId,
    mode: SenderKeyMode,
    signing_public: Option<VerifyingKey>,
    /// First index the share allowed; anything earlier is [`Error::TooOld`].
    first_index: u32,
    /// Index `chain_key` belongs to: every index below it was received,
    /// skipped (seed in `skipped`) or evicted.
    next_index: u32,
    chain_key: ChainKey,
    /// Seeds of skipped indices, oldest evicted beyond `MAX_SKIPPED_KEYS`.
    skipped: BTreeMap<u32, MessageSeed>,
    /// Every index below this that is not in `skipped` is gone for good:
    /// received or evicted, reported as [`Error::TooOld`].
    evicted_below: u32,
}

impl InboundSenderKey {
    /// Builds the receiving half from what a key share carried.
    pub fn new(room: RoomId, epoch: u32, shared: SharedSenderKey) -> Self {
        Self {
            room,
            epoch,
            id: shared.id,
            mode: shared.mode,
            signing_public: shared.signing_public,
            first_index: shared.index,
            next_index: shared.index,
            chain_key: shared.chain_key.clone(),
            skipped: BTreeMap::new(),
            evicted_below: shared.index,
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

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
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
    /// Order: the header must name this key, room and epoch; in signed mode
    /// the signature is verified first; then replay and jump limits are
    /// checked (before any ratchet work); then the key is derived on a copy
    /// and the AEAD opened. Only a message that passed every check changes
    /// the state; any failure leaves it exactly as it was.
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
            let plaintext = msg.open(&seed.keys())?;
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
        let mut chain = self.chain_key.clone();
        let mut new_skipped = Vec::with_capacity(jump as usize);
        for i in self.next_index..index {
            let (next, seed) = chain.step();
            new_skipped.push((i, seed));
            chain = next;
        }
        let (next, seed) = chain.step();
        let plaintext = msg.open(&seed.keys())?;
        self.chain_key = next;
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
            + signing
            + 12
            + 32
            + 4
            + self.skipped.len() * 36
    }

    /// Appends the full state (secrets included) for the encrypted storage:
    /// `room (u8 len) | epoch u32 | id (16) | mode u8 | [Ed25519 public (32),
    /// signed mode only] | first_index u32 | next_index u32 |
    /// evicted_below u32 | chain key (32) | count u32 | count x (index u32,
    /// seed (32))`, skipped indices strictly increasing.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        write_key_header(w, &self.room, self.epoch, self.id, self.mode);
        if let Some(k) = &self.signing_public {
            w.bytes(k.as_bytes());
        }
        w.u32(self.first_index)
            .u32(self.next_index)
            .u32(self.evicted_below)
            .bytes(&self.chain_key.0)
            .u32(self.skipped.len() as u32);
        for (i, seed) in &self.skipped {
            w.u32(*i).bytes(&seed.0);
        }
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote, checking the
    /// index invariants and the order of the skipped keys.
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (room, epoch, id, mode) = read_key_header(r)?;
        let signing_public = match mode {
            SenderKeyMode::Signed => Some(
                crate::identity::parse_ed25519_public(&r.array()?)
                    .map_err(|_| DecodeError::InvalidValue)?,
            ),
            SenderKeyMode::Pairwise => None,
        };
        let first_index = r.u32()?;
        let next_index = r.u32()?;
        let evicted_below = r.u32()?;
        let chain_key = ChainKey(r.array()?);
        if first_index > evicted_below || evicted_below > next_index {
            return Err(DecodeError::InvalidValue);
        }
        let n = r.count32(MAX_SKIPPED_KEYS, 36)?;
        let mut skipped = BTreeMap::new();
        let mut last = None;
        for _ in 0..n {
            let i = r.u32()?;
            // Strictly increasing (canonical), within [evicted_below, next_index).
            if last.is_some_and(|l| i <= l) || i < evicted_below || i >= next_index {
                return Err(DecodeError::InvalidValue);
            }
            last = Some(i);
            skipped.insert(i, MessageSeed(r.array()?));
        }
        Ok(Self {
            room,
            epoch,
            id,
            mode,
            signing_public,
            first_index,
            next_index,
            chain_key,
            skipped,
            evicted_below,
        })
    }
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

/// Reads a room id as the sender-key states encode it (`u8` length, bytes).
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

pub(crate) fn read_room(r: &mut Reader<'_>) -> Result<RoomId, DecodeError> {
    let n = usize::from(r.u8()?);
    if n > MAX_ROOM_ID_LEN {
        return Err(DecodeError::LengthLimit);
    }
    RoomId::new(r.bytes(n)?).map_err(|_| DecodeError::LengthLimit)
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

    fn room(name: &[u8]) -> RoomId {
        RoomId::new(name).unwrap()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn pair(mode: SenderKeyMode, seed: &[u8]) -> (OutboundSenderKey, InboundSenderKey) {
        let out = OutboundSenderKey::new_with_rng(room(b"r"), 3, mode, &mut VectorRng::new(seed));
        let inb = InboundSenderKey::new(room(b"r"), 3, out.share());
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
                "SharedSenderKey {{ id: {:?}, mode: Signed, index: 0, .. }}",
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

    #[test]
    fn too_far_jump_is_refused_before_any_ratchet_work() {
        for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
            let (mut out, mut inb) = pair(mode, b"jump");
            // Let the sender legitimately run ahead.
            for _ in 0..=MAX_FORWARD_JUMP {
                out.encrypt(b"x").unwrap();
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
        let m: Vec<_> = (0..5).map(|_| out.encrypt(b"m").unwrap()).collect();
        inb.decrypt(&Message::from_bytes(&m[3]).unwrap()).unwrap();
        let mut w = Writer::default();
        inb.encode_state(&mut w);
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        let mut back = InboundSenderKey::decode_state(&mut r).unwrap();
        r.finish().unwrap();
        assert!(back == inb);
        assert!(back.decrypt(&Message::from_bytes(&m[1]).unwrap()).is_ok());
        let mut w = Writer::default();
        out.encode_state(&mut w);
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        let mut out2 = OutboundSenderKey::decode_state(&mut r).unwrap();
        assert_eq!(out2.encrypt(b"z").unwrap(), out.encrypt(b"z").unwrap());
    }

    fn message_vectors() -> Value {
        let mut cases = Vec::new();
        for (mode, seed, room_id, epoch) in [
            (
                SenderKeyMode::Signed,
                &b"message-vector-signed"[..],
                &b"room-group-1"[..],
                7u32,
            ),
            (
                SenderKeyMode::Pairwise,
                &b"message-vector-pairwise"[..],
                &b"room-1:1"[..],
                0u32,
            ),
        ] {
            let mut out = OutboundSenderKey::new_with_rng(
                room(room_id),
                epoch,
                mode,
                &mut VectorRng::new(seed),
            );
            let share = out.share();
            let mut msgs = Vec::new();
            for i in 0..6u32 {
                let chain_key = hex(&out.chain_key.0);
                let (_, msg_seed) = out.chain_key.step();
                let keys = msg_seed.keys();
                let plaintext = format!("message {i} of a {mode:?} chain").into_bytes();
                let wire = out.encrypt(&plaintext).unwrap();
                msgs.push(json!({
                    "index": i,
                    "chain_key": chain_key,
                    "message_seed": hex(&msg_seed.0),
                    "aes_key": hex(&keys.key),
                    "nonce": hex(&keys.nonce),
                    "plaintext": hex(&plaintext),
                    "message": hex(&wire),
                }));
            }
            cases.push(json!({
                "mode": format!("{mode:?}").to_lowercase(),
                "rng_seed": hex(seed),
                "room_id": hex(room_id),
                "epoch": epoch,
                "sender_key_id": hex(share.id.as_bytes()),
                "initial_chain_key": hex(&share.chain_key.0),
                "signing_seed": out.signing.as_ref().map(|k| hex(k.as_bytes())),
                "signing_public": share.signing_public.map(|k| hex(k.as_bytes())),
                "messages": msgs,
                "receive_order": [0, 3, 1, 5, 2, 4],
            }));
        }
        json!({
            "description": "secret-chat v1 message vectors: sender keys from VectorRng(rng_seed) \
                (16-byte id, 32-byte chain key, then 32-byte Ed25519 seed in signed mode), six \
                messages each; receive_order exercises skipped keys. See docs/PROTOCOL.md section 4.",
            "cases": cases,
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
