//! The membership log: who is in a room, as a graph of signed operations.
//!
//! A room's membership is never the relay's word. The creator signs a
//! [`Genesis`] (room id, suite, [`RoomPolicy`], initial members with their
//! identity keys, admins). Afterwards members sign [`Operation`]s (add,
//! remove, leave) with their identity keys; each operation names as parents
//! the operations its author had applied, so the log is a hash-linked graph
//! rooted at the genesis. A [`Membership`] applies operations in causal order
//! (holding those whose parents are missing), refuses every operation whose
//! author did not have the right in its causal past, and merges concurrent
//! operations the same way on every device: devices holding the same
//! operations have the same members and the same [`digest`](Membership::digest).
//!
//! A newcomer joins from the log ([`Membership::to_log`] /
//! [`Membership::from_log`]), which it verifies from the genesis: every
//! signature and every rule.
//!
//! Every byte layout and rule is specified in `docs/PROTOCOL.md`, section 5.1.
//!
//! ```
//! use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
//! use secret_chat::testing::VectorRng;
//! use secret_chat::{IdentityKeyPair, MemberId, RoomId};
//!
//! let mut rng = VectorRng::new(b"doc");
//! let alice = IdentityKeyPair::generate_with_rng(&mut rng);
//! let bob = IdentityKeyPair::generate_with_rng(&mut rng);
//! let carol = IdentityKeyPair::generate_with_rng(&mut rng);
//! let (a, b, c) = (MemberId::new(b"alice")?, MemberId::new(b"bob")?, MemberId::new(b"carol")?);
//! let room = RoomId::new(b"room-1")?;
//!
//! // Alice creates the room with Bob.
//! let genesis = Genesis::create(
//!     &alice, &room, 2, RoomPolicy::default(), &a,
//!     &[(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))],
//!     &[],
//! )?;
//! let mut at_alice = Membership::new(genesis.clone());
//! let mut at_bob = Membership::new(genesis);
//!
//! // Bob adds Carol; Alice receives the signed operation.
//! let op = at_bob.add(&bob, &c, &IdentityKey::of(&carol))?;
//! at_alice.receive(op.bytes())?;
//! assert!(at_alice.is_member(&c));
//! assert_eq!(at_alice.digest(), at_bob.digest());
//!
//! // Carol joins from the log, which she verifies from the genesis.
//! let at_carol = Membership::from_log(&at_bob.to_log(), &room)?;
//! assert_eq!(at_carol.digest(), at_bob.digest());
//! # Ok::<(), secret_chat::Error>(())
//! ```

use crate::error::{DecodeError, Error, MembershipError};
use crate::identity::{EdPublic, IdentityKeyPair, PublicIdentity};
use crate::ids::{MemberId, RoomId};
use crate::labels::{
    MEMBERSHIP_DIGEST, MEMBERSHIP_GENESIS_SIGNATURE, MEMBERSHIP_OP_ID, MEMBERSHIP_OP_SIGNATURE,
    MEMBERSHIP_TYPE_GENESIS, MEMBERSHIP_TYPE_LOG, MEMBERSHIP_TYPE_OPERATION, MEMBERSHIP_VERSION,
};
use crate::limits::{
    MAX_LOG_OPS, MAX_MEMBER_ID_LEN, MAX_MEMBERS, MAX_OP_PARENTS, MAX_PENDING_OPS, MAX_ROOM_ID_LEN,
};
use crate::wire::{Reader, Writer};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

/// Suite byte of X25519 key shares (carried in the genesis, not used here).
pub const SUITE_X25519: u8 = 1;
/// Suite byte of X-Wing (ML-KEM-768 + X25519) key shares, the default.
pub const SUITE_XWING: u8 = 2;

/// Smallest encoded member entry of a genesis: id length (2), 1-byte id, key (32).
const MIN_MEMBER_ENTRY: usize = 2 + 1 + 32;
/// Smallest encoded admin entry of a genesis: id length (2), 1-byte id.
const MIN_ADMIN_ENTRY: usize = 2 + 1;
/// Smallest encoded operation: version, type, author (2 + 1), key, one
/// parent, kind, signature.
const MIN_OP_LEN: usize = 2 + 3 + 32 + 1 + 32 + 1 + 64;
/// Largest encoded operation (two longest member ids, most parents).
const MAX_OP_LEN: usize = 2
    + (2 + MAX_MEMBER_ID_LEN)
    + 32
    + 1
    + 32 * MAX_OP_PARENTS
    + 1
    + (2 + MAX_MEMBER_ID_LEN)
    + 32
    + 64;
/// Largest encoded genesis.
const MAX_GENESIS_LEN: usize = 2
    + (2 + MAX_ROOM_ID_LEN)
    + 3
    + (2 + MAX_MEMBER_ID_LEN)
    + 4
    + MAX_MEMBERS * (2 + MAX_MEMBER_ID_LEN + 32)
    + 4
    + MAX_MEMBERS * (2 + MAX_MEMBER_ID_LEN)
    + 64;

// ---------------------------------------------------------------------------
// Small public types
// ---------------------------------------------------------------------------

/// A member's identity key: its device's Ed25519 public key (32 bytes),
/// checked canonical and not of small order.
///
/// Ordered and compared by its bytes.
///
/// ```
/// use secret_chat::membership::IdentityKey;
/// let alice = secret_chat::IdentityKeyPair::generate();
/// let key = IdentityKey::of(&alice);
/// assert_eq!(IdentityKey::from_bytes(key.as_bytes()).unwrap(), key);
/// assert!(IdentityKey::from_bytes(&[0; 32]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityKey(EdPublic);

impl core::hash::Hash for IdentityKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Maps are keyed by the encoded bytes: equality, order and hash all agree.
impl core::borrow::Borrow<[u8; 32]> for IdentityKey {
    fn borrow(&self) -> &[u8; 32] {
        self.as_bytes()
    }
}

impl IdentityKey {
    /// Parses 32 bytes: refuses a non-canonical encoding
    /// (`Malformed(InvalidValue)`) and a small-order key (`WeakKey`).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        EdPublic::parse(bytes).map(Self)
    }

    /// A key read from authenticated storage (checked before it was
    /// stored): decompressed only if it is used.
    pub(crate) fn stored(bytes: [u8; 32]) -> Self {
        Self(EdPublic::stored(bytes))
    }

    /// The identity key of a key pair.
    pub fn of(identity: &IdentityKeyPair) -> Self {
        Self(identity.public().signing_key().clone())
    }

    /// The identity key of a public identity.
    pub fn of_public(identity: &PublicIdentity) -> Self {
        Self(identity.signing_key().clone())
    }

    /// The 32 encoded bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The identity this key is (no new check: the key was checked, or
    /// vouched for by an authenticated record, when it was made).
    pub fn to_public(&self) -> PublicIdentity {
        PublicIdentity::from_checked(self.0.clone())
    }

    /// Strict Ed25519 verification of a signature by this key.
    fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        self.0.verify_strict(message, signature)
    }
}

/// How much of a parsed genesis or operation is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// From the network: keys decompressed and checked, signatures verified.
    Full,
    /// From authenticated storage: structure and rules only.
    Stored,
}

impl Check {
    fn key(self, bytes: [u8; 32]) -> Result<IdentityKey, Error> {
        match self {
            Check::Full => IdentityKey::from_bytes(&bytes),
            Check::Stored => Ok(IdentityKey::stored(bytes)),
        }
    }
}

impl PartialOrd for IdentityKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdentityKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", Short(self.as_bytes()))
    }
}

/// The id of a genesis or an operation: SHA-256 of
/// `"secret-chat/v2/membership/op-id" || encoded bytes`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub(crate) [u8; 32]);

