//! Record envelope known-answer vectors (`tests/vectors/record.json`,
//! docs/PROTOCOL.md section 7.1): generated from fixed seeds, checked byte
//! for byte, replayed from the documented layout with the raw primitives
//! alone, and every negative case refused with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use common::{hex, unhex};
use hmac::{Hmac, Mac};
use rand_core::Rng;
use secret_chat::labels::{
    RECORD, RECORD_AEAD_KEY, RECORD_DIGEST_KEY, RECORD_KIND_IDENTITY, RECORD_KIND_INBOUND_KEYS,
    RECORD_KIND_META, RECORD_KIND_ROOM_CORE, RECORD_VERSION,
};
use secret_chat::record::{RecordKey, RecordSealer};
use secret_chat::store::{Changes, MemoryStore, SealedStore, Store};
use secret_chat::testing::VectorRng;
use secret_chat::{Error, StorageKey};
use serde_json::{Value, json};
use sha2::Sha256;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/record.json");

fn storage_key() -> StorageKey {
    StorageKey::generate_with_rng(&mut VectorRng::new(b"record storage key"))
}

/// The derived keys, computed from the document (HKDF-SHA256, no salt).
fn derived(label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, &storage_key().to_bytes()[..])
        .expand(label, &mut out)
        .unwrap();
    out
}

/// `u8 kind || u8 len(room) || room || u16 len(key) || key`.
fn name_bytes(kind: u8, room: &[u8], key: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, room.len() as u8];
    v.extend_from_slice(room);
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.extend_from_slice(key);
    v
}

fn doc_aad(kind: u8, room: &[u8], key: &[u8], generation: u64) -> Vec<u8> {
    let mut v = RECORD.to_vec();
    v.push(RECORD_VERSION);
    v.extend(name_bytes(kind, room, key));
    v.extend_from_slice(&generation.to_be_bytes());
    v
}

fn doc_digest_element(kind: u8, room: &[u8], key: &[u8], generation: u64) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&derived(RECORD_DIGEST_KEY)).unwrap();
    mac.update(&name_bytes(kind, room, key));
    mac.update(&generation.to_be_bytes());
    mac.finalize().into_bytes().into()
}

struct Case {
    what: &'static str,
    kind: u8,
    room: &'static [u8],
    key: &'static [u8],
    generation: u64,
    nonce_seed: &'static str,
    plaintext: &'static [u8],
}

const CASES: &[Case] = &[
    Case {
        what: "device identity (device-wide: empty room and key)",
        kind: RECORD_KIND_IDENTITY,
        room: b"",
        key: b"",
        generation: 1,
        nonce_seed: "record nonce 1",
        plaintext: b"identity secrets (opaque to the envelope)",
    },
    Case {
        what: "room core",
        kind: RECORD_KIND_ROOM_CORE,
        room: b"room-42",
        key: b"",
        generation: 7,
        nonce_seed: "record nonce 2",
        plaintext: b"room core",
    },
    Case {
        what: "inbound keys of member bob@example.org",
        kind: RECORD_KIND_INBOUND_KEYS,
        room: b"room-42",
        key: b"bob@example.org",
        generation: 7,
        nonce_seed: "record nonce 3",
        plaintext: b"",
    },
];

fn name(c: &Case) -> RecordKey {
    RecordKey::new(c.kind, c.room, c.key).unwrap()
}

fn seal(c: &Case) -> Vec<u8> {
    RecordSealer::new(&storage_key())
        .seal_with_rng(
            &name(c),
            c.generation,
            c.plaintext,
            &mut VectorRng::new(c.nonce_seed.as_bytes()),
        )
        .unwrap()
}

fn err_name(e: &Error) -> String {
    format!("{e:?}")
}

