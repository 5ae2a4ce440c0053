//! Message encryption through the public API: ordering, replay, tampering,
//! cross-room and cross-epoch replays, padding, the attacks of issue 12
//! (restore-then-encrypt, two keys one ciphertext, retired-key forgery) and
//! the published vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{hex, load, unhex};
use proptest::prelude::*;
use secret_chat::testing::{self, VectorRng};
use secret_chat::{Error, InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};

/// The binding both halves of the test keys share (opaque to messages).
const BINDING: [u8; 32] = [0xb1; 32];

fn room(name: &[u8]) -> RoomId {
    RoomId::new(name).unwrap()
}

fn keys(mode: SenderKeyMode, seed: &[u8]) -> (OutboundSenderKey, InboundSenderKey) {
    let out = OutboundSenderKey::new_with_rng(
        room(b"room"),
        1,
        mode,
        BINDING,
        0,
        &mut VectorRng::new(seed),
    );
    let inb = InboundSenderKey::new(room(b"room"), 1, out.share(), BINDING).unwrap();
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
        let mut twin = InboundSenderKey::new(room(b"room"), 1, out.share(), BINDING).unwrap();
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
        let mut other_room =
            InboundSenderKey::new(room(b"other"), 1, share.clone(), BINDING).unwrap();
        let mut other_epoch =
            InboundSenderKey::new(room(b"room"), 2, share.clone(), BINDING).unwrap();
        assert_eq!(open(&mut other_room, &wire).unwrap_err(), Error::NotForMe);
        assert_eq!(open(&mut other_epoch, &wire).unwrap_err(), Error::NotForMe);
        // The relay rewrites the header's epoch to match: authentication fails.
        let mut rewritten = wire.clone();
        let epoch_at = 3 + b"room".len();
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
    let mut late = InboundSenderKey::new(room(b"room"), 1, out.share(), BINDING).unwrap();
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

/// Issue 12, attack 2: export -> encrypt(p1) -> crash before saving ->
/// import(old state) -> encrypt(p2). Both messages use index 0 and the same
/// message seed, but each draws a fresh salt, so the AES-GCM key and nonce
/// differ (compared here on the derived values); the receiver decrypts the
/// first and refuses the second as a replay, never opening it.
#[test]
fn restore_then_encrypt_never_repeats_key_and_nonce() {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};
    for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
        let (mut out, mut inb) = keys(mode, b"restore");
        let saved = testing::save_outbound(&out);
        let chain_key = testing::outbound_chain_key(&out);
        let first = out.encrypt(b"p1: before the crash").unwrap();
        let mut restored = testing::restore_outbound(&saved).unwrap();
        assert_eq!(restored.index(), 0);
        let second = restored.encrypt(b"p2: after the restore").unwrap();
        let (m1, m2) = (
            Message::from_bytes(&first).unwrap(),
            Message::from_bytes(&second).unwrap(),
        );
        assert_eq!((m1.index(), m2.index()), (0, 0));
        let d1 = testing::derive_message_keys(&chain_key, m1.salt(), &BINDING);
        let d2 = testing::derive_message_keys(&chain_key, m2.salt(), &BINDING);
        // The hook is the real derivation: it reproduces the header's
        // commitment and opens the message with raw AES-GCM.
        assert_eq!(&d1.commitment, m1.commitment());
        assert_eq!(&d2.commitment, m2.commitment());
        let sig_len = if mode == SenderKeyMode::Signed { 64 } else { 0 };
        let body = &first[m1.header().len()..first.len() - sig_len];
        let (ct, tag) = body.split_at(body.len() - 16);
        let mut buf = ct.to_vec();
        Aes256Gcm::new_from_slice(&d1.key)
            .unwrap()
            .decrypt_inout_detached(
                &d1.nonce.into(),
                m1.header(),
                buf.as_mut_slice().into(),
                tag.try_into().unwrap(),
            )
            .unwrap();
        assert!(buf.starts_with(b"p1: before the crash\x80"));
        // Same index, same seed: only the salt keeps the keys apart.
        assert_eq!(d1.seed, d2.seed);
        assert_ne!(m1.salt(), m2.salt());
        assert_ne!(d1.key, d2.key, "AES-GCM key reused after a restore");
        assert_ne!(d1.nonce, d2.nonce, "nonce reused after a restore");
        // The receiver takes the first and refuses the second as a replay.
        assert_eq!(open(&mut inb, &first).unwrap(), b"p1: before the crash");
        assert_eq!(open(&mut inb, &second).unwrap_err(), Error::Replay);
    }
}

