//! Key requests: asking a sender key's owner to re-share it (recovery).
//!
//! A member whose copy of another member's sender key was lost (a share the
//! relay dropped, a crash before the share was saved, a share sealed to a
//! share key it had already erased) gets [`Error::UnknownSenderKey`] for
//! every message under that key. Instead of waiting for the owner to call
//! [`Room::reshare`] by hand, it builds a signed [`KeyRequest`] from one of
//! those messages ([`Room::request_key`]) and sends it to the key's owner,
//! whose device answers it ([`Room::answer_key_request`]) with a
//! [`KeyRequestAnswer`]:
//!
//! - the wanted key is the owner's **current** sender key and the requester
//!   a current member: a re-share of it, sealed to the requester's share key
//!   ([`KeyRequestAnswer::Reshared`]). It starts at the owner's *current*
//!   index: the requester reads the messages sent from now on, never the
//!   ones it missed under its lost copy. Those stay lost by design: the
//!   owner keeps no earlier chain key (forward secrecy), so no request can
//!   bring them back;
//! - the wanted key is an **earlier** key of the owner
//!   ([`KeyRequestAnswer::Gone`]): nothing is re-shared, ever: old chain
//!   state is erased when a key rotates, and messages under it cannot be
//!   recovered;
//! - too many answers lately ([`KeyRequestAnswer::RateLimited`]): at most
//!   one re-share per requester per [`KEY_REQUEST_MIN_INTERVAL_SECS`] and
//!   [`KEY_REQUEST_ROOM_BURST`] per [`KEY_REQUEST_ROOM_WINDOW_SECS`] for the
//!   whole room.
//!
//! A request is answered only for a present member with its current
//! membership instance, signed by the identity the membership log pins for
//! it, addressed to me and my current instance, in this room, and fresh
//! (within [`KEY_REQUEST_MAX_AGE_SECS`] and [`KEY_REQUEST_MAX_SKEW_SECS`]).
//! A re-share gives the requester nothing it was not already entitled to:
//! every present member is owed my current key from the index it joined at.
//!
//! The rate limiter lives in memory only: it is not part of the stored room
//! state, so a restart (or an import) starts it empty. That allows at most
//! one more burst per restart; it guards against floods, not against a
//! device that restarts to answer more.
//!
//! Skipped indices of a key the room *does* hold ([`Room::missing`]) are not
//! a key loss: a re-share would start at the current index and give them
//! back no more than the key already held does. They are a delivery gap: ask
//! the relay to deliver those messages again.
//!
//! The byte layout is drawn in the docs of [`KeyRequest`].

use super::{OutgoingShare, Room};
use crate::clock::now_secs;
use crate::error::{DecodeError, Error, KeyRequestError};
use crate::identity::IdentityKeyPair;
use crate::ids::{MemberId, RoomId, SenderKeyId};
use crate::labels;
use crate::limits::{
    KEY_REQUEST_MAX_AGE_SECS, KEY_REQUEST_MAX_SKEW_SECS, KEY_REQUEST_MIN_INTERVAL_SECS,
    KEY_REQUEST_ROOM_BURST, KEY_REQUEST_ROOM_WINDOW_SECS, MAX_KEY_REQUEST_LEN, MAX_MEMBER_ID_LEN,
    MAX_ROOM_ID_LEN,
};
use crate::membership::InstanceId;
use crate::message::Message;
use crate::wire::{Reader, Writer};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::Signature;
use rand_core::CryptoRng;

/// Length of the requester's Ed25519 signature that ends a request.
const SIGNATURE_LEN: usize = 64;

// The limiter keeps only answers inside the room window, so the per-requester
// interval must fit inside it (and its memory is bounded by the burst).
const _: () = assert!(KEY_REQUEST_MIN_INTERVAL_SECS <= KEY_REQUEST_ROOM_WINDOW_SECS);