impl OpId {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn of(encoded: &[u8]) -> Self {
        Self(
            Sha256::new()
                .chain_update(MEMBERSHIP_OP_ID)
                .chain_update(encoded)
                .finalize()
                .into(),
        )
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({})", Short(&self.0))
    }
}

/// One membership instance of a member: the id of the operation that added
/// it (the genesis id for initial members). A member removed and added again
/// has a new instance; key shares and messages bind it, so nothing of an
/// earlier instance is accepted again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub(crate) [u8; 32]);

impl InstanceId {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps 32 bytes (an instance id read from a key share or message).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({})", Short(&self.0))
    }
}

struct Short<'a>(&'a [u8; 32]);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..")
    }
}

/// Who may add members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AddRight {
    /// Any present member (byte `0`; the default).
    #[default]
    AnyMember,
    /// Only admins (byte `1`).
    AdminsOnly,
}

/// Who may remove other members (leaving is always allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RemoveRight {
    /// Only admins (byte `0`; the default).
    #[default]
    AdminsOnly,
    /// Any present member (byte `1`).
    AnyMember,
}

/// The room policy, fixed by the genesis.
///
/// The default: any member adds; only admins remove others; anyone leaves.
///
/// ```
/// use secret_chat::membership::{AddRight, RemoveRight, RoomPolicy};
/// let p = RoomPolicy::default();
/// assert_eq!((p.add, p.remove), (AddRight::AnyMember, RemoveRight::AdminsOnly));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RoomPolicy {
    /// Who may add members.
    pub add: AddRight,
    /// Who may remove other members.
    pub remove: RemoveRight,
}

// ---------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------

/// The signed root of a room's membership log (verified).
///
/// ```text
///  0x02 | 0x01 | u16 len | room id | suite | add right | remove right
///  | u16 len | creator id
///  | u32 n (2..=4096) | n x (u16 len | member id | identity key (32))   (ids strictly increasing)
///  | u32 k (1..=n)    | k x (u16 len | admin id)                       (strictly increasing, includes creator)
///  | signature (64)
///  signature = Ed25519(creator key, "secret-chat/v2/membership/genesis" || all bytes before it)
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Genesis {
    id: OpId,
    bytes: Vec<u8>,
    room: RoomId,
    suite: u8,
    policy: RoomPolicy,
    creator: MemberId,
    members: Vec<(MemberId, IdentityKey)>,
    admins: Vec<MemberId>,
}

