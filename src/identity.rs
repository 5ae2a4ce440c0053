//! Device identity: the seed product's "private key" and "public key".
//!
//! Each installation makes one [`IdentityKeyPair`]: a long-term Ed25519
//! signing key. Its public half, the [`PublicIdentity`], is what rooms pin and
//! what the public key image shows. The identity key only **signs** (key
//! shares, share keys, membership operations): it never decrypts. Key shares
//! are sealed to rotating [share keys](crate::share_key) that the identity
//! signs, so stealing a device later does not open shares sealed to share
//! keys it had already erased. A reinstall makes a new identity, which rooms
//! pinned to the old one refuse ([`Error::IdentityChanged`]).
//!
//! # Encoding of a public identity (32 bytes)
//!
//! The Ed25519 public key itself. Parsing rejects a non-canonical encoding
//! (`y >= p`) and small-order points ([`Error::WeakKey`]).

use crate::error::{DecodeError, Error};
use crate::labels;
use crate::share_key::{DeviceBundle, ShareKeyPolicy, ShareKeySecret, ShareKeyring, Suite};
use crate::wire::{Reader, Writer};
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use subtle::{Choice, ConstantTimeEq};
use x25519_dalek::PublicKey as XPublic;
#[cfg(test)]
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of an encoded [`PublicIdentity`] (an Ed25519 public key).
pub const PUBLIC_IDENTITY_LEN: usize = 32;
/// Length of an [`IdentityId`].
pub const IDENTITY_ID_LEN: usize = 16;

/// A device's long-term secret (the seed product's "private key") together
/// with the device's share-key secrets.
///
/// Zeroized on drop; `Debug` shows only the public id; equality is constant
/// time. Not `Clone`: one device, one copy (use the encrypted `storage`
/// module to persist it, and persist again after every share-key rotation).
///
/// ```
/// use secret_chat::{IdentityKeyPair, PublicIdentity};
/// let alice = IdentityKeyPair::generate();
/// let public = alice.public().to_bytes();
/// let parsed = PublicIdentity::from_bytes(&public).unwrap();
/// assert_eq!(&parsed, alice.public());
/// ```
pub struct IdentityKeyPair {
    signing: SigningKey,
    public: PublicIdentity,
    share_keys: ShareKeyring,
}

impl IdentityKeyPair {
    /// Makes a new identity and its first share keys from the operating
    /// system's RNG and clock.
    ///
    /// Reads the system clock (the share keys' creation time);
    /// [`generate_at`](Self::generate_at) takes the time and the RNG.
    ///
    /// ```
    /// use secret_chat::IdentityKeyPair;
    /// let alice = IdentityKeyPair::generate(); // once per installation; keep it
    /// assert_eq!(alice.held_share_keys(), 2); // one per suite
    /// ```
    pub fn generate() -> Self {
        Self::generate_at(crate::clock::now_secs(), &mut crate::rng::os_rng())
    }

