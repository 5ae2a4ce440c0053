//! Key shares: wrapping a sender key (the seed product's "secret key") to
//! each member's current share key, and opening it again.
//!
//! The seed product wraps one unsigned room secret with RSA-OAEP-SHA1 to a
//! static key, and its relay can swap a member's public key and re-wrap the
//! secret unnoticed. Here every share is
//!
//! - encrypted with HPKE (RFC 9180) base mode to the recipient's current
//!   [share key](crate::share_key) (never to its identity key), in the room's
//!   [`Suite`]: DHKEM(X25519) or X-Wing (ML-KEM-768 + X25519), HKDF-SHA256,
//!   AES-256-GCM; the HPKE `info` binds the protocol label and version, the
//!   suite, the room, the epoch, the sender's identity and membership
//!   instance, the recipient's identity and the serial of the share key it
//!   is sealed to;
//! - signed as a whole by the sender's identity key; the recipient verifies
//!   that signature with the identity the room pinned for the sender
//!   *before* any HPKE work;
//! - accompanied by the sender's own current signed share key of the suite,
//!   so members learn each other's newer share keys in-band.
//!
//! So a relay can neither plant its own sender key (it cannot sign as the
//! pinned sender), nor move a share to another recipient, room, epoch or
//! membership instance, nor change a single bit. A device that has erased
//! the share key a share names cannot open it ([`Error::ShareKeyErased`]):
//! neither can a thief who steals the device's state later.
//!
//! ```
//! use secret_chat::{keyshare, IdentityKeyPair, RoomId, SenderKeyMode, Suite};
//! use secret_chat::testing::shared_sender_key;
//!
//! let alice = IdentityKeyPair::generate();
//! let bob = IdentityKeyPair::generate();
//! let room = RoomId::new(b"room-1").unwrap();
//! let key = shared_sender_key([7; 16], SenderKeyMode::Pairwise, 0, &[9; 32], None, &[1; 32], 0).unwrap();
//! let instance = [0u8; 32]; // Alice's membership instance in the room
//!
//! let bob_bundle = bob.bundle(); // from the relay, or in-band
//! let to_bob = keyshare::Recipient::new(bob_bundle.identity(), bob_bundle.share_key(Suite::XWing).unwrap());
//! let shares = keyshare::seal_shares(&alice, &room, Suite::XWing, 3, &instance, &key, &[to_bob]).unwrap();
//! let bytes = shares[0].to_bytes();
//! // Bob pinned Alice's identity when she joined the room.
//! let opened = keyshare::open_share(&bytes, &bob, alice.public(), &room, 3, &instance).unwrap();
//! assert_eq!(opened, key);
//! // The same share is refused in another epoch.
//! assert!(keyshare::open_share(&bytes, &bob, alice.public(), &room, 4, &instance).is_err());
//! ```

use crate::error::{DecodeError, Error};
use crate::identity::{IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::ids::RoomId;
use crate::labels;
use crate::limits::{MAX_MEMBERS, MAX_ROOM_ID_LEN};
use crate::sender_key::{
    SHARE_PLAINTEXT_PAIRWISE_LEN as PLAINTEXT_PAIRWISE_LEN,
    SHARE_PLAINTEXT_SIGNED_LEN as PLAINTEXT_SIGNED_LEN, SharedSenderKey,
};
use crate::share_key::{KemX25519, KemXWing, MAX_SIGNED_SHARE_KEY_LEN, SignedShareKey, Suite};
use crate::wire::{Reader, Writer};
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::Signature;
use hpke::{Deserializable, HpkeError, Kem as KemTrait, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

/// Length of the identity signature that ends every share.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a membership instance id.
pub const INSTANCE_LEN: usize = 32;
/// Length of the AES-256-GCM tag inside the ciphertext.
const TAG_LEN: usize = 16;
/// Longest ciphertext a share may carry: a signed sender key's plaintext plus
/// the tag. The only other valid length is the pairwise one; every other
/// length is rejected while parsing.
pub const MAX_CIPHERTEXT_LEN: usize = PLAINTEXT_SIGNED_LEN + TAG_LEN;
/// Header length without the room id: version, suite, room-id length,
/// epoch, sender identity, sender instance, recipient identity, recipient
/// share-key serial.
const HEADER_FIXED_LEN: usize =
    1 + 1 + 1 + 4 + PUBLIC_IDENTITY_LEN + INSTANCE_LEN + PUBLIC_IDENTITY_LEN + 4;

/// One member a sender key is wrapped to: its identity (the room's pin) and
/// the newest share key of it the sender has verified.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    identity: &'a PublicIdentity,
    share_key: &'a SignedShareKey,
}

impl<'a> Recipient<'a> {
    /// A recipient. `share_key` must have been verified as signed by
    /// `identity` (every [`SignedShareKey`] constructor checks that against
    /// the identity it was given; pairing it with another identity here makes
    /// the share unopenable, never readable by someone else).
    pub fn new(identity: &'a PublicIdentity, share_key: &'a SignedShareKey) -> Self {
        Self {
            identity,
            share_key,
        }
    }
}

/// One sender key wrapped to one recipient's share key and signed by the
/// sender.
///
/// Parsed from untrusted bytes by [`from_bytes`](Self::from_bytes), which
/// checks structure only; the contents are usable only through
/// [`open`](Self::open), which checks the addressing and the signature
/// against the identity the room pinned, then decrypts.
///
/// # Encoding (all integers big-endian)
///
/// ```text
///  header:
///  +------+-------+--------+---------------+-----------+------------------+-------------------+
///  | 0x02 | suite | rlen   | room id       | epoch u32 | sender identity  | sender instance   |
///  |      | 1 | 2 | 1..=64 | (rlen bytes)  |           | Ed25519 key (32) | (32)              |
///  +------+-------+--------+---------------+-----------+------------------+-------------------+
///  | recipient identity Ed25519 key (32) | recipient share-key serial u32 |
///  +-------------------------------------+--------------------------------+
///  then:
///  +---------------------------------+-----------------+----------+-------------------+-----------+
///  | sender share key: u16 len ||    | enc             | clen u16 | HPKE ciphertext   | signature |
///  | SignedShareKey of this suite    | (32 | 1120)     |          | (clen)            | (64)      |
///  +---------------------------------+-----------------+----------+-------------------+-----------+
///  info      = "secret-chat/v2/key-share/info" || header
///  aad       = header || sender share key field (every byte before enc)
///  signature = Ed25519(sender identity, "secret-chat/v2/key-share/signature"
///                                       || every byte before the signature)
///  plaintext = the sender key (see `SharedSenderKey` in docs/PROTOCOL.md)
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    suite: Suite,
    room: RoomId,
    epoch: u32,
    sender: [u8; 32],
    sender_instance: [u8; INSTANCE_LEN],
    recipient: [u8; 32],
    recipient_serial: u32,
    header_len: usize,
    sender_share_key: (usize, usize),
    aad_len: usize,
    ciphertext: (usize, usize),
    encoded: Vec<u8>,
}

