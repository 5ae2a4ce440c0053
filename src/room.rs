//! Rooms: 1:1 and group secret chats on a signed membership log.
//!
//! A [`Room`] is one device's view of one secret chat. Who is in it is never
//! the relay's word: it is the room's [membership log](crate::membership),
//! a graph of operations signed by members, rooted at a genesis signed by
//! the creator. Around the log the room keeps my own sender key
//! ([`OutboundSenderKey`]), every other member's ([`InboundSenderKey`]),
//! and the newest verified share key of each member.
//!
//! - [`Room::create`]: the creator signs the genesis (room id, suite,
//!   policy, members with their identities), makes its sender key and the
//!   key shares for every other member. [`Room::welcome`] gives the bytes a
//!   member joins from (the log and the members' bundles).
//! - [`Room::join`]: a member verifies a welcome from its genesis (every
//!   signature and rule; it trusts no member list from the relay), and makes
//!   its own sender key and key shares.
//! - [`Room::receive_share`] accepts another member's key share, signed by
//!   the identity the log gives that member, bound to its current
//!   membership instance, and with a proof of possession by the sender key
//!   itself, so a key is filed under its owner and no one else.
//! - [`Room::encrypt`] / [`Room::decrypt`] send and receive messages.
//! - [`Room::add_member`], [`Room::remove_member`], [`Room::leave`] make a
//!   signed operation ([`MembershipChange`]); [`Room::apply_update`] applies
//!   one that arrives. A removal makes every remaining device rotate its
//!   sender key and share it only with the remaining members; an addition
//!   makes every device share its current key (from its current index) with
//!   the newcomer.
//!
//! A room of exactly two members that never had more is pairwise
//! (unsigned messages, deniable); otherwise every message is signed.
//!
//! # Membership instances and epochs
//!
//! Each addition of a member starts a new *instance* of it (the id of the
//! operation that added it; the genesis id for the initial members). Key
//! shares and sender keys are bound to the sender's instance, so nothing
//! sent before a removal is accepted after a re-addition. Within an instance
//! a member's epochs only grow: a share for an epoch not newer than the last
//! one accepted is refused.

use crate::error::{DecodeError, Error};
use crate::fingerprint::{Fingerprint, PairVerification, RoomDigest};
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::ids::{MemberId, RoomId, SenderKeyId};
use crate::keyshare::{KeyShare, Recipient, seal_shares_with_rng};
use crate::labels;
use crate::limits::{MAX_MEMBER_ID_LEN, MAX_MEMBERS, OWN_KEY_HISTORY};
use crate::membership::{
    Event, Genesis, IdentityKey, InstanceId, Membership, Received as OpReceived, RoomPolicy,
};
use crate::message::{Decrypted, Message};
use crate::sender_key::{
    InboundSenderKey, OutboundSenderKey, SenderKeyMode, read_room, sender_key_binding,
};
use crate::share_key::{
    DeviceBundle, MAX_SIGNED_SHARE_KEY_LEN, ShareKeyPolicy, SignedShareKey, Suite,
};
use crate::wire::{Reader, Writer};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

pub use crate::limits::MAX_RETIRED_KEYS;

use crate::clock::now_secs;

mod records;
use records::Unsaved;
mod key_request;
pub use key_request::{KeyRequest, KeyRequestAnswer, OutgoingKeyRequest};

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

/// Everything a room is created with besides its members.
///
/// ```
/// use secret_chat::room::RoomOptions;
/// use secret_chat::Suite;
/// let options = RoomOptions { suite: Suite::X25519, ..RoomOptions::default() };
/// assert_eq!(options.rotation.max_messages, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RoomOptions {
    /// The key-exchange suite (default X-Wing, post-quantum hybrid).
    pub suite: Suite,
    /// When my sender key rotates by itself.
    pub rotation: RotationPolicy,
    /// Who may add and remove members (fixed by the genesis).
    pub membership: RoomPolicy,
    /// Members besides the creator who may remove others.
    pub admins: Vec<MemberId>,
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
#[must_use = "the key shares of a rotation must be delivered, or members cannot read the message"]
pub struct Outgoing {
    /// Key shares of a rotation that happened first (usually empty).
    pub shares: Vec<OutgoingShare>,
    /// The encrypted message, the same bytes for every member.
    pub message: Vec<u8>,
}

/// A message [`Room::decrypt`] accepted.
#[derive(Debug)]
pub struct Received {
    /// The member who sent it: the owner of the sender key whose signature
    /// (groups) or AEAD (1:1) verified it.
    pub sender: MemberId,
    /// The sender's epoch.
    pub epoch: u32,
    /// The index in the sender's chain.
    pub index: u32,
    decrypted: Decrypted,
}

impl Received {
    /// The plaintext bytes.
    pub fn plaintext(&self) -> &[u8] {
        self.decrypted.plaintext()
    }

    /// The plaintext, owned (the buffer is handed over, not copied).
    pub fn into_plaintext(self) -> Vec<u8> {
        self.decrypted.into_plaintext()
    }
}

/// What [`Room::receive_share`] accepted: whose key, which epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedShare {
    /// The member whose sender key it is (the share's signer).
    pub from: MemberId,
    /// Its epoch.
    pub epoch: u32,
}

/// A membership operation made on this device: what to send and what it
/// changed.
#[derive(Clone, Debug)]
#[must_use = "the update and the key shares must be delivered"]
pub struct MembershipChange {
    /// The signed update, for every member (and the relay's log).
    pub update: Vec<u8>,
    /// For an addition: the welcome the newcomer joins from.
    pub welcome: Option<Vec<u8>>,
    /// My key shares this change requires (my current key for a newcomer,
    /// or my new key for the remaining members after a removal).
    pub shares: Vec<OutgoingShare>,
    /// What changed.
    pub events: Vec<Event>,
}

/// What [`Room::apply_update`] did.
#[derive(Clone, Debug, Default)]
#[must_use = "the key shares must be delivered"]
pub struct Applied {
    /// What changed (empty for a duplicate).
    pub events: Vec<Event>,
    /// My key shares the change requires.
    pub shares: Vec<OutgoingShare>,
    /// The operation waits for operations it builds on (it is kept, bounded,
    /// and applied when they arrive): nothing to retry.
    pub held: bool,
    /// The operation was already applied.
    pub duplicate: bool,
}

struct InboundEntry {
    member: MemberId,
    instance: InstanceId,
    key: InboundSenderKey,
    /// Set when a newer key from the same member replaced this one.
    retired_at: Option<u64>,
}

/// A present member other than me.
#[derive(Clone)]
struct Peer {
    identity: PublicIdentity,
    instance: InstanceId,
    /// The newest share key of the room's suite verified for this member.
    share_key: Option<SignedShareKey>,
    /// Newest epoch accepted from this instance (`None`: no share yet).
    last_epoch: Option<u32>,
    /// Whether my current sender key still has to be shared with it (its
    /// share key was missing or too old when I last shared).
    owed: bool,
}

