//! Attachments: streaming round trips, every tamper case, random access, the
//! two-keys-one-file attack, the pointer and content encodings, and the
//! published vectors (`tests/vectors/attachment.json`;
//! `REGENERATE_VECTORS=1 cargo test --test attachment` rewrites it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{hex, load, unhex};
use proptest::prelude::*;
use secret_chat::attachment::{
    self, AttachmentKey, ChunkOpener, HEADER_LEN, TAG_LEN, encrypt_with_rng, padded_size,
};
use secret_chat::testing::VectorRng;
use secret_chat::{AttachmentError, AttachmentPointer, Content, DecodeError, LinkPreview};
use serde_json::{Value, json};
use std::io::{self, Read};

const SMALL: u32 = 1024;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7) + 3) as u8).collect()
}

fn seal(plain: &[u8], chunk: u32, seed: &[u8]) -> (AttachmentPointer, Vec<u8>) {
    let mut blob = Vec::new();
    let p = encrypt_with_rng(
        plain,
        &mut blob,
        "application/octet-stream",
        chunk,
        &mut VectorRng::new(seed),
    )
    .unwrap();
    assert_eq!(blob.len() as u64, p.ciphertext_len());
    (p, blob)
}

fn open(p: &AttachmentPointer, blob: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    let mut out = Vec::new();
    let n = attachment::decrypt(p, blob, &mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

/// Same pointer with another size (what a sender who lies about the size sends).
fn resized(p: &AttachmentPointer, size: u64) -> AttachmentPointer {
    AttachmentPointer::new(
        AttachmentKey::from_bytes(*p.key().to_bytes()),
        size,
        p.chunk_size(),
        p.content_type(),
    )
    .unwrap()
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    rest: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

#[test]
fn round_trip_at_edge_sizes() {
    for chunk in [SMALL, 4096, attachment::DEFAULT_CHUNK_SIZE] {
        let c = chunk as usize;
        for n in [
            0,
            1,
            15,
            16,
            17,
            c - 1,
            c,
            c + 1,
            2 * c - 1,
            2 * c,
            2 * c + 1,
            5 * c + 7,
        ] {
            let plain = data(n);
            let (p, blob) = seal(&plain, chunk, format!("edge-{chunk}-{n}").as_bytes());
            assert_eq!(p.size(), n as u64);
            let padded = padded_size(n as u64);
            assert_eq!(p.chunk_count(), padded.div_ceil(u64::from(chunk)));
            assert_eq!(
                blob.len() as u64,
                HEADER_LEN as u64 + padded + p.chunk_count() * TAG_LEN as u64
            );
            assert_eq!(open(&p, &blob).unwrap(), plain, "chunk {chunk}, size {n}");
        }
    }
}

#[test]
fn many_chunks_round_trip_with_trickling_io() {
    let plain = data(300_000);
    let mut blob = Vec::new();
    let p = encrypt_with_rng(
        Trickle {
            rest: &plain,
            step: 777,
        },
        &mut blob,
        "video/mp4",
        SMALL,
        &mut VectorRng::new(b"many"),
    )
    .unwrap();
    assert!(p.chunk_count() > 290);
    let mut out = Vec::new();
    attachment::decrypt(
        &p,
        Trickle {
            rest: &blob,
            step: 333,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(out, plain);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_sizes_round_trip(n in 0usize..40_000, shift in 0u32..3, step in 1usize..5000, seed in any::<u64>()) {
        let chunk = SMALL << shift;
        let plain = data(n);
        let mut blob = Vec::new();
        let p = encrypt_with_rng(Trickle { rest: &plain, step }, &mut blob, "", chunk,
            &mut VectorRng::new(&seed.to_be_bytes())).unwrap();
        prop_assert_eq!(blob.len() as u64, p.ciphertext_len());
        prop_assert_eq!(open(&p, &blob).unwrap(), plain);
    }
}

/// Three full 1 KiB chunks: 3072 is its own Padmé bucket, so no padding.
fn three_chunks(seed: &[u8]) -> (AttachmentPointer, Vec<u8>, Vec<u8>) {
    let plain: Vec<u8> = data(3 * SMALL as usize).iter().map(|b| b | 1).collect();
    let (p, blob) = seal(&plain, SMALL, seed);
    assert_eq!(p.chunk_count(), 3);
    (p, blob, plain)
}

fn chunk_range(i: usize) -> std::ops::Range<usize> {
    let start = HEADER_LEN + i * (SMALL as usize + TAG_LEN);
    start..start + SMALL as usize + TAG_LEN
}

#[test]
fn truncation_is_refused() {
    let (p, blob, _) = three_chunks(b"truncate");
    // At every chunk boundary (the last-chunk flag is what a truncation there
    // would have to forge), inside a chunk, inside the header, empty.
    for cut in [
        chunk_range(2).start,
        chunk_range(1).start,
        chunk_range(0).start,
        blob.len() - 1,
        chunk_range(1).start + 100,
        10,
        0,
    ] {
        assert_eq!(
            open(&p, &blob[..cut]),
            Err(AttachmentError::Truncated),
            "cut at {cut}"
        );
    }
    assert!(AttachmentError::Truncated.is_retryable());
}

#[test]
fn a_pointer_claiming_a_prefix_is_refused_by_the_last_chunk_flag() {
    let (p, blob, _) = three_chunks(b"prefix");
    // Someone who knows the key re-posts the file as its first two chunks
    // (e.g. a contract without its last page): chunk 1 is not flagged last.
    let short = resized(&p, 2 * u64::from(SMALL));
    let cut = &blob[..chunk_range(1).end];
    assert_eq!(
        open(&short, cut),
        Err(AttachmentError::ChunkRejected { index: 1 })
    );
}

#[test]
fn extension_is_refused() {
    let (p, blob, _) = three_chunks(b"extend");
    let mut one_more = blob.clone();
    one_more.push(0);
    assert_eq!(open(&p, &one_more), Err(AttachmentError::Extended));
    let mut chunk_more = blob.clone();
    chunk_more.extend_from_slice(&blob[chunk_range(2)]);
    assert_eq!(open(&p, &chunk_more), Err(AttachmentError::Extended));
    assert!(!AttachmentError::Extended.is_retryable());
}

#[test]
fn reordered_chunks_are_refused() {
    let (p, blob, _) = three_chunks(b"reorder");
    let mut swapped = blob.clone();
    swapped[chunk_range(0)].copy_from_slice(&blob[chunk_range(1)]);
    swapped[chunk_range(1)].copy_from_slice(&blob[chunk_range(0)]);
    assert_eq!(
        open(&p, &swapped),
        Err(AttachmentError::ChunkRejected { index: 0 })
    );
    let mut dup = blob.clone();
    dup[chunk_range(1)].copy_from_slice(&blob[chunk_range(0)]);
    assert_eq!(
        open(&p, &dup),
        Err(AttachmentError::ChunkRejected { index: 1 })
    );
}

#[test]
fn chunks_swapped_between_files_are_refused() {
    let (p, blob, _) = three_chunks(b"file-a");
    let (_, other, _) = three_chunks(b"file-b");
    for i in 0..3 {
        let mut mixed = blob.clone();
        mixed[chunk_range(i)].copy_from_slice(&other[chunk_range(i)]);
        assert_eq!(
            open(&p, &mixed),
            Err(AttachmentError::ChunkRejected { index: i as u32 })
        );
    }
}

#[test]
fn a_wrong_key_is_refused_before_any_chunk() {
    let (p, blob, _) = three_chunks(b"right");
    let (q, other, _) = three_chunks(b"wrong");
    assert_eq!(open(&q, &blob), Err(AttachmentError::WrongKey));
    // Another file's header in front of this file's chunks.
    let mut mixed = blob.clone();
    mixed[..HEADER_LEN].copy_from_slice(&other[..HEADER_LEN]);
    assert_eq!(open(&p, &mixed), Err(AttachmentError::WrongKey));
    // Nothing is written before the commitment check.
    let mut out = Vec::new();
    assert!(attachment::decrypt(&q, &blob[..], &mut out).is_err());
    assert!(out.is_empty());
    assert_eq!(
        ChunkOpener::new(&q, &blob[..HEADER_LEN]).unwrap_err(),
        AttachmentError::WrongKey
    );
}

#[test]
fn header_fields_are_checked() {
    let (p, blob, _) = three_chunks(b"header");
    let mut v = blob.clone();
    v[0] = 9;
    assert_eq!(
        open(&p, &v),
        Err(AttachmentError::Malformed(DecodeError::UnsupportedVersion(
            9
        )))
    );
    let mut v = blob.clone();
    v[1] = 2;
    assert_eq!(
        open(&p, &v),
        Err(AttachmentError::Malformed(DecodeError::UnsupportedSuite(2)))
    );
    let mut v = blob.clone();
    v[2..6].copy_from_slice(&2048u32.to_be_bytes());
    assert_eq!(open(&p, &v), Err(AttachmentError::HeaderMismatch));
    let mut v = blob.clone();
    v[2..6].copy_from_slice(&3000u32.to_be_bytes());
    assert_eq!(
        open(&p, &v),
        Err(AttachmentError::Malformed(DecodeError::InvalidValue))
    );
}

#[test]
fn every_flipped_byte_is_refused() {
    let plain = data(2500);
    let (p, blob) = seal(&plain, SMALL, b"flip");
    for i in 0..blob.len() {
        let mut v = blob.clone();
        v[i] ^= 0x01;
        let err = open(&p, &v).unwrap_err();
        let expected_kind = if i < HEADER_LEN {
            true
        } else {
            matches!(err, AttachmentError::ChunkRejected { index } if index as usize == (i - HEADER_LEN) / (SMALL as usize + TAG_LEN))
        };
        assert!(expected_kind, "byte {i}: {err:?}");
    }
}

#[test]
fn a_sender_lying_about_the_size_gets_bad_padding() {
    let plain = data(1000); // padded to 1024: 24 zero bytes of padding
    let (p, blob) = seal(&plain, SMALL, b"pad");
    assert_eq!(
        open(&resized(&p, 999), &blob),
        Err(AttachmentError::BadPadding)
    );
    // A larger size reaches into the padding: the content would gain zeros,
    // so both sizes with the same geometry decode, but only to the prefix
    // and zero extension of the same bytes (never two different files).
    let longer = open(&resized(&p, 1010), &blob).unwrap();
    assert_eq!(&longer[..1000], &plain[..]);
    assert!(longer[1000..].iter().all(|&b| b == 0));
}

#[test]
fn random_access_to_every_chunk() {
    let plain = data(50_000);
    let (p, blob) = seal(&plain, SMALL, b"seek");
    let opener = ChunkOpener::new(&p, &blob[..HEADER_LEN]).unwrap();
    let n = opener.chunk_count();
    assert_eq!(u64::from(n), p.chunk_count());
    let mut rebuilt = vec![0u8; plain.len()];
    // A scrambled order: chunk i alone, no state carried between calls.
    for k in 0..n {
        let i = (k * 17 + 5) % n;
        let ct = opener.ciphertext_range(i).unwrap();
        let pt = opener.plaintext_range(i).unwrap();
        let got = opener
            .decrypt_chunk(i, &blob[ct.start as usize..ct.end as usize])
            .unwrap();
        assert_eq!(got.len() as u64, pt.end - pt.start);
        rebuilt[pt.start as usize..pt.end as usize].copy_from_slice(&got);
    }
    assert_eq!(rebuilt, plain);
    assert_eq!(
        opener.ciphertext_range(n - 1).unwrap().end,
        blob.len() as u64
    );
    assert_eq!(opener.ciphertext_range(n), None);
    assert_eq!(
        opener.decrypt_chunk(n, &[0; 100]),
        Err(AttachmentError::ChunkOutOfRange)
    );
    // A chunk presented at another index, short or long.
    let c0 = &blob[chunk_range(0)];
    assert_eq!(
        opener.decrypt_chunk(1, c0),
        Err(AttachmentError::ChunkRejected { index: 1 })
    );
    assert_eq!(
        opener.decrypt_chunk(0, &c0[1..]),
        Err(AttachmentError::Truncated)
    );
    let mut long = c0.to_vec();
    long.push(0);
    assert_eq!(
        opener.decrypt_chunk(0, &long),
        Err(AttachmentError::Extended)
    );
}

#[test]
fn seekable_reader_reads_any_range_and_refuses_tampered_chunks() {
    use std::io::{Cursor, Seek, SeekFrom};
    let plain = data(20_000);
    let (p, blob) = seal(&plain, SMALL, b"reader");
    let mut r = attachment::AttachmentReader::new(&p, Cursor::new(blob.clone())).unwrap();
    for (start, len) in [
        (0usize, 10usize),
        (1020, 10),
        (19_990, 10),
        (5000, 3000),
        (0, 20_000),
    ] {
        r.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut got = vec![0u8; len];
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, plain[start..start + len], "{start}+{len}");
    }
    let mut rest = Vec::new();
    r.seek(SeekFrom::End(-5)).unwrap();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, plain[plain.len() - 5..]);
    assert!(r.seek(SeekFrom::Current(-100_000)).is_err());
    // A flipped byte in chunk 3: reads elsewhere work, reads there fail.
    let mut bad = blob.clone();
    bad[chunk_range(3).start + 7] ^= 1;
    let mut r = attachment::AttachmentReader::new(&p, Cursor::new(bad)).unwrap();
    let mut buf = [0u8; 100];
    r.read_exact(&mut buf).unwrap();
    r.seek(SeekFrom::Start(3 * 1024 + 10)).unwrap();
    let err = r.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        err.into_inner()
            .unwrap()
            .downcast::<AttachmentError>()
            .map(|e| *e)
            .unwrap(),
        AttachmentError::ChunkRejected { index: 3 }
    );
    assert_eq!(
        attachment::AttachmentReader::new(&resized(&p, 1), Cursor::new(&blob[..10])).unwrap_err(),
        AttachmentError::Truncated
    );
}

// ---------------------------------------------------------------------------
// The two-keys-one-file attack ("invisible salamanders" against AES-GCM).

/// Multiplication in GF(2^128) with GCM's bit order (NIST SP 800-38D, 6.3).
fn gf_mul(x: u128, y: u128) -> u128 {
    let r: u128 = 0xE1 << 120;
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ r } else { v >> 1 };
    }
    z
}

