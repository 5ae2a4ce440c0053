//! The fuzz targets' logic, one copy shared by the libFuzzer binaries
//! (`fuzz/fuzz_targets/*.rs`, nightly) and the corpus replay
//! (`tests/fuzz_corpus.rs`, stable `cargo test`).
//!
//! Every check function takes arbitrary bytes and panics only when the
//! library breaks one of its promises (a panic inside the library counts).
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

mod attachment;
pub(crate) use attachment::{attachment_chunk, attachment_pointer, content};
mod key_request;
pub(crate) use key_request::key_request;

use secret_chat::membership::{Genesis, IdentityKey, Membership, Operation, RoomPolicy};
use secret_chat::room::{OutgoingShare, RotationPolicy};
use secret_chat::storage::StorageKey;
use secret_chat::testing::VectorRng;
use secret_chat::{
    DeviceBundle, Error, Fingerprint, IdentityKeyPair, InboundSenderKey, KeyShare, MemberId,
    Message, PairVerification, PublicIdentity, Room, RoomId, ScannablePayload, SenderKeyId,
    SenderKeyMode, SharedSenderKey,
};

/// A target's check: panics when the library breaks a promise.
pub(crate) type Check = fn(&[u8]);

/// Every target: (name of `fuzz/fuzz_targets/<name>.rs` and of its corpus
/// directory, check function).
pub(crate) const TARGETS: &[(&str, Check)] = &[
    ("public_identity", public_identity),
    ("key_share", key_share),
    ("message", message),
    ("share_plaintext", share_plaintext),
    ("round_trip", round_trip),
    ("receive_path", receive_path),
    ("stored_state", stored_state),
    ("scannable_payload", scannable_payload),
    ("key_image", key_image),
    ("device_bundle", device_bundle),
    ("attachment_pointer", attachment_pointer),
    ("content", content),
    ("attachment_chunk", attachment_chunk),
    ("membership", membership),
    ("id_text", id_text),
    ("record_store", record_store),
    ("room_records", room_records),
    ("key_request", key_request),
];

/// The clock every room in the world uses (Unix seconds).
const NOW: u64 = 1_000;

// ---------------------------------------------------------------------------
// The world: deterministic identities and genuine traffic, built once.
// ---------------------------------------------------------------------------

/// Room index: 0 = bob's view of the 3-member signed group "group",
/// 1 = dave's view of the 2-member pairwise room "dm".
const ROOMS: usize = 2;

/// A genuine key share addressed to the receiving member of `room`.
pub(crate) struct GenuineShare {
    pub(crate) room: usize,
    pub(crate) from: MemberId,
    pub(crate) epoch: u32,
    pub(crate) bytes: Vec<u8>,
}

/// A genuine message, decryptable once its share (`share`) was accepted.
pub(crate) struct GenuineMessage {
    pub(crate) room: usize,
    pub(crate) share: usize,
    pub(crate) from: MemberId,
    pub(crate) index: u32,
    pub(crate) plaintext: Vec<u8>,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) struct World {
    pub(crate) alice: IdentityKeyPair,
    pub(crate) bob: IdentityKeyPair,
    pub(crate) carol: IdentityKeyPair,
    pub(crate) dave: IdentityKeyPair,
    pub(crate) group_members: Vec<(MemberId, DeviceBundle)>,
    pub(crate) dm_members: Vec<(MemberId, DeviceBundle)>,
    /// The welcomes of the two rooms (alice created both).
    pub(crate) group_welcome: Vec<u8>,
    pub(crate) dm_welcome: Vec<u8>,
    /// The genuine membership instances: (group alice, group carol, dm alice).
    pub(crate) instances: [[u8; 32]; 3],
    pub(crate) shares: Vec<GenuineShare>,
    pub(crate) messages: Vec<GenuineMessage>,
    /// A message under bob's own sender key (the relay reflecting it back).
    pub(crate) reflected: Vec<u8>,
    /// Alice's signed update removing carol from the group (no bundle).
    pub(crate) remove_carol: Vec<u8>,
    /// Alice's bundle after she rotated her share keys (serial 2).
    pub(crate) alice_rotated_bundle: DeviceBundle,
    /// The opened sender keys of the genuine shares (same order as `shares`).
    /// With the binding the receiver computes for the share's sender.
    pub(crate) opened: Vec<(RoomId, u32, SharedSenderKey, [u8; 32])>,
}

fn member(name: &str) -> MemberId {
    MemberId::new(name.as_bytes()).unwrap()
}

fn identity(name: &str) -> IdentityKeyPair {
    IdentityKeyPair::generate_at(1_700_000_000, &mut VectorRng::new(name.as_bytes()))
}

fn create(
    me: &IdentityKeyPair,
    name: &str,
    room: &[u8],
    members: &[(MemberId, DeviceBundle)],
    seed: &[u8],
) -> (Room, Vec<OutgoingShare>) {
    Room::create_with_rng(
        me,
        RoomId::new(room).unwrap(),
        member(name),
        members,
        &secret_chat::RoomOptions {
            suite: secret_chat::Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        NOW,
        &mut VectorRng::new(seed),
    )
    .unwrap()
}

fn join(
    me: &IdentityKeyPair,
    name: &str,
    room: &[u8],
    welcome: &[u8],
    seed: &[u8],
) -> (Room, Vec<OutgoingShare>) {
    Room::join_with_rng(
        me,
        member(name),
        &RoomId::new(room).unwrap(),
        welcome,
        RotationPolicy::default(),
        NOW,
        &mut VectorRng::new(seed),
    )
    .unwrap()
}

/// Bob's room as every input starts it (deterministic: same seed each time).
fn bob_room(w: &World) -> Room {
    join(&w.bob, "bob", b"group", &w.group_welcome, b"fuzz/bob-room").0
}

/// Dave's room as every input starts it.
fn dave_room(w: &World) -> Room {
    join(&w.dave, "dave", b"dm", &w.dm_welcome, b"fuzz/dave-room").0
}

fn share_to<'a>(shares: &'a [OutgoingShare], to: &str) -> &'a [u8] {
    &shares
        .iter()
        .find(|s| s.to.as_bytes() == to.as_bytes())
        .unwrap()
        .bytes
}