fn generate() -> Value {
    let sealer = RecordSealer::new(&storage_key());
    let cases: Vec<Value> = CASES
        .iter()
        .map(|c| {
            let env = seal(c);
            json!({
                "what": c.what,
                "kind": c.kind,
                "room": hex(c.room),
                "key": hex(c.key),
                "generation": c.generation,
                "nonce_rng_seed": c.nonce_seed,
                "aad": hex(&doc_aad(c.kind, c.room, c.key, c.generation)),
                "plaintext": hex(c.plaintext),
                "envelope": hex(&env),
                "digest_element": hex(&doc_digest_element(c.kind, c.room, c.key, c.generation)),
            })
        })
        .collect();

    // The meta record of a store holding the three cases' records at their
    // generations: count 3, digest = XOR of the three elements.
    let mut digest = [0u8; 32];
    for c in CASES {
        for (d, e) in digest
            .iter_mut()
            .zip(doc_digest_element(c.kind, c.room, c.key, c.generation))
        {
            *d ^= e;
        }
    }
    let mut meta_plain = 3u64.to_be_bytes().to_vec();
    meta_plain.extend_from_slice(&digest);
    let meta = RecordKey::new(RECORD_KIND_META, b"", b"").unwrap();
    let meta_env = sealer
        .seal_with_rng(
            &meta,
            7,
            &meta_plain,
            &mut VectorRng::new(b"record nonce meta"),
        )
        .unwrap();

    // Negative cases, each from the room-core envelope (case 1).
    let good = seal(&CASES[1]);
    let core = name(&CASES[1]);
    let mut neg = Vec::new();
    let mut push = |what: &str, open_as: &RecordKey, env: Vec<u8>, key: &StorageKey| {
        let err = RecordSealer::new(key).open(open_as, &env).unwrap_err();
        neg.push(json!({
            "what": what,
            "open_as": {"kind": open_as.kind(), "room": hex(open_as.room()), "key": hex(open_as.key())},
            "envelope": hex(&env),
            "error": err_name(&err),
        }));
    };
    let k = storage_key();
    let mut v1 = good.clone();
    v1[0] = 1;
    push("version 1 (a v1 export blob)", &core, v1, &k);
    let mut unknown = good.clone();
    unknown[1] = 0x63;
    push("unknown kind", &core, unknown, &k);
    let log = RecordKey::new(
        secret_chat::labels::RECORD_KIND_MEMBERSHIP_LOG,
        b"room-42",
        b"",
    )
    .unwrap();
    push(
        "opened as another kind (membership log)",
        &log,
        good.clone(),
        &k,
    );
    push("truncated header", &core, good[..21].to_vec(), &k);
    push("no tag", &core, good[..22 + 15].to_vec(), &k);
    let other_room = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-43", b"").unwrap();
    push("moved to another room", &other_room, good.clone(), &k);
    let other_key = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"x").unwrap();
    push("moved to another record key", &other_key, good.clone(), &k);
    let mut older = good.clone();
    older[9] ^= 1;
    push(
        "generation in the header changed (7 -> 6)",
        &core,
        older,
        &k,
    );
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    push("tag bit flipped", &core, flipped, &k);
    let mut ct = good.clone();
    ct[22] ^= 1;
    push("ciphertext bit flipped", &core, ct, &k);
    let mut long = good.clone();
    long.push(0);
    push("trailing byte", &core, long, &k);
    push(
        "wrong storage key (VectorRng(\"other key\"))",
        &core,
        good.clone(),
        &StorageKey::generate_with_rng(&mut VectorRng::new(b"other key")),
    );

    json!({
        "description": "Record envelopes (docs/PROTOCOL.md section 7.1). RNG = testing::VectorRng; \
            the storage key is the first 32 bytes of VectorRng(storage_key_rng_seed), each nonce \
            the first 12 bytes of VectorRng(nonce_rng_seed). Room and key are hex.",
        "storage_key_rng_seed": "record storage key",
        "storage_key": hex(&storage_key().to_bytes()[..]),
        "aead_key": hex(&derived(RECORD_AEAD_KEY)),
        "digest_key": hex(&derived(RECORD_DIGEST_KEY)),
        "cases": cases,
        "meta": {
            "what": "meta record at generation 7 of a store holding exactly the records above",
            "nonce_rng_seed": "record nonce meta",
            "plaintext": hex(&meta_plain),
            "envelope": hex(&meta_env),
        },
        "negative": neg,
    })
}

