//! Rooms: 1:1 and group secret chats, membership, rotation and key pinning.
//!
//! A [`Room`] is one device's view of one secret chat. It ties the device
//! identity, the pinned identities of the other members, my own
//! [`OutboundSenderKey`] and every member's [`InboundSenderKey`] together:
//!
//! - [`Room::create`] (by the creator *and* by every member joining, with the
//!   same member list) makes my sender key and the key shares that carry it
//!   to every other member. A room of exactly two is pairwise (unsigned
//!   messages, deniable); three or more members sign every message, and a
//!   room that was ever a group stays signed.
//! - [`Room::receive_share`] accepts another member's key share, only from
//!   the identity the room pinned for that member.
//! - [`Room::encrypt`] / [`Room::decrypt`] send and receive messages.
//! - [`Room::add_member`] pins a newcomer and shares my *current* sender key
//!   with it (from the current index: the newcomer reads nothing earlier).
//!   [`Room::remove_member`] rotates my sender key and shares the new one
//!   only with the remaining members.
//!
//! # Membership is the app's decision
//!
//! The room acts only on changes the app makes through these calls. The
//! relay may report joins, leaves and new keys; it may also lie. An app
//! should treat a membership change the server reports as a *claim*: show
//! it, and apply it ([`Room::add_member`], [`Room::remove_member`]) only when
//! it is authenticated by the app's own rules (for example, an admin's
//! signed instruction carried inside an encrypted room message). A member id
//! that the server associates with a new identity is never silently
//! accepted: [`Room::check_member`] and every call that meets it return
//! [`Error::IdentityChanged`], and the app starts a new room (the seed
//! product's rule after a reinstall), resetting that member's verification.
//!
//! # Epochs
//!
//! Each member's sender keys are numbered by an epoch that the member
//! increases on every rotation. A key share names it; a receiver accepts a
//! share from a member only for an epoch newer than the last one it accepted
//! from that member, so an old share replayed by the relay cannot reinstall
//! an old key. Keys of earlier epochs keep decrypting in-flight messages for
//! a bounded time ([`RotationPolicy::old_key_grace_secs`]) and count
//! ([`MAX_RETIRED_KEYS`]).

use crate::error::{DecodeError, Error};
use crate::fingerprint::{Fingerprint, PairVerification, RoomDigest, room_digest};
use crate::identity::{IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::ids::{MemberId, RoomId, SenderKeyId};
use crate::keyshare::{KeyShare, Recipient, seal_shares_with_rng};
use crate::limits::{MAX_MEMBER_ID_LEN, MAX_MEMBERS};
use crate::message::Message;
use crate::sender_key::{InboundSenderKey, OutboundSenderKey, SenderKeyMode, read_room};
use crate::share_key::{
    DeviceBundle, MAX_SIGNED_SHARE_KEY_LEN, ShareKeyPolicy, SignedShareKey, Suite,
};
use crate::wire::{Reader, Writer};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

pub use crate::limits::MAX_RETIRED_KEYS;
use crate::limits::OWN_KEY_HISTORY;

/// When a member rotates its own sender key by itself (post-compromise
/// healing). A rotation sends one key share per other member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate after this many messages under one sender key (default 1,000).
    pub max_messages: u32,
    /// Rotate when the sender key is older than this many seconds (default
    /// one week).
    pub max_age_secs: u64,
    /// Keep decrypting messages under a member's retired sender key for this
    /// many seconds after its successor arrived (default one day).
    pub old_key_grace_secs: u64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_age_secs: 7 * 24 * 3600,
            old_key_grace_secs: 24 * 3600,
        }
    }
}

/// A key share to deliver to one member.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingShare {
    /// The member it is addressed to.
    pub to: MemberId,
    /// The encoded [`KeyShare`].
    pub bytes: Vec<u8>,
}

impl fmt::Debug for OutgoingShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingShare")
            .field("to", &self.to)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What [`Room::encrypt`] produced: the message for every member and, when
/// the rotation policy rotated my sender key first, the key shares to deliver
/// (before the message, ideally; a message that overtakes its share fails
/// with [`Error::UnknownSenderKey`] and decrypts when retried later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Key shares of a rotation that happened first (usually empty).
    pub shares: Vec<OutgoingShare>,
    /// The encrypted message, the same bytes for every member.
    pub message: Vec<u8>,
}

/// A message [`Room::decrypt`] accepted.
#[derive(Debug)]
pub struct Received {
    /// The member who sent it (authenticated).
    pub sender: MemberId,
    /// The sender's epoch.
    pub epoch: u32,
    /// The index in the sender's chain.
    pub index: u32,
    /// The plaintext.
    pub plaintext: crate::message::Decrypted,
}