/// One device's state of one secret chat. See the [module docs](self).
pub struct Room {
    id: RoomId,
    suite: Suite,
    me: MemberId,
    my_identity: PublicIdentity,
    membership: Membership,
    peers: BTreeMap<MemberId, Peer>,
    policy: RotationPolicy,
    outbound: OutboundSenderKey,
    outbound_created_at: u64,
    own_retired: Vec<SenderKeyId>,
    inbound: BTreeMap<SenderKeyId, InboundEntry>,
    /// Records changed since the last save (not itself stored).
    unsaved: Unsaved,
    /// Re-shares answered to key requests lately (in memory only: never
    /// stored, so a restart resets it; see `key_request`).
    key_requests: key_request::AnswerLimiter,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.id)
            .field("me", &self.me)
            .field("members", &self.membership.member_count())
            .field("epoch", &self.outbound.epoch())
            .finish_non_exhaustive()
    }
}

fn mode_for(members: usize) -> SenderKeyMode {
    if members == 2 {
        SenderKeyMode::Pairwise
    } else {
        SenderKeyMode::Signed
    }
}

/// The binding of a sender key of `owner` (instance `instance`) in `room`
/// and `epoch`.
fn binding(room: &RoomId, owner: &PublicIdentity, instance: &InstanceId, epoch: u32) -> [u8; 32] {
    sender_key_binding(room, owner.as_bytes(), instance.as_bytes(), epoch)
}

fn identity_of(key: &IdentityKey) -> PublicIdentity {
    key.to_public()
}

/// Welcome: `0x02 || 0x10 || u32 len || log || u16 count || count x (u16 len
/// member id || u16 len bundle)`.
const WELCOME_TYPE: u8 = 0x10;
/// Update: `0x02 || 0x11 || u32 len || operation || u16 len || bundle (0 = none)`.
const UPDATE_TYPE: u8 = 0x11;
/// Longest encoded membership log a welcome may carry (bounded by the log's
/// own limits; this only stops a length field from asking for more).
const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;
/// Longest encoded device bundle.
const MAX_BUNDLE_LEN: usize = 1 + 32 + 1 + 2 * (2 + MAX_SIGNED_SHARE_KEY_LEN);