fn build_world() -> World {
    let (alice, bob, carol, dave) = (
        identity("alice"),
        identity("bob"),
        identity("carol"),
        identity("dave"),
    );
    let entry = |n: &str, id: &IdentityKeyPair| (member(n), id.bundle());
    let group_members = vec![
        entry("alice", &alice),
        entry("bob", &bob),
        entry("carol", &carol),
    ];
    let dm_members = vec![entry("alice", &alice), entry("dave", &dave)];
    let mut shares = Vec::new();
    let mut messages = Vec::new();
    let mut rng = VectorRng::new(b"fuzz/traffic");
    let text = |i: usize| -> Vec<u8> { (0..(i * 7) % 50).map(|j| (i + j) as u8).collect() };
    let mut send = |room: &mut Room,
                    who: &IdentityKeyPair,
                    from: &str,
                    r: usize,
                    share: usize,
                    count: usize,
                    messages: &mut Vec<GenuineMessage>| {
        for i in 0..count {
            let plaintext = text(messages.len() + i);
            let out = room
                .encrypt_with_rng(who, &plaintext, NOW, &mut rng)
                .unwrap();
            assert!(out.shares.is_empty());
            let index = Message::from_bytes(&out.message).unwrap().index();
            messages.push(GenuineMessage {
                room: r,
                share,
                from: member(from),
                index,
                plaintext,
                bytes: out.message,
            });
        }
    };

    // The signed group: alice (two epochs) and carol send to bob.
    let (mut ra, sa) = create(
        &alice,
        "alice",
        b"group",
        &group_members,
        b"fuzz/alice-room",
    );
    let group_welcome = ra.welcome(&alice).unwrap();
    let (mut rc, sc) = join(
        &carol,
        "carol",
        b"group",
        &group_welcome,
        b"fuzz/carol-room",
    );
    shares.push(GenuineShare {
        room: 0,
        from: member("alice"),
        epoch: 0,
        bytes: share_to(&sa, "bob").to_vec(),
    });
    send(&mut ra, &alice, "alice", 0, 0, 5, &mut messages);
    shares.push(GenuineShare {
        room: 0,
        from: member("carol"),
        epoch: 0,
        bytes: share_to(&sc, "bob").to_vec(),
    });
    send(&mut rc, &carol, "carol", 0, 1, 3, &mut messages);
    let sa1 = ra
        .rotate_with_rng(&alice, NOW, &mut VectorRng::new(b"fuzz/alice-rotate"))
        .unwrap();
    shares.push(GenuineShare {
        room: 0,
        from: member("alice"),
        epoch: 1,
        bytes: share_to(&sa1, "bob").to_vec(),
    });
    send(&mut ra, &alice, "alice", 0, 2, 3, &mut messages);
    let instance = |r: &Room, n: &str| *r.membership().instance_of(&member(n)).unwrap().as_bytes();
    let group_instances = [instance(&ra, "alice"), instance(&ra, "carol")];

    // The pairwise room: alice sends to dave.
    let (mut rd, sd) = create(&alice, "alice", b"dm", &dm_members, b"fuzz/alice-dm");
    let dm_welcome = rd.welcome(&alice).unwrap();
    let instances = [
        group_instances[0],
        group_instances[1],
        instance(&rd, "alice"),
    ];
    shares.push(GenuineShare {
        room: 1,
        from: member("alice"),
        epoch: 0,
        bytes: share_to(&sd, "dave").to_vec(),
    });
    send(&mut rd, &alice, "alice", 1, 3, 4, &mut messages);
    // (After the pairwise room, so every earlier input keeps its meaning.)
    // Alice removes carol: her new key (epoch 2) goes to bob only.
    let removal = ra
        .remove_member_with_rng(
            &alice,
            &member("carol"),
            NOW,
            &mut VectorRng::new(b"fuzz/alice-remove"),
        )
        .unwrap();
    let remove_carol = removal.update.clone();
    shares.push(GenuineShare {
        room: 0,
        from: member("alice"),
        epoch: 2,
        bytes: share_to(&removal.shares, "bob").to_vec(),
    });
    send(&mut ra, &alice, "alice", 0, 4, 2, &mut messages);

    let mut w = World {
        alice,
        bob,
        carol,
        dave,
        group_members,
        dm_members,
        group_welcome,
        dm_welcome,
        instances,
        shares,
        messages,
        reflected: Vec::new(),
        remove_carol,
        alice_rotated_bundle: {
            let mut a = identity("alice");
            a.rotate_share_keys_at(1_700_000_100, &mut VectorRng::new(b"fuzz/alice-share-keys"))
                .unwrap()
        },
        opened: Vec::new(),
    };
    let mut rb = bob_room(&w);
    w.reflected = rb
        .encrypt_with_rng(&w.bob, b"mine", NOW, &mut VectorRng::new(b"fuzz/reflect"))
        .unwrap()
        .message;
    for s in &w.shares {
        let share = KeyShare::from_bytes(&s.bytes).unwrap();
        let (me, sender) = if s.room == 0 {
            let from = if s.from.as_bytes() == b"alice" {
                &w.alice
            } else {
                &w.carol
            };
            (&w.bob, from.public())
        } else {
            (&w.dave, w.alice.public())
        };
        let room = share.room().clone();
        let instance = *share.sender_instance();
        let key = share.open(me, sender, &room, s.epoch, &instance).unwrap();
        let binding =
            secret_chat::testing::sender_key_binding(&room, &sender.to_bytes(), &instance, s.epoch);
        w.opened.push((room, s.epoch, key, binding));
    }
    w
}

pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build_world)
}

/// Seed inputs for every target, generated from the world (used to write
/// `fuzz/corpus/<target>/`; see `tests/fuzz_corpus.rs`).
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let w = world();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    storage_and_payload_seeds(w, &mut out);
    attachment::seeds(&mut out);
    id_text_seeds(&mut out);
    record_seeds(&mut out);
    room_record_seeds(w, &mut out);
    key_request::seeds(&mut out);
    for (i, id) in [&w.alice, &w.bob, &w.carol, &w.dave].iter().enumerate() {
        let b = id.public().to_bytes().to_vec();
        out.push(("public_identity", format!("genuine-{i}"), b.clone()));
        let mut rt = vec![0u8];
        rt.extend_from_slice(&b);
        out.push(("round_trip", format!("identity-{i}"), rt));
    }
    out.push(("public_identity", "empty".into(), Vec::new()));
    for (i, id) in [&w.alice, &w.bob].iter().enumerate() {
        out.push((
            "device_bundle",
            format!("genuine-{i}"),
            id.bundle().to_bytes(),
        ));
    }
    for (i, s) in w.shares.iter().enumerate() {
        out.push(("key_share", format!("genuine-{i}"), s.bytes.clone()));
        let mut rt = vec![1u8];
        rt.extend_from_slice(&s.bytes);
        out.push(("round_trip", format!("share-{i}"), rt));
    }
    for (i, m) in w.messages.iter().enumerate() {
        out.push(("message", format!("genuine-{i}"), m.bytes.clone()));
        if i % 3 == 0 {
            let mut rt = vec![2u8];
            rt.extend_from_slice(&m.bytes);
            out.push(("round_trip", format!("message-{i}"), rt));
        }
    }
    out.push(("message", "reflected".into(), w.reflected.clone()));
    for (i, (_, _, key, _)) in w.opened.iter().enumerate() {
        let pt = secret_chat::testing::share_plaintext(key).unwrap();
        out.push(("share_plaintext", format!("genuine-{i}"), pt.to_vec()));
    }
    // receive_path: op scripts (see `receive_path` for the encoding).
    let n_shares = w.shares.len() as u8;
    let n_msgs = w.messages.len() as u8;
    let mut in_order = Vec::new();
    for k in 0..n_shares {
        in_order.extend_from_slice(&[OP_SHARE, k]);
    }
    for m in 0..n_msgs {
        in_order.extend_from_slice(&[OP_MESSAGE, m]);
    }
    out.push(("receive_path", "in-order".into(), in_order));
    let mut reversed = Vec::new();
    for m in (0..n_msgs).rev() {
        reversed.extend_from_slice(&[OP_MESSAGE, m]);
    }
    for k in (0..n_shares).rev() {
        reversed.extend_from_slice(&[OP_SHARE, k, OP_MESSAGE, k]);
    }
    out.push(("receive_path", "reversed".into(), reversed));
    // Membership, share-key rotation and save/load interleaved with traffic:
    // alice epoch 0 and carol in, bob rotates his share keys, the removal
    // arrives (carol's later traffic is refused), a mutated and a raw update
    // are refused, alice's rotated bundle is adopted (then stale), alice's
    // epoch-2 share skips epoch 1 (her epoch-0 key ends where it was), and
    // both rooms are saved and loaded in between.
    let carol_msg = w
        .messages
        .iter()
        .position(|m| m.from.as_bytes() == b"carol")
        .unwrap() as u8;
    let epoch2 = w.shares.iter().position(|s| s.epoch == 2).unwrap() as u8;
    let membership = vec![
        OP_SHARE,
        0,
        OP_MESSAGE,
        1,
        OP_SHARE,
        1,
        OP_ROTATE_SHARE_KEYS,
        OP_SAVE_LOAD,
        0,
        OP_MESSAGE,
        carol_msg,
        OP_MUTATE_UPDATE,
        0,
        9,
        0,
        0,
        OP_RAW_UPDATE,
        3,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        OP_UPDATE,
        OP_UPDATE,
        OP_MESSAGE,
        carol_msg + 1,
        OP_SHARE,
        1,
        OP_BUNDLE,
        OP_BUNDLE,
        OP_SAVE_LOAD,
        1,
        OP_SHARE,
        epoch2,
        OP_MESSAGE,
        0,
        OP_MESSAGE,
        2,
        OP_SAVE_LOAD,
        0,
        OP_SHARE,
        3,
        OP_MESSAGE,
        n_msgs - 1,
    ];
    out.push((
        "receive_path",
        "membership-rotation-save".into(),
        membership,
    ));
    let mut mutated = vec![OP_SHARE, 0, OP_SHARE, 3];
    for m in 0..n_msgs {
        mutated.extend_from_slice(&[OP_MUTATE_MESSAGE, m, m % 6, 17, m, 1, OP_MESSAGE, m]);
    }
    mutated.extend_from_slice(&[
        OP_MUTATE_SHARE,
        0,
        0,
        40,
        0,
        3,
        OP_RAW_SHARE,
        0,
        0,
        3,
        1,
        2,
        3,
    ]);
    mutated.extend_from_slice(&[OP_RAW_MESSAGE, 0, 4, 1, 1, 1, 1, OP_REFLECTED]);
    out.push(("receive_path", "mutations".into(), mutated));
    membership_seeds(&mut out);
    out
}

