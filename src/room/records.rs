//! A room as records of a [`SealedStore`]: what changed since the last save,
//! and loading without redoing the public-key work the records' tags vouch
//! for (layouts in `docs/PROTOCOL.md`, section 7.2).

use super::{InboundEntry, MAX_LOG_BYTES, Peer, Room, RotationPolicy, read_member};
use crate::error::{DecodeError, Error};
use crate::identity::PublicIdentity;
use crate::ids::{MemberId, RoomId, SenderKeyId};
use crate::labels::limits::{MAX_MEMBERS, MAX_PENDING_OPS, MAX_RETIRED_KEYS};
use crate::labels::{
    PROTOCOL_VERSION, RECORD_KIND_INBOUND_KEYS, RECORD_KIND_MEMBER_SHARE_KEY,
    RECORD_KIND_MEMBERSHIP_LOG, RECORD_KIND_OUTBOUND_KEY, RECORD_KIND_ROOM_CORE,
};
use crate::membership::{InstanceId, Membership};
use crate::record::RecordKey;
use crate::sender_key::{InboundSenderKey, OutboundSenderKey, SenderKeyMode};
use crate::share_key::MAX_SIGNED_SHARE_KEY_LEN;
use crate::share_key::{SignedShareKey, Suite};
use crate::store::{Changes, SealedStore, Store};
use crate::wire::{Reader, Writer};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use zeroize::Zeroizing;

/// Which records of a room changed since it was last saved (or loaded).
/// Every state change marks what it touched; marking too much only costs a
/// write, so error paths never unmark.
#[derive(Clone, Default)]
pub(super) struct Unsaved {
    /// Every record, and records of this room the store holds but the
    /// room no longer has are deleted (set by create, join, import).
    pub(super) everything: bool,
    pub(super) core: bool,
    pub(super) log: bool,
    pub(super) outbound: bool,
    /// Members whose share-key record is to be written (or deleted).
    pub(super) share_keys: BTreeSet<MemberId>,
    /// Members whose inbound-keys record is to be written (or deleted).
    pub(super) inbound: BTreeSet<MemberId>,
}

impl Unsaved {
    /// Every record of the room.
    pub(super) fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        !self.everything
            && !self.core
            && !self.log
            && !self.outbound
            && self.share_keys.is_empty()
            && self.inbound.is_empty()
    }
}

/// The kinds of the records a room writes (the app's own records of the
/// room are left alone when a room replaces its earlier state).
const ROOM_KINDS: [u8; 5] = [
    RECORD_KIND_ROOM_CORE,
    RECORD_KIND_MEMBERSHIP_LOG,
    RECORD_KIND_OUTBOUND_KEY,
    RECORD_KIND_MEMBER_SHARE_KEY,
    RECORD_KIND_INBOUND_KEYS,
];

/// A member's record of one kind: the member it names and its plaintext.
type MemberRecord = (MemberId, Zeroizing<Vec<u8>>);

fn name(kind: u8, room: &RoomId, key: &[u8]) -> Result<RecordKey, Error> {
    RecordKey::new(kind, room.as_bytes(), key)
}