impl Room {
    /// Creates a room as its creator: signs the genesis with `members` (me
    /// included, each with its [`DeviceBundle`]), makes my sender key and
    /// returns the key shares for every other member. Send
    /// [`welcome`](Self::welcome) and the shares through the relay; the
    /// others call [`join`](Self::join).
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let room_id = RoomId::random();
    /// let (mut at_alice, to_bob) = Room::create(&alice, room_id.clone(), a.clone(), &members).unwrap();
    /// let (mut at_bob, to_alice) = Room::join(&bob, b.clone(), &room_id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// at_bob.receive_share(&bob, &to_bob[0].bytes).unwrap();
    /// at_alice.receive_share(&alice, &to_alice[0].bytes).unwrap();
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
            &RoomOptions::default(),
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`create`](Self::create) with explicit [`RoomOptions`] (suite,
    /// rotation policy, who may add and remove, admins), with the OS clock
    /// and RNG.
    ///
    /// ```
    /// use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, RoomOptions, RotationPolicy, Suite};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let options = RoomOptions {
    ///     suite: Suite::X25519,
    ///     rotation: RotationPolicy { max_messages: 100, ..RotationPolicy::default() },
    ///     ..RoomOptions::default()
    /// };
    /// let (room, _) = Room::create_with_options(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members, &options).unwrap();
    /// assert_eq!(room.suite(), Suite::X25519);
    /// assert_eq!(room.policy().max_messages, 100);
    /// ```
    pub fn create_with_options(
        identity: &IdentityKeyPair,
        id: RoomId,
        me: MemberId,
        members: &[(MemberId, DeviceBundle)],
        options: &RoomOptions,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        Self::create_with_rng(
            identity,
            id,
            me,
            members,
            options,
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`create`](Self::create) with explicit options, clock (Unix seconds)
    /// and RNG.
    pub fn create_with_rng<R: CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: RoomId,
        me: MemberId,
        members: &[(MemberId, DeviceBundle)],
        options: &RoomOptions,
        now: u64,
        rng: &mut R,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        if members.len() < 2 {
            return Err(Error::TooFewMembers);
        }
        if members.len() > MAX_MEMBERS {
            return Err(Error::LimitExceeded);
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (member, bundle) in members {
            if !ids.insert(member.clone()) {
                return Err(Error::DuplicateMember);
            }
            if !keys.insert(*bundle.identity().as_bytes()) {
                return Err(Error::DuplicateIdentity);
            }
        }
        match members.iter().find(|(m, _)| *m == me) {
            Some((_, b)) if b.identity() == identity.public() => {}
            Some(_) => return Err(Error::WrongIdentity),
            None => return Err(Error::NotAMember),
        }
        let listed: Vec<(MemberId, IdentityKey)> = members
            .iter()
            .map(|(m, b)| (m.clone(), IdentityKey::of_public(b.identity())))
            .collect();
        let genesis = Genesis::create(
            identity,
            &id,
            options.suite.to_byte(),
            options.membership,
            &me,
            &listed,
            &options.admins,
        )?;
        let membership = Membership::new(genesis);
        let bundles: Vec<(&MemberId, &DeviceBundle)> =
            members.iter().map(|(m, b)| (m, b)).collect();
        Self::start(
            identity,
            id,
            me,
            membership,
            &bundles,
            options.rotation,
            now,
            rng,
        )
    }

    /// Joins a room from a welcome (sent by the creator or by whoever added
    /// me): verifies the membership log from its genesis (every signature,
    /// every rule; a log for another room than `room` is refused), checks
    /// that I am a present member with my own identity, adopts the members'
    /// bundles the welcome carries (each must belong to the identity the log
    /// gives that member), makes my sender key and returns the key shares
    /// for every other member.
    ///
    /// The log says who created the room and who added me
    /// ([`creator`](Self::creator)): show it, and let people compare the
    /// public key image, before trusting the room.
    pub fn join(
        identity: &IdentityKeyPair,
        me: MemberId,
        room: &RoomId,
        welcome: &[u8],
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        Self::join_with_rng(
            identity,
            me,
            room,
            welcome,
            RotationPolicy::default(),
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`join`](Self::join) with my own [`RotationPolicy`] for the sender
    /// key I make, with the OS clock and RNG.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, RotationPolicy};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::random();
    /// # let (at_alice, _) = Room::create(&alice, id.clone(), a, &members).unwrap();
    /// let policy = RotationPolicy { max_age_secs: 24 * 3600, ..RotationPolicy::default() };
    /// let (at_bob, _) = Room::join_with_policy(&bob, b, &id, &at_alice.welcome(&alice).unwrap(), policy).unwrap();
    /// assert_eq!(at_bob.policy().max_age_secs, 24 * 3600);
    /// ```
    pub fn join_with_policy(
        identity: &IdentityKeyPair,
        me: MemberId,
        room: &RoomId,
        welcome: &[u8],
        policy: RotationPolicy,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        Self::join_with_rng(
            identity,
            me,
            room,
            welcome,
            policy,
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`join`](Self::join) with an explicit rotation policy, clock and RNG.
    #[allow(clippy::too_many_arguments)]
    pub fn join_with_rng<R: CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        me: MemberId,
        room: &RoomId,
        welcome: &[u8],
        policy: RotationPolicy,
        now: u64,
        rng: &mut R,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        let mut r = Reader::new(welcome);
        r.version(labels::PROTOCOL_VERSION)?;
        if r.u8()? != WELCOME_TYPE {
            return Err(DecodeError::InvalidValue.into());
        }
        let log = r.vec32(MAX_LOG_BYTES)?;
        let n = usize::from(r.u16()?);
        let mut bundles: Vec<(MemberId, DeviceBundle)> =
            Vec::with_capacity(n.min(r.remaining() / 4));
        for _ in 0..n {
            let member = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
            let bundle = DeviceBundle::from_bytes(r.vec16(MAX_BUNDLE_LEN)?)?;
            bundles.push((member, bundle));
        }
        r.finish()?;
        let membership = Membership::from_log(log, room)?;
        match membership.identity_of(&me) {
            Some(k) if k.as_bytes() == identity.public().as_bytes() => {}
            Some(_) => return Err(Error::WrongIdentity),
            None => return Err(Error::NotAMember),
        }
        for (member, bundle) in &bundles {
            match membership.identity_of(member) {
                Some(k) if k.as_bytes() == bundle.identity().as_bytes() => {}
                _ => return Err(Error::WelcomeMismatch),
            }
        }
        let refs: Vec<(&MemberId, &DeviceBundle)> = bundles.iter().map(|(m, b)| (m, b)).collect();
        Self::start(
            identity,
            room.clone(),
            me,
            membership,
            &refs,
            policy,
            now,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start<R: CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: RoomId,
        me: MemberId,
        membership: Membership,
        bundles: &[(&MemberId, &DeviceBundle)],
        policy: RotationPolicy,
        now: u64,
        rng: &mut R,
    ) -> Result<(Self, Vec<OutgoingShare>), Error> {
        let suite = Suite::from_byte(membership.genesis().suite())?;
        let my_instance = membership.instance_of(&me).ok_or(Error::NotAMember)?;
        let mut peers = BTreeMap::new();
        for (member, key, instance) in membership.members() {
            if *member == me {
                continue;
            }
            let share_key = bundles
                .iter()
                .find(|(m, b)| *m == member && b.identity().as_bytes() == key.as_bytes())
                .and_then(|(_, b)| b.share_key(suite).cloned());
            peers.insert(
                member.clone(),
                Peer {
                    identity: identity_of(key),
                    instance,
                    share_key,
                    last_epoch: None,
                    owed: true,
                },
            );
        }
        let mode = mode_for(membership.member_count());
        let outbound = OutboundSenderKey::new_with_rng(
            id.clone(),
            0,
            mode,
            binding(&id, identity.public(), &my_instance, 0),
            0,
            rng,
        );
        let mut room = Self {
            id,
            suite,
            me,
            my_identity: identity.public().clone(),
            membership,
            peers,
            policy,
            outbound,
            outbound_created_at: now,
            own_retired: Vec::new(),
            inbound: BTreeMap::new(),
            unsaved: Unsaved::everything(),
            key_requests: key_request::AnswerLimiter::default(),
        };
        let shares = room.share_owed(identity, now, rng)?;
        Ok((room, shares))
    }

    /// The welcome a member joins from: the membership log (verified from
    /// its genesis by [`join`](Self::join)) and the device bundles this room
    /// knows, mine included (members who join need my share key to send me
    /// theirs). Public material: it may go through the relay.
    pub fn welcome(&self, identity: &IdentityKeyPair) -> Result<Vec<u8>, Error> {
        self.check_me(identity)?;
        let log = self.membership.to_log();
        let mut entries: Vec<(&MemberId, Vec<u8>)> =
            alloc::vec![(&self.me, identity.bundle().to_bytes())];
        for (m, p) in &self.peers {
            if let Some(k) = &p.share_key {
                let bundle = DeviceBundle::new(p.identity.clone(), alloc::vec![k.clone()]);
                entries.push((m, bundle.to_bytes()));
            }
        }
        let mut w = Writer::with_capacity(8 + log.len());
        w.u8(labels::PROTOCOL_VERSION)
            .u8(WELCOME_TYPE)
            .vec32(&log)
            .u16(u16::try_from(entries.len()).map_err(|_| Error::LimitExceeded)?);
        for (m, b) in &entries {
            w.vec16(m.as_bytes()).vec16(b);
        }
        Ok(w.into_vec())
    }

    /// The room id.
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// The key-exchange suite of the room.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// My member id.
    pub fn me(&self) -> &MemberId {
        &self.me
    }

    /// Whether I am still a member (not removed, not left).
    pub fn is_member(&self) -> bool {
        self.membership.is_member(&self.me)
    }

    /// The member who created the room (signed the genesis).
    pub fn creator(&self) -> &MemberId {
        self.membership.genesis().creator()
    }

    /// The present members (me included) with their identities.
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &PublicIdentity)> {
        core::iter::once((&self.me, &self.my_identity))
            .filter(|_| self.membership.is_member(&self.me))
            .chain(self.peers.iter().map(|(m, p)| (m, &p.identity)))
    }

    /// The identity the log gives `member` (a present member).
    pub fn pinned_identity(&self, member: &MemberId) -> Option<&PublicIdentity> {
        if *member == self.me {
            return Some(&self.my_identity);
        }
        self.peers.get(member).map(|p| &p.identity)
    }

    /// The membership log.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// My current epoch.
    pub fn epoch(&self) -> u32 {
        self.outbound.epoch()
    }

    /// Pairwise while the room has always had exactly two members; signed
    /// otherwise (it stays signed if it shrinks again).
    pub fn mode(&self) -> SenderKeyMode {
        self.outbound.mode()
    }

    /// The rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Checks an identity the server (or anyone) now reports for `member`
    /// against the one the log gives it: `Ok` if equal,
    /// [`Error::IdentityChanged`] if not (nothing changes: a reinstall makes
    /// a new identity, which needs a new room or a signed re-addition),
    /// [`Error::NotAMember`] for a member id that is not present.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// assert!(at_alice.check_member(&b, bob.public()).is_ok());
    /// let reinstalled = IdentityKeyPair::generate();
    /// assert_eq!(at_alice.check_member(&b, reinstalled.public()).unwrap_err(), secret_chat::Error::IdentityChanged);
    /// ```
    pub fn check_member(&self, member: &MemberId, identity: &PublicIdentity) -> Result<(), Error> {
        match self.pinned_identity(member) {
            Some(p) if p == identity => Ok(()),
            Some(_) => Err(Error::IdentityChanged),
            None => Err(Error::NotAMember),
        }
    }

    /// The identity passed to a call must be the room's own: anything else
    /// is a programming mistake ([`Error::WrongIdentity`]), not an attack.
    fn check_me(&self, identity: &IdentityKeyPair) -> Result<(), Error> {
        if identity.public() == &self.my_identity {
            Ok(())
        } else {
            Err(Error::WrongIdentity)
        }
    }

    fn my_instance(&self) -> Result<InstanceId, Error> {
        self.membership
            .instance_of(&self.me)
            .ok_or(Error::NotAMember)
    }

    /// Shares my current sender key with every peer that is owed it and has
    /// a fresh share key; peers without one stay owed (see
    /// [`owed_shares`](Self::owed_shares)).
    fn share_owed<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        let share_policy = ShareKeyPolicy::default();
        let targets: Vec<(MemberId, PublicIdentity, SignedShareKey)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.owed)
            .filter_map(|(m, p)| {
                p.share_key
                    .as_ref()
                    .filter(|k| k.is_fresh(now, &share_policy))
                    .map(|k| (m.clone(), p.identity.clone(), k.clone()))
            })
            .collect();
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let recipients: Vec<Recipient<'_>> = targets
            .iter()
            .map(|(_, identity, key)| Recipient::new(identity, key))
            .collect();
        let instance = self.my_instance()?;
        let shares = seal_shares_with_rng(
            identity,
            &self.id,
            self.suite,
            self.outbound.epoch(),
            instance.as_bytes(),
            &self.outbound.share(),
            &recipients,
            rng,
        )?;
        for (m, _, _) in &targets {
            if let Some(p) = self.peers.get_mut(m) {
                p.owed = false;
            }
        }
        self.unsaved.outbound = true;
        Ok(targets
            .into_iter()
            .zip(shares)
            .map(|((to, _, _), s)| OutgoingShare {
                to,
                bytes: s.to_bytes(),
            })
            .collect())
    }

    /// Recovery: seals my *current* sender key again for `member` (from my
    /// current index: it reads nothing earlier, so messages I sent under the
    /// lost copy stay unreadable to it: forward secrecy keeps no old chain
    /// keys), for when its copy was lost
    /// (a crash before it saved, a share dropped by the relay, or
    /// [`Error::ShareKeyErased`] on its side). Nothing else changes; the
    /// member accepts it only if it does not already hold that key
    /// (otherwise `Replay`, harmless). Without a fresh share key of the
    /// member the result is empty and the member stays
    /// [owed](Self::owed_shares).
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// let (mut at_alice, lost) = Room::create(&alice, id.clone(), a, &members).unwrap();
    /// let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// drop(lost); // the relay dropped Alice's share to Bob
    /// let again = at_alice.reshare(&alice, &b).unwrap();
    /// at_bob.receive_share(&bob, &again[0].bytes).unwrap();
    /// ```
    pub fn reshare(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.reshare_with_rng(identity, member, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`reshare`](Self::reshare) with an explicit clock and RNG.
    pub fn reshare_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.check_me(identity)?;
        if !self.is_member() {
            return Err(Error::NotAMember);
        }
        let owed: Vec<(MemberId, bool)> = self
            .peers
            .iter()
            .map(|(m, p)| (m.clone(), p.owed))
            .collect();
        for (m, p) in self.peers.iter_mut() {
            p.owed = m == member;
        }
        if !self.peers.contains_key(member) {
            return Err(Error::NotAMember);
        }
        let result = self.share_owed(identity, now, rng);
        self.unsaved.outbound = true;
        for (m, o) in owed {
            if let Some(p) = self.peers.get_mut(&m) {
                // Others keep what they were owed; the member is owed only
                // if the share could not be made.
                p.owed = if m == *member {
                    o && result.as_ref().map_or(true, |s| s.is_empty())
                } else {
                    o
                };
            }
        }
        result
    }

    /// Members my current sender key has not been shared with yet because
    /// the room knows no fresh share key of theirs: pass their current
    /// bundle to [`update_member_bundle`](Self::update_member_bundle), or,
    /// once a key share of theirs has brought a newer share key in band,
    /// call [`reshare`](Self::reshare).
    pub fn owed_shares(&self) -> Vec<MemberId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.owed)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Adopts a newer bundle of `member` (published through the relay after
    /// a share-key rotation, or fetched because the member is
    /// [owed a share](Self::owed_shares)): the identity must be the one the
    /// log gives the member ([`Error::IdentityChanged`] otherwise, nothing
    /// changes) and its share key of the room's suite strictly newer than
    /// the one known ([`Error::StaleShareKey`] for a replayed older serial).
    /// Returns my key share for the member if it was owed one.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, Error};
    /// # let (alice, mut bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// let (mut at_alice, _) = Room::create(&alice, RoomId::new(b"r").unwrap(), a, &members).unwrap();
    /// let old = bob.bundle();
    /// let new = bob.rotate_share_keys();
    /// at_alice.update_member_bundle(&alice, &b, &new).unwrap();
    /// assert_eq!(at_alice.update_member_bundle(&alice, &b, &old).unwrap_err(), Error::StaleShareKey);
    /// ```
    pub fn update_member_bundle(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
        bundle: &DeviceBundle,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.update_member_bundle_with_rng(
            identity,
            member,
            bundle,
            now_secs(),
            &mut crate::rng::os_rng(),
        )
    }

    /// [`update_member_bundle`](Self::update_member_bundle) with an explicit
    /// clock and RNG.
    pub fn update_member_bundle_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
        bundle: &DeviceBundle,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        self.check_me(identity)?;
        let suite = self.suite;
        let p = self.peers.get_mut(member).ok_or(Error::NotAMember)?;
        if &p.identity != bundle.identity() {
            return Err(Error::IdentityChanged);
        }
        let key = bundle.share_key(suite).ok_or(Error::SuiteUnavailable)?;
        if p.share_key
            .as_ref()
            .is_some_and(|k| key.serial() <= k.serial())
        {
            return Err(Error::StaleShareKey);
        }
        let previous = p.share_key.replace(key.clone());
        let owed = p.owed;
        self.unsaved.share_keys.insert(member.clone());
        if !owed {
            return Ok(Vec::new());
        }
        match self.share_owed(identity, now, rng) {
            Ok(shares) => Ok(shares),
            Err(e) => {
                if let Some(p) = self.peers.get_mut(member) {
                    p.share_key = previous;
                }
                Err(e)
            }
        }
    }

    /// The newest share key of the room's suite known for `member`.
    pub fn member_share_key(&self, member: &MemberId) -> Option<&SignedShareKey> {
        self.peers.get(member).and_then(|p| p.share_key.as_ref())
    }

    /// Accepts a key share (from the relay). The sender is identified by the
    /// share's signed sender identity, never by what the relay says.
    ///
    /// Refused, with the room unchanged: a share of a non-member's identity
    /// ([`Error::NotAMember`]); my own share ([`Error::Reflected`]); a share
    /// bound to another membership instance of the sender, such as one from
    /// before a removal ([`Error::NotForMe`]); an epoch not newer than the
    /// last accepted from that instance ([`Error::Replay`]); a sender key
    /// whose proof of possession does not verify for its signer
    /// ([`Error::BadPossessionProof`]: a member re-sharing another member's
    /// key as its own); a key id or signing key another member already
    /// holds ([`Error::KeyOfAnotherMember`]); an unsigned (pairwise) key in
    /// a group ([`Error::SignatureRequired`]); and everything
    /// [`KeyShare::open`] refuses.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, Error};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// let (at_alice, to_bob) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// let (mut at_bob, _) = Room::join(&bob, b, &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let accepted = at_bob.receive_share(&bob, &to_bob[0].bytes).unwrap();
    /// assert_eq!((accepted.from, accepted.epoch), (a, 0));
    /// assert_eq!(at_bob.receive_share(&bob, &to_bob[0].bytes).unwrap_err(), Error::Replay);
    /// ```
    pub fn receive_share(
        &mut self,
        identity: &IdentityKeyPair,
        bytes: &[u8],
    ) -> Result<AcceptedShare, Error> {
        self.receive_share_at(identity, bytes, now_secs())
    }

    /// [`receive_share`](Self::receive_share) with an explicit clock.
    pub fn receive_share_at(
        &mut self,
        identity: &IdentityKeyPair,
        bytes: &[u8],
        now: u64,
    ) -> Result<AcceptedShare, Error> {
        self.check_me(identity)?;
        self.erase_expired(now);
        let share = KeyShare::from_bytes(bytes)?;
        if share.sender() == identity.public().as_bytes() {
            return Err(Error::Reflected);
        }
        let Some((from, peer)) = self
            .peers
            .iter()
            .find(|(_, p)| p.identity.as_bytes() == share.sender())
        else {
            return Err(Error::NotAMember);
        };
        let from = from.clone();
        if share.suite() != self.suite {
            return Err(Error::SuiteUnavailable);
        }
        let epoch = share.epoch();
        if &peer.instance.as_bytes()[..] == share.sender_instance()
            && peer.last_epoch.is_some_and(|last| epoch <= last)
        {
            return Err(Error::Replay);
        }
        let shared = share.open(
            identity,
            &peer.identity,
            &self.id,
            epoch,
            peer.instance.as_bytes(),
        )?;
        let newer_share_key = match &peer.share_key {
            Some(k) if share.sender_share_key_serial() <= k.serial() => None,
            _ => Some(share.sender_share_key(&peer.identity)?),
        };
        if shared.mode() == SenderKeyMode::Pairwise && self.outbound.mode() == SenderKeyMode::Signed
        {
            // A group room never accepts an unsigned sender key.
            return Err(Error::SignatureRequired);
        }
        // Owner binding: the proof of possession must verify for the
        // signer's own binding (room, identity, instance, epoch).
        let key_binding = binding(&self.id, &peer.identity, &peer.instance, epoch);
        let predecessor_end = shared.predecessor_end();
        let key = InboundSenderKey::new(self.id.clone(), epoch, shared, key_binding)?;
        if key.id() == self.outbound.id() || self.own_retired.contains(&key.id()) {
            return Err(Error::KeyOfAnotherMember);
        }
        if let Some(held) = self.inbound.get(&key.id()) {
            return Err(if held.member == from {
                Error::Replay
            } else {
                Error::KeyOfAnotherMember
            });
        }
        if let Some(public) = key.signing_public()
            && self
                .inbound
                .values()
                .any(|e| e.member != from && e.key.signing_public() == Some(public))
        {
            return Err(Error::KeyOfAnotherMember);
        }
        // Commit: everything above was checked without changing state.
        let instance = peer.instance;
        for entry in self.inbound.values_mut() {
            if entry.member == from && entry.retired_at.is_none() {
                entry.retired_at = Some(now);
                // The end a share carries is that of the owner's immediately
                // previous key; for an older key (a share was lost) the end
                // is unknown, so the key keeps only the indices it has seen.
                let end = if epoch.checked_sub(1) == Some(entry.key.epoch()) {
                    predecessor_end
                } else {
                    entry.key.next_index()
                };
                entry.key.retire(end);
            }
        }
        self.inbound.insert(
            key.id(),
            InboundEntry {
                member: from.clone(),
                instance,
                key,
                retired_at: None,
            },
        );
        if let Some(p) = self.peers.get_mut(&from) {
            p.last_epoch = Some(epoch);
            if let Some(k) = newer_share_key {
                p.share_key = Some(k);
                self.unsaved.share_keys.insert(from.clone());
            }
        }
        self.unsaved.inbound.insert(from.clone());
        self.prune_member(&from);
        Ok(AcceptedShare { from, epoch })
    }

    /// Drops retired keys past the grace period (every member: a time-driven
    /// erasure, done on every call that takes the clock).
    fn erase_expired(&mut self, now: u64) {
        let grace = self.policy.old_key_grace_secs;
        let unsaved = &mut self.unsaved;
        self.inbound.retain(|_, e| {
            let keep = e.retired_at.is_none_or(|t| now.saturating_sub(t) <= grace);
            if !keep {
                unsaved.inbound.insert(e.member.clone());
            }
            keep
        });
    }

    /// Keeps at most [`MAX_RETIRED_KEYS`] retired keys of `member` (only the
    /// member whose keys changed is scanned).
    fn prune_member(&mut self, member: &MemberId) {
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
            self.unsaved.inbound.insert(member.clone());
        }
    }

    /// Whether the rotation policy asks for a new sender key now.
    pub fn rotation_due(&self, now: u64) -> bool {
        self.outbound.index() >= self.policy.max_messages
            || now.saturating_sub(self.outbound_created_at) >= self.policy.max_age_secs
    }

    /// Encrypts a message for the room, rotating my sender key first when
    /// the [`RotationPolicy`] says so.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let (mut room, _) = Room::create(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members).unwrap();
    /// let out = room.encrypt(&alice, b"hello").unwrap();
    /// assert!(out.shares.is_empty());
    /// ```
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
        if !self.is_member() {
            return Err(Error::NotAMember);
        }
        if plaintext.len() > crate::limits::MAX_PLAINTEXT_LEN {
            return Err(Error::LimitExceeded);
        }
        self.erase_expired(now);
        let shares = if self.rotation_due(now) {
            self.rotate_with_rng(identity, now, rng)?
        } else {
            Vec::new()
        };
        let message = self.outbound.encrypt_with_rng(plaintext, rng)?;
        self.unsaved.outbound = true;
        Ok(Outgoing { shares, message })
    }

    /// Rotates my sender key now (a new epoch) and returns its key shares for
    /// every other member.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let shares = at_alice.rotate(&alice).unwrap();
    /// assert_eq!(shares.len(), 2); // one per other member
    /// assert_eq!(at_alice.epoch(), 1);
    /// ```
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
        let instance = self.my_instance()?;
        let epoch = self
            .outbound
            .epoch()
            .checked_add(1)
            .ok_or(Error::ChainExhausted)?;
        let mode = match self.outbound.mode() {
            SenderKeyMode::Signed => SenderKeyMode::Signed,
            SenderKeyMode::Pairwise => mode_for(self.membership.member_count()),
        };
        let fresh = OutboundSenderKey::new_with_rng(
            self.id.clone(),
            epoch,
            mode,
            binding(&self.id, identity.public(), &instance, epoch),
            self.outbound.index(),
            rng,
        );
        let old = core::mem::replace(&mut self.outbound, fresh);
        self.unsaved.outbound = true;
        let owed: Vec<(MemberId, bool)> = self
            .peers
            .iter()
            .map(|(m, p)| (m.clone(), p.owed))
            .collect();
        for p in self.peers.values_mut() {
            p.owed = true;
        }
        match self.share_owed(identity, now, rng) {
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
                for (m, o) in owed {
                    if let Some(p) = self.peers.get_mut(&m) {
                        p.owed = o;
                    }
                }
                Err(e)
            }
        }
    }

    /// Adds a member (with its device bundle) by a signed operation: every
    /// member shares its current sender key with the newcomer from its
    /// current index (the newcomer reads nothing sent before), and a
    /// pairwise room that grows to three becomes a group (everyone rotates
    /// to a signed key). Send `update` to every member, `welcome` to the
    /// newcomer, and the shares.
    ///
    /// Refused, with the room unchanged: what the membership rules refuse
    /// ([`Error::Membership`]: no permission, already a member, identity in
    /// use), and [`Error::NotAMember`] once I am no longer a member.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let dave = IdentityKeyPair::generate();
    /// let d = MemberId::new(b"dave").unwrap();
    /// let change = at_alice.add_member(&alice, d.clone(), dave.bundle()).unwrap();
    /// // Bob applies the signed update and shares his key with Dave.
    /// let applied = at_bob.apply_update(&bob, &change.update).unwrap();
    /// assert_eq!(applied.shares[0].to, d);
    /// // Dave joins from the welcome.
    /// let (at_dave, _) = Room::join(&dave, d, &id, change.welcome.as_ref().unwrap()).unwrap();
    /// assert_eq!(at_dave.digest(), at_alice.digest());
    /// ```
    pub fn add_member(
        &mut self,
        identity: &IdentityKeyPair,
        member: MemberId,
        bundle: DeviceBundle,
    ) -> Result<MembershipChange, Error> {
        self.add_member_with_rng(
            identity,
            member,
            bundle,
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
    ) -> Result<MembershipChange, Error> {
        self.check_me(identity)?;
        if bundle.share_key(self.suite).is_none() {
            return Err(Error::SuiteUnavailable);
        }
        let before = self.membership.clone();
        let op = self.membership.add(
            identity,
            &member,
            &IdentityKey::of_public(bundle.identity()),
        )?;
        let update = encode_update(op.bytes(), Some(&bundle));
        let events = op.events().to_vec();
        match self.after_events(identity, &events, Some(&bundle), now, rng) {
            Ok(shares) => {
                let welcome = Some(self.welcome(identity)?);
                Ok(MembershipChange {
                    update,
                    welcome,
                    shares,
                    events,
                })
            }
            Err(e) => {
                self.membership = before;
                self.peers.remove(&member);
                Err(e)
            }
        }
    }

    /// Removes a member by a signed operation, then rotates my sender key
    /// and shares it only with the remaining members, so the removed member
    /// reads nothing I send afterwards (every remaining device does the
    /// same when it applies the update).
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let change = at_alice.remove_member(&alice, &c).unwrap(); // alice created it: an admin
    /// assert!(change.shares.iter().all(|s| s.to != c)); // the new key skips carol
    /// let applied = at_bob.apply_update(&bob, &change.update).unwrap();
    /// assert_eq!(applied.shares.len(), 1); // bob rotates too: a share for alice
    /// ```
    pub fn remove_member(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
    ) -> Result<MembershipChange, Error> {
        self.remove_member_with_rng(identity, member, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`remove_member`](Self::remove_member) with an explicit clock and RNG.
    pub fn remove_member_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        member: &MemberId,
        now: u64,
        rng: &mut R,
    ) -> Result<MembershipChange, Error> {
        self.check_me(identity)?;
        if *member == self.me {
            return Err(Error::Membership(crate::error::MembershipError::RemoveSelf));
        }
        if self.membership.member_count() <= 2 && self.membership.is_member(member) {
            // A room needs two members; leaving a 1:1 room means deleting it.
            return Err(Error::TooFewMembers);
        }
        self.own_op(identity, now, rng, |m, id| m.remove(id, member))
    }

    /// Leaves the room by a signed operation. The room is read-only for me
    /// afterwards; the other members rotate when they apply the update.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let change = at_bob.leave(&bob).unwrap();
    /// assert!(!at_bob.is_member());
    /// at_alice.apply_update(&alice, &change.update).unwrap();
    /// assert!(at_alice.pinned_identity(&b).is_none());
    /// ```
    pub fn leave(&mut self, identity: &IdentityKeyPair) -> Result<MembershipChange, Error> {
        self.leave_with_rng(identity, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`leave`](Self::leave) with an explicit clock and RNG.
    pub fn leave_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<MembershipChange, Error> {
        self.check_me(identity)?;
        self.own_op(identity, now, rng, |m, id| m.leave(id))
    }

    fn own_op<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
        make: impl FnOnce(
            &mut Membership,
            &IdentityKeyPair,
        ) -> Result<crate::membership::Outgoing, Error>,
    ) -> Result<MembershipChange, Error> {
        let before = self.membership.clone();
        let op = make(&mut self.membership, identity)?;
        let events = op.events().to_vec();
        let snapshot = self.peers.clone();
        match self.after_events(identity, &events, None, now, rng) {
            Ok(shares) => Ok(MembershipChange {
                update: encode_update(op.bytes(), None),
                welcome: None,
                shares,
                events,
            }),
            Err(e) => {
                self.membership = before;
                self.peers = snapshot;
                Err(e)
            }
        }
    }

    /// Applies a membership update that arrived (from any member, through
    /// the relay): verified against the log (signature, the author's right
    /// in its causal past, the merge rules); held if it builds on updates
    /// not yet here (applied when they arrive); a duplicate changes nothing.
    /// Returns what changed and the key shares it requires of me.
    ///
    /// A membership change that no member signed (the relay's claim) is
    /// refused and gives no key to anyone.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let change = at_alice.remove_member(&alice, &c).unwrap();
    /// let applied = at_bob.apply_update(&bob, &change.update).unwrap();
    /// assert!(!applied.events.is_empty());
    /// // The same update again changes nothing.
    /// assert!(at_bob.apply_update(&bob, &change.update).unwrap().duplicate);
    /// ```
    pub fn apply_update(
        &mut self,
        identity: &IdentityKeyPair,
        bytes: &[u8],
    ) -> Result<Applied, Error> {
        self.apply_update_with_rng(identity, bytes, now_secs(), &mut crate::rng::os_rng())
    }

    /// [`apply_update`](Self::apply_update) with an explicit clock and RNG.
    pub fn apply_update_with_rng<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        bytes: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<Applied, Error> {
        self.check_me(identity)?;
        let (op, bundle) = decode_update(bytes)?;
        let before = self.membership.clone();
        let snapshot = self.peers.clone();
        let events = match self.membership.receive(op)? {
            OpReceived::Duplicate => {
                return Ok(Applied {
                    duplicate: true,
                    ..Applied::default()
                });
            }
            OpReceived::Held { .. } => {
                self.unsaved.log = true;
                return Ok(Applied {
                    held: true,
                    ..Applied::default()
                });
            }
            OpReceived::Applied(events) => events,
        };
        match self.after_events(identity, &events, bundle.as_ref(), now, rng) {
            Ok(shares) => Ok(Applied {
                events,
                shares,
                held: false,
                duplicate: false,
            }),
            Err(e) => {
                self.membership = before;
                self.peers = snapshot;
                Err(e)
            }
        }
    }

    /// Brings peers, keys and my sender key in line with the membership
    /// after `events`: newcomers get my current key; after any removal I
    /// rotate and share with the remaining members only.
    fn after_events<R: CryptoRng + ?Sized>(
        &mut self,
        identity: &IdentityKeyPair,
        events: &[Event],
        bundle: Option<&DeviceBundle>,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<OutgoingShare>, Error> {
        let mut removed_any = false;
        // Sync peers with the membership: the membership is the truth.
        let present: BTreeSet<MemberId> = self
            .membership
            .members()
            .map(|(m, _, _)| m.clone())
            .collect();
        let gone: Vec<MemberId> = self
            .peers
            .iter()
            .filter(|(m, p)| {
                !present.contains(*m) || self.membership.instance_of(m) != Some(p.instance)
            })
            .map(|(m, _)| m.clone())
            .collect();
        self.unsaved.log = true;
        self.unsaved.outbound = true;
        for m in &gone {
            self.peers.remove(m);
            self.unsaved.share_keys.insert(m.clone());
            self.unsaved.inbound.insert(m.clone());
            removed_any = true;
        }
        let mut added = false;
        for (m, key, instance) in self.membership.members() {
            if *m == self.me || self.peers.contains_key(m) {
                continue;
            }
            let share_key = bundle
                .filter(|b| b.identity().as_bytes() == key.as_bytes())
                .and_then(|b| b.share_key(self.suite).cloned());
            let peer = Peer {
                identity: identity_of(key),
                instance,
                share_key,
                last_epoch: None,
                owed: true,
            };
            self.peers.insert(m.clone(), peer);
            self.unsaved.share_keys.insert(m.clone());
            self.unsaved.inbound.insert(m.clone());
            added = true;
        }
        let _ = events;
        let must_rotate = removed_any
            || (added
                && self.outbound.mode() == SenderKeyMode::Pairwise
                && self.membership.member_count() > 2);
        let shares = if !self.membership.is_member(&self.me) {
            // Removed (or left): no more keys for anyone.
            Vec::new()
        } else if must_rotate {
            self.rotate_with_rng(identity, now, rng)?
        } else if added {
            self.share_owed(identity, now, rng)?
        } else {
            Vec::new()
        };
        // Only once nothing can fail: forget the keys of members that left.
        self.inbound.retain(|_, e| !gone.contains(&e.member));
        Ok(shares)
    }

    /// Decrypts a message from another member.
    ///
    /// Errors leave the room unchanged (retired keys past their grace are
    /// erased first, whatever the outcome: a time-driven erasure):
    /// [`Error::UnknownSenderKey`] (keep the message and retry after the
    /// sender's key share arrives; [`Error::is_retryable`]),
    /// [`Error::Reflected`] (a message under my own key, bounced by the
    /// relay), [`Error::Replay`], [`Error::TooOld`], [`Error::TooFarAhead`],
    /// [`Error::RetiredKeyIndex`], [`Error::BadSignature`],
    /// [`Error::SignatureRequired`], [`Error::CommitmentMismatch`],
    /// [`Error::Tampered`], [`Error::NotForMe`], [`Error::Malformed`].
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, Error};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// let (mut at_alice, to_bob) = Room::create(&alice, id.clone(), a, &members).unwrap();
    /// let (mut at_bob, _) = Room::join(&bob, b, &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// let sent = at_alice.encrypt(&alice, b"early").unwrap();
    /// // The message overtook its key share: keep it, retry later.
    /// let err = at_bob.decrypt(&sent.message).unwrap_err();
    /// assert!(err.is_retryable());
    /// at_bob.receive_share(&bob, &to_bob[0].bytes).unwrap();
    /// assert_eq!(at_bob.decrypt(&sent.message).unwrap().plaintext(), b"early");
    /// ```
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Received, Error> {
        self.decrypt_at(bytes, now_secs())
    }

    /// [`decrypt`](Self::decrypt) with an explicit clock (for the grace
    /// period of retired keys).
    pub fn decrypt_at(&mut self, bytes: &[u8], now: u64) -> Result<Received, Error> {
        self.erase_expired(now);
        let msg = Message::from_bytes(bytes)?;
        if msg.room_id() != self.id.as_bytes() {
            return Err(Error::NotForMe);
        }
        let key_id = msg.sender_key();
        if key_id == self.outbound.id() || self.own_retired.contains(&key_id) {
            return Err(Error::Reflected);
        }
        let removed = !self.membership.is_member(&self.me);
        let entry = self.inbound.get_mut(&key_id).ok_or(if removed {
            // No share will ever come to a removed device: final, not retryable.
            Error::NotAMember
        } else {
            Error::UnknownSenderKey
        })?;
        let decrypted = entry.key.decrypt(&msg)?;
        self.unsaved.inbound.insert(entry.member.clone());
        Ok(Received {
            sender: entry.member.clone(),
            epoch: entry.key.epoch(),
            index: decrypted.index(),
            decrypted,
        })
    }

    /// For each member, the indices of its current sender key that were
    /// skipped and have not arrived yet.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap(), MemberId::new(b"carol").unwrap());
    /// # let id = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle()), (c.clone(), carol.bundle())];
    /// # let (mut at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// # let (mut at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
    /// # let to_bob = at_alice.rotate(&alice).unwrap();
    /// # at_bob.receive_share(&bob, &to_bob.iter().find(|s| s.to == b).unwrap().bytes).unwrap();
    /// let _lost = at_alice.encrypt(&alice, b"one").unwrap();
    /// let second = at_alice.encrypt(&alice, b"two").unwrap();
    /// at_bob.decrypt(&second.message).unwrap();
    /// assert_eq!(at_bob.missing()[0].indices, vec![0]);
    /// ```
    pub fn missing(&self) -> Vec<Missing> {
        self.inbound
            .values()
            .filter(|e| e.retired_at.is_none())
            .map(|e| Missing {
                member: e.member.clone(),
                epoch: e.key.epoch(),
                indices: e.key.missing_indices(),
            })
            .filter(|m| !m.indices.is_empty())
            .collect()
    }

    /// The public key image, numeric code and scannable payload for verifying
    /// `member` face to face (or over another channel): computed from *my*
    /// identity and the identity the log gives `member`. If the relay
    /// substituted either key, the two phones show different pictures.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"alice").unwrap(), MemberId::new(b"bob").unwrap());
    /// # let members = [(a.clone(), alice.bundle()), (b.clone(), bob.bundle())];
    /// # let id = RoomId::new(b"r").unwrap();
    /// let (at_alice, _) = Room::create(&alice, id.clone(), a.clone(), &members).unwrap();
    /// let (at_bob, _) = Room::join(&bob, b.clone(), &id, &at_alice.welcome(&alice).unwrap()).unwrap();
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
        let theirs = self.peers.get(member).ok_or(Error::NotAMember)?;
        Ok(PairVerification::new(
            Fingerprint::compute(&self.me, &self.my_identity),
            Fingerprint::compute(member, &theirs.identity),
        ))
    }

    /// The room digest: the membership digest (SHA-256 over the present
    /// members, their identities and instances; microseconds per member).
    /// Every device that applied the same operations shows the same digest.
    pub fn digest(&self) -> RoomDigest {
        RoomDigest::from_bytes(self.membership.digest())
    }

    /// Whether the room holds a current sender key of `member`.
    pub fn has_key_of(&self, member: &MemberId) -> bool {
        self.inbound
            .values()
            .any(|e| e.member == *member && e.retired_at.is_none())
    }
}

