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
use secret_chat::{Error, IdentityKeyPair, MemberId, PublicIdentity, Room, RoomId, SenderKeyMode};

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

    fn entry(&self) -> (MemberId, PublicIdentity) {
        (self.name.clone(), self.identity.public().clone())
    }

    fn create(
        &mut self,
        room: &[u8],
        members: &[(MemberId, PublicIdentity)],
    ) -> (Room, Vec<OutgoingShare>) {
        self.create_with(room, members, RotationPolicy::default())
    }

    fn create_with(
        &mut self,
        room: &[u8],
        members: &[(MemberId, PublicIdentity)],
        policy: RotationPolicy,
    ) -> (Room, Vec<OutgoingShare>) {
        Room::create_with_rng(
            &self.identity,
            RoomId::new(room).unwrap(),
            self.name.clone(),
            members,
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
                dave.identity.public().clone(),
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
        ra.add_member(
            &alice.identity,
            bob.name.clone(),
            bob2.identity.public().clone()
        )
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
    // The relay claims Alice's own share comes from Bob: the sender is not Bob.
    assert!(
        ra.receive_share_at(&alice.identity, &bob.name, &sa[0].bytes, 1_000)
            .is_err()
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