/// GF(2^128) multiplication in GCM's bit order (NIST SP 800-38D, Algorithm 1).
fn gf_mul(x: u128, y: u128) -> u128 {
    const R: u128 = 0xe1 << 120;
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ R } else { v >> 1 };
    }
    z
}

/// x^(2^128 - 2) = x^-1 (x != 0).
fn gf_inv(x: u128) -> u128 {
    let mut r = 1u128 << 127; // the field's 1
    for i in 0..128 {
        r = gf_mul(r, r);
        if i != 127 {
            r = gf_mul(r, x);
        }
    }
    r
}

fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    for data in [aad, ct] {
        for chunk in data.chunks(16) {
            let mut b = [0u8; 16];
            b[..chunk.len()].copy_from_slice(chunk);
            y = gf_mul(y ^ u128::from_be_bytes(b), h);
        }
    }
    let lens = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    gf_mul(y ^ lens, h)
}

/// Raw AES-256 of one block.
fn aes_block(key: &[u8; 32], block: [u8; 16]) -> [u8; 16] {
    use aes_gcm::aes::Aes256;
    use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
    let mut b = block.into();
    Aes256::new(key.into()).encrypt_block(&mut b);
    b.into()
}

/// GCM counter block `nonce || u32(counter)`.
fn ctr_block(nonce: &[u8; 12], counter: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(nonce);
    b[12..].copy_from_slice(&counter.to_be_bytes());
    b
}

/// GCM keystream for `len` bytes (counter blocks 2, 3, ...).
fn keystream(key: &[u8; 32], nonce: &[u8; 12], len: usize) -> Vec<u8> {
    (0..len.div_ceil(16))
        .flat_map(|j| aes_block(key, ctr_block(nonce, 2 + j as u32)))
        .take(len)
        .collect()
}