/// Skipped message indices of one member's current sender key
/// ([`Room::missing`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The member.
    pub member: MemberId,
    /// The epoch of its current key.
    pub epoch: u32,
    /// The indices skipped and not yet received.
    pub indices: Vec<u32>,
}

fn encode_update(op: &[u8], bundle: Option<&DeviceBundle>) -> Vec<u8> {
    let b = bundle.map(DeviceBundle::to_bytes).unwrap_or_default();
    let mut w = Writer::with_capacity(10 + op.len() + b.len());
    w.u8(labels::PROTOCOL_VERSION)
        .u8(UPDATE_TYPE)
        .vec32(op)
        .vec16(&b);
    w.into_vec()
}

fn decode_update(bytes: &[u8]) -> Result<(&[u8], Option<DeviceBundle>), Error> {
    let mut r = Reader::new(bytes);
    r.version(labels::PROTOCOL_VERSION)?;
    if r.u8()? != UPDATE_TYPE {
        return Err(DecodeError::InvalidValue.into());
    }
    let op = r.vec32(MAX_LOG_BYTES)?;
    let b = r.vec16(MAX_BUNDLE_LEN)?;
    r.finish()?;
    let bundle = if b.is_empty() {
        None
    } else {
        Some(DeviceBundle::from_bytes(b)?)
    };
    Ok((op, bundle))
}

