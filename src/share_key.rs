//! Share keys: the rotating public keys that "exchange secret keys".
//!
//! A device never decrypts with its identity key. Key shares (sender keys
//! wrapped with HPKE) are sealed to one of the device's **share keys**
//! instead: a current one per [`Suite`], and superseded ones kept only for a
//! grace period ([`ShareKeyPolicy::keep_superseded_secs`]) and then erased.
//! Each share key has a serial number, a creation time and a suite, and its
//! public half is signed by the identity key ([`SignedShareKey`]). What a
//! device publishes through its relay is its [`DeviceBundle`]: the identity
//! and the current signed share key of each suite.
//!
//! Because old share-key secrets are erased, a thief who steals a device's
//! whole state later cannot open key shares that were sealed to share keys
//! erased before the theft (forward secrecy of the key exchange), and after
//! the victim rotates, shares sealed to the new key are out of the thief's
//! reach too (healing against a passive thief).
//!
//! # Suites
//!
//! | suite | byte | HPKE KEM | public key | encapsulated key |
//! |---|---|---|---|---|
//! | [`Suite::X25519`] | 1 | DHKEM(X25519, HKDF-SHA256), 0x0020 | 32 | 32 |
//! | [`Suite::XWing`] (default) | 2 | X-Wing (ML-KEM-768 + X25519), 0x647A | 1216 | 1120 |
//!
//! Both use HKDF-SHA256 and AES-256-GCM. X-Wing stays secure while either
//! ML-KEM-768 or X25519 holds, so a recording of today's traffic does not fall
//! to a future quantum computer.
//!
//! # Encoding of a signed share key
//!
//! ```text
//!  +------+-------+------------+----------------+---------------------+---------------+
//!  | 0x02 | suite | serial u32 | created u64 s  | public key (32|1216) | signature (64)|
//!  +------+-------+------------+----------------+---------------------+---------------+
//!  signature = Ed25519(identity, "secret-chat/v2/share-key/signature"
//!                                || identity public key (32) || every byte before it)
//! ```
//!
//! ```
//! use secret_chat::{DeviceBundle, IdentityKeyPair, Suite};
//! let mut bob = IdentityKeyPair::generate();
//! let published = bob.bundle().to_bytes();              // goes through the relay
//! let seen = DeviceBundle::from_bytes(&published).unwrap(); // checks every signature
//! assert_eq!(seen.identity(), bob.public());
//! let first = seen.share_key(Suite::XWing).unwrap().serial();
//! let rotated = bob.rotate_share_keys();
//! assert_eq!(rotated.share_key(Suite::XWing).unwrap().serial(), first + 1);
//! ```

use crate::error::{DecodeError, Error};
use crate::identity::{PublicIdentity, parse_x25519_public};
use crate::labels;
use crate::wire::{Reader, Writer};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey};
use hpke::{Deserializable, Kem as KemTrait, Serializable};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

/// HPKE KEM of [`Suite::X25519`].
pub(crate) type KemX25519 = hpke::kem::X25519HkdfSha256;
/// HPKE KEM of [`Suite::XWing`].
pub(crate) type KemXWing = hpke::kem::XWing;

/// Length of an X-Wing public key.
pub const XWING_PUBLIC_LEN: usize = 1216;
/// Length of an X-Wing encapsulated key.
pub const XWING_ENC_LEN: usize = 1120;
/// Length of the identity signature on a share key.
const SIGNATURE_LEN: usize = 64;
/// Bytes of a signed share key before its public key.
const SIGNED_PREFIX_LEN: usize = 1 + 1 + 4 + 8;

/// The key-exchange suite of a room: which HPKE KEM key shares use.
///
/// With the `serde` feature it serializes as its suite byte (a number) and
/// deserializes through [`Suite::from_byte`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "u8", into = "u8")
)]
#[non_exhaustive]
pub enum Suite {
    /// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (suite byte 1):
    /// small and fast, not post-quantum.
    X25519,
    /// X-Wing (ML-KEM-768 + X25519) / HKDF-SHA256 / AES-256-GCM (suite byte
    /// 2): post-quantum hybrid, the default for new rooms.
    #[default]
    XWing,
}

impl Suite {
    /// Every suite, in byte order.
    pub const ALL: [Suite; 2] = [Suite::X25519, Suite::XWing];

