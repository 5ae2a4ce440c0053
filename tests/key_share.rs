//! Key-share and share-key known-answer vectors (`tests/vectors/key_share.json`)
//! and public-API tests of protocol v2 key exchange.
//!
//! `REGENERATE_VECTORS=1 cargo test --all-features --test key_share` rewrites
//! the vector file from its fixed seeds; without it the harness checks that
//! the crate reproduces every byte of the file, and replays the file with an
//! independent implementation of the documented layout (raw `hpke` and
//! `ed25519-dalek` calls, no crate internals).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use secret_chat::keyshare::Recipient;
use secret_chat::storage::StorageKey;
use secret_chat::testing::{VectorRng, shared_sender_key};
use secret_chat::{
    DeviceBundle, Error, IdentityKeyPair, KeyShare, MemberId, Room, RoomId, RotationPolicy,
    SenderKeyMode, ShareKeyPolicy, SharedSenderKey, SignedShareKey, Suite, open_share,
    seal_shares_with_rng,
};
use serde_json::{Value, json};

type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;
type KX = hpke::kem::X25519HkdfSha256;
type KW = hpke::kem::XWing;

const VECTORS: &str = "tests/vectors/key_share.json";
const INFO_LABEL: &[u8] = b"secret-chat/v2/key-share/info";
const SIG_LABEL: &[u8] = b"secret-chat/v2/key-share/signature";
const SHARE_KEY_LABEL: &[u8] = b"secret-chat/v2/share-key/signature";
/// Creation time of every vector identity's first share keys.
const T0: u64 = 1_700_000_000;
const INSTANCE: [u8; 32] = [0x1a; 32];

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
    format!("secret-chat/kat/v2/key-share/{name}").into_bytes()
}

fn identity(name: &str) -> IdentityKeyPair {
    IdentityKeyPair::generate_at(T0, &mut VectorRng::new(&seed_of(name)))
}

fn suite_name(s: Suite) -> &'static str {
    match s {
        Suite::X25519 => "x25519",
        _ => "xwing",
    }
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
        },
    ]
}

fn signing_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// The binding the vector sender keys are made under (any 32 bytes: key
/// shares carry the proof of possession opaque; section 4 covers it).
const BINDING: [u8; 32] = [0x5b; 32];
/// The predecessor end the vector sender keys carry.
const PREDECESSOR_END: u32 = 17;

/// A signed key's id is derived from its signing key; a pairwise key's is
/// the case's.
fn key_id_of(c: &CaseInput) -> [u8; 16] {
    match c.signing_seed {
        Some(s) => secret_chat::testing::signed_sender_key_id(&signing_public(&s)).unwrap(),
        None => c.key_id,
    }
}

fn key_of(c: &CaseInput) -> SharedSenderKey {
    shared_sender_key(
        key_id_of(c),
        c.mode,
        c.index,
        &c.chain_key,
        c.signing_seed.as_ref(),
        &BINDING,
        PREDECESSOR_END,
    )
    .unwrap()
}

fn sender_key_json(c: &CaseInput) -> Value {
    json!({
        "id": hex(&key_id_of(c)),
        "mode": c.mode.to_byte(),
        "index": c.index,
        "chain_key": hex(&c.chain_key),
        "signing_seed": c.signing_seed.map(|s| hex(&s)),
        "signing_public": c.signing_seed.map(|s| hex(&signing_public(&s))),
        "binding": hex(&BINDING),
        "predecessor_end": PREDECESSOR_END,
        "share_plaintext_len": if c.signing_seed.is_some() { 153 } else { 57 },
    })
}

fn key_from_json(v: &Value) -> SharedSenderKey {
    let mode = SenderKeyMode::from_byte(v["mode"].as_u64().unwrap() as u8).unwrap();
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

fn recipient_of(b: &DeviceBundle, suite: Suite) -> Recipient<'_> {
    Recipient::new(b.identity(), b.share_key(suite).unwrap())
}

