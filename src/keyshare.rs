//! Key shares: wrapping a sender key (the seed product's "secret key") to
//! each member's public identity, and opening it again.
//!
//! The seed product wraps one unsigned room secret with RSA-OAEP-SHA1, and its
//! relay can swap a member's public key and re-wrap the secret unnoticed. Here
//! every share is
//!
//! - encrypted with HPKE (RFC 9180) base mode, suite DHKEM(X25519,
//!   HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, to the recipient's pinned
//!   X25519 key, with an HPKE `info` that binds the protocol label and
//!   version, the room id, the epoch, and the full encodings of the sender and
//!   recipient identities;
//! - signed, header, encapsulated key and ciphertext, by the sender's identity
//!   key; the recipient verifies that signature with the identity the room
//!   pinned for the sender *before* any HPKE work.
//!
//! So a relay can neither plant its own sender key (it cannot sign as the
//! pinned sender), nor move a share to another recipient, room or epoch (the
//! header says so, and the `info` would not match), nor change a single bit.
//!
//! ```
//! use secret_chat::{keyshare, IdentityKeyPair, RoomId, SenderKeyMode};
//! use secret_chat::testing::shared_sender_key;
//!
//! let alice = IdentityKeyPair::generate();
//! let bob = IdentityKeyPair::generate();
//! let room = RoomId::new(b"room-1").unwrap();
//! let key = shared_sender_key([7; 16], SenderKeyMode::Pairwise, 0, &[9; 32], None).unwrap();
//!
//! let shares = keyshare::seal_shares(&alice, &room, 3, &key, &[bob.public()]).unwrap();
//! let bytes = shares[0].to_bytes();
//! // Bob pinned Alice's identity when she joined the room.
//! let opened = keyshare::open_share(&bytes, &bob, alice.public(), &room, 3).unwrap();
//! assert_eq!(opened, key);
//! // The same share is refused in another epoch.
//! assert!(keyshare::open_share(&bytes, &bob, alice.public(), &room, 4).is_err());
//! ```

use crate::error::{DecodeError, Error};
use crate::identity::{
    self, IDENTITY_ID_LEN, IdentityId, IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity,
};
use crate::ids::{RoomId, SenderKeyId};
use crate::labels;
use crate::limits::{MAX_MEMBERS, MAX_ROOM_ID_LEN};
use crate::sender_key::{SenderKeyMode, SharedSenderKey};
use crate::wire::{Reader, Writer};
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::Signature;
use hpke::{Deserializable, HpkeError, Kem as KemTrait, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

/// Length of the HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of the identity signature that ends every share.
pub const SIGNATURE_LEN: usize = 64;
/// Length of the AES-256-GCM tag inside the ciphertext.
const TAG_LEN: usize = 16;
/// Plaintext of a pairwise sender key: mode, id, index, chain key.
const PLAINTEXT_PAIRWISE_LEN: usize = 1 + 16 + 4 + 32;
/// Plaintext of a signed sender key: the pairwise fields, then the sender
/// key's Ed25519 public key.
const PLAINTEXT_SIGNED_LEN: usize = PLAINTEXT_PAIRWISE_LEN + 32;
/// Longest ciphertext a share may carry: a signed sender key's plaintext plus
/// the tag. The only other valid length is the pairwise one; every other
/// length is rejected while parsing.
pub const MAX_CIPHERTEXT_LEN: usize = PLAINTEXT_SIGNED_LEN + TAG_LEN;
/// Header length without the room id: version, suite, room-id length,
/// epoch, sender id, recipient id.
const HEADER_FIXED_LEN: usize = 1 + 1 + 1 + 4 + IDENTITY_ID_LEN + IDENTITY_ID_LEN;

/// One sender key wrapped to one recipient and signed by the sender.
///
/// Parsed from untrusted bytes by [`from_bytes`](Self::from_bytes), which
/// checks structure only; the contents are usable only through
/// [`open`](Self::open), which checks the addressing and the signature
/// against the identity the room pinned, then decrypts.
///
/// # Encoding (all integers big-endian)
///
/// ```text
///  header (= HPKE aad):
///  +------+-------+--------+-----------------+-----------+-----------------+--------------------+
///  | 0x01 | suite | rlen   | room id (rlen)  | epoch u32 | sender id (16)  | recipient id (16)  |
///  | ver  | 0x01  | 1..=64 |                 |           | IdentityId      | IdentityId         |
///  +------+-------+--------+-----------------+-----------+-----------------+--------------------+
///  then:
///  +----------+----------+----------------------------+-----------------------+
///  | enc (32) | clen u16 | HPKE ciphertext (clen)     | identity signature    |
///  |          | 69 | 101 | = plaintext + 16-byte tag  | (64)                  |
///  +----------+----------+----------------------------+-----------------------+
///  signature = Ed25519(sender identity, "secret-chat/v1/key-share/signature"
///                                       || every byte before the signature)
///  info = "secret-chat/v1/key-share/info" || 0x01 || suite || rlen || room id
///         || epoch || sender PublicIdentity (129) || recipient PublicIdentity (129)
///  plaintext = mode (1: signed, 2: pairwise) || sender key id (16) || index u32
///              || chain key (32) || [sender key Ed25519 public (32), iff signed]
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    room: RoomId,
    epoch: u32,
    sender: IdentityId,
    recipient: IdentityId,
    header_len: usize,
    enc: [u8; ENC_LEN],
    ciphertext: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    encoded: Vec<u8>,
}