    /// The suite byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::X25519 => labels::SUITE_X25519,
            Self::XWing => labels::SUITE_XWING,
        }
    }

    /// Parses a suite byte.
    ///
    /// ```
    /// use secret_chat::{DecodeError, Suite};
    /// assert_eq!(Suite::from_byte(Suite::XWing.to_byte()), Ok(Suite::XWing));
    /// assert_eq!(Suite::from_byte(9), Err(DecodeError::UnsupportedSuite(9)));
    /// ```
    pub fn from_byte(b: u8) -> Result<Self, DecodeError> {
        match b {
            labels::SUITE_X25519 => Ok(Self::X25519),
            labels::SUITE_XWING => Ok(Self::XWing),
            other => Err(DecodeError::UnsupportedSuite(other)),
        }
    }

    /// Length of a public share key of this suite.
    pub fn public_len(self) -> usize {
        match self {
            Self::X25519 => 32,
            Self::XWing => XWING_PUBLIC_LEN,
        }
    }

    /// Length of an HPKE encapsulated key of this suite.
    pub fn enc_len(self) -> usize {
        match self {
            Self::X25519 => 32,
            Self::XWing => XWING_ENC_LEN,
        }
    }

    /// Random bytes one HPKE encapsulation draws: 32 for X25519 (the
    /// ephemeral key is `DeriveKeyPair` of them), 64 for X-Wing (the
    /// encapsulation seed).
    pub fn encapsulation_randomness(self) -> usize {
        match self {
            Self::X25519 => 32,
            Self::XWing => 64,
        }
    }
}

/// Rotate the share key after a week: a thief of a device's state can open
/// shares sealed to the keys it finds, so a week bounds how far back a theft
/// reaches, at one published bundle per device per week.
pub const DEFAULT_ROTATE_AFTER_SECS: u64 = 7 * 24 * 3600;
/// Keep a superseded share key's secret 14 days: members that have not yet
/// seen the new bundle keep sealing to the old one for a while (phones that
/// are offline for days), and shares already in flight must still open.
pub const DEFAULT_KEEP_SUPERSEDED_SECS: u64 = 14 * 24 * 3600;
/// Senders refuse a member's share key older than 30 days: more than four
/// rotation periods, so a key that old means the member's device is gone or
/// the relay is withholding its newer bundles.
pub const DEFAULT_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// When a device rotates its share keys, how long it keeps superseded
/// secrets, and how old a member's share key a sender still accepts.
///
/// With the `serde` feature it serializes as its three fields (unknown fields
/// are refused), so an app can keep a chosen policy in its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ShareKeyPolicy {
    /// Rotate the current share keys once they are this old (seconds).
    pub rotate_after_secs: u64,
    /// Erase a superseded share key's secret this long after it was
    /// superseded (seconds).
    pub keep_superseded_secs: u64,
    /// Refuse to seal to a member's share key older than this (seconds).
    pub max_age_secs: u64,
}

impl Default for ShareKeyPolicy {
    fn default() -> Self {
        Self {
            rotate_after_secs: DEFAULT_ROTATE_AFTER_SECS,
            keep_superseded_secs: DEFAULT_KEEP_SUPERSEDED_SECS,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
        }
    }
}

/// The public half of a share key, signed by its device's identity.
///
/// Only made by the device itself or by [`from_bytes`](Self::from_bytes),
/// which verifies the signature against the identity the caller expects, so
/// holding one means its owner's identity signed it.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedShareKey {
    suite: Suite,
    serial: u32,
    created_at: u64,
    encoded: Vec<u8>,
}

impl SignedShareKey {
    /// Signs a share key's public half with the identity key.
    fn sign(
        signing: &SigningKey,
        suite: Suite,
        serial: u32,
        created_at: u64,
        public: &[u8],
    ) -> Self {
        let mut w = Writer::with_capacity(SIGNED_PREFIX_LEN + public.len() + SIGNATURE_LEN);
        w.u8(labels::PROTOCOL_VERSION)
            .u8(suite.to_byte())
            .u32(serial)
            .u64(created_at)
            .bytes(public);
        let identity = signing.verifying_key().to_bytes();
        let signature = signing.sign(&signature_input(&identity, w.as_slice()));
        w.bytes(&signature.to_bytes());
        Self {
            suite,
            serial,
            created_at,
            encoded: w.into_vec(),
        }
    }