fn gf_pow(mut x: u128, mut e: u128) -> u128 {
    let mut acc = 1u128 << 127; // the field's one
    while e > 0 {
        if e & 1 == 1 {
            acc = gf_mul(acc, x);
        }
        x = gf_mul(x, x);
        e >>= 1;
    }
    acc
}

fn gf_inv(x: u128) -> u128 {
    gf_pow(x, u128::MAX - 1)
}

fn aes_block(key: &[u8; 32], block: [u8; 16]) -> [u8; 16] {
    use aes_gcm::aes::Aes256;
    use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
    let c = Aes256::new(key.into());
    let mut b = block.into();
    c.encrypt_block(&mut b);
    b.into()
}

/// AES key and nonce prefix of a file key, as docs/PROTOCOL.md defines them.
fn derive(file_key: &[u8; 32]) -> ([u8; 32], [u8; 7]) {
    let mut okm = [0u8; 39];
    hkdf::Hkdf::<sha2::Sha256>::new(None, file_key)
        .expand(b"secret-chat/v2/attachment/key", &mut okm)
        .unwrap();
    (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
}

fn commitment(file_key: &[u8; 32]) -> [u8; 32] {
    let mut c = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, file_key)
        .expand(b"secret-chat/v2/attachment/commitment", &mut c)
        .unwrap();
    c
}

