//! `Debug` of every type that holds a secret is pinned here: it shows ids,
//! modes and counters, never key bytes or plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::room::RotationPolicy;
use secret_chat::testing::VectorRng;
use secret_chat::{
    IdentityKeyPair, InboundSenderKey, MemberId, Message, OutboundSenderKey, Room, RoomId,
    SenderKeyMode,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn debug_output_is_pinned_and_secret_free() {
    let mut rng = VectorRng::new(b"debug");
    let alice = IdentityKeyPair::generate_with_rng(&mut rng);
    let bob = IdentityKeyPair::generate_with_rng(&mut rng);
    let id = format!("{:?}", alice.id());
    assert_eq!(id.len(), "IdentityId(01234567..)".len());
    assert_eq!(
        format!("{alice:?}"),
        format!("IdentityKeyPair {{ id: {id}, .. }}")
    );
    assert_eq!(
        format!("{:?}", alice.public()),
        format!("PublicIdentity {{ id: {id}, .. }}")
    );

    let room_id = RoomId::new(b"room").unwrap();
    let mut out = OutboundSenderKey::new_with_rng(
        room_id.clone(),
        2,
        SenderKeyMode::Signed,
        [9; 32],
        0,
        &mut rng,
    );
    let key = format!("{:?}", out.id());
    assert_eq!(
        format!("{out:?}"),
        format!("OutboundSenderKey {{ id: {key}, mode: Signed, epoch: 2, index: 0, .. }}")
    );
    let share = out.share();
    assert_eq!(
        format!("{share:?}"),
        format!("SharedSenderKey {{ id: {key}, mode: Signed, index: 0, predecessor_end: 0, .. }}")
    );
    let mut inb = InboundSenderKey::new(room_id, 2, share, [9; 32]).unwrap();
    let wire = out.encrypt(b"the plaintext").unwrap();
    let msg = Message::from_bytes(&wire).unwrap();
    assert_eq!(
        format!("{msg:?}"),
        format!(
            "Message {{ mode: Signed, epoch: 2, sender_key: {key}, index: 0, ciphertext_len: 48, .. }}"
        )
    );
    let got = inb.decrypt(&msg).unwrap();
    assert_eq!(
        format!("{got:?}"),
        format!("Decrypted {{ sender_key: {key}, index: 0, len: 13, .. }}")
    );
    assert_eq!(
        format!("{inb:?}"),
        format!(
            "InboundSenderKey {{ id: {key}, mode: Signed, epoch: 2, next_index: 1, skipped: 0, .. }}"
        )
    );

    let (a, b) = (
        MemberId::new(b"alice").unwrap(),
        MemberId::new(b"bob").unwrap(),
    );
    let members = [(a.clone(), alice.bundle()), (b, bob.bundle())];
    let (room, shares) = Room::create_with_rng(
        &alice,
        RoomId::new(b"r").unwrap(),
        a,
        &members,
        &secret_chat::RoomOptions {
            suite: secret_chat::Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        0,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        format!("{room:?}"),
        "Room { id: RoomId(r), me: MemberId(alice), members: 2, epoch: 0, .. }"
    );
    assert_eq!(
        format!("{:?}", shares[0]),
        format!(
            "OutgoingShare {{ to: MemberId(bob), len: {} }}",
            shares[0].bytes.len()
        )
    );

    // No key bytes at all (not even public ones) and no plaintext; the secret
    // halves are checked byte-for-byte by the unit tests that can reach them.
    let everything = format!("{alice:?}{out:?}{inb:?}{room:?}{got:?}");
    let key_bytes = hex(&alice.public().to_bytes()[1..9]);
    assert!(!everything.contains(&key_bytes));
    assert!(!everything.contains("the plaintext"));
}

/// Records and stores: names, lengths and counters only.
#[test]
fn debug_output_of_records_and_stores_is_pinned() {
    use secret_chat::labels::RECORD_KIND_INBOUND_KEYS;
    use secret_chat::record::{RecordKey, RecordSealer};
    use secret_chat::store::{Changes, MemoryStore, SealedStore};
    let key = secret_chat::StorageKey::from_bytes([1; 32]);
    let sealer = RecordSealer::new(&key);
    assert_eq!(format!("{sealer:?}"), "RecordSealer(..)");
    let name = RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room", b"bob\n").unwrap();
    assert_eq!(format!("{name:?}"), r#"RecordKey(6, "room", "bob\x0a")"#);
    let env = sealer.seal(&name, 3, b"SECRET").unwrap();
    let opened = sealer.open(&name, &env).unwrap();
    assert_eq!(
        format!("{opened:?}"),
        "OpenedRecord { generation: 3, len: 6 }"
    );
    let mut changes = Changes::new();
    changes.put(name, b"SECRET".to_vec()).unwrap();
    assert_eq!(
        format!("{changes:?}"),
        r#"Changes {RecordKey(6, "room", "bob\x0a"): put 6 bytes}"#
    );
    let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    store.commit(&changes).unwrap();
    let shown = format!("{store:?}");
    assert_eq!(
        shown,
        "SealedStore { generation: 1, records: 1, rolled_back_from: None, poisoned: false, .. }"
    );
    assert!(!shown.contains("SECRET"));
}