/// The file equals what the code produces (rewritten instead with
/// `REGENERATE_VECTORS=1`).
#[test]
fn record_vectors_are_current() {
    let fresh = generate();
    if std::env::var_os("REGENERATE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(stored, fresh, "tests/vectors/record.json is stale");
}

/// Every stored envelope opens with nothing but the documented layout and
/// the raw primitives; the API opens it too and reproduces it.
#[test]
fn record_vectors_from_the_document_alone() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let aead_key: [u8; 32] = unhex(v["aead_key"].as_str().unwrap()).try_into().unwrap();
    assert_eq!(aead_key, derived(RECORD_AEAD_KEY));
    let cipher = Aes256Gcm::new(&aead_key.into());
    let sealer = RecordSealer::new(&storage_key());
    let mut digest = [0u8; 32];
    for c in v["cases"].as_array().unwrap() {
        let kind = c["kind"].as_u64().unwrap() as u8;
        let room = unhex(c["room"].as_str().unwrap());
        let key = unhex(c["key"].as_str().unwrap());
        let generation = c["generation"].as_u64().unwrap();
        let env = unhex(c["envelope"].as_str().unwrap());
        let mut nonce = [0u8; 12];
        VectorRng::new(c["nonce_rng_seed"].as_str().unwrap().as_bytes()).fill_bytes(&mut nonce);
        // Header: version, kind, generation, nonce.
        assert_eq!(env[0], 2);
        assert_eq!(env[1], kind);
        assert_eq!(env[2..10], generation.to_be_bytes());
        assert_eq!(env[10..22], nonce);
        let aad = doc_aad(kind, &room, &key, generation);
        assert_eq!(hex(&aad), c["aad"].as_str().unwrap());
        let (ct, tag) = env[22..].split_at(env.len() - 22 - 16);
        let mut buf = ct.to_vec();
        let tag: [u8; 16] = tag.try_into().unwrap();
        cipher
            .decrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into(), &tag.into())
            .unwrap();
        assert_eq!(hex(&buf), c["plaintext"].as_str().unwrap());
        let name = RecordKey::new(kind, &room, &key).unwrap();
        let opened = sealer.open(&name, &env).unwrap();
        assert_eq!(
            (opened.generation, opened.plaintext.to_vec()),
            (generation, buf)
        );
        let element = doc_digest_element(kind, &room, &key, generation);
        assert_eq!(hex(&element), c["digest_element"].as_str().unwrap());
        assert_eq!(sealer.digest_element(&name, generation), element);
        for (d, e) in digest.iter_mut().zip(element) {
            *d ^= e;
        }
    }
    let meta = &v["meta"];
    let meta_plain = unhex(meta["plaintext"].as_str().unwrap());
    assert_eq!(meta_plain[..8], 3u64.to_be_bytes());
    assert_eq!(meta_plain[8..], digest);
    // The three records and the meta record form a store that opens.
    let mut backend = MemoryStore::new();
    for c in v["cases"].as_array().unwrap() {
        let name = RecordKey::new(
            c["kind"].as_u64().unwrap() as u8,
            &unhex(c["room"].as_str().unwrap()),
            &unhex(c["key"].as_str().unwrap()),
        )
        .unwrap();
        backend
            .put(name, unhex(c["envelope"].as_str().unwrap()))
            .unwrap();
    }
    let meta_name = RecordKey::new(RECORD_KIND_META, b"", b"").unwrap();
    backend
        .put(meta_name, unhex(meta["envelope"].as_str().unwrap()))
        .unwrap();
    let store = SealedStore::open(backend, &storage_key(), Some(7)).unwrap();
    assert_eq!(store.generation(), 7);
    let core = RecordKey::new(RECORD_KIND_ROOM_CORE, b"room-42", b"").unwrap();
    assert_eq!(&store.get(&core).unwrap().unwrap()[..], b"room core");
    // And a commit through the API keeps it consistent.
    let mut store = store;
    let mut c = Changes::new();
    c.delete(core).unwrap();
    assert_eq!(store.commit(&c).unwrap(), 8);
}