fn header(chunk: u32, commitment: &[u8; 32]) -> Vec<u8> {
    let mut h = vec![1u8, 1];
    h.extend_from_slice(&chunk.to_be_bytes());
    h.extend_from_slice(commitment);
    h
}

fn chunk_nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// GHASH_H over `aad` and `ct` (each zero-padded to blocks) and the length block.
fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    for part in [aad, ct] {
        for block in part.chunks(16) {
            let mut b = [0u8; 16];
            b[..block.len()].copy_from_slice(block);
            y = gf_mul(y ^ u128::from_be_bytes(b), h);
        }
    }
    let len = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    gf_mul(y ^ len, h)
}

fn raw_open(aes_key: &[u8; 32], nonce: [u8; 12], aad: &[u8], ct_tag: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    Aes256Gcm::new(aes_key.into())
        .decrypt(&nonce.into(), Payload { msg: ct_tag, aad })
        .ok()
}

/// One ciphertext, valid AES-256-GCM under two keys (with their own nonces)
/// and the same associated data: solve the tag equation for one block.
fn two_key_ciphertext(
    k1: (&[u8; 32], [u8; 12]),
    k2: (&[u8; 32], [u8; 12]),
    aad: &[u8],
    len: usize,
) -> Vec<u8> {
    let h1 = u128::from_be_bytes(aes_block(k1.0, [0; 16]));
    let h2 = u128::from_be_bytes(aes_block(k2.0, [0; 16]));
    let j0 = |n: [u8; 12]| {
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(&n);
        b[15] = 1;
        b
    };
    let s1 = u128::from_be_bytes(aes_block(k1.0, j0(k1.1)));
    let s2 = u128::from_be_bytes(aes_block(k2.0, j0(k2.1)));
    let mut ct = vec![0x42u8; len];
    ct[..16].fill(0); // the free block, solved below
    // Block j of the GHASH input (0-based) is multiplied by H^(t - j).
    let t = aad.len().div_ceil(16) + len / 16 + 1;
    let e = (t - aad.len().div_ceil(16)) as u128;
    let rhs = ghash(h1, aad, &ct) ^ ghash(h2, aad, &ct) ^ s1 ^ s2;
    let coeff = gf_pow(h1, e) ^ gf_pow(h2, e);
    let free = gf_mul(rhs, gf_inv(coeff));
    ct[..16].copy_from_slice(&free.to_be_bytes());
    let tag = ghash(h1, aad, &ct) ^ s1;
    ct.extend_from_slice(&tag.to_be_bytes());
    ct
}