/// A signed request for a sender key, from one member to the key's owner.
///
/// Made by [`Room::request_key`] (which returns its bytes in an
/// [`OutgoingKeyRequest`]) and answered by [`Room::answer_key_request`].
/// [`from_bytes`](Self::from_bytes) checks the structure only: the fields of
/// a parsed request are the sender's *claims* (useful to route it to
/// [`owner`](Self::owner)); only `answer_key_request` authenticates it.
///
/// # Encoding (all integers big-endian)
///
/// ```text
/// +------+------+------+---------+-----------+--------------+--------------------+
/// | 0x02 | 0x12 | rlen | room id | u16 len   | requester id | requester instance |
/// |      |      |  1   | 1..=64  |           | 1..=256      | (32)               |
/// +------+------+------+---------+-----------+--------------+--------------------+
/// | u16 len | owner id | owner instance | epoch u32 | sender key id | time u64 | signature |
/// |         | 1..=256  | (32)           |           | (16)          |          | (64)      |
/// +---------+----------+----------------+-----------+---------------+----------+-----------+
/// signature = Ed25519(requester identity,
///                     "secret-chat/v2/key-request/signature" || every byte before it)
/// ```
///
/// Specified in `docs/PROTOCOL.md` section 5.0.5 (with every check an
/// answer makes, in order).
///
/// ```
/// use secret_chat::{DecodeError, Error, KeyRequest};
/// assert_eq!(
///     KeyRequest::from_bytes(&[0x02, 0x11]).unwrap_err(),
///     Error::Malformed(DecodeError::InvalidValue)
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRequest {
    room: RoomId,
    requester: MemberId,
    requester_instance: InstanceId,
    owner: MemberId,
    owner_instance: InstanceId,
    epoch: u32,
    key: SenderKeyId,
    time: u64,
    signature: [u8; SIGNATURE_LEN],
}

impl fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRequest")
            .field("room", &self.room)
            .field("requester", &self.requester)
            .field("owner", &self.owner)
            .field("epoch", &self.epoch)
            .field("key", &self.key)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl KeyRequest {
    /// Parses a request (total: a value or a typed error, never a panic).
    /// Nothing is authenticated yet.
    ///
    /// Rejections, in order: more than [`MAX_KEY_REQUEST_LEN`] bytes
    /// (`Malformed(LengthLimit)`); a version other than 2
    /// (`Malformed(UnsupportedVersion(v))`); a type byte other than `0x12`
    /// (`Malformed(InvalidValue)`); a room id length of 0 or over 64
    /// (`Malformed(LengthLimit)`); a member id over 256 bytes
    /// (`Malformed(LengthLimit)`) or empty (`Malformed(Empty)`); input cut
    /// short (`Malformed(Truncated)`); bytes after the signature
    /// (`Malformed(TrailingBytes)`).
    ///
    /// ```
    /// use secret_chat::{DecodeError, Error, KeyRequest};
    /// assert_eq!(
    ///     KeyRequest::from_bytes(&[0x01]).unwrap_err(),
    ///     Error::Malformed(DecodeError::UnsupportedVersion(1))
    /// );
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_KEY_REQUEST_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut r = Reader::new(bytes);
        r.version(labels::PROTOCOL_VERSION)?;
        if r.u8()? != labels::KEY_REQUEST_TYPE {
            return Err(DecodeError::InvalidValue.into());
        }
        let room_len = usize::from(r.u8()?);
        if room_len == 0 || room_len > MAX_ROOM_ID_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let room = RoomId::new(r.bytes(room_len)?)?;
        let requester = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
        let requester_instance = InstanceId::from_bytes(r.array()?);
        let owner = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
        let owner_instance = InstanceId::from_bytes(r.array()?);
        let epoch = r.u32()?;
        let key = SenderKeyId::from_bytes(r.array()?);
        let time = r.u64()?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            room,
            requester,
            requester_instance,
            owner,
            owner_instance,
            epoch,
            key,
            time,
            signature,
        })
    }

    /// The encoded request (the only encoding: parsing it gives the same
    /// request back).
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, KeyRequest, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let (mut at_alice, _lost) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (at_bob, _) = Room::join(&bob, b, &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// # let sent = at_alice.encrypt(&alice, b"hi").unwrap();
    /// let request = at_bob.request_key(&bob, &a, &sent.message).unwrap();
    /// let parsed = KeyRequest::from_bytes(&request.bytes).unwrap();
    /// assert_eq!(parsed.to_bytes(), request.bytes);
    /// assert_eq!(parsed.owner(), &a);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_signed_part(&mut w);
        w.bytes(&self.signature);
        w.into_vec()
    }

    fn encoded_len(&self) -> usize {
        1 + 1
            + 1
            + self.room.as_bytes().len()
            + 2
            + self.requester.as_bytes().len()
            + 32
            + 2
            + self.owner.as_bytes().len()
            + 32
            + 4
            + 16
            + 8
            + SIGNATURE_LEN
    }

    /// Every field before the signature, in order.
    fn encode_signed_part(&self, w: &mut Writer) {
        let room = self.room.as_bytes();
        // RoomId guarantees 1..=MAX_ROOM_ID_LEN (64) bytes.
        w.u8(labels::PROTOCOL_VERSION)
            .u8(labels::KEY_REQUEST_TYPE)
            .u8(u8::try_from(room.len()).unwrap_or(u8::MAX))
            .bytes(room)
            .vec16(self.requester.as_bytes())
            .bytes(self.requester_instance.as_bytes())
            .vec16(self.owner.as_bytes())
            .bytes(self.owner_instance.as_bytes())
            .u32(self.epoch)
            .bytes(self.key.as_bytes())
            .u64(self.time);
    }

    /// The room the request is for (claimed).
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The member asking for the key (claimed; the owner checks the
    /// signature against this member's pinned identity).
    pub fn requester(&self) -> &MemberId {
        &self.requester
    }

    /// The requester's membership instance (claimed).
    pub fn requester_instance(&self) -> &InstanceId {
        &self.requester_instance
    }

    /// The member the request is addressed to: the owner of the wanted key
    /// (deliver the request to this member's device).
    pub fn owner(&self) -> &MemberId {
        &self.owner
    }

    /// The owner's membership instance the request is addressed to.
    pub fn owner_instance(&self) -> &InstanceId {
        &self.owner_instance
    }

    /// The epoch of the wanted key (from the undecryptable message).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The id of the wanted key (from the undecryptable message).
    pub fn key_id(&self) -> SenderKeyId {
        self.key
    }

    /// When the request was made (Unix seconds, the requester's clock).
    pub fn time(&self) -> u64 {
        self.time
    }
}

