//! A deterministic RNG for known-answer vectors and reproducible tests.
//!
//! Only built with the non-default `testing` feature: a deterministic RNG
//! makes every key it draws predictable, so an app must never enable it (the
//! crate's own tests, benches and fuzz targets do). Enable it in a
//! `[dev-dependencies]` entry, never in `[dependencies]`.
//!
//! Every operation that draws randomness has a `_with_rng` form; feeding it a
//! [`VectorRng`] makes its output reproducible. The published vectors in
//! `tests/vectors/` are generated this way, and `docs/PROTOCOL.md` defines the
//! generator so another implementation can replay the exact RNG output.
//!
//! Output block `i` (a 32-byte SHA-256 digest) is
//! `SHA-256("secret-chat/test-rng" || u32_be(len(seed)) || seed || u64_be(i))`;
//! the generator's output is the stream of blocks `0, 1, 2, ...`
//! concatenated, and every request takes the next bytes of that stream:
//! bytes a request leaves unused in a block are the start of the next
//! request (they are never skipped), so any split of the requests gives the
//! same bytes. `next_u32` / `next_u64` take 4 / 8 bytes of the stream,
//! little-endian.
//!
//! In the vector files (`tests/vectors/*.json`) a seed is given as the
//! lower-case hex of its bytes, like every other byte string; a seed the
//! generator code writes as text (`b"fingerprint/alice"`) is the hex of that
//! text's UTF-8 bytes.
//! With a secret, uniformly random seed this is a sound PRG, but it exists for
//! tests: production code uses the OS RNG through the plain (non-`_with_rng`)
//! functions.