/// Issue 12, attack 3 (invisible salamanders). A malicious member shares
/// different chain keys under one signed key id with Bob and Carol, then
/// builds ONE message (one header, one signature) whose AES-GCM tag is valid
/// under both members' keys, using the GF(2^128) trick: one free ciphertext
/// block is solved from the linear GHASH equation so both tags coincide.
/// Raw AES-GCM opens it for both, Bob reading "YES on motion 42" and Carol
/// "NO on motion 42." (both with valid padding): without the commitment both
/// would accept. The header carries Bob's key commitment, so Carol refuses
/// with `CommitmentMismatch` before any decryption.
#[test]
fn two_keys_one_ciphertext_is_refused_by_the_commitment() {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};
    use ed25519_dalek::{Signer, SigningKey};
    use sha2::{Digest, Sha256};

    let room_id = room(b"council");
    let epoch = 4;
    let signing_seed = [0x66; 32];
    let signer = SigningKey::from_bytes(&signing_seed);
    let id = testing::signed_sender_key_id(&signer.verifying_key().to_bytes()).unwrap();
    let binding = testing::sender_key_binding(&room_id, &[0x4d; 32], &[0; 32], epoch);
    let (ck_bob, ck_carol) = ([0xb0; 32], [0xca; 32]);
    let inbound = |ck: &[u8; 32]| {
        let shared = testing::shared_sender_key(
            id,
            SenderKeyMode::Signed,
            0,
            ck,
            Some(&signing_seed),
            &binding,
            0,
        )
        .unwrap();
        InboundSenderKey::new(room_id.clone(), epoch, shared, binding).unwrap()
    };
    let (mut bob, mut carol) = (inbound(&ck_bob), inbound(&ck_carol));

    // Pick a salt for which both keystreams agree on the last byte (~256
    // tries), so the final 0x80 padding byte is right for both.
    const LEN: usize = 64;
    let (salt, db, dc) = (0u128..)
        .map(|t| {
            let salt = t.to_be_bytes();
            let db = testing::derive_message_keys(&ck_bob, &salt, &binding);
            let dc = testing::derive_message_keys(&ck_carol, &salt, &binding);
            (salt, db, dc)
        })
        .find(|(_, db, dc)| {
            let last = |k: &[u8; 32], n: &[u8; 12]| aes_block(k, ctr_block(n, 2 + 3))[15];
            last(&db.key, &db.nonce) == last(&dc.key, &dc.nonce)
        })
        .unwrap();
    let (ks_b, ks_c) = (
        keystream(&db.key, &db.nonce, LEN),
        keystream(&dc.key, &dc.nonce, LEN),
    );

    let mut header = vec![
        2,
        SenderKeyMode::Signed.to_byte(),
        room_id.as_bytes().len() as u8,
    ];
    header.extend_from_slice(room_id.as_bytes());
    header.extend_from_slice(&epoch.to_be_bytes());
    header.extend_from_slice(&id);
    header.extend_from_slice(&0u32.to_be_bytes());
    header.extend_from_slice(&salt);
    header.extend_from_slice(&db.commitment);

    // Block 0 reads YES for Bob, block 1 reads NO for Carol, block 2 is the
    // free block, block 3 ends with 0x80 for both.
    let mut ct = vec![0u8; LEN];
    for i in 0..16 {
        ct[i] = b"YES on motion 42"[i] ^ ks_b[i];
        ct[16 + i] = b"NO on motion 42."[i] ^ ks_c[16 + i];
    }
    ct[LEN - 1] = 0x80 ^ ks_b[LEN - 1];
    let block = |k: &[u8; 32], b: [u8; 16]| u128::from_be_bytes(aes_block(k, b));
    let (hb, hc) = (block(&db.key, [0; 16]), block(&dc.key, [0; 16]));
    let (eb, ec) = (
        block(&db.key, ctr_block(&db.nonce, 1)),
        block(&dc.key, ctr_block(&dc.nonce, 1)),
    );
    // The free block is the third-to-last GHASH input: coefficient H^3.
    let cube = |h: u128| gf_mul(gf_mul(h, h), h);
    let rhs = ghash(hb, &header, &ct) ^ ghash(hc, &header, &ct) ^ eb ^ ec;
    let z = gf_mul(rhs, gf_inv(cube(hb) ^ cube(hc)));
    ct[32..48].copy_from_slice(&z.to_be_bytes());
    let tag = (ghash(hb, &header, &ct) ^ eb).to_be_bytes();
    assert_eq!(tag, (ghash(hc, &header, &ct) ^ ec).to_be_bytes());

    // Without the commitment both members accept: raw AES-GCM opens the
    // one ciphertext under each key, to two different, validly padded texts.
    let raw_open = |k: &[u8; 32], n: &[u8; 12]| {
        let mut buf = ct.clone();
        Aes256Gcm::new_from_slice(k)
            .unwrap()
            .decrypt_inout_detached(
                &(*n).into(),
                &header,
                buf.as_mut_slice().into(),
                &tag.into(),
            )
            .unwrap();
        assert_eq!(buf[LEN - 1], 0x80, "padding");
        buf
    };
    let bob_reads = raw_open(&db.key, &db.nonce);
    let carol_reads = raw_open(&dc.key, &dc.nonce);
    assert!(bob_reads.starts_with(b"YES on motion 42"));
    assert_eq!(&carol_reads[16..32], b"NO on motion 42.");

    // One message, one signature by the (malicious) sender key.
    let mut body = ct.clone();
    body.extend_from_slice(&tag);
    let mut signed = b"secret-chat/v2/message/signature".to_vec();
    signed.extend_from_slice(&header);
    signed.extend_from_slice(&Sha256::digest(&body));
    let mut wire = header.clone();
    wire.extend_from_slice(&body);
    wire.extend_from_slice(&signer.sign(&signed).to_bytes());

    let msg = Message::from_bytes(&wire).unwrap();
    let bob_result = bob.decrypt(&msg).map(|d| d.into_plaintext());
    let carol_result = carol.decrypt(&msg).map(|d| d.into_plaintext());
    assert!(
        bob_result.is_err() || carol_result.is_err(),
        "both members accepted one ciphertext under two keys"
    );
    assert!(bob_result.unwrap().starts_with(b"YES on motion 42"));
    assert_eq!(carol_result.unwrap_err(), Error::CommitmentMismatch);
}