// ---------------------------------------------------------------------------
// Decoder targets.
// ---------------------------------------------------------------------------

/// `PublicIdentity::from_bytes`: total; what it accepts re-encodes to the
/// same bytes and parses to an equal value with the same id.
pub(crate) fn public_identity(data: &[u8]) {
    if let Ok(p) = PublicIdentity::from_bytes(data) {
        assert_eq!(&p.to_bytes()[..], data, "identity: not canonical");
        assert_eq!(&p.as_bytes()[..], data);
        let again = PublicIdentity::from_bytes(&p.to_bytes()).expect("re-parse");
        assert_eq!(again, p);
        assert_eq!(again.id(), p.id());
    }
}

/// `DeviceBundle::from_bytes` and `SignedShareKey::from_bytes`: total and
/// canonical; what parses is signed by the bundle's identity, and no bundle
/// other than a genuine one of the world verifies under a world identity.
pub(crate) fn device_bundle(data: &[u8]) {
    let w = world();
    if let Ok(b) = DeviceBundle::from_bytes(data) {
        assert_eq!(b.to_bytes(), data, "bundle: not canonical");
        for k in b.share_keys() {
            let again = secret_chat::SignedShareKey::from_bytes(k.as_bytes(), b.identity())
                .expect("share key re-parse");
            assert_eq!(&again, k);
        }
        for id in [&w.alice, &w.bob, &w.carol, &w.dave] {
            if b.identity() == id.public() {
                assert_eq!(
                    b,
                    id.bundle(),
                    "bundle: forged share key under a world identity"
                );
            }
        }
    }
    for id in [&w.alice, &w.bob] {
        if let Ok(k) = secret_chat::SignedShareKey::from_bytes(data, id.public()) {
            assert_eq!(k.as_bytes(), data, "share key: not canonical");
            assert!(
                id.bundle().share_keys().contains(&k),
                "share key: forged under a world identity"
            );
        }
    }
}

/// `KeyShare::from_bytes` (+ `to_bytes`, + `open` by every receiver of the
/// world): parse is total and canonical; `open` never panics and never
/// accepts anything but a genuine share.
pub(crate) fn key_share(data: &[u8]) {
    let Ok(share) = KeyShare::from_bytes(data) else {
        return;
    };
    assert_eq!(share.to_bytes(), data, "key share: not canonical");
    assert_eq!(
        KeyShare::from_bytes(share.as_bytes()).expect("re-parse"),
        share
    );
    let w = world();
    let pairs = [
        (&w.bob, &w.alice, &w.instances[0]),
        (&w.bob, &w.carol, &w.instances[1]),
        (&w.dave, &w.alice, &w.instances[2]),
    ];
    for (me, sender, instance) in pairs {
        let room = share.room().clone();
        if share
            .open(me, sender.public(), &room, share.epoch(), instance)
            .is_ok()
        {
            assert!(
                w.shares.iter().any(|s| s.bytes == data),
                "key share: forged share opened"
            );
        }
    }
}

/// `Message::from_bytes` and `InboundSenderKey::decrypt` under every genuine
/// sender key: total; only genuine bytes decrypt, and only once.
pub(crate) fn message(data: &[u8]) {
    let Ok(msg) = Message::from_bytes(data) else {
        return;
    };
    let _ = (
        msg.mode(),
        msg.room_id(),
        msg.epoch(),
        msg.sender_key(),
        msg.index(),
    );
    let _ = format!("{msg:?}");
    let w = world();
    for (room, epoch, key, binding) in &w.opened {
        let mut inbound =
            InboundSenderKey::new(room.clone(), *epoch, key.clone(), *binding).unwrap();
        match inbound.decrypt(&msg) {
            Ok(d) => {
                let genuine = w
                    .messages
                    .iter()
                    .find(|m| m.bytes == data)
                    .expect("message: forged message decrypted");
                assert_eq!(d.plaintext(), &genuine.plaintext[..]);
                assert_eq!(d.index(), genuine.index);
                assert_eq!(inbound.decrypt(&msg).unwrap_err(), Error::Replay);
            }
            Err(_) => {
                // A failed decrypt leaves the key as it was.
                assert_eq!(
                    inbound,
                    InboundSenderKey::new(room.clone(), *epoch, key.clone(), *binding).unwrap(),
                    "message: failed decrypt changed state"
                );
            }
        }
    }
}

/// The key-share plaintext parser (`SharedSenderKey` inside an opened share):
/// total; what it accepts re-encodes to the same bytes; a genuine key
/// installs under its owner's binding, and `InboundSenderKey::new` never
/// panics on what the parser accepts.
pub(crate) fn share_plaintext(data: &[u8]) {
    let Ok(key) = secret_chat::testing::parse_share_plaintext(data) else {
        return;
    };
    let again = secret_chat::testing::share_plaintext(&key).unwrap();
    assert_eq!(&again[..], data, "share plaintext re-encodes differently");
    let _ = (key.id(), key.mode(), key.index(), key.predecessor_end());
    let _ = format!("{key:?}");
    let w = world();
    for (room, epoch, genuine, binding) in &w.opened {
        let accepted = InboundSenderKey::new(room.clone(), *epoch, key.clone(), *binding).is_ok();
        if key == *genuine {
            assert!(accepted, "share plaintext: genuine key refused");
        }
    }
}

/// Round trip: the first byte picks the decoder, the rest is its input.
/// What a decoder accepts must re-encode to exactly the same bytes.
///
/// 0: public identity, 1: key share, 2: message (a borrowed view: its
/// header is rebuilt from the accessors). 3 and 4 are reserved for the
/// stored state and the scannable payload.
pub(crate) fn round_trip(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            if let Ok(p) = PublicIdentity::from_bytes(rest) {
                assert_eq!(&p.to_bytes()[..], rest);
            }
        }
        1 => {
            if let Ok(s) = KeyShare::from_bytes(rest) {
                assert_eq!(s.to_bytes(), rest);
                assert_eq!(
                    KeyShare::from_bytes(&s.to_bytes()).unwrap().to_bytes(),
                    rest
                );
            }
        }
        2 => {
            if let Ok(m) = Message::from_bytes(rest) {
                let mut header = vec![2u8, m.mode().to_byte()];
                header.push(u8::try_from(m.room_id().len()).unwrap());
                header.extend_from_slice(m.room_id());
                header.extend_from_slice(&m.epoch().to_be_bytes());
                header.extend_from_slice(m.sender_key().as_bytes());
                header.extend_from_slice(&m.index().to_be_bytes());
                header.extend_from_slice(m.salt());
                header.extend_from_slice(m.commitment());
                assert_eq!(m.header(), &header[..], "message header accessor");
                assert_eq!(
                    rest.get(..header.len()),
                    Some(&header[..]),
                    "message header"
                );
                let sig = match m.mode() {
                    SenderKeyMode::Signed => 64,
                    SenderKeyMode::Pairwise => 0,
                };
                assert!(rest.len() >= header.len() + sig + 32 + 16);
            }
        }
        3 => {
            // Stored state: a sealed room plaintext that imports must export
            // back to the same blob (one canonical encoding).
            let blob = seal_state(STORAGE_KIND_ROOM, rest);
            if let Ok(room) = Room::import(&blob, &storage_key()) {
                let again = room
                    .export_with_rng(&storage_key(), &mut nonce_rng())
                    .unwrap();
                assert_eq!(again, blob, "room state re-encodes differently");
            }
        }
        4 => {
            if let Ok(p) = ScannablePayload::from_bytes(rest) {
                assert_eq!(&p.to_bytes()[..], rest);
            }
        }
        5 => key_request::round_trip(rest),
        // 6-7 spare.
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// The stateful receive path.
// ---------------------------------------------------------------------------