impl KeyShare {
    /// Parses a share, checking structure only: version, suite, lengths,
    /// a well-formed sender share key field, no trailing bytes. Nothing is
    /// trusted until [`open`](Self::open) succeeds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let suite = Suite::from_byte(r.u8()?)?;
        let room_len = usize::from(r.u8()?);
        if room_len == 0 {
            return Err(DecodeError::Empty.into());
        }
        if room_len > MAX_ROOM_ID_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let room = RoomId::new(r.bytes(room_len)?)?;
        let epoch = r.u32()?;
        let sender: [u8; 32] = r.array()?;
        let sender_instance: [u8; INSTANCE_LEN] = r.array()?;
        let recipient: [u8; 32] = r.array()?;
        let recipient_serial = r.u32()?;
        let header_len = bytes.len() - r.remaining();
        let ssk = r.vec16(MAX_SIGNED_SHARE_KEY_LEN)?;
        let ssk_start = bytes.len() - r.remaining() - ssk.len();
        let sender_share_key = (ssk_start, ssk_start + ssk.len());
        let aad_len = bytes.len() - r.remaining();
        let enc = r.bytes(suite.enc_len())?;
        if suite == Suite::X25519 {
            let mut key = [0u8; 32];
            key.copy_from_slice(enc);
            if !crate::identity::is_canonical_field_element(&key) {
                return Err(DecodeError::InvalidValue.into());
            }
        }
        let ciphertext = r.vec16(MAX_CIPHERTEXT_LEN)?;
        if ciphertext.len() != PLAINTEXT_PAIRWISE_LEN + TAG_LEN
            && ciphertext.len() != PLAINTEXT_SIGNED_LEN + TAG_LEN
        {
            return Err(DecodeError::InvalidValue.into());
        }
        let ct_start = bytes.len() - r.remaining() - ciphertext.len();
        let _signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        // The sender's share key must be one of this suite.
        // Structure only: the key itself is checked (with its signature)
        // when a room adopts it, which only a newer serial triggers.
        if SignedShareKey::parse_structure(ssk)? != suite {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(Self {
            suite,
            room,
            epoch,
            sender,
            sender_instance,
            recipient,
            recipient_serial,
            header_len,
            sender_share_key,
            aad_len,
            ciphertext: (ct_start, ct_start + ciphertext.len()),
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

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The room the share claims to be for (unauthenticated until opened).
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The epoch the share claims to be for (unauthenticated until opened).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The claimed sender's identity key (unauthenticated until opened):
    /// lets the room find the member it pinned with that identity.
    pub fn sender(&self) -> &[u8; 32] {
        &self.sender
    }

    /// The sender's membership instance the share claims.
    pub fn sender_instance(&self) -> &[u8; INSTANCE_LEN] {
        &self.sender_instance
    }

    /// The identity key of the recipient the share is addressed to.
    pub fn recipient(&self) -> &[u8; 32] {
        &self.recipient
    }

    /// The serial of the recipient's share key the share is sealed to.
    pub fn recipient_serial(&self) -> u32 {
        self.recipient_serial
    }

    /// The sender's signed share key carried in the share, verified against
    /// `sender` (the identity the room pinned for it).
    pub fn sender_share_key(&self, sender: &PublicIdentity) -> Result<SignedShareKey, Error> {
        let (a, b) = self.sender_share_key;
        SignedShareKey::from_bytes(self.encoded.get(a..b).unwrap_or_default(), sender)
    }

    /// The serial of the sender's share key carried in the share
    /// (unauthenticated until opened).
    pub fn sender_share_key_serial(&self) -> u32 {
        // Bytes 2..6 of a signed share key are its serial (checked at parse).
        let (a, _) = self.sender_share_key;
        let mut serial = [0u8; 4];
        if let Some(b) = self.encoded.get(a + 2..a + 6) {
            serial.copy_from_slice(b);
        }
        u32::from_be_bytes(serial)
    }

    /// Opens a share addressed to `me`, from `sender` (the identity the room
    /// pinned for that member), for `room` in `epoch`, from the sender's
    /// membership instance `sender_instance`.
    ///
    /// Checks, in this order, each with its own error and without touching
    /// any state: recipient, room, epoch and instance ([`Error::NotForMe`]);
    /// the claimed sender is the pinned one and the signature verifies
    /// strictly under its identity key ([`Error::BadSignature`]); the share
    /// key it names is one I still hold ([`Error::ShareKeyErased`] for one I
    /// erased: ask the sender to re-share under my current bundle;
    /// [`Error::UnknownShareKey`] for a serial I never made); HPKE
    /// decapsulation ([`Error::WeakKey`], [`Error::Malformed`]); HPKE
    /// decryption ([`Error::Tampered`]); the plaintext is well formed
    /// ([`Error::Malformed`], [`Error::WeakKey`] for a weak signing key).
    ///
    /// ```
    /// use secret_chat::{keyshare::{self, KeyShare}, Error, IdentityKeyPair, OutboundSenderKey, RoomId, SenderKeyMode, Suite};
    /// let (alice, bob, eve) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let room = RoomId::new(b"room-1")?;
    /// let instance = [0u8; 32];
    /// let mine = OutboundSenderKey::new(room.clone(), 3, SenderKeyMode::Signed, [9; 32], 0);
    /// let bundle = bob.bundle();
    /// let to_bob = keyshare::Recipient::new(bundle.identity(), bundle.share_key(Suite::XWing).unwrap());
    /// let bytes = keyshare::seal_shares(&alice, &room, Suite::XWing, 3, &instance, &mine.share(), &[to_bob])?[0].to_bytes();
    /// let share = KeyShare::from_bytes(&bytes)?; // structure only: nothing trusted yet
    /// assert_eq!(share.open(&bob, eve.public(), &room, 3, &instance).err(), Some(Error::BadSignature));
    /// assert_eq!(share.open(&bob, alice.public(), &room, 3, &instance)?.id(), mine.id());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(
        &self,
        me: &IdentityKeyPair,
        sender: &PublicIdentity,
        room: &RoomId,
        epoch: u32,
        sender_instance: &[u8; INSTANCE_LEN],
    ) -> Result<SharedSenderKey, Error> {
        if &self.recipient != me.public().as_bytes()
            || &self.room != room
            || self.epoch != epoch
            || &self.sender_instance != sender_instance
        {
            return Err(Error::NotForMe);
        }
        if &self.sender != sender.as_bytes() {
            return Err(Error::BadSignature);
        }
        let split = self.encoded.len().saturating_sub(SIGNATURE_LEN);
        let (signed, sig) = self.encoded.split_at(split);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);
        let mut message = Vec::with_capacity(labels::KEY_SHARE_SIGNATURE.len() + signed.len());
        message.extend_from_slice(labels::KEY_SHARE_SIGNATURE);
        message.extend_from_slice(signed);
        sender.verify(&message, &Signature::from_bytes(&signature))?;

        let secret = me.share_key_secret(self.suite, self.recipient_serial)?;
        let header = self.encoded.get(..self.header_len).unwrap_or_default();
        let mut info = Vec::with_capacity(labels::KEY_SHARE_INFO.len() + header.len());
        info.extend_from_slice(labels::KEY_SHARE_INFO);
        info.extend_from_slice(header);
        let aad = self.encoded.get(..self.aad_len).unwrap_or_default();
        let enc = self
            .encoded
            .get(self.aad_len..self.aad_len + self.suite.enc_len())
            .unwrap_or_default();
        let ct = self
            .encoded
            .get(self.ciphertext.0..self.ciphertext.1)
            .unwrap_or_default();
        let plaintext = hpke_open(
            self.suite,
            secret.secret_bytes(),
            secret.xwing_private(),
            enc,
            &info,
            aad,
            ct,
        )?;
        SharedSenderKey::from_share_plaintext(&plaintext)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("suite", &self.suite)
            .field("room", &self.room)
            .field("epoch", &self.epoch)
            .field("recipient_serial", &self.recipient_serial)
            .finish_non_exhaustive()
    }
}

/// Parses `bytes` as a [`KeyShare`] and [opens](KeyShare::open) it: the one
/// call a recipient makes.
///
/// # Errors
/// As [`KeyShare::from_bytes`] and [`KeyShare::open`].
///
/// ```
/// use secret_chat::{keyshare, IdentityKeyPair, OutboundSenderKey, RoomId, SenderKeyMode, Suite};
/// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
/// let room = RoomId::new(b"room-1")?;
/// let instance = [0u8; 32]; // Alice's membership instance in the room
/// let mine = OutboundSenderKey::new(room.clone(), 3, SenderKeyMode::Signed, [9; 32], 0);
/// let bundle = bob.bundle(); // Bob's, from the relay
/// let to_bob = keyshare::Recipient::new(bundle.identity(), bundle.share_key(Suite::XWing).unwrap());
/// let shares = keyshare::seal_shares(&alice, &room, Suite::XWing, 3, &instance, &mine.share(), &[to_bob])?;
/// let opened = keyshare::open_share(&shares[0].to_bytes(), &bob, alice.public(), &room, 3, &instance)?;
/// assert_eq!(opened.id(), mine.id());
/// # Ok::<(), secret_chat::Error>(())
/// ```
pub fn open_share(
    bytes: &[u8],
    me: &IdentityKeyPair,
    sender: &PublicIdentity,
    room: &RoomId,
    epoch: u32,
    sender_instance: &[u8; INSTANCE_LEN],
) -> Result<SharedSenderKey, Error> {
    KeyShare::from_bytes(bytes)?.open(me, sender, room, epoch, sender_instance)
}

/// Wraps `key` to every recipient, signing each share with `sender`, using
/// the operating system's RNG. See [`seal_shares_with_rng`].
///
/// ```
/// use secret_chat::{keyshare, IdentityKeyPair, OutboundSenderKey, RoomId, SenderKeyMode, Suite};
/// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
/// let room = RoomId::new(b"room-1")?;
/// let instance = [0u8; 32]; // Alice's membership instance in the room
/// let mine = OutboundSenderKey::new(room.clone(), 3, SenderKeyMode::Signed, [9; 32], 0);
/// let bundle = bob.bundle(); // Bob's, from the relay
/// let to_bob = keyshare::Recipient::new(bundle.identity(), bundle.share_key(Suite::XWing).unwrap());
/// let shares = keyshare::seal_shares(&alice, &room, Suite::XWing, 3, &instance, &mine.share(), &[to_bob])?;
/// assert_eq!(shares.len(), 1);
/// assert_eq!(shares[0].recipient(), bob.public().as_bytes());
/// # Ok::<(), secret_chat::Error>(())
/// ```
pub fn seal_shares(
    sender: &IdentityKeyPair,
    room: &RoomId,
    suite: Suite,
    epoch: u32,
    sender_instance: &[u8; INSTANCE_LEN],
    key: &SharedSenderKey,
    recipients: &[Recipient<'_>],
) -> Result<Vec<KeyShare>, Error> {
    seal_shares_with_rng(
        sender,
        room,
        suite,
        epoch,
        sender_instance,
        key,
        recipients,
        &mut crate::rng::os_rng(),
    )
}

/// Wraps `key` to every recipient (in order, one share each), signing each
/// share with `sender`'s identity key.
///
/// Draws [`Suite::encapsulation_randomness`] bytes from `rng` per recipient,
/// in order (32 for X25519: the ephemeral key is `DeriveKeyPair` of them;
/// 64 for X-Wing: the encapsulation seed). Fails with
/// [`Error::LimitExceeded`] for more than [`MAX_MEMBERS`] recipients, and
/// with [`Error::SuiteUnavailable`] when a recipient's share key, or my own
/// current share key, is not of `suite`.
#[allow(clippy::too_many_arguments)]
pub fn seal_shares_with_rng<R: CryptoRng + ?Sized>(
    sender: &IdentityKeyPair,
    room: &RoomId,
    suite: Suite,
    epoch: u32,
    sender_instance: &[u8; INSTANCE_LEN],
    key: &SharedSenderKey,
    recipients: &[Recipient<'_>],
    rng: &mut R,
) -> Result<Vec<KeyShare>, Error> {
    if recipients.len() > MAX_MEMBERS {
        return Err(Error::LimitExceeded);
    }
    if recipients.iter().any(|r| r.share_key.suite() != suite) {
        return Err(Error::SuiteUnavailable);
    }
    let own = sender
        .current_share_key(suite)
        .ok_or(Error::SuiteUnavailable)?
        .public()
        .clone();
    let plaintext = key.to_share_plaintext()?;
    let room_bytes = room.as_bytes();
    // RoomId guarantees 1..=MAX_ROOM_ID_LEN (64) bytes.
    let rlen = u8::try_from(room_bytes.len()).unwrap_or(u8::MAX);
    let label_len = labels::KEY_SHARE_SIGNATURE.len();
    let info_label = labels::KEY_SHARE_INFO.len();

    let mut shares = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        // label || header || sender share key; the info is its own label || header.
        let header_len = HEADER_FIXED_LEN + room_bytes.len();
        let share_len = header_len
            + 2
            + own.as_bytes().len()
            + suite.enc_len()
            + 2
            + plaintext.len()
            + TAG_LEN
            + SIGNATURE_LEN;
        let mut w = Writer::with_capacity(label_len + share_len);
        w.bytes(labels::KEY_SHARE_SIGNATURE)
            .u8(labels::PROTOCOL_VERSION)
            .u8(suite.to_byte())
            .u8(rlen)
            .bytes(room_bytes)
            .u32(epoch)
            .bytes(sender.public().as_bytes())
            .bytes(sender_instance)
            .bytes(recipient.identity.as_bytes())
            .u32(recipient.share_key.serial());
        let mut info = Vec::with_capacity(info_label + header_len);
        info.extend_from_slice(labels::KEY_SHARE_INFO);
        info.extend_from_slice(w.as_slice().get(label_len..).unwrap_or_default());
        w.vec16(own.as_bytes());
        let mut message = w.into_vec();
        let aad = message.get(label_len..).unwrap_or_default();
        let (enc, ciphertext) = hpke_seal(
            suite,
            recipient.share_key.public_key(),
            &info,
            aad,
            &plaintext,
            rng,
        )?;
        let clen = u16::try_from(ciphertext.len()).map_err(|_| Error::LimitExceeded)?;
        let aad_len = message.len() - label_len;
        message.extend_from_slice(&enc);
        message.extend_from_slice(&clen.to_be_bytes());
        let ct_start = message.len() - label_len;
        message.extend_from_slice(&ciphertext);
        let signature = sender.sign(&message).to_bytes();
        message.extend_from_slice(&signature);
        message.drain(..label_len);

        shares.push(KeyShare {
            suite,
            room: room.clone(),
            epoch,
            sender: *sender.public().as_bytes(),
            sender_instance: *sender_instance,
            recipient: *recipient.identity.as_bytes(),
            recipient_serial: recipient.share_key.serial(),
            header_len,
            sender_share_key: (header_len + 2, header_len + 2 + own.as_bytes().len()),
            aad_len,
            ciphertext: (ct_start, ct_start + ciphertext.len()),
            encoded: message,
        });
    }
    Ok(shares)
}

fn seal_error(e: HpkeError) -> Error {
    match e {
        // Only a low-order recipient key makes X25519 encapsulation fail,
        // and a parsed SignedShareKey never holds one.
        HpkeError::EncapError => Error::WeakKey,
        // A fresh single-shot context cannot reach its message limit.
        _ => Error::LimitExceeded,
    }
}

/// HPKE base-mode single-shot seal in `suite` to the public key bytes
/// `public`; returns (encapsulated key, ciphertext).
fn hpke_seal<R: CryptoRng + ?Sized>(
    suite: Suite,
    public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    match suite {
        // A public key a parsed share key holds never fails these checks;
        // the errors say what would have been wrong.
        Suite::X25519 => {
            seal_with::<KemX25519, R>(public, Error::WeakKey, info, aad, plaintext, rng)
        }
        Suite::XWing => seal_with::<KemXWing, R>(
            public,
            Error::Malformed(DecodeError::InvalidValue),
            info,
            aad,
            plaintext,
            rng,
        ),
    }
}

/// HPKE base-mode single-shot seal with the KEM `K` to the public key bytes
/// `public` (`bad_key` if they do not parse).
fn seal_with<K: KemTrait, R: CryptoRng + ?Sized>(
    public: &[u8],
    bad_key: Error,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let pk = K::PublicKey::from_bytes(public).map_err(|_| bad_key)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, K>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut &mut *rng,
    )
    .map_err(seal_error)?;
    Ok((enc.to_bytes().to_vec(), ct))
}

/// HPKE base-mode single-shot open in `suite`: the path every key share
/// takes (and the RFC 9180 vectors go through, for X25519). X25519
/// decapsulation fails only when the shared point is all-zero, that is for a
/// low-order encapsulated key ([`Error::WeakKey`]); X-Wing decapsulation
/// never fails (ML-KEM's implicit rejection), so a forged encapsulation
/// shows up as [`Error::Tampered`].
fn hpke_open(
    suite: Suite,
    secret: &[u8; 32],
    xwing: Option<&<KemXWing as KemTrait>::PrivateKey>,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let opened = match suite {
        Suite::X25519 => {
            let sk = <KemX25519 as KemTrait>::PrivateKey::from_bytes(secret)
                .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
            let enc = <KemX25519 as KemTrait>::EncappedKey::from_bytes(enc)
                .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
            let mut ctx =
                hpke::setup_receiver::<Aead, Kdf, KemX25519>(&OpModeR::Base, &sk, &enc, info)
                    .map_err(|_| Error::WeakKey)?;
            ctx.open(ciphertext, aad)
        }
        Suite::XWing => {
            // The expanded key the share-key secret holds; built here only
            // if it is missing (its construction runs the ML-KEM expansion).
            let built;
            let sk = match xwing {
                Some(sk) => sk,
                None => {
                    built = <KemXWing as KemTrait>::PrivateKey::from_bytes(secret)
                        .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
                    &built
                }
            };
            let enc = <KemXWing as KemTrait>::EncappedKey::from_bytes(enc)
                .map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
            let mut ctx =
                hpke::setup_receiver::<Aead, Kdf, KemXWing>(&OpModeR::Base, sk, &enc, info)
                    .map_err(|_| Error::Tampered)?;
            ctx.open(ciphertext, aad)
        }
    };
    opened.map(Zeroizing::new).map_err(|_| Error::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender_key::SenderKeyMode;
    use crate::testing::{VectorRng, shared_sender_key};
    use proptest::prelude::*;

    const INST: [u8; 32] = [0x11; 32];

    fn ident(seed: &str) -> IdentityKeyPair {
        IdentityKeyPair::generate_at(1_000, &mut VectorRng::new(seed.as_bytes()))
    }

    fn room(name: &[u8]) -> RoomId {
        RoomId::new(name).unwrap()
    }

    fn signed_id(seed: &[u8; 32]) -> [u8; 16] {
        let public = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        crate::testing::signed_sender_key_id(&public).unwrap()
    }

    fn signed_key() -> SharedSenderKey {
        shared_sender_key(
            signed_id(&[5; 32]),
            SenderKeyMode::Signed,
            42,
            &[2; 32],
            Some(&[5; 32]),
            &[0; 32],
            0,
        )
        .unwrap()
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

    fn share_to(f: &Fixture, to: &IdentityKeyPair, suite: Suite, key: &SharedSenderKey) -> Vec<u8> {
        let bundle = to.bundle();
        let shares = seal_shares_with_rng(
            &f.alice,
            &f.room,
            suite,
            7,
            &INST,
            key,
            &[Recipient::new(
                bundle.identity(),
                bundle.share_key(suite).unwrap(),
            )],
            &mut VectorRng::new(b"seal"),
        )
        .unwrap();
        shares[0].to_bytes()
    }

    fn open_bob(f: &Fixture, bytes: &[u8]) -> Result<SharedSenderKey, Error> {
        open_share(bytes, &f.bob, f.alice.public(), &f.room, 7, &INST)
    }

    /// The parts of a share: (aad = header || share-key field, enc, ciphertext).
    fn parts(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let s = KeyShare::from_bytes(bytes).unwrap();
        let aad = bytes[..s.aad_len].to_vec();
        let enc = bytes[s.aad_len..s.aad_len + s.suite.enc_len()].to_vec();
        let ct = bytes[s.ciphertext.0..s.ciphertext.1].to_vec();
        (aad, enc, ct)
    }

    /// Assembles and signs a share from raw parts, as an attacker (or a buggy
    /// sender) holding `signer` could.
    fn assemble(signer: &IdentityKeyPair, aad: &[u8], enc: &[u8], ct: &[u8]) -> Vec<u8> {
        let mut m = labels::KEY_SHARE_SIGNATURE.to_vec();
        m.extend_from_slice(aad);
        m.extend_from_slice(enc);
        m.extend_from_slice(&u16::try_from(ct.len()).unwrap().to_be_bytes());
        m.extend_from_slice(ct);
        let sig = signer.sign(&m).to_bytes();
        m.drain(..labels::KEY_SHARE_SIGNATURE.len());
        m.extend_from_slice(&sig);
        m
    }

    #[test]
    fn round_trip_both_suites_signed_and_pairwise_to_many() {
        let f = fixture();
        for suite in Suite::ALL {
            for key in [signed_key(), pairwise_key()] {
                let bundles = [f.bob.bundle(), f.carol.bundle()];
                let recipients: Vec<Recipient<'_>> = bundles
                    .iter()
                    .map(|b| Recipient::new(b.identity(), b.share_key(suite).unwrap()))
                    .collect();
                let shares = seal_shares_with_rng(
                    &f.alice,
                    &f.room,
                    suite,
                    7,
                    &INST,
                    &key,
                    &recipients,
                    &mut VectorRng::new(b"s"),
                )
                .unwrap();
                for (share, me) in shares.iter().zip([&f.bob, &f.carol]) {
                    let bytes = share.to_bytes();
                    assert_eq!(bytes.len(), share.as_bytes().len());
                    let parsed = KeyShare::from_bytes(&bytes).unwrap();
                    assert_eq!(parsed, *share);
                    assert_eq!(parsed.suite(), suite);
                    assert_eq!(parsed.recipient_serial(), 1);
                    assert_eq!(parsed.sender_share_key_serial(), 1);
                    let opened = parsed
                        .open(me, f.alice.public(), &f.room, 7, &INST)
                        .unwrap();
                    assert_eq!(opened, key);
                    let ssk = parsed.sender_share_key(f.alice.public()).unwrap();
                    assert_eq!(&ssk, f.alice.bundle().share_key(suite).unwrap());
                    // The embedded share key verifies only under its owner.
                    assert_eq!(
                        parsed.sender_share_key(f.bob.public()).unwrap_err(),
                        Error::BadSignature
                    );
                }
                // Each recipient opens only its own.
                assert_eq!(
                    shares[0]
                        .open(&f.carol, f.alice.public(), &f.room, 7, &INST)
                        .unwrap_err(),
                    Error::NotForMe
                );
            }
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let f = fixture();
        let share =
            KeyShare::from_bytes(&share_to(&f, &f.bob, Suite::X25519, &signed_key())).unwrap();
        let text = format!("{share:?}");
        assert!(text.starts_with("KeyShare { suite: X25519"), "{text}");
        assert!(!text.contains("ciphertext"));
    }

    #[test]
    fn rejects_share_for_another_room_epoch_instance_or_recipient() {
        let f = fixture();
        let bytes = share_to(&f, &f.bob, Suite::XWing, &signed_key());
        let other = room(b"room-2");
        for (me, r, e, inst) in [
            (&f.carol, &f.room, 7, INST),
            (&f.bob, &other, 7, INST),
            (&f.bob, &f.room, 8, INST),
            (&f.bob, &f.room, 7, [0x12; 32]),
        ] {
            assert_eq!(
                open_share(&bytes, me, f.alice.public(), r, e, &inst).unwrap_err(),
                Error::NotForMe
            );
        }
    }

    #[test]
    fn rejects_share_from_anyone_but_the_pinned_sender() {
        let f = fixture();
        let bytes = share_to(&f, &f.bob, Suite::X25519, &signed_key());
        assert_eq!(
            open_share(&bytes, &f.bob, f.mallory.public(), &f.room, 7, &INST).unwrap_err(),
            Error::BadSignature
        );
    }

    #[test]
    fn rejects_rewrapped_share_signed_by_the_relay() {
        // The relay re-signs Alice's share (or one of its own making) with its
        // own identity but keeps Alice's identity in the header.
        let f = fixture();
        for suite in Suite::ALL {
            let bytes = share_to(&f, &f.bob, suite, &signed_key());
            let (aad, enc, ct) = parts(&bytes);
            let forged = assemble(&f.mallory, &aad, &enc, &ct);
            assert_eq!(open_bob(&f, &forged).unwrap_err(), Error::BadSignature);
        }
    }

    #[test]
    fn rejects_tampered_ciphertext_and_enc_resigned_by_the_real_sender() {
        let f = fixture();
        for suite in Suite::ALL {
            let bytes = share_to(&f, &f.bob, suite, &signed_key());
            let (aad, enc, ct) = parts(&bytes);
            for i in [0, 40, ct.len() - 1] {
                let mut c = ct.clone();
                c[i] ^= 1;
                let share = assemble(&f.alice, &aad, &enc, &c);
                assert_eq!(open_bob(&f, &share).unwrap_err(), Error::Tampered);
            }
            // Another valid encapsulation (fresh randomness) under the same header.
            let b = f.bob.bundle();
            let other = seal_shares_with_rng(
                &f.alice,
                &f.room,
                suite,
                7,
                &INST,
                &signed_key(),
                &[Recipient::new(b.identity(), b.share_key(suite).unwrap())],
                &mut VectorRng::new(b"other randomness"),
            )
            .unwrap();
            let (_, other_enc, _) = parts(other[0].as_bytes());
            assert_ne!(other_enc, enc);
            let share = assemble(&f.alice, &aad, &other_enc, &ct);
            assert_eq!(open_bob(&f, &share).unwrap_err(), Error::Tampered);
        }
    }

    /// The eight low-order X25519 points (canonical encodings).
    const LOW_ORDER: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rejects_low_order_and_non_canonical_x25519_encapsulated_keys() {
        let f = fixture();
        let bytes = share_to(&f, &f.bob, Suite::X25519, &signed_key());
        let (aad, enc, ct) = parts(&bytes);
        for hex in LOW_ORDER {
            let share = assemble(&f.alice, &aad, &unhex(hex), &ct);
            assert_eq!(open_bob(&f, &share).unwrap_err(), Error::WeakKey, "{hex}");
        }
        let mut e = enc.clone();
        e[31] |= 0x80;
        let share = assemble(&f.alice, &aad, &e, &ct);
        assert_eq!(
            KeyShare::from_bytes(&share).unwrap_err(),
            Error::Malformed(DecodeError::InvalidValue)
        );
    }

    #[test]
    fn rejects_malformed_plaintext_from_a_valid_sender() {
        let f = fixture();
        let bytes = share_to(&f, &f.bob, Suite::X25519, &signed_key());
        let (aad, _, _) = parts(&bytes);
        let s = KeyShare::from_bytes(&bytes).unwrap();
        let mut info = labels::KEY_SHARE_INFO.to_vec();
        info.extend_from_slice(&bytes[..s.header_len]);
        let signed = signed_key().to_share_plaintext().unwrap();
        let mut bad_mode = signed.to_vec();
        bad_mode[0] = 3;
        let bob_key = f.bob.bundle();
        {
            let (pt, err) = (bad_mode, Error::Malformed(DecodeError::InvalidValue));
            let (enc, ct) = hpke_seal(
                Suite::X25519,
                bob_key.share_key(Suite::X25519).unwrap().public_key(),
                &info,
                &aad,
                &pt,
                &mut VectorRng::new(b"raw"),
            )
            .unwrap();
            let share = assemble(&f.alice, &aad, &enc, &ct);
            assert_eq!(open_bob(&f, &share).unwrap_err(), err);
        }
    }

    #[test]
    fn erased_and_unknown_share_keys_have_their_own_errors() {
        let mut f = fixture();
        let policy = crate::ShareKeyPolicy::default();
        let old = share_to(&f, &f.bob, Suite::XWing, &pairwise_key());
        // Bob rotates: the old key is kept during its grace.
        f.bob
            .rotate_share_keys_at(2_000, &mut VectorRng::new(b"rot"))
            .unwrap();
        assert_eq!(open_bob(&f, &old).unwrap(), pairwise_key());
        // After the grace the old secret is erased: the share no longer opens.
        f.bob.maintain_share_keys_at(
            2_000 + policy.keep_superseded_secs + 1,
            &policy,
            &mut VectorRng::new(b"m"),
        );
        assert_eq!(open_bob(&f, &old).unwrap_err(), Error::ShareKeyErased);
        // A share naming a serial Bob never made.
        let (mut aad, enc, ct) = parts(&old);
        let s = KeyShare::from_bytes(&old).unwrap();
        aad[s.header_len - 4..s.header_len].copy_from_slice(&9u32.to_be_bytes());
        let share = assemble(&f.alice, &aad, &enc, &ct);
        assert_eq!(open_bob(&f, &share).unwrap_err(), Error::UnknownShareKey);
    }

    #[test]
    fn parser_rejects_bad_structure() {
        let f = fixture();
        let good = share_to(&f, &f.bob, Suite::X25519, &signed_key());
        let mut v = good.clone();
        v[0] = 1;
        assert_eq!(
            KeyShare::from_bytes(&v),
            Err(Error::Malformed(DecodeError::UnsupportedVersion(1)))
        );
        let mut v = good.clone();
        v[1] = 9;
        assert_eq!(
            KeyShare::from_bytes(&v),
            Err(Error::Malformed(DecodeError::UnsupportedSuite(9)))
        );
        for (rlen, err) in [
            (0, DecodeError::Empty),
            (65, DecodeError::LengthLimit),
            (255, DecodeError::LengthLimit),
        ] {
            let mut v = good.clone();
            v[2] = rlen;
            assert_eq!(KeyShare::from_bytes(&v), Err(Error::Malformed(err)));
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            KeyShare::from_bytes(&long),
            Err(Error::Malformed(DecodeError::TrailingBytes))
        );
        let (aad, enc, _) = parts(&good);
        for (len, err) in [
            (70, DecodeError::InvalidValue),
            (500, DecodeError::LengthLimit),
        ] {
            let share = assemble(&f.alice, &aad, &enc, &vec![0; len]);
            assert_eq!(KeyShare::from_bytes(&share), Err(Error::Malformed(err)));
        }
        // A sender share key of the other suite.
        let s = KeyShare::from_bytes(&good).unwrap();
        let mut aad2 = aad[..s.header_len].to_vec();
        let xwing = f.alice.bundle().share_key(Suite::XWing).unwrap().to_bytes();
        aad2.extend_from_slice(&u16::try_from(xwing.len()).unwrap().to_be_bytes());
        aad2.extend_from_slice(&xwing);
        let share = assemble(&f.alice, &aad2, &enc, &parts(&good).2);
        assert_eq!(
            KeyShare::from_bytes(&share),
            Err(Error::Malformed(DecodeError::InvalidValue))
        );
    }

    #[test]
    fn suite_mismatch_and_too_many_recipients() {
        let f = fixture();
        let bundle = f.bob.bundle();
        let x = Recipient::new(bundle.identity(), bundle.share_key(Suite::X25519).unwrap());
        assert_eq!(
            seal_shares(
                &f.alice,
                &f.room,
                Suite::XWing,
                7,
                &INST,
                &signed_key(),
                &[x]
            )
            .unwrap_err(),
            Error::SuiteUnavailable
        );
        let many = vec![x; MAX_MEMBERS + 1];
        assert_eq!(
            seal_shares(
                &f.alice,
                &f.room,
                Suite::X25519,
                7,
                &INST,
                &signed_key(),
                &many
            )
            .unwrap_err(),
            Error::LimitExceeded
        );
    }

    /// RFC 9180 (appendix A.6-style) vectors of suite 1, base mode, run
    /// through the module's own HPKE open path.
    #[test]
    fn rfc9180_vectors_through_the_open_path() {
        let json: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/hpke-x25519-sha256-aes256gcm-base.json"
        ))
        .unwrap();
        let mut opened = 0;
        for v in json["vectors"].as_array().unwrap() {
            assert_eq!(v["mode"], 0);
            let sk: [u8; 32] = unhex(v["skRm"].as_str().unwrap()).try_into().unwrap();
            let enc = unhex(v["pkEm"].as_str().unwrap());
            let info = unhex(v["info"].as_str().unwrap());
            let first = &v["encryptions"][0];
            let aad = unhex(first["aad"].as_str().unwrap());
            let ct = unhex(first["ct"].as_str().unwrap());
            let pt = hpke_open(Suite::X25519, &sk, None, &enc, &info, &aad, &ct).unwrap();
            assert_eq!(&pt[..], &unhex(first["pt"].as_str().unwrap())[..]);
            let mut bad = ct.clone();
            bad[0] ^= 1;
            assert_eq!(
                hpke_open(Suite::X25519, &sk, None, &enc, &info, &aad, &bad).unwrap_err(),
                Error::Tampered
            );
            opened += 1;
        }
        assert!(opened >= 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        #[test]
        fn prop_round_trip(seed in any::<[u8; 16]>(), epoch in any::<u32>(), index in any::<u32>(),
                           chain in any::<[u8; 32]>(), signed in any::<bool>(), pq in any::<bool>(),
                           room_bytes in proptest::collection::vec(any::<u8>(), 1..=MAX_ROOM_ID_LEN)) {
            let f = fixture();
            let suite = if pq { Suite::XWing } else { Suite::X25519 };
            let r = RoomId::new(&room_bytes).unwrap();
            let key = if signed {
                shared_sender_key(signed_id(&chain), SenderKeyMode::Signed, index, &chain, Some(&chain), &[1; 32], 7).unwrap()
            } else {
                shared_sender_key(seed, SenderKeyMode::Pairwise, index, &chain, None, &[1; 32], 7).unwrap()
            };
            let b = f.bob.bundle();
            let shares = seal_shares_with_rng(&f.alice, &r, suite, epoch, &INST, &key,
                &[Recipient::new(b.identity(), b.share_key(suite).unwrap())], &mut VectorRng::new(&seed)).unwrap();
            let bytes = shares[0].to_bytes();
            let parsed = KeyShare::from_bytes(&bytes).unwrap();
            prop_assert_eq!(parsed.to_bytes(), bytes.clone());
            let opened = open_share(&bytes, &f.bob, f.alice.public(), &r, epoch, &INST).unwrap();
            prop_assert!(opened == key);
        }

        #[test]
        fn prop_every_bit_flip_and_truncation_rejected(seed in any::<[u8; 8]>(), signed in any::<bool>()) {
            let f = fixture();
            let key = if signed { signed_key() } else { pairwise_key() };
            let b = f.bob.bundle();
            let shares = seal_shares_with_rng(&f.alice, &f.room, Suite::X25519, 7, &INST, &key,
                &[Recipient::new(b.identity(), b.share_key(Suite::X25519).unwrap())], &mut VectorRng::new(&seed)).unwrap();
            let bytes = shares[0].to_bytes();
            for i in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[i / 8] ^= 1 << (i % 8);
                prop_assert!(open_bob(&f, &b).is_err(), "bit {} accepted", i);
            }
            for n in 0..bytes.len() {
                prop_assert!(open_bob(&f, &bytes[..n]).is_err());
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let f = fixture();
            if let Ok(share) = KeyShare::from_bytes(&bytes) {
                prop_assert_eq!(share.to_bytes(), bytes);
                prop_assert!(share.open(&f.bob, f.alice.public(), &f.room, 7, &INST).is_err());
            }
        }
    }
}
