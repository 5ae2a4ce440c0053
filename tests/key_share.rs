//! Key-share known-answer vectors (`tests/vectors/key_share.json`) and
//! public-API tests.
//!
//! `REGENERATE_VECTORS=1 cargo test --all-features --test key_share` rewrites
//! the vector file from its fixed seeds; without it the harness checks that
//! the crate reproduces every byte of the file, and replays the file with an
//! independent implementation of the documented layout (raw `hpke` and
//! `ed25519-dalek` calls, no crate internals).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use secret_chat::testing::{VectorRng, shared_sender_key};
use secret_chat::{
    Error, IdentityKeyPair, KeyShare, RoomId, SenderKeyMode, SharedSenderKey, open_share,
    seal_shares_with_rng,
};
use serde_json::{Value, json};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

const VECTORS: &str = "tests/vectors/key_share.json";
const INFO_LABEL: &[u8] = b"secret-chat/v1/key-share/info";
const SIG_LABEL: &[u8] = b"secret-chat/v1/key-share/signature";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(v: &Value) -> Vec<u8> {
    unhex(v.as_str().unwrap())
}

fn rng_bytes(seed: &[u8], n: usize) -> Vec<u8> {
    use rand_core::Rng;
    let mut out = vec![0u8; n];
    VectorRng::new(seed).fill_bytes(&mut out);
    out
}

const NAMES: [&str; 4] = ["alice", "bob", "carol", "mallory"];

fn seed_of(name: &str) -> Vec<u8> {
    format!("secret-chat/kat/key-share/{name}").into_bytes()
}

fn identity(name: &str) -> IdentityKeyPair {
    IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&seed_of(name)))
}

struct CaseInput {
    name: &'static str,
    recipients: &'static [&'static str],
    room: &'static [u8],
    epoch: u32,
    key_id: [u8; 16],
    mode: SenderKeyMode,
    index: u32,
    chain_key: [u8; 32],
    signing_seed: Option<[u8; 32]>,
    rng_seed: &'static [u8],
}

fn cases() -> Vec<CaseInput> {
    vec![
        CaseInput {
            name: "signed-group-key-to-two-members",
            recipients: &["bob", "carol"],
            room: b"family-chat-7f3a",
            epoch: 3,
            key_id: [0x11; 16],
            mode: SenderKeyMode::Signed,
            index: 5,
            chain_key: core::array::from_fn(|i| i as u8),
            signing_seed: Some([0x42; 32]),
            rng_seed: b"secret-chat/kat/key-share/seal-1",
        },
        CaseInput {
            name: "pairwise-key-to-one-member",
            recipients: &["bob"],
            room: b"\x00\x01two-of-us",
            epoch: 0,
            key_id: [0xa5; 16],
            mode: SenderKeyMode::Pairwise,
            index: 0,
            chain_key: [0xee; 32],
            signing_seed: None,
            rng_seed: b"secret-chat/kat/key-share/seal-2",
        },
    ]
}

fn signing_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// The sender key's binding in these vectors (opaque to key shares).
const BINDING: [u8; 32] = [0xb1; 32];

/// A signed key's id is derived from its signing key; a pairwise key's is `key_id`.
fn key_id(c: &CaseInput) -> [u8; 16] {
    match c.signing_seed {
        Some(s) => secret_chat::testing::signed_sender_key_id(&signing_public(&s)).unwrap(),
        None => c.key_id,
    }
}

fn case_key(c: &CaseInput) -> SharedSenderKey {
    shared_sender_key(
        key_id(c),
        c.mode,
        c.index,
        &c.chain_key,
        c.signing_seed.as_ref(),
        &BINDING,
        c.index,
    )
    .unwrap()
}

/// The documented proof of possession: Ed25519 by the sender key's signing
/// key over label || binding || key id.
fn possession(c: &CaseInput) -> Option<[u8; 64]> {
    use ed25519_dalek::Signer;
    c.signing_seed.map(|seed| {
        let mut input = b"secret-chat/v2/sender-key/possession".to_vec();
        input.extend_from_slice(&BINDING);
        input.extend_from_slice(&key_id(c));
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .sign(&input)
            .to_bytes()
    })
}