/// A key request to deliver to the key's owner ([`Room::request_key`]).
#[derive(Clone, PartialEq, Eq)]
#[must_use = "the request must be delivered to the key's owner"]
pub struct OutgoingKeyRequest {
    /// The member it is addressed to (the key's owner).
    pub to: MemberId,
    /// The encoded, signed [`KeyRequest`].
    pub bytes: Vec<u8>,
}

impl fmt::Debug for OutgoingKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingKeyRequest")
            .field("to", &self.to)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What [`Room::answer_key_request`] decided for an authenticated, fresh
/// request. Each variant says what the owner's app does next; none of them
/// is an error (a refused request is an [`Error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a re-share must be delivered; the other answers say what to do"]
pub enum KeyRequestAnswer {
    /// My current sender key, sealed again to the requester: deliver `share`
    /// to `share.to`. It starts at `from_index`: messages I sent under this
    /// key before that index stay unreadable to the requester (by design:
    /// I keep no earlier chain key).
    Reshared {
        /// The key share for the requester.
        share: OutgoingShare,
        /// The first message index the requester can read with it.
        from_index: u32,
    },
    /// The wanted key is an earlier key of mine: I rotated since, and
    /// messages under it cannot be recovered (their chain keys are erased).
    /// Nothing to send; the requester reads my messages under my current
    /// key once it holds that (a message under it makes a new request).
    Gone {
        /// The epoch the request named.
        requested_epoch: u32,
        /// My current epoch.
        current_epoch: u32,
    },
    /// The wanted key is not one of my keys, current or earlier: the app
    /// attributed the message to the wrong sender, or its header was forged.
    /// Nothing to send.
    NotMine,
    /// I answered too many requests lately (this requester within
    /// [`KEY_REQUEST_MIN_INTERVAL_SECS`], or the whole room
    /// [`KEY_REQUEST_ROOM_BURST`] times within
    /// [`KEY_REQUEST_ROOM_WINDOW_SECS`]). Nothing changed: keep the request
    /// and answer it again at `retry_at` (while it is still fresh), or drop
    /// it: the requester asks again when it still needs the key.
    RateLimited {
        /// The earliest time (Unix seconds, my clock) an answer can go out.
        retry_at: u64,
    },
    /// I know no fresh share key of the requester to seal my key to: it is
    /// now [owed](Room::owed_shares) my key. Fetch its current bundle and
    /// pass it to [`Room::update_member_bundle`], which returns the share.
    NeedsBundle {
        /// The requester.
        requester: MemberId,
    },
}

/// In-memory record of the re-shares a room answered recently (never
/// stored: a restart starts it empty). Holds only answers inside the room
/// window, so at most [`KEY_REQUEST_ROOM_BURST`] entries.
#[derive(Debug, Default)]
pub(crate) struct AnswerLimiter {
    answers: VecDeque<(MemberId, u64)>,
}

