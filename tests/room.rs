//! Room scenarios: 1:1 and groups, membership changes, rotation, pinning,
//! and the attacks of the threat model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use secret_chat::room::{OutgoingShare, RotationPolicy};
use secret_chat::testing::VectorRng;
use secret_chat::{DeviceBundle, Error, IdentityKeyPair, MemberId, Room, RoomId, SenderKeyMode};

struct Device {
    name: MemberId,
    identity: IdentityKeyPair,
    rng: VectorRng,
}

impl Device {
    fn new(name: &str) -> Self {
        let mut rng = VectorRng::new(name.as_bytes());
        Self {
            name: MemberId::new(name.as_bytes()).unwrap(),
            identity: IdentityKeyPair::generate_with_rng(&mut rng),
            rng,
        }
    }

    fn entry(&self) -> (MemberId, DeviceBundle) {
        (self.name.clone(), self.identity.bundle())
    }

    fn create(
        &mut self,
        room: &[u8],
        members: &[(MemberId, DeviceBundle)],
    ) -> (Room, Vec<OutgoingShare>) {
        self.create_with(room, members, RotationPolicy::default())
    }

    fn create_with(
        &mut self,
        room: &[u8],
        members: &[(MemberId, DeviceBundle)],
        policy: RotationPolicy,
    ) -> (Room, Vec<OutgoingShare>) {
        Room::create_with_rng(
            &self.identity,
            RoomId::new(room).unwrap(),
            self.name.clone(),
            members,
            secret_chat::Suite::XWing,
            policy,
            1_000,
            &mut self.rng,
        )
        .unwrap()
    }
}

/// Delivers each share addressed to a member of `rooms`.
fn deliver(from: &MemberId, shares: &[OutgoingShare], rooms: &mut [(&Device, &mut Room)]) {
    for s in shares {
        for (dev, room) in rooms.iter_mut() {
            if dev.name == s.to {
                room.receive_share_at(&dev.identity, from, &s.bytes, 1_000)
                    .unwrap();
            }
        }
    }
}

#[test]
fn one_to_one_both_ways_is_pairwise() {
    let (mut alice, mut bob) = (Device::new("alice"), Device::new("bob"));
    let members = [alice.entry(), bob.entry()];
    let (mut ra, sa) = alice.create(b"dm", &members);
    let (mut rb, sb) = bob.create(b"dm", &members);
    assert_eq!(ra.mode(), SenderKeyMode::Pairwise);
    deliver(&alice.name, &sa, &mut [(&bob, &mut rb)]);
    deliver(&bob.name, &sb, &mut [(&alice, &mut ra)]);
    for i in 0..5u8 {
        let m = ra
            .encrypt_with_rng(&alice.identity, &[i; 10], 1_000, &mut alice.rng)
            .unwrap();
        assert!(m.shares.is_empty());
        let got = rb.decrypt_at(&m.message, 1_000).unwrap();
        assert_eq!(
            (got.sender.clone(), got.plaintext()),
            (alice.name.clone(), &[i; 10][..])
        );
        let r = rb
            .encrypt_with_rng(&bob.identity, b"ack", 1_000, &mut bob.rng)
            .unwrap();
        assert_eq!(
            ra.decrypt_at(&r.message, 1_000).unwrap().plaintext(),
            b"ack"
        );
    }
}

fn group(names: &[&str], room: &[u8]) -> (Vec<Device>, Vec<Room>) {
    let mut devices: Vec<Device> = names.iter().map(|n| Device::new(n)).collect();
    let members: Vec<_> = devices.iter().map(Device::entry).collect();
    let mut rooms = Vec::new();
    let mut all_shares = Vec::new();
    for d in devices.iter_mut() {
        let (r, s) = d.create(room, &members);
        rooms.push(r);
        all_shares.push((d.name.clone(), s));
    }
    for (from, shares) in &all_shares {
        for s in shares {
            let i = devices.iter().position(|d| d.name == s.to).unwrap();
            rooms[i]
                .receive_share_at(&devices[i].identity, from, &s.bytes, 1_000)
                .unwrap();
        }
    }
    (devices, rooms)
}

