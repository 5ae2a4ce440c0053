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
//! let key = shared_sender_key([7; 16], SenderKeyMode::Pairwise, 0, &[9; 32], None, &[1; 32], 0).unwrap();
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
use crate::ids::RoomId;
use crate::labels;
use crate::limits::{MAX_MEMBERS, MAX_ROOM_ID_LEN};
use crate::sender_key::{
    SHARE_PLAINTEXT_PAIRWISE_LEN as PLAINTEXT_PAIRWISE_LEN,
    SHARE_PLAINTEXT_SIGNED_LEN as PLAINTEXT_SIGNED_LEN, SharedSenderKey,
};
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
///  |          | 73 | 169 | = plaintext + 16-byte tag  | (64)                  |
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
        SharedSenderKey::from_share_plaintext(&plaintext)
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
    let plaintext = key.to_share_plaintext()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender_key::SenderKeyMode;
    use crate::testing::{VectorRng, shared_sender_key};
    use proptest::prelude::*;

    fn ident(seed: &str) -> IdentityKeyPair {
        IdentityKeyPair::generate_with_rng(&mut VectorRng::new(seed.as_bytes()))
    }

    fn room(name: &[u8]) -> RoomId {
        RoomId::new(name).unwrap()
    }

    fn signing_public() -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&[5; 32])
            .verifying_key()
            .to_bytes()
    }

    fn signed_key() -> SharedSenderKey {
        shared_sender_key(
            signed_id(),
            SenderKeyMode::Signed,
            42,
            &[2; 32],
            Some(&[5; 32]),
            &[0; 32],
            0,
        )
        .unwrap()
    }

    fn signed_id() -> [u8; 16] {
        crate::testing::signed_sender_key_id(&signing_public()).unwrap()
    }

    fn pairwise_key() -> SharedSenderKey {
        shared_sender_key(
            [3; 16],
            SenderKeyMode::Pairwise,
            0,
            &[4; 32],
            None,
            &[0; 32],
            0,
        )
        .unwrap()
    }

    struct Fixture {
        alice: IdentityKeyPair,
        bob: IdentityKeyPair,
        carol: IdentityKeyPair,
        mallory: IdentityKeyPair,
        room: RoomId,
    }

    fn fixture() -> Fixture {
        Fixture {
            alice: ident("alice"),
            bob: ident("bob"),
            carol: ident("carol"),
            mallory: ident("mallory"),
            room: room(b"room-1"),
        }
    }

    fn header(room: &RoomId, epoch: u32, sender: &IdentityId, recipient: &IdentityId) -> Vec<u8> {
        let mut w = Writer::default();
        write_header_start(&mut w, room, epoch, sender);
        w.bytes(recipient.as_bytes());
        w.into_vec()
    }

    fn info(
        room: &RoomId,
        epoch: u32,
        sender: &PublicIdentity,
        recipient: &PublicIdentity,
    ) -> Vec<u8> {
        let mut i = info_prefix(room, epoch, sender);
        i.extend_from_slice(recipient.as_bytes());
        i
    }

    fn raw_seal(
        recipient: &PublicIdentity,
        info: &[u8],
        aad: &[u8],
        pt: &[u8],
    ) -> ([u8; 32], Vec<u8>) {
        let pk = <Kem as KemTrait>::PublicKey::from_bytes(recipient.dh_key().as_bytes()).unwrap();
        let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &pk,
            info,
            pt,
            aad,
            &mut VectorRng::new(b"raw"),
        )
        .unwrap();
        let mut e = [0u8; 32];
        enc.write_exact(&mut e);
        (e, ct)
    }

    /// Assembles and signs a share from raw parts, as an attacker (or a buggy
    /// sender) holding `signer` could.
    fn assemble(signer: &IdentityKeyPair, header: &[u8], enc: &[u8; 32], ct: &[u8]) -> Vec<u8> {
        let mut m = labels::KEY_SHARE_SIGNATURE.to_vec();
        m.extend_from_slice(header);
        m.extend_from_slice(enc);
        m.extend_from_slice(&u16::try_from(ct.len()).unwrap().to_be_bytes());
        m.extend_from_slice(ct);
        let sig = signer.sign(&m).to_bytes();
        m.drain(..labels::KEY_SHARE_SIGNATURE.len());
        m.extend_from_slice(&sig);
        m
    }

    fn share_to_bob(f: &Fixture, key: &SharedSenderKey) -> Vec<u8> {
        let shares = seal_shares_with_rng(
            &f.alice,
            &f.room,
            7,
            key,
            &[f.bob.public()],
            &mut VectorRng::new(b"seal"),
        )
        .unwrap();
        shares[0].to_bytes()
    }

    #[test]
    fn round_trip_signed_and_pairwise_to_many() {
        let f = fixture();
        for key in [signed_key(), pairwise_key()] {
            let recipients = [f.bob.public(), f.carol.public()];
            let shares = seal_shares_with_rng(
                &f.alice,
                &f.room,
                7,
                &key,
                &recipients,
                &mut VectorRng::new(b"x"),
            )
            .unwrap();
            assert_eq!(shares.len(), 2);
            for (share, me) in shares.iter().zip([&f.bob, &f.carol]) {
                assert_eq!(share.recipient(), me.id());
                assert_eq!(share.sender(), f.alice.id());
                assert_eq!(share.room(), &f.room);
                assert_eq!(share.epoch(), 7);
                let bytes = share.to_bytes();
                let parsed = KeyShare::from_bytes(&bytes).unwrap();
                assert_eq!(&parsed, share);
                assert_eq!(parsed.as_bytes(), &bytes[..]);
                let opened = parsed.open(me, f.alice.public(), &f.room, 7).unwrap();
                assert!(opened == key);
                assert_eq!(opened.signing_public, key.signing_public);
                assert_eq!(opened.chain_key.0, key.chain_key.0);
            }
        }
        // Pinned sizes: 1+1+1+6+4+16+16 header, 32 enc, 2+169 or 2+73, 64.
        assert_eq!(share_to_bob(&f, &signed_key()).len(), 45 + 32 + 171 + 64);
        assert_eq!(share_to_bob(&f, &pairwise_key()).len(), 45 + 32 + 75 + 64);
    }

    #[test]
    fn debug_never_prints_secrets() {
        let f = fixture();
        let key = signed_key();
        let share = KeyShare::from_bytes(&share_to_bob(&f, &key)).unwrap();
        let s = format!("{share:?}");
        assert!(s.starts_with("KeyShare { room: RoomId(room-1), epoch: 7, sender: IdentityId("));
        assert!(s.ends_with(", .. }"));
        let opened = share.open(&f.bob, f.alice.public(), &f.room, 7).unwrap();
        let d = format!("{opened:?}");
        assert!(!d.contains("0202"), "{d}");
        assert!(d.ends_with(".. }"));
    }

    #[test]
    fn rejects_share_for_another_recipient() {
        let f = fixture();
        let shares = seal_shares_with_rng(
            &f.alice,
            &f.room,
            7,
            &signed_key(),
            &[f.carol.public()],
            &mut VectorRng::new(b"s"),
        )
        .unwrap();
        assert_eq!(
            shares[0].open(&f.bob, f.alice.public(), &f.room, 7),
            Err(Error::NotForMe)
        );
    }

    #[test]
    fn rejects_share_replayed_into_another_room_or_epoch() {
        let f = fixture();
        let bytes = share_to_bob(&f, &signed_key());
        let other = room(b"room-2");
        for (r, e) in [(&other, 7), (&f.room, 8), (&f.room, 6)] {
            assert_eq!(
                open_share(&bytes, &f.bob, f.alice.public(), r, e),
                Err(Error::NotForMe)
            );
        }
    }

    #[test]
    fn rejects_share_from_anyone_but_the_pinned_sender() {
        let f = fixture();
        // Carol, a real member, makes a genuine share: it is not Alice's.
        let shares = seal_shares_with_rng(
            &f.carol,
            &f.room,
            7,
            &signed_key(),
            &[f.bob.public()],
            &mut VectorRng::new(b"s"),
        )
        .unwrap();
        assert_eq!(
            shares[0].open(&f.bob, f.alice.public(), &f.room, 7),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn rejects_rewrapped_share_signed_by_the_relay() {
        // The seed product's attack: the relay wraps its own chain key to Bob
        // under Alice's name (header and info say Alice) and signs it with
        // its own (valid) identity key.
        let f = fixture();
        let h = header(&f.room, 7, &f.alice.id(), &f.bob.id());
        let i = info(&f.room, 7, f.alice.public(), f.bob.public());
        let pt = pairwise_key().to_share_plaintext().unwrap();
        let (enc, ct) = raw_seal(f.bob.public(), &i, &h, &pt);
        let forged = assemble(&f.mallory, &h, &enc, &ct);
        assert_eq!(
            open_share(&forged, &f.bob, f.alice.public(), &f.room, 7),
            Err(Error::BadSignature)
        );
        // Signed with Alice's key the same bytes open: the signature check is
        // the only thing standing in the way.
        let genuine = assemble(&f.alice, &h, &enc, &ct);
        assert!(open_share(&genuine, &f.bob, f.alice.public(), &f.room, 7).is_ok());
    }

    #[test]
    fn rejects_header_naming_another_sender() {
        // Signed by the pinned sender and encrypted under her info, but the
        // header names Carol: refused on the sender-id check alone.
        let f = fixture();
        let h = header(&f.room, 7, &f.carol.id(), &f.bob.id());
        let i = info(&f.room, 7, f.alice.public(), f.bob.public());
        let pt = pairwise_key().to_share_plaintext().unwrap();
        let (enc, ct) = raw_seal(f.bob.public(), &i, &h, &pt);
        let share = assemble(&f.alice, &h, &enc, &ct);
        assert_eq!(
            open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn rejects_info_binding_mismatch() {
        // A share signed by Alice whose HPKE info names Mallory as recipient
        // identity (a relay-substituted key with Bob's id): decryption fails.
        let f = fixture();
        let h = header(&f.room, 7, &f.alice.id(), &f.bob.id());
        let i = info(&f.room, 7, f.alice.public(), f.mallory.public());
        let pt = pairwise_key().to_share_plaintext().unwrap();
        let (enc, ct) = raw_seal(f.bob.public(), &i, &h, &pt);
        let share = assemble(&f.alice, &h, &enc, &ct);
        assert_eq!(
            open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
            Err(Error::Tampered)
        );
    }

    const LOW_ORDER: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    fn unhex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (o, i) in out.iter_mut().zip((0..64).step_by(2)) {
            *o = u8::from_str_radix(&s[i..i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn rejects_low_order_encapsulated_key_even_when_signed() {
        let f = fixture();
        let good = KeyShare::from_bytes(&share_to_bob(&f, &signed_key())).unwrap();
        let h = good.as_bytes()[..good.header_len].to_vec();
        for hex in LOW_ORDER {
            let enc = unhex32(hex);
            assert_eq!(
                identity::parse_x25519_public(&enc).unwrap_err(),
                Error::WeakKey
            );
            let share = assemble(&f.alice, &h, &enc, &good.ciphertext);
            assert_eq!(
                open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
                Err(Error::WeakKey),
                "{hex}"
            );
        }
    }

    #[test]
    fn rejects_non_canonical_encapsulated_key() {
        let f = fixture();
        let good = KeyShare::from_bytes(&share_to_bob(&f, &signed_key())).unwrap();
        let h = good.as_bytes()[..good.header_len].to_vec();
        let mut enc = good.enc;
        enc[31] |= 0x80;
        let share = assemble(&f.alice, &h, &enc, &good.ciphertext);
        assert_eq!(
            KeyShare::from_bytes(&share),
            Err(Error::Malformed(DecodeError::InvalidValue))
        );
    }

    #[test]
    fn rejects_tampered_ciphertext_resigned_by_the_real_sender() {
        let f = fixture();
        let good = KeyShare::from_bytes(&share_to_bob(&f, &signed_key())).unwrap();
        let h = good.as_bytes()[..good.header_len].to_vec();
        for i in [0, 40, good.ciphertext.len() - 1] {
            let mut ct = good.ciphertext.clone();
            ct[i] ^= 1;
            let share = assemble(&f.alice, &h, &good.enc, &ct);
            assert_eq!(
                open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
                Err(Error::Tampered)
            );
        }
        // The same for a changed enc (another valid point).
        let enc = *f.carol.public().dh_key().as_bytes();
        let share = assemble(&f.alice, &h, &enc, &good.ciphertext);
        assert_eq!(
            open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
            Err(Error::Tampered)
        );
    }

    #[test]
    fn rejects_malformed_plaintext_from_a_valid_sender() {
        let f = fixture();
        let h = header(&f.room, 7, &f.alice.id(), &f.bob.id());
        let i = info(&f.room, 7, f.alice.public(), f.bob.public());
        let signed = signed_key().to_share_plaintext().unwrap();
        let mut bad_mode = signed.to_vec();
        bad_mode[0] = 3;
        let mut mismatched = signed.to_vec();
        mismatched[0] = SenderKeyMode::Pairwise.to_byte();
        let mut weak = signed.to_vec();
        // The signing public key follows mode, id, index and chain key.
        let at = 1 + 16 + 4 + 32;
        weak[at..at + 32].copy_from_slice(&[0; 32]); // identity point: small order
        weak[at] = 1;
        for (pt, err) in [
            (bad_mode, Error::Malformed(DecodeError::InvalidValue)),
            (mismatched, Error::Malformed(DecodeError::TrailingBytes)),
            (weak, Error::WeakKey),
        ] {
            let (enc, ct) = raw_seal(f.bob.public(), &i, &h, &pt);
            let share = assemble(&f.alice, &h, &enc, &ct);
            assert_eq!(
                open_share(&share, &f.bob, f.alice.public(), &f.room, 7),
                Err(err)
            );
        }
    }

    #[test]
    fn parser_rejects_bad_structure() {
        let f = fixture();
        let good = share_to_bob(&f, &signed_key());
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(
            KeyShare::from_bytes(&v),
            Err(Error::Malformed(DecodeError::UnsupportedVersion(2)))
        );
        let mut v = good.clone();
        v[1] = 9;
        assert_eq!(
            KeyShare::from_bytes(&v),
            Err(Error::Malformed(DecodeError::UnsupportedSuite(9)))
        );
        for rlen in [0, 65, 255] {
            let mut v = good.clone();
            v[2] = rlen;
            assert_eq!(
                KeyShare::from_bytes(&v),
                Err(Error::Malformed(DecodeError::LengthLimit))
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            KeyShare::from_bytes(&long),
            Err(Error::Malformed(DecodeError::TrailingBytes))
        );
        // A ciphertext length other than 73 or 169.
        let h = header(&f.room, 7, &f.alice.id(), &f.bob.id());
        let share = assemble(&f.alice, &h, &[9; 32], &[0; 70]);
        assert_eq!(
            KeyShare::from_bytes(&share),
            Err(Error::Malformed(DecodeError::InvalidValue))
        );
        let share = assemble(&f.alice, &h, &[9; 32], &[0; 170]);
        assert_eq!(
            KeyShare::from_bytes(&share),
            Err(Error::Malformed(DecodeError::LengthLimit))
        );
    }

    #[test]
    fn too_many_recipients_is_a_limit() {
        let f = fixture();
        let many = vec![f.bob.public(); MAX_MEMBERS + 1];
        assert_eq!(
            seal_shares(&f.alice, &f.room, 7, &signed_key(), &many).unwrap_err(),
            Error::LimitExceeded
        );
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9180 (appendix A.6-style) vectors of our suite, base mode, run
    /// through the module's own HPKE receiver path.
    #[test]
    fn rfc9180_vectors_through_the_open_path() {
        let json: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/hpke-x25519-sha256-aes256gcm-base.json"
        ))
        .unwrap();
        let mut opened = 0;
        for v in json["vectors"].as_array().unwrap() {
            assert_eq!(v["mode"], 0);
            assert_eq!(
                (
                    v["kem_id"].as_u64(),
                    v["kdf_id"].as_u64(),
                    v["aead_id"].as_u64()
                ),
                (Some(32), Some(1), Some(2))
            );
            let sk: [u8; 32] = unhex(v["skRm"].as_str().unwrap()).try_into().unwrap();
            let enc: [u8; 32] = unhex(v["pkEm"].as_str().unwrap()).try_into().unwrap();
            let info = unhex(v["info"].as_str().unwrap());
            let encs = v["encryptions"].as_array().unwrap();
            // Sequence number 0: the single-shot open every key share uses.
            let first = &encs[0];
            let pt = hpke_open(
                &sk,
                &enc,
                &info,
                &unhex(first["aad"].as_str().unwrap()),
                &unhex(first["ct"].as_str().unwrap()),
            )
            .unwrap();
            assert_eq!(&pt[..], &unhex(first["pt"].as_str().unwrap())[..]);
            // And a flipped bit fails.
            let mut ct = unhex(first["ct"].as_str().unwrap());
            ct[0] ^= 1;
            assert_eq!(
                hpke_open(
                    &sk,
                    &enc,
                    &info,
                    &unhex(first["aad"].as_str().unwrap()),
                    &ct
                )
                .unwrap_err(),
                Error::Tampered
            );
            // Later sequence numbers through the same receiver context.
            let mut ctx = hpke_receiver(&sk, &enc, &info).unwrap();
            for e in encs {
                let pt = ctx
                    .open(
                        &unhex(e["ct"].as_str().unwrap()),
                        &unhex(e["aad"].as_str().unwrap()),
                    )
                    .unwrap();
                assert_eq!(pt, unhex(e["pt"].as_str().unwrap()));
                opened += 1;
            }
        }
        assert!(opened >= 257);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn prop_round_trip(seed in any::<[u8; 16]>(), epoch in any::<u32>(), index in any::<u32>(),
                           chain in any::<[u8; 32]>(), signed in any::<bool>(),
                           room_bytes in proptest::collection::vec(any::<u8>(), 1..=MAX_ROOM_ID_LEN)) {
            let f = fixture();
            let r = RoomId::new(&room_bytes).unwrap();
            let key = if signed {
                shared_sender_key(signed_id(), SenderKeyMode::Signed, index, &chain, Some(&[5; 32]), &[0; 32], 0).unwrap()
            } else {
                shared_sender_key(seed, SenderKeyMode::Pairwise, index, &chain, None, &[0; 32], 0).unwrap()
            };
            let shares = seal_shares_with_rng(&f.alice, &r, epoch, &key, &[f.bob.public()], &mut VectorRng::new(&seed)).unwrap();
            let bytes = shares[0].to_bytes();
            let parsed = KeyShare::from_bytes(&bytes).unwrap();
            prop_assert_eq!(parsed.to_bytes(), bytes.clone());
            let opened = open_share(&bytes, &f.bob, f.alice.public(), &r, epoch).unwrap();
            prop_assert!(opened == key);
        }

        #[test]
        fn prop_every_bit_flip_and_truncation_rejected(seed in any::<[u8; 8]>(), signed in any::<bool>()) {
            let f = fixture();
            let key = if signed { signed_key() } else { pairwise_key() };
            let shares = seal_shares_with_rng(&f.alice, &f.room, 7, &key, &[f.bob.public()], &mut VectorRng::new(&seed)).unwrap();
            let bytes = shares[0].to_bytes();
            for i in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[i / 8] ^= 1 << (i % 8);
                let r = open_share(&b, &f.bob, f.alice.public(), &f.room, 7);
                prop_assert!(r.is_err(), "bit {} accepted", i);
            }
            for n in 0..bytes.len() {
                prop_assert!(open_share(&bytes[..n], &f.bob, f.alice.public(), &f.room, 7).is_err());
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let f = fixture();
            if let Ok(share) = KeyShare::from_bytes(&bytes) {
                prop_assert_eq!(share.to_bytes(), bytes);
                prop_assert!(share.open(&f.bob, f.alice.public(), &f.room, 7).is_err());
            }
        }
    }
}
