//! The message format (protocol version 2): encrypt-then-sign under a sender
//! key, with a per-message salt and a key commitment.
//!
//! # Layout
//!
//! ```text
//! header (authenticated, in the clear; the AEAD's associated data):
//!   +------+------+-------------+---------+-----------+---------------+-----------+---------+-----------------+
//!   | 0x02 | mode | room_id_len | room_id | epoch u32 | sender_key_id | index u32 | salt    | commitment      |
//!   |  1   |  1   |      1      | 1..=64  |     4     |      16       |     4     |   16    |       32        |
//!   +------+------+-------------+---------+-----------+---------------+-----------+---------+-----------------+
//! body:
//!   ciphertext = AES-256-GCM(key_i, nonce_i, aad = header, pad(plaintext)) || tag (16)
//!   signature  = Ed25519(sender key's signing key,
//!                "secret-chat/v2/message/signature" || header || SHA-256(ciphertext || tag))
//!                (64 bytes, present exactly when mode = 1, signed)
//! ```
//!
//! `mode` is 1 (signed, group rooms) or 2 (pairwise, rooms of two). Key,
//! nonce and commitment come from the sender key's ratchet and the salt (see
//! [`sender_key`](crate::sender_key)); the receiver compares the commitment
//! in constant time before it runs the AEAD, so one message cannot open to
//! different plaintexts under different keys. Messages do not depend on the
//! key-share suite, so version 2 headers carry no suite byte. The signature
//! covers a SHA-256 digest of the ciphertext, so a large message is hashed
//! once (at SHA-NI speed) rather than twice by SHA-512 inside Ed25519.
//!
//! # Padding
//!
//! Inside the encryption, the plaintext is followed by `0x80` and zero bytes
//! up to the Padmé length of `len + 1` (at least [`MIN_PADDED_LEN`]): the
//! ciphertext length reveals only a bucket, at most about 12% larger than the
//! message.
//!
//! # Decrypted plaintext
//!
//! A decrypted plaintext is wiped when [`Decrypted`] is dropped, as a byte
//! slice (and its spare capacity) through `zeroize`'s bulk path (1.9.2 and
//! later: a `memset` followed by an optimisation barrier), not element by
//! element with volatile writes: a 1 MiB plaintext is wiped in tens of
//! microseconds (`docs/PERFORMANCE.md`), a small fraction of decrypting it,
//! where a byte-by-byte wipe cost about a third of the decryption.

use crate::error::{DecodeError, Error};
use crate::identity::EdPublic;
use crate::ids::SenderKeyId;
use crate::labels;
use crate::limits::{MAX_PLAINTEXT_LEN, MAX_ROOM_ID_LEN};
use crate::sender_key::{MessageKeys, SenderKeyMode};
use crate::wire::{Reader, Writer};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

pub use crate::limits::MIN_PADDED_LEN;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Ed25519 signature length.
const SIG_LEN: usize = 64;
/// Header length without the room id: version, mode, room id length, epoch,
/// sender key id, index, salt, commitment.
pub const HEADER_FIXED_LEN: usize = 1 + 1 + 1 + 4 + 16 + 4 + 16 + 32;

/// Header fields of one message.
#[derive(Clone, Copy)]
pub(crate) struct Header<'a> {
    pub(crate) mode: SenderKeyMode,
    pub(crate) room_id: &'a [u8],
    pub(crate) epoch: u32,
    pub(crate) sender_key: SenderKeyId,
    pub(crate) index: u32,
    pub(crate) salt: [u8; 16],
    pub(crate) commitment: [u8; 32],
}

impl Header<'_> {
    fn len(&self) -> usize {
        HEADER_FIXED_LEN + self.room_id.len()
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(labels::MESSAGE_VERSION)
            .u8(self.mode.to_byte())
            .u8(self.room_id.len() as u8)
            .bytes(self.room_id)
            .u32(self.epoch)
            .bytes(self.sender_key.as_bytes())
            .u32(self.index)
            .bytes(&self.salt)
            .bytes(&self.commitment);
    }
}

/// The Padmé length (Nikitin et al., 2019) of `len`, at least [`MIN_PADDED_LEN`].
pub fn padded_len(len: usize) -> usize {
    let l = len.max(MIN_PADDED_LEN);
    let e = usize::BITS - 1 - l.leading_zeros(); // floor(log2 l), l >= 32
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let mask = (1usize << (e - s)) - 1;
    (l + mask) & !mask
}