fn send(devices: &mut [Device], rooms: &mut [Room], from: usize, text: &[u8]) -> Vec<u8> {
    let d = &mut devices[from];
    let out = rooms[from]
        .encrypt_with_rng(&d.identity, text, 1_000, &mut d.rng)
        .unwrap();
    assert!(out.shares.is_empty());
    out.message
}

#[test]
fn three_member_group_is_signed_and_everyone_reads_everyone() {
    let (mut devices, mut rooms) = group(&["alice", "bob", "carol"], b"group");
    assert_eq!(rooms[0].mode(), SenderKeyMode::Signed);
    for from in 0..3 {
        let msg = send(&mut devices, &mut rooms, from, b"hello all");
        for to in 0..3 {
            if to == from {
                assert_eq!(
                    rooms[to].decrypt_at(&msg, 1_000).unwrap_err(),
                    Error::Reflected
                );
            } else {
                let got = rooms[to].decrypt_at(&msg, 1_000).unwrap();
                assert_eq!(got.sender, devices[from].name);
                assert_eq!(got.plaintext(), b"hello all");
            }
        }
    }
}

#[test]
fn added_member_cannot_read_earlier_messages() {
    let (mut devices, mut rooms) = group(&["alice", "bob", "carol"], b"grow");
    let before = send(&mut devices, &mut rooms, 0, b"before dave");
    let mut dave = Device::new("dave");
    // Everyone adds Dave; Dave joins with the full list.
    let mut members: Vec<_> = devices.iter().map(Device::entry).collect();
    members.push(dave.entry());
    let (mut rd, dave_shares) = dave.create(b"grow", &members);
    for i in 0..3 {
        let d = &mut devices[i];
        let shares = rooms[i]
            .add_member_with_rng(
                &d.identity,
                dave.name.clone(),
                dave.identity.bundle(),
                1_000,
                &mut d.rng,
            )
            .unwrap();
        assert_eq!(shares.len(), 1, "only the newcomer gets my current key");
        deliver(&devices[i].name, &shares, &mut [(&dave, &mut rd)]);
    }
    for s in &dave_shares {
        let i = devices.iter().position(|d| d.name == s.to).unwrap();
        rooms[i]
            .receive_share_at(&devices[i].identity, &dave.name, &s.bytes, 1_000)
            .unwrap();
    }
    assert_eq!(rd.decrypt_at(&before, 1_000).unwrap_err(), Error::TooOld);
    let after = send(&mut devices, &mut rooms, 0, b"welcome dave");
    assert_eq!(
        rd.decrypt_at(&after, 1_000).unwrap().plaintext(),
        b"welcome dave"
    );
    let from_dave = rd
        .encrypt_with_rng(&dave.identity, b"hi", 1_000, &mut dave.rng)
        .unwrap();
    assert_eq!(
        rooms[1]
            .decrypt_at(&from_dave.message, 1_000)
            .unwrap()
            .plaintext(),
        b"hi"
    );
}

