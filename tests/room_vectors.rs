//! Known-answer vectors of the room-level formats (`tests/vectors/room.json`,
//! `docs/PROTOCOL.md` sections 5.0.1 and 5.0.3): a welcome and an update,
//! with rejection cases, reproduced byte for byte and re-parsed from the
//! documented layout. `REGENERATE_VECTORS=1` rewrites the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::testing::VectorRng;
use secret_chat::{
    DeviceBundle, IdentityKeyPair, MemberId, Room, RoomId, RoomOptions, RotationPolicy,
};
use serde_json::{Value, json};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/room.json");
const T0: u64 = 1_700_000_000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn device(name: &str) -> IdentityKeyPair {
    IdentityKeyPair::generate_at(
        T0,
        &mut VectorRng::new(format!("room-kat/{name}").as_bytes()),
    )
}

fn m(name: &str) -> MemberId {
    MemberId::new(name.as_bytes()).unwrap()
}

fn join(who: &str, welcome: &[u8], room: &[u8]) -> Result<(), secret_chat::Error> {
    Room::join_with_rng(
        &device(who),
        m(who),
        &RoomId::new(room).unwrap(),
        welcome,
        RotationPolicy::default(),
        T0,
        &mut VectorRng::new(b"room-kat/join"),
    )
    .map(|_| ())
}

/// The entries of a welcome: (member id, offset of its bundle, bundle).
fn entries(w: &[u8]) -> Vec<(String, usize, Vec<u8>)> {
    let log_len = u32::from_be_bytes(w[2..6].try_into().unwrap()) as usize;
    let mut at = 6 + log_len;
    let count = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
    at += 2;
    let mut out = vec![];
    for _ in 0..count {
        let n = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
        let name = String::from_utf8(w[at + 2..at + 2 + n].to_vec()).unwrap();
        at += 2 + n;
        let b = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
        out.push((name, at + 2, w[at + 2..at + 2 + b].to_vec()));
        at += 2 + b;
    }
    assert_eq!(at, w.len());
    out
}

fn generate() -> Value {
    let (alice, bob, carol) = (device("alice"), device("bob"), device("carol"));
    let members = [(m("alice"), alice.bundle()), (m("bob"), bob.bundle())];
    let (mut room, _) = Room::create_with_rng(
        &alice,
        RoomId::new(b"kat-room").unwrap(),
        m("alice"),
        &members,
        &RoomOptions::default(),
        T0,
        &mut VectorRng::new(b"room-kat/create"),
    )
    .unwrap();
    let welcome = room.welcome(&alice).unwrap();
    let change = room
        .add_member_with_rng(
            &alice,
            m("carol"),
            carol.bundle(),
            T0,
            &mut VectorRng::new(b"room-kat/add"),
        )
        .unwrap();
    // A welcome whose bundle for bob is carol's (mixed up or forged).
    let mut mixed = welcome.clone();
    let bob_entry = entries(&welcome)
        .into_iter()
        .find(|e| e.0 == "bob")
        .unwrap();
    let carol_entry = entries(change.welcome.as_ref().unwrap())
        .into_iter()
        .find(|e| e.0 == "carol")
        .unwrap();
    assert_eq!(bob_entry.2.len(), carol_entry.2.len());
    mixed[bob_entry.1..bob_entry.1 + carol_entry.2.len()].copy_from_slice(&carol_entry.2);
    let bob_bundle = bob.bundle().to_bytes();
    let carol_bundle = carol.bundle().to_bytes();
    let mut rejections = vec![];
    let mut rej = |name: &str, bytes: &[u8], who: &str, room: &[u8]| {
        let err = join(who, bytes, room).unwrap_err();
        rejections.push(json!({
            "name": name, "welcome": hex(bytes), "joiner": who, "room_id": hex(room),
            "error": format!("{err:?}"),
        }));
    };
    rej(
        "truncated",
        &welcome[..welcome.len() - 1],
        "bob",
        b"kat-room",
    );
    rej("another-room", &welcome, "bob", b"other-room");
    rej("not-a-member", &welcome, "carol", b"kat-room");
    rej("bundle-of-another-identity", &mixed, "bob", b"kat-room");
    let mut wrong_type = welcome.clone();
    wrong_type[1] = 0x11;
    rej("update-type-byte", &wrong_type, "bob", b"kat-room");
    // Alice's room as records (section 7.2), after the addition: every
    // record, in name order.
    let records: Vec<Value> = room
        .changes()
        .unwrap()
        .ops()
        .filter_map(|(name, pt)| {
            // (Deletes of records the room does not have are left out.)
            pt.map(|pt| {
                json!({
                    "kind": name.kind(),
                    "room": hex(name.room()),
                    "key": hex(name.key()),
                    "plaintext": hex(pt),
                })
            })
        })
        .collect();
    json!({
        "records": records,
        "description": "Room welcome and update (docs/PROTOCOL.md 5.0.1, 5.0.3). Devices: \
            IdentityKeyPair::generate_at(created_at, VectorRng(\"room-kat/<name>\")). The room \
            \"kat-room\" is created by alice with alice and bob (RoomOptions::default(), \
            VectorRng(\"room-kat/create\")); then alice adds carol (VectorRng(\"room-kat/add\")). \
            `records`: alice's room after that, as the records of docs/PROTOCOL.md 7.2 \
            (kind, room, key, plaintext). Hex byte strings; the seeds are given as text here.",
        "created_at": T0,
        "welcome": hex(&welcome),
        "add_carol_update": hex(&change.update),
        "add_carol_welcome": hex(change.welcome.as_ref().unwrap()),
        "bundles": { "alice": hex(&alice.bundle().to_bytes()), "bob": hex(&bob_bundle), "carol": hex(&carol_bundle) },
        "rejections": rejections,
    })
}