/// Deliver genuine share `k` (next byte, modulo).
pub(crate) const OP_SHARE: u8 = 0;
/// Deliver genuine message `m` (next byte, modulo).
pub(crate) const OP_MESSAGE: u8 = 1;
/// Raw bytes to `decrypt_at`: room bit, length, bytes.
pub(crate) const OP_RAW_MESSAGE: u8 = 2;
/// Raw bytes to `receive_share_at`: room bit, claimed sender, length, bytes.
pub(crate) const OP_RAW_SHARE: u8 = 3;
/// A mutated genuine message: which, mutation (kind, position, argument).
pub(crate) const OP_MUTATE_MESSAGE: u8 = 4;
/// A mutated genuine share: which, mutation (kind, position, argument).
pub(crate) const OP_MUTATE_SHARE: u8 = 5;
/// The reflected message (bob's own), to bob.
pub(crate) const OP_REFLECTED: u8 = 6;
/// Alice's genuine removal of carol, to bob's room.
pub(crate) const OP_UPDATE: u8 = 7;
/// A mutated removal update (mutation as for messages).
pub(crate) const OP_MUTATE_UPDATE: u8 = 8;
/// Raw bytes to `apply_update`: length, bytes.
pub(crate) const OP_RAW_UPDATE: u8 = 9;
/// Bob rotates his share keys (shares sealed to the old ones still open).
pub(crate) const OP_ROTATE_SHARE_KEYS: u8 = 10;
/// Alice's rotated bundle to bob's room (`update_member_bundle`).
pub(crate) const OP_BUNDLE: u8 = 11;
/// Save a room's changed records and load it back (room bit).
pub(crate) const OP_SAVE_LOAD: u8 = 12;
const OPS: u8 = 13;

/// At most this many operations per input (bounded work per input).
const MAX_OPS: usize = 96;
/// At most this many raw bytes per operation.
const MAX_RAW: usize = 1024;

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn b(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a.to_vec()
    }
}

/// Applies one input-chosen mutation to `bytes` (`other`: a second genuine
/// encoding for header splices).
fn mutate(bytes: &[u8], other: &[u8], c: &mut Cursor<'_>) -> Vec<u8> {
    let kind = c.b() % 6;
    let pos = usize::from(c.b()) | (usize::from(c.b()) << 8);
    let arg = c.b();
    let mut v = bytes.to_vec();
    let at = if v.is_empty() { 0 } else { pos % v.len() };
    match kind {
        0 => {
            if let Some(x) = v.get_mut(at) {
                *x ^= 1 << (arg % 8);
            }
        }
        1 => v.truncate(at),
        2 => {
            let extra = c.take(usize::from(arg % 16));
            v.extend_from_slice(&extra);
        }
        3 => {
            // Header of one, body of the other.
            let cut = at.min(other.len());
            let mut s = other[..cut].to_vec();
            s.extend_from_slice(v.get(cut..).unwrap_or(&[]));
            v = s;
        }
        4 => {
            if let Some(x) = v.get_mut(at) {
                *x = arg;
            }
        }
        _ => v.insert(at, arg),
    }
    v
}

struct Model {
    rooms: [Room; ROOMS],
    /// Bob's own identity (his share keys may rotate).
    bob: IdentityKeyPair,
    /// Whether bob rotated his share keys.
    bob_rotated: bool,
    /// Whether bob's room applied the removal of carol.
    carol_removed: bool,
    /// Whether bob's room adopted alice's rotated bundle.
    bundle_adopted: bool,
    /// Per genuine share: the index from which its key refuses messages,
    /// set when a later share of its sender skipped an epoch (the end of a
    /// key whose successor's share was lost is the index it had reached).
    capped: Vec<Option<u32>>,
    /// A store per room, holding what was saved so far.
    stores: [secret_chat::store::SealedStore<secret_chat::store::MemoryStore>; ROOMS],
    /// Per genuine share: accepted?
    accepted: Vec<bool>,
    /// Newest accepted epoch per (room, sender).
    last_epoch: Vec<(usize, MemberId, u32)>,
    decrypted: Vec<bool>,
}

impl Model {
    /// The room and its receiving identity, borrowed together.
    fn at<'a>(&'a mut self, w: &'a World, room: usize) -> (&'a mut Room, &'a IdentityKeyPair) {
        let me = if room == 0 { &self.bob } else { &w.dave };
        (&mut self.rooms[room], me)
    }

    /// Carol's traffic in the group once her removal was applied.
    fn sent_by_removed(&self, room: usize, from: &MemberId) -> bool {
        self.carol_removed && room == 0 && from.as_bytes() == b"carol"
    }

    fn last(&self, room: usize, from: &MemberId) -> Option<u32> {
        self.last_epoch
            .iter()
            .find(|(r, m, _)| *r == room && m == from)
            .map(|e| e.2)
    }

    fn genuine_share(&mut self, w: &World, k: usize) {
        let s = &w.shares[k];
        let removed = self.sent_by_removed(s.room, &s.from);
        let (room, me) = self.at(w, s.room);
        let got = room.receive_share_at(me, &s.bytes, NOW).map(|_| ());
        if removed {
            assert!(
                got.is_err(),
                "genuine share {k} of a removed member accepted"
            );
        } else if self.last(s.room, &s.from).is_some_and(|l| s.epoch <= l) {
            assert_eq!(
                got,
                Err(Error::Replay),
                "genuine share {k}: stale not Replay"
            );
        } else {
            assert_eq!(got, Ok(()), "genuine share {k} refused");
            if let Some(l) = self.last(s.room, &s.from).filter(|l| l + 1 < s.epoch) {
                let prev = w
                    .shares
                    .iter()
                    .position(|p| p.room == s.room && p.from == s.from && p.epoch == l)
                    .unwrap();
                let reached = w
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| m.share == prev && self.decrypted[*i])
                    .map(|(_, m)| m.index + 1)
                    .max()
                    .unwrap_or(0);
                self.capped[prev] = Some(self.capped[prev].map_or(reached, |c| c.min(reached)));
            }
            self.accepted[k] = true;
            self.last_epoch
                .retain(|(r, m, _)| !(*r == s.room && *m == s.from));
            self.last_epoch.push((s.room, s.from.clone(), s.epoch));
        }
    }

    fn genuine_message(&mut self, w: &World, i: usize) {
        let m = &w.messages[i];
        let got = self.rooms[m.room].decrypt_at(&m.bytes, NOW);
        let beyond_end = self.capped[m.share].is_some_and(|c| m.index >= c);
        if self.sent_by_removed(m.room, &m.from) || (beyond_end && !self.decrypted[i]) {
            assert!(
                got.is_err(),
                "message {i} decrypted after its sender's removal or its key's end"
            );
        } else if !self.accepted[m.share] {
            assert_eq!(
                got.map(|_| ()),
                Err(Error::UnknownSenderKey),
                "genuine message {i} without its key"
            );
        } else if self.decrypted[i] {
            assert_eq!(
                got.map(|_| ()),
                Err(Error::Replay),
                "genuine message {i} twice"
            );
        } else {
            let r = got.unwrap_or_else(|e| panic!("genuine message {i} lost: {e:?}"));
            assert_eq!(r.sender, m.from);
            assert_eq!(r.index, m.index);
            assert_eq!(r.plaintext(), &m.plaintext[..]);
            self.decrypted[i] = true;
        }
    }

    /// Any bytes to `decrypt_at`: genuine bytes take the genuine path,
    /// anything else must be refused.
    fn any_message(&mut self, w: &World, room: usize, bytes: &[u8]) {
        if let Some(i) = w
            .messages
            .iter()
            .position(|m| m.room == room && m.bytes == bytes)
        {
            return self.genuine_message(w, i);
        }
        if let Ok(r) = self.rooms[room].decrypt_at(bytes, NOW) {
            panic!(
                "room {room} accepted non-genuine message bytes (index {})",
                r.index
            );
        }
    }

    fn any_share(&mut self, w: &World, room: usize, from: &MemberId, bytes: &[u8]) {
        if let Some(k) = w
            .shares
            .iter()
            .position(|s| s.room == room && s.from == *from && s.bytes == bytes)
        {
            return self.genuine_share(w, k);
        }
        let (r, me) = self.at(w, room);
        let got = r.receive_share_at(me, bytes, NOW).map(|_| ());
        assert!(got.is_err(), "room {room} accepted a non-genuine share");
    }
}

