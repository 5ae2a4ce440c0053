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
    #[cfg(feature = "png")]
    png_decoding(c, &image);
}

/// Decoding the key image from a PNG against the raw PNG decode of the
/// same bytes (the baseline): the picture alone, and a 1080 x 1920 phone
/// screenshot with the picture in the middle.
#[cfg(feature = "png")]
fn png_decoding(c: &mut Criterion, image: &KeyImage) {
    let Ok(alone) = image.render_png(24) else {
        return;
    };
    let Some(shot) = screenshot(&alone) else {
        return;
    };
    for (name, bytes) in [("picture 456x240", &alone), ("screenshot 1080x1920", &shot)] {
        c.bench_function(&format!("png raw decode ({name})"), |b| {
            b.iter(|| raw_decode(black_box(bytes)))
        });
        c.bench_function(&format!("decode_png ({name})"), |b| {
            b.iter(|| KeyImage::decode_png(black_box(bytes)))
        });
    }
}

/// The pixels of a PNG (the baseline: what any PNG reader costs).
#[cfg(feature = "png")]
fn raw_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    reader.next_frame(&mut buf).ok()?;
    Some(buf)
}

/// The picture pasted in the middle of a 1080 x 1920 light-grey screen.
#[cfg(feature = "png")]
fn screenshot(picture: &[u8]) -> Option<Vec<u8>> {
    let pic = raw_decode(picture)?;
    let (pw, ph, w, h) = (456, 240, 1080, 1920);
    let mut px = vec![0xF0u8; w * h * 3];
    let (x0, y0) = ((w - pw) / 2, (h - ph) / 2);
    for y in 0..ph {
        let src = pic.get(y * pw * 3..(y + 1) * pw * 3)?;
        let at = ((y0 + y) * w + x0) * 3;
        px.get_mut(at..at + pw * 3)?.copy_from_slice(src);
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().ok()?;
    wr.write_image_data(&px).ok()?;
    wr.finish().ok()?;
    Some(out)
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