impl Genesis {
    /// Creates and signs a genesis as `creator_id`, whose identity key must
    /// be `creator`'s and listed for it in `members`. Members and admins may
    /// come in any order (they are sorted); the creator is always an admin.
    ///
    /// Errors: `Malformed(InvalidValue)` for an unknown suite, fewer than two
    /// members, a duplicate member id or identity key, an admin who is not a
    /// member, or a creator who is not listed with its own key;
    /// `Malformed(LengthLimit)` for more than [`MAX_MEMBERS`] members.
    ///
    /// ```
    /// use secret_chat::membership::{Genesis, IdentityKey, RoomPolicy};
    /// use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// let room = RoomId::new(b"r").unwrap();
    /// let members = [(a.clone(), IdentityKey::of(&alice)), (b, IdentityKey::of(&bob))];
    /// let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// assert_eq!(Genesis::from_bytes(g.as_bytes(), &room).unwrap(), g);
    /// ```
    pub fn create(
        creator: &IdentityKeyPair,
        room: &RoomId,
        suite: u8,
        policy: RoomPolicy,
        creator_id: &MemberId,
        members: &[(MemberId, IdentityKey)],
        admins: &[MemberId],
    ) -> Result<Self, Error> {
        if members.len() > MAX_MEMBERS {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut members = members.to_vec();
        members.sort_by(|x, y| x.0.cmp(&y.0));
        let mut admins = admins.to_vec();
        admins.push(creator_id.clone());
        admins.sort();
        admins.dedup();
        let mut w = Writer::with_capacity(64 + members.len() * 64);
        w.u8(MEMBERSHIP_VERSION).u8(MEMBERSHIP_TYPE_GENESIS);
        w.vec16(room.as_bytes()).u8(suite);
        w.u8(match policy.add {
            AddRight::AnyMember => 0,
            AddRight::AdminsOnly => 1,
        });
        w.u8(match policy.remove {
            RemoveRight::AdminsOnly => 0,
            RemoveRight::AnyMember => 1,
        });
        w.vec16(creator_id.as_bytes());
        w.u32(u32::try_from(members.len()).unwrap_or(u32::MAX));
        for (id, key) in &members {
            w.vec16(id.as_bytes()).bytes(key.as_bytes());
        }
        w.u32(u32::try_from(admins.len()).unwrap_or(u32::MAX));
        for id in &admins {
            w.vec16(id.as_bytes());
        }
        let signature = creator.sign(&genesis_signature_input(w.as_slice()));
        w.bytes(&signature.to_bytes());
        let bytes = w.into_vec();
        // One parser checks everything, for made and received genesis alike.
        let genesis = Self::parse(&bytes, room, Check::Full)?;
        if genesis.identity_at_genesis(creator_id) != Some(&IdentityKey::of(creator)) {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(genesis)
    }

    /// Parses and verifies a genesis for the room `expected_room`.
    ///
    /// Errors: `Malformed(..)` for any deviation from the layout (section
    /// 5.1.2), `NotForMe` for another room, `WeakKey` for a small-order
    /// identity key, `BadSignature` if the creator's signature fails.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId, Error};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b, IdentityKey::of(&bob))];
    /// let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let other = RoomId::new(b"other").unwrap();
    /// assert_eq!(Genesis::from_bytes(g.as_bytes(), &other), Err(Error::NotForMe));
    /// ```
    pub fn from_bytes(bytes: &[u8], expected_room: &RoomId) -> Result<Self, Error> {
        Self::parse(bytes, expected_room, Check::Full)
    }

    fn parse(bytes: &[u8], expected_room: &RoomId, check: Check) -> Result<Self, Error> {
        if bytes.len() > MAX_GENESIS_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut r = Reader::new(bytes);
        r.version(MEMBERSHIP_VERSION)?;
        if r.u8()? != MEMBERSHIP_TYPE_GENESIS {
            return Err(DecodeError::InvalidValue.into());
        }
        let room = RoomId::new(r.vec16(MAX_ROOM_ID_LEN)?)?;
        let suite = r.u8()?;
        if suite != SUITE_X25519 && suite != SUITE_XWING {
            return Err(DecodeError::UnsupportedSuite(suite).into());
        }
        let add = match r.u8()? {
            0 => AddRight::AnyMember,
            1 => AddRight::AdminsOnly,
            _ => return Err(DecodeError::InvalidValue.into()),
        };
        let remove = match r.u8()? {
            0 => RemoveRight::AdminsOnly,
            1 => RemoveRight::AnyMember,
            _ => return Err(DecodeError::InvalidValue.into()),
        };
        let creator = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
        let n = r.count32(MAX_MEMBERS, MIN_MEMBER_ENTRY)?;
        if n < 2 {
            return Err(DecodeError::InvalidValue.into());
        }
        let mut members: Vec<(MemberId, IdentityKey)> = Vec::with_capacity(n);
        let mut keys: BTreeSet<[u8; 32]> = BTreeSet::new();
        for _ in 0..n {
            let id = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
            let key = check.key(r.array()?)?;
            if members.last().is_some_and(|(prev, _)| prev >= &id) || !keys.insert(*key.as_bytes())
            {
                return Err(DecodeError::InvalidValue.into());
            }
            members.push((id, key));
        }
        let k = r.count32(n, MIN_ADMIN_ENTRY)?;
        let mut admins: Vec<MemberId> = Vec::with_capacity(k);
        for _ in 0..k {
            let id = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
            if admins.last().is_some_and(|prev| prev >= &id)
                || members.binary_search_by(|(m, _)| m.cmp(&id)).is_err()
            {
                return Err(DecodeError::InvalidValue.into());
            }
            admins.push(id);
        }
        if admins.binary_search(&creator).is_err() {
            return Err(DecodeError::InvalidValue.into());
        }
        let body_len = bytes.len().saturating_sub(r.remaining());
        let signature = Signature::from_bytes(&r.array()?);
        r.finish()?;
        if &room != expected_room {
            return Err(Error::NotForMe);
        }
        let creator_key = members
            .binary_search_by(|(m, _)| m.cmp(&creator))
            .ok()
            .and_then(|i| members.get(i))
            .map(|(_, k)| k.clone())
            .ok_or(Error::Malformed(DecodeError::InvalidValue))?;
        let body = bytes.get(..body_len).ok_or(DecodeError::Truncated)?;
        if check == Check::Full {
            creator_key.verify(&genesis_signature_input(body), &signature)?;
        }
        Ok(Self {
            id: OpId::of(bytes),
            bytes: bytes.to_vec(),
            room,
            suite,
            policy: RoomPolicy { add, remove },
            creator,
            members,
            admins,
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The genesis id: the root of the log and the instance id of every
    /// initial member.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The room id.
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The suite byte (1 X25519, 2 X-Wing), carried for the room.
    pub fn suite(&self) -> u8 {
        self.suite
    }

    /// The room policy.
    pub fn policy(&self) -> RoomPolicy {
        self.policy
    }

    /// The creator's member id.
    pub fn creator(&self) -> &MemberId {
        &self.creator
    }

    /// The initial members, sorted by member id.
    pub fn members(&self) -> &[(MemberId, IdentityKey)] {
        &self.members
    }

    /// The admins, sorted (always including the creator).
    pub fn admins(&self) -> &[MemberId] {
        &self.admins
    }

    fn identity_at_genesis(&self, member: &MemberId) -> Option<&IdentityKey> {
        self.members
            .binary_search_by(|(m, _)| m.cmp(member))
            .ok()
            .and_then(|i| self.members.get(i))
            .map(|(_, k)| k)
    }

    /// Whether `member` with identity `key` is an admin: listed as an admin
    /// and holding the identity key it had at genesis.
    pub fn is_admin(&self, member: &MemberId, key: &IdentityKey) -> bool {
        self.admins.binary_search(member).is_ok() && self.identity_at_genesis(member) == Some(key)
    }
}

impl fmt::Debug for Genesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Genesis")
            .field("id", &self.id)
            .field("room", &self.room)
            .field("suite", &self.suite)
            .field("policy", &self.policy)
            .field("creator", &self.creator)
            .field("members", &self.members.len())
            .field("admins", &self.admins.len())
            .finish()
    }
}

fn genesis_signature_input(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MEMBERSHIP_GENESIS_SIGNATURE.len() + body.len());
    m.extend_from_slice(MEMBERSHIP_GENESIS_SIGNATURE);
    m.extend_from_slice(body);
    m
}

fn op_signature_input(genesis: &OpId, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MEMBERSHIP_OP_SIGNATURE.len() + 32 + body.len());
    m.extend_from_slice(MEMBERSHIP_OP_SIGNATURE);
    m.extend_from_slice(&genesis.0);
    m.extend_from_slice(body);
    m
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// What an operation does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Adds `member` with identity key `identity` (tag `1`).
    Add {
        /// The added member id.
        member: MemberId,
        /// Its identity key.
        identity: IdentityKey,
    },
    /// Removes another member (tag `2`).
    Remove {
        /// The removed member id.
        member: MemberId,
    },
    /// The author leaves (tag `3`).
    Leave,
}

/// A signed membership operation, parsed and its signature verified (not
/// yet checked against any membership).
///
/// ```text
///  0x02 | 0x02 | u16 len | author id | author identity key (32)
///  | u8 p (1..=32) | p x parent op id (32)         (strictly increasing)
///  | kind: 0x01 | u16 len | member id | identity key (32)     (add)
///        | 0x02 | u16 len | member id                         (remove)
///        | 0x03                                              (leave)
///  | signature (64)
///  signature = Ed25519(author key,
///      "secret-chat/v2/membership/operation" || genesis id (32) || all bytes before it)
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Operation {
    id: OpId,
    bytes: Vec<u8>,
    author: MemberId,
    author_key: IdentityKey,
    parents: Vec<OpId>,
    kind: OpKind,
}

impl Operation {
    /// Parses an operation of the room whose genesis id is `genesis` and
    /// verifies its signature under the author key it names.
    ///
    /// Errors: `Malformed(..)` for any deviation from the layout (section
    /// 5.1.3), `WeakKey` for a small-order key, `BadSignature` for a
    /// signature that fails (also an operation of another room).
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, Operation, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g.clone());
    /// let leave = m.leave(&bob).unwrap();
    /// let op = Operation::from_bytes(leave.bytes(), &g.id()).unwrap();
    /// assert_eq!(op.author(), &b);
    /// ```
    pub fn from_bytes(bytes: &[u8], genesis: &OpId) -> Result<Self, Error> {
        Self::parse(bytes, genesis, |_| None, Check::Full)
    }

