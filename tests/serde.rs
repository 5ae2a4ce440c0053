//! The optional `serde` support (feature `serde`): every value type travels
//! as its canonical encoding (lowercase hex, or the suite byte) and comes
//! back only through the same strict parser as the bytes.
#![cfg(all(feature = "serde", not(target_arch = "wasm32")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secret_chat::testing::VectorRng;
use secret_chat::{
    DeviceBundle, Fingerprint, IdentityKeyPair, MemberId, PairVerification, RoomDigest,
    ScannablePayload, ShareKeyPolicy, Suite,
};
use serde::de::DeserializeOwned;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

/// The deserialization error's message, which must name the parser's error.
fn refused<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
    serde_json::from_str::<T>(text).unwrap_err().to_string()
}

#[test]
fn fingerprints_and_digests_are_their_hex() {
    let fp = Fingerprint::from_bytes([0xab; 32]);
    let text = json(&fp);
    assert_eq!(text, format!("\"{}\"", "ab".repeat(32)));
    assert_eq!(serde_json::from_str::<Fingerprint>(&text).unwrap(), fp);

    let digest = RoomDigest::from_bytes([7; 32]);
    let text = json(&digest);
    assert_eq!(text, format!("\"{}\"", "07".repeat(32)));
    assert_eq!(serde_json::from_str::<RoomDigest>(&text).unwrap(), digest);
}

#[test]
fn hex_is_strict_and_canonical() {
    // Upper case is another spelling of the same bytes: refused.
    assert!(
        refused::<Fingerprint>(&format!("\"{}\"", "AB".repeat(32))).contains("invalid field value")
    );
    // Odd length, a non-hex character, an empty string.
    assert!(
        refused::<Fingerprint>(&format!("\"{}a\"", "ab".repeat(31)))
            .contains("invalid field value")
    );
    assert!(
        refused::<Fingerprint>(&format!("\"{}zz\"", "ab".repeat(31)))
            .contains("invalid field value")
    );
    assert!(refused::<Fingerprint>("\"\"").contains("empty"));
    // Wrong lengths get the same errors as the byte parsers.
    assert!(refused::<Fingerprint>(&format!("\"{}\"", "ab".repeat(31))).contains("truncated"));
    assert!(refused::<RoomDigest>(&format!("\"{}\"", "ab".repeat(33))).contains("limit"));
    // Not a string at all.
    assert!(serde_json::from_str::<Fingerprint>("[1,2,3]").is_err());
}

#[test]
fn over_long_input_is_refused_before_decoding() {
    // Far over the limit, and not even hex: the length check comes first.
    let text = format!("\"{}\"", "z".repeat(10_000));
    assert!(refused::<DeviceBundle>(&text).contains("limit"));
}

#[test]
fn scannable_payload_goes_through_its_parser() {
    let (a, b) = (
        Fingerprint::from_bytes([1; 32]),
        Fingerprint::from_bytes([2; 32]),
    );
    let payload = ScannablePayload::new(a, b);
    let text = json(&payload);
    assert_eq!(text, format!("\"{}\"", hex(&payload.to_bytes())));
    assert_eq!(
        serde_json::from_str::<ScannablePayload>(&text).unwrap(),
        payload
    );
    // A wrong version byte is refused, as by `ScannablePayload::from_bytes`.
    let mut bytes = payload.to_bytes();
    bytes[0] = 0x7f;
    let err = refused::<ScannablePayload>(&format!("\"{}\"", hex(&bytes)));
    assert!(err.contains("version"), "{err}");
    // A wrong suite byte too.
    let mut bytes = payload.to_bytes();
    bytes[1] = 0x7f;
    let err = refused::<ScannablePayload>(&format!("\"{}\"", hex(&bytes)));
    assert!(err.contains("suite"), "{err}");
}

#[test]
fn pair_verification_round_trips() {
    let (a, b) = (
        Fingerprint::from_bytes([1; 32]),
        Fingerprint::from_bytes([2; 32]),
    );
    let pair = PairVerification::new(a, b);
    let text = json(&pair);
    assert_eq!(
        text,
        format!(
            "{{\"local\":\"{}\",\"remote\":\"{}\"}}",
            "01".repeat(32),
            "02".repeat(32)
        )
    );
    let back: PairVerification = serde_json::from_str(&text).unwrap();
    assert_eq!(back, pair);
    assert_eq!(back.numeric_code(), pair.numeric_code());
    let extra = text.replace('}', ",\"x\":1}");
    assert!(serde_json::from_str::<PairVerification>(&extra).is_err());
}

#[test]
fn device_bundle_is_verified_on_the_way_in() {
    let alice = IdentityKeyPair::generate_at(1_000, &mut VectorRng::new(b"serde alice"));
    let bundle = alice.bundle();
    let text = json(&bundle);
    assert_eq!(text, format!("\"{}\"", hex(&bundle.to_bytes())));
    assert_eq!(serde_json::from_str::<DeviceBundle>(&text).unwrap(), bundle);

    // One changed bit of the last signature: refused like `from_bytes` does.
    let mut bytes = bundle.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        DeviceBundle::from_bytes(&bytes).unwrap_err(),
        secret_chat::Error::BadSignature
    );
    let err = refused::<DeviceBundle>(&format!("\"{}\"", hex(&bytes)));
    assert!(err.contains("signature"), "{err}");

    // A trailing byte.
    let mut bytes = bundle.to_bytes();
    bytes.push(0);
    let err = refused::<DeviceBundle>(&format!("\"{}\"", hex(&bytes)));
    assert!(err.contains("trailing"), "{err}");
}

#[test]
fn suite_is_its_byte() {
    assert_eq!(json(&Suite::XWing), Suite::XWing.to_byte().to_string());
    assert_eq!(json(&Suite::X25519), Suite::X25519.to_byte().to_string());
    for suite in Suite::ALL {
        assert_eq!(serde_json::from_str::<Suite>(&json(&suite)).unwrap(), suite);
    }
    let err = refused::<Suite>("9");
    assert!(err.contains("suite"), "{err}");
    assert!(serde_json::from_str::<Suite>("\"XWing\"").is_err());
}

#[test]
fn share_key_policy_round_trips_and_refuses_unknown_fields() {
    let policy = ShareKeyPolicy {
        rotate_after_secs: 1,
        keep_superseded_secs: 2,
        max_age_secs: 3,
    };
    let text = json(&policy);
    assert_eq!(
        text,
        "{\"rotate_after_secs\":1,\"keep_superseded_secs\":2,\"max_age_secs\":3}"
    );
    assert_eq!(
        serde_json::from_str::<ShareKeyPolicy>(&text).unwrap(),
        policy
    );
    let extra = text.replace('}', ",\"rotate\":true}");
    assert!(serde_json::from_str::<ShareKeyPolicy>(&extra).is_err());
}

#[test]
fn ids_in_a_stored_verification_record() {
    // What an app might keep: who, which pair it verified, in which suite.
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Verified {
        member: MemberId,
        pair: PairVerification,
        suite: Suite,
    }
    let record = Verified {
        member: MemberId::new(b"bob").unwrap(),
        pair: PairVerification::new(
            Fingerprint::from_bytes([3; 32]),
            Fingerprint::from_bytes([4; 32]),
        ),
        suite: Suite::XWing,
    };
    let text = json(&record);
    assert_eq!(serde_json::from_str::<Verified>(&text).unwrap(), record);
}