// ---------------------------------------------------------------------------
// State at rest
// ---------------------------------------------------------------------------

impl Room {
    /// Appends the complete state of the room, secrets included, for the
    /// encrypted storage (layout in `docs/PROTOCOL.md`, section 7). Maps are
    /// written in key order, so each state has one encoding.
    pub(crate) fn encode_state(&self, w: &mut Writer) {
        let id = self.id.as_bytes();
        w.u8(u8::try_from(id.len()).unwrap_or(u8::MAX))
            .bytes(id)
            .vec16(self.me.as_bytes())
            .bytes(self.my_identity.as_bytes())
            .u32(self.policy.max_messages)
            .u64(self.policy.max_age_secs)
            .u64(self.policy.old_key_grace_secs)
            .u64(self.outbound_created_at)
            .vec32(&self.membership.to_log())
            .u32(count_u32(self.peers.len()));
        for (member, p) in &self.peers {
            w.vec16(member.as_bytes()).vec16(
                p.share_key
                    .as_ref()
                    .map(SignedShareKey::as_bytes)
                    .unwrap_or_default(),
            );
            write_opt_u32(w, p.last_epoch);
            w.u8(u8::from(p.owed));
        }
        self.outbound.encode_state(w);
        w.u32(count_u32(self.own_retired.len()));
        for id in &self.own_retired {
            w.bytes(id.as_bytes());
        }
        w.u32(count_u32(self.inbound.len()));
        for e in self.inbound.values() {
            w.vec16(e.member.as_bytes()).bytes(e.instance.as_bytes());
            write_opt_u64(w, e.retired_at);
            e.key.encode_state(w);
        }
    }