/// What the sender key's Ed25519 key signs: label || header || SHA-256(body).
pub(crate) fn signature_input(header: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(labels::MESSAGE_SIGNATURE_V2.len() + header.len() + 32);
    m.extend_from_slice(labels::MESSAGE_SIGNATURE_V2);
    m.extend_from_slice(header);
    m.extend_from_slice(&Sha256::digest(ciphertext));
    m
}

/// Builds one message: header, padded AEAD ciphertext, optional signature.
pub(crate) fn seal(
    header: &Header<'_>,
    keys: &MessageKeys,
    plaintext: &[u8],
    signing: Option<&SigningKey>,
) -> Result<Vec<u8>, Error> {
    let padded = padded_len(plaintext.len() + 1);
    seal_padded(header, keys, padded, signing, |out| {
        out.extend_from_slice(plaintext);
        out.push(0x80);
    })
}

/// [`seal`] with the padded body written by `fill` (which must append
/// exactly `padded` bytes): lets tests build messages with a bad padding.
pub(crate) fn seal_padded(
    header: &Header<'_>,
    keys: &MessageKeys,
    padded: usize,
    signing: Option<&SigningKey>,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, Error> {
    let header_len = header.len();
    let mut w = Writer::with_capacity(header_len + padded + TAG_LEN + SIG_LEN);
    header.encode(&mut w);
    let mut out = w.into_vec();
    fill(&mut out);
    out.resize(header_len + padded, 0);
    let cipher = Aes256Gcm::new(&keys.key.into());
    let (hdr, body) = out.split_at_mut(header_len);
    let tag = match cipher.encrypt_inout_detached(&keys.nonce.into(), hdr, body.into()) {
        Ok(tag) => tag,
        Err(_) => {
            out.zeroize();
            return Err(Error::LimitExceeded);
        }
    };
    out.extend_from_slice(&tag);
    if let Some(key) = signing {
        let (hdr, ct) = out.split_at(header_len);
        let sig = key.sign(&signature_input(hdr, ct));
        out.extend_from_slice(&sig.to_bytes());
    }
    Ok(out)
}

/// A decrypted plaintext buffer, wiped on drop with `zeroize`'s bulk slice
/// path (see the module docs).
pub(crate) struct Plaintext(Vec<u8>);

impl Plaintext {
    fn take(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.0)
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // The whole allocation: the bytes in use, then the spare capacity.
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
    }
}

/// A parsed, not yet authenticated message: the output of
/// [`Message::from_bytes`]. Use its header to find the sender key, then
/// [`InboundSenderKey::decrypt`](crate::InboundSenderKey::decrypt).
#[derive(Clone, Copy)]
pub struct Message<'a> {
    header: &'a [u8],
    mode: SenderKeyMode,
    room_id: &'a [u8],
    epoch: u32,
    sender_key: SenderKeyId,
    index: u32,
    salt: [u8; 16],
    commitment: [u8; 32],
    ciphertext: &'a [u8],
    signature: Option<[u8; SIG_LEN]>,
}