impl Received {
    /// The plaintext bytes.
    pub fn plaintext(&self) -> &[u8] {
        self.plaintext.plaintext()
    }
}

struct InboundEntry {
    member: MemberId,
    key: InboundSenderKey,
    /// Set when a newer key from the same member replaced this one.
    retired_at: Option<u64>,
}

struct Member {
    identity: PublicIdentity,
    /// The newest share key of the room's suite verified for this member.
    share_key: SignedShareKey,
    /// Newest epoch accepted from this member (`None`: no share yet).
    last_epoch: Option<u32>,
}

/// One device's state of one secret chat. See the [module docs](self).
pub struct Room {
    id: RoomId,
    suite: Suite,
    me: MemberId,
    members: BTreeMap<MemberId, Member>,
    policy: RotationPolicy,
    outbound: OutboundSenderKey,
    outbound_created_at: u64,
    own_retired: Vec<SenderKeyId>,
    inbound: BTreeMap<SenderKeyId, InboundEntry>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.id)
            .field("me", &self.me)
            .field("members", &self.members.len())
            .field("epoch", &self.outbound.epoch())
            .finish_non_exhaustive()
    }
}

impl Room {
    /// Length of [`encode_state`](Self::encode_state)'s output, so the
    /// (secret) buffer is allocated once.
    pub(crate) fn state_len(&self) -> usize {
        let members: usize = self
            .members
            .iter()
            .map(|(id, m)| {
                2 + id.as_bytes().len()
                    + PUBLIC_IDENTITY_LEN
                    + 2
                    + m.share_key.as_bytes().len()
                    + 1
                    + 4 * usize::from(m.last_epoch.is_some())
            })
            .sum();
        let inbound: usize = self
            .inbound
            .values()
            .map(|e| {
                2 + e.member.as_bytes().len()
                    + 1
                    + 8 * usize::from(e.retired_at.is_some())
                    + e.key.state_len()
            })
            .sum();
        1 + self.id.as_bytes().len()
            + 1
            + 2
            + self.me.as_bytes().len()
            + 4
            + 8
            + 8
            + 8
            + 4
            + members
            + self.outbound.state_len()
            + 4
            + 16 * self.own_retired.len()
            + 4
            + inbound
    }

    /// Appends the complete state of the room, secrets included, for the
    /// encrypted storage (layout in `docs/PROTOCOL.md`, section 7). Maps are
    /// written in key order, so each state has one encoding.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        let id = self.id.as_bytes();
        w.u8(u8::try_from(id.len()).unwrap_or(u8::MAX))
            .bytes(id)
            .u8(self.suite.to_byte())
            .vec16(self.me.as_bytes())
            .u32(self.policy.max_messages)
            .u64(self.policy.max_age_secs)
            .u64(self.policy.old_key_grace_secs)
            .u64(self.outbound_created_at)
            .u32(count_u32(self.members.len()));
        for (member, m) in &self.members {
            w.vec16(member.as_bytes())
                .bytes(m.identity.as_bytes())
                .vec16(m.share_key.as_bytes());
            write_opt_u32(w, m.last_epoch);
        }
        self.outbound.encode_state(w);
        w.u32(count_u32(self.own_retired.len()));
        for id in &self.own_retired {
            w.bytes(id.as_bytes());
        }
        w.u32(count_u32(self.inbound.len()));
        for e in self.inbound.values() {
            w.vec16(e.member.as_bytes());
            write_opt_u64(w, e.retired_at);
            e.key.encode_state(w);
        }
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote and checks every
    /// invariant the room's operations keep: ids through their constructors,
    /// identities through [`PublicIdentity::from_bytes`], maps strictly
    /// sorted, every key bound to this room, every inbound key held for a
    /// pinned member other than me with an epoch it accepted, at most one
    /// current and [`MAX_RETIRED_KEYS`] retired keys per member. Nothing is
    /// built unless everything holds.
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = read_room(r)?;
        let suite = Suite::from_byte(r.u8()?)?;
        let me = read_member(r)?;
        let policy = RotationPolicy {
            max_messages: r.u32()?,
            max_age_secs: r.u64()?,
            old_key_grace_secs: r.u64()?,
        };
        let outbound_created_at = r.u64()?;