    /// [`from_bytes`](Self::from_bytes), taking the author's key from
    /// `known` when it is a key already checked (saves a point
    /// decompression per operation).
    fn parse(
        bytes: &[u8],
        genesis: &OpId,
        known: impl Fn(&[u8; 32]) -> Option<IdentityKey>,
        check: Check,
    ) -> Result<Self, Error> {
        if bytes.len() > MAX_OP_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut r = Reader::new(bytes);
        r.version(MEMBERSHIP_VERSION)?;
        if r.u8()? != MEMBERSHIP_TYPE_OPERATION {
            return Err(DecodeError::InvalidValue.into());
        }
        let author = MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?;
        let author_bytes = r.array()?;
        let author_key = match known(&author_bytes) {
            Some(k) => k,
            None => check.key(author_bytes)?,
        };
        let p = usize::from(r.u8()?);
        if p == 0 {
            return Err(DecodeError::InvalidValue.into());
        }
        if p > MAX_OP_PARENTS {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut parents: Vec<OpId> = Vec::with_capacity(p);
        for _ in 0..p {
            let id = OpId(r.array()?);
            if parents.last().is_some_and(|prev| prev >= &id) {
                return Err(DecodeError::InvalidValue.into());
            }
            parents.push(id);
        }
        let kind = match r.u8()? {
            1 => OpKind::Add {
                member: MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?,
                identity: check.key(r.array()?)?,
            },
            2 => OpKind::Remove {
                member: MemberId::new(r.vec16(MAX_MEMBER_ID_LEN)?)?,
            },
            3 => OpKind::Leave,
            _ => return Err(DecodeError::InvalidValue.into()),
        };
        let body_len = bytes.len().saturating_sub(r.remaining());
        let signature = Signature::from_bytes(&r.array()?);
        r.finish()?;
        let body = bytes.get(..body_len).ok_or(DecodeError::Truncated)?;
        if check == Check::Full {
            author_key.verify(&op_signature_input(genesis, body), &signature)?;
        }
        Ok(Self {
            id: OpId::of(bytes),
            bytes: bytes.to_vec(),
            author,
            author_key,
            parents,
            kind,
        })
    }

    /// Signs an operation without checking any membership rule (own
    /// operations are checked when applied; tests use it to forge).
    pub(crate) fn sign(
        signer: &IdentityKeyPair,
        genesis: &OpId,
        author: &MemberId,
        parents: &[OpId],
        kind: &OpKind,
    ) -> Result<Self, Error> {
        let mut w = Writer::with_capacity(200 + parents.len() * 32);
        w.u8(MEMBERSHIP_VERSION).u8(MEMBERSHIP_TYPE_OPERATION);
        w.vec16(author.as_bytes())
            .bytes(IdentityKey::of(signer).as_bytes());
        w.u8(u8::try_from(parents.len()).unwrap_or(u8::MAX));
        for p in parents {
            w.bytes(&p.0);
        }
        match kind {
            OpKind::Add { member, identity } => {
                w.u8(1).vec16(member.as_bytes()).bytes(identity.as_bytes());
            }
            OpKind::Remove { member } => {
                w.u8(2).vec16(member.as_bytes());
            }
            OpKind::Leave => {
                w.u8(3);
            }
        }
        let signature = signer.sign(&op_signature_input(genesis, w.as_slice()));
        w.bytes(&signature.to_bytes());
        Self::from_bytes(&w.into_vec(), genesis)
    }

    /// The operation id.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The author's member id.
    pub fn author(&self) -> &MemberId {
        &self.author
    }

    /// The identity key that signed.
    pub fn author_key(&self) -> &IdentityKey {
        &self.author_key
    }

    /// The parents (sorted).
    pub fn parents(&self) -> &[OpId] {
        &self.parents
    }

    /// What the operation does.
    pub fn kind(&self) -> &OpKind {
        &self.kind
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id)
            .field("author", &self.author)
            .field("parents", &self.parents.len())
            .field("kind", &self.kind)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Results and events
// ---------------------------------------------------------------------------

/// A change of the membership, for the room to rotate keys and tell the app.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // a handful per operation, never stored
pub enum Event {
    /// `member` became present with a new instance.
    Added {
        /// The added member.
        member: MemberId,
        /// Its identity key.
        identity: IdentityKey,
        /// Its new instance.
        instance: InstanceId,
        /// Who added it.
        by: MemberId,
        /// `Some(old)` when this member id was known before with another
        /// identity key `old`: a re-addition with a different identity,
        /// which the app must show as such.
        previous_identity: Option<IdentityKey>,
    },
    /// `member` (instance `instance`) was removed by `by`.
    Removed {
        /// The removed member.
        member: MemberId,
        /// The instance that ended.
        instance: InstanceId,
        /// Who removed it.
        by: MemberId,
    },
    /// `member` (instance `instance`) left.
    Left {
        /// The member that left.
        member: MemberId,
        /// The instance that ended.
        instance: InstanceId,
    },
    /// An addition that was applied is void after all: a concurrent removal
    /// of its author (or of the author's own adder) arrived, or a concurrent
    /// addition of the same member id or identity key won. The member is no
    /// longer present.
    AddVoided {
        /// The member whose instance ended.
        member: MemberId,
        /// The voided instance.
        instance: InstanceId,
    },
    /// A held operation whose parents arrived was refused (it is dropped).
    HeldRefused {
        /// The refused operation.
        op: OpId,
        /// Why.
        error: Error,
    },
}

/// What [`Membership::receive`] did with an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Applied, with any held operations it released. The events say what
    /// changed (possibly nothing, for an operation whose effect was voided).
    Applied(Vec<Event>),
    /// Already applied or already held: nothing changed.
    Duplicate,
    /// Some parents are not known yet: the operation is held (bounded by
    /// [`MAX_PENDING_OPS`]) and applied as soon as they arrive, from any
    /// later `receive`. Nothing to retry.
    Held {
        /// The parents not yet known.
        missing: Vec<OpId>,
    },
}

/// An operation made by this device: the bytes to send to every member
/// (and to keep in the log), and what applying it changed locally.
#[derive(Clone, Debug)]
pub struct Outgoing {
    op: Operation,
    events: Vec<Event>,
}

impl Outgoing {
    /// The signed operation to send.
    pub fn bytes(&self) -> &[u8] {
        self.op.bytes()
    }

    /// Its id.
    pub fn id(&self) -> OpId {
        self.op.id()
    }

    /// What it changed locally.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

// ---------------------------------------------------------------------------
// The membership state
// ---------------------------------------------------------------------------

/// An instance: (index of the node that created it, index of the member in
/// the genesis list for initial members, 0 otherwise).
type Inst = (usize, usize);

#[derive(Clone)]
struct Node {
    op: Option<Box<Operation>>,
    parents: Vec<usize>,
    depth: u64,
    /// The author's instance (for operations).
    author_inst: Inst,
    /// For removals and leaves: the instance that ends.
    target_inst: Option<Inst>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Present {
    identity: IdentityKey,
    inst: Inst,
}

/// The membership of a set of operations.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
struct View {
    present: BTreeMap<MemberId, Present>,
    by_identity: BTreeMap<IdentityKey, MemberId>,
}

impl View {
    fn insert(&mut self, member: MemberId, identity: IdentityKey, inst: Inst) {
        self.by_identity.insert(identity.clone(), member.clone());
        self.present.insert(member, Present { identity, inst });
    }

