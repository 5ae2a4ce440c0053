//! Message encryption through the public API: ordering, replay, tampering,
//! cross-room and cross-epoch replays, padding, and the published vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{hex, load, unhex};
use proptest::prelude::*;
use secret_chat::testing::VectorRng;
use secret_chat::{Error, InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};

fn room(name: &[u8]) -> RoomId {
    RoomId::new(name).unwrap()
}

fn keys(mode: SenderKeyMode, seed: &[u8]) -> (OutboundSenderKey, InboundSenderKey) {
    let out = OutboundSenderKey::new_with_rng(room(b"room"), 1, mode, &mut VectorRng::new(seed));
    let inb = InboundSenderKey::new(room(b"room"), 1, out.share());
    (out, inb)
}

fn open(inb: &mut InboundSenderKey, wire: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(inb.decrypt(&Message::from_bytes(wire)?)?.into_plaintext())
}

fn mode_strategy() -> impl Strategy<Value = SenderKeyMode> {
    prop_oneof![Just(SenderKeyMode::Signed), Just(SenderKeyMode::Pairwise)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any delivery order decrypts every message exactly once; every replay fails.
    #[test]
    fn any_order_decrypts_each_exactly_once(
        mode in mode_strategy(),
        order in Just((0..24usize).collect::<Vec<_>>()).prop_shuffle(),
        seed in any::<[u8; 8]>(),
    ) {
        let (mut out, mut inb) = keys(mode, &seed);
        let msgs: Vec<_> = (0..24u32).map(|i| out.encrypt(&i.to_be_bytes()).unwrap()).collect();
        for &i in &order {
            let got = inb.decrypt(&Message::from_bytes(&msgs[i]).unwrap()).unwrap();
            prop_assert_eq!(got.plaintext(), &(i as u32).to_be_bytes()[..]);
            prop_assert_eq!(got.index(), i as u32);
        }
        prop_assert!(inb.missing_indices().is_empty());
        for m in &msgs {
            prop_assert_eq!(open(&mut inb, m).unwrap_err(), Error::Replay);
        }
    }

    /// Every single-bit flip of a message is rejected, and the failed call
    /// leaves the state exactly as an untouched twin's.
    #[test]
    fn every_bit_flip_fails_and_leaves_state_unchanged(mode in mode_strategy(), len in 0usize..80) {
        let (mut out, mut inb) = keys(mode, b"flip");
        let mut twin = InboundSenderKey::new(room(b"room"), 1, out.share());
        let first = out.encrypt(b"first").unwrap();
        open(&mut inb, &first).unwrap();
        open(&mut twin, &first).unwrap();
        let wire = out.encrypt(&vec![0xa5; len]).unwrap();
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(open(&mut inb, &bad).is_err(), "bit {} accepted", bit);
        }
        for n in 0..wire.len() {
            prop_assert!(open(&mut inb, &wire[..n]).is_err());
        }
        prop_assert!(inb == twin, "a failed decrypt changed the state");
        prop_assert_eq!(open(&mut inb, &wire).unwrap(), vec![0xa5; len]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut inb) = keys(SenderKeyMode::Signed, b"fuzz");
        let _ = open(&mut inb, &bytes);
    }
}

#[test]
fn cross_room_and_cross_epoch_replays_fail() {
    for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
        let (mut out, _) = keys(mode, b"cross");
        let share = out.share();
        let wire = out.encrypt(b"for room, epoch 1").unwrap();
        // The same key material installed for another room or epoch.
        let mut other_room = InboundSenderKey::new(room(b"other"), 1, share.clone());
        let mut other_epoch = InboundSenderKey::new(room(b"room"), 2, share.clone());
        assert_eq!(open(&mut other_room, &wire).unwrap_err(), Error::NotForMe);
        assert_eq!(open(&mut other_epoch, &wire).unwrap_err(), Error::NotForMe);
        // The relay rewrites the header's epoch to match: authentication fails.
        let mut rewritten = wire.clone();
        let epoch_at = 4 + b"room".len();
        rewritten[epoch_at + 3] = 2;
        let expected = match mode {
            SenderKeyMode::Signed => Error::BadSignature,
            SenderKeyMode::Pairwise => Error::Tampered,
        };
        assert_eq!(open(&mut other_epoch, &rewritten).unwrap_err(), expected);
    }
}

#[test]
fn gaps_are_reported() {
    let (mut out, mut inb) = keys(SenderKeyMode::Signed, b"gaps");
    let msgs: Vec<_> = (0..6).map(|_| out.encrypt(b"m").unwrap()).collect();
    open(&mut inb, &msgs[0]).unwrap();
    open(&mut inb, &msgs[4]).unwrap();
    assert_eq!(inb.missing_indices(), vec![1, 2, 3]);
    open(&mut inb, &msgs[2]).unwrap();
    assert_eq!(inb.missing_indices(), vec![1, 3]);
    assert_eq!(inb.next_index(), 5);
}

#[test]
fn a_share_reads_nothing_before_its_index() {
    let (mut out, _) = keys(SenderKeyMode::Signed, b"late");
    let early = out.encrypt(b"before you joined").unwrap();
    let mut late = InboundSenderKey::new(room(b"room"), 1, out.share());
    let after = out.encrypt(b"after").unwrap();
    assert_eq!(open(&mut late, &early).unwrap_err(), Error::TooOld);
    assert_eq!(open(&mut late, &after).unwrap(), b"after");
}