        let n = r.count32(MAX_MEMBERS, MEMBER_STATE_MIN_LEN)?;
        if n < 2 {
            return Err(DecodeError::InvalidValue);
        }
        let mut members: BTreeMap<MemberId, Member> = BTreeMap::new();
        for _ in 0..n {
            let member = read_member(r)?;
            if members
                .last_key_value()
                .is_some_and(|(last, _)| member <= *last)
            {
                return Err(DecodeError::InvalidValue);
            }
            let identity =
                PublicIdentity::from_bytes(r.bytes(PUBLIC_IDENTITY_LEN)?).map_err(|e| match e {
                    Error::Malformed(d) => d,
                    _ => DecodeError::InvalidValue,
                })?;
            let share_key =
                SignedShareKey::from_bytes(r.vec16(MAX_SIGNED_SHARE_KEY_LEN)?, &identity)
                    .map_err(|_| DecodeError::InvalidValue)?;
            if share_key.suite() != suite {
                return Err(DecodeError::InvalidValue);
            }
            let last_epoch = read_opt_u32(r)?;
            members.insert(
                member,
                Member {
                    identity,
                    share_key,
                    last_epoch,
                },
            );
        }
        if !members.contains_key(&me) {
            return Err(DecodeError::InvalidValue);
        }

        let outbound = OutboundSenderKey::decode_state(r)?;
        if *outbound.room() != id
            || (outbound.mode() == SenderKeyMode::Pairwise && members.len() != 2)
        {
            return Err(DecodeError::InvalidValue);
        }

        let n = r.count32(OWN_KEY_HISTORY, 16)?;
        let mut own_retired = Vec::with_capacity(n);
        for _ in 0..n {
            own_retired.push(SenderKeyId::from_bytes(r.array()?));
        }

        let n = r.count32(MAX_INBOUND_KEYS, INBOUND_STATE_MIN_LEN)?;
        let mut inbound: BTreeMap<SenderKeyId, InboundEntry> = BTreeMap::new();
        // Per member: (current keys, retired keys).
        let mut held: BTreeMap<&MemberId, (usize, usize)> = BTreeMap::new();
        for _ in 0..n {
            let member = read_member(r)?;
            let retired_at = read_opt_u64(r)?;
            let key = InboundSenderKey::decode_state(r)?;
            let key_id = key.id();
            let (pinned_member, pinned) = members
                .get_key_value(&member)
                .ok_or(DecodeError::InvalidValue)?;
            if member == me
                || *key.room() != id
                || pinned.last_epoch.is_none_or(|last| key.epoch() > last)
                || inbound
                    .last_key_value()
                    .is_some_and(|(last, _)| key_id <= *last)
            {
                return Err(DecodeError::InvalidValue);
            }
            let count = held.entry(pinned_member).or_insert((0, 0));
            if retired_at.is_some() {
                count.1 += 1;
            } else {
                count.0 += 1;
            }
            if count.0 > 1 || count.1 > MAX_RETIRED_KEYS {
                return Err(DecodeError::InvalidValue);
            }
            inbound.insert(
                key_id,
                InboundEntry {
                    member,
                    key,
                    retired_at,
                },
            );
        }
        Ok(Self {
            id,
            suite,
            me,
            members,
            policy,
            outbound,
            outbound_created_at,
            own_retired,
            inbound,
        })
    }
}

/// Shortest encoding of one pinned member in a room state: a one-byte member
/// id, the identity, and an absent epoch.
const MEMBER_STATE_MIN_LEN: usize = 2 + 1 + PUBLIC_IDENTITY_LEN + 2 + 32 + 1;
/// Shortest encoding of one inbound sender key in a room state: a one-byte
/// member id, an absent retirement time, and the shortest key state.
const INBOUND_STATE_MIN_LEN: usize = 2 + 1 + 1 + (1 + 1 + 4 + 16 + 1 + 12 + 32 + 4);
/// Most inbound sender keys a room can hold: one current and
/// [`MAX_RETIRED_KEYS`] retired keys per member.
const MAX_INBOUND_KEYS: usize = MAX_MEMBERS * (1 + MAX_RETIRED_KEYS);

fn write_opt_u32(w: &mut Writer, v: Option<u32>) {
    match v {
        None => w.u8(0),
        Some(v) => w.u8(1).u32(v),
    };
}

fn write_opt_u64(w: &mut Writer, v: Option<u64>) {
    match v {
        None => w.u8(0),
        Some(v) => w.u8(1).u64(v),
    };
}

fn read_opt_u32(r: &mut Reader<'_>) -> Result<Option<u32>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u32()?)),
        _ => Err(DecodeError::InvalidValue),
    }
}

fn read_opt_u64(r: &mut Reader<'_>) -> Result<Option<u64>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u64()?)),
        _ => Err(DecodeError::InvalidValue),
    }
}

fn read_member(r: &mut Reader<'_>) -> Result<MemberId, DecodeError> {
    MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?).map_err(|_| DecodeError::LengthLimit)
}

fn count_u32(n: usize) -> u32 {
    // Every count written is bounded by a limit far below 2^32.
    u32::try_from(n).unwrap_or(u32::MAX)
}