impl Model {
    /// Any bytes to bob's `apply_update`: only the genuine removal may
    /// change the membership, exactly once.
    fn any_update(&mut self, w: &World, bytes: &[u8]) {
        let before = self.rooms[0].digest();
        let (room, me) = self.at(w, 0);
        let got = room.apply_update_with_rng(me, bytes, NOW, &mut VectorRng::new(b"fuzz/update"));
        let after = self.rooms[0].digest();
        match got {
            Ok(a) if !a.duplicate && !a.held => {
                assert!(!self.carol_removed, "the removal applied twice");
                assert!(
                    self.rooms[0].pinned_identity(&member("carol")).is_none(),
                    "an update other than the genuine removal applied"
                );
                self.carol_removed = true;
            }
            Ok(a) => {
                assert!(
                    a.duplicate && self.carol_removed,
                    "held or duplicate: {a:?}"
                );
                assert_eq!(before, after);
            }
            Err(_) => assert_eq!(before, after, "a refused update changed the room"),
        }
    }

    /// Saves room `r`'s changes into its store and replaces it with what
    /// loads back, which must be the same state.
    fn save_load(&mut self, r: usize) {
        let before = secret_chat::testing::room_state(&self.rooms[r]);
        self.rooms[r].save(&mut self.stores[r]).unwrap();
        let id = self.rooms[r].id().clone();
        let loaded = Room::load(&self.stores[r], &id).unwrap().unwrap();
        assert_eq!(
            secret_chat::testing::room_state(&loaded),
            before,
            "room {r} loads back differently"
        );
        self.rooms[r] = loaded;
    }
}

const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "mallory"];

/// The receive path of two rooms (bob in a signed group of three, dave in a
/// pairwise room) fed arbitrary and mutated bytes interleaved with genuine
/// traffic in input-chosen order. Checks: no panic; genuine traffic behaves
/// exactly as the model says (shares accepted unless stale; a message
/// decrypts once its key is in, exactly once); nothing non-genuine is ever
/// accepted; and at the end, after delivering everything again in order,
/// every message whose key share was accepted has been decrypted.
pub(crate) fn receive_path(data: &[u8]) {
    let w = world();
    let store = || {
        secret_chat::store::SealedStore::open(
            secret_chat::store::MemoryStore::new(),
            &storage_key(),
            None,
        )
        .unwrap()
    };
    let mut m = Model {
        rooms: [bob_room(w), dave_room(w)],
        bob: identity("bob"),
        bob_rotated: false,
        carol_removed: false,
        bundle_adopted: false,
        capped: vec![None; w.shares.len()],
        stores: [store(), store()],
        accepted: vec![false; w.shares.len()],
        last_epoch: Vec::new(),
        decrypted: vec![false; w.messages.len()],
    };
    let mut c = Cursor(data);
    for _ in 0..MAX_OPS {
        let Some(op) = c.byte() else { break };
        match op % OPS {
            OP_SHARE => {
                let k = usize::from(c.b()) % w.shares.len();
                m.genuine_share(w, k);
            }
            OP_MESSAGE => {
                let i = usize::from(c.b()) % w.messages.len();
                m.genuine_message(w, i);
            }
            OP_RAW_MESSAGE => {
                let room = usize::from(c.b() % 2);
                let len = usize::from(c.b()) * 4 % MAX_RAW;
                let bytes = c.take(len);
                m.any_message(w, room, &bytes);
            }
            OP_RAW_SHARE => {
                let room = usize::from(c.b() % 2);
                let from = member(NAMES[usize::from(c.b()) % NAMES.len()]);
                let len = usize::from(c.b()) * 4 % MAX_RAW;
                let bytes = c.take(len);
                m.any_share(w, room, &from, &bytes);
            }
            OP_MUTATE_MESSAGE => {
                let i = usize::from(c.b()) % w.messages.len();
                let j = (i + 1) % w.messages.len();
                let g = &w.messages[i];
                let bytes = mutate(&g.bytes, &w.messages[j].bytes, &mut c);
                m.any_message(w, g.room, &bytes);
            }
            OP_MUTATE_SHARE => {
                let k = usize::from(c.b()) % w.shares.len();
                let j = (k + 1) % w.shares.len();
                let g = &w.shares[k];
                let bytes = mutate(&g.bytes, &w.shares[j].bytes, &mut c);
                m.any_share(w, g.room, &g.from, &bytes);
            }
            OP_REFLECTED => {
                let got = m.rooms[0].decrypt_at(&w.reflected, NOW).map(|_| ());
                assert_eq!(got, Err(Error::Reflected));
            }
            OP_UPDATE => m.any_update(w, &w.remove_carol),
            OP_MUTATE_UPDATE => {
                let bytes = mutate(&w.remove_carol, &w.shares[0].bytes, &mut c);
                m.any_update(w, &bytes);
            }
            OP_RAW_UPDATE => {
                let len = usize::from(c.b()) * 4 % MAX_RAW;
                let bytes = c.take(len);
                m.any_update(w, &bytes);
            }
            OP_ROTATE_SHARE_KEYS => {
                // Once, a day later: the grace keeps the superseded key, so
                // every genuine share (sealed to it) still opens.
                if !m.bob_rotated {
                    m.bob
                        .rotate_share_keys_at(1_700_086_400, &mut VectorRng::new(b"fuzz/bob-keys"))
                        .unwrap();
                    m.bob_rotated = true;
                }
            }
            OP_BUNDLE => {
                let (room, me) = m.at(w, 0);
                let got = room.update_member_bundle_with_rng(
                    me,
                    &member("alice"),
                    &w.alice_rotated_bundle,
                    NOW,
                    &mut VectorRng::new(b"fuzz/bundle"),
                );
                if m.bundle_adopted {
                    assert_eq!(got.map(|_| ()), Err(Error::StaleShareKey));
                } else {
                    assert!(got.is_ok(), "alice's rotated bundle refused: {got:?}");
                    m.bundle_adopted = true;
                }
            }
            _ => {
                let r = usize::from(c.b() % 2);
                m.save_load(r);
            }
        }
    }
    // Nothing lost: deliver every share, then every message, in order.
    for k in 0..w.shares.len() {
        m.genuine_share(w, k);
    }
    for i in 0..w.messages.len() {
        m.genuine_message(w, i);
    }
    for (i, g) in w.messages.iter().enumerate() {
        if m.sent_by_removed(g.room, &g.from) || m.capped[g.share].is_some_and(|c| g.index >= c) {
            assert!(!m.decrypted[i] || m.accepted[g.share]);
            continue;
        }
        assert_eq!(
            m.decrypted[i], m.accepted[g.share],
            "message {i}: decrypted iff its key share was accepted"
        );
    }
    // And the state survives a save and a load at the end.
    m.save_load(0);
    m.save_load(1);
    assert!(m.rooms.iter().all(|r| r.missing().is_empty()), "gaps left");
}