fn sender_key_json(c: &CaseInput) -> Value {
    json!({
        "id": hex(&key_id(c)),
        "mode": c.mode.to_byte(),
        "index": c.index,
        "chain_key": hex(&c.chain_key),
        "signing_seed": c.signing_seed.map(|s| hex(&s)),
        "signing_public": c.signing_seed.map(|s| hex(&signing_public(&s))),
        "binding": hex(&BINDING),
        "possession": possession(c).map(|p| hex(&p)),
        "predecessor_end": c.index,
    })
}

fn key_from_json(v: &Value) -> SharedSenderKey {
    let mode = SenderKeyMode::from_byte(v["mode"].as_u64().unwrap() as u8).unwrap();
    let sp = v["signing_public"]
        .as_str()
        .map(|s| <[u8; 32]>::try_from(unhex(s)).unwrap());
    let _ = sp;
    let seed = v["signing_seed"]
        .as_str()
        .map(|s| <[u8; 32]>::try_from(unhex(s)).unwrap());
    shared_sender_key(
        h(&v["id"]).try_into().unwrap(),
        mode,
        v["index"].as_u64().unwrap() as u32,
        &h(&v["chain_key"]).try_into().unwrap(),
        seed.as_ref(),
        &h(&v["binding"]).try_into().unwrap(),
        v["predecessor_end"].as_u64().unwrap() as u32,
    )
    .unwrap()
}

/// The documented HPKE info, built independently of the crate.
fn doc_info(room: &[u8], epoch: u32, sender_pub: &[u8], recipient_pub: &[u8]) -> Vec<u8> {
    let mut i = INFO_LABEL.to_vec();
    i.extend_from_slice(&[1, 1, room.len() as u8]);
    i.extend_from_slice(room);
    i.extend_from_slice(&epoch.to_be_bytes());
    i.extend_from_slice(sender_pub);
    i.extend_from_slice(recipient_pub);
    i
}

/// The documented header (= HPKE aad), built independently of the crate.
fn doc_header(room: &[u8], epoch: u32, sender_id: &[u8], recipient_id: &[u8]) -> Vec<u8> {
    let mut v = vec![1, 1, room.len() as u8];
    v.extend_from_slice(room);
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(sender_id);
    v.extend_from_slice(recipient_id);
    v
}

/// header || enc || u16 len || ct || Ed25519(label || all that), by `signer_seed`.
fn doc_assemble(signer_seed: &[u8], header: &[u8], enc: &[u8], ct: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let mut body = header.to_vec();
    body.extend_from_slice(enc);
    body.extend_from_slice(&(ct.len() as u16).to_be_bytes());
    body.extend_from_slice(ct);
    let key = ed25519_dalek::SigningKey::from_bytes(&signer_seed.try_into().unwrap());
    let sig = key.sign(&[SIG_LABEL, &body].concat());
    body.extend_from_slice(&sig.to_bytes());
    body
}