#[test]
fn removed_member_cannot_read_later_messages() {
    let (mut devices, mut rooms) = group(&["alice", "bob", "carol"], b"shrink");
    let carol = devices[2].name.clone();
    // Alice and Bob remove Carol; each rotates and shares only with the other.
    for i in 0..2 {
        let d = &mut devices[i];
        let shares = rooms[i]
            .remove_member_with_rng(&d.identity, &carol, 1_000, &mut d.rng)
            .unwrap();
        assert!(shares.iter().all(|s| s.to != carol));
        assert_eq!(shares.len(), 1);
        let other = 1 - i;
        let from = devices[i].name.clone();
        let (dev, room) = (&devices[other], &mut rooms[other]);
        deliver(&from, &shares, &mut [(dev, room)]);
    }
    assert_eq!(
        rooms[0].mode(),
        SenderKeyMode::Signed,
        "once a group, always signed"
    );
    let secret = send(&mut devices, &mut rooms, 0, b"carol is gone");
    assert_eq!(
        rooms[2].decrypt_at(&secret, 1_000).unwrap_err(),
        Error::UnknownSenderKey
    );
    assert_eq!(
        rooms[1].decrypt_at(&secret, 1_000).unwrap().plaintext(),
        b"carol is gone"
    );
    // Carol's messages are no longer accepted.
    let from_carol = send(&mut devices, &mut rooms, 2, b"still here?");
    assert_eq!(
        rooms[0].decrypt_at(&from_carol, 1_000).unwrap_err(),
        Error::UnknownSenderKey
    );
}

#[test]
fn reinstall_gives_identity_changed_and_a_new_room_works() {
    let (mut alice, mut bob) = (Device::new("alice"), Device::new("bob"));
    let members = [alice.entry(), bob.entry()];
    let (mut ra, _) = alice.create(b"dm", &members);
    // Bob reinstalls: same member id, new identity.
    let mut bob2 = Device {
        name: bob.name.clone(),
        identity: IdentityKeyPair::generate_with_rng(&mut bob.rng),
        rng: VectorRng::new(b"bob2"),
    };
    let (_, stale) = bob2.create(b"dm", &[alice.entry(), bob2.entry()]);
    let before = format!("{ra:?}");
    assert_eq!(
        ra.receive_share_at(&alice.identity, &bob.name, &stale[0].bytes, 1_000)
            .unwrap_err(),
        Error::IdentityChanged
    );
    assert_eq!(
        ra.check_member(&bob.name, bob2.identity.public())
            .unwrap_err(),
        Error::IdentityChanged
    );
    assert_eq!(
        ra.add_member(&alice.identity, bob.name.clone(), bob2.identity.bundle())
            .unwrap_err(),
        Error::IdentityChanged
    );
    assert_eq!(format!("{ra:?}"), before);
    assert!(!ra.has_key_of(&bob.name));
    // The app starts a new room with the new identity.
    let members2 = [alice.entry(), bob2.entry()];
    let (mut na, sa) = alice.create(b"dm-2", &members2);
    let (mut nb, sb) = bob2.create(b"dm-2", &members2);
    deliver(&alice.name, &sa, &mut [(&bob2, &mut nb)]);
    deliver(&bob2.name, &sb, &mut [(&alice, &mut na)]);
    let m = nb
        .encrypt_with_rng(&bob2.identity, b"new phone", 1_000, &mut bob2.rng)
        .unwrap();
    assert_eq!(
        na.decrypt_at(&m.message, 1_000).unwrap().plaintext(),
        b"new phone"
    );
}

#[test]
fn a_message_before_its_share_decrypts_after_retry() {
    let (mut alice, mut bob) = (Device::new("alice"), Device::new("bob"));
    let members = [alice.entry(), bob.entry()];
    let (mut ra, _sa) = alice.create(b"dm", &members);
    let (mut rb, sb) = bob.create(b"dm", &members);
    let early = rb
        .encrypt_with_rng(&bob.identity, b"overtook my share", 1_000, &mut bob.rng)
        .unwrap();
    assert_eq!(
        ra.decrypt_at(&early.message, 1_000).unwrap_err(),
        Error::UnknownSenderKey
    );
    deliver(&bob.name, &sb, &mut [(&alice, &mut ra)]);
    assert_eq!(
        ra.decrypt_at(&early.message, 1_000).unwrap().plaintext(),
        b"overtook my share"
    );
}

