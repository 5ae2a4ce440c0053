//! The public key image: fingerprints and the ways people compare them.
//!
//! The seed product lets users "check the public key image": if both phones
//! show the same image, no relay swapped a key. This module makes that check
//! hard to fake and easy to do:
//!
//! - a per-member [`Fingerprint`] (iterated SHA-512 over a label, a version,
//!   the member's public identity and member id; Signal's safety-number
//!   structure). Each member's key is hashed on its own: one short hash of
//!   both keys would let a man-in-the-middle, who picks both fake keys, run
//!   a birthday search;
//! - the 1:1 picture ([`KeyImage::pair`]): both members' 128-bit fingerprint
//!   prefixes, sorted, as two 8x8 blocks of 2-bit cells, identical on both
//!   phones, rendered as SVG, PNG (feature `png`) or terminal text, each
//!   decodable back to the exact bits (the PNG decoder also finds the
//!   picture in a screenshot);
//! - a numeric code to read aloud ([`PairVerification::numeric_code`]);
//! - a scannable payload ([`ScannablePayload`]) checked in constant time,
//!   shown as a QR code (SVG, PNG, or the module matrix);
//! - for groups, a [`RoomDigest`] over the sorted member fingerprints,
//!   drawn as its own picture ([`KeyImage::room`]).
//!
//! ```
//! use secret_chat::{IdentityKeyPair, MemberId, Fingerprint, PairVerification};
//! let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
//! let a = Fingerprint::compute(&MemberId::new(b"alice").unwrap(), alice.public());
//! let b = Fingerprint::compute(&MemberId::new(b"bob").unwrap(), bob.public());
//! let on_alices_phone = PairVerification::new(a, b);
//! let on_bobs_phone = PairVerification::new(b, a);
//! assert_eq!(on_alices_phone.image(), on_bobs_phone.image());
//! assert_eq!(on_alices_phone.numeric_code(), on_bobs_phone.numeric_code());
//! // Alice scans Bob's QR code:
//! let scanned = on_bobs_phone.payload().to_bytes();
//! assert!(on_alices_phone.verify_scanned(&scanned).is_ok());
//! ```

mod image;
#[cfg(feature = "png")]
mod png;
mod svg;
mod terminal;

pub use image::{ImageError, ImageKind, KeyImage, TerminalMode};

use crate::error::{DecodeError, Error};
use crate::identity::PublicIdentity;
use crate::ids::MemberId;
use crate::labels;
use crate::limits::{MAX_MEMBERS, MAX_QR_VERSION};
use crate::wire::{Reader, Writer};
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::fmt::Write as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Length of a full [`Fingerprint`] (the first 32 bytes of the final SHA-512).
pub const FINGERPRINT_LEN: usize = 32;
/// Bytes of a fingerprint drawn as one picture block (128 bits).
pub const PICTURE_BLOCK_LEN: usize = 16;
/// Digits of one member's half of the numeric code.
pub const MEMBER_DIGITS: usize = 30;
/// Length of a [`RoomDigest`] (256 bits).
pub const ROOM_DIGEST_LEN: usize = 32;
/// Length of an encoded [`ScannablePayload`].
pub const PAYLOAD_LEN: usize = 1 + 1 + FINGERPRINT_LEN + FINGERPRINT_LEN;