use crate::clock::now_secs;

/// Membership instance bound into key shares until the membership log
/// assigns real ones.
const NO_INSTANCE: [u8; 32] = [0; 32];

fn mode_for(members: usize) -> SenderKeyMode {
    if members == 2 {
        SenderKeyMode::Pairwise
    } else {
        SenderKeyMode::Signed
    }
}

/// The mode of my next sender key: pairwise only while the room has always
/// had exactly two members. Once a group, always signed: a group that shrinks
/// to two keeps signing, so no member ever has to accept a downgrade from
/// signed to unsigned keys (and no race between removals can cause one).
fn next_mode(current: SenderKeyMode, members: usize) -> SenderKeyMode {
    match current {
        SenderKeyMode::Signed => SenderKeyMode::Signed,
        SenderKeyMode::Pairwise => mode_for(members),
    }
}

impl Room {
    /// Creates (or joins) a room: pins every member's identity and share
    /// key, makes my sender key and returns the key shares for every other
    /// member.
    ///
    /// `members` lists everyone, me included, as (member id, device bundle).
    /// The creator and each joining member call this with the same list. The
    /// room uses the default suite, [`Suite::XWing`] (post-quantum hybrid).
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let room_id = RoomId::new(b"room-42").unwrap();
    /// let (mut at_alice, shares_a) = Room::create(&alice, room_id.clone(), a.clone(), &members).unwrap();
    /// let (mut at_bob, shares_b) = Room::create(&bob, room_id, b.clone(), &members).unwrap();
    /// at_bob.receive_share(&bob, &a, &shares_a[0].bytes).unwrap();
    /// at_alice.receive_share(&alice, &b, &shares_b[0].bytes).unwrap();
    /// let sent = at_alice.encrypt(&alice, b"hi Bob").unwrap();
    /// let got = at_bob.decrypt(&sent.message).unwrap();
    /// assert_eq!(got.sender, a);
    /// assert_eq!(got.plaintext(), b"hi Bob");
    /// ```
    pub fn create(
        identity: &IdentityKeyPair,
        id: RoomId,
        me: MemberId,
        members: &[(MemberId, DeviceBundle)],
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        Self::create_with_rng(
            identity,
            id,
            me,
            members,
            Suite::default(),
            RotationPolicy::default(),
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`create`](Self::create) with an explicit suite, policy, clock (Unix
    /// seconds) and RNG.
    #[allow(clippy::too_many_arguments)]
    pub fn create_with_rng<R: CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: RoomId,
        me: MemberId,
        members: &[(MemberId, DeviceBundle)],
        suite: Suite,
        policy: RotationPolicy,
        now: u64,
        rng: &mut R,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        if members.len() < 2 {
            return Err(Error::TooFewMembers);
        }
        if members.len() > MAX_MEMBERS {
            return Err(Error::LimitExceeded);
        }
        let mut pinned = BTreeMap::new();
        let mut seen = alloc::collections::BTreeSet::new();
        for (member, bundle) in members {
            // One identity per member: a device is one member of a room.
            if !seen.insert(bundle.identity().id()) {
                return Err(Error::DuplicateIdentity);
            }
            let entry = Member {
                identity: bundle.identity().clone(),
                share_key: bundle
                    .share_key(suite)
                    .ok_or(Error::SuiteUnavailable)?
                    .clone(),
                last_epoch: None,
            };
            if pinned.insert(member.clone(), entry).is_some() {
                return Err(Error::DuplicateMember);
            }
        }
        match pinned.get(&me) {
            Some(m) if &m.identity == identity.public() => {}
            Some(_) => return Err(Error::WrongIdentity),
            None => return Err(Error::NotAMember),
        }
        let mode = mode_for(pinned.len());
        let binding = own_binding(&id, identity, 0);
        let outbound = OutboundSenderKey::new_with_rng(id.clone(), 0, mode, binding, 0, rng);
        let room = Self {
            id,
            suite,
            me,
            members: pinned,
            policy,
            outbound,
            outbound_created_at: now,
            own_retired: Vec::new(),
            inbound: BTreeMap::new(),
        };
        let shares = room.share_current_with(identity, None, now, rng)?;
        Ok((room, shares))
    }

    /// The key-exchange suite of the room.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The room id.
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// My member id.
    pub fn me(&self) -> &MemberId {
        &self.me
    }

    /// The members (me included) with the identities the room pinned.
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &PublicIdentity)> {
        self.members.iter().map(|(m, e)| (m, &e.identity))
    }

    /// The identity pinned for `member`.
    pub fn pinned_identity(&self, member: &MemberId) -> Option<&PublicIdentity> {
        self.members.get(member).map(|m| &m.identity)
    }

