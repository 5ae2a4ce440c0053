//! Freed-memory scan: no sender-key secret is ever left in a freed heap block.
//!
//! A global allocator wraps the system allocator and, while armed, scans every
//! block it frees (and every block `realloc` leaves behind, since the default
//! `realloc` is alloc + copy + dealloc) for any of a set of known secrets: all
//! chain keys, message seeds and AES-GCM message keys of one sender-key chain,
//! (not the commitments: they travel in the clear),
//! and the sender key's Ed25519 seed. The scenario moves keys into growing
//! vectors and maps, fills and drains the skipped-key store (many B-tree node
//! splits and merges, evictions), saves and restores the outbound state, then
//! drops everything. A positive control first checks that the scanner sees a
//! secret left in a plain `Vec`.
//!
//! Exit status 0 when no freed block held a secret; the process panics
//! otherwise. `.ci/run` runs it.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::Rng;
use secret_chat::testing::{self, VectorRng};
use secret_chat::{InboundSenderKey, Message, OutboundSenderKey, RoomId, SenderKeyMode};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Open-addressing table of the first 8 bytes of every secret (a power of two).
const TABLE: usize = 1 << 16;

struct Scanner;

static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static SCANNED: AtomicUsize = AtomicUsize::new(0);
static PREFIXES: OnceLock<Box<[u64]>> = OnceLock::new();
/// Size of the last block found holding a secret, and the offset.
static LAST_HIT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

fn slot(x: u64) -> usize {
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize & (TABLE - 1)
}

fn contains(table: &[u64], x: u64) -> bool {
    let mut i = slot(x);
    loop {
        match table[i] {
            0 => return false,
            v if v == x => return true,
            _ => i = (i + 1) & (TABLE - 1),
        }
    }
}