impl AnswerLimiter {
    /// When a re-share to `requester` may go out, if not now. Answers
    /// recorded at a time after `now` (the clock went back) are ignored.
    fn retry_at(&self, requester: &MemberId, now: u64) -> Option<u64> {
        let recent = || self.answers.iter().filter(move |(_, t)| *t <= now);
        let per_requester = recent()
            .filter(|(m, _)| m == requester)
            .map(|(_, t)| t.saturating_add(KEY_REQUEST_MIN_INTERVAL_SECS))
            .filter(|at| *at > now)
            .max();
        let in_window = || recent().filter(|(_, t)| now - t < KEY_REQUEST_ROOM_WINDOW_SECS);
        let room = if in_window().count() >= KEY_REQUEST_ROOM_BURST {
            in_window()
                .map(|(_, t)| t.saturating_add(KEY_REQUEST_ROOM_WINDOW_SECS))
                .min()
        } else {
            None
        };
        per_requester.max(room)
    }

    /// Records a re-share to `requester` at `now`, forgetting answers
    /// outside the window.
    fn record(&mut self, requester: MemberId, now: u64) {
        self.answers
            .retain(|(_, t)| *t <= now && now - t < KEY_REQUEST_ROOM_WINDOW_SECS);
        self.answers.push_back((requester, now));
        while self.answers.len() > KEY_REQUEST_ROOM_BURST {
            self.answers.pop_front();
        }
    }
}

impl Room {
    /// Builds a signed request for the sender key of `message`, a message
    /// this room cannot decrypt ([`Error::UnknownSenderKey`]), addressed to
    /// `owner`, the member the app believes sent it (the transport's sender:
    /// a message header names its key, not its owner). Send
    /// [`OutgoingKeyRequest::bytes`] to `owner`; when its re-share arrives,
    /// pass it to [`receive_share`](Self::receive_share) and retry the
    /// messages: those sent from the re-share's index on decrypt, earlier
    /// ones under the lost copy stay unreadable (forward secrecy). Do not
    /// ask the same owner again within
    /// [`KEY_REQUEST_MIN_INTERVAL_SECS`]:
    /// it would not answer.
    ///
    /// Only a message under a key the room does not hold makes a request.
    /// Skipped indices of a key it holds ([`missing`](Self::missing)) are a
    /// delivery gap, not a key loss: a re-share starts at the owner's
    /// current index and would give none of them back; ask the relay to
    /// deliver those messages again.
    ///
    /// Refused, with nothing changed: [`Error::WrongIdentity`]; I am no
    /// longer a member ([`Error::NotAMember`]); bytes that are not a message
    /// ([`Error::Malformed`]); a message of another room
    /// ([`Error::NotForMe`]); a message under my own key, or `owner` being
    /// me ([`Error::Reflected`]); a key the room holds
    /// ([`KeyRequestError::KeyHeld`]: decrypt instead); an `owner` that is
    /// not a present member ([`Error::NotAMember`]).
    ///
    /// ```
    /// use secret_chat::{Error, IdentityKeyPair, KeyRequestAnswer, MemberId, Room, RoomId};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let id = RoomId::new(b"r").unwrap();
    /// let (mut at_alice, lost) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// let (mut at_bob, _) = Room::join(&bob, b, &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// drop(lost); // the relay dropped Alice's key share to Bob
    /// let first = at_alice.encrypt(&alice, b"lost for good").unwrap();
    /// assert_eq!(at_bob.decrypt(&first.message).unwrap_err(), Error::UnknownSenderKey);
    ///
    /// // Bob asks the sender (the transport says Alice sent it).
    /// let request = at_bob.request_key(&bob, &a, &first.message).unwrap();
    /// // Alice's device answers with a re-share of her current key.
    /// let KeyRequestAnswer::Reshared { share, .. } =
    ///     at_alice.answer_key_request(&alice, &request.bytes).unwrap()
    /// else { panic!("expected a re-share") };
    /// at_bob.receive_share(&bob, &share.bytes).unwrap();
    /// // Messages from the re-share's index on decrypt; the first stays lost.
    /// let next = at_alice.encrypt(&alice, b"readable").unwrap();
    /// assert_eq!(at_bob.decrypt(&next.message).unwrap().plaintext(), b"readable");
    /// assert_eq!(at_bob.decrypt(&first.message).unwrap_err(), Error::TooOld);
    /// ```
    pub fn request_key(
        &self,
        identity: &IdentityKeyPair,
        owner: &MemberId,
        message: &[u8],
    ) -> Result<OutgoingKeyRequest, Error> {
        self.request_key_at(identity, owner, message, now_secs())
    }