#[test]
fn replayed_or_reflected_shares_are_refused() {
    let (mut alice, mut bob) = (Device::new("alice"), Device::new("bob"));
    let members = [alice.entry(), bob.entry()];
    let (mut ra, sa) = alice.create(b"dm", &members);
    let (mut rb, sb) = bob.create(b"dm", &members);
    deliver(&bob.name, &sb, &mut [(&alice, &mut ra)]);
    deliver(&alice.name, &sa, &mut [(&bob, &mut rb)]);
    let m = rb
        .encrypt_with_rng(&bob.identity, b"1", 1_000, &mut bob.rng)
        .unwrap();
    ra.decrypt_at(&m.message, 1_000).unwrap();
    // Replaying Bob's share would reset his chain and re-open message 1.
    assert_eq!(
        ra.receive_share_at(&alice.identity, &bob.name, &sb[0].bytes, 1_000)
            .unwrap_err(),
        Error::Replay
    );
    assert_eq!(ra.decrypt_at(&m.message, 1_000).unwrap_err(), Error::Replay);
    // The relay bounces Alice's own share back to her, claiming Bob sent it.
    assert_eq!(
        ra.receive_share_at(&alice.identity, &bob.name, &sa[0].bytes, 1_000)
            .unwrap_err(),
        Error::Reflected
    );
}

#[test]
fn rotation_policy_rotates_and_old_messages_decrypt_within_grace() {
    let mut devices: Vec<Device> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| Device::new(n))
        .collect();
    let members: Vec<_> = devices.iter().map(Device::entry).collect();
    let policy = RotationPolicy {
        max_messages: 3,
        max_age_secs: 3600,
        old_key_grace_secs: 60,
    };
    let mut rooms = Vec::new();
    let mut shares = Vec::new();
    for d in devices.iter_mut() {
        let (r, s) = d.create_with(b"rot", &members, policy);
        rooms.push(r);
        shares.push((d.name.clone(), s));
    }
    for (from, ss) in &shares {
        for s in ss {
            let i = devices.iter().position(|d| d.name == s.to).unwrap();
            rooms[i]
                .receive_share_at(&devices[i].identity, from, &s.bytes, 1_000)
                .unwrap();
        }
    }
    let d = &mut devices[0];
    let old: Vec<_> = (0..3)
        .map(|_| {
            rooms[0]
                .encrypt_with_rng(&d.identity, b"old", 1_000, &mut d.rng)
                .unwrap()
        })
        .collect();
    assert!(old.iter().all(|o| o.shares.is_empty()));
    let rotated = rooms[0]
        .encrypt_with_rng(&d.identity, b"new", 1_000, &mut d.rng)
        .unwrap();
    assert_eq!(rotated.shares.len(), 2, "the fourth message rotates first");
    assert_eq!(rooms[0].epoch(), 1);
    let alice = devices[0].name.clone();
    for s in &rotated.shares {
        let i = devices.iter().position(|d| d.name == s.to).unwrap();
        rooms[i]
            .receive_share_at(&devices[i].identity, &alice, &s.bytes, 1_000)
            .unwrap();
    }
    assert_eq!(
        rooms[1].decrypt_at(&rotated.message, 1_000).unwrap().epoch,
        1
    );
    // In-flight messages of epoch 0 still decrypt within the grace period...
    assert_eq!(
        rooms[1]
            .decrypt_at(&old[0].message, 1_050)
            .unwrap()
            .plaintext(),
        b"old"
    );
    // ...and not after it.
    assert_eq!(
        rooms[1].decrypt_at(&old[1].message, 1_061).unwrap_err(),
        Error::TooOld
    );
    // Age-based rotation and forced rotation.
    assert!(rooms[0].rotation_due(1_000 + 3600));
    let d = &mut devices[0];
    let forced = rooms[0]
        .rotate_with_rng(&d.identity, 1_000, &mut d.rng)
        .unwrap();
    assert_eq!(forced.len(), 2);
    assert_eq!(rooms[0].epoch(), 2);
}