/// Issue 12, retired keys: Alice rotates after 3 messages; her new key's
/// share carries `predecessor_end = 3` and Bob retires her old key there. A
/// thief holding Alice's old key (its full state, signing key included)
/// forges messages at new indices (3, 4, 10): all refused. A genuine late
/// message from before the rotation (index 2) still decrypts.
#[test]
fn forged_message_at_a_retired_keys_new_index_is_refused() {
    for mode in [SenderKeyMode::Signed, SenderKeyMode::Pairwise] {
        let (mut old, mut bob_old) = keys(mode, b"retire");
        let sent: Vec<_> = (0..3).map(|i| old.encrypt(&[i]).unwrap()).collect();
        let stolen = testing::save_outbound(&old);
        let new = OutboundSenderKey::new_with_rng(
            room(b"room"),
            2,
            mode,
            [0xb2; 32],
            old.index(),
            &mut VectorRng::new(b"retire-next"),
        );
        let bob_new = InboundSenderKey::new(room(b"room"), 2, new.share(), [0xb2; 32]).unwrap();
        assert_eq!(bob_new.predecessor_end(), 3);
        open(&mut bob_old, &sent[0]).unwrap();
        bob_old.retire(bob_new.predecessor_end());
        assert_eq!(bob_old.retired_end(), Some(3));
        let mut thief = testing::restore_outbound(&stolen).unwrap();
        for target in [3u32, 4, 10] {
            while thief.index() < target {
                thief.encrypt(b"skip").unwrap();
            }
            let forged = thief.encrypt(b"transfer everything to mallory").unwrap();
            let before = format!("{bob_old:?}");
            assert_eq!(
                open(&mut bob_old, &forged).unwrap_err(),
                Error::RetiredKeyIndex,
                "{mode:?} index {target}"
            );
            assert_eq!(format!("{bob_old:?}"), before);
        }
        // Late genuine messages below the end still arrive.
        assert_eq!(open(&mut bob_old, &sent[2]).unwrap(), [2]);
        assert_eq!(open(&mut bob_old, &sent[1]).unwrap(), [1]);
    }
}

/// Per-message overhead of version 2 (reported in docs/PERFORMANCE.md):
/// header 75 + room id bytes, tag 16, signature 64 (groups), plus padding.
#[test]
fn per_message_overhead_is_as_documented() {
    for (mode, sig) in [(SenderKeyMode::Signed, 64), (SenderKeyMode::Pairwise, 0)] {
        let (mut out, _) = keys(mode, b"overhead");
        let wire = out.encrypt(&[0x41; 100]).unwrap();
        let padded = secret_chat::message::padded_len(101);
        assert_eq!(
            wire.len(),
            secret_chat::message::HEADER_FIXED_LEN + b"room".len() + padded + 16 + sig
        );
        assert_eq!(secret_chat::message::HEADER_FIXED_LEN, 75);
    }
}

fn case_mode(case: &serde_json::Value) -> SenderKeyMode {
    match case["mode"].as_str().unwrap() {
        "signed" => SenderKeyMode::Signed,
        _ => SenderKeyMode::Pairwise,
    }
}

fn arr<const N: usize>(v: &serde_json::Value) -> [u8; N] {
    unhex(v.as_str().unwrap()).try_into().unwrap()
}