#[test]
fn padding_hides_exact_lengths() {
    let (mut out, _) = keys(SenderKeyMode::Pairwise, b"pad");
    let sizes: Vec<usize> = (0..=30)
        .map(|n| out.encrypt(&vec![1; n]).unwrap().len())
        .collect();
    assert!(
        sizes.iter().all(|&s| s == sizes[0]),
        "short messages share one size"
    );
    for n in [100usize, 1000, 10_000, 100_000] {
        // Padded length = wire length - (header + tag), i.e. minus the
        // fixed part of the smallest message (whose padded body is 32).
        let padded = out.encrypt(&vec![1; n]).unwrap().len() - (sizes[0] - 32);
        let overhead = padded as f64 / n as f64;
        assert!(padded > n && overhead < 1.13, "{n}: {overhead}");
    }
    // 1000 and 1001 bytes land in the same bucket.
    assert_eq!(
        out.encrypt(&[0; 1000]).unwrap().len(),
        out.encrypt(&[0; 1001]).unwrap().len()
    );
}

#[test]
fn limits_are_enforced() {
    let (mut out, _) = keys(SenderKeyMode::Pairwise, b"limits");
    let big = vec![0u8; secret_chat::limits::MAX_PLAINTEXT_LEN + 1];
    assert_eq!(out.encrypt(&big).unwrap_err(), Error::LimitExceeded);
    assert_eq!(out.index(), 0, "a failed encrypt does not advance");
}

/// The published vectors, checked through the public API only: encryption
/// reproduces every byte, and the receive order decrypts every message.
#[test]
fn message_vectors() {
    let v = load("message.json");
    for case in v["cases"].as_array().unwrap() {
        let mode = match case["mode"].as_str().unwrap() {
            "signed" => SenderKeyMode::Signed,
            _ => SenderKeyMode::Pairwise,
        };
        let room = RoomId::new(&unhex(case["room_id"].as_str().unwrap())).unwrap();
        let epoch = case["epoch"].as_u64().unwrap() as u32;
        let seed = unhex(case["rng_seed"].as_str().unwrap());
        let mut out =
            OutboundSenderKey::new_with_rng(room.clone(), epoch, mode, &mut VectorRng::new(&seed));
        assert_eq!(
            out.id().as_bytes().to_vec(),
            unhex(case["sender_key_id"].as_str().unwrap())
        );
        let mut inb = InboundSenderKey::new(room, epoch, out.share());
        let msgs = case["messages"].as_array().unwrap();
        for m in msgs {
            let pt = unhex(m["plaintext"].as_str().unwrap());
            assert_eq!(
                out.encrypt(&pt).unwrap(),
                unhex(m["message"].as_str().unwrap())
            );
        }
        for i in case["receive_order"].as_array().unwrap() {
            let m = &msgs[i.as_u64().unwrap() as usize];
            let got = open(&mut inb, &unhex(m["message"].as_str().unwrap())).unwrap();
            assert_eq!(got, unhex(m["plaintext"].as_str().unwrap()));
        }
    }
}

/// A second implementation, written from docs/PROTOCOL.md section 4 with the
/// raw primitives only (HMAC, HKDF, AES-256-GCM, SHA-256, Ed25519), rebuilds
/// every published message byte for byte.
#[test]
fn message_vectors_from_the_document_alone() {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};
    use ed25519_dalek::{Signer, SigningKey};
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().into()
    }
    fn padme(l: usize) -> usize {
        let l = l.max(32);
        let e = usize::BITS - 1 - l.leading_zeros();
        let s = u32::BITS - e.leading_zeros();
        let mask = (1usize << (e - s)) - 1;
        (l + mask) & !mask
    }

    let v = load("message.json");
    for case in v["cases"].as_array().unwrap() {
        let signed = case["mode"] == "signed";
        let room = unhex(case["room_id"].as_str().unwrap());
        let epoch = case["epoch"].as_u64().unwrap() as u32;
        let key_id = unhex(case["sender_key_id"].as_str().unwrap());
        let signer = case["signing_seed"]
            .as_str()
            .map(|s| SigningKey::from_bytes(&unhex(s).try_into().unwrap()));
        assert_eq!(signed, signer.is_some());
        let mut chain = unhex(case["initial_chain_key"].as_str().unwrap());
        for m in case["messages"].as_array().unwrap() {
            let index = m["index"].as_u64().unwrap() as u32;
            assert_eq!(hex(&chain), m["chain_key"].as_str().unwrap());
            let seed = hmac(&chain, &[0x01]);
            chain = hmac(&chain, &[0x02]).to_vec();
            let mut okm = [0u8; 44];
            hkdf::Hkdf::<Sha256>::from_prk(&seed)
                .unwrap()
                .expand(b"secret-chat/v1/message-key", &mut okm)
                .unwrap();
            let mut header = vec![1, 1, if signed { 1 } else { 2 }, room.len() as u8];
            header.extend_from_slice(&room);
            header.extend_from_slice(&epoch.to_be_bytes());
            header.extend_from_slice(&key_id);
            header.extend_from_slice(&index.to_be_bytes());
            let plaintext = unhex(m["plaintext"].as_str().unwrap());
            let mut body = plaintext.clone();
            body.push(0x80);
            body.resize(padme(plaintext.len() + 1), 0);
            let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
            let nonce: [u8; 12] = okm[32..].try_into().unwrap();
            let tag = cipher
                .encrypt_inout_detached(&nonce.into(), &header, body.as_mut_slice().into())
                .unwrap();
            body.extend_from_slice(&tag);
            let mut wire = header.clone();
            wire.extend_from_slice(&body);
            if let Some(k) = &signer {
                let mut input = b"secret-chat/v1/message/signature".to_vec();
                input.extend_from_slice(&header);
                input.extend_from_slice(&Sha256::digest(&body));
                wire.extend_from_slice(&k.sign(&input).to_bytes());
            }
            assert_eq!(hex(&wire), m["message"].as_str().unwrap(), "index {index}");
        }
    }
}