#[test]
fn a_group_never_accepts_a_pairwise_sender_key() {
    let (mut devices, mut rooms) = group(&["alice", "bob", "carol"], b"g");
    // Bob's device believes the room has two members (relay lied to it) and
    // makes a pairwise key; Alice's three-member room refuses it.
    let members2 = [devices[0].entry(), devices[1].entry()];
    let (_, pairwise) = devices[1].create(b"g", &members2);
    let bob = devices[1].name.clone();
    let err = rooms[0]
        .receive_share_at(&devices[0].identity, &bob, &pairwise[0].bytes, 1_000)
        .unwrap_err();
    // Refused as stale (epoch 0 already accepted from Bob) before anything else.
    assert_eq!(err, Error::Replay);
    let _ = send(&mut devices, &mut rooms, 0, b"still fine");
}

#[test]
fn a_thousand_member_room() {
    let mut devices: Vec<Device> = (0..1000)
        .map(|i| Device::new(&format!("member-{i:04}")))
        .collect();
    let members: Vec<_> = devices.iter().map(Device::entry).collect();
    let (mut r0, shares0) = devices[0].create(b"big", &members);
    assert_eq!(shares0.len(), 999);
    let (mut r1, shares1) = devices[1].create(b"big", &members);
    let s = shares0.iter().find(|s| s.to == devices[1].name).unwrap();
    r1.receive_share_at(
        &devices[1].identity,
        &devices[0].name.clone(),
        &s.bytes,
        1_000,
    )
    .unwrap();
    let s = shares1.iter().find(|s| s.to == devices[0].name).unwrap();
    r0.receive_share_at(
        &devices[0].identity,
        &devices[1].name.clone(),
        &s.bytes,
        1_000,
    )
    .unwrap();
    let d0 = &mut devices[0];
    let m = r0
        .encrypt_with_rng(&d0.identity, b"hello, thousand", 1_000, &mut d0.rng)
        .unwrap();
    assert_eq!(
        r1.decrypt_at(&m.message, 1_000).unwrap().plaintext(),
        b"hello, thousand"
    );
    let gone = devices[999].name.clone();
    let d0 = &mut devices[0];
    let rotated = r0
        .remove_member_with_rng(&d0.identity, &gone, 1_000, &mut d0.rng)
        .unwrap();
    assert_eq!(rotated.len(), 998);
}