/// The published vectors, checked through the public API only: encryption
/// reproduces every byte, the receive order decrypts every message, and every
/// negative vector fails with its documented error.
#[test]
fn message_vectors() {
    let v = load("message.json");
    let cases = v["cases"].as_array().unwrap();
    for case in cases {
        let mode = case_mode(case);
        let room = RoomId::new(&unhex(case["room_id"].as_str().unwrap())).unwrap();
        let epoch = case["epoch"].as_u64().unwrap() as u32;
        let binding: [u8; 32] = arr(&case["binding"]);
        assert_eq!(
            testing::sender_key_binding(
                &room,
                &arr(&case["owner"]),
                &arr(&case["instance"]),
                epoch
            ),
            binding
        );
        let seed = unhex(case["rng_seed"].as_str().unwrap());
        let mut out = OutboundSenderKey::new_with_rng(
            room.clone(),
            epoch,
            mode,
            binding,
            case["predecessor_end"].as_u64().unwrap() as u32,
            &mut VectorRng::new(&seed),
        );
        assert_eq!(
            out.id().as_bytes().to_vec(),
            unhex(case["sender_key_id"].as_str().unwrap())
        );
        let mut inb = InboundSenderKey::new(room, epoch, out.share(), binding).unwrap();
        let mut salts = VectorRng::new(&unhex(case["salt_rng_seed"].as_str().unwrap()));
        let msgs = case["messages"].as_array().unwrap();
        for m in msgs {
            let pt = unhex(m["plaintext"].as_str().unwrap());
            assert_eq!(
                hex(&out.encrypt_with_rng(&pt, &mut salts).unwrap()),
                m["message"].as_str().unwrap()
            );
        }
        for i in case["receive_order"].as_array().unwrap() {
            let m = &msgs[i.as_u64().unwrap() as usize];
            let got = open(&mut inb, &unhex(m["message"].as_str().unwrap())).unwrap();
            assert_eq!(got, unhex(m["plaintext"].as_str().unwrap()));
        }
    }
    let negatives = v["negative"].as_array().unwrap();
    assert!(negatives.len() >= 30);
    for n in negatives {
        let case = &cases[n["case"].as_u64().unwrap() as usize];
        let mode = case_mode(case);
        let room = RoomId::new(&unhex(case["room_id"].as_str().unwrap())).unwrap();
        let binding: [u8; 32] = arr(&case["binding"]);
        let signing_seed = case["signing_seed"]
            .as_str()
            .map(|_| arr::<32>(&case["signing_seed"]));
        let shared = testing::shared_sender_key(
            arr(&case["sender_key_id"]),
            mode,
            0,
            &arr(&case["initial_chain_key"]),
            signing_seed.as_ref(),
            &binding,
            case["predecessor_end"].as_u64().unwrap() as u32,
        )
        .unwrap();
        let receiver_binding = match n["receiver_binding"].as_str() {
            Some(_) => arr(&n["receiver_binding"]),
            None => binding,
        };
        let epoch = case["epoch"].as_u64().unwrap() as u32;
        let got =
            InboundSenderKey::new(room, epoch, shared, receiver_binding).and_then(|mut inb| {
                for i in n["receive_first"].as_array().unwrap() {
                    let m = &case["messages"][i.as_u64().unwrap() as usize]["message"];
                    open(&mut inb, &unhex(m.as_str().unwrap())).unwrap();
                }
                if let Some(end) = n["retire"].as_u64() {
                    inb.retire(end as u32);
                }
                open(&mut inb, &unhex(n["message"].as_str().unwrap()))
            });
        assert_eq!(
            format!("{:?}", got.unwrap_err()),
            n["error"].as_str().unwrap(),
            "{}",
            n["name"]
        );
    }
}