    /// Parses a signed share key and verifies it was signed by `owner`.
    ///
    /// Refused: malformed bytes ([`Error::Malformed`]), an unknown suite, a
    /// weak or invalid public key ([`Error::WeakKey`] or
    /// [`Error::Malformed`]), a signature by any other identity
    /// ([`Error::BadSignature`]).
    ///
    /// ```
    /// use secret_chat::{Error, IdentityKeyPair, SignedShareKey, Suite};
    /// let (bob, mallory) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let sent = bob.bundle().share_key(Suite::XWing).unwrap().to_bytes();
    /// let key = SignedShareKey::from_bytes(&sent, bob.public())?;
    /// assert_eq!((key.suite(), key.serial()), (Suite::XWing, 1));
    /// assert_eq!(SignedShareKey::from_bytes(&sent, mallory.public()), Err(Error::BadSignature));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn from_bytes(bytes: &[u8], owner: &PublicIdentity) -> Result<Self, Error> {
        let parsed = Self::parse_unverified(bytes)?;
        let signed = bytes
            .get(..bytes.len().saturating_sub(SIGNATURE_LEN))
            .ok_or(Error::Malformed(DecodeError::Truncated))?;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(bytes.get(signed.len()..).unwrap_or_default());
        owner.verify(
            &signature_input(owner.as_bytes(), signed),
            &Signature::from_bytes(&sig),
        )?;
        Ok(parsed)
    }

    /// Structure only: version, suite, serial, exact length (no key check,
    /// no signature). Returns the suite. Used where a share key is carried
    /// along and checked in full only when it is adopted.
    pub(crate) fn parse_structure(bytes: &[u8]) -> Result<Suite, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let suite = Suite::from_byte(r.u8()?)?;
        if r.u32()? == 0 {
            return Err(DecodeError::InvalidValue.into());
        }
        let _created_at = r.u64()?;
        let _public = r.bytes(suite.public_len())?;
        let _signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        Ok(suite)
    }

    /// Structure only, for a share key read back from authenticated storage
    /// (its key and signature were checked when it arrived; the record's tag
    /// vouches for the bytes).
    pub(crate) fn from_stored(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let suite = Suite::from_byte(r.u8()?)?;
        let serial = r.u32()?;
        let created_at = r.u64()?;
        let _public = r.bytes(suite.public_len())?;
        let _signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        if serial == 0 {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(Self {
            suite,
            serial,
            created_at,
            encoded: bytes.to_vec(),
        })
    }

    /// Structure and key checks only (the signature is checked by the
    /// caller).
    pub(crate) fn parse_unverified(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let suite = Suite::from_byte(r.u8()?)?;
        let serial = r.u32()?;
        let created_at = r.u64()?;
        let public = r.bytes(suite.public_len())?;
        let _signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        if serial == 0 {
            return Err(DecodeError::InvalidValue.into());
        }
        check_public(suite, public)?;
        Ok(Self {
            suite,
            serial,
            created_at,
            encoded: bytes.to_vec(),
        })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The serial number (1 for a device's first share keys, one more per
    /// rotation).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Creation time, Unix seconds, as its owner's clock said.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The public key bytes (32 or 1216).
    pub fn public_key(&self) -> &[u8] {
        let end = self.encoded.len().saturating_sub(SIGNATURE_LEN);
        self.encoded.get(SIGNED_PREFIX_LEN..end).unwrap_or_default()
    }

    /// The canonical encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The canonical encoding, owned.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// Whether a sender should still seal to this key at `now` under
    /// `policy` (its age is at most [`ShareKeyPolicy::max_age_secs`]).
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, ShareKeyPolicy, Suite, rand_core::UnwrapErr};
    /// let bob = IdentityKeyPair::generate_at(1_000, &mut UnwrapErr(getrandom::SysRng));
    /// let policy = ShareKeyPolicy::default();
    /// let key = bob.bundle().share_key(Suite::XWing).unwrap().clone();
    /// assert!(key.is_fresh(1_000 + policy.max_age_secs, &policy));
    /// assert!(!key.is_fresh(1_001 + policy.max_age_secs, &policy)); // fetch a newer bundle
    /// ```
    pub fn is_fresh(&self, now: u64, policy: &ShareKeyPolicy) -> bool {
        now.saturating_sub(self.created_at) <= policy.max_age_secs
    }
}

impl fmt::Debug for SignedShareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedShareKey")
            .field("suite", &self.suite)
            .field("serial", &self.serial)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn signature_input(identity: &[u8; 32], signed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(labels::SHARE_KEY_SIGNATURE.len() + 32 + signed.len());
    m.extend_from_slice(labels::SHARE_KEY_SIGNATURE);
    m.extend_from_slice(identity);
    m.extend_from_slice(signed);
    m
}

/// Checks a public share key: X25519 canonical and not of low order; X-Wing
/// accepted by the X-Wing encapsulation-key check (the ML-KEM part's
/// coefficients reduced mod q).
fn check_public(suite: Suite, public: &[u8]) -> Result<(), Error> {
    match suite {
        Suite::X25519 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(public);
            parse_x25519_public(&key).map(|_| ())
        }
        Suite::XWing => <KemXWing as KemTrait>::PublicKey::from_bytes(public)
            .map(|_| ())
            .map_err(|_| Error::Malformed(DecodeError::InvalidValue)),
    }
}