/// The key-substitution attack published against the product this crate is
/// modelled on: when Alice creates the 1:1 room, the relay hands her its own
/// identity as "bob" and re-wraps keys between the two real users.
#[test]
fn relay_key_substitution_is_caught() {
    let (mut alice, mut bob) = (Device::new("alice"), Device::new("bob"));
    let mut mallory = Device::new("mallory");
    // What the relay tells each side.
    let fake_bob = (bob.name.clone(), mallory.identity.bundle());
    let fake_alice = (alice.name.clone(), mallory.identity.bundle());
    let (mut ra, shares_a) = alice.create(b"dm", &[alice.entry(), fake_bob]);
    let (rb, _shares_b) = bob.create(b"dm", &[fake_alice, bob.entry()]);

    // 1. Alice's share is wrapped to Mallory, who reads Alice's messages and
    //    must re-encrypt them for Bob under its own keys, impersonating each
    //    side to the other for as long as the room lives.
    let mut at_mallory_as_bob = Room::create_with_rng(
        &mallory.identity,
        RoomId::new(b"dm").unwrap(),
        bob.name.clone(),
        &[alice.entry(), (bob.name.clone(), mallory.identity.bundle())],
        secret_chat::Suite::XWing,
        RotationPolicy::default(),
        1_000,
        &mut mallory.rng,
    )
    .unwrap()
    .0;
    at_mallory_as_bob
        .receive_share_at(&mallory.identity, &alice.name, &shares_a[0].bytes, 1_000)
        .unwrap();
    let m = ra
        .encrypt_with_rng(&alice.identity, b"secret", 1_000, &mut alice.rng)
        .unwrap();
    assert_eq!(
        at_mallory_as_bob
            .decrypt_at(&m.message, 1_000)
            .unwrap()
            .plaintext(),
        b"secret"
    );

    // 2. The users compare the public key image: it differs, so they catch it.
    let on_alice = ra.verification(&bob.name).unwrap();
    let on_bob = rb.verification(&alice.name).unwrap();
    assert_ne!(on_alice.image(), on_bob.image(), "the pictures differ");
    assert_ne!(on_alice.numeric_code(), on_bob.numeric_code());
    assert!(
        on_alice
            .verify_scanned(&on_bob.payload().to_bytes())
            .is_err()
    );
    // Without the attack the pictures are identical (the check is meaningful).
    let (honest_a, _) = alice.create(b"dm2", &[alice.entry(), bob.entry()]);
    let (honest_b, _) = bob.create(b"dm2", &[alice.entry(), bob.entry()]);
    assert_eq!(
        honest_a.verification(&bob.name).unwrap().image(),
        honest_b.verification(&alice.name).unwrap().image()
    );

    // 3. And once Alice's room has pinned the real Bob (after a verified
    //    start), a share Mallory signs is refused outright.
    let (mut pinned, _) = alice.create(b"dm3", &[alice.entry(), bob.entry()]);
    let (_, forged) = Room::create_with_rng(
        &mallory.identity,
        RoomId::new(b"dm3").unwrap(),
        bob.name.clone(),
        &[alice.entry(), (bob.name.clone(), mallory.identity.bundle())],
        secret_chat::Suite::XWing,
        RotationPolicy::default(),
        1_000,
        &mut mallory.rng,
    )
    .unwrap();
    assert_eq!(
        pinned
            .receive_share_at(&alice.identity, &bob.name, &forged[0].bytes, 1_000)
            .unwrap_err(),
        Error::IdentityChanged
    );
}

/// The relay mislabels who sent a share: the room goes by the signed sender
/// identity, so the share neither passes for another member's nor makes a
/// member look as if it reinstalled.
#[test]
fn mislabelled_shares_are_attributed_to_their_signer() {
    let mut devices: Vec<Device> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| Device::new(n))
        .collect();
    let members: Vec<_> = devices.iter().map(Device::entry).collect();
    let (mut at_carol, _) = devices[2].create(b"g", &members);
    let (mut at_bob, from_bob) = devices[1].create(b"g", &members);
    let to_carol = from_bob.iter().find(|s| s.to == devices[2].name).unwrap();
    // "From alice", says the relay; signed by Bob.
    at_carol
        .receive_share_at(
            &devices[2].identity,
            &devices[0].name,
            &to_carol.bytes,
            1_000,
        )
        .unwrap();
    assert!(at_carol.has_key_of(&devices[1].name));
    assert!(!at_carol.has_key_of(&devices[0].name));
    let d = &mut devices[1];
    let m = at_bob
        .encrypt_with_rng(&d.identity, b"from bob", 1_000, &mut d.rng)
        .unwrap();
    assert_eq!(
        at_carol.decrypt_at(&m.message, 1_000).unwrap().sender,
        devices[1].name
    );
}

#[test]
fn one_identity_cannot_hold_two_member_ids() {
    let (mut alice, bob) = (Device::new("alice"), Device::new("bob"));
    let twice = [
        alice.entry(),
        bob.entry(),
        (MemberId::new(b"bob-2").unwrap(), bob.identity.bundle()),
    ];
    let err = Room::create_with_rng(
        &alice.identity,
        RoomId::new(b"r").unwrap(),
        alice.name.clone(),
        &twice,
        secret_chat::Suite::XWing,
        RotationPolicy::default(),
        0,
        &mut alice.rng,
    )
    .unwrap_err();
    assert_eq!(err, Error::DuplicateIdentity);
}