/// A second implementation, written from docs/PROTOCOL.md section 4 with the
/// raw primitives only (SHA-256, HMAC, HKDF, AES-256-GCM, Ed25519), rebuilds
/// every published value: the binding, the key id, the proof of possession,
/// the share plaintext, and for each message the chain keys, seed, salt (from
/// the documented test RNG), key, nonce, commitment, padding, header and bytes.
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
    /// The test RNG of PROTOCOL.md section 1: `n` bytes from block `from` on.
    fn test_rng(seed: &[u8], skip: usize, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < skip + n {
            let mut h = Sha256::new();
            h.update(b"secret-chat/test-rng");
            h.update((seed.len() as u32).to_be_bytes());
            h.update(seed);
            h.update(i.to_be_bytes());
            out.extend_from_slice(&h.finalize());
            i += 1;
        }
        out[skip..skip + n].to_vec()
    }

    let v = load("message.json");
    for case in v["cases"].as_array().unwrap() {
        let signed = case["mode"] == "signed";
        let room = unhex(case["room_id"].as_str().unwrap());
        let epoch = case["epoch"].as_u64().unwrap() as u32;
        let seed = unhex(case["rng_seed"].as_str().unwrap());
        // Binding.
        let mut b = Sha256::new();
        b.update(b"secret-chat/v2/sender-key/binding");
        b.update([room.len() as u8]);
        b.update(&room);
        b.update(unhex(case["owner"].as_str().unwrap()));
        b.update(unhex(case["instance"].as_str().unwrap()));
        b.update(epoch.to_be_bytes());
        let binding: [u8; 32] = b.finalize().into();
        assert_eq!(hex(&binding), case["binding"].as_str().unwrap());
        // Key generation: chain key, then the Ed25519 seed or the id.
        let drawn = test_rng(&seed, 0, 32 + if signed { 32 } else { 16 });
        let mut chain = drawn[..32].to_vec();
        assert_eq!(hex(&chain), case["initial_chain_key"].as_str().unwrap());
        let signer = signed.then(|| SigningKey::from_bytes(&drawn[32..64].try_into().unwrap()));
        let key_id = match &signer {
            Some(k) => {
                let mut h = Sha256::new();
                h.update(b"secret-chat/v2/sender-key/id");
                h.update(k.verifying_key().as_bytes());
                h.finalize()[..16].to_vec()
            }
            None => drawn[32..48].to_vec(),
        };
        assert_eq!(hex(&key_id), case["sender_key_id"].as_str().unwrap());
        // Share plaintext with the proof of possession.
        let pred = case["predecessor_end"].as_u64().unwrap() as u32;
        let mut share = vec![if signed { 1 } else { 2 }];
        share.extend_from_slice(&key_id);
        share.extend_from_slice(&0u32.to_be_bytes());
        share.extend_from_slice(&chain);
        if let Some(k) = &signer {
            let mut input = b"secret-chat/v2/sender-key/possession".to_vec();
            input.extend_from_slice(&binding);
            input.extend_from_slice(&key_id);
            let proof = k.sign(&input).to_bytes();
            assert_eq!(hex(&proof), case["possession"].as_str().unwrap());
            share.extend_from_slice(k.verifying_key().as_bytes());
            share.extend_from_slice(&proof);
        }
        share.extend_from_slice(&pred.to_be_bytes());
        assert_eq!(hex(&share), case["share_plaintext"].as_str().unwrap());

        let salt_seed = unhex(case["salt_rng_seed"].as_str().unwrap());
        for (n, m) in case["messages"].as_array().unwrap().iter().enumerate() {
            let index = m["index"].as_u64().unwrap() as u32;
            assert_eq!(hex(&chain), m["chain_key"].as_str().unwrap());
            let msg_seed = hmac(&chain, &[0x01]);
            chain = hmac(&chain, &[0x02]).to_vec();
            assert_eq!(hex(&msg_seed), m["message_seed"].as_str().unwrap());
            assert_eq!(hex(&chain), m["next_chain_key"].as_str().unwrap());
            let salt = test_rng(&salt_seed, 16 * n, 16);
            assert_eq!(hex(&salt), m["salt"].as_str().unwrap());
            let mut okm = [0u8; 76];
            let mut info = b"secret-chat/v2/message-key".to_vec();
            info.extend_from_slice(&binding);
            hkdf::Hkdf::<Sha256>::new(Some(&salt), &msg_seed)
                .expand(&info, &mut okm)
                .unwrap();
            assert_eq!(hex(&okm[..32]), m["aes_key"].as_str().unwrap());
            assert_eq!(hex(&okm[32..44]), m["nonce"].as_str().unwrap());
            assert_eq!(hex(&okm[44..]), m["commitment"].as_str().unwrap());
            let mut header = vec![2, if signed { 1 } else { 2 }, room.len() as u8];
            header.extend_from_slice(&room);
            header.extend_from_slice(&epoch.to_be_bytes());
            header.extend_from_slice(&key_id);
            header.extend_from_slice(&index.to_be_bytes());
            header.extend_from_slice(&salt);
            header.extend_from_slice(&okm[44..]);
            assert_eq!(hex(&header), m["header"].as_str().unwrap());
            let plaintext = unhex(m["plaintext"].as_str().unwrap());
            let mut body = plaintext.clone();
            body.push(0x80);
            body.resize(padme(plaintext.len() + 1), 0);
            assert_eq!(hex(&body), m["padded"].as_str().unwrap());
            let cipher = Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
            let nonce: [u8; 12] = okm[32..44].try_into().unwrap();
            let tag = cipher
                .encrypt_inout_detached(&nonce.into(), &header, body.as_mut_slice().into())
                .unwrap();
            body.extend_from_slice(&tag);
            let mut wire = header.clone();
            wire.extend_from_slice(&body);
            if let Some(k) = &signer {
                let mut input = b"secret-chat/v2/message/signature".to_vec();
                input.extend_from_slice(&header);
                input.extend_from_slice(&Sha256::digest(&body));
                wire.extend_from_slice(&k.sign(&input).to_bytes());
            }
            assert_eq!(hex(&wire), m["message"].as_str().unwrap(), "index {index}");
        }
    }
}