    /// My current epoch.
    pub fn epoch(&self) -> u32 {
        self.outbound.epoch()
    }

    /// Pairwise while the room has always had exactly two members; signed
    /// once it has had three or more (it stays signed if it shrinks again).
    pub fn mode(&self) -> SenderKeyMode {
        self.outbound.mode()
    }

    /// The rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Checks an identity the server (or anyone) now reports for `member`
    /// against the pinned one: `Ok` if equal, [`Error::IdentityChanged`] if
    /// not (nothing is changed: start a new room), [`Error::NotAMember`] for
    /// an unknown member id.
    pub fn check_member(&self, member: &MemberId, identity: &PublicIdentity) -> Result<(), Error> {
        match self.members.get(member) {
            Some(m) if &m.identity == identity => Ok(()),
            Some(_) => Err(Error::IdentityChanged),
            None => Err(Error::NotAMember),
        }
    }

    /// The identity passed to a call must be the room's own: anything else
    /// is a programming mistake ([`Error::WrongIdentity`]), not an attack.
    fn check_me(&self, identity: &IdentityKeyPair) -> Result<(), Error> {
        match self.members.get(&self.me) {
            Some(m) if &m.identity == identity.public() => Ok(()),
            _ => Err(Error::WrongIdentity),
        }
    }

    /// Key shares of my current sender key for every other member, or only
    /// for `only`. Refuses ([`Error::ShareKeyTooOld`]) when a recipient's
    /// newest known share key is older than the share-key policy allows.
    fn share_current_with<R: CryptoRng + ?Sized>(
        &self,
        identity: &IdentityKeyPair,
        only: Option<&MemberId>,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        let share_policy = ShareKeyPolicy::default();
        let targets: Vec<(&MemberId, &Member)> = self
            .members
            .iter()
            .filter(|(m, _)| **m != self.me && only.is_none_or(|o| o == *m))
            .collect();
        if targets
            .iter()
            .any(|(_, m)| !m.share_key.is_fresh(now, &share_policy))
        {
            return Err(Error::ShareKeyTooOld);
        }
        let recipients: Vec<Recipient<'_>> = targets
            .iter()
            .map(|(_, m)| Recipient::new(&m.identity, &m.share_key))
            .collect();
        let shares = seal_shares_with_rng(
            identity,
            &self.id,
            self.suite,
            self.outbound.epoch(),
            &NO_INSTANCE,
            &self.outbound.share(),
            &recipients,
            rng,
        )?;
        Ok(targets
            .iter()
            .zip(shares)
            .map(|((m, _), s)| OutgoingShare {
                to: (*m).clone(),
                bytes: s.to_bytes(),
            })
            .collect())
    }