/// What a device publishes: its identity and its current signed share key of
/// each suite.
///
/// # Encoding
///
/// ```text
///  +------+--------------------------+-----------+----------------------------------------+
///  | 0x02 | identity Ed25519 key (32) | count u8  | count x (u16 length || SignedShareKey) |
///  +------+--------------------------+-----------+----------------------------------------+
///  count is 1 or 2; the share keys are in increasing suite order, one per suite.
/// ```
///
/// [`from_bytes`](Self::from_bytes) verifies every share key's signature
/// against the identity in the bundle; whether that identity is the one a
/// room pinned for the member is the room's check.
///
/// With the `serde` feature a bundle serializes as the lowercase hex of
/// [`to_bytes`](Self::to_bytes) and deserializes only through
/// [`from_bytes`](Self::from_bytes) (every signature checked).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceBundle {
    identity: PublicIdentity,
    keys: Vec<SignedShareKey>,
}

impl DeviceBundle {
    pub(crate) fn new(identity: PublicIdentity, keys: Vec<SignedShareKey>) -> Self {
        Self { identity, keys }
    }

    /// Parses a bundle and verifies every share key against its identity.
    ///
    /// ```
    /// # use secret_chat::{DeviceBundle, IdentityKeyPair};
    /// let alice = IdentityKeyPair::generate();
    /// let mut bytes = alice.bundle().to_bytes();
    /// assert!(DeviceBundle::from_bytes(&bytes).is_ok());
    /// let last = bytes.len() - 1;
    /// bytes[last] ^= 1; // a changed signature
    /// assert!(DeviceBundle::from_bytes(&bytes).is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        let identity = PublicIdentity::from_bytes(r.bytes(32)?)?;
        let count = r.u8()?;
        if count == 0 || usize::from(count) > Suite::ALL.len() {
            return Err(DecodeError::InvalidValue.into());
        }
        let mut keys: Vec<SignedShareKey> = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let key = SignedShareKey::from_bytes(r.vec16(MAX_SIGNED_SHARE_KEY_LEN)?, &identity)?;
            if keys.last().is_some_and(|prev| prev.suite >= key.suite) {
                return Err(DecodeError::InvalidValue.into());
            }
            keys.push(key);
        }
        r.finish()?;
        Ok(Self { identity, keys })
    }

    /// The canonical encoding: what a device publishes through its relay.
    ///
    /// ```
    /// use secret_chat::{DeviceBundle, IdentityKeyPair};
    /// let alice = IdentityKeyPair::generate();
    /// let published = alice.bundle().to_bytes();
    /// assert_eq!(DeviceBundle::from_bytes(&published)?, alice.bundle());
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            34 + self.keys.iter().map(|k| 2 + k.encoded.len()).sum::<usize>(),
        );
        w.u8(labels::PROTOCOL_VERSION)
            .bytes(self.identity.as_bytes())
            .u8(u8::try_from(self.keys.len()).unwrap_or(u8::MAX));
        for key in &self.keys {
            w.vec16(&key.encoded);
        }
        w.into_vec()
    }

    /// The device identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    /// The current share key of `suite`, if the device has one.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, Suite};
    /// let bundle = IdentityKeyPair::generate().bundle();
    /// assert_eq!(bundle.share_key(Suite::X25519).unwrap().public_key().len(), 32);
    /// assert_eq!(bundle.share_keys().len(), 2);
    /// ```
    pub fn share_key(&self, suite: Suite) -> Option<&SignedShareKey> {
        self.keys.iter().find(|k| k.suite == suite)
    }

    /// Every share key in the bundle.
    pub fn share_keys(&self) -> &[SignedShareKey] {
        &self.keys
    }
}