use core::convert::Infallible;
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Deterministic RNG: SHA-256 in counter mode over a seed (see the module docs).
///
/// Leftover bytes carry into the next request:
///
/// ```
/// use rand_core::Rng;
/// use secret_chat::testing::VectorRng;
/// let (mut one, mut two) = (VectorRng::new(b"seed"), VectorRng::new(b"seed"));
/// let mut all = [0u8; 40];
/// one.fill_bytes(&mut all);
/// let (mut first, mut second) = ([0u8; 20], [0u8; 20]);
/// two.fill_bytes(&mut first); // 20 bytes of block 0
/// two.fill_bytes(&mut second); // 12 more of block 0, then 8 of block 1
/// assert_eq!(all, [first, second].concat()[..]);
/// ```
///
/// ```
/// use secret_chat::{testing::VectorRng, IdentityKeyPair};
/// let a = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(b"alice"));
/// let b = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(b"alice"));
/// assert_eq!(a.public(), b.public());
/// ```
pub struct VectorRng {
    seed: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl VectorRng {
    /// Starts the generator at block 0 of `seed`.
    pub fn new(seed: &[u8]) -> Self {
        Self {
            seed: seed.to_vec(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        let len = u32::try_from(self.seed.len()).unwrap_or(u32::MAX);
        let digest = Sha256::new()
            .chain_update(b"secret-chat/test-rng")
            .chain_update(len.to_be_bytes())
            .chain_update(&self.seed)
            .chain_update(self.counter.to_be_bytes())
            .finalize();
        self.block.copy_from_slice(&digest);
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl core::fmt::Debug for VectorRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VectorRng")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Drop for VectorRng {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.block.zeroize();
    }
}

impl TryRng for VectorRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for out in dst.iter_mut() {
            if self.used == 32 {
                self.refill();
            }
            if let Some(b) = self.block.get(self.used) {
                *out = *b;
            }
            self.used += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for VectorRng {}

/// Builds a [`SharedSenderKey`](crate::SharedSenderKey) from raw parts, for
/// known-answer vectors and benchmarks (production sender keys come from
/// the sender-key generator or from an opened key share).
///
/// Pairwise keys (`signing_seed = None`) take `id` as given. Signed keys
/// take the Ed25519 seed of the sender key's signing key: their id must be
/// [`signed_sender_key_id`] of its public key (else
/// [`Error::SenderKeyIdMismatch`](crate::Error::SenderKeyIdMismatch)), and
/// the proof of possession is made here over `binding`.
///
/// ```
/// use secret_chat::testing::{shared_sender_key, signed_sender_key_id};
/// use secret_chat::SenderKeyMode;
/// let pairwise = shared_sender_key([7; 16], SenderKeyMode::Pairwise, 0, &[9; 32], None, &[1; 32], 0).unwrap();
/// let public = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes();
/// let id = signed_sender_key_id(&public).unwrap();
/// let signed = shared_sender_key(id, SenderKeyMode::Signed, 0, &[9; 32], Some(&[5; 32]), &[1; 32], 0).unwrap();
/// assert_eq!(signed.id().as_bytes(), &id);
/// ```
pub fn shared_sender_key(
    id: [u8; 16],
    mode: crate::SenderKeyMode,
    index: u32,
    chain_key: &[u8; 32],
    signing_seed: Option<&[u8; 32]>,
    binding: &[u8; 32],
    predecessor_end: u32,
) -> Result<crate::SharedSenderKey, crate::Error> {
    let id = crate::SenderKeyId::from_bytes(id);
    let signing = signing_seed.map(|seed| {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let mut input = Vec::new();
        input.extend_from_slice(crate::labels::SENDER_KEY_POSSESSION);
        input.extend_from_slice(binding);
        input.extend_from_slice(id.as_bytes());
        (
            crate::identity::EdPublic::from_key(key.verifying_key()),
            key.sign(&input).to_bytes(),
        )
    });
    crate::SharedSenderKey::new(id, mode, index, chain_key, signing, predecessor_end)
}

/// The id of a signed sender key with this Ed25519 public key (first 16
/// bytes of `SHA-256("secret-chat/v2/sender-key/id" || public)`); an
/// invalid or weak public key is an error.
pub fn signed_sender_key_id(signing_public: &[u8; 32]) -> Result<[u8; 16], crate::Error> {
    let public = crate::identity::parse_ed25519_public(signing_public)?;
    Ok(*crate::sender_key::signed_key_id(public.as_bytes()).as_bytes())
}

/// The 32-byte binding of a sender key (`docs/PROTOCOL.md` section 4.1).
pub fn sender_key_binding(
    room: &crate::RoomId,
    owner: &[u8; 32],
    instance: &[u8; 32],
    epoch: u32,
) -> [u8; 32] {
    crate::sender_key::sender_key_binding(room, owner, instance, epoch)
}

/// The values one message derives, for vectors and attack tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedMessageKeys {
    /// The message seed `HMAC-SHA256(chain_key, 0x01)`.
    pub seed: [u8; 32],
    /// The next chain key `HMAC-SHA256(chain_key, 0x02)`.
    pub next_chain_key: [u8; 32],
    /// The AES-256-GCM key.
    pub key: [u8; 32],
    /// The AES-256-GCM nonce.
    pub nonce: [u8; 12],
    /// The 32-byte key commitment.
    pub commitment: [u8; 32],
}

/// Derives everything one message uses from the chain key at its index, the
/// header's salt and the sender key's binding (`docs/PROTOCOL.md` section 4.1).
pub fn derive_message_keys(
    chain_key: &[u8; 32],
    salt: &[u8; 16],
    binding: &[u8; 32],
) -> DerivedMessageKeys {
    let (next_chain_key, seed) = crate::sender_key::hooks::ratchet(chain_key);
    let (key, nonce, commitment) = crate::sender_key::hooks::message_keys(&seed, salt, binding);
    DerivedMessageKeys {
        seed,
        next_chain_key,
        key,
        nonce,
        commitment,
    }
}

/// The chain key the next message of `key` will use (a secret: tests only).
pub fn outbound_chain_key(key: &crate::OutboundSenderKey) -> [u8; 32] {
    crate::sender_key::hooks::outbound_chain_key(key)
}

/// Saves an outbound sender key's state (as the encrypted storage would).
pub fn save_outbound(key: &crate::OutboundSenderKey) -> zeroize::Zeroizing<Vec<u8>> {
    crate::sender_key::hooks::outbound_state(key)
}

/// Restores what [`save_outbound`] saved (a crash-and-restore, a backup).
pub fn restore_outbound(bytes: &[u8]) -> Result<crate::OutboundSenderKey, crate::Error> {
    crate::sender_key::hooks::outbound_from_state(bytes)
}

/// Parses a key-share plaintext (`docs/PROTOCOL.md` section 4.5), as the key
/// share does after opening it: for fuzzing and vectors.
pub fn parse_share_plaintext(bytes: &[u8]) -> Result<crate::SharedSenderKey, crate::Error> {
    crate::SharedSenderKey::from_share_plaintext(bytes)
}

/// Encodes a sender key as a key-share plaintext (section 4.5).
pub fn share_plaintext(
    key: &crate::SharedSenderKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, crate::Error> {
    key.to_share_plaintext()
}

/// Signs a membership operation as `author` with `signer`'s identity key,
/// naming any `parents`, without checking a single membership rule: what a
/// malicious member can send. For tests and vectors of the rules that
/// refuse such operations (production code uses
/// [`Membership::add`](crate::membership::Membership::add) and friends).
pub fn sign_membership_op(
    signer: &crate::IdentityKeyPair,
    genesis: &crate::membership::OpId,
    author: &crate::MemberId,
    parents: &[crate::membership::OpId],
    kind: &crate::membership::OpKind,
) -> Result<Vec<u8>, crate::Error> {
    crate::membership::Operation::sign(signer, genesis, author, parents, kind)
        .map(|op| op.bytes().to_vec())
}

/// The canonical full state of a room, secrets included (the plaintext of
/// its whole-state export): for tests that compare two rooms exactly.
pub fn room_state(room: &crate::Room) -> alloc::vec::Vec<u8> {
    let mut w = crate::wire::Writer::secret(room.state_len());
    room.encode_state(&mut w);
    w.into_vec()
}