/// One member's fingerprint: public data, so `Copy`; equality is constant
/// time anyway, so comparing a forged fingerprint leaks nothing about
/// where it differs.
///
/// ```text
/// h_0     = SHA-512("secret-chat/v1/fingerprint" || u16(1)
///                   || public_identity (129) || u16(len(member_id)) || member_id)
/// h_{i+1} = SHA-512(h_i || public_identity)          for i in 0..5200
/// fingerprint = h_5200[0..32]
/// ```
#[derive(Clone, Copy)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// Computes the fingerprint of `member` holding `identity` (about 5,200
    /// SHA-512 blocks: compute it once per member and identity).
    ///
    /// ```
    /// use secret_chat::{Fingerprint, IdentityKeyPair, MemberId};
    /// let bob = IdentityKeyPair::generate();
    /// let fp = Fingerprint::compute(&MemberId::new(b"bob")?, bob.public());
    /// assert_eq!(fp.digits().len(), 30); // Bob's half of the numeric code
    /// assert_ne!(fp, Fingerprint::compute(&MemberId::new(b"eve")?, bob.public()));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn compute(member: &MemberId, identity: &PublicIdentity) -> Self {
        Self(fingerprint_raw(member.as_bytes(), identity.as_bytes()))
    }

    /// Wraps 32 fingerprint bytes (for instance, from a scanned payload).
    pub fn from_bytes(bytes: [u8; FINGERPRINT_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }

    /// The first 128 bits, drawn as this member's block of the picture.
    pub fn picture_bits(&self) -> [u8; PICTURE_BLOCK_LEN] {
        let mut out = [0u8; PICTURE_BLOCK_LEN];
        out.copy_from_slice(self.0.get(..PICTURE_BLOCK_LEN).unwrap_or(&[0; 16]));
        out
    }

    /// This member's 30 digits: bytes `0..30` in six chunks of five, each a
    /// big-endian 40-bit integer reduced mod 100,000 and written as 5 digits.
    pub fn digits(&self) -> String {
        let mut out = String::with_capacity(MEMBER_DIGITS);
        for chunk in self.0.chunks_exact(5).take(6) {
            let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let _ = write!(out, "{:05}", v % 100_000);
        }
        out
    }
}

/// Iterated SHA-512 over raw bytes (the identity need not parse, so tests can
/// flip single bits of its encoding).
pub(crate) fn fingerprint_raw(member_id: &[u8], identity: &[u8]) -> [u8; FINGERPRINT_LEN] {
    let mut w = Writer::with_capacity(2 + member_id.len());
    w.vec16(member_id);
    let mut h = Sha512::new()
        .chain_update(labels::FINGERPRINT)
        .chain_update(labels::FINGERPRINT_VERSION.to_be_bytes())
        .chain_update(identity)
        .chain_update(w.as_slice())
        .finalize();
    for _ in 0..labels::FINGERPRINT_ITERATIONS {
        h = Sha512::new()
            .chain_update(h)
            .chain_update(identity)
            .finalize();
    }
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(h.get(..FINGERPRINT_LEN).unwrap_or(&[0; FINGERPRINT_LEN]));
    out
}

impl ConstantTimeEq for Fingerprint {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Fingerprint {}

impl PartialOrd for Fingerprint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by the bytes (public data: not constant time). This is the
/// order in which the picture, the numeric code and the room digest put
/// fingerprints.
impl Ord for Fingerprint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// What one phone shows to verify a 1:1 chat (or one pair in a group): its
/// own fingerprint and its partner's.
///
/// The picture and the numeric code sort the two fingerprints, so both
/// phones show the same; the scannable payload keeps the order (own first),
/// so a phone accepts only its partner's code, never its own reflected.
///
/// With the `serde` feature it serializes as `{"local": .., "remote": ..}`,
/// each fingerprint as 64 lowercase hex digits (an app may store the pair
/// it verified, to notice a change later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct PairVerification {
    local: Fingerprint,
    remote: Fingerprint,
}

impl PairVerification {
    /// Pairs this device's fingerprint with the partner's.
    pub fn new(local: Fingerprint, remote: Fingerprint) -> Self {
        Self { local, remote }
    }

    /// This device's fingerprint.
    pub fn local(&self) -> &Fingerprint {
        &self.local
    }

    /// The partner's fingerprint.
    pub fn remote(&self) -> &Fingerprint {
        &self.remote
    }

    /// The two fingerprints, smaller first.
    pub fn sorted(&self) -> (Fingerprint, Fingerprint) {
        if self.local <= self.remote {
            (self.local, self.remote)
        } else {
            (self.remote, self.local)
        }
    }