    /// Removes `member` if its present instance is `inst`.
    fn remove_inst(&mut self, member: &MemberId, inst: Inst) -> bool {
        match self.present.get(member) {
            Some(p) if p.inst == inst => {
                let identity = p.identity.clone();
                self.present.remove(member);
                self.by_identity.remove(&identity);
                true
            }
            _ => false,
        }
    }
}

/// A room's membership: the verified log and the members it yields.
///
/// Apply received operations with [`receive`](Self::receive); make your
/// own with [`add`](Self::add), [`remove`](Self::remove) and
/// [`leave`](Self::leave). Every method leaves the state unchanged when it
/// fails. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Membership {
    genesis: Genesis,
    nodes: Vec<Node>,
    index: BTreeMap<OpId, usize>,
    heads: BTreeSet<usize>,
    voided: Vec<bool>,
    view: View,
    /// Removal nodes by the instance they end.
    removals_by_target: BTreeMap<Inst, Vec<usize>>,
    /// Add nodes by their author's instance.
    adds_by_author: BTreeMap<Inst, Vec<usize>>,
    /// Add nodes by added member id.
    adds_by_member: BTreeMap<MemberId, Vec<usize>>,
    /// Add nodes by added identity key.
    adds_by_identity: BTreeMap<IdentityKey, Vec<usize>>,
    /// The last identity key each member id had in an applied addition.
    last_identity: BTreeMap<MemberId, IdentityKey>,
    pending: BTreeMap<OpId, Operation>,
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("room", self.genesis.room())
            .field("genesis", &self.genesis.id)
            .field("ops", &self.op_count())
            .field("members", &self.view.present.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Membership {
    /// Starts from a verified genesis: its members are present, each with
    /// the genesis id as instance.
    pub fn new(genesis: Genesis) -> Self {
        let mut view = View::default();
        let mut last_identity = BTreeMap::new();
        for (i, (m, k)) in genesis.members.iter().enumerate() {
            view.insert(m.clone(), k.clone(), (0, i));
            last_identity.insert(m.clone(), k.clone());
        }
        let mut index = BTreeMap::new();
        index.insert(genesis.id, 0);
        Self {
            genesis,
            nodes: alloc::vec![Node {
                op: None,
                parents: Vec::new(),
                depth: 0,
                author_inst: (0, 0),
                target_inst: None,
            }],
            index,
            heads: BTreeSet::from([0]),
            voided: alloc::vec![false],
            view,
            removals_by_target: BTreeMap::new(),
            adds_by_author: BTreeMap::new(),
            adds_by_member: BTreeMap::new(),
            adds_by_identity: BTreeMap::new(),
            last_identity,
            pending: BTreeMap::new(),
        }
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Whether `member` is present.
    pub fn is_member(&self, member: &MemberId) -> bool {
        self.view.present.contains_key(member)
    }

    /// The identity key of a present member.
    pub fn identity_of(&self, member: &MemberId) -> Option<&IdentityKey> {
        self.view.present.get(member).map(|p| &p.identity)
    }

    /// The present member holding identity key `key`.
    pub fn member_with_identity(&self, key: &IdentityKey) -> Option<&MemberId> {
        self.view.by_identity.get(key)
    }

    /// The current instance of a present member.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap(), MemberId::new(b"c").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g.clone());
    /// assert_eq!(m.instance_of(&a).unwrap().as_bytes(), g.id().as_bytes());
    /// m.remove(&alice, &b).unwrap();
    /// assert_eq!(m.instance_of(&b), None);
    /// let again = m.add(&alice, &b, &IdentityKey::of(&bob)).unwrap();
    /// assert_eq!(m.instance_of(&b).unwrap().as_bytes(), again.id().as_bytes());
    /// ```
    pub fn instance_of(&self, member: &MemberId) -> Option<InstanceId> {
        self.view
            .present
            .get(member)
            .map(|p| self.instance_id(p.inst))
    }

    /// Whether a present member is an admin (listed at genesis, with its
    /// genesis identity key).
    pub fn is_admin(&self, member: &MemberId) -> bool {
        self.view
            .present
            .get(member)
            .is_some_and(|p| self.genesis.is_admin(member, &p.identity))
    }

    /// The present members, sorted by member id, with identity and instance.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap(), MemberId::new(b"c").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// m.add(&bob, &c, &IdentityKey::of(&carol)).unwrap();
    /// let ids: Vec<_> = m.members().map(|(id, _, _)| id.clone()).collect();
    /// assert_eq!(ids, [a, b, c]);
    /// assert_eq!(m.identity_of(&ids[2]), Some(&IdentityKey::of(&carol)));
    /// assert_eq!(m.member_with_identity(&IdentityKey::of(&carol)), Some(&ids[2]));
    /// ```
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &IdentityKey, InstanceId)> + '_ {
        self.view
            .present
            .iter()
            .map(|(m, p)| (m, &p.identity, self.instance_id(p.inst)))
    }

    /// How many members are present.
    pub fn member_count(&self) -> usize {
        self.view.present.len()
    }

    /// Applied operations (not counting the genesis).
    pub fn op_count(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    /// The applied operations in the order this device applied them (a
    /// causal order): e.g. to persist each as its own record and restore the
    /// state with [`new`](Self::new) + [`receive`](Self::receive).
    pub fn operations(&self) -> impl Iterator<Item = &Operation> + '_ {
        self.nodes.iter().filter_map(|n| n.op.as_deref())
    }

    /// Operations held for missing parents.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Whether the operation (or genesis) `id` was applied.
    pub fn contains(&self, id: &OpId) -> bool {
        self.index.contains_key(id)
    }

    /// The heads: applied operations no applied operation names as parent
    /// (sorted). The next own operation names them as parents.
    pub fn heads(&self) -> Vec<OpId> {
        let mut v: Vec<OpId> = self.heads.iter().map(|&i| self.node_id(i)).collect();
        v.sort();
        v
    }

    /// A present member's checked identity key with these bytes.
    fn known_key(&self, bytes: &[u8; 32]) -> Option<IdentityKey> {
        self.view
            .by_identity
            .get_key_value(bytes)
            .map(|(k, _)| k.clone())
    }

    fn node_id(&self, i: usize) -> OpId {
        match self.nodes.get(i).and_then(|n| n.op.as_ref()) {
            Some(op) => op.id,
            None => self.genesis.id,
        }
    }

    fn instance_id(&self, inst: Inst) -> InstanceId {
        InstanceId(self.node_id(inst.0).0)
    }

    /// The membership digest (32 bytes): SHA-256 of the label, the room id,
    /// the genesis id and every present member (id, identity key, instance)
    /// in member-id order. Equal on every device that applied the same
    /// operations; shown to people as the room's membership fingerprint.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// let before = m.digest();
    /// m.leave(&bob).unwrap();
    /// assert_ne!(m.digest(), before);
    /// ```
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(MEMBERSHIP_DIGEST);
        let room = self.genesis.room.as_bytes();
        h.update(u16::try_from(room.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.update(room);
        h.update(self.genesis.id.0);
        h.update(
            u32::try_from(self.view.present.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        // Entries are gathered in chunks and hashed in large updates: many
        // small updates cost more than the hashing itself.
        let mut buf = Vec::with_capacity(64 * 1024);
        for (m, p) in &self.view.present {
            let id = m.as_bytes();
            buf.extend_from_slice(&u16::try_from(id.len()).unwrap_or(u16::MAX).to_be_bytes());
            buf.extend_from_slice(id);
            buf.extend_from_slice(p.identity.as_bytes());
            buf.extend_from_slice(&self.instance_id(p.inst).0);
            if buf.len() > 60 * 1024 {
                h.update(&buf);
                buf.clear();
            }
        }
        h.update(&buf);
        h.finalize().into()
    }

    // -----------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------

    /// Receives an operation's bytes: parses them, verifies the signature,
    /// and applies the operation if its parents are known (then any held
    /// operations it releases), or holds it.
    ///
    /// Errors (state unchanged): `Malformed(..)`, `WeakKey`, `BadSignature`
    /// from parsing; `Membership(..)` when a rule refuses it (section 5.1.5);
    /// `LimitExceeded` when the log is full or the pending store is full
    /// (the latter: receive it again once its parents arrived).
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, Received, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut at_alice = Membership::new(g.clone());
    /// let mut at_bob = Membership::new(g);
    /// let op = at_bob.leave(&bob).unwrap();
    /// assert!(matches!(at_alice.receive(op.bytes()).unwrap(), Received::Applied(_)));
    /// assert_eq!(at_alice.receive(op.bytes()).unwrap(), Received::Duplicate);
    /// assert!(!at_alice.is_member(&b));
    /// ```
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, Error> {
        let op = Operation::parse(bytes, &self.genesis.id, |k| self.known_key(k), Check::Full)?;
        if self.index.contains_key(&op.id) || self.pending.contains_key(&op.id) {
            return Ok(Received::Duplicate);
        }
        let missing: Vec<OpId> = op
            .parents
            .iter()
            .filter(|p| !self.index.contains_key(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            if self.pending.len() >= MAX_PENDING_OPS {
                return Err(Error::LimitExceeded);
            }
            self.pending.insert(op.id, op);
            return Ok(Received::Held { missing });
        }
        let mut events = self.apply(op)?;
        self.release_pending(&mut events);
        Ok(Received::Applied(events))
    }

    /// The operations held for missing parents, encoded, in id order (kept
    /// with the log in storage so a restart loses none).
    pub(crate) fn pending_ops(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.pending.values().map(|op| op.bytes.as_slice())
    }

    /// Puts back an operation [`pending_ops`](Self::pending_ops) listed,
    /// read from authenticated storage (its signature was verified when it
    /// was received). It must still wait for a parent, and not be held or
    /// applied already.
    pub(crate) fn restore_pending(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let op = Operation::parse(
            bytes,
            &self.genesis.id,
            |k| self.known_key(k),
            Check::Stored,
        )?;
        if self.index.contains_key(&op.id)
            || self.pending.contains_key(&op.id)
            || self.pending.len() >= MAX_PENDING_OPS
            || op.parents.iter().all(|p| self.index.contains_key(p))
        {
            return Err(DecodeError::InvalidValue.into());
        }
        self.pending.insert(op.id, op);
        Ok(())
    }

    fn release_pending(&mut self, events: &mut Vec<Event>) {
        loop {
            let ready: Vec<OpId> = self
                .pending
                .values()
                .filter(|op| op.parents.iter().all(|p| self.index.contains_key(p)))
                .map(|op| op.id)
                .collect();
            if ready.is_empty() {
                return;
            }
            for id in ready {
                let Some(op) = self.pending.remove(&id) else {
                    continue;
                };
                match self.apply(op) {
                    Ok(mut e) => events.append(&mut e),
                    Err(error) => events.push(Event::HeldRefused { op: id, error }),
                }
            }
        }
    }

    // -----------------------------------------------------------------------
    // Own operations
    // -----------------------------------------------------------------------

    /// Adds `member` with identity key `identity`, signed by `me` (a present
    /// member), naming my heads as parents; applies it locally.
    ///
    /// Errors as for [`receive`](Self::receive): `Membership(AuthorNotMember)`
    /// if `me` is not present, `Membership(NoPermission)`,
    /// `Membership(AlreadyMember)`, `Membership(IdentityInUse)`,
    /// `LimitExceeded` at [`MAX_MEMBERS`] members.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy, Event};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob, carol) = (IdentityKeyPair::generate(), IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b, c) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap(), MemberId::new(b"c").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// let op = m.add(&bob, &c, &IdentityKey::of(&carol)).unwrap();
    /// assert!(matches!(op.events()[0], Event::Added { .. }));
    /// assert_eq!(m.instance_of(&c).unwrap().as_bytes(), op.id().as_bytes());
    /// ```
    pub fn add(
        &mut self,
        me: &IdentityKeyPair,
        member: &MemberId,
        identity: &IdentityKey,
    ) -> Result<Outgoing, Error> {
        self.own(
            me,
            OpKind::Add {
                member: member.clone(),
                identity: identity.clone(),
            },
        )
    }

    /// Removes another present member, signed by `me`; applies it locally.
    ///
    /// Errors: `Membership(AuthorNotMember)`, `Membership(NoPermission)`,
    /// `Membership(NotPresent)`, `Membership(RemoveSelf)` (use
    /// [`leave`](Self::leave)).
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// m.remove(&alice, &b).unwrap(); // alice created the room: an admin
    /// assert!(!m.is_member(&b));
    /// ```
    pub fn remove(&mut self, me: &IdentityKeyPair, member: &MemberId) -> Result<Outgoing, Error> {
        self.own(
            me,
            OpKind::Remove {
                member: member.clone(),
            },
        )
    }

    /// Leaves the room, signed by `me`; applies it locally.
    ///
    /// Errors: `Membership(AuthorNotMember)`.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// let op = m.leave(&bob).unwrap();
    /// assert!(!m.is_member(&b));
    /// # let _ = op;
    /// ```
    pub fn leave(&mut self, me: &IdentityKeyPair) -> Result<Outgoing, Error> {
        self.own(me, OpKind::Leave)
    }

    fn own(&mut self, me: &IdentityKeyPair, kind: OpKind) -> Result<Outgoing, Error> {
        let key = IdentityKey::of(me);
        let author = self
            .view
            .by_identity
            .get(&key)
            .cloned()
            .ok_or(Error::Membership(MembershipError::AuthorNotMember))?;
        let mut parents = self.heads();
        parents.truncate(MAX_OP_PARENTS);
        let op = Operation::sign(me, &self.genesis.id, &author, &parents, &kind)?;
        let events = self.apply(op.clone())?;
        Ok(Outgoing { op, events })
    }

    // -----------------------------------------------------------------------
    // Log / welcome
    // -----------------------------------------------------------------------

    /// Encodes the whole log (genesis and every applied operation, in
    /// canonical order: by depth, then id) for a newcomer's welcome.
    ///
    /// ```text
    ///  0x02 | 0x03 | u32 len | genesis | u32 n | n x (u16 len | operation)
    /// ```
    pub fn to_log(&self) -> Vec<u8> {
        let mut order: Vec<usize> = (1..self.nodes.len()).collect();
        order.sort_by_key(|&i| (self.nodes.get(i).map_or(0, |n| n.depth), self.node_id(i)));
        let mut w = Writer::with_capacity(self.genesis.bytes.len() + order.len() * 200 + 16);
        w.u8(MEMBERSHIP_VERSION).u8(MEMBERSHIP_TYPE_LOG);
        w.vec32(&self.genesis.bytes);
        w.u32(u32::try_from(order.len()).unwrap_or(u32::MAX));
        for i in order {
            if let Some(op) = self.nodes.get(i).and_then(|n| n.op.as_ref()) {
                w.vec16(&op.bytes);
            }
        }
        w.into_vec()
    }

    /// Decodes and verifies a log for the room `expected_room`: the genesis
    /// signature and every operation's signature and rules, in the order
    /// given, which must be the canonical one.
    ///
    /// Errors: `Malformed(..)` for the layout (truncation, trailing bytes,
    /// counts over [`MAX_LOG_OPS`]), `NotForMe` for another room,
    /// `BadSignature`, `Membership(LogOrder)` for an operation before one of
    /// its parents, a repeated one or a non-canonical order, and any error of
    /// [`receive`](Self::receive) for an operation a rule refuses.
    ///
    /// ```
    /// # use secret_chat::membership::{Genesis, IdentityKey, Membership, RoomPolicy};
    /// # use secret_chat::{IdentityKeyPair, MemberId, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let (a, b) = (MemberId::new(b"a").unwrap(), MemberId::new(b"b").unwrap());
    /// # let room = RoomId::new(b"r").unwrap();
    /// # let members = [(a.clone(), IdentityKey::of(&alice)), (b.clone(), IdentityKey::of(&bob))];
    /// # let g = Genesis::create(&alice, &room, 2, RoomPolicy::default(), &a, &members, &[]).unwrap();
    /// let mut m = Membership::new(g);
    /// m.leave(&bob).unwrap();
    /// let log = m.to_log();
    /// let copy = Membership::from_log(&log, &room).unwrap();
    /// assert_eq!(copy.digest(), m.digest());
    /// assert!(Membership::from_log(&log[..log.len() - 1], &room).is_err());
    /// ```
    pub fn from_log(bytes: &[u8], expected_room: &RoomId) -> Result<Self, Error> {
        Self::parse_log(bytes, expected_room, Check::Full)
    }

    /// [`from_log`](Self::from_log) for a log read back from authenticated
    /// storage (this device verified every signature before it stored the
    /// log, and the record's tag vouches for the bytes): every structural
    /// check and every membership rule still runs, but no signature is
    /// verified and no key decompressed.
    pub(crate) fn from_stored_log(bytes: &[u8], expected_room: &RoomId) -> Result<Self, Error> {
        Self::parse_log(bytes, expected_room, Check::Stored)
    }

    fn parse_log(bytes: &[u8], expected_room: &RoomId, check: Check) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.version(MEMBERSHIP_VERSION)?;
        if r.u8()? != MEMBERSHIP_TYPE_LOG {
            return Err(DecodeError::InvalidValue.into());
        }
        let genesis = Genesis::parse(r.vec32(MAX_GENESIS_LEN)?, expected_room, check)?;
        let mut m = Self::new(genesis);
        let n = r.count32(MAX_LOG_OPS, 2 + MIN_OP_LEN)?;
        let mut last: Option<(u64, OpId)> = None;
        for _ in 0..n {
            let op = Operation::parse(
                r.vec16(MAX_OP_LEN)?,
                &m.genesis.id,
                |k| m.known_key(k),
                check,
            )?;
            let mut depth = 0u64;
            for p in &op.parents {
                let i = *m
                    .index
                    .get(p)
                    .ok_or(Error::Membership(MembershipError::LogOrder))?;
                depth = depth.max(m.nodes.get(i).map_or(0, |n| n.depth));
            }
            let key = (depth.saturating_add(1), op.id);
            if last.is_some_and(|l| l >= key) {
                return Err(MembershipError::LogOrder.into());
            }
            last = Some(key);
            m.apply(op)?;
        }
        r.finish()?;
        Ok(m)
    }

    // -----------------------------------------------------------------------
    // Applying (the rules of PROTOCOL.md 5.1.5 and 5.1.6)
    // -----------------------------------------------------------------------

    /// Checks `op` (all parents applied) against the membership of its causal
    /// past and applies it. Leaves the state unchanged on error.
    fn apply(&mut self, op: Operation) -> Result<Vec<Event>, Error> {
        if self.nodes.len() > MAX_LOG_OPS {
            return Err(Error::LimitExceeded);
        }
        let mut parents = Vec::with_capacity(op.parents.len());
        let mut depth = 0u64;
        for p in &op.parents {
            let i = *self
                .index
                .get(p)
                .ok_or(Error::Membership(MembershipError::LogOrder))?;
            depth = depth.max(self.nodes.get(i).map_or(0, |n| n.depth));
            parents.push(i);
        }
        // The causal past: the whole applied set when the parents cover every
        // head (the common case), otherwise the ancestors of the parents.
        let covers_heads = self.heads.iter().all(|h| parents.contains(h));
        let past: Option<Vec<bool>> = if covers_heads {
            None
        } else {
            Some(self.ancestors_of(&parents))
        };
        let computed;
        let view = match &past {
            None => &self.view,
            Some(d) => {
                computed = self.compute(d).0;
                &computed
            }
        };
        let (author_inst, target_inst) = self.check(&op, view)?;
        // Valid: apply (nothing below fails).
        let n = self.nodes.len();
        let in_past = |i: usize| {
            past.as_ref()
                .is_none_or(|d| d.get(i).copied() == Some(true))
        };
        let mut events = Vec::new();
        let author_voided = self.voided.get(author_inst.0).copied().unwrap_or(false);
        match &op.kind {
            OpKind::Add { member, identity } => {
                let mut void_self = author_voided;
                void_self |= self
                    .removals_by_target
                    .get(&author_inst)
                    .is_some_and(|rs| rs.iter().any(|&r| !in_past(r)));
                let mut losers = Vec::new();
                for b in self.conflicting_adds(member, identity) {
                    if in_past(b) {
                        continue;
                    }
                    if self.node_id(b) < op.id {
                        void_self = true;
                    } else {
                        losers.push(b);
                    }
                }
                self.push_node(&op, parents, depth, author_inst, None);
                self.adds_by_author.entry(author_inst).or_default().push(n);
                self.adds_by_member
                    .entry(member.clone())
                    .or_default()
                    .push(n);
                self.adds_by_identity
                    .entry(identity.clone())
                    .or_default()
                    .push(n);
                for b in losers {
                    self.void(b, &mut events);
                }
                if void_self {
                    if let Some(v) = self.voided.get_mut(n) {
                        *v = true;
                    }
                } else {
                    self.view.insert(member.clone(), identity.clone(), (n, 0));
                    let previous = self
                        .last_identity
                        .insert(member.clone(), identity.clone())
                        .filter(|old| old != identity);
                    events.push(Event::Added {
                        member: member.clone(),
                        identity: identity.clone(),
                        instance: InstanceId(op.id.0),
                        by: op.author.clone(),
                        previous_identity: previous,
                    });
                }
            }
            OpKind::Remove { .. } | OpKind::Leave => {
                let target = target_inst.unwrap_or(author_inst);
                let target_member = match &op.kind {
                    OpKind::Remove { member } => member.clone(),
                    _ => op.author.clone(),
                };
                self.push_node(&op, parents, depth, author_inst, Some(target));
                self.removals_by_target.entry(target).or_default().push(n);
                if self.view.remove_inst(&target_member, target) {
                    let instance = self.instance_id(target);
                    events.push(match &op.kind {
                        OpKind::Leave => Event::Left {
                            member: target_member.clone(),
                            instance,
                        },
                        _ => Event::Removed {
                            member: target_member.clone(),
                            instance,
                            by: op.author.clone(),
                        },
                    });
                }
                // A removal wins over the removed instance's concurrent adds.
                let concurrent: Vec<usize> = self
                    .adds_by_author
                    .get(&target)
                    .map(|v| v.iter().copied().filter(|&a| !in_past(a)).collect())
                    .unwrap_or_default();
                for a in concurrent {
                    self.void(a, &mut events);
                }
            }
        }
        Ok(events)
    }

    fn push_node(
        &mut self,
        op: &Operation,
        parents: Vec<usize>,
        depth: u64,
        author_inst: Inst,
        target_inst: Option<Inst>,
    ) {
        let n = self.nodes.len();
        for p in &parents {
            self.heads.remove(p);
        }
        self.heads.insert(n);
        self.index.insert(op.id, n);
        self.nodes.push(Node {
            op: Some(Box::new(op.clone())),
            parents,
            depth: depth.saturating_add(1),
            author_inst,
            target_inst,
        });
        self.voided.push(false);
    }

    /// Voids the add node `a` and, transitively, every add made by an
    /// instance a voided add created.
    fn void(&mut self, a: usize, events: &mut Vec<Event>) {
        let mut work = alloc::vec![a];
        while let Some(x) = work.pop() {
            match self.voided.get_mut(x) {
                Some(v) if !*v => *v = true,
                _ => continue,
            }
            let inst = (x, 0);
            if let Some(OpKind::Add { member, .. }) = self
                .nodes
                .get(x)
                .and_then(|n| n.op.as_ref())
                .map(|o| o.kind.clone())
                && self.view.remove_inst(&member, inst)
            {
                events.push(Event::AddVoided {
                    member,
                    instance: self.instance_id(inst),
                });
            }
            if let Some(children) = self.adds_by_author.get(&inst) {
                work.extend(children.iter().copied());
            }
        }
    }

    /// Add nodes of the same member id or the same identity key.
    fn conflicting_adds(&self, member: &MemberId, identity: &IdentityKey) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .adds_by_member
            .get(member)
            .into_iter()
            .chain(self.adds_by_identity.get(identity))
            .flatten()
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Checks the rules of an operation against the membership `view` of its
    /// causal past; returns the author's instance and the ended instance.
    fn check(&self, op: &Operation, view: &View) -> Result<(Inst, Option<Inst>), Error> {
        let author = view
            .present
            .get(&op.author)
            .ok_or(Error::Membership(MembershipError::AuthorNotMember))?;
        if author.identity != op.author_key {
            return Err(MembershipError::AuthorIdentityMismatch.into());
        }
        let admin = self.genesis.is_admin(&op.author, &op.author_key);
        match &op.kind {
            OpKind::Add { member, identity } => {
                if self.genesis.policy.add == AddRight::AdminsOnly && !admin {
                    return Err(MembershipError::NoPermission.into());
                }
                if view.present.contains_key(member) {
                    return Err(MembershipError::AlreadyMember.into());
                }
                if view.by_identity.contains_key(identity) {
                    return Err(MembershipError::IdentityInUse.into());
                }
                if view.present.len() >= MAX_MEMBERS {
                    return Err(Error::LimitExceeded);
                }
                Ok((author.inst, None))
            }
            OpKind::Remove { member } => {
                if self.genesis.policy.remove == RemoveRight::AdminsOnly && !admin {
                    return Err(MembershipError::NoPermission.into());
                }
                if member == &op.author {
                    return Err(MembershipError::RemoveSelf.into());
                }
                let target = view
                    .present
                    .get(member)
                    .ok_or(Error::Membership(MembershipError::NotPresent))?;
                Ok((author.inst, Some(target.inst)))
            }
            OpKind::Leave => Ok((author.inst, Some(author.inst))),
        }
    }

    /// The applied nodes that are `parents` or their ancestors.
    fn ancestors_of(&self, parents: &[usize]) -> Vec<bool> {
        let mut seen = alloc::vec![false; self.nodes.len()];
        let mut work: Vec<usize> = parents.to_vec();
        while let Some(x) = work.pop() {
            match seen.get_mut(x) {
                Some(s) if !*s => *s = true,
                _ => continue,
            }
            if let Some(n) = self.nodes.get(x) {
                work.extend(n.parents.iter().copied());
            }
        }
        seen
    }

    /// Whether node `a` is a strict ancestor of node `b`.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        if a >= b {
            return false;
        }
        let floor = self.nodes.get(a).map_or(0, |n| n.depth);
        let mut seen = BTreeSet::new();
        let mut work = alloc::vec![b];
        while let Some(x) = work.pop() {
            if x == a {
                return true;
            }
            if x < a || !seen.insert(x) {
                continue;
            }
            if let Some(n) = self.nodes.get(x) {
                if n.depth <= floor {
                    continue;
                }
                work.extend(n.parents.iter().copied());
            }
        }
        false
    }

    fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.is_ancestor(a.min(b), a.max(b))
    }

    /// The membership (and voided adds) of the down-closed set `set` of
    /// applied nodes, computed from scratch by the merge rule.
    fn compute(&self, set: &[bool]) -> (View, Vec<bool>) {
        let inside = |i: usize| set.get(i).copied() == Some(true);
        let mut voided = alloc::vec![false; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let Some(op) = node.op.as_ref().filter(|_| inside(i)) else {
                continue;
            };
            let OpKind::Add { member, identity } = &op.kind else {
                continue;
            };
            let v = voided.get(node.author_inst.0).copied().unwrap_or(false)
                || self
                    .removals_by_target
                    .get(&node.author_inst)
                    .is_some_and(|rs| rs.iter().any(|&r| inside(r) && self.concurrent(r, i)))
                || self
                    .adds_by_member
                    .get(member)
                    .into_iter()
                    .chain(self.adds_by_identity.get(identity))
                    .flatten()
                    .any(|&b| inside(b) && self.node_id(b) < op.id && self.concurrent(b, i));
            if let Some(slot) = voided.get_mut(i) {
                *slot = v;
            }
        }
        let mut view = View::default();
        for (i, (m, k)) in self.genesis.members.iter().enumerate() {
            view.insert(m.clone(), k.clone(), (0, i));
        }
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let Some(op) = node.op.as_ref().filter(|_| inside(i)) else {
                continue;
            };
            match (&op.kind, node.target_inst) {
                (OpKind::Add { member, identity }, _) if voided.get(i) == Some(&false) => {
                    view.insert(member.clone(), identity.clone(), (i, 0));
                }
                (OpKind::Remove { member }, Some(t)) => {
                    view.remove_inst(member, t);
                }
                (OpKind::Leave, Some(t)) => {
                    view.remove_inst(&op.author, t);
                }
                _ => {}
            }
        }
        (view, voided)
    }