    /// Makes a new identity from `rng`, with the system clock as the share
    /// keys' creation time ([`generate_at`](Self::generate_at) takes the time
    /// too).
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, rand_core::UnwrapErr};
    /// let alice = IdentityKeyPair::generate_with_rng(&mut UnwrapErr(getrandom::SysRng));
    /// assert_eq!(alice.public().id(), alice.id());
    /// ```
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::generate_at(crate::clock::now_secs(), rng)
    }

    /// Makes a new identity from `rng` with share keys created at `now`
    /// (Unix seconds): deterministic, for tests and vectors.
    ///
    /// Draws 32 bytes for the Ed25519 seed, then 32 bytes per suite in suite
    /// order (X25519, X-Wing): the `DeriveKeyPair` input of that suite's
    /// first share key (serial 1).
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, Suite, rand_core::UnwrapErr};
    /// let now = 1_700_000_000; // the app's clock, in Unix seconds
    /// let alice = IdentityKeyPair::generate_at(now, &mut UnwrapErr(getrandom::SysRng));
    /// assert_eq!(alice.bundle().share_key(Suite::XWing).unwrap().created_at(), now);
    /// ```
    pub fn generate_at<R: CryptoRng + ?Sized>(now: u64, rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut_slice());
        let signing = SigningKey::from_bytes(&seed);
        let keys = ShareKeyring::generate(&signing, 1, now, rng);
        Self::assemble(signing, ShareKeyring::new(keys))
    }

    fn assemble(signing: SigningKey, share_keys: ShareKeyring) -> Self {
        let public = PublicIdentity::assemble(EdPublic::from_key(signing.verifying_key()));
        Self {
            signing,
            public,
            share_keys,
        }
    }

    /// The public half, derived from the secret at construction.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, PublicIdentity};
    /// let alice = IdentityKeyPair::generate();
    /// let sent = alice.public().to_bytes(); // 32 bytes, safe to publish
    /// assert_eq!(&PublicIdentity::from_bytes(&sent)?, alice.public());
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The short id of this identity's public half.
    pub fn id(&self) -> IdentityId {
        self.public.id
    }

    /// What this device publishes: its identity and current signed share
    /// keys. Rooms take members' bundles; publish a new one after every
    /// rotation.
    ///
    /// ```
    /// # use secret_chat::IdentityKeyPair;
    /// let bob = IdentityKeyPair::generate();
    /// let bundle = bob.bundle();
    /// assert_eq!(bundle.identity(), bob.public());
    /// ```
    pub fn bundle(&self) -> DeviceBundle {
        DeviceBundle::new(self.public.clone(), self.share_keys.current_public())
    }

    /// Rotates the share keys now (system clock, OS RNG) and returns the new
    /// bundle to publish. The superseded secrets are kept for the policy's
    /// grace, then erased by [`maintain_share_keys`](Self::maintain_share_keys).
    ///
    /// Reads the system clock; [`rotate_share_keys_at`](Self::rotate_share_keys_at)
    /// takes the time and the RNG.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, Suite};
    /// let mut bob = IdentityKeyPair::generate();
    /// let bundle = bob.rotate_share_keys();
    /// assert_eq!(bundle.share_key(Suite::XWing).unwrap().serial(), 2);
    /// ```
    pub fn rotate_share_keys(&mut self) -> DeviceBundle {
        // Rotation fails only after u32::MAX rotations; the bundle is then unchanged.
        let _ = self.rotate_share_keys_at(crate::clock::now_secs(), &mut crate::rng::os_rng());
        self.bundle()
    }

    /// [`rotate_share_keys`](Self::rotate_share_keys) with an explicit clock
    /// and RNG (draws 32 bytes per suite, like [`generate_at`](Self::generate_at)).
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] after `u32::MAX` rotations (the serial is
    /// exhausted); nothing changes.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, Suite, rand_core::UnwrapErr};
    /// let mut rng = UnwrapErr(getrandom::SysRng);
    /// let mut bob = IdentityKeyPair::generate_at(1_700_000_000, &mut rng);
    /// let bundle = bob.rotate_share_keys_at(1_700_600_000, &mut rng)?;
    /// let key = bundle.share_key(Suite::XWing).unwrap();
    /// assert_eq!((key.serial(), key.created_at()), (2, 1_700_600_000));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn rotate_share_keys_at<R: CryptoRng + ?Sized>(
        &mut self,
        now: u64,
        rng: &mut R,
    ) -> Result<DeviceBundle, Error> {
        self.share_keys.rotate(&self.signing, now, rng)?;
        Ok(self.bundle())
    }

    /// Applies the share-key policy now: erases superseded secrets past their
    /// grace and rotates when the current keys are due. Returns the new
    /// bundle to publish when it rotated. Call it when the app starts and
    /// daily; persist the identity afterwards.
    ///
    /// Reads the system clock;
    /// [`maintain_share_keys_at`](Self::maintain_share_keys_at) takes the time
    /// and the RNG.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, ShareKeyPolicy};
    /// let mut bob = IdentityKeyPair::generate();
    /// assert!(bob.maintain_share_keys(&ShareKeyPolicy::default()).is_none()); // fresh keys
    /// ```
    pub fn maintain_share_keys(&mut self, policy: &ShareKeyPolicy) -> Option<DeviceBundle> {
        self.maintain_share_keys_at(crate::clock::now_secs(), policy, &mut crate::rng::os_rng())
    }

    /// [`maintain_share_keys`](Self::maintain_share_keys) with an explicit
    /// clock and RNG.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, ShareKeyPolicy, rand_core::UnwrapErr};
    /// let (mut rng, policy, day) = (UnwrapErr(getrandom::SysRng), ShareKeyPolicy::default(), 86_400);
    /// let mut bob = IdentityKeyPair::generate_at(0, &mut rng);
    /// assert!(bob.maintain_share_keys_at(day, &policy, &mut rng).is_none()); // not due yet
    /// let new_bundle = bob.maintain_share_keys_at(8 * day, &policy, &mut rng); // weekly
    /// assert!(new_bundle.is_some()); // publish it, then persist the identity
    /// ```
    pub fn maintain_share_keys_at<R: CryptoRng + ?Sized>(
        &mut self,
        now: u64,
        policy: &ShareKeyPolicy,
        rng: &mut R,
    ) -> Option<DeviceBundle> {
        let rotated = if self.share_keys.rotation_due(now, policy) {
            self.share_keys.rotate(&self.signing, now, rng).is_ok()
        } else {
            false
        };
        self.share_keys.erase_expired(now, policy);
        rotated.then(|| self.bundle())
    }

    /// Number of share-key secrets this device holds (current and
    /// superseded within their grace).
    pub fn held_share_keys(&self) -> usize {
        self.share_keys.len()
    }

    /// The share-key secret a key share names (see [`ShareKeyring::find`]).
    pub(crate) fn share_key_secret(
        &self,
        suite: Suite,
        serial: u32,
    ) -> Result<&ShareKeySecret, Error> {
        self.share_keys.find(suite, serial)
    }

    /// My current share key of `suite`.
    pub(crate) fn current_share_key(&self, suite: Suite) -> Option<&ShareKeySecret> {
        self.share_keys.current(suite)
    }

    /// Signs `message` with the identity key.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// Secret state for the encrypted storage: Ed25519 seed (32), then the
    /// share keyring.
    pub(crate) fn encode_secret_state(&self, w: &mut Writer) {
        w.bytes(self.signing.as_bytes());
        self.share_keys.encode_state(w);
    }

    /// Length of [`encode_secret_state`](Self::encode_secret_state)'s output.
    pub(crate) fn secret_state_len(&self) -> usize {
        32 + self.share_keys.state_len()
    }

    /// Inverse of [`encode_secret_state`](Self::encode_secret_state).
    pub(crate) fn decode_secret_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seed = Zeroizing::new(r.array::<32>()?);
        let signing = SigningKey::from_bytes(&seed);
        let keys = ShareKeyring::decode_state(r, &signing)?;
        Ok(Self::assemble(signing, keys))
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("id", &self.public.id)
            .finish_non_exhaustive()
    }
}