    /// Adopts a newer bundle of `member` (published through the relay after
    /// a share-key rotation): the identity must be the pinned one
    /// ([`Error::IdentityChanged`] otherwise, nothing changes) and the share
    /// key of the room's suite strictly newer than the one known
    /// ([`Error::StaleShareKey`] for a replayed older serial).
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, Error};
    /// # let (alice, mut bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let (mut at_alice, _) = Room::create(&alice, RoomId::new(b"r").unwrap(), a, &members).unwrap();
    /// let old = bob.bundle();
    /// let new = bob.rotate_share_keys();
    /// at_alice.update_member_bundle(&b, &new).unwrap();
    /// assert_eq!(at_alice.update_member_bundle(&b, &old).unwrap_err(), Error::StaleShareKey);
    /// ```
    pub fn update_member_bundle(
        &mut self,
        member: &MemberId,
        bundle: &DeviceBundle,
    ) -> Result<(), Error> {
        let m = self.members.get_mut(member).ok_or(Error::NotAMember)?;
        if &m.identity != bundle.identity() {
            return Err(Error::IdentityChanged);
        }
        let key = bundle
            .share_key(self.suite)
            .ok_or(Error::SuiteUnavailable)?;
        if key.serial() <= m.share_key.serial() {
            return Err(Error::StaleShareKey);
        }
        m.share_key = key.clone();
        Ok(())
    }

    /// The newest share key of the room's suite known for `member`.
    pub fn member_share_key(&self, member: &MemberId) -> Option<&SignedShareKey> {
        self.members.get(member).map(|m| &m.share_key)
    }

    /// Accepts a key share that the relay says comes from `from`.
    ///
    /// The sender is identified by the share's signed sender identity, not by
    /// `from`. Refused, with the room unchanged: a share signed by an identity
    /// the room did not pin ([`Error::IdentityChanged`] if `from` is a member:
    /// a reinstall or a key substitution; [`Error::NotAMember`] otherwise);
    /// one of my own shares ([`Error::Reflected`]); one for an epoch not newer
    /// than the last accepted from that member, or a key already known
    /// ([`Error::Replay`]); an unsigned (pairwise) key in a group room
    /// ([`Error::SignatureRequired`]); and everything [`KeyShare::open`]
    /// refuses.
    pub fn receive_share(
        &mut self,
        identity: &IdentityKeyPair,
        from: &MemberId,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.receive_share_at(identity, from, bytes, now_secs())
    }

    /// [`receive_share`](Self::receive_share) with an explicit clock.
    pub fn receive_share_at(
        &mut self,
        identity: &IdentityKeyPair,
        from: &MemberId,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), Error> {
        self.check_me(identity)?;
        let share = KeyShare::from_bytes(bytes)?;
        if share.sender() == identity.public().as_bytes() {
            return Err(Error::Reflected);
        }
        // The sender is whoever the share's (signed) sender identity is, not
        // whoever the relay says: a mislabelled share cannot pass for another
        // member, nor make a member look as if its identity changed.
        let Some((sender, member)) = self
            .members
            .iter()
            .find(|(_, m)| m.identity.as_bytes() == share.sender())
        else {
            // Signed by an identity the room never pinned: if the relay says
            // it comes from a member, that member's identity changed.
            return Err(if self.members.contains_key(from) {
                Error::IdentityChanged
            } else {
                Error::NotAMember
            });
        };
        let from = sender.clone();
        if member.last_epoch.is_some_and(|last| share.epoch() <= last) {
            return Err(Error::Replay);
        }
        if share.suite() != self.suite {
            return Err(Error::SuiteUnavailable);
        }
        let shared = share.open(
            identity,
            &member.identity,
            &self.id,
            share.epoch(),
            &NO_INSTANCE,
        )?;
        // The share carries the sender's current share key (authenticated by
        // the share's signature); adopt it when newer, after checking its own
        // signature so that it can be stored and used on its own.
        let newer_share_key = if share.sender_share_key_serial() > member.share_key.serial() {
            Some(share.sender_share_key(&member.identity)?)
        } else {
            None
        };
        if self.inbound.contains_key(&shared.id()) || shared.id() == self.outbound.id() {
            return Err(Error::Replay);
        }
        if shared.mode() == SenderKeyMode::Pairwise
            && next_mode(self.outbound.mode(), self.members.len()) == SenderKeyMode::Signed
        {
            // A group room never accepts an unsigned sender key.
            return Err(Error::SignatureRequired);
        }
        let epoch = share.epoch();
        let binding = crate::sender_key::sender_key_binding(
            &self.id,
            &member.identity.signing_key().to_bytes(),
            &[0u8; 32],
            epoch,
        );
        let predecessor_end = shared.predecessor_end();
        let key = InboundSenderKey::new(self.id.clone(), epoch, shared, binding)?;
        // Commit: everything above was checked without changing state.
        for entry in self.inbound.values_mut() {
            if entry.member == from && entry.retired_at.is_none() {
                entry.retired_at = Some(now);
                // The end the new share carries is that of the owner's
                // immediately previous key: apply it only to that key (a
                // share for a skipped epoch says nothing about older ones).
                if epoch.checked_sub(1) == Some(entry.key.epoch()) {
                    entry.key.retire(predecessor_end);
                }
            }
        }
        self.inbound.insert(
            key.id(),
            InboundEntry {
                member: from.clone(),
                key,
                retired_at: None,
            },
        );
        if let Some(m) = self.members.get_mut(&from) {
            m.last_epoch = Some(epoch);
            if let Some(key) = newer_share_key {
                m.share_key = key;
            }
        }
        self.prune(now);
        Ok(())
    }

    /// Drops retired keys past the grace period or beyond [`MAX_RETIRED_KEYS`].
    fn prune(&mut self, now: u64) {
        let grace = self.policy.old_key_grace_secs;
        self.inbound
            .retain(|_, e| e.retired_at.is_none_or(|t| now.saturating_sub(t) <= grace));
        for member in self.members.keys() {
            let mut retired: Vec<(u32, SenderKeyId)> = self
                .inbound
                .iter()
                .filter(|(_, e)| e.member == *member && e.retired_at.is_some())
                .map(|(id, e)| (e.key.epoch(), *id))
                .collect();
            if retired.len() > MAX_RETIRED_KEYS {
                retired.sort_unstable();
                let excess = retired.len() - MAX_RETIRED_KEYS;
                for (_, id) in retired.into_iter().take(excess) {
                    self.inbound.remove(&id);
                }
            }
        }
    }

    /// Whether the rotation policy asks for a new sender key now.
    pub fn rotation_due(&self, now: u64) -> bool {
        self.outbound.index() >= self.policy.max_messages
            || now.saturating_sub(self.outbound_created_at) >= self.policy.max_age_secs
    }

    /// Encrypts a message for the room, rotating my sender key first when
    /// the [`RotationPolicy`] says so.
    pub fn encrypt(
        &mut self,
        identity: &IdentityKeyPair,
        plaintext: &[u8],
    ) -> Result<Outgoing, Error> {
        self.encrypt_with_rng(identity, plaintext, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`encrypt`](Self::encrypt) with an explicit clock and RNG.
    pub fn encrypt_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        plaintext: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<Outgoing, Error> {
        self.check_me(identity)?;
        if plaintext.len() > crate::limits::MAX_PLAINTEXT_LEN {
            return Err(Error::LimitExceeded);
        }
        let shares = if self.rotation_due(now) {
            self.rotate_with_rng(identity, now, rng)?
        } else {
            Vec::new()
        };
        let message = self.outbound.encrypt_with_rng(plaintext, rng)?;
        Ok(Outgoing { shares, message })
    }

    /// Rotates my sender key now (a new epoch) and returns its key shares for
    /// every other member.
    pub fn rotate(&mut self, identity: &IdentityKeyPair) -> Result<Vec<OutgoingShare>, Error> {
        self.rotate_with_rng(identity, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`rotate`](Self::rotate) with an explicit clock and RNG.
    pub fn rotate_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.check_me(identity)?;
        let epoch = self
            .outbound
            .epoch()
            .checked_add(1)
            .ok_or(Error::ChainExhausted)?;
        let fresh = OutboundSenderKey::new_with_rng(
            self.id.clone(),
            epoch,
            next_mode(self.outbound.mode(), self.members.len()),
            own_binding(&self.id, identity, epoch),
            self.outbound.index(),
            rng,
        );
        let old = core::mem::replace(&mut self.outbound, fresh);
        match self.share_current_with(identity, None, now, rng) {
            Ok(shares) => {
                self.own_retired.push(old.id());
                if self.own_retired.len() > OWN_KEY_HISTORY {
                    self.own_retired.remove(0);
                }
                self.outbound_created_at = now;
                Ok(shares)
            }
            Err(e) => {
                self.outbound = old;
                Err(e)
            }
        }
    }

    /// Pins a new member and shares my sender key with it.
    ///
    /// In a group room the newcomer gets my *current* key from the current
    /// index (it reads nothing sent before). A pairwise room that grows to
    /// three members becomes a group room: I rotate to a signed sender key,
    /// shared with everyone. Returns the shares to deliver. A member id that
    /// is already pinned to another identity gives [`Error::IdentityChanged`].
    pub fn add_member(
        &mut self,
        identity: &IdentityKeyPair,
        member: MemberId,
        public: DeviceBundle,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.add_member_with_rng(
            identity,
            member,
            public,
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`add_member`](Self::add_member) with an explicit clock and RNG.
    pub fn add_member_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        member: MemberId,
        bundle: DeviceBundle,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.check_me(identity)?;
        let public = bundle.identity().clone();
        let share_key = bundle
            .share_key(self.suite)
            .ok_or(Error::SuiteUnavailable)?
            .clone();
        if let Some(existing) = self.members.get(&member) {
            return if existing.identity == public {
                Err(Error::Replay)
            } else {
                Err(Error::IdentityChanged)
            };
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(Error::LimitExceeded);
        }
        if self.members.values().any(|m| m.identity == public) {
            // The identity is already pinned under another member id.
            return Err(Error::DuplicateIdentity);
        }
        self.members.insert(
            member.clone(),
            Member {
                identity: public,
                share_key,
                last_epoch: None,
            },
        );
        let result = if next_mode(self.outbound.mode(), self.members.len()) != self.outbound.mode()
        {
            self.rotate_with_rng(identity, now, rng)
        } else {
            self.share_current_with(identity, Some(&member), now, rng)
        };
        if result.is_err() {
            self.members.remove(&member);
        }
        result
    }

    /// Removes a member: drops its keys and rotates my sender key, shared
    /// only with the remaining members, so it reads nothing I send after.
    /// (Every remaining member's device does the same when its app applies
    /// the removal.)
    pub fn remove_member(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.remove_member_with_rng(identity, member, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`remove_member`](Self::remove_member) with an explicit clock and RNG.
    pub fn remove_member_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.check_me(identity)?;
        if *member == self.me {
            return Err(Error::NotAMember);
        }
        if self.members.len() <= 2 {
            // A room needs two members; leaving a 1:1 room means deleting it.
            return Err(Error::TooFewMembers);
        }
        let removed = self.members.remove(member).ok_or(Error::NotAMember)?;
        match self.rotate_with_rng(identity, now, rng) {
            Ok(shares) => {
                self.inbound.retain(|_, e| e.member != *member);
                Ok(shares)
            }
            Err(e) => {
                self.members.insert(member.clone(), removed);
                Err(e)
            }
        }
    }

    /// Decrypts a message from another member.
    ///
    /// Errors leave the room unchanged: [`Error::UnknownSenderKey`] (keep
    /// the message and retry after the sender's key share arrives),
    /// [`Error::Reflected`] (a message under my own key, bounced by the
    /// relay), [`Error::Replay`], [`Error::TooOld`], [`Error::TooFarAhead`],
    /// [`Error::BadSignature`], [`Error::SignatureRequired`],
    /// [`Error::Tampered`], [`Error::NotForMe`], [`Error::Malformed`].
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Received, Error> {
        self.decrypt_at(bytes, now_secs())
    }

    /// [`decrypt`](Self::decrypt) with an explicit clock (for the grace
    /// period of retired keys).
    pub fn decrypt_at(&mut self, bytes: &[u8], now: u64) -> Result<Received, Error> {
        let msg = Message::from_bytes(bytes)?;
        if msg.room_id() != self.id.as_bytes() {
            return Err(Error::NotForMe);
        }
        let key_id = msg.sender_key();
        if key_id == self.outbound.id() || self.own_retired.contains(&key_id) {
            return Err(Error::Reflected);
        }
        let grace = self.policy.old_key_grace_secs;
        let entry = self
            .inbound
            .get_mut(&key_id)
            .ok_or(Error::UnknownSenderKey)?;
        if entry
            .retired_at
            .is_some_and(|t| now.saturating_sub(t) > grace)
        {
            return Err(Error::TooOld);
        }
        let plaintext = entry.key.decrypt(&msg)?;
        Ok(Received {
            sender: entry.member.clone(),
            epoch: entry.key.epoch(),
            index: plaintext.index(),
            plaintext,
        })
    }

    /// For each member, the indices of its current sender key that were
    /// skipped and have not arrived yet.
    pub fn missing(&self) -> Vec<(MemberId, u32, Vec<u32>)> {
        self.inbound
            .values()
            .filter(|e| e.retired_at.is_none())
            .map(|e| (e.member.clone(), e.key.epoch(), e.key.missing_indices()))
            .filter(|(_, _, m)| !m.is_empty())
            .collect()
    }

    /// The public key image, numeric code and scannable payload for verifying
    /// `member` face to face (or over another channel): computed from *my*
    /// pinned identity and the identity this room pinned for `member`. If the
    /// relay substituted either key, the two phones show different pictures.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// let (at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// let (at_bob, _) = Room::create(&bob, id, b.clone(), &members).unwrap();
    /// let on_alices_phone = at_alice.verification(&b).unwrap();
    /// let on_bobs_phone = at_bob.verification(&a).unwrap();
    /// assert_eq!(on_alices_phone.image(), on_bobs_phone.image());
    /// assert_eq!(on_alices_phone.numeric_code(), on_bobs_phone.numeric_code());
    /// assert!(on_alices_phone.verify_scanned(&on_bobs_phone.payload().to_bytes()).is_ok());
    /// ```
    pub fn verification(&self, member: &MemberId) -> Result<PairVerification, Error> {
        if *member == self.me {
            return Err(Error::NotAMember);
        }
        let mine = self.members.get(&self.me).ok_or(Error::NotAMember)?;
        let theirs = self.members.get(member).ok_or(Error::NotAMember)?;
        Ok(PairVerification::new(
            Fingerprint::compute(&self.me, &mine.identity),
            Fingerprint::compute(member, &theirs.identity),
        ))
    }

    /// The room digest over every member's fingerprint (for group rooms:
    /// every member's phone shows the same digest picture exactly when they
    /// all pinned the same identities).
    pub fn digest(&self) -> Result<RoomDigest, Error> {
        let members: Vec<(MemberId, PublicIdentity)> = self
            .members
            .iter()
            .map(|(m, e)| (m.clone(), e.identity.clone()))
            .collect();
        room_digest(&members)
    }

    /// Whether the room holds a current sender key of `member`.
    pub fn has_key_of(&self, member: &MemberId) -> bool {
        self.inbound
            .values()
            .any(|e| e.member == *member && e.retired_at.is_none())
    }
}

/// The binding of my own sender key for `epoch` (membership instances come
/// later: the instance is all zero for now).
fn own_binding(room: &RoomId, identity: &IdentityKeyPair, epoch: u32) -> [u8; 32] {
    crate::sender_key::sender_key_binding(
        room,
        &identity.public().signing_key().to_bytes(),
        &[0u8; 32],
        epoch,
    )
}