impl Room {
    /// The records of this room that changed since it was created, loaded or
    /// last [saved](Self::save): commit them (with the changes of other
    /// rooms, if you like) and then call [`mark_saved`](Self::mark_saved).
    /// [`save`](Self::save) does both.
    ///
    /// A received message changes one small record (the sender's inbound
    /// keys); a sent message my outbound key; a membership change the log,
    /// my outbound key and the records of members who came or went. After
    /// [`create`](Self::create), [`join`](Self::join) and
    /// [`import`](Self::import) every record is listed (use
    /// [`save`](Self::save) to also delete what a store held of an earlier
    /// state of the room).
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let (mut room, _) = Room::create(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members).unwrap();
    /// assert_eq!(room.changes().unwrap().len(), 5); // core, log, my key, Bob's share key and keys
    /// room.mark_saved();
    /// let _ = room.encrypt(&alice, b"hi").unwrap();
    /// assert_eq!(room.changes().unwrap().len(), 1); // my outbound key
    /// ```
    pub fn changes(&self) -> Result<Changes, Error> {
        let u = &self.unsaved;
        let mut changes = Changes::new();
        if u.is_empty() {
            return Ok(changes);
        }
        let all = u.everything;
        if all || u.core {
            changes.put(self.core_name()?, self.core_record())?;
        }
        if all || u.log {
            changes.put(
                name(RECORD_KIND_MEMBERSHIP_LOG, &self.id, b"")?,
                self.log_record(),
            )?;
        }
        if all || u.outbound {
            changes.put(
                name(RECORD_KIND_OUTBOUND_KEY, &self.id, b"")?,
                self.outbound_record(),
            )?;
        }
        let members: Vec<&MemberId> = if all {
            self.peers.keys().collect()
        } else {
            u.share_keys.iter().chain(u.inbound.iter()).collect()
        };
        for member in members {
            let share_name = name(RECORD_KIND_MEMBER_SHARE_KEY, &self.id, member.as_bytes())?;
            if all || u.share_keys.contains(member) {
                match self.peers.get(member).and_then(|p| p.share_key.as_ref()) {
                    Some(k) => {
                        let mut record = Vec::with_capacity(1 + k.as_bytes().len());
                        record.push(PROTOCOL_VERSION);
                        record.extend_from_slice(k.as_bytes());
                        changes.put(share_name, record)?;
                    }
                    None => changes.delete(share_name)?,
                }
            }
            let inbound_name = name(RECORD_KIND_INBOUND_KEYS, &self.id, member.as_bytes())?;
            if all || u.inbound.contains(member) {
                match self.inbound_record(member) {
                    Some(record) => changes.put(inbound_name, record)?,
                    None => changes.delete(inbound_name)?,
                }
            }
        }
        Ok(changes)
    }

    /// Forgets what [`changes`](Self::changes) listed: call it once they are
    /// committed.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let (mut room, _) = Room::create(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members).unwrap();
    /// room.mark_saved();
    /// assert!(room.changes().unwrap().is_empty());
    /// ```
    pub fn mark_saved(&mut self) {
        self.unsaved = Unsaved::default();
    }

    /// Commits what changed since the last save to `store` in one batch
    /// (one SQLite transaction) and returns the store's new generation (keep
    /// it beside the storage key, see [`SealedStore::open`]). Call it after
    /// every call that changes the room and *before* acting on the result
    /// (sending what [`encrypt`](Self::encrypt) made, showing what
    /// [`decrypt`](Self::decrypt) returned): a crash then never shows a
    /// message twice nor reuses a message key. On an error nothing is
    /// marked saved; the next save writes it again.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, StorageKey};
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let key = StorageKey::generate();
    /// let mut store = SealedStore::open(MemoryStore::new(), &key, None).unwrap();
    /// let (mut room, _) = Room::create(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members).unwrap();
    /// room.save(&mut store).unwrap();
    /// let sent = room.encrypt(&alice, b"hi").unwrap();
    /// let generation = room.save(&mut store).unwrap(); // then send `sent`
    /// let again = Room::load(&store, room.id()).unwrap().unwrap();
    /// assert_eq!(again.digest(), room.digest());
    /// # let _ = (sent, generation);
    /// ```
    pub fn save<S: Store>(&mut self, store: &mut SealedStore<S>) -> Result<u64, Error> {
        self.save_with(store, Changes::new())
    }

