//! Integration guide: what an app does around the crate.
//!
//! This module holds no code; it is the checklist an app developer reads
//! once. Every byte and rule is in `docs/PROTOCOL.md`.
//!
//! # 1. One identity per installation
//!
//! Make an [`IdentityKeyPair`](crate::IdentityKeyPair) on first start and
//! keep it in the encrypted store
//! ([`IdentityKeyPair::save`](crate::IdentityKeyPair::save) into a
//! [`SealedStore`](crate::store::SealedStore)) under a
//! [`StorageKey`](crate::StorageKey) that lives in the OS keystore.
//! Publish its [`DeviceBundle`](crate::DeviceBundle) through your relay. Once
//! a day (and at start) call
//! [`maintain_share_keys`](crate::IdentityKeyPair::maintain_share_keys): it
//! rotates the share keys weekly and erases superseded ones after 14 days;
//! when it returns a bundle, publish it and save the identity again. A
//! reinstall is a new identity: the other members see
//! [`Error::IdentityChanged`](crate::Error::IdentityChanged) from
//! [`Room::check_member`](crate::Room::check_member) and re-admit the device
//! by a signed removal and re-addition (the room reports the new identity).
//!
//! # 2. Rooms
//!
//! The creator calls [`Room::create`](crate::Room::create) with the members'
//! bundles (ideally with a fresh [`RoomId::random`](crate::RoomId::random))
//! and sends [`Room::welcome`](crate::Room::welcome) and the returned key
//! shares through the relay. Every other member calls
//! [`Room::join`](crate::Room::join) on the welcome and sends its own shares.
//! Show who created the room ([`Room::creator`](crate::Room::creator)):
//! the welcome proves the creator signed the member list, not that the
//! creator is who the relay says.
//!
//! Membership changes are signed updates: [`Room::add_member`](crate::Room::add_member),
//! [`Room::remove_member`](crate::Room::remove_member) and
//! [`Room::leave`](crate::Room::leave) return a
//! [`MembershipChange`](crate::MembershipChange) (send `update` to every
//! member, `welcome` to a newcomer, and the shares); other devices pass
//! updates to [`Room::apply_update`](crate::Room::apply_update) and send the
//! shares it returns. Never act on the relay's word about membership.
//!
//! # 3. Deliver everything the crate returns, then persist, then show
//!
//! Key shares in [`Outgoing::shares`](crate::Outgoing::shares),
//! [`MembershipChange::shares`](crate::MembershipChange::shares) and
//! [`Applied::shares`](crate::Applied::shares) must reach their members (the
//! types are `#[must_use]`). Save the room after every call that changed
//! it ([`Room::save`](crate::Room::save): only the records that changed, one
//! transaction; a decrypt moves a ratchet) *before* showing a plaintext or
//! sending a message, so a crash can never make the device reuse or
//! re-accept a key. Better still, put the decrypted message and an outbox
//! entry holding what you are about to send into the same transaction
//! ([`Room::save_with`](crate::Room::save_with) with records of kind
//! [`RECORD_KIND_APP`](crate::labels::RECORD_KIND_APP)): then a crash loses
//! nothing either; on start, send what the outbox still holds (the receiver
//! refuses a second copy as a replay), then delete it. Keep the generation
//! [`save`](crate::Room::save) returns beside the storage key and pass it to
//! [`SealedStore::open`](crate::store::SealedStore::open): an older store
//! is refused ([`Error::Rollback`](crate::Error::Rollback)). At start,
//! [`Room::load`](crate::Room::load) each room: it checks every record but
//! redoes no signature check the records' tags vouch for.
//!
//! # 4. Retries
//!
//! Every error says whether the same input can succeed later:
//! [`Error::is_retryable`](crate::Error::is_retryable). Only a message whose
//! key share has not arrived is ([`Error::UnknownSenderKey`](crate::Error::UnknownSenderKey)):
//! keep it in a bounded queue and retry after each accepted share. Drop
//! everything else; where the error says so, ask for something new:
//!
//! - [`Error::ShareKeyErased`](crate::Error::ShareKeyErased) on my side: ask
//!   the sender to re-share ([`Room::reshare`](crate::Room::reshare)) under
//!   my current bundle;
//! - [`Room::owed_shares`](crate::Room::owed_shares) not empty: fetch those
//!   members' current bundles and pass them to
//!   [`Room::update_member_bundle`](crate::Room::update_member_bundle);
//! - [`Error::NotAMember`](crate::Error::NotAMember) from a room I was
//!   removed from: nothing will come; archive the room.
//!
//! **Recovery: asking for a lost key.** A message that stays
//! [`UnknownSenderKey`](crate::Error::UnknownSenderKey) for long (its share
//! was dropped or lost in a crash) need not wait for the sender to notice:
//! [`Room::request_key`](crate::Room::request_key) builds a signed request
//! from it, addressed to the member your transport says sent it. The
//! sender's device passes the request to
//! [`Room::answer_key_request`](crate::Room::answer_key_request) and
//! delivers the re-share it returns
//! ([`KeyRequestAnswer::Reshared`](crate::KeyRequestAnswer::Reshared)); the
//! requester accepts it with `receive_share` and retries its queue. The
//! re-share starts at the sender's current index: messages from then on
//! decrypt, the ones already missed stay lost (forward secrecy: no device
//! keeps old chain keys), and a request for a key the sender has rotated
//! away gets [`Gone`](crate::KeyRequestAnswer::Gone). Requests are answered
//! only for current members, within a day, at most once a minute per
//! requester (a restart of the answering app resets that count): do not
//! ask the same sender more than once a minute.
//!
//! ```
//! use secret_chat::{Error, IdentityKeyPair, KeyRequestAnswer, MemberId, OutgoingKeyRequest, OutgoingShare, Room};
//! /// Requester: a queued message that still has no key after a while.
//! fn ask(room: &Room, me: &IdentityKeyPair, sender: &MemberId, queued: &[u8]) -> Option<OutgoingKeyRequest> {
//!     match room.request_key(me, sender, queued) {
//!         Ok(request) => Some(request), // send request.bytes to request.to
//!         Err(Error::KeyRequest(_)) => None, // e.g. KeyHeld: the key is here, retry the queue
//!         Err(_) => None,
//!     }
//! }
//! /// Sender: answer what arrives; deliver a re-share, else nothing to send.
//! fn answer(room: &mut Room, me: &IdentityKeyPair, request: &[u8]) -> Option<OutgoingShare> {
//!     match room.answer_key_request(me, request) {
//!         Ok(KeyRequestAnswer::Reshared { share, .. }) => Some(share),
//!         // Gone, NotMine, RateLimited, NeedsBundle (fetch its bundle), or refused.
//!         _ => None,
//!     }
//! }
//! ```
//!
//! ```
//! use secret_chat::{Error, Room};
//! /// Decrypts what it can; keeps what may decrypt later, drops the rest.
//! fn drain(room: &mut Room, queue: &mut Vec<Vec<u8>>) -> Vec<Vec<u8>> {
//!     let mut shown = Vec::new();
//!     queue.retain(|m| match room.decrypt(m) {
//!         Ok(r) => { shown.push(r.plaintext().to_vec()); false }
//!         Err(e) => e.is_retryable(), // keep only what can still succeed
//!     });
//!     queue.truncate(1000); // bound the queue
//!     shown
//! }
//! ```
//!
//! # 5. Verification UX
//!
//! The pairwise public key image ([`Room::verification`](crate::Room::verification))
//! is the only defence against a relay that substitutes keys from the very
//! start. Prefer the QR scan: one phone scans the other's
//! [`payload`](crate::PairVerification::payload) and
//! [`verify_scanned`](crate::PairVerification::verify_scanned) checks it in
//! constant time (it refuses a phone's own code). When people compare by
//! eye, ask them to compare *both halves* of the picture (each half is one
//! member's key; a change can swap them), or the full numeric code, not a few
//! digits. Reset the "verified" mark whenever
//! [`Room::check_member`](crate::Room::check_member) reports a new identity.
//! In groups, also compare the room digest ([`Room::digest`](crate::Room::digest)):
//! it covers the membership (who was added by which operation).