/// The documented header, built independently of the crate.
fn doc_header(
    suite: u8,
    room: &[u8],
    epoch: u32,
    sender: &[u8],
    instance: &[u8],
    recipient: &[u8],
    serial: u32,
) -> Vec<u8> {
    let mut v = vec![2, suite, room.len() as u8];
    v.extend_from_slice(room);
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(sender);
    v.extend_from_slice(instance);
    v.extend_from_slice(recipient);
    v.extend_from_slice(&serial.to_be_bytes());
    v
}

/// aad || enc || u16 len || ct || Ed25519(label || all that), by `signer_seed`.
fn doc_assemble(signer_seed: &[u8], aad: &[u8], enc: &[u8], ct: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let mut body = aad.to_vec();
    body.extend_from_slice(enc);
    body.extend_from_slice(&(ct.len() as u16).to_be_bytes());
    body.extend_from_slice(ct);
    let key = ed25519_dalek::SigningKey::from_bytes(&signer_seed.try_into().unwrap());
    let sig = key.sign(&[SIG_LABEL, &body].concat());
    body.extend_from_slice(&sig.to_bytes());
    body
}

/// Splits a share at the documented offsets: (aad, enc, ct, signature).
fn doc_split(bytes: &[u8], header_len: usize, enc_len: usize) -> (&[u8], &[u8], &[u8], &[u8]) {
    let ssk_len = u16::from_be_bytes([bytes[header_len], bytes[header_len + 1]]) as usize;
    let aad_len = header_len + 2 + ssk_len;
    let enc = &bytes[aad_len..aad_len + enc_len];
    let c = aad_len + enc_len;
    let clen = u16::from_be_bytes([bytes[c], bytes[c + 1]]) as usize;
    let ct = &bytes[c + 2..c + 2 + clen];
    (&bytes[..aad_len], enc, ct, &bytes[c + 2 + clen..])
}

fn share_key_json(k: &SignedShareKey) -> Value {
    json!({
        "suite": k.suite().to_byte(),
        "serial": k.serial(),
        "created_at": k.created_at(),
        "public_key": hex(k.public_key()),
        "encoded": hex(k.as_bytes()),
    })
}