/// Compares the identity secret in constant time (share keys are derived
/// state of the same device).
impl ConstantTimeEq for IdentityKeyPair {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.signing.as_bytes().ct_eq(other.signing.as_bytes())
    }
}

impl PartialEq for IdentityKeyPair {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for IdentityKeyPair {}

impl Drop for IdentityKeyPair {
    fn drop(&mut self) {
        // SigningKey zeroizes itself on drop (its `zeroize` feature is on);
        // each share-key secret zeroizes itself in its own Drop.
    }
}

impl ZeroizeOnDrop for IdentityKeyPair {}

/// A short, stable id of a [`PublicIdentity`]: the first 16 bytes of
/// SHA-256(`"secret-chat/v2/identity-id"` || Ed25519 public key).
///
/// A handle for apps and logs. It is not a security fingerprint (see
/// [`fingerprint`](crate::fingerprint) for that).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityId(pub(crate) [u8; IDENTITY_ID_LEN]);

impl IdentityId {
    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; IDENTITY_ID_LEN] {
        &self.0
    }

    /// Wraps 16 bytes read from the wire.
    pub fn from_bytes(bytes: [u8; IDENTITY_ID_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// A device's public identity (the seed product's "public key"): its
/// Ed25519 identity key.
///
/// Only constructed from a key pair or through [`from_bytes`](Self::from_bytes),
/// which checks the key, so holding one means the key is canonical and not
/// of small order.
#[derive(Clone)]
pub struct PublicIdentity {
    signing: EdPublic,
    id: IdentityId,
}

impl PublicIdentity {
    fn assemble(signing: EdPublic) -> Self {
        let digest = Sha256::new()
            .chain_update(labels::IDENTITY_ID)
            .chain_update(signing.as_bytes())
            .finalize();
        let mut id = [0u8; IDENTITY_ID_LEN];
        id.copy_from_slice(&digest[..IDENTITY_ID_LEN]);
        Self {
            signing,
            id: IdentityId(id),
        }
    }

    /// Parses and checks an encoded public identity (exactly 32 bytes).
    ///
    /// ```
    /// # use secret_chat::{PublicIdentity, Error, DecodeError};
    /// assert_eq!(
    ///     PublicIdentity::from_bytes(&[1, 2, 3]).unwrap_err(),
    ///     Error::Malformed(DecodeError::Truncated),
    /// );
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let key: [u8; 32] = r.array()?;
        r.finish()?;
        Ok(Self::assemble(EdPublic::parse(&key)?))
    }

    /// A public identity from a key already checked (or vouched for by an
    /// authenticated record): no point decompression here.
    pub(crate) fn from_checked(signing: EdPublic) -> Self {
        Self::assemble(signing)
    }

    /// The canonical 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        *self.signing.as_bytes()
    }

    /// The canonical encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_IDENTITY_LEN] {
        self.signing.as_bytes()
    }

