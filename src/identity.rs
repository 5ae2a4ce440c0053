//! Device identity: the seed product's "private key" and "public key".
//!
//! Each installation makes one [`IdentityKeyPair`]: an Ed25519 signing key
//! and an X25519 key for receiving wrapped sender keys. Its public half, the
//! [`PublicIdentity`], is one bundle in which the Ed25519 key signs the
//! X25519 key under a domain-separated label; the signature and both keys are
//! checked on every parse. A reinstall makes a new identity, which rooms
//! pinned to the old one refuse ([`Error::IdentityChanged`]).
//!
//! # Encoding of a public identity (129 bytes)
//!
//! ```text
//!  0      1                     33                    65                          129
//!  +------+---------------------+---------------------+---------------------------+
//!  | 0x01 | Ed25519 public (32) | X25519 public (32)  | Ed25519 signature (64)    |
//!  +------+---------------------+---------------------+---------------------------+
//!  signature = Ed25519(sk, "secret-chat/v1/identity-binding" || 0x01 || ed_pub || x_pub)
//! ```
//!
//! Parsing rejects: another version, a non-canonical or small-order Ed25519
//! key, a non-canonical or low-order X25519 key, a signature that fails
//! `verify_strict`, and any trailing byte.

use crate::error::{DecodeError, Error};
use crate::labels;
use crate::wire::{Reader, Writer};
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of an encoded [`PublicIdentity`].
pub const PUBLIC_IDENTITY_LEN: usize = 1 + 32 + 32 + 64;
/// Length of an [`IdentityId`].
pub const IDENTITY_ID_LEN: usize = 16;
/// Length of [`IdentityKeyPair::to_secret_bytes`].
pub(crate) const IDENTITY_SECRET_LEN: usize = 64;

/// A device's long-term secret: the seed product's "private key".
///
/// Zeroized on drop; `Debug` shows only the public id; equality is constant
/// time. Not `Clone`: one device, one copy (use the encrypted
/// `storage` module to persist it).
///
/// ```
/// use secret_chat::IdentityKeyPair;
/// let alice = IdentityKeyPair::generate();
/// let public = alice.public().to_bytes();
/// let parsed = secret_chat::PublicIdentity::from_bytes(&public).unwrap();
/// assert_eq!(&parsed, alice.public());
/// ```
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: PublicIdentity,
}

impl IdentityKeyPair {
    /// Makes a new identity from the operating system's RNG.
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut crate::rng::os_rng())
    }

    /// Makes a new identity from `rng` (deterministic for tests and vectors).
    ///
    /// Draws 32 bytes for the Ed25519 seed, then 32 for the X25519 secret.
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seed.as_mut_slice());
        Self::from_secret_array(&seed)
    }

    fn from_secret_array(secret: &[u8; IDENTITY_SECRET_LEN]) -> Self {
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        ed.copy_from_slice(&secret[..32]);
        x.copy_from_slice(&secret[32..]);
        let signing = SigningKey::from_bytes(&ed);
        let dh = StaticSecret::from(*x);
        let verifying = signing.verifying_key();
        let dh_public = XPublic::from(&dh);
        let binding = signing.sign(&binding_message(&verifying, &dh_public));
        let public = PublicIdentity::assemble(verifying, dh_public, binding);
        Self {
            signing,
            dh,
            public,
        }
    }

    /// The 64 secret bytes (Ed25519 seed || X25519 secret), for the encrypted
    /// storage only.
    pub(crate) fn to_secret_bytes(&self) -> Zeroizing<[u8; IDENTITY_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; IDENTITY_SECRET_LEN]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.dh.as_bytes());
        out
    }

    /// Rebuilds an identity from [`to_secret_bytes`](Self::to_secret_bytes).
    pub(crate) fn from_secret_bytes(secret: &[u8; IDENTITY_SECRET_LEN]) -> Self {
        Self::from_secret_array(secret)
    }

    /// The public half, derived from the secret at construction.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The short id of this identity's public half.
    pub fn id(&self) -> IdentityId {
        self.public.id
    }

    /// Signs `label || parts...` with the identity key.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// The X25519 secret, for HPKE decapsulation.
    pub(crate) fn dh_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.dh.to_bytes())
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl ConstantTimeEq for IdentityKeyPair {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.signing.as_bytes().ct_eq(other.signing.as_bytes())
            & self.dh.as_bytes().ct_eq(other.dh.as_bytes())
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
        // SigningKey and StaticSecret zeroize themselves on drop (their
        // `zeroize` features are on); nothing else here is secret.
    }
}

impl ZeroizeOnDrop for IdentityKeyPair {}

/// A short, stable id of a [`PublicIdentity`]: the first 16 bytes of
/// SHA-256(`"secret-chat/v1/identity-id"` || encoded identity).
///
/// Used to name senders and recipients inside key shares. It is not a
/// security fingerprint (see [`fingerprint`](crate::fingerprint) for that).
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

/// A device's public identity: the seed product's "public key".
///
/// Only constructed from a key pair or through [`from_bytes`](Self::from_bytes),
/// which checks everything, so holding one means its binding signature
/// verified and neither key is weak.
#[derive(Clone)]
pub struct PublicIdentity {
    signing: VerifyingKey,
    dh: XPublic,
    encoded: [u8; PUBLIC_IDENTITY_LEN],
    id: IdentityId,
}