impl KeyShare {
    /// Parses a share, checking structure only: version, suite, lengths, a
    /// canonical encapsulated key, no trailing bytes. Nothing is trusted
    /// until [`open`](Self::open) succeeds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let suite = r.u8()?;
        if suite != labels::SUITE_X25519_AES256GCM {
            return Err(DecodeError::UnsupportedSuite(suite).into());
        }
        let room_len = usize::from(r.u8()?);
        if room_len == 0 || room_len > MAX_ROOM_ID_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let room = RoomId::new(r.bytes(room_len)?)?;
        let epoch = r.u32()?;
        let sender = IdentityId::from_bytes(r.array()?);
        let recipient = IdentityId::from_bytes(r.array()?);
        let header_len = bytes.len().saturating_sub(r.remaining());
        let enc: [u8; ENC_LEN] = r.array()?;
        let ciphertext = r.vec16(MAX_CIPHERTEXT_LEN)?;
        if ciphertext.len() != PLAINTEXT_PAIRWISE_LEN + TAG_LEN
            && ciphertext.len() != PLAINTEXT_SIGNED_LEN + TAG_LEN
        {
            return Err(DecodeError::InvalidValue.into());
        }
        let ciphertext = ciphertext.to_vec();
        let signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        if !identity::is_canonical_field_element(&enc) {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(Self {
            room,
            epoch,
            sender,
            recipient,
            header_len,
            enc,
            ciphertext,
            signature,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding (exactly the bytes it was parsed from).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The canonical encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The room the share claims to be for (unauthenticated until opened).
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The epoch the share claims to be for (unauthenticated until opened).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The identity id of the claimed sender (unauthenticated until opened):
    /// lets the app find the identity it pinned for this sender.
    pub fn sender(&self) -> IdentityId {
        self.sender
    }

    /// The identity id of the recipient the share is addressed to.
    pub fn recipient(&self) -> IdentityId {
        self.recipient
    }

    /// Opens a share addressed to `me`, from `sender`, the identity the room
    /// pinned for that member, for `room` in `epoch`.
    ///
    /// Checks, in this order, each with its own error and without touching
    /// any state: recipient, room and epoch ([`Error::NotForMe`]); the
    /// claimed sender is the pinned one and the signature verifies strictly
    /// under its identity key ([`Error::BadSignature`]); HPKE decapsulation
    /// does not hit a low-order encapsulated key ([`Error::WeakKey`]);
    /// HPKE decryption ([`Error::Tampered`]); the plaintext is well formed
    /// ([`Error::Malformed`], [`Error::WeakKey`] for a weak signing key).
    pub fn open(
        &self,
        me: &IdentityKeyPair,
        sender: &PublicIdentity,
        room: &RoomId,
        epoch: u32,
    ) -> Result<SharedSenderKey, Error> {
        if self.recipient != me.id() || &self.room != room || self.epoch != epoch {
            return Err(Error::NotForMe);
        }
        if self.sender != sender.id() {
            return Err(Error::BadSignature);
        }
        let signed = self
            .encoded
            .get(..self.encoded.len().saturating_sub(SIGNATURE_LEN))
            .ok_or(Error::Malformed(DecodeError::Truncated))?;
        let mut message = Vec::with_capacity(labels::KEY_SHARE_SIGNATURE.len() + signed.len());
        message.extend_from_slice(labels::KEY_SHARE_SIGNATURE);
        message.extend_from_slice(signed);
        sender.verify(&message, &Signature::from_bytes(&self.signature))?;

        let mut info = info_prefix(room, epoch, sender);
        info.extend_from_slice(me.public().as_bytes());
        let aad = self
            .encoded
            .get(..self.header_len)
            .ok_or(Error::Malformed(DecodeError::Truncated))?;
        let plaintext = hpke_open(
            &me.dh_secret_bytes(),
            &self.enc,
            &info,
            aad,
            &self.ciphertext,
        )?;
        decode_plaintext(&plaintext)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("room", &self.room)
            .field("epoch", &self.epoch)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .finish_non_exhaustive()
    }
}

/// Parses `bytes` as a [`KeyShare`] and [opens](KeyShare::open) it: the one
/// call a recipient makes.
pub fn open_share(
    bytes: &[u8],
    me: &IdentityKeyPair,
    sender: &PublicIdentity,
    room: &RoomId,
    epoch: u32,
) -> Result<SharedSenderKey, Error> {
    KeyShare::from_bytes(bytes)?.open(me, sender, room, epoch)
}

/// Wraps `key` to every identity in `recipients`, signing each share with
/// `sender`, using the operating system's RNG. See [`seal_shares_with_rng`].
pub fn seal_shares(
    sender: &IdentityKeyPair,
    room: &RoomId,
    epoch: u32,
    key: &SharedSenderKey,
    recipients: &[&PublicIdentity],
) -> Result<Vec<KeyShare>, Error> {
    seal_shares_with_rng(
        sender,
        room,
        epoch,
        key,
        recipients,
        &mut crate::rng::os_rng(),
    )
}

/// Wraps `key` to every identity in `recipients` (in order, one share each),
/// signing each share with `sender`'s identity key.
///
/// Draws 32 bytes from `rng` per recipient, in order: the HPKE ephemeral
/// key is `DeriveKeyPair` (RFC 9180, section 7.1.3) of those bytes.
/// Fails with [`Error::LimitExceeded`] for more than
/// [`MAX_MEMBERS`] recipients.
pub fn seal_shares_with_rng<R: CryptoRng + ?Sized>(
    sender: &IdentityKeyPair,
    room: &RoomId,
    epoch: u32,
    key: &SharedSenderKey,
    recipients: &[&PublicIdentity],
    rng: &mut R,
) -> Result<Vec<KeyShare>, Error> {
    if recipients.len() > MAX_MEMBERS {
        return Err(Error::LimitExceeded);
    }
    // Shared by every recipient: the plaintext, the info prefix and the
    // signed-message prefix (label || header up to the recipient id).
    let plaintext = encode_plaintext(key)?;
    let mut info = info_prefix(room, epoch, sender.public());
    let info_base = info.len();
    let label_len = labels::KEY_SHARE_SIGNATURE.len();
    let mut prefix = Writer::with_capacity(label_len + HEADER_FIXED_LEN + room.as_bytes().len());
    prefix.bytes(labels::KEY_SHARE_SIGNATURE);
    write_header_start(&mut prefix, room, epoch, &sender.id());
    let prefix = prefix.into_vec();
    let share_len = prefix.len() - label_len
        + IDENTITY_ID_LEN
        + ENC_LEN
        + 2
        + plaintext.len()
        + TAG_LEN
        + SIGNATURE_LEN;

    let mut shares = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        info.truncate(info_base);
        info.extend_from_slice(recipient.as_bytes());

        let mut message = Vec::with_capacity(label_len + share_len);
        message.extend_from_slice(&prefix);
        message.extend_from_slice(recipient.id().as_bytes());
        let header_len = message.len() - label_len;

        let pk = <Kem as KemTrait>::PublicKey::from_bytes(recipient.dh_key().as_bytes())
            .map_err(|_| Error::WeakKey)?;
        let aad = message.get(label_len..).unwrap_or_default();
        let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &pk,
            &info,
            &plaintext,
            aad,
            &mut &mut *rng,
        )
        .map_err(seal_error)?;
        let mut enc_bytes = [0u8; ENC_LEN];
        enc.write_exact(&mut enc_bytes);
        let clen = u16::try_from(ciphertext.len()).map_err(|_| Error::LimitExceeded)?;
        message.extend_from_slice(&enc_bytes);
        message.extend_from_slice(&clen.to_be_bytes());
        message.extend_from_slice(&ciphertext);
        let signature = sender.sign(&message).to_bytes();
        message.extend_from_slice(&signature);
        message.drain(..label_len);

        shares.push(KeyShare {
            room: room.clone(),
            epoch,
            sender: sender.id(),
            recipient: recipient.id(),
            header_len,
            enc: enc_bytes,
            ciphertext,
            signature,
            encoded: message,
        });
    }
    Ok(shares)
}

fn seal_error(e: HpkeError) -> Error {
    match e {
        // Only a low-order recipient key makes encapsulation fail, and a
        // parsed PublicIdentity never holds one.
        HpkeError::EncapError => Error::WeakKey,
        // A fresh single-shot context cannot reach its message limit.
        _ => Error::LimitExceeded,
    }
}

/// version || suite || rlen || room id || epoch || sender id.
fn write_header_start(w: &mut Writer, room: &RoomId, epoch: u32, sender: &IdentityId) {
    let room = room.as_bytes();
    // RoomId guarantees 1..=MAX_ROOM_ID_LEN (64) bytes.
    let rlen = u8::try_from(room.len()).unwrap_or(u8::MAX);
    w.u8(labels::PROTOCOL_VERSION)
        .u8(labels::SUITE_X25519_AES256GCM)
        .u8(rlen)
        .bytes(room)
        .u32(epoch)
        .bytes(sender.as_bytes());
}

/// `KEY_SHARE_INFO || version || suite || rlen || room id || epoch ||
/// sender PublicIdentity`; the caller appends the recipient's encoding.
fn info_prefix(room: &RoomId, epoch: u32, sender: &PublicIdentity) -> Vec<u8> {
    let room = room.as_bytes();
    let rlen = u8::try_from(room.len()).unwrap_or(u8::MAX);
    let mut w = Writer::with_capacity(
        labels::KEY_SHARE_INFO.len() + 7 + room.len() + 2 * PUBLIC_IDENTITY_LEN,
    );
    w.bytes(labels::KEY_SHARE_INFO)
        .u8(labels::PROTOCOL_VERSION)
        .u8(labels::SUITE_X25519_AES256GCM)
        .u8(rlen)
        .bytes(room)
        .u32(epoch)
        .bytes(sender.as_bytes());
    w.into_vec()
}

fn encode_plaintext(key: &SharedSenderKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut pt = Zeroizing::new(Vec::with_capacity(PLAINTEXT_SIGNED_LEN));
    pt.push(key.mode.to_byte());
    pt.extend_from_slice(key.id.as_bytes());
    pt.extend_from_slice(&key.index.to_be_bytes());
    pt.extend_from_slice(&key.chain_key.0);
    match (key.mode, &key.signing_public) {
        (SenderKeyMode::Signed, Some(public)) => pt.extend_from_slice(public.as_bytes()),
        (SenderKeyMode::Pairwise, None) => {}
        _ => return Err(Error::Malformed(DecodeError::InvalidValue)),
    }
    Ok(pt)
}

fn decode_plaintext(pt: &[u8]) -> Result<SharedSenderKey, Error> {
    let mut r = Reader::new(pt);
    let mode =
        SenderKeyMode::from_byte(r.u8()?).ok_or(Error::Malformed(DecodeError::InvalidValue))?;
    let id = SenderKeyId::from_bytes(r.array()?);
    let index = r.u32()?;
    let mut chain_key = Zeroizing::new([0u8; 32]);
    chain_key.copy_from_slice(r.bytes(32)?);
    let signing_public = match mode {
        SenderKeyMode::Signed => Some(identity::parse_ed25519_public(&r.array()?)?),
        SenderKeyMode::Pairwise => None,
    };
    r.finish()?;
    SharedSenderKey::new(id, mode, index, &chain_key, signing_public)
}

/// HPKE base-mode receiver context of our suite. Decapsulation fails only
/// when the X25519 result is all-zero, that is for a low-order encapsulated
/// key: the same test [`parse_x25519_public`](crate::identity) makes, here
/// done with the recipient's own clamped scalar so that opening costs no
/// second scalar multiplication.
fn hpke_receiver(
    secret: &[u8; 32],
    enc: &[u8; ENC_LEN],
    info: &[u8],
) -> Result<hpke::aead::AeadCtxR<Aead, Kdf, Kem>, Error> {
    let sk = <Kem as KemTrait>::PrivateKey::from_bytes(secret)
        .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
    let enc = <Kem as KemTrait>::EncappedKey::from_bytes(enc)
        .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
    hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, info)
        .map_err(|_| Error::WeakKey)
}

/// HPKE base-mode single-shot open of our suite: the path every key share
/// takes, and the one the RFC 9180 vectors are run through.
fn hpke_open(
    secret: &[u8; 32],
    enc: &[u8; ENC_LEN],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut ctx = hpke_receiver(secret, enc, info)?;
    ctx.open(ciphertext, aad)
        .map(Zeroizing::new)
        .map_err(|_| Error::Tampered)
}