fn scan(block: &[u8]) {
    let Some(table) = PREFIXES.get() else { return };
    SCANNED.fetch_add(block.len(), Ordering::Relaxed);
    for (off, w) in block.windows(8).enumerate() {
        let x = u64::from_le_bytes(w.try_into().unwrap());
        if x != 0 && contains(table, x) {
            LAST_HIT[0].store(block.len(), Ordering::Relaxed);
            LAST_HIT[1].store(off, Ordering::Relaxed);
            HITS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Scanner {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes that the
        // caller hands back to us; we own it until `System.dealloc`.
        let block = unsafe { std::slice::from_raw_parts_mut(ptr, layout.size()) };
        if ARMED.load(Ordering::Relaxed) {
            scan(block);
        }
        // Wipe every freed block (armed or not), so stale bytes of an earlier
        // allocation never show up later in the uninitialised part of a new
        // one (a B-tree node's unused slots): a hit is then always a block
        // that still held the secret when it was freed.
        block.fill(0);
        std::hint::black_box(&block);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Scanner = Scanner;

fn install(secrets: &[[u8; 32]]) {
    let mut table = vec![0u64; TABLE].into_boxed_slice();
    for s in secrets {
        let x = u64::from_le_bytes(s[..8].try_into().unwrap());
        let mut i = slot(x);
        while table[i] != 0 && table[i] != x {
            i = (i + 1) & (TABLE - 1);
        }
        table[i] = x;
    }
    assert!(PREFIXES.set(table).is_ok());
}

const MESSAGES: u32 = 3200;

fn main() {
    let room = RoomId::new(b"freed-memory").unwrap();
    let binding = [0xb1; 32];
    let key_seed = b"freed-memory/key";
    let salt_seed = b"freed-memory/salt";

    // The secrets of the chain, computed before arming: the Ed25519 seed, and
    // per index the chain key, the message seed and the message key.
    let mut rng = VectorRng::new(key_seed);
    let mut chain = [0u8; 32];
    rng.fill_bytes(&mut chain);
    let mut signing_seed = [0u8; 32];
    rng.fill_bytes(&mut signing_seed);
    let mut salts = VectorRng::new(salt_seed);
    let mut secrets = vec![signing_seed];
    for _ in 0..MESSAGES {
        let mut salt = [0u8; 16];
        salts.fill_bytes(&mut salt);
        let d = testing::derive_message_keys(&chain, &salt, &binding);
        secrets.extend([chain, d.seed, d.key]);
        chain = d.next_chain_key;
    }
    secrets.push(chain);
    install(&secrets);

    // Positive control: a secret in a plain Vec is seen when freed.
    ARMED.store(true, Ordering::SeqCst);
    drop(secrets[5].to_vec());
    ARMED.store(false, Ordering::SeqCst);
    assert!(
        HITS.load(Ordering::SeqCst) > 0,
        "the scanner misses secrets"
    );
    HITS.store(0, Ordering::SeqCst);
    SCANNED.store(0, Ordering::SeqCst);

    ARMED.store(true, Ordering::SeqCst);
    scenario(&room, binding, key_seed, salt_seed);
    ARMED.store(false, Ordering::SeqCst);

    let hits = HITS.load(Ordering::SeqCst);
    let scanned = SCANNED.load(Ordering::SeqCst);
    if hits > 0 {
        eprintln!(
            "last hit: a freed block of {} bytes, offset {}",
            LAST_HIT[0].load(Ordering::SeqCst),
            LAST_HIT[1].load(Ordering::SeqCst)
        );
    }
    println!("freed-memory scan: {scanned} freed bytes scanned, {hits} secret(s) found");
    assert!(
        scanned > 1 << 20,
        "the scenario freed too little to mean anything"
    );
    assert_eq!(hits, 0, "a sender-key secret was left in freed memory");
}

fn scenario(room: &RoomId, binding: [u8; 32], key_seed: &[u8], salt_seed: &[u8]) {
    let mut out = OutboundSenderKey::new_with_rng(
        room.clone(),
        1,
        SenderKeyMode::Signed,
        binding,
        0,
        &mut VectorRng::new(key_seed),
    );
    let share = out.share();
    // Keys moved into growing containers (every growth frees the old buffer).
    let mut many: Vec<InboundSenderKey> = Vec::new();
    let mut by_id: BTreeMap<u32, InboundSenderKey> = BTreeMap::new();
    for i in 0..64 {
        many.push(InboundSenderKey::new(room.clone(), 1, share.clone(), binding).unwrap());
        by_id.insert(
            i,
            InboundSenderKey::new(room.clone(), 1, share.clone(), binding).unwrap(),
        );
    }
    let mut salts = VectorRng::new(salt_seed);
    let wires: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| out.encrypt_with_rng(&i.to_be_bytes(), &mut salts).unwrap())
        .collect();
    // Save and restore the outbound state (a crash and an import).
    let saved = testing::save_outbound(&out);
    let restored = testing::restore_outbound(&saved).unwrap();
    drop(saved);

    let mut inb = many.pop().unwrap();
    let open = |k: &mut InboundSenderKey, i: usize| {
        k.decrypt(&Message::from_bytes(&wires[i]).unwrap())
            .unwrap()
            .into_plaintext()
    };
    // Fill the skipped store (2000 seeds), drain part of it in a scattered
    // order, then jump again so the oldest are evicted.
    open(&mut inb, 2000);
    for i in (0..2000).step_by(7) {
        open(&mut inb, i);
    }
    open(&mut inb, 3100);
    for i in (0..3100).rev().step_by(3) {
        let _ = inb.decrypt(&Message::from_bytes(&wires[i]).unwrap());
    }
    inb.retire(3000);
    assert!(
        inb == inb,
        "state comparison encodes through a secret writer"
    );
    // Move the busy key through containers again.
    by_id.insert(1000, inb);
    many.extend(by_id.into_values());
    many.shrink_to_fit();
    drop(many);
    drop(restored);
    drop(out);
    drop(share);
    drop(wires);
}
