//! A deterministic RNG for known-answer vectors and reproducible tests.
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
/// `signing_public` must be `Some` exactly when `mode` is
/// [`Signed`](crate::SenderKeyMode::Signed), and must be a valid Ed25519 key.
pub fn shared_sender_key(
    id: [u8; 16],
    mode: crate::SenderKeyMode,
    index: u32,
    chain_key: &[u8; 32],
    signing_public: Option<&[u8; 32]>,
) -> Result<crate::SharedSenderKey, crate::Error> {
    let signing = signing_public
        .map(crate::identity::parse_ed25519_public)
        .transpose()?;
    crate::SharedSenderKey::new(
        crate::SenderKeyId::from_bytes(id),
        mode,
        index,
        chain_key,
        signing,
    )
}