fn generate() -> Value {
    let ids: Vec<(String, IdentityKeyPair)> =
        NAMES.iter().map(|n| (n.to_string(), identity(n))).collect();
    let id_of = |n: &str| &ids.iter().find(|(m, _)| m == n).unwrap().1;
    let mut identities = serde_json::Map::new();
    for (n, kp) in &ids {
        identities.insert(
            n.clone(),
            json!({
                "rng_seed": hex(&seed_of(n)),
                "secret": hex(&rng_bytes(&seed_of(n), 64)),
                "public": hex(kp.public().as_bytes()),
                "id": hex(kp.id().as_bytes()),
            }),
        );
    }
    let alice = id_of("alice");
    let mut out_cases = vec![];
    let mut rejections = vec![];
    for c in cases() {
        let room = RoomId::new(c.room).unwrap();
        let key = case_key(&c);
        let recips: Vec<_> = c.recipients.iter().map(|n| id_of(n).public()).collect();
        let shares = seal_shares_with_rng(
            alice,
            &room,
            c.epoch,
            &key,
            &recips,
            &mut VectorRng::new(c.rng_seed),
        )
        .unwrap();
        let rng_out = rng_bytes(c.rng_seed, 32 * recips.len());
        let mut share_json = vec![];
        for ((share, name), ikm) in shares.iter().zip(c.recipients).zip(rng_out.chunks(32)) {
            let r = id_of(name);
            share_json.push(json!({
                "recipient": name,
                "rng_output": hex(ikm),
                "info": hex(&doc_info(c.room, c.epoch, alice.public().as_bytes(), r.public().as_bytes())),
                "header": hex(&doc_header(c.room, c.epoch, alice.id().as_bytes(), r.id().as_bytes())),
                "share": hex(share.as_bytes()),
            }));
        }
        out_cases.push(json!({
            "name": c.name,
            "sender": "alice",
            "room_id": hex(c.room),
            "epoch": c.epoch,
            "sender_key": sender_key_json(&c),
            "seal_rng_seed": hex(c.rng_seed),
            "shares": share_json,
            "opened": sender_key_json(&c),
        }));

        if c.mode == SenderKeyMode::Signed {
            let bob = id_of("bob");
            let good = shares[0].as_bytes().to_vec();
            let hl = 3 + c.room.len() + 4 + 32;
            let header = &good[..hl];
            let enc = &good[hl..hl + 32];
            let ct = &good[hl + 34..good.len() - 64];
            let alice_seed = &rng_bytes(&seed_of("alice"), 32);
            let mallory_seed = &rng_bytes(&seed_of("mallory"), 32);
            let mut flipped = good.clone();
            *flipped.last_mut().unwrap() ^= 0x80;
            let mut bad_ct = ct.to_vec();
            bad_ct[10] ^= 1;
            // The relay's re-wrap: its own chain key, to Bob, under Alice's
            // name, signed with its own identity.
            let info = doc_info(
                c.room,
                c.epoch,
                alice.public().as_bytes(),
                bob.public().as_bytes(),
            );
            let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(bob.public().dh_key().as_bytes())
                .unwrap();
            let mut pt = vec![2u8];
            pt.extend_from_slice(&[0x66; 16]);
            pt.extend_from_slice(&0u32.to_be_bytes());
            pt.extend_from_slice(&[0x66; 32]);
            pt.extend_from_slice(&0u32.to_be_bytes()); // predecessor_end
            let (renc, rct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
                &OpModeS::Base,
                &pk,
                &info,
                &pt,
                header,
                &mut VectorRng::new(b"secret-chat/kat/key-share/relay"),
            )
            .unwrap();
            let rewrapped = doc_assemble(mallory_seed, header, &renc.to_bytes(), &rct);
            let room_hex = hex(c.room);
            let mut rej =
                |name: &str, share: &[u8], me: &str, pinned: &str, room: &str, epoch: u32| {
                    let kp = id_of(me);
                    let err = open_share(
                        share,
                        kp,
                        id_of(pinned).public(),
                        &RoomId::new(&unhex(room)).unwrap(),
                        epoch,
                    )
                    .unwrap_err();
                    rejections.push(json!({
                        "name": name, "share": hex(share), "recipient": me, "pinned_sender": pinned,
                        "room_id": room, "epoch": epoch, "error": format!("{err:?}"),
                    }));
                };
            rej(
                "another-recipient",
                &good,
                "carol",
                "alice",
                &room_hex,
                c.epoch,
            );
            rej(
                "another-room",
                &good,
                "bob",
                "alice",
                &hex(b"other-room"),
                c.epoch,
            );
            rej(
                "replayed-into-next-epoch",
                &good,
                "bob",
                "alice",
                &room_hex,
                c.epoch + 1,
            );
            rej(
                "pinned-sender-is-someone-else",
                &good,
                "bob",
                "carol",
                &room_hex,
                c.epoch,
            );
            rej(
                "rewrapped-and-signed-by-relay",
                &rewrapped,
                "bob",
                "alice",
                &room_hex,
                c.epoch,
            );
            rej(
                "low-order-enc-signed-by-sender",
                &doc_assemble(alice_seed, header, &[0u8; 32], ct),
                "bob",
                "alice",
                &room_hex,
                c.epoch,
            );
            rej(
                "ciphertext-flipped-and-resigned",
                &doc_assemble(alice_seed, header, enc, &bad_ct),
                "bob",
                "alice",
                &room_hex,
                c.epoch,
            );
            rej(
                "signature-bit-flipped",
                &flipped,
                "bob",
                "alice",
                &room_hex,
                c.epoch,
            );
            rej(
                "truncated",
                &good[..good.len() - 1],
                "bob",
                "alice",
                &room_hex,
                c.epoch,
            );
        }
    }
    json!({
        "description": "secret-chat v1 key shares (docs/PROTOCOL.md section 3). Identities: \
            IdentityKeyPair::generate_with_rng(VectorRng(rng_seed)); secret = Ed25519 seed || X25519 secret. \
            Each share's HPKE ephemeral key is DeriveKeyPair(rng_output), the next 32 bytes of VectorRng(seal_rng_seed). \
            Hex strings; integers are JSON numbers.",
        "suite": "DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, base mode",
        "identities": identities,
        "cases": out_cases,
        "rejections": rejections,
    })
}