// ---------------------------------------------------------------------------
// Stored state and scannable payload.
// ---------------------------------------------------------------------------

/// The storage key every stored-state input is sealed under.
const STORAGE_KEY: [u8; 32] = [0x5c; 32];
const STORAGE_KIND_IDENTITY: u8 = 1;
const STORAGE_KIND_ROOM: u8 = 2;

fn storage_key() -> StorageKey {
    StorageKey::from_bytes(STORAGE_KEY)
}

/// The RNG whose first 12 bytes are the nonce `seal_state` uses, so that a
/// re-export with it reproduces the sealed blob exactly.
fn nonce_rng() -> VectorRng {
    VectorRng::new(b"fuzz/storage-nonce")
}

/// Seals `plaintext` in a storage envelope (docs/PROTOCOL.md section 7) with
/// the raw primitives, so the fuzzer reaches the state parsers behind the tag.
pub(crate) fn seal_state(kind: u8, plaintext: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    use rand_core::Rng;
    let mut nonce = [0u8; 12];
    nonce_rng().fill_bytes(&mut nonce);
    let mut blob = vec![1u8, kind];
    blob.extend_from_slice(&nonce);
    let mut aad = b"secret-chat/v1/storage".to_vec();
    aad.extend_from_slice(&blob);
    let cipher = Aes256Gcm::new(&STORAGE_KEY.into());
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    blob.extend_from_slice(&ct);
    blob
}

/// Opens a blob sealed under `STORAGE_KEY` (for the seeds).
fn open_state(blob: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit};
    let (header, ct) = blob.split_at(14);
    let mut aad = b"secret-chat/v1/storage".to_vec();
    aad.extend_from_slice(header);
    let nonce: [u8; 12] = header[2..].try_into().unwrap();
    Aes256Gcm::new(&STORAGE_KEY.into())
        .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
        .unwrap()
}

/// `stored_state`: the first byte picks the input's shape. 0: raw bytes as a
/// blob (the envelope parser; a wrong tag must be `StorageDecrypt`). 1: a room
/// plaintext and 2: an identity plaintext, sealed here under the known key so
/// the state parsers see arbitrary content. Anything that imports must export
/// back to the same bytes, and a rejected blob is a typed error, never a panic.
pub(crate) fn stored_state(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let key = storage_key();
    match which % 3 {
        0 => {
            let _ = Room::import(rest, &key);
            let _ = IdentityKeyPair::import(rest, &key);
        }
        1 => {
            let blob = seal_state(STORAGE_KIND_ROOM, rest);
            if let Ok(room) = Room::import(&blob, &key) {
                assert_eq!(room.export_with_rng(&key, &mut nonce_rng()).unwrap(), blob);
            }
            assert!(
                IdentityKeyPair::import(&blob, &key).is_err(),
                "a room blob is no identity"
            );
        }
        _ => {
            let blob = seal_state(STORAGE_KIND_IDENTITY, rest);
            if let Ok(id) = IdentityKeyPair::import(&blob, &key) {
                assert_eq!(id.export_with_rng(&key, &mut nonce_rng()).unwrap(), blob);
            }
        }
    }
}

/// The genuine pair for `scannable_payload`: bob's phone verifying alice.
fn verification() -> (PairVerification, PairVerification) {
    let w = world();
    let fa = Fingerprint::compute(&member("alice"), w.alice.public());
    let fb = Fingerprint::compute(&member("bob"), w.bob.public());
    (PairVerification::new(fb, fa), PairVerification::new(fa, fb))
}

/// `scannable_payload`: parsing is total and canonical, and `verify_scanned`
/// on bob's phone accepts exactly alice's genuine payload.
pub(crate) fn scannable_payload(data: &[u8]) {
    static PAIR: OnceLock<(PairVerification, PairVerification)> = OnceLock::new();
    let (on_bob, on_alice) = PAIR.get_or_init(verification);
    if let Ok(p) = ScannablePayload::from_bytes(data) {
        assert_eq!(&p.to_bytes()[..], data);
    }
    let genuine = on_alice.payload().to_bytes();
    assert_eq!(on_bob.verify_scanned(data).is_ok(), data == genuine);
}

/// `key_image`: the picture decoders (PNG with the frame locator, SVG,
/// terminal; the first byte picks one) are total, and whatever they decode
/// survives a render and decode again unchanged.
pub(crate) fn key_image(data: &[u8]) {
    let Some((sel, rest)) = data.split_first() else {
        return;
    };
    let decoded = match sel % 3 {
        0 => secret_chat::KeyImage::decode_png(rest).ok(),
        1 => std::str::from_utf8(rest)
            .ok()
            .and_then(|t| secret_chat::KeyImage::decode_svg(t).ok()),
        _ => std::str::from_utf8(rest)
            .ok()
            .and_then(|t| secret_chat::KeyImage::decode_terminal(t).ok()),
    };
    if let Some(image) = decoded {
        let again = secret_chat::KeyImage::decode_svg(&image.render_svg()).expect("re-decode");
        assert_eq!(
            again, image,
            "key image: decode then render changed the picture"
        );
    }
}

/// The ids' text form (`FromStr`) and byte constructors: total, and one text
/// form per id (whatever parses prints back as the same text; every id's
/// text parses back to the same id).
pub(crate) fn id_text(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<RoomId>() {
            assert_eq!(id.to_string(), text);
        }
        if let Ok(id) = text.parse::<MemberId>() {
            assert_eq!(id.to_string(), text);
        }
        if let Ok(id) = text.parse::<SenderKeyId>() {
            assert_eq!(id.to_string(), text);
        }
    }
    if let Ok(id) = MemberId::new(data) {
        assert_eq!(id.to_string().parse::<MemberId>().unwrap(), id);
    }
    if let Ok(id) = RoomId::try_from(data) {
        assert_eq!(id.to_string().parse::<RoomId>().unwrap(), id);
    }
    if let Ok(id) = SenderKeyId::try_from(data) {
        assert_eq!(id.to_string().parse::<SenderKeyId>().unwrap(), id);
    }
}

/// Seeds for `id_text`: each kind of text form, and bytes that are not text.
fn id_text_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let seeds: [(&str, &[u8]); 7] = [
        ("text", b"alice@example.org"),
        ("hex", b"0xff00"),
        ("hex-of-text", b"0x616c696365"),
        ("empty-hex", b"0x"),
        ("sender-key-id", b"000102030405060708090a0b0c0d0e0f"),
        ("spaces", b" a b "),
        ("not-utf8", &[0xff, 0xfe, 0x00, 0x0a]),
    ];
    for (name, bytes) in seeds {
        out.push(("id_text", name.into(), bytes.to_vec()));
    }
}

/// Seeds for the two targets above.
fn storage_and_payload_seeds(w: &World, out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let key = storage_key();
    let (room, _) = join(&w.bob, "bob", b"group", &w.group_welcome, b"fuzz/seed-room");
    let mut room = room;
    for s in w.shares.iter().filter(|s| s.room == 0) {
        let _ = room.receive_share_at(&w.bob, &s.bytes, NOW);
    }
    for m in w.messages.iter().filter(|m| m.room == 0).skip(1).step_by(2) {
        let _ = room.decrypt_at(&m.bytes, NOW);
    }
    let room_plain = open_state(&room.export_with_rng(&key, &mut nonce_rng()).unwrap());
    let id_plain = open_state(&w.bob.export_with_rng(&key, &mut nonce_rng()).unwrap());
    for (name, which, plain) in [("room", 1u8, &room_plain), ("identity", 2u8, &id_plain)] {
        let mut v = vec![which];
        v.extend_from_slice(plain);
        out.push(("stored_state", format!("sealed-{name}"), v));
    }
    let mut raw = vec![0u8];
    raw.extend_from_slice(&room.export_with_rng(&key, &mut nonce_rng()).unwrap());
    out.push(("stored_state", "blob-room".into(), raw));
    let mut rt = vec![3u8];
    rt.extend_from_slice(&room_plain);
    out.push(("round_trip", "stored-room".into(), rt));
    let (on_bob, on_alice) = verification();
    out.push((
        "scannable_payload",
        "genuine".into(),
        on_alice.payload().to_bytes().to_vec(),
    ));
    out.push((
        "scannable_payload",
        "own".into(),
        on_bob.payload().to_bytes().to_vec(),
    ));
    let mut rt = vec![4u8];
    rt.extend_from_slice(&on_alice.payload().to_bytes());
    out.push(("round_trip", "payload".into(), rt));
    let image = on_alice.image();
    let mut png = vec![0u8];
    png.extend_from_slice(&image.render_png(2).unwrap());
    // The genuine renderings decode (the target is not vacuous).
    assert_eq!(secret_chat::KeyImage::decode_png(&png[1..]).unwrap(), image);
    out.push(("key_image", "png".into(), png));
    let mut svg = vec![1u8];
    svg.extend_from_slice(image.render_svg().as_bytes());
    out.push(("key_image", "svg".into(), svg));
    let mut term = vec![2u8];
    term.extend_from_slice(
        image
            .render_terminal(secret_chat::TerminalMode::Plain)
            .as_bytes(),
    );
    out.push(("key_image", "terminal".into(), term));
}

