//! Criterion benchmarks of `secret-chat`, in their own workspace member so the
//! library's dev-dependencies stay light. The benches are the `[[bench]]`
//! targets beside this file; this empty library only gives the package a
//! primary target, and the room builder the state benches share. Run them with `cargo bench -p secret-chat-benches`.

use secret_chat::room::RotationPolicy;
use secret_chat::testing::VectorRng;
use secret_chat::{
    IdentityKeyPair, MemberId, OutboundSenderKey, Recipient, Room, RoomId, RoomOptions,
    SenderKeyMode, Suite, seal_shares_with_rng,
};

/// A room of `members` members (X-Wing) as its creator sees it: every
/// other member's share key pinned, and one received sender key per other
/// member with three skipped message keys each.
pub struct BigRoom {
    /// The creator's room.
    pub room: Room,
    /// The creator's identity.
    pub me: IdentityKeyPair,
    /// Member 1's sender key, to make more messages for the creator.
    pub sender: OutboundSenderKey,
}

/// Builds a [`BigRoom`] (deterministic: every key from fixed seeds).
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)]
pub fn big_room(members: usize) -> BigRoom {
    let mut rng = VectorRng::new(b"bench storage");
    let ids: Vec<IdentityKeyPair> = (0..members)
        .map(|_| IdentityKeyPair::generate_with_rng(&mut rng))
        .collect();
    let names: Vec<MemberId> = (0..members)
        .map(|i| MemberId::new(format!("member-{i:04}@example.org").as_bytes()).unwrap())
        .collect();
    let entries: Vec<_> = names
        .iter()
        .cloned()
        .zip(ids.iter().map(|k| k.bundle()))
        .collect();
    let room_id = RoomId::new(b"bench-big-room").unwrap();
    let (mut room, _) = Room::create_with_rng(
        &ids[0],
        room_id.clone(),
        names[0].clone(),
        &entries,
        &RoomOptions {
            suite: Suite::XWing,
            rotation: RotationPolicy::default(),
            ..Default::default()
        },
        1_000,
        &mut rng,
    )
    .unwrap();
    let mode = if members == 2 {
        SenderKeyMode::Pairwise
    } else {
        SenderKeyMode::Signed
    };
    let mut sender = None;
    for i in 1..members {
        let instance = *room.membership().instance_of(&names[i]).unwrap().as_bytes();
        let binding = secret_chat::testing::sender_key_binding(
            &room_id,
            &ids[i].public().to_bytes(),
            &instance,
            0,
        );
        let mut out =
            OutboundSenderKey::new_with_rng(room_id.clone(), 0, mode, binding, 0, &mut rng);
        let b0 = ids[0].bundle();
        let share = seal_shares_with_rng(
            &ids[i],
            &room_id,
            Suite::XWing,
            0,
            &instance,
            &out.share(),
            &[Recipient::new(
                b0.identity(),
                b0.share_key(Suite::XWing).unwrap(),
            )],
            &mut rng,
        )
        .unwrap();
        room.receive_share_at(&ids[0], &share[0].to_bytes(), 1_000)
            .unwrap();
        let mut last = Vec::new();
        for _ in 0..4 {
            last = out.encrypt(b"hello").unwrap();
        }
        room.decrypt_at(&last, 1_000).unwrap();
        if i == 1 {
            sender = Some(out);
        }
    }
    let me = ids.into_iter().next().unwrap();
    BigRoom {
        room,
        me,
        sender: sender.unwrap(),
    }
}

/// Runs `f` about `pad` bytes deeper in the stack (nested frames of 64
/// bytes), so that successive samples see the callee at different stack
/// addresses (Ed25519 verification moves by up to 30% with the stack
/// position of the call on these machines).
pub fn with_stack_offset(pad: usize, mut f: impl FnMut()) {
    nest(pad / 64, &mut f);
}

#[inline(never)]
fn nest(depth: usize, f: &mut dyn FnMut()) {
    let frame = [0u8; 64];
    std::hint::black_box(&frame);
    if depth == 0 { f() } else { nest(depth - 1, f) }
}