    /// [`request_key`](Self::request_key) with an explicit clock (Unix
    /// seconds, the time the request carries). No randomness is drawn
    /// (Ed25519 signatures are deterministic).
    pub fn request_key_at(
        &self,
        identity: &IdentityKeyPair,
        owner: &MemberId,
        message: &[u8],
        now: u64,
    ) -> Result<OutgoingKeyRequest, Error> {
        self.check_me(identity)?;
        let my_instance = self.my_instance()?;
        let msg = Message::from_bytes(message)?;
        if msg.room_id() != self.id.as_bytes() {
            return Err(Error::NotForMe);
        }
        let key = msg.sender_key();
        if key == self.outbound.id() || self.own_retired.contains(&key) || *owner == self.me {
            return Err(Error::Reflected);
        }
        if self.inbound.contains_key(&key) {
            return Err(KeyRequestError::KeyHeld.into());
        }
        let peer = self.peers.get(owner).ok_or(Error::NotAMember)?;
        let mut request = KeyRequest {
            room: self.id.clone(),
            requester: self.me.clone(),
            requester_instance: my_instance,
            owner: owner.clone(),
            owner_instance: peer.instance,
            epoch: msg.epoch(),
            key,
            time: now,
            signature: [0; SIGNATURE_LEN],
        };
        let mut w =
            Writer::with_capacity(labels::KEY_REQUEST_SIGNATURE.len() + MAX_KEY_REQUEST_LEN);
        w.bytes(labels::KEY_REQUEST_SIGNATURE);
        request.encode_signed_part(&mut w);
        request.signature = identity.sign(w.as_slice()).to_bytes();
        Ok(OutgoingKeyRequest {
            to: owner.clone(),
            bytes: request.to_bytes(),
        })
    }