    /// The short id.
    pub fn id(&self) -> IdentityId {
        self.id
    }

    /// The Ed25519 key that signs this identity's key shares, share keys and
    /// membership operations.
    pub(crate) fn signing_key(&self) -> &EdPublic {
        &self.signing
    }

    /// Verifies an identity signature (strict Ed25519) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        self.signing.verify_strict(message, signature)
    }
}

impl PartialEq for PublicIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for PublicIdentity {}

impl core::hash::Hash for PublicIdentity {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key: its 32 bytes, and the decompressed point.
///
/// Keys that arrive from the network are checked when parsed
/// ([`parse`](Self::parse): canonical encoding, not of small order) and
/// keep their point. Keys read back from an encrypted state record were
/// checked before they were stored, and the record's tag vouches for them:
/// [`stored`](Self::stored) keeps only the bytes and decompresses on first
/// use (a room of a thousand members then loads without a thousand
/// square roots). Equality, order and hash are those of the bytes.
#[derive(Clone)]
pub(crate) struct EdPublic {
    bytes: [u8; 32],
    /// Boxed: a decompressed key is ~200 bytes, and most stored keys of a
    /// large room are never used.
    point: OnceLock<Option<Box<VerifyingKey>>>,
}

impl EdPublic {
    /// Parses and checks a key (see [`parse_ed25519_public`]).
    pub(crate) fn parse(bytes: &[u8; 32]) -> Result<Self, Error> {
        parse_ed25519_public(bytes).map(Self::from_key)
    }

    /// A key already decompressed and checked.
    pub(crate) fn from_key(key: VerifyingKey) -> Self {
        Self {
            bytes: key.to_bytes(),
            point: OnceLock::from(Some(Box::new(key))),
        }
    }

    /// A key from authenticated storage: decompressed lazily.
    pub(crate) fn stored(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            point: OnceLock::new(),
        }
    }

    /// The encoded key.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The point, decompressed on first use. `None` only for stored bytes
    /// that are no valid key (impossible for records this crate wrote).
    fn point(&self) -> Option<&VerifyingKey> {
        self.point
            .get_or_init(|| parse_ed25519_public(&self.bytes).ok().map(Box::new))
            .as_deref()
    }

    /// Strict Ed25519 verification ([`verify_strict`]).
    pub(crate) fn verify_strict(&self, message: &[u8], sig: &Signature) -> Result<(), Error> {
        match self.point() {
            Some(key) => verify_strict(key, message, sig),
            None => Err(Error::BadSignature),
        }
    }
}