    /// The picture both phones show.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, PairVerification};
    /// let (alice, bob) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let on_alices_phone = PairVerification::new(alice, bob);
    /// let on_bobs_phone = PairVerification::new(bob, alice);
    /// assert_eq!(on_alices_phone.image(), on_bobs_phone.image());
    /// let svg = on_alices_phone.image().render_svg(); // or render_png / render_terminal
    /// assert!(svg.contains("<svg"));
    /// ```
    pub fn image(&self) -> KeyImage {
        KeyImage::pair(&self.local, &self.remote)
    }

    /// Which block of [`image`](Self::image) is this device's own: 0 (left)
    /// if its fingerprint sorts first, else 1 (right); the partner's is the
    /// other. An app can label the blocks ("you", "Bob") with it. Both
    /// phones agree: each says its own block, and they are different ones
    /// (unless both fingerprints are equal: then both blocks are the same).
    ///
    /// The blocks are placed by sorting, so when one member's key changes
    /// and its new fingerprint sorts on the other side of the partner's,
    /// the two blocks swap places: both halves of the picture change,
    /// although the partner's block still shows the same bits.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, PairVerification};
    /// let (a, b) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// assert_eq!(PairVerification::new(a, b).local_block(), 0);
    /// assert_eq!(PairVerification::new(b, a).local_block(), 1);
    /// let image = PairVerification::new(b, a).image();
    /// assert_eq!(image.blocks()[1], b.picture_bits());
    /// ```
    pub fn local_block(&self) -> usize {
        usize::from(self.local > self.remote)
    }

    /// The code to read aloud: 60 digits in 12 groups of 5, space
    /// separated; the smaller fingerprint's 30 digits first.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, PairVerification};
    /// let (alice, bob) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let code = PairVerification::new(alice, bob).numeric_code();
    /// assert_eq!(code, PairVerification::new(bob, alice).numeric_code());
    /// assert_eq!(code.split(' ').count(), 12);
    /// ```
    pub fn numeric_code(&self) -> String {
        let (first, second) = self.sorted();
        let digits = first.digits() + &second.digits();
        group(&digits, 5)
    }

    /// The payload this phone shows as a QR code.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, PairVerification};
    /// let (alice, bob) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let shown = PairVerification::new(alice, bob).payload();
    /// let svg = shown.qr_svg()?; // draw it; or `qr_png`, `qr_modules`
    /// assert!(svg.contains("<svg"));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn payload(&self) -> ScannablePayload {
        ScannablePayload::new(self.local, self.remote)
    }

    /// Checks a payload scanned from the partner's screen; see
    /// [`ScannablePayload::verify_scanned`].
    ///
    /// # Errors
    /// As [`ScannablePayload::verify_scanned`].
    ///
    /// ```
    /// use secret_chat::{Error, Fingerprint, PairVerification};
    /// let (alice, bob) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let (on_alice, on_bob) = (PairVerification::new(alice, bob), PairVerification::new(bob, alice));
    /// let scanned = on_bob.payload().to_bytes(); // Alice's camera reads Bob's screen
    /// assert_eq!(on_alice.verify_scanned(&scanned), Ok(()));
    /// let own = on_alice.payload().to_bytes(); // her own code, reflected
    /// assert_eq!(on_alice.verify_scanned(&own), Err(Error::FingerprintMismatch));
    /// ```
    pub fn verify_scanned(&self, scanned: &[u8]) -> Result<(), Error> {
        self.payload().verify_scanned(scanned)
    }
}

/// Splits `s` (ASCII) into space-separated groups of `n` characters.
fn group(s: &str, n: usize) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / n.max(1));
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % n.max(1) == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The bytes one phone shows as a QR code for the other to scan.
///
/// ```text
///  0      1       2                        34                        66
///  +------+-------+------------------------+-------------------------+
///  | 0x01 | suite | own fingerprint (32)   | partner fingerprint (32)|
///  +------+-------+------------------------+-------------------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannablePayload {
    local: Fingerprint,
    remote: Fingerprint,
}

impl ScannablePayload {
    /// The payload of the phone whose own fingerprint is `local`.
    pub fn new(local: Fingerprint, remote: Fingerprint) -> Self {
        Self { local, remote }
    }

    /// The fingerprint of the phone that shows this payload.
    pub fn local(&self) -> &Fingerprint {
        &self.local
    }