    /// [`save`](Self::save), committing the app's own `records` (kind
    /// [`RECORD_KIND_APP`](crate::labels::RECORD_KIND_APP): the message just
    /// decrypted, the outbox holding what [`encrypt`](Self::encrypt)
    /// returned) in the same transaction, so a crash keeps both or neither:
    /// no message is then lost between the commit and the screen, and no
    /// key share between the commit and the relay.
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, StorageKey};
    /// use secret_chat::labels::RECORD_KIND_APP;
    /// use secret_chat::record::RecordKey;
    /// use secret_chat::store::{Changes, MemoryStore, SealedStore};
    /// # let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// # let members = [(MemberId::new(b"a").unwrap(), alice.bundle()), (MemberId::new(b"b").unwrap(), bob.bundle())];
    /// let mut store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// let (mut room, _) = Room::create(&alice, RoomId::random(), MemberId::new(b"a").unwrap(), &members).unwrap();
    /// let out = room.encrypt(&alice, b"hi").unwrap();
    /// let mut outbox = Changes::new();
    /// let entry = RecordKey::new(RECORD_KIND_APP, room.id().as_bytes(), b"outbox/1").unwrap();
    /// outbox.put(entry.clone(), out.message.clone()).unwrap();
    /// room.save_with(&mut store, outbox).unwrap();
    /// // ... hand the message to the relay, then drop it from the outbox:
    /// let mut sent = Changes::new();
    /// sent.delete(entry).unwrap();
    /// store.commit(&sent).unwrap();
    /// ```
    pub fn save_with<S: Store>(
        &mut self,
        store: &mut SealedStore<S>,
        records: Changes,
    ) -> Result<u64, Error> {
        let mut changes = if self.unsaved.everything {
            store.room_deletion_of_kinds(self.id.as_bytes(), &ROOM_KINDS)
        } else {
            Changes::new()
        };
        changes.extend(self.changes()?);
        changes.extend(records);
        let generation = store.commit(&changes)?;
        self.mark_saved();
        Ok(generation)
    }

    /// Loads room `id` from `store` (`None` if the store holds no such
    /// room). Every record is parsed strictly and every invariant between
    /// them checked (the membership rules are replayed over the stored log),
    /// but nothing the records' tags vouch for is redone: no signature is
    /// verified and no curve point decompressed until it is used.
    ///
    /// Errors: [`Error::StorageDecrypt`] or [`Error::StoreInconsistent`] for
    /// damaged or swapped records, [`Error::Malformed`] for records that
    /// contradict each other, [`Error::Backend`].
    ///
    /// ```
    /// # use secret_chat::{IdentityKeyPair, MemberId, Room, RoomId, StorageKey};
    /// use secret_chat::store::{MemoryStore, SealedStore};
    /// let store = SealedStore::open(MemoryStore::new(), &StorageKey::generate(), None).unwrap();
    /// assert!(Room::load(&store, &RoomId::random()).unwrap().is_none());
    /// ```
    pub fn load<S: Store>(store: &SealedStore<S>, id: &RoomId) -> Result<Option<Self>, Error> {
        let Some(core) = store.get(&name(RECORD_KIND_ROOM_CORE, id, b"")?)? else {
            return Ok(None);
        };
        let get = |kind: u8| -> Result<Zeroizing<Vec<u8>>, Error> {
            store
                .get(&name(kind, id, b"")?)?
                .ok_or(Error::StoreInconsistent)
        };
        let log = get(RECORD_KIND_MEMBERSHIP_LOG)?;
        let outbound = get(RECORD_KIND_OUTBOUND_KEY)?;
        // Every record of `kind` in this room, with the member it names.
        let per_member = |kind: u8| -> Result<Vec<MemberRecord>, Error> {
            store
                .names(kind, id.as_bytes())
                .map(|n| {
                    let member = MemberId::new(n.key()).map_err(|_| DecodeError::InvalidValue)?;
                    Ok((member, store.get(n)?.ok_or(Error::StoreInconsistent)?))
                })
                .collect()
        };
        let share_keys = per_member(RECORD_KIND_MEMBER_SHARE_KEY)?;
        let inbound = per_member(RECORD_KIND_INBOUND_KEYS)?;
        // Whatever the records' contents break (a membership rule of the
        // stored log, a key, a limit) is damaged state: `Malformed`.
        Self::from_records(id, &core, &log, &outbound, &share_keys, &inbound)
            .map(Some)
            .map_err(|e| match e {
                Error::Malformed(_) => e,
                _ => Error::Malformed(DecodeError::InvalidValue),
            })
    }

    fn core_name(&self) -> Result<RecordKey, Error> {
        name(RECORD_KIND_ROOM_CORE, &self.id, b"")
    }

    /// `0x02 | u16 len me | my identity (32) | max_messages u32 |
    /// max_age_secs u64 | old_key_grace_secs u64`.
    fn core_record(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(1 + 2 + self.me.as_bytes().len() + 32 + 20);
        w.u8(PROTOCOL_VERSION)
            .vec16(self.me.as_bytes())
            .bytes(self.my_identity.as_bytes())
            .u32(self.policy.max_messages)
            .u64(self.policy.max_age_secs)
            .u64(self.policy.old_key_grace_secs);
        w.into_vec()
    }

    /// `0x02 | u32 len | membership log | u32 n | n x (u16 len | operation
    /// held for missing parents)`, held operations in id order.
    fn log_record(&self) -> Vec<u8> {
        let log = self.membership.to_log();
        let held: Vec<&[u8]> = self.membership.pending_ops().collect();
        let len = 1 + 4 + log.len() + 4 + held.iter().map(|op| 2 + op.len()).sum::<usize>();
        let mut w = Writer::with_capacity(len);
        w.u8(PROTOCOL_VERSION).vec32(&log);
        w.u32(super::count_u32(held.len()));
        for op in held {
            w.vec16(op);
        }
        w.into_vec()
    }

    /// `0x02 | created_at u64 | outbound key state | u32 n | n x retired id
    /// (16) | u32 m | m x (u16 len member)`, the members owed my current key
    /// in increasing order.
    fn outbound_record(&self) -> Vec<u8> {
        let owed: Vec<&MemberId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.owed)
            .map(|(m, _)| m)
            .collect();
        let len = 1
            + 8
            + self.outbound.state_len()
            + 4
            + 16 * self.own_retired.len()
            + 4
            + owed.iter().map(|m| 2 + m.as_bytes().len()).sum::<usize>();
        // The outbound key's chain key is in here: a secret writer leaves no
        // copy behind if it grows, and `Changes` zeroizes what it holds.
        let mut w = Writer::secret(len);
        w.u8(PROTOCOL_VERSION).u64(self.outbound_created_at);
        self.outbound.encode_state(&mut w);
        w.u32(super::count_u32(self.own_retired.len()));
        for id in &self.own_retired {
            w.bytes(id.as_bytes());
        }
        w.u32(super::count_u32(owed.len()));
        for m in owed {
            w.vec16(m.as_bytes());
        }
        w.into_vec()
    }

    /// `None` when nothing is held for `member` (no share accepted yet, or
    /// not a member). Otherwise `0x02 | instance (32) | last epoch (u8 0, or
    /// u8 1 | u32) | u32 n | n x (retired_at (u8 0, or u8 1 | u64) | inbound
    /// key state)`, keys in increasing id order.
    fn inbound_record(&self, member: &MemberId) -> Option<Vec<u8>> {
        let peer = self.peers.get(member)?;
        let keys: Vec<&InboundEntry> = self
            .inbound
            .values()
            .filter(|e| e.member == *member)
            .collect();
        if peer.last_epoch.is_none() && keys.is_empty() {
            return None;
        }
        let len = 1 + 32 + 5 + 4 + keys.iter().map(|e| 9 + e.key.state_len()).sum::<usize>();
        let mut w = Writer::secret(len);
        w.u8(PROTOCOL_VERSION).bytes(peer.instance.as_bytes());
        super::write_opt_u32(&mut w, peer.last_epoch);
        w.u32(super::count_u32(keys.len()));
        for e in keys {
            super::write_opt_u64(&mut w, e.retired_at);
            e.key.encode_state(&mut w);
        }
        Some(w.into_vec())
    }

    fn from_records(
        id: &RoomId,
        core: &[u8],
        log: &[u8],
        outbound: &[u8],
        share_keys: &[MemberRecord],
        inbound_records: &[MemberRecord],
    ) -> Result<Self, Error> {
        // Core.
        let mut r = Reader::new(core);
        r.version(PROTOCOL_VERSION)?;
        let me = read_member(&mut r)?;
        let my_identity = PublicIdentity::from_bytes(r.bytes(32)?)?;
        let policy = RotationPolicy {
            max_messages: r.u32()?,
            max_age_secs: r.u64()?,
            old_key_grace_secs: r.u64()?,
        };
        r.finish()?;

        // Membership: rules replayed, signatures not re-verified.
        let mut r = Reader::new(log);
        r.version(PROTOCOL_VERSION)?;
        let mut membership = Membership::from_stored_log(r.vec32(MAX_LOG_BYTES)?, id)?;
        let n = r.count32(MAX_PENDING_OPS, 2)?;
        for _ in 0..n {
            membership.restore_pending(r.vec16(usize::from(u16::MAX))?)?;
        }
        r.finish()?;
        let suite = Suite::from_byte(membership.genesis().suite())?;
        if membership
            .identity_of(&me)
            .is_some_and(|k| k.as_bytes() != my_identity.as_bytes())
        {
            return Err(DecodeError::InvalidValue.into());
        }

        // Peers: exactly the present members other than me.
        let mut peers: BTreeMap<MemberId, Peer> = BTreeMap::new();
        for (member, key, instance) in membership.members() {
            if *member == me {
                continue;
            }
            peers.insert(
                member.clone(),
                Peer {
                    identity: super::identity_of(key),
                    instance,
                    share_key: None,
                    last_epoch: None,
                    owed: false,
                },
            );
        }

        // Outbound.
        let mut r = Reader::new(outbound);
        r.version(PROTOCOL_VERSION)?;
        let outbound_created_at = r.u64()?;
        let outbound = OutboundSenderKey::decode_state(&mut r)?;
        if outbound.room() != id
            || (outbound.mode() == SenderKeyMode::Pairwise && membership.member_count() > 2)
        {
            return Err(DecodeError::InvalidValue.into());
        }
        let n = r.count32(super::OWN_KEY_HISTORY, 16)?;
        let mut own_retired = Vec::with_capacity(n);
        for _ in 0..n {
            own_retired.push(SenderKeyId::from_bytes(r.array()?));
        }
        let n = r.count32(MAX_MEMBERS, 2 + 1)?;
        let mut last: Option<MemberId> = None;
        for _ in 0..n {
            let member = read_member(&mut r)?;
            if last.as_ref().is_some_and(|l| member <= *l) {
                return Err(DecodeError::InvalidValue.into());
            }
            peers
                .get_mut(&member)
                .ok_or(DecodeError::InvalidValue)?
                .owed = true;
            last = Some(member);
        }
        r.finish()?;

        // Share keys: structure only (checked when they arrived).
        for (member, record) in share_keys {
            let peer = peers.get_mut(member).ok_or(DecodeError::InvalidValue)?;
            let (version, bytes) = record.split_first().ok_or(DecodeError::Empty)?;
            if *version != PROTOCOL_VERSION {
                return Err(DecodeError::UnsupportedVersion(*version).into());
            }
            if bytes.len() > MAX_SIGNED_SHARE_KEY_LEN {
                return Err(DecodeError::LengthLimit.into());
            }
            let key = SignedShareKey::from_stored(bytes)?;
            if key.suite() != suite {
                return Err(DecodeError::InvalidValue.into());
            }
            peer.share_key = Some(key);
        }

        // Inbound keys.
        let mut inbound: BTreeMap<SenderKeyId, InboundEntry> = BTreeMap::new();
        for (member, record) in inbound_records {
            let peer = peers.get_mut(member).ok_or(DecodeError::InvalidValue)?;
            let mut r = Reader::new(record);
            r.version(PROTOCOL_VERSION)?;
            let instance = InstanceId::from_bytes(r.array()?);
            let last_epoch = super::read_opt_u32(&mut r)?;
            if instance != peer.instance {
                return Err(DecodeError::InvalidValue.into());
            }
            let n = r.count32(1 + MAX_RETIRED_KEYS, 1 + 32)?;
            let (mut current, mut retired) = (0usize, 0usize);
            let mut previous: Option<SenderKeyId> = None;
            for _ in 0..n {
                let retired_at = super::read_opt_u64(&mut r)?;
                let key = InboundSenderKey::decode_state(&mut r)?;
                let key_id = key.id();
                if key.room() != id
                    || last_epoch.is_none_or(|last| key.epoch() > last)
                    || previous.is_some_and(|p| key_id <= p)
                    || inbound.contains_key(&key_id)
                {
                    return Err(DecodeError::InvalidValue.into());
                }
                if retired_at.is_some() {
                    retired += 1;
                } else {
                    current += 1;
                }
                previous = Some(key_id);
                inbound.insert(
                    key_id,
                    InboundEntry {
                        member: member.clone(),
                        instance,
                        key,
                        retired_at,
                    },
                );
            }
            r.finish()?;
            if current > 1 || retired > MAX_RETIRED_KEYS || (last_epoch.is_none() && n == 0) {
                return Err(DecodeError::InvalidValue.into());
            }
            peer.last_epoch = last_epoch;
        }
        Ok(Self {
            id: id.clone(),
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
            unsaved: Unsaved::default(),
            key_requests: super::key_request::AnswerLimiter::default(),
        })
    }
}