#[test]
fn room_vectors_are_current() {
    let fresh = generate();
    if std::env::var_os("REGENERATE_VECTORS").is_some() {
        std::fs::write(
            VECTORS,
            serde_json::to_string_pretty(&fresh).unwrap() + "\n",
        )
        .unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    assert_eq!(stored, fresh, "tests/vectors/room.json is stale");
}

/// The documented layouts, parsed independently of the crate.
#[test]
fn room_vectors_follow_the_documented_layout() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    for key in ["welcome", "add_carol_welcome"] {
        let w = unhex(v[key].as_str().unwrap());
        assert_eq!(&w[..2], &[0x02, 0x10]);
        let log_len = u32::from_be_bytes(w[2..6].try_into().unwrap()) as usize;
        let log = &w[6..6 + log_len];
        assert_eq!(&log[..2], &[0x02, 0x03], "a membership log (section 5.1)");
        let mut at = 6 + log_len;
        let count = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
        at += 2;
        let mut names = vec![];
        for _ in 0..count {
            let n = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
            names.push(String::from_utf8(w[at + 2..at + 2 + n].to_vec()).unwrap());
            at += 2 + n;
            let b = u16::from_be_bytes([w[at], w[at + 1]]) as usize;
            let bundle = &w[at + 2..at + 2 + b];
            assert!(DeviceBundle::from_bytes(bundle).is_ok());
            at += 2 + b;
        }
        assert_eq!(at, w.len(), "no trailing bytes");
        assert_eq!(names[0], "alice", "the sender's own bundle first");
    }
    let u = unhex(v["add_carol_update"].as_str().unwrap());
    assert_eq!(&u[..2], &[0x02, 0x11]);
    let op_len = u32::from_be_bytes(u[2..6].try_into().unwrap()) as usize;
    assert_eq!(&u[6..8], &[0x02, 0x02], "a membership operation");
    let at = 6 + op_len;
    let b = u16::from_be_bytes([u[at], u[at + 1]]) as usize;
    assert_eq!(
        hex(&u[at + 2..at + 2 + b]),
        v["bundles"]["carol"].as_str().unwrap()
    );
    assert_eq!(at + 2 + b, u.len());
    // Carol joins from the add's welcome; bob from the first.
    assert!(
        join(
            "carol",
            &unhex(v["add_carol_welcome"].as_str().unwrap()),
            b"kat-room"
        )
        .is_ok()
    );
    assert!(join("bob", &unhex(v["welcome"].as_str().unwrap()), b"kat-room").is_ok());
    for r in v["rejections"].as_array().unwrap() {
        let err = join(
            r["joiner"].as_str().unwrap(),
            &unhex(r["welcome"].as_str().unwrap()),
            &unhex(r["room_id"].as_str().unwrap()),
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:?}"),
            r["error"].as_str().unwrap(),
            "{}",
            r["name"]
        );
    }
}

/// The records of the vector parse with the documented layout, and a store
/// holding exactly them loads the room back.
#[test]
fn room_record_vectors_follow_the_documented_layout_and_load() {
    use secret_chat::record::RecordKey;
    use secret_chat::store::{Changes, MemoryStore, SealedStore};
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let mut changes = Changes::new();
    let mut kinds = vec![];
    for r in v["records"].as_array().unwrap() {
        let kind = r["kind"].as_u64().unwrap() as u8;
        let pt = unhex(r["plaintext"].as_str().unwrap());
        assert_eq!(pt[0], 0x02, "every room record starts with the version");
        match kind {
            3 => {
                // me id16 | identity 32 | u32 | u64 | u64
                let n = u16::from_be_bytes([pt[1], pt[2]]) as usize;
                assert_eq!(&pt[3..3 + n], b"alice");
                assert_eq!(pt.len(), 3 + n + 32 + 4 + 8 + 8);
            }
            4 => {
                let n = u32::from_be_bytes(pt[1..5].try_into().unwrap()) as usize;
                assert_eq!(&pt[5..7], &[0x02, 0x03], "a membership log");
                assert_eq!(&pt[5 + n..], &[0, 0, 0, 0], "no held operations");
            }
            5 => {
                assert_eq!(
                    u64::from_be_bytes(pt[1..9].try_into().unwrap()),
                    T0,
                    "created_at"
                );
            }
            7 => {
                let bundles = &v["bundles"];
                let who = String::from_utf8(unhex(r["key"].as_str().unwrap())).unwrap();
                let bundle = unhex(bundles[&who].as_str().unwrap());
                // The record is the member's X-Wing signed share key, which
                // its bundle carries.
                assert!(
                    bundle.windows(pt.len() - 1).any(|w| w == &pt[1..]),
                    "{who}'s share key is the one of its bundle"
                );
            }
            _ => panic!("unexpected record kind {kind}"),
        }
        kinds.push(kind);
        let name = RecordKey::new(
            kind,
            &unhex(r["room"].as_str().unwrap()),
            &unhex(r["key"].as_str().unwrap()),
        )
        .unwrap();
        changes.put(name, pt).unwrap();
    }
    assert_eq!(
        kinds,
        [3, 4, 5, 7, 7],
        "core, log, outbound, share keys of bob and carol"
    );
    let mut store = SealedStore::open(
        MemoryStore::new(),
        &secret_chat::StorageKey::from_bytes([1; 32]),
        None,
    )
    .unwrap();
    store.commit(&changes).unwrap();
    let room = Room::load(&store, &RoomId::new(b"kat-room").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(room.members().count(), 3);
    assert_eq!(room.epoch(), 1, "two became three: a signed key");
}