    /// The fingerprint that phone holds for its partner.
    pub fn remote(&self) -> &Fingerprint {
        &self.remote
    }

    /// The 66-byte encoding.
    pub fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let mut w = Writer::with_capacity(PAYLOAD_LEN);
        w.u8(labels::PAYLOAD_VERSION)
            .u8(labels::SUITE_X25519_AES256GCM)
            .bytes(self.local.as_bytes())
            .bytes(self.remote.as_bytes());
        let mut out = [0u8; PAYLOAD_LEN];
        out.copy_from_slice(w.as_slice().get(..PAYLOAD_LEN).unwrap_or(&[0; PAYLOAD_LEN]));
        out
    }

    /// Parses an encoding strictly: version, suite, exact length.
    ///
    /// # Errors
    /// [`Error::Malformed`]: [`DecodeError::UnsupportedVersion`],
    /// [`DecodeError::UnsupportedSuite`], [`DecodeError::Truncated`] or
    /// [`DecodeError::TrailingBytes`].
    ///
    /// ```
    /// use secret_chat::{Fingerprint, ScannablePayload};
    /// let p = ScannablePayload::new(Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// assert_eq!(ScannablePayload::from_bytes(&p.to_bytes())?, p);
    /// assert!(ScannablePayload::from_bytes(&p.to_bytes()[..65]).is_err());
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PAYLOAD_VERSION)?;
        let suite = r.u8()?;
        if suite != labels::SUITE_X25519_AES256GCM {
            return Err(DecodeError::UnsupportedSuite(suite).into());
        }
        let local = Fingerprint(r.array()?);
        let remote = Fingerprint(r.array()?);
        r.finish()?;
        Ok(Self { local, remote })
    }

    /// Accepts `scanned` only if it is the partner's payload for this same
    /// pair: the partner's own fingerprint equals our `remote` and the
    /// fingerprint it holds for us equals our `local` (the swapped order).
    /// Our own payload reflected back is refused, except when our `local`
    /// and `remote` fingerprints are equal: then the two payloads are the
    /// same bytes and cannot be told apart (this happens only if the
    /// "partner" is the same member id with the same identity). The
    /// comparison is constant time.
    ///
    /// # Errors
    /// [`Error::Malformed`] if `scanned` does not parse (wrong version,
    /// suite or length); [`Error::FingerprintMismatch`] if it parses but
    /// does not match: a key was substituted, or the wrong code was scanned.
    ///
    /// ```
    /// use secret_chat::{Error, Fingerprint, ScannablePayload};
    /// let [alice, bob, eve] = [[1; 32], [2; 32], [3; 32]].map(Fingerprint::from_bytes);
    /// let mine = ScannablePayload::new(alice, bob);
    /// assert_eq!(mine.verify_scanned(&ScannablePayload::new(bob, alice).to_bytes()), Ok(()));
    /// let swapped = ScannablePayload::new(eve, alice).to_bytes(); // a relay gave Bob's slot to Eve
    /// assert_eq!(mine.verify_scanned(&swapped), Err(Error::FingerprintMismatch));
    /// ```
    pub fn verify_scanned(&self, scanned: &[u8]) -> Result<(), Error> {
        let theirs = Self::from_bytes(scanned)?;
        let ok = theirs.local.ct_eq(&self.remote) & theirs.remote.ct_eq(&self.local);
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Error::FingerprintMismatch)
        }
    }

    /// The payload as an SVG QR code (byte mode, error correction M,
    /// version at most [`MAX_QR_VERSION`]).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if the encoder would need a larger version
    /// (it cannot for the 66-byte payload; the check keeps the promise).
    ///
    /// ```
    /// use secret_chat::{Fingerprint, ScannablePayload};
    /// let p = ScannablePayload::new(Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// assert!(p.qr_svg()?.contains("<svg"));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn qr_svg(&self) -> Result<String, Error> {
        let code = self.qr_code()?;
        Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build())
    }

    /// The QR code's module matrix, for an app that draws the code itself:
    /// the side `n` in modules and `n * n` modules row by row, `true` for a
    /// dark module (no quiet zone: leave 4 light modules around it). The
    /// same code as [`qr_svg`](Self::qr_svg) and `qr_png`.
    ///
    /// # Errors
    /// As [`qr_svg`](Self::qr_svg).
    ///
    /// ```
    /// use secret_chat::{Fingerprint, ScannablePayload};
    /// let p = ScannablePayload::new(Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let (side, modules) = p.qr_modules()?;
    /// assert_eq!(side, 37); // version 5
    /// assert_eq!(modules.len(), side * side);
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn qr_modules(&self) -> Result<(usize, Vec<bool>), Error> {
        let code = self.qr_code()?;
        let side = code.width();
        let modules = code
            .into_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        Ok((side, modules))
    }

    /// The QR version the payload is encoded at (1 to 40).
    pub fn qr_version(&self) -> Result<i16, Error> {
        match self.qr_code()?.version() {
            qrcode::Version::Normal(v) => Ok(v),
            qrcode::Version::Micro(_) => Err(Error::LimitExceeded),
        }
    }

    fn qr_code(&self) -> Result<qrcode::QrCode, Error> {
        let code = qrcode::QrCode::with_error_correction_level(self.to_bytes(), qrcode::EcLevel::M)
            .map_err(|_| Error::LimitExceeded)?;
        match code.version() {
            qrcode::Version::Normal(v) if v <= MAX_QR_VERSION => Ok(code),
            _ => Err(Error::LimitExceeded),
        }
    }
}

