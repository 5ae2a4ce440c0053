//! The errors an app developer meets for programming mistakes are precise
//! (issue 16): each asserted by variant, with a message that says what to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::storage::StorageKey;
use secret_chat::testing::VectorRng;
use secret_chat::{Error, IdentityKeyPair, MemberId, Room, RoomId, RotationPolicy, Suite};

fn id(seed: &[u8]) -> IdentityKeyPair {
    IdentityKeyPair::generate_at(1_000, &mut VectorRng::new(seed))
}

fn m(name: &str) -> MemberId {
    MemberId::new(name.as_bytes()).unwrap()
}

fn create(
    me: &IdentityKeyPair,
    who: &str,
    list: &[(MemberId, secret_chat::DeviceBundle)],
) -> Result<Room, Error> {
    Room::create_with_rng(
        me,
        RoomId::new(b"errors").unwrap(),
        m(who),
        list,
        &secret_chat::RoomOptions {
            suite: Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        1_000,
        &mut VectorRng::new(b"rng"),
    )
    .map(|(r, _)| r)
}

#[test]
fn programming_mistakes_have_their_own_errors() {
    let (alice, bob, carol) = (id(b"a"), id(b"b"), id(b"c"));
    // A one-member room.
    let err = create(&alice, "alice", &[(m("alice"), alice.bundle())]).unwrap_err();
    assert_eq!(err, Error::TooFewMembers);
    assert!(err.to_string().contains("at least two members"));
    // The same identity twice.
    let twice = [(m("alice"), alice.bundle()), (m("alice-2"), alice.bundle())];
    assert_eq!(
        create(&alice, "alice", &twice).unwrap_err(),
        Error::DuplicateIdentity
    );
    // The same member id twice.
    let dup = [(m("alice"), alice.bundle()), (m("alice"), bob.bundle())];
    assert_eq!(
        create(&alice, "alice", &dup).unwrap_err(),
        Error::DuplicateMember
    );
    // Creating as a member with another device's identity.
    let pair = [(m("alice"), alice.bundle()), (m("bob"), bob.bundle())];
    assert_eq!(
        create(&carol, "alice", &pair).unwrap_err(),
        Error::WrongIdentity
    );
    // encrypt with the wrong identity is a bug in the caller, not an attack.
    let mut room = create(&alice, "alice", &pair).unwrap();
    let err = room
        .encrypt_with_rng(&bob, b"hi", 1_000, &mut VectorRng::new(b"x"))
        .unwrap_err();
    assert_eq!(err, Error::WrongIdentity);
    assert!(!err.is_retryable());
    // Removing from a 1:1 room would leave one member.
    assert_eq!(
        room.remove_member_with_rng(&alice, &m("bob"), 1_000, &mut VectorRng::new(b"x"))
            .unwrap_err(),
        Error::TooFewMembers
    );
    // An identity blob imported as a room, and the reverse.
    let key = StorageKey::from_bytes([7; 32]);
    let id_blob = alice.export(&key).unwrap();
    let room_blob = room.export(&key).unwrap();
    assert_eq!(
        Room::import(&id_blob, &key).unwrap_err(),
        Error::WrongStateKind
    );
    assert_eq!(
        IdentityKeyPair::import(&room_blob, &key).unwrap_err(),
        Error::WrongStateKind
    );
}

#[test]
fn only_a_missing_key_share_is_retryable() {
    assert!(Error::UnknownSenderKey.is_retryable());
    for e in [
        Error::Replay,
        Error::Tampered,
        Error::BadSignature,
        Error::NotAMember,
        Error::ShareKeyErased,
        Error::IdentityChanged,
        Error::TooOld,
    ] {
        assert!(!e.is_retryable(), "{e:?}");
    }
}