#[test]
fn field_arithmetic_matches_gcm() {
    // The attack's GHASH reproduces aes-gcm's tag for an honest ciphertext.
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    let ct = Aes256Gcm::new(&key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &[1u8; 40],
                aad: b"header bytes",
            },
        )
        .unwrap();
    let h = u128::from_be_bytes(aes_block(&key, [0; 16]));
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(&nonce);
    j0[15] = 1;
    let tag = ghash(h, b"header bytes", &ct[..40]) ^ u128::from_be_bytes(aes_block(&key, j0));
    assert_eq!(tag.to_be_bytes(), ct[40..]);
    let x = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321u128;
    assert_eq!(gf_mul(x, gf_inv(x)), 1u128 << 127);
}

#[test]
fn two_keys_one_file_attack_is_refused_by_the_commitment() {
    // A malicious sender makes one blob and two pointers (keys K1 and K2),
    // to show two people (or a moderator and a victim) two different files
    // under one blob id. A one-chunk file of exactly 1 KiB (its own Padmé
    // bucket: no padding for the receiver to check).
    let k1 = [0x11u8; 32];
    let k2 = [0x22u8; 32];
    let (a1, n1) = derive(&k1);
    let (a2, n2) = derive(&k2);
    let hdr = header(SMALL, &commitment(&k1));
    let (nonce1, nonce2) = (chunk_nonce(&n1, 0, true), chunk_nonce(&n2, 0, true));
    let ct = two_key_ciphertext((&a1, nonce1), (&a2, nonce2), &hdr, SMALL as usize);

    // Without the commitment, the chunk (STREAM over AES-GCM, same header
    // as associated data) is valid under both keys, with different contents.
    let p1 = raw_open(&a1, nonce1, &hdr, &ct).expect("valid under K1");
    let p2 = raw_open(&a2, nonce2, &hdr, &ct).expect("valid under K2");
    assert_ne!(p1, p2);

    // With it: the header carries K1's commitment, so K2 is refused before
    // any chunk is decrypted; K1 reads its file.
    let mut blob = hdr.clone();
    blob.extend_from_slice(&ct);
    let ptr = |k: [u8; 32]| {
        AttachmentPointer::new(AttachmentKey::from_bytes(k), 1024, SMALL, "image/png").unwrap()
    };
    assert_eq!(open(&ptr(k1), &blob).unwrap(), p1);
    assert_eq!(open(&ptr(k2), &blob), Err(AttachmentError::WrongKey));
    // And K2's commitment in the header would break the tag for K1 (the
    // header is the associated data) while K2 still meets its commitment:
    // no header serves both keys.
    let mut blob2 = header(SMALL, &commitment(&k2));
    blob2.extend_from_slice(&ct);
    assert_eq!(open(&ptr(k1), &blob2), Err(AttachmentError::WrongKey));
    assert_eq!(
        open(&ptr(k2), &blob2),
        Err(AttachmentError::ChunkRejected { index: 0 })
    );
}