/// A 256-bit digest over every member's fingerprint, which all members of a
/// group compare (together with the pairwise pictures).
///
/// ```text
/// digest = SHA-512("secret-chat/v1/room-digest" || u16(1) || u32(n)
///                  || fingerprint_1 || ... || fingerprint_n)[0..32]
/// ```
/// with the fingerprints sorted by their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomDigest([u8; ROOM_DIGEST_LEN]);

/// Computes the [`RoomDigest`] of a room's members (in any order).
///
/// # Errors
/// [`Error::LimitExceeded`] for no members or more than
/// [`MAX_MEMBERS`].
///
/// ```
/// use secret_chat::{IdentityKeyPair, MemberId, room_digest};
/// let (a, b) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
/// let (ma, mb) = (MemberId::new(b"alice")?, MemberId::new(b"bob")?);
/// let digest = room_digest(&[(ma.clone(), a.public().clone()), (mb.clone(), b.public().clone())])?;
/// assert_eq!(digest, room_digest(&[(mb, b.public().clone()), (ma, a.public().clone())])?);
/// assert_eq!(digest.to_hex().len(), 64 + 15); // 16 groups of 4
/// # Ok::<(), secret_chat::Error>(())
/// ```
pub fn room_digest(members: &[(MemberId, PublicIdentity)]) -> Result<RoomDigest, Error> {
    let fingerprints: Vec<Fingerprint> = members
        .iter()
        .map(|(m, id)| Fingerprint::compute(m, id))
        .collect();
    RoomDigest::from_fingerprints(&fingerprints)
}

impl RoomDigest {
    /// Wraps 32 digest bytes (the membership digest a [`Room`](crate::Room)
    /// computes, or bytes read back from storage).
    pub fn from_bytes(bytes: [u8; ROOM_DIGEST_LEN]) -> Self {
        Self(bytes)
    }

    /// Computes the digest from already computed fingerprints (any order).
    ///
    /// # Errors
    /// As [`room_digest`].
    pub fn from_fingerprints(fingerprints: &[Fingerprint]) -> Result<Self, Error> {
        if fingerprints.is_empty() || fingerprints.len() > MAX_MEMBERS {
            return Err(Error::LimitExceeded);
        }
        let mut sorted = fingerprints.to_vec();
        sorted.sort();
        let count = u32::try_from(sorted.len()).map_err(|_| Error::LimitExceeded)?;
        let mut hash = Sha512::new()
            .chain_update(labels::ROOM_DIGEST)
            .chain_update(labels::FINGERPRINT_VERSION.to_be_bytes())
            .chain_update(count.to_be_bytes());
        for f in &sorted {
            hash.update(f.as_bytes());
        }
        let h = hash.finalize();
        let mut out = [0u8; ROOM_DIGEST_LEN];
        out.copy_from_slice(h.get(..ROOM_DIGEST_LEN).unwrap_or(&[0; ROOM_DIGEST_LEN]));
        Ok(Self(out))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; ROOM_DIGEST_LEN] {
        &self.0
    }