fn generate() -> Value {
    let ids: Vec<(String, IdentityKeyPair)> =
        NAMES.iter().map(|n| (n.to_string(), identity(n))).collect();
    let id_of = |n: &str| &ids.iter().find(|(m, _)| m == n).unwrap().1;
    let mut identities = serde_json::Map::new();
    for (n, kp) in &ids {
        let draw = rng_bytes(&seed_of(n), 96);
        let bundle = kp.bundle();
        identities.insert(
            n.clone(),
            json!({
                "rng_seed": hex(&seed_of(n)),
                "ed25519_seed": hex(&draw[..32]),
                "x25519_ikm": hex(&draw[32..64]),
                "xwing_ikm": hex(&draw[64..96]),
                "public": hex(kp.public().as_bytes()),
                "id": hex(kp.id().as_bytes()),
                "share_keys": bundle.share_keys().iter().map(share_key_json).collect::<Vec<_>>(),
                "bundle": hex(&bundle.to_bytes()),
            }),
        );
    }
    let alice = id_of("alice");
    let mut out_cases = vec![];
    let mut rejections = vec![];
    for suite in Suite::ALL {
        for c in cases() {
            let room = RoomId::new(c.room).unwrap();
            let key = key_of(&c);
            let bundles: Vec<DeviceBundle> =
                c.recipients.iter().map(|n| id_of(n).bundle()).collect();
            let recips: Vec<Recipient<'_>> =
                bundles.iter().map(|b| recipient_of(b, suite)).collect();
            let rng_seed = format!(
                "secret-chat/kat/v2/key-share/seal/{}/{}",
                suite_name(suite),
                c.name
            );
            let shares = seal_shares_with_rng(
                alice,
                &room,
                suite,
                c.epoch,
                &INSTANCE,
                &key,
                &recips,
                &mut VectorRng::new(rng_seed.as_bytes()),
            )
            .unwrap();
            let per = suite.encapsulation_randomness();
            let rng_out = rng_bytes(rng_seed.as_bytes(), per * recips.len());
            let mut share_json = vec![];
            for ((share, name), ikm) in shares.iter().zip(c.recipients).zip(rng_out.chunks(per)) {
                let r = id_of(name);
                let header = doc_header(
                    suite.to_byte(),
                    c.room,
                    c.epoch,
                    alice.public().as_bytes(),
                    &INSTANCE,
                    r.public().as_bytes(),
                    1,
                );
                share_json.push(json!({
                    "recipient": name,
                    "recipient_serial": 1,
                    "rng_output": hex(ikm),
                    "header": hex(&header),
                    "info": hex(&[INFO_LABEL, &header].concat()),
                    "share": hex(share.as_bytes()),
                }));
            }
            let case_name = format!("{}/{}", suite_name(suite), c.name);
            out_cases.push(json!({
                "name": case_name,
                "suite": suite.to_byte(),
                "sender": "alice",
                "sender_instance": hex(&INSTANCE),
                "room_id": hex(c.room),
                "epoch": c.epoch,
                "sender_key": sender_key_json(&c),
                "seal_rng_seed": hex(rng_seed.as_bytes()),
                "shares": share_json,
            }));

            if c.mode != SenderKeyMode::Signed {
                continue;
            }
            let good = shares[0].as_bytes().to_vec();
            let hl = 3 + c.room.len() + 4 + 32 + 32 + 32 + 4;
            let (aad, enc, ct, _) = doc_split(&good, hl, suite.enc_len());
            let alice_seed = rng_bytes(&seed_of("alice"), 32);
            let mallory_seed = rng_bytes(&seed_of("mallory"), 32);
            let mut flipped = good.clone();
            *flipped.last_mut().unwrap() ^= 0x80;
            let mut bad_ct = ct.to_vec();
            bad_ct[10] ^= 1;
            let mut unknown_serial = aad.to_vec();
            unknown_serial[hl - 4..hl].copy_from_slice(&9u32.to_be_bytes());
            let room_hex = hex(c.room);
            let mut rej = |name: &str,
                           share: &[u8],
                           me: &str,
                           pinned: &str,
                           room: &str,
                           epoch: u32,
                           instance: [u8; 32]| {
                let err = open_share(
                    share,
                    id_of(me),
                    id_of(pinned).public(),
                    &RoomId::new(&unhex(room)).unwrap(),
                    epoch,
                    &instance,
                )
                .unwrap_err();
                rejections.push(json!({
                    "name": format!("{}/{name}", suite_name(suite)),
                    "share": hex(share), "recipient": me, "pinned_sender": pinned,
                    "room_id": room, "epoch": epoch, "sender_instance": hex(&instance),
                    "error": format!("{err:?}"),
                }));
            };
            let e = c.epoch;
            rej(
                "another-recipient",
                &good,
                "carol",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
            rej(
                "another-room",
                &good,
                "bob",
                "alice",
                &hex(b"other-room"),
                e,
                INSTANCE,
            );
            rej(
                "replayed-into-next-epoch",
                &good,
                "bob",
                "alice",
                &room_hex,
                e + 1,
                INSTANCE,
            );
            rej(
                "another-membership-instance",
                &good,
                "bob",
                "alice",
                &room_hex,
                e,
                [0x1b; 32],
            );
            rej(
                "pinned-sender-is-someone-else",
                &good,
                "bob",
                "carol",
                &room_hex,
                e,
                INSTANCE,
            );
            rej(
                "re-signed-by-relay",
                &doc_assemble(&mallory_seed, aad, enc, ct),
                "bob",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
            rej(
                "ciphertext-flipped-and-resigned",
                &doc_assemble(&alice_seed, aad, enc, &bad_ct),
                "bob",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
            rej(
                "unknown-share-key-serial",
                &doc_assemble(&alice_seed, &unknown_serial, enc, ct),
                "bob",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
            if suite == Suite::X25519 {
                rej(
                    "low-order-enc-signed-by-sender",
                    &doc_assemble(&alice_seed, aad, &[0u8; 32], ct),
                    "bob",
                    "alice",
                    &room_hex,
                    e,
                    INSTANCE,
                );
            }
            rej(
                "signature-bit-flipped",
                &flipped,
                "bob",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
            rej(
                "truncated",
                &good[..good.len() - 1],
                "bob",
                "alice",
                &room_hex,
                e,
                INSTANCE,
            );
        }
    }
    json!({
        "description": "secret-chat v2 key shares and share keys (docs/PROTOCOL.md sections 2 and 3). \
            Identities: IdentityKeyPair::generate_at(created_at, VectorRng(rng_seed)), which draws the \
            Ed25519 seed (32 bytes), then the X25519 share key's DeriveKeyPair input (32), then the \
            X-Wing share key's DeriveKeyPair input (32); share keys have serial 1. Each share draws, \
            in recipient order, the next rng_output bytes of VectorRng(seal_rng_seed): 32 for X25519 \
            (the ephemeral key is DeriveKeyPair of them), 64 for X-Wing (the encapsulation seed). \
            Seeds are hex of their ASCII text; byte strings are hex; integers are JSON numbers.",
        "created_at": T0,
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

/// Independent: the share keys and bundles of every identity, from the
/// documented derivation (hpke's DeriveKeyPair, raw Ed25519).
#[test]
fn vectors_share_keys_follow_the_documented_layout() {
    use ed25519_dalek::Signer;
    let v = load();
    let t0 = v["created_at"].as_u64().unwrap();
    for (_, id) in v["identities"].as_object().unwrap() {
        let signing =
            ed25519_dalek::SigningKey::from_bytes(&h(&id["ed25519_seed"]).try_into().unwrap());
        let public = signing.verifying_key().to_bytes();
        assert_eq!(hex(&public), id["public"].as_str().unwrap());
        let (_, x) = KX::derive_keypair(&h(&id["x25519_ikm"]));
        let (_, w) = KW::derive_keypair(&h(&id["xwing_ikm"]));
        let mut bundle = vec![2u8];
        bundle.extend_from_slice(&public);
        bundle.push(2);
        for (k, (suite, pk)) in id["share_keys"]
            .as_array()
            .unwrap()
            .iter()
            .zip([(1u8, x.to_bytes().to_vec()), (2u8, w.to_bytes().to_vec())])
        {
            let mut enc = vec![2u8, suite];
            enc.extend_from_slice(&1u32.to_be_bytes());
            enc.extend_from_slice(&t0.to_be_bytes());
            enc.extend_from_slice(&pk);
            let sig = signing.sign(&[SHARE_KEY_LABEL, &public[..], &enc].concat());
            enc.extend_from_slice(&sig.to_bytes());
            assert_eq!(hex(&enc), k["encoded"].as_str().unwrap());
            bundle.extend_from_slice(&(enc.len() as u16).to_be_bytes());
            bundle.extend_from_slice(&enc);
        }
        assert_eq!(hex(&bundle), id["bundle"].as_str().unwrap());
        assert!(DeviceBundle::from_bytes(&bundle).is_ok());
    }
}

/// Replays the file with the public API and, independently, with raw HPKE
/// and Ed25519 calls following docs/PROTOCOL.md.
#[test]
fn vectors_open_with_the_api_and_with_the_documented_layout() {
    let v = load();
    let ids = &v["identities"];
    let kp = |n: &Value| identity(n.as_str().unwrap());
    let mut n = 0;
    for c in v["cases"].as_array().unwrap() {
        let sender = kp(&c["sender"]);
        let suite = Suite::from_byte(c["suite"].as_u64().unwrap() as u8).unwrap();
        let room = RoomId::new(&h(&c["room_id"])).unwrap();
        let epoch = c["epoch"].as_u64().unwrap() as u32;
        let instance: [u8; 32] = h(&c["sender_instance"]).try_into().unwrap();
        let expected = key_from_json(&c["sender_key"]);
        let per = suite.encapsulation_randomness();
        let shares = c["shares"].as_array().unwrap();
        let rng_out = rng_bytes(&h(&c["seal_rng_seed"]), per * shares.len());
        for (s, ikm) in shares.iter().zip(rng_out.chunks(per)) {
            let name = s["recipient"].as_str().unwrap();
            let me = kp(&s["recipient"]);
            let bytes = h(&s["share"]);
            assert_eq!(h(&s["rng_output"]), ikm);
            // Public API.
            let share = KeyShare::from_bytes(&bytes).unwrap();
            assert_eq!(share.to_bytes(), bytes);
            let opened = share
                .open(&me, sender.public(), &room, epoch, &instance)
                .unwrap();
            assert!(opened == expected);
            // Independent: layout, signature, HPKE open with the share key
            // derived from the documented IKM.
            let header = h(&s["header"]);
            let hl = header.len();
            assert_eq!(&bytes[..hl], &header[..]);
            let info = [INFO_LABEL, &header].concat();
            assert_eq!(h(&s["info"]), info);
            let (aad, enc, ct, sig) = doc_split(&bytes, hl, suite.enc_len());
            // The sender's own share key rides along, byte for byte.
            let ssk = &aad[hl + 2..];
            assert_eq!(
                hex(ssk),
                ids["alice"]["share_keys"][usize::from(suite.to_byte() - 1)]["encoded"]
                    .as_str()
                    .unwrap()
            );
            let signer = ed25519_dalek::VerifyingKey::from_bytes(
                &sender.public().as_bytes()[..].try_into().unwrap(),
            )
            .unwrap();
            let signed = [SIG_LABEL, &bytes[..bytes.len() - 64]].concat();
            signer
                .verify_strict(&signed, &ed25519_dalek::Signature::from_slice(sig).unwrap())
                .unwrap();
            let pt = match suite {
                Suite::X25519 => {
                    let (_, pk_e) = KX::derive_keypair(ikm);
                    assert_eq!(&pk_e.to_bytes()[..], enc);
                    let (sk, _) = KX::derive_keypair(&h(&ids[name]["x25519_ikm"]));
                    let enc = <KX as hpke::Kem>::EncappedKey::from_bytes(enc).unwrap();
                    hpke::single_shot_open::<Aead, Kdf, KX>(
                        &OpModeR::Base,
                        &sk,
                        &enc,
                        &info,
                        ct,
                        aad,
                    )
                    .unwrap()
                }
                _ => {
                    let (sk, _) = KW::derive_keypair(&h(&ids[name]["xwing_ikm"]));
                    let enc = <KW as hpke::Kem>::EncappedKey::from_bytes(enc).unwrap();
                    hpke::single_shot_open::<Aead, Kdf, KW>(
                        &OpModeR::Base,
                        &sk,
                        &enc,
                        &info,
                        ct,
                        aad,
                    )
                    .unwrap()
                }
            };
            let sk = &c["sender_key"];
            assert_eq!(pt[0] as u64, sk["mode"].as_u64().unwrap());
            assert_eq!(&pt[1..17], &h(&sk["id"])[..]);
            assert_eq!(
                &pt[17..21],
                &(sk["index"].as_u64().unwrap() as u32).to_be_bytes()
            );
            assert_eq!(&pt[21..53], &h(&sk["chain_key"])[..]);
            assert_eq!(pt.len() as u64, sk["share_plaintext_len"].as_u64().unwrap());
            if let Some(p) = sk["signing_public"].as_str() {
                assert_eq!(&pt[53..85], &unhex(p)[..]);
            }
            let end = (sk["predecessor_end"].as_u64().unwrap() as u32).to_be_bytes();
            assert_eq!(&pt[pt.len() - 4..], &end);
            n += 1;
        }
    }
    assert_eq!(n, 6);
}

#[test]
fn vector_rejections_fail_with_their_error() {
    let v = load();
    let kp = |n: &Value| identity(n.as_str().unwrap());
    let rejections = v["rejections"].as_array().unwrap();
    assert_eq!(rejections.len(), 21);
    for r in rejections {
        let err = open_share(
            &h(&r["share"]),
            &kp(&r["recipient"]),
            kp(&r["pinned_sender"]).public(),
            &RoomId::new(&h(&r["room_id"])).unwrap(),
            r["epoch"].as_u64().unwrap() as u32,
            &h(&r["sender_instance"]).try_into().unwrap(),
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
        "UnknownShareKey",
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
    let bundles: Vec<_> = members.iter().map(|m| m.bundle()).collect();
    let room = RoomId::new(b"r").unwrap();
    let key = shared_sender_key(
        [9; 16],
        SenderKeyMode::Pairwise,
        1,
        &[8; 32],
        None,
        &BINDING,
        0,
    )
    .unwrap();
    for suite in Suite::ALL {
        let recips: Vec<_> = bundles.iter().map(|b| recipient_of(b, suite)).collect();
        let shares =
            secret_chat::seal_shares(&alice, &room, suite, 1, &INSTANCE, &key, &recips).unwrap();
        for (i, share) in shares.iter().enumerate() {
            for (j, m) in members.iter().enumerate() {
                let r = open_share(share.as_bytes(), m, alice.public(), &room, 1, &INSTANCE);
                if i == j {
                    assert!(r.unwrap() == key);
                } else {
                    assert_eq!(r.unwrap_err(), Error::NotForMe);
                }
            }
        }
        // The OS-RNG form draws fresh encapsulations: two runs differ.
        let again =
            secret_chat::seal_shares(&alice, &room, suite, 1, &INSTANCE, &key, &recips).unwrap();
        assert_ne!(again[0].as_bytes(), shares[0].as_bytes());
    }
}

/// Tries every share-key secret a (stolen) identity holds against a share,
/// bypassing the serial lookup: the thief's best effort with raw HPKE.
fn thief_can_open(stolen: &IdentityKeyPair, storage: &StorageKey, share: &[u8]) -> bool {
    // The thief has the exported identity blob and its storage key.
    let blob = stolen.export(storage).unwrap();
    let thief = IdentityKeyPair::import(&blob, storage).unwrap();
    let parsed = KeyShare::from_bytes(share).unwrap();
    let serial = parsed.recipient_serial();
    // Through the API: the share names a serial the stolen state either
    // erased or never had.
    let room = parsed.room().clone();
    let sender = secret_chat::PublicIdentity::from_bytes(parsed.sender()).unwrap();
    let api = parsed.open(
        &thief,
        &sender,
        &room,
        parsed.epoch(),
        parsed.sender_instance(),
    );
    if api.is_ok() {
        return true;
    }
    assert!(
        matches!(api, Err(Error::ShareKeyErased | Error::UnknownShareKey)),
        "{api:?} for serial {serial}"
    );
    false
}

fn two_devices() -> (IdentityKeyPair, IdentityKeyPair, RoomId, SharedSenderKey) {
    let alice = IdentityKeyPair::generate_at(T0, &mut VectorRng::new(b"fs alice"));
    let bob = IdentityKeyPair::generate_at(T0, &mut VectorRng::new(b"fs bob"));
    let key = shared_sender_key(
        [4; 16],
        SenderKeyMode::Pairwise,
        0,
        &[5; 32],
        None,
        &BINDING,
        0,
    )
    .unwrap();
    (alice, bob, RoomId::new(b"fs-room").unwrap(), key)
}

fn seal_to(
    alice: &IdentityKeyPair,
    bundle: &DeviceBundle,
    room: &RoomId,
    key: &SharedSenderKey,
) -> Vec<u8> {
    seal_shares_with_rng(
        alice,
        room,
        Suite::XWing,
        0,
        &INSTANCE,
        key,
        &[recipient_of(bundle, Suite::XWing)],
        &mut VectorRng::new(b"seal"),
    )
    .unwrap()[0]
        .to_bytes()
}

/// Must-show (1): the relay records a share sealed to Bob's share key; Bob
/// rotates, the grace ends and the old secret is erased; then Bob's whole
/// state (identity blob and storage key) is stolen. The thief cannot open
/// the recorded share.
#[test]
fn thief_after_grace_cannot_open_shares_sealed_to_an_erased_share_key() {
    let policy = ShareKeyPolicy::default();
    let (alice, mut bob, room, key) = two_devices();
    let recorded = seal_to(&alice, &bob.bundle(), &room, &key);
    // Before the theft Bob could open it.
    assert!(open_share(&recorded, &bob, alice.public(), &room, 0, &INSTANCE).unwrap() == key);
    let t1 = T0 + policy.rotate_after_secs;
    bob.maintain_share_keys_at(t1, &policy, &mut VectorRng::new(b"rotate"))
        .unwrap();
    // Still within the grace: in-flight shares open.
    assert!(open_share(&recorded, &bob, alice.public(), &room, 0, &INSTANCE).is_ok());
    assert!(
        bob.maintain_share_keys_at(
            t1 + policy.keep_superseded_secs + 1,
            &ShareKeyPolicy {
                rotate_after_secs: u64::MAX,
                ..policy
            },
            &mut VectorRng::new(b"x")
        )
        .is_none()
    );
    let storage = StorageKey::generate_with_rng(&mut VectorRng::new(b"storage"));
    assert!(!thief_can_open(&bob, &storage, &recorded));
    assert_eq!(
        open_share(&recorded, &bob, alice.public(), &room, 0, &INSTANCE).unwrap_err(),
        Error::ShareKeyErased
    );
}

/// Must-show (2): the thief steals Bob's state; Bob rotates and publishes
/// the new bundle; Alice's next share is sealed to the new key: the stolen
/// state cannot open it.
#[test]
fn after_rotation_shares_to_the_new_key_are_out_of_the_thiefs_reach() {
    let (alice, mut bob, room, key) = two_devices();
    let storage = StorageKey::generate_with_rng(&mut VectorRng::new(b"storage"));
    let stolen = IdentityKeyPair::import(&bob.export(&storage).unwrap(), &storage).unwrap();
    let fresh = bob
        .rotate_share_keys_at(T0 + 10, &mut VectorRng::new(b"rotate"))
        .unwrap();
    let next = seal_to(&alice, &fresh, &room, &key);
    assert!(open_share(&next, &bob, alice.public(), &room, 0, &INSTANCE).unwrap() == key);
    assert!(!thief_can_open(&stolen, &storage, &next));
    assert_eq!(
        open_share(&next, &stolen, alice.public(), &room, 0, &INSTANCE).unwrap_err(),
        Error::UnknownShareKey
    );
}

fn pair_room(
    alice: &IdentityKeyPair,
    bob: &IdentityKeyPair,
    now: u64,
) -> (Room, Vec<secret_chat::OutgoingShare>, MemberId, MemberId) {
    let (a, b) = (
        MemberId::new(b"alice").unwrap(),
        MemberId::new(b"bob").unwrap(),
    );
    let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    let (room, shares) = Room::create_with_rng(
        alice,
        RoomId::new(b"sk-room").unwrap(),
        a.clone(),
        &members,
        &secret_chat::RoomOptions {
            suite: Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        now,
        &mut VectorRng::new(b"room"),
    )
    .unwrap();
    (room, shares, a, b)
}

/// Must-show (3): a share key signed by another identity, an expired one, a
/// replayed older serial and a share naming an unknown serial are each
/// refused with their own error and change nothing.
#[test]
fn share_key_rejections_have_their_own_errors_and_change_nothing() {
    let (alice, mut bob, _, _) = two_devices();
    let mallory = IdentityKeyPair::generate_at(T0, &mut VectorRng::new(b"mallory"));
    let (mut room, _, _, b) = pair_room(&alice, &bob, T0);
    let before = room.member_share_key(&b).unwrap().clone();

    // Signed by another identity: the relay's bundle under Bob's name.
    let bob_bytes = bob.bundle().to_bytes();
    let mallory_bundle = mallory.bundle();
    let forged_key = mallory_bundle.share_key(Suite::XWing).unwrap().as_bytes();
    assert_eq!(
        SignedShareKey::from_bytes(forged_key, bob.public()).unwrap_err(),
        Error::BadSignature
    );
    let mut spliced = bob_bytes[..33].to_vec(); // Bob's identity, Mallory's keys
    spliced.extend_from_slice(&mallory_bundle.to_bytes()[33..]);
    assert_eq!(
        DeviceBundle::from_bytes(&spliced).unwrap_err(),
        Error::BadSignature
    );
    assert_eq!(
        room.update_member_bundle(&alice, &b, &mallory_bundle)
            .unwrap_err(),
        Error::IdentityChanged
    );
    assert_eq!(room.member_share_key(&b).unwrap(), &before);

    // A replayed older serial.
    let old = bob.bundle();
    let new = bob
        .rotate_share_keys_at(T0 + 5, &mut VectorRng::new(b"r"))
        .unwrap();
    room.update_member_bundle(&alice, &b, &new).unwrap();
    let current = room.member_share_key(&b).unwrap().clone();
    assert_eq!(
        room.update_member_bundle(&alice, &b, &old).unwrap_err(),
        Error::StaleShareKey
    );
    assert_eq!(room.member_share_key(&b).unwrap(), &current);

    // Expired: a room whose only known share key of Bob is past the maximum
    // age does not seal to it: the rotation goes ahead without Bob, who is
    // owed my key until his current bundle arrives.
    let policy = ShareKeyPolicy::default();
    let late = T0 + policy.max_age_secs + 1;
    let mut old_bob = IdentityKeyPair::generate_at(T0, &mut VectorRng::new(b"fs bob"));
    let (mut stale_room, _, _, b) = pair_room(&alice, &old_bob, T0);
    let shares = stale_room
        .rotate_with_rng(&alice, late, &mut VectorRng::new(b"x"))
        .unwrap();
    assert!(
        shares.is_empty(),
        "nothing sealed to a share key past its age"
    );
    assert_eq!(stale_room.owed_shares(), vec![b.clone()]);
    let fresh = old_bob
        .rotate_share_keys_at(late, &mut VectorRng::new(b"y"))
        .unwrap();
    let owed = stale_room
        .update_member_bundle_with_rng(&alice, &b, &fresh, late, &mut VectorRng::new(b"z"))
        .unwrap();
    assert_eq!(owed.len(), 1);
    assert!(stale_room.owed_shares().is_empty());

    // A share naming a serial the recipient never made: see the vector
    // rejection `*/unknown-share-key-serial`, and the unit test in keyshare.
    let (at_alice, shares, a, _) = pair_room(&alice, &bob, T0);
    let mut bob_room = pair_room_for_bob(&at_alice, &alice, &bob);
    let mut bytes = shares[0].bytes.clone();
    let hl = 3 + b"sk-room".len() + 4 + 32 + 32 + 32 + 4;
    bytes[hl - 1] = 9;
    assert_eq!(
        bob_room.receive_share_at(&bob, &bytes, T0).unwrap_err(),
        Error::BadSignature,
        "the serial is signed: changing it breaks the signature"
    );
    assert!(!bob_room.has_key_of(&a));
}

fn pair_room_for_bob(at_alice: &Room, alice: &IdentityKeyPair, bob: &IdentityKeyPair) -> Room {
    Room::join_with_rng(
        bob,
        MemberId::new(b"bob").unwrap(),
        &RoomId::new(b"sk-room").unwrap(),
        &at_alice.welcome(alice).unwrap(),
        RotationPolicy::default(),
        T0,
        &mut VectorRng::new(b"bob room"),
    )
    .unwrap()
    .0
}

/// Members learn each other's newer share keys in-band: Bob rotates, and
/// the next key share he sends carries the new share key, which Alice's
/// room adopts (verified) without asking the relay.
#[test]
fn newer_share_keys_travel_in_band_with_key_shares() {
    let (alice, mut bob, _, _) = two_devices();
    let (mut at_alice, _, _, b) = pair_room(&alice, &bob, T0);
    let mut at_bob = pair_room_for_bob(&at_alice, &alice, &bob);
    assert_eq!(at_alice.member_share_key(&b).unwrap().serial(), 1);
    bob.rotate_share_keys_at(T0 + 1, &mut VectorRng::new(b"r"))
        .unwrap();
    let shares = at_bob
        .rotate_with_rng(&bob, T0 + 2, &mut VectorRng::new(b"s"))
        .unwrap();
    at_alice
        .receive_share_at(&alice, &shares[0].bytes, T0 + 2)
        .unwrap();
    assert_eq!(at_alice.member_share_key(&b).unwrap().serial(), 2);
}
