//! Check of the `key_request` target: the key-request parser (total,
//! canonical) and the owner's answer (only a genuine request is answered; a
//! refused one leaves the room unchanged).

use std::sync::OnceLock;

use secret_chat::testing::VectorRng;
use secret_chat::{Error, KeyRequest, KeyRequestAnswer, Room};

use super::{NOW, World, create, join, member, world};

/// Genuine requests of bob and carol (whose rooms never got alice's share)
/// for alice's epoch-0 key, built once per process.
pub(crate) fn genuine() -> &'static [Vec<u8>] {
    static G: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    G.get_or_init(|| {
        let w = world();
        let alice_message = &w.messages[0].bytes;
        [
            (&w.bob, "bob", b"fuzz/bob-room".as_slice()),
            (&w.carol, "carol", b"fuzz/carol-room".as_slice()),
        ]
        .into_iter()
        .map(|(id, name, seed)| {
            let (room, _) = join(id, name, b"group", &w.group_welcome, seed);
            room.request_key_at(id, &member("alice"), alice_message, NOW)
                .unwrap()
                .bytes
        })
        .collect()
    })
}

/// Alice's room at epoch 0, as when the world's first messages were sent.
fn alice_room(w: &World) -> Room {
    create(
        &w.alice,
        "alice",
        b"group",
        &w.group_members,
        b"fuzz/alice-room",
    )
    .0
}

/// Parse -> encode gives the same bytes (also a `round_trip` case).
pub(crate) fn round_trip(data: &[u8]) {
    match KeyRequest::from_bytes(data) {
        Ok(r) => {
            assert_eq!(r.to_bytes(), data);
            assert_eq!(KeyRequest::from_bytes(&r.to_bytes()).unwrap(), r);
        }
        Err(e) => assert!(matches!(e, Error::Malformed(_)), "{e:?}"),
    }
}

/// `key_request`: total and canonical; alice's room answers exactly the
/// genuine requests (with a re-share), refuses everything else with a typed
/// error, and is unchanged by a refusal (the genuine request is still
/// answered after it).
pub(crate) fn key_request(data: &[u8]) {
    round_trip(data);
    if KeyRequest::from_bytes(data).is_err() {
        return;
    }
    let w = world();
    let genuine = genuine();
    let mut room = alice_room(w);
    let answer =
        room.answer_key_request_with_rng(&w.alice, data, NOW, &mut VectorRng::new(b"fuzz/answer"));
    if genuine.iter().any(|g| g == data) {
        assert!(
            matches!(answer, Ok(KeyRequestAnswer::Reshared { .. })),
            "{answer:?}"
        );
    } else {
        assert!(answer.is_err(), "forged request answered: {answer:?}");
        let again = room.answer_key_request_with_rng(
            &w.alice,
            &genuine[0],
            NOW,
            &mut VectorRng::new(b"fuzz/answer"),
        );
        assert!(
            matches!(again, Ok(KeyRequestAnswer::Reshared { .. })),
            "{again:?}"
        );
    }
}

/// Seeds: the genuine requests, one cut short, one with a flipped bit.
pub(crate) fn seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    for (i, g) in genuine().iter().enumerate() {
        out.push(("key_request", format!("genuine-{i}"), g.clone()));
        let mut rt = vec![5u8];
        rt.extend_from_slice(g);
        out.push(("round_trip", format!("key-request-{i}"), rt));
    }
    let g = &genuine()[0];
    out.push(("key_request", "truncated".into(), g[..g.len() - 1].to_vec()));
    let mut flipped = g.clone();
    flipped[g.len() - 70] ^= 1;
    out.push(("key_request", "flipped-time".into(), flipped));
}