    /// Lower-case hex in 16 space-separated groups of 4 characters.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(2 * ROOM_DIGEST_LEN);
        for b in &self.0 {
            let _ = write!(hex, "{b:02x}");
        }
        group(&hex, 4)
    }

    /// The room picture: all 256 bits as two 8x8 blocks, with the room mark.
    ///
    /// ```
    /// use secret_chat::{ImageKind, RoomDigest};
    /// let digest = RoomDigest::from_bytes([7; 32]); // `Room::digest` in an app
    /// assert_eq!(digest.image().kind(), ImageKind::Room);
    /// assert_eq!(digest.to_hex().split(' ').count(), 16);
    /// ```
    pub fn image(&self) -> KeyImage {
        KeyImage::room(self)
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{
        FINGERPRINT_LEN, Fingerprint, PAYLOAD_LEN, ROOM_DIGEST_LEN, RoomDigest, ScannablePayload,
    };
    use crate::serde_support::{fixed, serde_via_hex};

    // Fingerprints and room digests: 64 lowercase hex digits.
    serde_via_hex!(Fingerprint, FINGERPRINT_LEN, |v| v.as_bytes(), |b| fixed(b)
        .map(Fingerprint::from_bytes));
    serde_via_hex!(RoomDigest, ROOM_DIGEST_LEN, |v| v.as_bytes(), |b| fixed(b)
        .map(RoomDigest::from_bytes));
    // The scannable payload: its 66-byte encoding, parsed strictly.
    serde_via_hex!(ScannablePayload, PAYLOAD_LEN, |v| v.to_bytes(), |b| {
        ScannablePayload::from_bytes(b)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hamming distance in 2-bit cells between two 16-byte blocks.
    fn cells_changed(a: &[u8; 16], b: &[u8; 16]) -> usize {
        let mut n = 0;
        for (x, y) in a.iter().zip(b) {
            for k in 0..4 {
                if (x >> (2 * k)) & 3 != (y >> (2 * k)) & 3 {
                    n += 1;
                }
            }
        }
        n
    }

    fn block(f: [u8; 32]) -> [u8; 16] {
        Fingerprint(f).picture_bits()
    }

    /// Every single-bit flip of the raw identity encoding (all 1,032 bits)
    /// and of a member id changes at least 20 of the member's 64 cells.
    #[test]
    fn avalanche_over_identity_and_member_bits() {
        let mut rng = crate::testing::VectorRng::new(b"avalanche");
        let id = crate::IdentityKeyPair::generate_with_rng(&mut rng);
        let enc = id.public().to_bytes();
        let member = b"carol@example.org".to_vec();
        let base = block(fingerprint_raw(&member, &enc));
        let mut min = 64;
        for bit in 0..enc.len() * 8 {
            let mut e = enc;
            e[bit / 8] ^= 1 << (bit % 8);
            min = min.min(cells_changed(&base, &block(fingerprint_raw(&member, &e))));
        }
        for bit in 0..member.len() * 8 {
            let mut m = member.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            min = min.min(cells_changed(&base, &block(fingerprint_raw(&m, &enc))));
        }
        assert!(min >= 20, "a single bit flip changed only {min} cells");
    }

    #[test]
    fn digits_are_signal_style() {
        let mut f = [0u8; 32];
        f[..5].copy_from_slice(&[0xff; 5]); // 2^40 - 1 = 1099511627775
        let d = Fingerprint(f).digits();
        assert_eq!(d.len(), 30);
        assert_eq!(&d[..5], "27775");
        assert_eq!(&d[5..], "0".repeat(25));
        assert_eq!(group("1234567890", 5), "12345 67890");
    }
}