impl PartialEq for EdPublic {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for EdPublic {}

impl PartialOrd for EdPublic {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EdPublic {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl core::hash::Hash for EdPublic {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

/// Parses an Ed25519 public key, rejecting non-canonical encodings and
/// small-order points.
pub(crate) fn parse_ed25519_public(bytes: &[u8; 32]) -> Result<VerifyingKey, Error> {
    // Canonical encoding: y < p (the top bit is x's sign). The only points
    // whose sign bit could be non-canonical have x = 0, i.e. y = 1 or y = -1,
    // and those are of small order, refused just below.
    let mut y = *bytes;
    y[31] &= 0x7f;
    if !is_canonical_field_element(&y) {
        return Err(Error::Malformed(DecodeError::InvalidValue));
    }
    let key =
        VerifyingKey::from_bytes(bytes).map_err(|_| Error::Malformed(DecodeError::InvalidValue))?;
    if key.is_weak() {
        return Err(Error::WeakKey);
    }
    Ok(key)
}

/// Strict Ed25519 verification: rejects non-canonical `S`, small-order `R`
/// and small-order keys (`verify_strict`).
pub(crate) fn verify_strict(
    key: &VerifyingKey,
    message: &[u8],
    sig: &Signature,
) -> Result<(), Error> {
    key.verify_strict(message, sig)
        .map_err(|_| Error::BadSignature)
}

/// Parses an X25519 public key: the encoding must be canonical (`u < p`,
/// top bit clear) and the point must not be of low order (its product with a
/// clamped scalar is not the all-zero point).
pub(crate) fn parse_x25519_public(bytes: &[u8; 32]) -> Result<XPublic, Error> {
    if !is_canonical_field_element(bytes) {
        return Err(Error::Malformed(DecodeError::InvalidValue));
    }
    if x25519_dalek::x25519(labels::LOW_ORDER_CHECK_SCALAR, *bytes) == [0u8; 32] {
        return Err(Error::WeakKey);
    }
    Ok(XPublic::from(*bytes))
}

/// X25519 key agreement through the identity checks: the peer's key must
/// parse ([`parse_x25519_public`]) and the result must be contributory.
///
/// Production key agreement happens inside HPKE (whose DHKEM applies the same
/// all-zero check); this function exists so that Wycheproof's X25519 vectors
/// exercise the identity's public-key checks ([`parse_x25519_public`]), which
/// every parsed identity goes through, together with the agreement itself.
#[cfg(test)]
pub(crate) fn x25519_agree(
    secret: &[u8; 32],
    peer: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let peer = parse_x25519_public(peer)?;
    let shared = StaticSecret::from(*secret).diffie_hellman(&peer);
    if !shared.was_contributory() {
        return Err(Error::WeakKey);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// Whether `b` is a canonical X25519 u-coordinate (`u < 2^255 - 19`, top bit clear).
pub(crate) fn is_canonical_field_element(b: &[u8; 32]) -> bool {
    // p = 2^255 - 19, little endian: ed ff .. ff 7f
    if b[31] & 0x80 != 0 {
        return false;
    }
    let at_max = b[31] == 0x7f && b[1..31].iter().all(|&x| x == 0xff);
    !(at_max && b[0] >= 0xed)
}

impl Zeroize for IdentityId {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;
    use proptest::prelude::*;

    fn test_rng(seed: u8) -> VectorRng {
        VectorRng::new(&[seed])
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let id = IdentityKeyPair::generate_with_rng(&mut test_rng(1));
        let s = format!("{id:?}");
        let expected = format!("IdentityKeyPair {{ id: {:?}, .. }}", id.id());
        assert_eq!(s, expected);
        assert!(s.starts_with("IdentityKeyPair { id: IdentityId("));
        let p = format!("{:?}", id.public());
        assert_eq!(p, format!("PublicIdentity {{ id: {:?}, .. }}", id.id()));
        let secret_hex: String = id
            .signing
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!s.contains(&secret_hex[..8]));
    }

    #[test]
    fn deterministic_and_constant_time_eq() {
        let a = IdentityKeyPair::generate_with_rng(&mut test_rng(7));
        let b = IdentityKeyPair::generate_with_rng(&mut test_rng(7));
        let c = IdentityKeyPair::generate_with_rng(&mut test_rng(8));
        assert!(a == b);
        assert!(a != c);
        assert_eq!(a.public(), b.public());
        let mut w = Writer::default();
        a.encode_secret_state(&mut w);
        assert_eq!(w.len(), a.secret_state_len());
        let back = IdentityKeyPair::decode_secret_state(&mut Reader::new(w.as_slice())).unwrap();
        assert!(back == a);
        assert_eq!(back.bundle(), a.bundle());
    }

    #[test]
    fn rejects_low_order_x25519_and_weak_ed25519() {
        // The all-zero point and the point of order 2 (u = p - 1, canonical).
        assert_eq!(parse_x25519_public(&[0; 32]).unwrap_err(), Error::WeakKey);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(parse_x25519_public(&one).unwrap_err(), Error::WeakKey);
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        assert_eq!(parse_x25519_public(&p_minus_1).unwrap_err(), Error::WeakKey);
        // Non-canonical: p itself and anything with the top bit set.
        let mut p = p_minus_1;
        p[0] = 0xed;
        assert_eq!(
            parse_x25519_public(&p).unwrap_err(),
            Error::Malformed(DecodeError::InvalidValue)
        );
        let good = *XPublic::from(&StaticSecret::from([9u8; 32])).as_bytes();
        let mut high = good;
        high[31] |= 0x80;
        assert_eq!(
            parse_x25519_public(&high).unwrap_err(),
            Error::Malformed(DecodeError::InvalidValue)
        );
        assert!(parse_x25519_public(&good).is_ok());
        // Ed25519 identity point (small order).
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert_eq!(parse_ed25519_public(&ident).unwrap_err(), Error::WeakKey);
    }

    #[test]
    fn non_canonical_ed25519_encodings_are_rejected() {
        // y + p for small y: decompression reduces mod p, so without the
        // canonical check some of these would parse as valid, non-weak keys.
        let mut decompressible = 0;
        for v in 0u8..19 {
            let mut b = [0xffu8; 32];
            b[31] = 0x7f;
            b[0] = 0xed + v;
            for sign in [0u8, 0x80] {
                let mut k = b;
                k[31] |= sign;
                if VerifyingKey::from_bytes(&k).is_ok_and(|key| !key.is_weak()) {
                    decompressible += 1;
                }
                assert_eq!(
                    parse_ed25519_public(&k).unwrap_err(),
                    Error::Malformed(DecodeError::InvalidValue)
                );
            }
        }
        assert!(decompressible > 0, "the check is exercised");
    }

    #[test]
    fn wycheproof_x25519_through_identity_agreement() {
        use wycheproof::xdh::{TestFlag, TestName, TestSet};
        let set = TestSet::load(TestName::X25519).unwrap();
        let (mut accepted, mut rejected, mut stricter) = (0, 0, 0);
        for group in &set.test_groups {
            for t in &group.tests {
                let Ok(secret) = <[u8; 32]>::try_from(&t.private_key[..]) else {
                    continue;
                };
                let Ok(public) = <[u8; 32]>::try_from(&t.public_key[..]) else {
                    // Wrong-length public keys cannot reach this function: the
                    // identity decoder reads exactly 32 bytes.
                    assert!(t.result.must_fail() || t.flags.contains(&TestFlag::PublicKeyTooLong));
                    rejected += 1;
                    continue;
                };
                match x25519_agree(&secret, &public) {
                    Ok(shared) => {
                        assert!(!t.result.must_fail(), "tc {} must fail", t.tc_id);
                        assert_eq!(&shared[..], &t.shared_secret[..], "tc {}", t.tc_id);
                        accepted += 1;
                    }
                    Err(_) if t.result.must_fail() => rejected += 1,
                    Err(_) => {
                        // Documented stricter rejections: low-order points
                        // (all-zero shared secret) and non-canonical
                        // encodings (u >= p or the top bit set).
                        let documented = t.flags.iter().any(|f| {
                            matches!(
                                f,
                                TestFlag::LowOrderPublic
                                    | TestFlag::ZeroSharedSecret
                                    | TestFlag::NonCanonicalPublic
                                    | TestFlag::SmallPublicKey
                            )
                        }) || public[31] & 0x80 != 0;
                        assert!(
                            documented,
                            "tc {} rejected without a documented reason: {:?}",
                            t.tc_id, t.flags
                        );
                        stricter += 1;
                    }
                }
            }
        }
        assert!(accepted > 100, "accepted {accepted}");
        assert!(stricter > 0 && rejected + stricter > 10);
    }

    #[test]
    fn wycheproof_ed25519_through_identity_verification() {
        use wycheproof::eddsa::{TestName, TestSet};
        let set = TestSet::load(TestName::Ed25519).unwrap();
        let (mut ok, mut bad) = (0, 0);
        for group in &set.test_groups {
            let pk: [u8; 32] = group.key.pk[..].try_into().unwrap();
            let key = parse_ed25519_public(&pk);
            for t in &group.tests {
                let verdict = match (&key, <[u8; 64]>::try_from(&t.sig[..])) {
                    (Ok(key), Ok(sig)) => verify_strict(key, &t.msg, &Signature::from_bytes(&sig)),
                    _ => Err(Error::BadSignature),
                };
                if t.result.must_fail() {
                    assert!(verdict.is_err(), "tc {} must fail", t.tc_id);
                    bad += 1;
                } else {
                    assert!(verdict.is_ok(), "tc {} must pass", t.tc_id);
                    ok += 1;
                }
            }
        }
        assert!(ok > 10 && bad > 50, "ok {ok} bad {bad}");
    }

    #[test]
    fn every_bit_flip_of_a_device_bundle_is_rejected() {
        use crate::share_key::DeviceBundle;
        let kp = IdentityKeyPair::generate_at(5, &mut test_rng(11));
        let bytes = kp.bundle().to_bytes();
        assert_eq!(DeviceBundle::from_bytes(&bytes).unwrap(), kp.bundle());
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(DeviceBundle::from_bytes(&b).is_err(), "bit {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(DeviceBundle::from_bytes(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn share_keys_rotate_expire_and_survive_export() {
        use crate::share_key::{ShareKeyPolicy, Suite};
        let policy = ShareKeyPolicy::default();
        let mut kp = IdentityKeyPair::generate_at(100, &mut test_rng(12));
        assert_eq!(kp.held_share_keys(), 2);
        assert!(
            kp.maintain_share_keys_at(
                100 + policy.rotate_after_secs - 1,
                &policy,
                &mut test_rng(1)
            )
            .is_none()
        );
        let t = 100 + policy.rotate_after_secs;
        let rotated = kp
            .maintain_share_keys_at(t, &policy, &mut test_rng(2))
            .unwrap();
        assert_eq!(rotated.share_key(Suite::XWing).unwrap().serial(), 2);
        assert_eq!(kp.held_share_keys(), 4);
        assert!(kp.share_key_secret(Suite::X25519, 1).is_ok());
        // Kept through its grace, erased after, and the export forgets it too.
        let no_rotation = ShareKeyPolicy {
            rotate_after_secs: u64::MAX,
            ..policy
        };
        kp.maintain_share_keys_at(
            t + policy.keep_superseded_secs,
            &no_rotation,
            &mut test_rng(3),
        );
        assert_eq!(kp.held_share_keys(), 4);
        kp.maintain_share_keys_at(
            t + policy.keep_superseded_secs + 1,
            &no_rotation,
            &mut test_rng(3),
        );
        assert_eq!(kp.held_share_keys(), 2);
        assert_eq!(
            kp.share_key_secret(Suite::X25519, 1).err(),
            Some(Error::ShareKeyErased)
        );
        assert_eq!(
            kp.share_key_secret(Suite::X25519, 3).err(),
            Some(Error::UnknownShareKey)
        );
        let mut w = Writer::default();
        kp.encode_secret_state(&mut w);
        let back = IdentityKeyPair::decode_secret_state(&mut Reader::new(w.as_slice())).unwrap();
        assert_eq!(back.held_share_keys(), 2);
        assert_eq!(
            back.share_key_secret(Suite::XWing, 1).err(),
            Some(Error::ShareKeyErased)
        );
        assert_eq!(back.bundle(), kp.bundle());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn bundle_round_trip(seed in any::<[u8; 32]>()) {
            let kp = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&seed));
            let bytes = kp.public().to_bytes();
            let back = PublicIdentity::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, kp.public());
            prop_assert_eq!(back.to_bytes(), bytes);
            prop_assert_eq!(back.id(), kp.id());
        }

        #[test]
        fn truncation_and_trailing_bytes_rejected(seed in any::<[u8; 32]>()) {
            let kp = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&seed));
            let bytes = kp.public().to_bytes();
            for n in 0..bytes.len() {
                prop_assert_eq!(PublicIdentity::from_bytes(&bytes[..n]).unwrap_err(),
                    Error::Malformed(DecodeError::Truncated));
            }
            let mut long = bytes.to_vec();
            long.push(0);
            prop_assert_eq!(PublicIdentity::from_bytes(&long).unwrap_err(), Error::Malformed(DecodeError::TrailingBytes));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PublicIdentity::from_bytes(&bytes);
        }
    }
}