// ---------------------------------------------------------------------------
// I/O errors, Debug, pointer and content encodings.

struct Failing;
impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))
    }
}

#[test]
fn io_errors_are_reported_and_retryable() {
    let err = attachment::encrypt(Failing, Vec::new(), "").unwrap_err();
    assert_eq!(err, AttachmentError::Io(io::ErrorKind::ConnectionReset));
    assert!(err.is_retryable());
    let (p, _) = seal(b"x", SMALL, b"io");
    assert_eq!(
        attachment::decrypt(&p, Failing, Vec::new()),
        Err(AttachmentError::Io(io::ErrorKind::ConnectionReset))
    );
}

#[test]
fn encrypt_refuses_bad_parameters() {
    for chunk in [0, 512, 3000, 2 << 20] {
        assert_eq!(
            encrypt_with_rng(&b""[..], Vec::new(), "", chunk, &mut VectorRng::new(b"")),
            Err(AttachmentError::LimitExceeded)
        );
    }
    for ct in ["image/png x", "caf\u{e9}", &"a".repeat(128)] {
        assert_eq!(
            attachment::encrypt(&b""[..], Vec::new(), ct).unwrap_err(),
            AttachmentError::InvalidContentType
        );
    }
}

#[test]
fn debug_output_has_no_key() {
    let (p, _) = seal(b"secret", SMALL, b"debug");
    let p = p.with_locator(b"loc").unwrap();
    assert_eq!(
        format!("{p:?}"),
        "AttachmentPointer { size: 6, chunk_size: 1024, content_type: \"application/octet-stream\", locator_len: 3, thumbnail_len: 0, .. }"
    );
    assert_eq!(format!("{:?}", p.key()), "AttachmentKey(..)");
    let c = Content::new("hi").unwrap().with_attachment(p).unwrap();
    assert!(!format!("{c:?}").contains(&format!("{:?}", &p_key_bytes(&c)[..4])));
}

fn p_key_bytes(c: &Content) -> Vec<u8> {
    c.attachments()[0].key().to_bytes().to_vec()
}

prop_compose! {
    fn arb_pointer()(key in any::<[u8; 32]>(), size in 0u64..=(1 << 40), shift in 0u32..=10,
                     ct in "[!-~]{0,40}", loc in proptest::collection::vec(any::<u8>(), 0..40),
                     thumb in proptest::collection::vec(any::<u8>(), 0..300)) -> AttachmentPointer {
        AttachmentPointer::new(AttachmentKey::from_bytes(key), size, 1024 << shift, &ct).unwrap()
            .with_locator(&loc).unwrap()
            .with_thumbnail(&thumb).unwrap()
    }
}