/// Bytes of the largest bundle: version, identity, count and one share key of
/// every suite.
#[cfg(feature = "serde")]
const MAX_BUNDLE_LEN: usize = 1 + 32 + 1 + Suite::ALL.len() * (2 + MAX_SIGNED_SHARE_KEY_LEN);

#[cfg(feature = "serde")]
crate::serde_support::serde_via_hex!(DeviceBundle, MAX_BUNDLE_LEN, |v| v.to_bytes(), |b| {
    DeviceBundle::from_bytes(b)
});

impl From<Suite> for u8 {
    /// The suite byte ([`Suite::to_byte`]).
    fn from(suite: Suite) -> u8 {
        suite.to_byte()
    }
}

impl TryFrom<u8> for Suite {
    type Error = DecodeError;

    /// [`Suite::from_byte`]: [`DecodeError::UnsupportedSuite`] for an
    /// unknown byte.
    fn try_from(b: u8) -> Result<Self, DecodeError> {
        Self::from_byte(b)
    }
}

impl fmt::Debug for DeviceBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBundle")
            .field("identity", &self.identity)
            .field("share_keys", &self.keys)
            .finish()
    }
}

/// Longest encoded [`SignedShareKey`] (an X-Wing one).
pub const MAX_SIGNED_SHARE_KEY_LEN: usize = SIGNED_PREFIX_LEN + XWING_PUBLIC_LEN + SIGNATURE_LEN;

/// One share key's secret, held by its device.
pub(crate) struct ShareKeySecret {
    /// The HPKE private key bytes (X25519 scalar or X-Wing seed).
    secret: Zeroizing<[u8; 32]>,
    /// The X-Wing decapsulation key, expanded once (constructing it runs the
    /// ML-KEM key expansion; it zeroizes its seed on drop).
    xwing: Option<Box<<KemXWing as KemTrait>::PrivateKey>>,
    public: SignedShareKey,
    /// When a newer key of the same suite replaced it.
    superseded_at: Option<u64>,
}

impl ShareKeySecret {
    pub(crate) fn public(&self) -> &SignedShareKey {
        &self.public
    }

    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The expanded X-Wing private key (X-Wing share keys only).
    pub(crate) fn xwing_private(&self) -> Option<&<KemXWing as KemTrait>::PrivateKey> {
        self.xwing.as_deref()
    }
}

/// A device's share keys: the current one of each suite and the superseded
/// ones still within their grace. Each secret is boxed so that growing the
/// list never leaves a copy behind.
pub(crate) struct ShareKeyring {
    // Boxed on purpose: the Vec moves its elements when it grows, and a moved
    // secret would leave a copy behind in freed memory; a Box never moves.
    #[allow(clippy::vec_box)]
    keys: Vec<Box<ShareKeySecret>>,
}

/// Derives a key pair of `suite` from 32 random bytes (`DeriveKeyPair` of RFC
/// 9180 / the X-Wing HPKE draft) and returns (private key bytes, public key
/// bytes).
fn derive(suite: Suite, ikm: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Vec<u8>) {
    let mut secret = Zeroizing::new([0u8; 32]);
    let public = match suite {
        Suite::X25519 => {
            let (sk, pk) = <KemX25519 as KemTrait>::derive_keypair(ikm);
            secret.copy_from_slice(&sk.to_bytes());
            pk.to_bytes().to_vec()
        }
        Suite::XWing => {
            let (sk, pk) = <KemXWing as KemTrait>::derive_keypair(ikm);
            secret.copy_from_slice(&sk.to_bytes());
            pk.to_bytes().to_vec()
        }
    };
    (secret, public)
}