// ---------------------------------------------------------------------------
// Membership log.
// ---------------------------------------------------------------------------

pub(crate) struct MembershipWorld {
    pub(crate) room: RoomId,
    pub(crate) genesis: Genesis,
    /// The genesis plus the first genuine operation.
    pub(crate) state: Membership,
    /// Every genuine operation (the first one is already in `state`).
    pub(crate) ops: Vec<Vec<u8>>,
    /// The log after all of them.
    pub(crate) log: Vec<u8>,
}

fn build_membership_world() -> MembershipWorld {
    let w = world();
    let room = RoomId::new(b"fuzz-membership").unwrap();
    let key = IdentityKey::of;
    let genesis = Genesis::create(
        &w.alice,
        &room,
        2,
        RoomPolicy::default(),
        &member("alice"),
        &[
            (member("alice"), key(&w.alice)),
            (member("bob"), key(&w.bob)),
            (member("carol"), key(&w.carol)),
        ],
        &[],
    )
    .unwrap();
    let mut at_alice = Membership::new(genesis.clone());
    let mut at_bob = Membership::new(genesis.clone());
    let add = at_bob.add(&w.bob, &member("dave"), &key(&w.dave)).unwrap();
    let leave = at_bob.leave(&w.carol).unwrap();
    let remove = at_alice.remove(&w.alice, &member("bob")).unwrap();
    let ops: Vec<Vec<u8>> = [&add, &leave, &remove]
        .iter()
        .map(|o| o.bytes().to_vec())
        .collect();
    at_alice.receive(&ops[0]).unwrap();
    at_alice.receive(&ops[1]).unwrap();
    let state = {
        let mut m = Membership::new(genesis.clone());
        m.receive(&ops[0]).unwrap();
        m
    };
    MembershipWorld {
        room,
        genesis,
        state,
        ops,
        log: at_alice.to_log(),
    }
}

pub(crate) fn membership_world() -> &'static MembershipWorld {
    static W: OnceLock<MembershipWorld> = OnceLock::new();
    W.get_or_init(build_membership_world)
}

fn membership_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let mw = membership_world();
    let with = |sel: u8, b: &[u8]| {
        let mut v = vec![sel];
        v.extend_from_slice(b);
        v
    };
    out.push((
        "membership",
        "genesis".into(),
        with(0, mw.genesis.as_bytes()),
    ));
    for (i, op) in mw.ops.iter().enumerate() {
        out.push(("membership", format!("op-{i}"), with(1, op)));
    }
    out.push(("membership", "log".into(), with(2, &mw.log)));
    let mut script = vec![3u8];
    for op in mw.ops.iter().rev() {
        script.extend_from_slice(&(op.len() as u16).to_be_bytes());
        script.extend_from_slice(op);
    }
    out.push(("membership", "ops-reversed".into(), script));
}

/// The membership decoders. First byte: 0 genesis, 1 one operation
/// received by a state holding the genesis and one operation, 2 a log
/// (welcome), 3 a script of `u16`-length-prefixed operations received in
/// turn. Must hold: total; accepted genesis / operation / log bytes
/// re-encode to themselves; a refused operation leaves the state exactly as
/// it was; only genuine operations are ever applied; the incrementally
/// maintained membership equals the one computed from scratch.
pub(crate) fn membership(data: &[u8]) {
    let mw = membership_world();
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => {
            if let Ok(g) = Genesis::from_bytes(rest, &mw.room) {
                assert_eq!(g.as_bytes(), rest, "genesis: not canonical");
            }
        }
        1 => {
            if let Ok(op) = Operation::from_bytes(rest, &mw.genesis.id()) {
                assert_eq!(op.bytes(), rest, "operation: not canonical");
            }
            let mut m = mw.state.clone();
            receive_checked(&mut m, rest);
        }
        2 => {
            if let Ok(m) = Membership::from_log(rest, &mw.room) {
                assert_eq!(m.to_log(), rest, "log: not canonical");
                assert!(m.self_check());
                assert!(m.op_count() <= mw.ops.len());
            }
        }
        _ => {
            let mut m = mw.state.clone();
            let mut r = rest;
            for _ in 0..16 {
                let [a, b, tail @ ..] = r else { break };
                let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
                let (op, next) = tail.split_at(n);
                receive_checked(&mut m, op);
                r = next;
            }
        }
    }
}

fn receive_checked(m: &mut Membership, op: &[u8]) {
    let mw = membership_world();
    let (digest, count, pending) = (m.digest(), m.op_count(), m.pending_count());
    match m.receive(op) {
        Ok(_) => {
            assert!(
                m.self_check(),
                "incremental state differs from the merge rule"
            );
            if m.op_count() > count {
                assert!(mw.ops.iter().any(|g| g == op) || pending > 0);
            }
        }
        Err(_) => {
            assert_eq!(m.digest(), digest);
            assert_eq!((m.op_count(), m.pending_count()), (count, pending));
        }
    }
}

// ---------------------------------------------------------------------------
// Records and stores (protocol v2 state at rest).
// ---------------------------------------------------------------------------

/// The names `record_store` scripts pick from (by index modulo the length).
fn record_names() -> Vec<secret_chat::record::RecordKey> {
    use secret_chat::labels::*;
    use secret_chat::record::RecordKey;
    vec![
        RecordKey::new(RECORD_KIND_META, b"", b"").unwrap(),
        RecordKey::new(RECORD_KIND_IDENTITY, b"", b"").unwrap(),
        RecordKey::new(RECORD_KIND_ROOM_CORE, b"room", b"").unwrap(),
        RecordKey::new(RECORD_KIND_MEMBERSHIP_LOG, b"room", b"").unwrap(),
        RecordKey::new(RECORD_KIND_OUTBOUND_KEY, b"room", b"").unwrap(),
        RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"room", b"bob").unwrap(),
        RecordKey::new(RECORD_KIND_INBOUND_KEYS, b"other", b"bob").unwrap(),
    ]
}

fn record_nonce_rng() -> VectorRng {
    VectorRng::new(b"fuzz/record-nonce")
}

/// A genuine store: three commits over the record names, sealed with
/// `record_nonce_rng`.
fn genuine_record_store() -> secret_chat::store::MemoryStore {
    use secret_chat::store::{Changes, MemoryStore, SealedStore};
    let names = record_names();
    let mut store = SealedStore::open(MemoryStore::new(), &storage_key(), None).unwrap();
    let mut rng = record_nonce_rng();
    for round in 0..3u8 {
        let mut c = Changes::new();
        for (i, n) in names.iter().enumerate().skip(1) {
            if (i + usize::from(round)) % 3 != 0 {
                c.put(n.clone(), vec![round; i * 5]).unwrap();
            } else if round == 2 {
                c.delete(n.clone()).unwrap();
            }
        }
        store.commit_with_rng(&c, &mut rng).unwrap();
    }
    store.into_backend()
}