    /// Answers a key request addressed to me (see [`KeyRequestAnswer`]):
    /// re-shares my current sender key with a current member that asked for
    /// it, from my current index (messages before it stay unreadable to the
    /// requester: forward secrecy keeps no old chain keys); never re-shares
    /// an earlier key ([`KeyRequestAnswer::Gone`]). Rate-limited in memory
    /// ([`KeyRequestAnswer::RateLimited`]; a restart resets the limiter).
    ///
    /// Refused, in this order and with the room unchanged:
    /// [`Error::WrongIdentity`]; I am no longer a member
    /// ([`Error::NotAMember`]); [`Error::Malformed`] (see
    /// [`KeyRequest::from_bytes`]); another room ([`Error::NotForMe`]);
    /// addressed to another member ([`KeyRequestError::NotAddressedToMe`])
    /// or to an earlier instance of me
    /// ([`KeyRequestError::StaleOwnerInstance`]); my own request
    /// ([`Error::Reflected`]); a requester that is not a present member,
    /// such as a removed one ([`Error::NotAMember`]); a requester's earlier
    /// instance ([`KeyRequestError::StaleRequesterInstance`]); a signature
    /// that does not verify under the requester's pinned identity (forged,
    /// or signed by another member: [`Error::BadSignature`]); a request
    /// older than [`KEY_REQUEST_MAX_AGE_SECS`]
    /// ([`KeyRequestError::Expired`]) or ahead of my clock by more than
    /// [`KEY_REQUEST_MAX_SKEW_SECS`]
    /// ([`KeyRequestError::FromTheFuture`]); and what
    /// [`reshare`](Self::reshare) refuses.
    ///
    /// ```
    /// # use secret_chat::{Error, IdentityKeyPair, KeyRequestAnswer, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let (mut at_alice, _lost) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let old = at_alice.encrypt(&alice, b"before the rotation").unwrap();
    /// let request = at_bob.request_key(&bob, &a, &old.message).unwrap();
    /// let _ = at_alice.rotate(&alice).unwrap();
    /// // The key Bob wants is no longer Alice's current key: nothing to give.
    /// let what = match at_alice.answer_key_request(&alice, &request.bytes).unwrap() {
    ///     KeyRequestAnswer::Reshared { .. } => "deliver share.bytes to share.to",
    ///     KeyRequestAnswer::Gone { .. } => "nothing to send: those messages are lost",
    ///     KeyRequestAnswer::NotMine => "nothing to send: the message was not mine",
    ///     KeyRequestAnswer::RateLimited { .. } => "answer again at retry_at, or drop it",
    ///     KeyRequestAnswer::NeedsBundle { .. } => "fetch the requester's bundle",
    /// };
    /// assert_eq!(what, "nothing to send: those messages are lost");
    /// ```
    pub fn answer_key_request(
        &mut self,
        identity: &IdentityKeyPair,
        request: &[u8],
    ) -> Result<KeyRequestAnswer, Error> {
        self.answer_key_request_with_rng(identity, request, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`answer_key_request`](Self::answer_key_request) with an explicit
    /// clock (Unix seconds: the freshness check and the rate limiter) and
    /// RNG (the re-share's HPKE encapsulation).
    pub fn answer_key_request_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        request: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<KeyRequestAnswer, Error> {
        self.check_me(identity)?;
        let my_instance = self.my_instance()?;
        let req = KeyRequest::from_bytes(request)?;
        if req.room != self.id {
            return Err(Error::NotForMe);
        }
        if req.owner != self.me {
            return Err(KeyRequestError::NotAddressedToMe.into());
        }
        if req.owner_instance != my_instance {
            return Err(KeyRequestError::StaleOwnerInstance.into());
        }
        if req.requester == self.me {
            return Err(Error::Reflected);
        }
        let peer = self.peers.get(&req.requester).ok_or(Error::NotAMember)?;
        if peer.instance != req.requester_instance {
            return Err(KeyRequestError::StaleRequesterInstance.into());
        }
        // Over the bytes as received (parsing is canonical, so these are the
        // bytes the requester signed if the request is genuine).
        let signed_len = request
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated)?;
        let mut input = Vec::with_capacity(labels::KEY_REQUEST_SIGNATURE.len() + signed_len);
        input.extend_from_slice(labels::KEY_REQUEST_SIGNATURE);
        input.extend_from_slice(request.get(..signed_len).ok_or(DecodeError::Truncated)?);
        peer.identity
            .verify(&input, &Signature::from_bytes(&req.signature))?;
        if req.time > now.saturating_add(KEY_REQUEST_MAX_SKEW_SECS) {
            return Err(KeyRequestError::FromTheFuture.into());
        }
        if now.saturating_sub(req.time) > KEY_REQUEST_MAX_AGE_SECS {
            return Err(KeyRequestError::Expired.into());
        }
        let current_epoch = self.outbound.epoch();
        if req.key != self.outbound.id() || req.epoch != current_epoch {
            return Ok(
                if self.own_retired.contains(&req.key) || req.epoch < current_epoch {
                    KeyRequestAnswer::Gone {
                        requested_epoch: req.epoch,
                        current_epoch,
                    }
                } else {
                    KeyRequestAnswer::NotMine
                },
            );
        }
        if let Some(retry_at) = self.key_requests.retry_at(&req.requester, now) {
            return Ok(KeyRequestAnswer::RateLimited { retry_at });
        }
        let from_index = self.outbound.index();
        let share = self
            .reshare_with_rng(identity, &req.requester, now, rng)?
            .into_iter()
            .next();
        match share {
            Some(share) => {
                self.key_requests.record(req.requester, now);
                Ok(KeyRequestAnswer::Reshared { share, from_index })
            }
            None => {
                if let Some(p) = self.peers.get_mut(&req.requester) {
                    p.owed = true;
                }
                // The owed list is part of the outbound record.
                self.unsaved.outbound = true;
                Ok(KeyRequestAnswer::NeedsBundle {
                    requester: req.requester,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(i: usize) -> MemberId {
        MemberId::new(alloc::format!("m{i}").as_bytes()).unwrap()
    }

    #[test]
    fn limiter_memory_is_bounded_by_the_burst() {
        let mut l = AnswerLimiter::default();
        for i in 0..10 * KEY_REQUEST_ROOM_BURST {
            l.record(m(i), 1_000 + i as u64 / 4);
            assert!(l.answers.len() <= KEY_REQUEST_ROOM_BURST);
        }
    }

    #[test]
    fn limiter_ignores_answers_after_a_clock_that_went_back() {
        let mut l = AnswerLimiter::default();
        l.record(m(0), 10_000);
        assert_eq!(
            l.retry_at(&m(0), 10_001),
            Some(10_000 + KEY_REQUEST_MIN_INTERVAL_SECS)
        );
        assert_eq!(l.retry_at(&m(0), 5_000), None);
        l.record(m(0), 5_000);
        assert_eq!(l.answers.len(), 1);
    }
}