impl ShareKeyring {
    /// Fresh share keys of every suite with `serial`, drawing 32 bytes per
    /// suite from `rng` in suite order.
    #[allow(clippy::vec_box)] // see `keys`
    pub(crate) fn generate<R: CryptoRng + ?Sized>(
        signing: &SigningKey,
        serial: u32,
        now: u64,
        rng: &mut R,
    ) -> Vec<Box<ShareKeySecret>> {
        Suite::ALL
            .iter()
            .map(|&suite| {
                let mut ikm = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(ikm.as_mut_slice());
                Box::new(Self::rebuild(signing, suite, serial, now, &ikm, None))
            })
            .collect()
    }

    fn rebuild(
        signing: &SigningKey,
        suite: Suite,
        serial: u32,
        created_at: u64,
        ikm: &[u8; 32],
        superseded_at: Option<u64>,
    ) -> ShareKeySecret {
        let (secret, public) = derive(suite, ikm);
        ShareKeySecret {
            xwing: expand_xwing(suite, &secret),
            secret,
            public: SignedShareKey::sign(signing, suite, serial, created_at, &public),
            superseded_at,
        }
    }

    #[allow(clippy::vec_box)] // see `keys`
    pub(crate) fn new(keys: Vec<Box<ShareKeySecret>>) -> Self {
        Self { keys }
    }

    /// The current key of `suite`.
    pub(crate) fn current(&self, suite: Suite) -> Option<&ShareKeySecret> {
        self.keys
            .iter()
            .map(|k| &**k)
            .find(|k| k.public.suite == suite && k.superseded_at.is_none())
    }

    /// The highest serial this device has made.
    pub(crate) fn current_serial(&self) -> u32 {
        self.keys.iter().map(|k| k.public.serial).max().unwrap_or(0)
    }