fn load() -> Value {
    let path = format!("{}/{VECTORS}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn vectors_are_reproduced_byte_for_byte() {
    let generated = generate();
    if std::env::var("REGENERATE_VECTORS").as_deref() == Ok("1") {
        let path = format!("{}/{VECTORS}", env!("CARGO_MANIFEST_DIR"));
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
    }
    assert_eq!(
        load(),
        generated,
        "run with REGENERATE_VECTORS=1 to refresh"
    );
}

/// Replays the file with the public API and, independently, with raw HPKE
/// and Ed25519 calls following docs/PROTOCOL.md.
#[test]
fn vectors_open_with_the_api_and_with_the_documented_layout() {
    let v = load();
    let ids = &v["identities"];
    let kp = |n: &Value| {
        let n = n.as_str().unwrap();
        let kp = IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&h(&ids[n]["rng_seed"])));
        assert_eq!(
            hex(kp.public().as_bytes()),
            ids[n]["public"].as_str().unwrap()
        );
        assert_eq!(hex(kp.id().as_bytes()), ids[n]["id"].as_str().unwrap());
        kp
    };
    let mut n = 0;
    for c in v["cases"].as_array().unwrap() {
        let sender = kp(&c["sender"]);
        let room = RoomId::new(&h(&c["room_id"])).unwrap();
        let epoch = c["epoch"].as_u64().unwrap() as u32;
        let expected = key_from_json(&c["opened"]);
        let sk = &c["sender_key"];
        let rng_out = rng_bytes(
            &h(&c["seal_rng_seed"]),
            32 * c["shares"].as_array().unwrap().len(),
        );
        for (s, ikm) in c["shares"]
            .as_array()
            .unwrap()
            .iter()
            .zip(rng_out.chunks(32))
        {
            let me = kp(&s["recipient"]);
            let bytes = h(&s["share"]);
            assert_eq!(h(&s["rng_output"]), ikm);
            // Public API.
            let share = KeyShare::from_bytes(&bytes).unwrap();
            assert_eq!(share.to_bytes(), bytes);
            let opened = share.open(&me, sender.public(), &room, epoch).unwrap();
            assert!(opened == expected);
            // Independent: layout, signature, enc = DeriveKeyPair(ikm), HPKE open.
            let header = h(&s["header"]);
            let hl = header.len();
            assert_eq!(&bytes[..hl], &header[..]);
            let info = doc_info(
                room.as_bytes(),
                epoch,
                sender.public().as_bytes(),
                me.public().as_bytes(),
            );
            assert_eq!(h(&s["info"]), info);
            let enc = &bytes[hl..hl + 32];
            let (_, pk_e) = Kem::derive_keypair(ikm);
            assert_eq!(&pk_e.to_bytes()[..], enc);
            let clen = u16::from_be_bytes([bytes[hl + 32], bytes[hl + 33]]) as usize;
            let ct = &bytes[hl + 34..hl + 34 + clen];
            let sig = &bytes[hl + 34 + clen..];
            assert_eq!(sig.len(), 64);
            let signer = ed25519_dalek::VerifyingKey::from_bytes(
                &sender.public().as_bytes()[1..33].try_into().unwrap(),
            )
            .unwrap();
            let signed = [SIG_LABEL, &bytes[..bytes.len() - 64]].concat();
            signer
                .verify_strict(&signed, &ed25519_dalek::Signature::from_slice(sig).unwrap())
                .unwrap();
            let secret = h(&ids[s["recipient"].as_str().unwrap()]["secret"]);
            let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret[32..]).unwrap();
            let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).unwrap();
            let pt = hpke::single_shot_open::<Aead, Kdf, Kem>(
                &OpModeR::Base,
                &sk_r,
                &enc,
                &info,
                ct,
                &header,
            )
            .unwrap();
            let mut doc_pt = vec![sk["mode"].as_u64().unwrap() as u8];
            doc_pt.extend_from_slice(&h(&sk["id"]));
            doc_pt.extend_from_slice(&(sk["index"].as_u64().unwrap() as u32).to_be_bytes());
            doc_pt.extend_from_slice(&h(&sk["chain_key"]));
            if let Some(p) = sk["signing_public"].as_str() {
                doc_pt.extend_from_slice(&unhex(p));
                doc_pt.extend_from_slice(&h(&sk["possession"]));
            }
            doc_pt
                .extend_from_slice(&(sk["predecessor_end"].as_u64().unwrap() as u32).to_be_bytes());
            assert_eq!(pt, doc_pt);
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn vector_rejections_fail_with_their_error() {
    let v = load();
    let ids = &v["identities"];
    let kp = |n: &Value| {
        IdentityKeyPair::generate_with_rng(&mut VectorRng::new(&h(
            &ids[n.as_str().unwrap()]["rng_seed"],
        )))
    };
    let rejections = v["rejections"].as_array().unwrap();
    assert_eq!(rejections.len(), 9);
    for r in rejections {
        let err = open_share(
            &h(&r["share"]),
            &kp(&r["recipient"]),
            kp(&r["pinned_sender"]).public(),
            &RoomId::new(&h(&r["room_id"])).unwrap(),
            r["epoch"].as_u64().unwrap() as u32,
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:?}"),
            r["error"].as_str().unwrap(),
            "{}",
            r["name"]
        );
    }
    let errors: Vec<&str> = rejections
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    for e in [
        "NotForMe",
        "BadSignature",
        "WeakKey",
        "Tampered",
        "Malformed(Truncated)",
    ] {
        assert!(errors.contains(&e), "{e} not covered");
    }
}

#[test]
fn fan_out_then_each_member_opens_only_its_own() {
    let alice = identity("alice");
    let members: Vec<_> = ["bob", "carol", "mallory"]
        .iter()
        .map(|n| identity(n))
        .collect();
    let room = RoomId::new(b"r").unwrap();
    let key = shared_sender_key(
        [9; 16],
        SenderKeyMode::Pairwise,
        1,
        &[8; 32],
        None,
        &[0; 32],
        0,
    )
    .unwrap();
    let publics: Vec<_> = members.iter().map(|m| m.public()).collect();
    let shares = secret_chat::seal_shares(&alice, &room, 1, &key, &publics).unwrap();
    for (i, share) in shares.iter().enumerate() {
        for (j, m) in members.iter().enumerate() {
            let r = open_share(share.as_bytes(), m, alice.public(), &room, 1);
            if i == j {
                assert!(r.unwrap() == key);
            } else {
                assert_eq!(r.unwrap_err(), Error::NotForMe);
            }
        }
    }
    // The OS-RNG form draws fresh ephemeral keys: two runs differ.
    let again = secret_chat::seal_shares(&alice, &room, 1, &key, &publics).unwrap();
    assert_ne!(again[0].as_bytes(), shares[0].as_bytes());
}