prop_compose! {
    fn arb_content()(text in "[a-z ]{0,60}", n in 0usize..4, seeds in any::<[u64; 4]>(),
                     preview in any::<bool>(), image in any::<bool>(), title in ".{0,20}") -> Content {
        let url = "https://example.org/p?q=1";
        let text = if preview { format!("{text} {url}") } else { text };
        let ptr = |s: u64| AttachmentPointer::new(
            AttachmentKey::from_bytes([s as u8; 32]), s % 100_000, 1024, "image/jpeg").unwrap();
        let mut c = Content::new(&text).unwrap();
        for s in &seeds[..n] {
            c = c.with_attachment(ptr(*s)).unwrap();
        }
        if preview {
            let mut p = LinkPreview::new(url, &title, "description").unwrap();
            if image {
                p = p.with_image(ptr(seeds[3]));
            }
            c = c.with_preview(p).unwrap();
        }
        c
    }
}

proptest! {
    #[test]
    fn pointer_round_trips(p in arb_pointer()) {
        let bytes = p.to_bytes();
        let q = AttachmentPointer::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&q, &p);
        prop_assert_eq!(&*q.to_bytes(), &*bytes);
        for cut in 0..bytes.len() {
            prop_assert!(AttachmentPointer::from_bytes(&bytes[..cut]).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        prop_assert_eq!(AttachmentPointer::from_bytes(&long),
            Err(AttachmentError::Malformed(DecodeError::TrailingBytes)));
    }

    #[test]
    fn pointer_parser_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = AttachmentPointer::from_bytes(&bytes) {
            prop_assert_eq!(&*p.to_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn content_round_trips(c in arb_content()) {
        let bytes = c.to_bytes();
        let d = Content::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&d, &c);
        prop_assert_eq!(&*d.to_bytes(), &*bytes);
        for cut in 0..bytes.len() {
            prop_assert!(Content::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn content_parser_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(c) = Content::from_bytes(&bytes) {
            prop_assert_eq!(&*c.to_bytes(), &bytes[..]);
        }
    }
}

/// A content envelope encoded by hand (the builder refuses what a receiver
/// must refuse, so a malicious sender's bytes are written directly).
fn raw_content(text: &str, url: &str, flag: u8) -> Vec<u8> {
    let mut b = vec![1u8];
    b.extend_from_slice(&(text.len() as u32).to_be_bytes());
    b.extend_from_slice(text.as_bytes());
    b.push(0); // no attachments
    b.push(flag);
    for s in [url, "title", "desc"] {
        b.extend_from_slice(&(s.len() as u16).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b.push(0); // no image
    b
}

#[test]
fn a_preview_is_accepted_only_for_a_url_in_the_text() {
    let ok = raw_content("see https://a.example/x", "https://a.example/x", 1);
    let c = Content::from_bytes(&ok).unwrap();
    assert_eq!(c.preview().unwrap().title(), "title");
    assert_eq!(
        Content::from_bytes(&raw_content(
            "see https://a.example/x",
            "https://evil.example/",
            1
        )),
        Err(AttachmentError::PreviewUrlNotInText)
    );
    assert_eq!(
        Content::new("no link")
            .unwrap()
            .with_preview(LinkPreview::new("https://a.example/", "", "").unwrap()),
        Err(AttachmentError::PreviewUrlNotInText)
    );
    for good in ["http://x", "HTTPS://A.EXAMPLE/"] {
        assert!(LinkPreview::new(good, "", "").is_ok(), "{good}");
    }
    for bad in [
        "javascript:alert(1)",
        "https://a b",
        "ftp://x.example/",
        "https://",
        "http://",
        "http:/x",
        "https://a\u{7}",
    ] {
        let text = format!("x {bad}");
        assert_eq!(
            Content::from_bytes(&raw_content(&text, bad, 1)),
            Err(AttachmentError::BadUrl),
            "{bad}"
        );
        assert_eq!(LinkPreview::new(bad, "", ""), Err(AttachmentError::BadUrl));
    }
    assert_eq!(
        Content::from_bytes(&raw_content("https://a.example/", "https://a.example/", 2)),
        Err(AttachmentError::Malformed(DecodeError::InvalidValue))
    );
    let mut not_utf8 = vec![1u8, 0, 0, 0, 1, 0xff, 0, 0];
    assert_eq!(
        Content::from_bytes(&not_utf8),
        Err(AttachmentError::NotUtf8)
    );
    not_utf8[5] = b'a';
    assert!(Content::from_bytes(&not_utf8).is_ok());
}

#[test]
fn album_and_text_limits() {
    let ptr = || AttachmentPointer::new(AttachmentKey::from_bytes([1; 32]), 1, 1024, "").unwrap();
    let mut c = Content::new("album").unwrap();
    for _ in 0..secret_chat::limits::MAX_ALBUM_LEN {
        c = c.with_attachment(ptr()).unwrap();
    }
    assert_eq!(
        c.with_attachment(ptr()).unwrap_err(),
        AttachmentError::LimitExceeded
    );
    let long = "a".repeat(secret_chat::limits::MAX_TEXT_LEN + 1);
    assert_eq!(Content::new(&long), Err(AttachmentError::LimitExceeded));
    let mut bytes = vec![1u8, 0, 0, 0, 0, 33];
    bytes.extend_from_slice(&[0; 64]);
    assert_eq!(
        Content::from_bytes(&bytes),
        Err(AttachmentError::Malformed(DecodeError::LengthLimit))
    );
}

// ---------------------------------------------------------------------------
// Published vectors.

const STREAM_CASES: &[(&str, usize, u32)] = &[
    ("empty", 0, SMALL),
    ("one-byte", 1, SMALL),
    ("one-full-chunk", 1024, SMALL),
    ("chunk-plus-one", 1025, SMALL),
    ("three-chunks-padded", 2500, SMALL),
    ("two-chunks-4k", 5000, 4096),
];

fn stream_vectors() -> Value {
    let mut streams = Vec::new();
    for (name, n, chunk) in STREAM_CASES {
        let seed = format!("attachment-{name}");
        let plain = data(*n);
        let (p, blob) = seal(&plain, *chunk, seed.as_bytes());
        let key = p.key().to_bytes();
        let (aes, prefix) = derive(&key);
        streams.push(json!({
            "name": name,
            "rng_seed": hex(seed.as_bytes()),
            "chunk_size": chunk,
            "content_type": "application/octet-stream",
            "plaintext": hex(&plain),
            "file_key": hex(&*key),
            "aes_key": hex(&aes),
            "nonce_prefix": hex(&prefix),
            "commitment": hex(&p.key().commitment()),
            "padded_size": padded_size(*n as u64),
            "pointer": hex(&p.to_bytes()),
            "blob": hex(&blob),
        }));
    }
    // Refusals, built from the "three-chunks-padded" case.
    let (p, blob) = seal(&data(2500), SMALL, b"attachment-three-chunks-padded");
    let (q, other) = seal(&data(2500), SMALL, b"attachment-other-file");
    let c = |i: usize| chunk_range(i);
    let mut swapped = blob.clone();
    swapped[c(0)].copy_from_slice(&blob[c(1)]);
    swapped[c(1)].copy_from_slice(&blob[c(0)]);
    let mut foreign = blob.clone();
    foreign[c(1)].copy_from_slice(&other[c(1)]);
    let mut extended = blob.clone();
    extended.push(0);
    let short = resized(&p, 2048);
    let refusals: Vec<(&str, &AttachmentPointer, Vec<u8>)> = vec![
        (
            "truncated-at-chunk-boundary",
            &p,
            blob[..c(2).start].to_vec(),
        ),
        ("extended", &p, extended),
        ("chunks-reordered", &p, swapped),
        ("chunk-from-another-file", &p, foreign),
        ("wrong-key", &q, blob.clone()),
        (
            "short-size-claims-prefix",
            &short,
            blob[..c(1).end].to_vec(),
        ),
    ];
    let rejections: Vec<Value> = refusals
        .into_iter()
        .map(|(name, ptr, b)| {
            json!({
                "name": name,
                "pointer": hex(&ptr.to_bytes()),
                "blob": hex(&b),
                "error": format!("{:?}", open(ptr, &b).unwrap_err()),
            })
        })
        .collect();
    // Content envelopes.
    let photo = AttachmentPointer::new(AttachmentKey::from_bytes([3; 32]), 5000, 4096, "image/png")
        .unwrap()
        .with_locator(b"https://media.example/b/1")
        .unwrap()
        .with_thumbnail(&[0x89, b'P', b'N', b'G'])
        .unwrap();
    let image = AttachmentPointer::new(AttachmentKey::from_bytes([4; 32]), 900, 1024, "image/jpeg")
        .unwrap();
    let contents = vec![
        ("text-only", Content::new("hello").unwrap()),
        (
            "album",
            Content::new("two photos")
                .unwrap()
                .with_attachment(photo)
                .unwrap()
                .with_attachment(resized(&image, 1))
                .unwrap(),
        ),
        (
            "preview-with-image",
            Content::new("read https://news.example/a?b=1 now")
                .unwrap()
                .with_preview(
                    LinkPreview::new("https://news.example/a?b=1", "News", "A story")
                        .unwrap()
                        .with_image(image),
                )
                .unwrap(),
        ),
    ];
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(name, c)| json!({ "name": name, "bytes": hex(&c.to_bytes()) }))
        .collect();
    let content_rejections = vec![
        json!({
            "name": "preview-url-not-in-text",
            "bytes": hex(&raw_content("see https://a.example/x", "https://evil.example/", 1)),
            "error": "PreviewUrlNotInText",
        }),
        json!({
            "name": "preview-not-http",
            "bytes": hex(&raw_content("x javascript:alert(1)", "javascript:alert(1)", 1)),
            "error": "BadUrl",
        }),
    ];
    json!({
        "description": "secret-chat attachments (docs/PROTOCOL.md section 10). plaintext byte i = (7 i + 3) mod 256; file_key = first 32 bytes of VectorRng(rng_seed).",
        "streams": streams,
        "rejections": rejections,
        "contents": contents,
        "content_rejections": content_rejections,
    })
}

#[test]
fn attachment_vectors_are_current() {
    let fresh = stream_vectors();
    let path = format!(
        "{}/tests/vectors/attachment.json",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    assert_eq!(
        load("attachment.json"),
        fresh,
        "run with REGENERATE_VECTORS=1"
    );
}

/// The vectors through the public API: every blob decrypts, every refusal
/// gives its error, every content parses and re-encodes to itself.
#[test]
fn attachment_vectors_decrypt() {
    let v = load("attachment.json");
    for s in v["streams"].as_array().unwrap() {
        let p = AttachmentPointer::from_bytes(&unhex(s["pointer"].as_str().unwrap())).unwrap();
        let blob = unhex(s["blob"].as_str().unwrap());
        assert_eq!(
            open(&p, &blob).unwrap(),
            unhex(s["plaintext"].as_str().unwrap())
        );
    }
    for r in v["rejections"].as_array().unwrap() {
        let p = AttachmentPointer::from_bytes(&unhex(r["pointer"].as_str().unwrap())).unwrap();
        let err = open(&p, &unhex(r["blob"].as_str().unwrap())).unwrap_err();
        assert_eq!(format!("{err:?}"), r["error"].as_str().unwrap());
    }
    for c in v["contents"].as_array().unwrap() {
        let bytes = unhex(c["bytes"].as_str().unwrap());
        assert_eq!(
            &*Content::from_bytes(&bytes).unwrap().to_bytes(),
            &bytes[..]
        );
    }
    for c in v["content_rejections"].as_array().unwrap() {
        let err = Content::from_bytes(&unhex(c["bytes"].as_str().unwrap())).unwrap_err();
        assert_eq!(format!("{err:?}"), c["error"].as_str().unwrap());
    }
}

/// A second implementation from docs/PROTOCOL.md alone (HKDF, AES-256-GCM,
/// Padmé; no `aead-stream`, no crate code) rebuilds every blob and pointer.
#[test]
fn attachment_vectors_from_the_document_alone() {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    fn padme(size: u64) -> u64 {
        let l = size.max(1024);
        let e = 63 - l.leading_zeros();
        let s = 32 - e.leading_zeros();
        let mask = (1u64 << (e - s)) - 1;
        (l + mask) & !mask
    }
    let v = load("attachment.json");
    for s in v["streams"].as_array().unwrap() {
        let seed = unhex(s["rng_seed"].as_str().unwrap());
        // VectorRng block 0: SHA-256("secret-chat/test-rng" || u32 len || seed || u64 0).
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"secret-chat/test-rng")
            .chain_update((seed.len() as u32).to_be_bytes())
            .chain_update(&seed)
            .chain_update(0u64.to_be_bytes())
            .finalize()
            .into();
        assert_eq!(hex(&key), s["file_key"].as_str().unwrap());
        let chunk = s["chunk_size"].as_u64().unwrap() as usize;
        let plain = unhex(s["plaintext"].as_str().unwrap());
        let (aes, prefix) = derive(&key);
        let hdr = header(chunk as u32, &commitment(&key));
        let mut padded = plain.clone();
        padded.resize(padme(plain.len() as u64) as usize, 0);
        let mut blob = hdr.clone();
        let n = padded.len().div_ceil(chunk);
        let cipher = Aes256Gcm::new(&aes.into());
        for (i, p) in padded.chunks(chunk).enumerate() {
            let nonce = chunk_nonce(&prefix, i as u32, i + 1 == n);
            let ct = cipher
                .encrypt(&nonce.into(), Payload { msg: p, aad: &hdr })
                .unwrap();
            blob.extend_from_slice(&ct);
        }
        assert_eq!(hex(&blob), s["blob"].as_str().unwrap());
        let mut ptr = vec![1u8];
        ptr.extend_from_slice(&key);
        ptr.extend_from_slice(&(plain.len() as u64).to_be_bytes());
        ptr.extend_from_slice(&(chunk as u32).to_be_bytes());
        let ct = s["content_type"].as_str().unwrap();
        ptr.push(ct.len() as u8);
        ptr.extend_from_slice(ct.as_bytes());
        ptr.extend_from_slice(&[0, 0, 0, 0]); // no locator, no thumbnail
        assert_eq!(hex(&ptr), s["pointer"].as_str().unwrap());
    }
}