    /// Length of [`encode_state`](Self::encode_state)'s output, so the
    /// (secret) buffer is allocated once and never moved.
    pub(crate) fn state_len(&self) -> usize {
        let peers: usize = self
            .peers
            .iter()
            .map(|(m, p)| {
                2 + m.as_bytes().len()
                    + 2
                    + p.share_key.as_ref().map_or(0, |k| k.as_bytes().len())
                    + 1
                    + 4 * usize::from(p.last_epoch.is_some())
                    + 1
            })
            .sum();
        let inbound: usize = self
            .inbound
            .values()
            .map(|e| {
                2 + e.member.as_bytes().len()
                    + 32
                    + 1
                    + 8 * usize::from(e.retired_at.is_some())
                    + e.key.state_len()
            })
            .sum();
        1 + self.id.as_bytes().len()
            + 2
            + self.me.as_bytes().len()
            + 32
            + 4
            + 8
            + 8
            + 8
            + 4
            + self.membership.to_log().len()
            + 4
            + peers
            + self.outbound.state_len()
            + 4
            + 16 * self.own_retired.len()
            + 4
            + inbound
    }

    /// Reads what [`encode_state`](Self::encode_state) wrote and checks every
    /// invariant: the log verifies from its genesis for this room, peers are
    /// exactly the present members other than me, every key is bound to
    /// this room and held for a present member's current instance. Nothing
    /// is built unless everything holds.
    pub(crate) fn decode_state(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = read_room(r)?;
        let me = read_member(r)?;
        let my_identity = PublicIdentity::from_bytes(r.bytes(32)?).map_err(to_decode)?;
        let policy = RotationPolicy {
            max_messages: r.u32()?,
            max_age_secs: r.u64()?,
            old_key_grace_secs: r.u64()?,
        };
        let outbound_created_at = r.u64()?;
        let membership =
            Membership::from_stored_log(r.vec32(MAX_LOG_BYTES)?, &id).map_err(to_decode)?;
        let suite = Suite::from_byte(membership.genesis().suite())?;
        if membership
            .identity_of(&me)
            .is_some_and(|k| k.as_bytes() != my_identity.as_bytes())
        {
            return Err(DecodeError::InvalidValue);
        }
        let n = r.count32(MAX_MEMBERS, 2 + 1 + 2 + 1 + 1)?;
        let mut peers = BTreeMap::new();
        for _ in 0..n {
            let member = read_member(r)?;
            let key = membership
                .identity_of(&member)
                .ok_or(DecodeError::InvalidValue)?;
            let instance = membership
                .instance_of(&member)
                .ok_or(DecodeError::InvalidValue)?;
            let identity = identity_of(key);
            let sk = r.vec16(MAX_SIGNED_SHARE_KEY_LEN)?;
            let share_key = if sk.is_empty() {
                None
            } else {
                let k = SignedShareKey::from_stored(sk).map_err(to_decode)?;
                if k.suite() != suite {
                    return Err(DecodeError::InvalidValue);
                }
                Some(k)
            };
            let last_epoch = read_opt_u32(r)?;
            let owed = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::InvalidValue),
            };
            if member == me
                || peers
                    .last_key_value()
                    .is_some_and(|(last, _): (&MemberId, &Peer)| member <= *last)
            {
                return Err(DecodeError::InvalidValue);
            }
            peers.insert(
                member,
                Peer {
                    identity,
                    instance,
                    share_key,
                    last_epoch,
                    owed,
                },
            );
        }
        let expected = membership.members().filter(|(m, _, _)| **m != me).count();
        if peers.len() != expected {
            return Err(DecodeError::InvalidValue);
        }
        let outbound = OutboundSenderKey::decode_state(r)?;
        if *outbound.room() != id
            || (outbound.mode() == SenderKeyMode::Pairwise && membership.member_count() > 2)
        {
            return Err(DecodeError::InvalidValue);
        }
        let n = r.count32(OWN_KEY_HISTORY, 16)?;
        let mut own_retired = Vec::with_capacity(n);
        for _ in 0..n {
            own_retired.push(SenderKeyId::from_bytes(r.array()?));
        }
        let n = r.count32(MAX_INBOUND_KEYS, 2 + 1 + 32 + 1 + 32)?;
        let mut inbound: BTreeMap<SenderKeyId, InboundEntry> = BTreeMap::new();
        // Per member: (current keys, retired keys).
        let mut held: BTreeMap<MemberId, (usize, usize)> = BTreeMap::new();
        for _ in 0..n {
            let member = read_member(r)?;
            let instance = InstanceId::from_bytes(r.array()?);
            let retired_at = read_opt_u64(r)?;
            let key = InboundSenderKey::decode_state(r)?;
            let key_id = key.id();
            let peer = peers.get(&member).ok_or(DecodeError::InvalidValue)?;
            if peer.instance != instance
                || *key.room() != id
                || peer.last_epoch.is_none_or(|last| key.epoch() > last)
                || inbound
                    .last_key_value()
                    .is_some_and(|(last, _)| key_id <= *last)
            {
                return Err(DecodeError::InvalidValue);
            }
            let count = held.entry(member.clone()).or_insert((0, 0));
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
                    instance,
                    key,
                    retired_at,
                },
            );
        }
        Ok(Self {
            id,
            suite,
            me,
            my_identity,
            membership,
            peers,
            policy,
            outbound,
            outbound_created_at,
            own_retired,
            inbound,
            unsaved: Unsaved::everything(),
            key_requests: key_request::AnswerLimiter::default(),
        })
    }
}

fn to_decode(e: Error) -> DecodeError {
    match e {
        Error::Malformed(d) => d,
        _ => DecodeError::InvalidValue,
    }
}

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