impl PublicIdentity {
    fn assemble(signing: VerifyingKey, dh: XPublic, binding: Signature) -> Self {
        let mut w = Writer::with_capacity(PUBLIC_IDENTITY_LEN);
        w.u8(labels::PROTOCOL_VERSION)
            .bytes(signing.as_bytes())
            .bytes(dh.as_bytes())
            .bytes(&binding.to_bytes());
        let mut encoded = [0u8; PUBLIC_IDENTITY_LEN];
        encoded.copy_from_slice(w.as_slice());
        let digest = Sha256::new()
            .chain_update(labels::IDENTITY_ID)
            .chain_update(encoded)
            .finalize();
        let mut id = [0u8; IDENTITY_ID_LEN];
        id.copy_from_slice(&digest[..IDENTITY_ID_LEN]);
        Self {
            signing,
            dh,
            encoded,
            id: IdentityId(id),
        }
    }

    /// Parses and fully checks an encoded public identity.
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
        r.version(labels::PROTOCOL_VERSION)?;
        let ed: [u8; 32] = r.array()?;
        let x: [u8; 32] = r.array()?;
        let sig: [u8; 64] = r.array()?;
        r.finish()?;
        let signing = parse_ed25519_public(&ed)?;
        let dh = parse_x25519_public(&x)?;
        let binding = Signature::from_bytes(&sig);
        verify_strict(&signing, &binding_message(&signing, &dh), &binding)?;
        Ok(Self::assemble(signing, dh, binding))
    }

    /// The canonical 129-byte encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        self.encoded
    }

    /// The canonical encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_IDENTITY_LEN] {
        &self.encoded
    }

    /// The short id.
    pub fn id(&self) -> IdentityId {
        self.id
    }

    /// The Ed25519 key that signs this identity's key shares.
    pub fn signing_key(&self) -> &VerifyingKey {
        &self.signing
    }

    /// The X25519 key that key shares are wrapped to.
    pub fn dh_key(&self) -> &XPublic {
        &self.dh
    }

    /// Verifies an identity signature (strict Ed25519) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        verify_strict(&self.signing, message, signature)
    }
}

impl PartialEq for PublicIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.encoded.ct_eq(&other.encoded).into()
    }
}

impl Eq for PublicIdentity {}

impl core::hash::Hash for PublicIdentity {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.encoded.hash(state);
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn binding_message(signing: &VerifyingKey, dh: &XPublic) -> [u8; 31 + 1 + 64] {
    let mut m = [0u8; 31 + 1 + 64];
    m[..31].copy_from_slice(labels::IDENTITY_BINDING);
    m[31] = labels::PROTOCOL_VERSION;
    m[32..64].copy_from_slice(signing.as_bytes());
    m[64..].copy_from_slice(dh.as_bytes());
    m
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
            .to_secret_bytes()
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
        let back = IdentityKeyPair::from_secret_bytes(&a.to_secret_bytes());
        assert!(back == a);
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
        let good = *IdentityKeyPair::generate_with_rng(&mut test_rng(2))
            .public()
            .dh_key()
            .as_bytes();
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
    fn bundle_with_weak_key_and_valid_signature_is_rejected() {
        // A signature by a real key over a low-order X25519 key must still be
        // refused: the key check is not just the signature.
        let kp = IdentityKeyPair::generate_with_rng(&mut test_rng(3));
        let weak = XPublic::from([0u8; 32]);
        let sig = kp.sign(&binding_message(kp.public().signing_key(), &weak));
        let mut bytes = kp.public().to_bytes();
        bytes[33..65].copy_from_slice(weak.as_bytes());
        bytes[65..].copy_from_slice(&sig.to_bytes());
        assert_eq!(
            PublicIdentity::from_bytes(&bytes).unwrap_err(),
            Error::WeakKey
        );
    }

    #[test]
    fn signature_binds_the_x25519_key() {
        let a = IdentityKeyPair::generate_with_rng(&mut test_rng(4));
        let b = IdentityKeyPair::generate_with_rng(&mut test_rng(5));
        // a's signing key and signature with b's X25519 key: key swap.
        let mut bytes = a.public().to_bytes();
        bytes[33..65].copy_from_slice(b.public().dh_key().as_bytes());
        assert_eq!(
            PublicIdentity::from_bytes(&bytes).unwrap_err(),
            Error::BadSignature
        );
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
        fn every_bit_flip_and_truncation_rejected(seed in any::<[u8; 32]>()) {
            let kp = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&seed));
            let bytes = kp.public().to_bytes();
            for i in 0..bytes.len() * 8 {
                let mut b = bytes;
                b[i / 8] ^= 1 << (i % 8);
                let err = PublicIdentity::from_bytes(&b).unwrap_err();
                prop_assert!(matches!(err, Error::BadSignature | Error::WeakKey | Error::Malformed(DecodeError::UnsupportedVersion(_) | DecodeError::InvalidValue)), "bit {} gave {:?}", i, err);
            }
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