/// `record_store`: the first byte picks the input's shape.
/// 0: raw bytes as an envelope, opened under every name (the envelope
/// parser): total; whatever opens re-seals to the same bytes under the same
/// nonce. 1: a script of raw rows `(name index u8, len u8, bytes)` written
/// into a genuine store's backend, then the store opened and every record
/// read: total, typed errors; if it opens, a commit works and reopens.
/// 2: arbitrary meta-record plaintext sealed under the known key into an
/// empty store: it opens exactly when the plaintext is 40 zero bytes.
pub(crate) fn record_store(data: &[u8]) {
    use secret_chat::record::{RecordHeader, RecordSealer};
    use secret_chat::store::{Changes, MemoryStore, SealedStore, Store};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let key = storage_key();
    let names = record_names();
    match which % 3 {
        0 => {
            let _ = RecordHeader::parse(rest);
            let sealer = RecordSealer::new(&key);
            for n in &names {
                if let Ok(opened) = sealer.open(n, rest) {
                    let mut rng = record_nonce_rng();
                    let mut nonce = [0u8; 12];
                    rand_core::Rng::fill_bytes(&mut rng, &mut nonce);
                    if rest.get(10..22) == Some(&nonce[..]) {
                        let again = sealer
                            .seal_with_rng(
                                n,
                                opened.generation,
                                &opened.plaintext,
                                &mut record_nonce_rng(),
                            )
                            .unwrap();
                        assert_eq!(again, rest);
                    }
                }
            }
        }
        1 => {
            let mut backend = genuine_record_store();
            let mut r = rest;
            while let [idx, len, tail @ ..] = r {
                let len = usize::from(*len).min(tail.len());
                let (bytes, after) = tail.split_at(len);
                let name = names[usize::from(*idx) % names.len()].clone();
                if *idx >= 128 {
                    backend.delete(name).unwrap();
                } else {
                    backend.put(name, bytes.to_vec()).unwrap();
                }
                r = after;
            }
            if let Ok(mut store) = SealedStore::open(backend, &key, None) {
                for n in names.iter().skip(1) {
                    let _ = store.get(n);
                }
                let g = store.generation();
                let mut c = Changes::new();
                c.put(names[2].clone(), b"after".to_vec()).unwrap();
                assert_eq!(store.commit(&c).unwrap(), g + 1);
                let store = SealedStore::open(store.into_backend(), &key, Some(g + 1)).unwrap();
                assert_eq!(&store.get(&names[2]).unwrap().unwrap()[..], b"after");
            }
        }
        _ => {
            let sealer = RecordSealer::new(&key);
            let env = sealer
                .seal_with_rng(&names[0], 5, rest, &mut record_nonce_rng())
                .unwrap();
            let mut backend = MemoryStore::new();
            backend.put(names[0].clone(), env).unwrap();
            let opened = SealedStore::open(backend, &key, None);
            assert_eq!(opened.is_ok(), rest == [0u8; 40], "{opened:?}");
        }
    }
}

fn record_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    use secret_chat::store::Store;
    let backend = genuine_record_store();
    let mut i = 0;
    backend
        .scan(&mut |name, _| {
            let mut v = vec![0u8];
            v.extend_from_slice(&backend.get(&name).unwrap().unwrap());
            out.push(("record_store", format!("envelope-{i}"), v));
            i += 1;
            Ok(())
        })
        .unwrap();
    out.push(("record_store", "script-empty".into(), vec![1]));
    out.push((
        "record_store",
        "script-rows".into(),
        vec![1, 2, 4, 2, 3, 0, 0, 200, 0, 5, 30, 9, 9],
    ));
    let mut meta = vec![2u8];
    meta.extend_from_slice(&[0; 40]);
    out.push(("record_store", "meta-empty".into(), meta));
}

// ---------------------------------------------------------------------------
// room_records: a room and an identity loaded from the records of a store.
// ---------------------------------------------------------------------------

/// The room id every `room_records` input is loaded as.
const RECORDS_ROOM: &[u8] = b"group";

/// Encodes records for `room_records`: per record `kind u8 | u8 len key |
/// key | u16 len plaintext | plaintext` (the room is [`RECORDS_ROOM`],
/// except for the identity record, which is device-wide).
fn encode_records(changes: &secret_chat::store::Changes) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, op) in changes.ops() {
        let Some(pt) = op else { continue };
        v.push(name.kind());
        v.push(name.key().len() as u8);
        v.extend_from_slice(name.key());
        v.extend_from_slice(&(pt.len() as u16).to_be_bytes());
        v.extend_from_slice(pt);
    }
    v
}

/// `room_records`: the records are sealed into a fresh store (so every
/// tag is right and only the plaintexts are the fuzzer's), then the room
/// and the identity are loaded. Loading is total; a room that loads writes
/// nothing when saved, and saved whole into another store it loads back as
/// exactly the same state.
pub(crate) fn room_records(data: &[u8]) {
    use secret_chat::labels::RECORD_KIND_IDENTITY;
    use secret_chat::record::RecordKey;
    use secret_chat::store::{Changes, MemoryStore, SealedStore};
    let key = storage_key();
    let mut changes = Changes::new();
    let mut rest = data;
    while let [kind, klen, tail @ ..] = rest {
        let klen = usize::from(*klen);
        if tail.len() < klen + 2 {
            break;
        }
        let (k, tail) = tail.split_at(klen);
        let len = usize::from(u16::from_be_bytes([tail[0], tail[1]]));
        let tail = &tail[2..];
        let take = len.min(tail.len());
        let room: &[u8] = if *kind == RECORD_KIND_IDENTITY {
            b""
        } else {
            RECORDS_ROOM
        };
        if let Ok(name) = RecordKey::new(*kind, room, k) {
            let _ = changes.put(name, tail[..take].to_vec());
        }
        rest = &tail[take..];
    }
    let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    if store.commit_with_rng(&changes, &mut nonce_rng()).is_err() {
        return;
    }
    let _ = IdentityKeyPair::load(&store);
    let id = RoomId::new(RECORDS_ROOM).unwrap();
    let Ok(Some(mut room)) = Room::load(&store, &id) else {
        return;
    };
    assert!(room.changes().unwrap().is_empty(), "a loaded room is saved");
    let g = store.generation();
    assert_eq!(room.save(&mut store).unwrap(), g);
    let state = secret_chat::testing::room_state(&room);
    let mut copy = Room::import(&room.export_with_rng(&key, &mut nonce_rng()).unwrap(), &key)
        .expect("a loaded room exports and imports");
    let mut other = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    copy.save(&mut other).unwrap();
    let again = Room::load(&other, &id).unwrap().expect("saved, so present");
    assert_eq!(secret_chat::testing::room_state(&again), state);
    // The loaded room works: a genuine message of the group is decrypted
    // or refused, never a panic.
    for m in world().messages.iter().filter(|m| m.room == 0).take(2) {
        let _ = room.decrypt_at(&m.bytes, NOW);
    }
}

fn room_record_seeds(w: &World, out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let key = storage_key();
    let (room, _) = join(
        &w.bob,
        "bob",
        b"group",
        &w.group_welcome,
        b"fuzz/seed-records",
    );
    let mut room = room;
    for s in w.shares.iter().filter(|s| s.room == 0) {
        let _ = room.receive_share_at(&w.bob, &s.bytes, NOW);
    }
    for m in w.messages.iter().filter(|m| m.room == 0).skip(1).step_by(2) {
        let _ = room.decrypt_at(&m.bytes, NOW);
    }
    let fresh = Room::import(&room.export_with_rng(&key, &mut nonce_rng()).unwrap(), &key).unwrap();
    let mut all = fresh.changes().unwrap();
    out.push(("room_records", "room".into(), encode_records(&all)));
    all.extend(w.bob.changes().unwrap());
    out.push((
        "room_records",
        "room-and-identity".into(),
        encode_records(&all),
    ));
    out.push((
        "room_records",
        "identity".into(),
        encode_records(&w.bob.changes().unwrap()),
    ));
}