impl<'a> Message<'a> {
    /// Parses the structure (total: a value or a typed error, never a panic).
    /// Nothing is authenticated yet.
    ///
    /// Rejections, in order: a version other than 2
    /// (`Malformed(UnsupportedVersion(v))`); an unknown mode
    /// (`Malformed(InvalidValue)`); a room id length of 0
    /// (`Malformed(Empty)`) or over 64 (`Malformed(LengthLimit)`); a header cut short (`Malformed(Truncated)`);
    /// a body shorter than `32 + 16` bytes (+ 64 when signed)
    /// (`Malformed(Truncated)`); a body longer than the padded maximum
    /// (`Malformed(LengthLimit)`); a padded length that is not a Padmé bucket
    /// (`Malformed(InvalidValue)`).
    ///
    /// ```
    /// use secret_chat::{DecodeError, Error, Message};
    /// assert_eq!(
    ///     Message::from_bytes(&[1, 2, 3]).unwrap_err(),
    ///     Error::Malformed(DecodeError::UnsupportedVersion(1))
    /// );
    /// ```
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::MESSAGE_VERSION)?;
        let mode = SenderKeyMode::from_byte(r.u8()?).ok_or(DecodeError::InvalidValue)?;
        let room_len = usize::from(r.u8()?);
        if room_len == 0 {
            return Err(DecodeError::Empty.into());
        }
        if room_len > MAX_ROOM_ID_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let room_id = r.bytes(room_len)?;
        let epoch = r.u32()?;
        let sender_key = SenderKeyId(r.array()?);
        let index = r.u32()?;
        let salt = r.array()?;
        let commitment = r.array()?;
        let header_len = bytes.len() - r.remaining();
        let header = bytes.get(..header_len).ok_or(DecodeError::Truncated)?;
        let body = r.rest();
        let sig_len = match mode {
            SenderKeyMode::Signed => SIG_LEN,
            SenderKeyMode::Pairwise => 0,
        };
        let ct_len = body
            .len()
            .checked_sub(sig_len)
            .ok_or(DecodeError::Truncated)?;
        // The padded plaintext is at least MIN_PADDED_LEN, at most the padded
        // maximum, and a Padmé bucket: anything else cannot be a message of
        // this format.
        if ct_len < MIN_PADDED_LEN + TAG_LEN {
            return Err(DecodeError::Truncated.into());
        }
        if ct_len > padded_len(MAX_PLAINTEXT_LEN + 1) + TAG_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        if padded_len(ct_len - TAG_LEN) != ct_len - TAG_LEN {
            return Err(DecodeError::InvalidValue.into());
        }
        let (ciphertext, sig) = body.split_at(ct_len);
        let signature = match mode {
            SenderKeyMode::Signed => {
                let mut s = [0u8; SIG_LEN];
                s.copy_from_slice(sig);
                Some(s)
            }
            SenderKeyMode::Pairwise => None,
        };
        Ok(Self {
            header,
            mode,
            room_id,
            epoch,
            sender_key,
            index,
            salt,
            commitment,
            ciphertext,
            signature,
        })
    }

    /// Signed (group) or pairwise.
    pub fn mode(&self) -> SenderKeyMode {
        self.mode
    }

    /// The room id the header names.
    pub fn room_id(&self) -> &'a [u8] {
        self.room_id
    }

    /// The epoch the header names.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The sender key the header names.
    pub fn sender_key(&self) -> SenderKeyId {
        self.sender_key
    }

    /// The message index the header names.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The header's 16-byte random salt.
    pub fn salt(&self) -> &[u8; 16] {
        &self.salt
    }

    /// The header's 32-byte key commitment.
    pub fn commitment(&self) -> &[u8; 32] {
        &self.commitment
    }

    /// The header bytes (the AEAD's associated data).
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    pub(crate) fn verify_signature(&self, key: &EdPublic) -> Result<(), Error> {
        let sig = self.signature.ok_or(Error::SignatureRequired)?;
        key.verify_strict(
            &signature_input(self.header, self.ciphertext),
            &Signature::from_bytes(&sig),
        )
    }

    /// Opens the AEAD and strips the padding. No plaintext is released
    /// unless the tag verified; the caller has checked the key commitment.
    pub(crate) fn open(&self, keys: &MessageKeys) -> Result<Plaintext, Error> {
        let (ct, tag) = self
            .ciphertext
            .split_at_checked(self.ciphertext.len().saturating_sub(TAG_LEN))
            .ok_or(Error::Tampered)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Tampered)?;
        let mut buf = Plaintext(ct.to_vec());
        let cipher = Aes256Gcm::new(&keys.key.into());
        cipher
            .decrypt_inout_detached(
                &keys.nonce.into(),
                self.header,
                buf.0.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| Error::Tampered)?;
        // Strip `0x80 00*`. A bad padding can only come from a member's own
        // (buggy or malicious) sender: the AEAD already authenticated it.
        let end = buf
            .0
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(Error::BadPadding)?;
        if buf.0.get(end) != Some(&0x80) || buf.0.len() != padded_len(end + 1) {
            return Err(Error::BadPadding);
        }
        buf.0.truncate(end);
        Ok(buf)
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("mode", &self.mode)
            .field("epoch", &self.epoch)
            .field("sender_key", &self.sender_key)
            .field("index", &self.index)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A decrypted message. The plaintext buffer is wiped on drop (see the
/// module docs).
pub struct Decrypted {
    plaintext: Plaintext,
    sender_key: SenderKeyId,
    index: u32,
}

impl Decrypted {
    pub(crate) fn new(plaintext: Plaintext, sender_key: SenderKeyId, index: u32) -> Self {
        Self {
            plaintext,
            sender_key,
            index,
        }
    }

    /// The plaintext.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext.0
    }

    /// Takes the plaintext out (the caller becomes responsible for it).
    pub fn into_plaintext(mut self) -> Vec<u8> {
        self.plaintext.take()
    }

    /// The sender key it was sent under.
    pub fn sender_key(&self) -> SenderKeyId {
        self.sender_key
    }

    /// Its index in the sender's chain.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("sender_key", &self.sender_key)
            .field("index", &self.index)
            .field("len", &self.plaintext.0.len())
            .finish_non_exhaustive()
    }
}