#[test]
fn record_vectors_negative_cases_fail_with_their_error() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let negative = v["negative"].as_array().unwrap();
    assert!(negative.len() >= 10);
    for n in negative {
        let o = &n["open_as"];
        let name = RecordKey::new(
            o["kind"].as_u64().unwrap() as u8,
            &unhex(o["room"].as_str().unwrap()),
            &unhex(o["key"].as_str().unwrap()),
        )
        .unwrap();
        let env = unhex(n["envelope"].as_str().unwrap());
        let key = if n["what"].as_str().unwrap().starts_with("wrong storage key") {
            StorageKey::generate_with_rng(&mut VectorRng::new(b"other key"))
        } else {
            storage_key()
        };
        let err = RecordSealer::new(&key).open(&name, &env).unwrap_err();
        assert_eq!(
            err_name(&err),
            n["error"].as_str().unwrap(),
            "{}",
            n["what"]
        );
    }
}

#[test]
fn names_are_bounded() {
    use secret_chat::DecodeError;
    use secret_chat::limits::{MAX_RECORD_KEY_LEN, MAX_ROOM_ID_LEN};
    let room = vec![b'r'; MAX_ROOM_ID_LEN];
    let key = vec![b'k'; MAX_RECORD_KEY_LEN];
    let longest = RecordKey::new(RECORD_KIND_INBOUND_KEYS, &room, &key).unwrap();
    let sealer = RecordSealer::new(&storage_key());
    let env = sealer.seal(&longest, u64::MAX, b"x").unwrap();
    assert_eq!(sealer.open(&longest, &env).unwrap().generation, u64::MAX);
    let too_long = Error::Malformed(DecodeError::LengthLimit);
    let long_room = [&room[..], b"r"].concat();
    let long_key = [&key[..], b"k"].concat();
    assert_eq!(
        RecordKey::new(RECORD_KIND_INBOUND_KEYS, &long_room, b"").unwrap_err(),
        too_long
    );
    assert_eq!(
        RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"", &long_key).unwrap_err(),
        too_long
    );
    for kind in [0u8, 9, 0xff] {
        assert_eq!(
            RecordKey::new(kind, b"", b"").unwrap_err(),
            Error::Malformed(DecodeError::InvalidValue)
        );
    }
}

proptest::proptest! {
    /// Seal then open gives the plaintext back; open then seal under the
    /// same nonce gives the same bytes; under any other name it fails.
    #[test]
    fn seal_open_round_trip(
        kind in 2u8..=6,
        room in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=64),
        key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=40),
        generation in proptest::prelude::any::<u64>(),
        plaintext in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        seed in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..8),
    ) {
        let sealer = RecordSealer::new(&storage_key());
        let name = RecordKey::new(kind, &room, &key).unwrap();
        let env = sealer
            .seal_with_rng(&name, generation, &plaintext, &mut VectorRng::new(&seed))
            .unwrap();
        let opened = sealer.open(&name, &env).unwrap();
        proptest::prop_assert_eq!(opened.generation, generation);
        proptest::prop_assert_eq!(&opened.plaintext[..], &plaintext[..]);
        let again = sealer
            .seal_with_rng(&name, opened.generation, &opened.plaintext, &mut VectorRng::new(&seed))
            .unwrap();
        proptest::prop_assert_eq!(&again, &env);
        let mut other_key = key.clone();
        other_key.push(0);
        let other = RecordKey::new(kind, &room, &other_key).unwrap();
        proptest::prop_assert_eq!(sealer.open(&other, &env).unwrap_err(), Error::StorageDecrypt);
    }
}