    /// The key a share names. A serial this device made but no longer holds
    /// gives [`Error::ShareKeyErased`]; one it never made,
    /// [`Error::UnknownShareKey`].
    pub(crate) fn find(&self, suite: Suite, serial: u32) -> Result<&ShareKeySecret, Error> {
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| k.public.suite == suite && k.public.serial == serial)
        {
            return Ok(k);
        }
        if serial != 0 && serial < self.current_serial() {
            Err(Error::ShareKeyErased)
        } else {
            Err(Error::UnknownShareKey)
        }
    }

    /// The current signed share keys, in suite order.
    pub(crate) fn current_public(&self) -> Vec<SignedShareKey> {
        Suite::ALL
            .iter()
            .filter_map(|&s| self.current(s).map(|k| k.public.clone()))
            .collect()
    }

    /// Whether the current keys are older than the policy allows.
    pub(crate) fn rotation_due(&self, now: u64, policy: &ShareKeyPolicy) -> bool {
        self.keys.iter().any(|k| {
            k.superseded_at.is_none()
                && now.saturating_sub(k.public.created_at) >= policy.rotate_after_secs
        })
    }

    /// Supersedes the current keys with fresh ones (serial + 1).
    pub(crate) fn rotate<R: CryptoRng + ?Sized>(
        &mut self,
        signing: &SigningKey,
        now: u64,
        rng: &mut R,
    ) -> Result<(), Error> {
        let serial = self
            .current_serial()
            .checked_add(1)
            .ok_or(Error::LimitExceeded)?;
        let fresh = Self::generate(signing, serial, now, rng);
        // Never hold more than MAX_HELD_SHARE_KEYS: the oldest superseded
        // keys go first (an app that rotates very often loses grace, not state).
        while self.keys.len() + fresh.len() > MAX_HELD_SHARE_KEYS {
            let oldest = self
                .keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.superseded_at.is_some())
                .min_by_key(|(_, k)| k.public.serial)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => drop(self.keys.remove(i)),
                None => break,
            }
        }
        for key in &mut self.keys {
            if key.superseded_at.is_none() {
                key.superseded_at = Some(now);
            }
        }
        self.keys.extend(fresh);
        Ok(())
    }

    /// Erases (zeroizes and drops) superseded keys past their grace.
    /// Returns how many were erased.
    pub(crate) fn erase_expired(&mut self, now: u64, policy: &ShareKeyPolicy) -> usize {
        let before = self.keys.len();
        self.keys.retain(|k| {
            k.superseded_at
                .is_none_or(|t| now.saturating_sub(t) <= policy.keep_superseded_secs)
        });
        before - self.keys.len()
    }

    /// Number of secrets held (current and superseded).
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Secret state for storage: count u8, then per key: suite u8, serial
    /// u32, created u64, superseded flag u8 (then u64 time when 1), and the
    /// 32 HPKE private-key bytes, from which the public half and its
    /// (deterministic) Ed25519 signature are rebuilt on load.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        w.u8(u8::try_from(self.keys.len()).unwrap_or(u8::MAX));
        for k in &self.keys {
            w.u8(k.public.suite.to_byte())
                .u32(k.public.serial)
                .u64(k.public.created_at);
            match k.superseded_at {
                Some(t) => w.u8(1).u64(t),
                None => w.u8(0),
            };
            w.bytes(k.secret.as_slice());
        }
    }

    /// Length of [`encode_state`](Self::encode_state)'s output.
    pub(crate) fn state_len(&self) -> usize {
        1 + self
            .keys
            .iter()
            .map(|k| 1 + 4 + 8 + 1 + 8 * usize::from(k.superseded_at.is_some()) + 32)
            .sum::<usize>()
    }

    /// Inverse of [`encode_state`](Self::encode_state): rebuilds each public
    /// half from its private key and re-signs it (Ed25519 signatures are
    /// deterministic, so the bytes are the ones published).
    pub(crate) fn decode_state(
        r: &mut Reader<'_>,
        signing: &SigningKey,
    ) -> Result<Self, DecodeError> {
        let count = usize::from(r.u8()?);
        if count == 0 || count > MAX_HELD_SHARE_KEYS {
            return Err(DecodeError::InvalidValue);
        }
        let mut keys: Vec<Box<ShareKeySecret>> = Vec::with_capacity(count);
        for _ in 0..count {
            let suite = Suite::from_byte(r.u8()?)?;
            let serial = r.u32()?;
            let created_at = r.u64()?;
            let superseded_at = match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(DecodeError::InvalidValue),
            };
            let secret = Zeroizing::new(r.array::<32>()?);
            if serial == 0
                || keys
                    .iter()
                    .any(|k| k.public.suite == suite && k.public.serial == serial)
            {
                return Err(DecodeError::InvalidValue);
            }
            let public = public_from_private(suite, &secret)?;
            keys.push(Box::new(ShareKeySecret {
                public: SignedShareKey::sign(signing, suite, serial, created_at, &public),
                xwing: expand_xwing(suite, &secret),
                secret,
                superseded_at,
            }));
        }
        for suite in Suite::ALL {
            let current = keys
                .iter()
                .filter(|k| k.public.suite == suite && k.superseded_at.is_none())
                .count();
            if current != 1 {
                return Err(DecodeError::InvalidValue);
            }
        }
        Ok(Self { keys })
    }
}

/// Most share-key secrets a device holds: the current one of each suite and
/// the superseded ones within their grace. With weekly rotation and a 14-day
/// grace that is 3 per suite; 64 leaves room for apps that rotate daily.
pub const MAX_HELD_SHARE_KEYS: usize = 64;

/// The expanded X-Wing private key of an X-Wing share key (`None` for
/// X25519, whose private key is only a clamped scalar).
fn expand_xwing(
    suite: Suite,
    secret: &[u8; 32],
) -> Option<Box<<KemXWing as KemTrait>::PrivateKey>> {
    match suite {
        Suite::XWing => <KemXWing as KemTrait>::PrivateKey::from_bytes(secret)
            .ok()
            .map(Box::new),
        Suite::X25519 => None,
    }
}

fn public_from_private(suite: Suite, secret: &[u8; 32]) -> Result<Vec<u8>, DecodeError> {
    Ok(match suite {
        Suite::X25519 => {
            let sk = <KemX25519 as KemTrait>::PrivateKey::from_bytes(secret)
                .map_err(|_| DecodeError::InvalidValue)?;
            <KemX25519 as KemTrait>::sk_to_pk(&sk).to_bytes().to_vec()
        }
        Suite::XWing => {
            let sk = <KemXWing as KemTrait>::PrivateKey::from_bytes(secret)
                .map_err(|_| DecodeError::InvalidValue)?;
            <KemXWing as KemTrait>::sk_to_pk(&sk).to_bytes().to_vec()
        }
    })
}

impl Drop for ShareKeySecret {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}