    /// Recomputes the whole membership from scratch and compares it with
    /// the incrementally maintained one (for tests).
    #[doc(hidden)]
    pub fn self_check(&self) -> bool {
        let all = alloc::vec![true; self.nodes.len()];
        let (view, voided) = self.compute(&all);
        view == self.view && voided == self.voided
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VectorRng;

    fn kp(seed: &[u8]) -> IdentityKeyPair {
        IdentityKeyPair::generate_with_rng(&mut VectorRng::new(seed))
    }

    fn mid(s: &str) -> MemberId {
        MemberId::new(s.as_bytes()).unwrap()
    }

    fn setup() -> (Vec<IdentityKeyPair>, Genesis) {
        let ks: Vec<_> = [b"a", b"b", b"c", b"d"].iter().map(|s| kp(*s)).collect();
        let g = Genesis::create(
            &ks[0],
            &RoomId::new(b"unit").unwrap(),
            SUITE_XWING,
            RoomPolicy::default(),
            &mid("a"),
            &[
                (mid("a"), IdentityKey::of(&ks[0])),
                (mid("b"), IdentityKey::of(&ks[1])),
                (mid("c"), IdentityKey::of(&ks[2])),
            ],
            &[],
        )
        .unwrap();
        (ks, g)
    }

    #[test]
    fn ancestry_and_concurrency() {
        let (ks, g) = setup();
        let mut x = Membership::new(g.clone());
        let mut y = Membership::new(g);
        let a1 = x.leave(&ks[2]).unwrap();
        let b1 = y.add(&ks[1], &mid("d"), &IdentityKey::of(&ks[3])).unwrap();
        x.receive(b1.bytes()).unwrap();
        // a1 and b1 are concurrent; the next op of x descends from both
        let a2 = x.remove(&ks[0], &mid("d")).unwrap();
        let (i1, j1, i2) = (x.index[&a1.id()], x.index[&b1.id()], x.index[&a2.id()]);
        assert!(x.concurrent(i1, j1));
        assert!(x.is_ancestor(i1, i2) && x.is_ancestor(j1, i2) && x.is_ancestor(0, i2));
        assert!(!x.is_ancestor(i2, i1) && !x.is_ancestor(i1, i1));
        assert_eq!(x.nodes[i2].depth, 2);
        assert_eq!(x.heads(), vec![a2.id()]);
        assert!(x.self_check());
    }

    /// The slow path (parents not covering the heads) evaluates validity
    /// against the causal past, not the current membership.
    #[test]
    fn validity_uses_the_causal_past_not_the_current_view() {
        let (ks, g) = setup();
        let mut x = Membership::new(g.clone());
        let mut y = Membership::new(g);
        // x: a removes c. y (concurrently): c adds d.
        let rm = x.remove(&ks[0], &mid("c")).unwrap();
        let add = y.add(&ks[2], &mid("d"), &IdentityKey::of(&ks[3])).unwrap();
        // c's addition is valid (c was a member in its past) but void
        let Received::Applied(events) = x.receive(add.bytes()).unwrap() else {
            panic!()
        };
        assert!(events.is_empty(), "{events:?}");
        assert!(!x.is_member(&mid("d")));
        assert!(x.voided[x.index[&add.id()]]);
        let _ = rm;
        assert!(x.self_check());
    }

    #[test]
    fn debug_is_short() {
        let (ks, g) = setup();
        let m = Membership::new(g.clone());
        let s = format!("{m:?}");
        assert!(s.starts_with("Membership { room: RoomId(unit)"), "{s}");
        assert!(format!("{g:?}").contains("members: 3"));
        let k = format!("{:?}", IdentityKey::of(&ks[0]));
        assert!(k.starts_with("IdentityKey(") && k.ends_with("..)"), "{k}");
    }
}
