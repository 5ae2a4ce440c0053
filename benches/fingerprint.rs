//! Cost of a fingerprint (5,200 iterated SHA-512) against one raw SHA-512 of
//! the same input, and of rendering the picture.

use criterion::{Criterion, criterion_group, criterion_main};
use secret_chat::testing::VectorRng;
use secret_chat::{Fingerprint, IdentityKeyPair, KeyImage, MemberId, TerminalMode};
use sha2::{Digest, Sha512};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let id = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(b"bench"));
    let Ok(member) = MemberId::new(b"alice@example.org") else {
        return;
    };
    let encoded = id.public().to_bytes();
    c.bench_function("sha512 baseline (64 + 129 bytes)", |b| {
        b.iter(|| {
            Sha512::new()
                .chain_update([0u8; 64])
                .chain_update(black_box(encoded))
                .finalize()
        })
    });
    c.bench_function("fingerprint (5200 iterations)", |b| {
        b.iter(|| Fingerprint::compute(black_box(&member), id.public()))
    });
    let f = Fingerprint::compute(&member, id.public());
    let image = KeyImage::pair(&f, &Fingerprint::from_bytes([7; 32]));
    c.bench_function("render svg", |b| b.iter(|| black_box(&image).render_svg()));
    c.bench_function("render terminal", |b| {
        b.iter(|| black_box(&image).render_terminal(TerminalMode::TrueColor))
    });
    #[cfg(feature = "png")]
    c.bench_function("render png scale 24", |b| {
        b.iter(|| black_box(&image).render_png(24))
    });
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
