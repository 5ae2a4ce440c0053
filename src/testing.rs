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
//! requests are served from the concatenation of blocks `0, 1, 2, ...`.
//! With a secret, uniformly random seed this is a sound PRG, but it exists for
//! tests: production code uses the OS RNG through the plain (non-`_with_rng`)
//! functions.

use core::convert::Infallible;
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Deterministic RNG: SHA-256 in counter mode over a seed (see the module docs).
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
