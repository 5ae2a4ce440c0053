//! The main example: Alice, Bob and Carol on their own phones, talking
//! through a relay that logs everything it handles.
//!
//! Run it with `cargo run --example secret_chat`. It checks everything it
//! shows and exits non-zero if anything goes wrong.

use secret_chat::{
    DeviceBundle, Error, IdentityKeyPair, MemberId, Room, RoomId, TerminalMode, room::OutgoingShare,
};
use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;

/// What the relay forwards: it sees who talks to whom, and opaque bytes.
#[derive(Clone)]
struct Envelope {
    room: String,
    from: String,
    to: String,
    kind: &'static str,
    bytes: Vec<u8>,
}

/// An in-memory relay server: queues per recipient, and a log of everything.
#[derive(Default)]
struct Relay {
    inboxes: BTreeMap<String, VecDeque<Envelope>>,
    log: Vec<Envelope>,
}

impl Relay {
    fn post(&mut self, e: Envelope) {
        self.log.push(e.clone());
        self.inboxes.entry(e.to.clone()).or_default().push_back(e);
    }

    fn take(&mut self, who: &str) -> Vec<Envelope> {
        self.inboxes.remove(who).map(Vec::from).unwrap_or_default()
    }
}

/// One person's phone: a device identity and its rooms.
struct Phone {
    name: String,
    identity: IdentityKeyPair,
    rooms: BTreeMap<String, Room>,
}

impl Phone {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            identity: IdentityKeyPair::generate(),
            rooms: BTreeMap::new(),
        }
    }

    fn id(&self) -> MemberId {
        member(&self.name)
    }

    fn entry(&self) -> (MemberId, DeviceBundle) {
        (self.id(), self.identity.bundle())
    }

    fn post_shares(&self, relay: &mut Relay, room: &str, shares: Vec<OutgoingShare>) {
        for s in shares {
            relay.post(Envelope {
                room: room.to_string(),
                from: self.name.clone(),
                to: String::from_utf8_lossy(s.to.as_bytes()).into_owned(),
                kind: "key share",
                bytes: s.bytes,
            });
        }
    }

    fn create(
        &mut self,
        relay: &mut Relay,
        room: &str,
        members: &[(MemberId, DeviceBundle)],
    ) -> Result<(), Error> {
        let (r, shares) = Room::create(
            &self.identity,
            RoomId::new(room.as_bytes())?,
            self.id(),
            members,
        )?;
        // The others join from the welcome: the signed membership log and
        // the members' bundles. It is public; the relay carries it.
        let welcome = r.welcome(&self.identity)?;
        for (m, _) in members.iter().filter(|(m, _)| *m != self.id()) {
            relay.post(Envelope {
                room: room.to_string(),
                from: self.name.clone(),
                to: String::from_utf8_lossy(m.as_bytes()).into_owned(),
                kind: "welcome",
                bytes: welcome.clone(),
            });
        }
        self.rooms.insert(room.to_string(), r);
        self.post_shares(relay, room, shares);
        Ok(())
    }

    /// Sends a signed membership update to the other members.
    fn post_update(&self, relay: &mut Relay, room: &str, update: &[u8], to: &[&str]) {
        for t in to {
            relay.post(Envelope {
                room: room.to_string(),
                from: self.name.clone(),
                to: t.to_string(),
                kind: "update",
                bytes: update.to_vec(),
            });
        }
    }

    fn say(&mut self, relay: &mut Relay, room: &str, text: &str, to: &[&str]) -> Result<(), Error> {
        let r = self.rooms.get_mut(room).ok_or(Error::NotAMember)?;
        let out = r.encrypt(&self.identity, text.as_bytes())?;
        self.post_shares(relay, room, out.shares);
        println!("  {:>5} -> {room}: {text:?}", self.name);
        for t in to {
            relay.post(Envelope {
                room: room.to_string(),
                from: self.name.clone(),
                to: t.to_string(),
                kind: "message",
                bytes: out.message.clone(),
            });
        }
        Ok(())
    }

    /// Processes the inbox: key shares, then messages.
    fn receive(&mut self, relay: &mut Relay) -> Vec<Result<(String, String), Error>> {
        let mut results = Vec::new();
        let mut messages = Vec::new();
        let mut shares = Vec::new();
        for e in relay.take(&self.name) {
            if e.kind == "welcome" {
                // Joining verifies the whole log from its genesis.
                match RoomId::new(e.room.as_bytes())
                    .and_then(|id| Room::join(&self.identity, self.id(), &id, &e.bytes))
                {
                    Ok((room, out)) => {
                        println!(
                            "  {:>5} joins {} (created by {})",
                            self.name, e.room, e.from
                        );
                        self.rooms.insert(e.room.clone(), room);
                        shares.push((e.room.clone(), out));
                    }
                    Err(err) => {
                        println!("  {:>5} refuses a welcome to {}: {err}", self.name, e.room);
                        results.push(Err(err));
                    }
                }
                continue;
            }
            let Some(room) = self.rooms.get_mut(&e.room) else {
                results.push(Err(Error::NotAMember));
                continue;
            };
            match e.kind {
                "key share" => {
                    if let Err(err) = room.receive_share(&self.identity, &e.bytes) {
                        println!(
                            "  {:>5} refuses a key share from {}: {err}",
                            self.name, e.from
                        );
                        results.push(Err(err));
                    }
                }
                "update" => match room.apply_update(&self.identity, &e.bytes) {
                    Ok(applied) => {
                        println!(
                            "  {:>5} applies {}'s signed update to {}: {} change(s)",
                            self.name,
                            e.from,
                            e.room,
                            applied.events.len()
                        );
                        shares.push((e.room.clone(), applied.shares));
                    }
                    Err(err) => {
                        println!(
                            "  {:>5} refuses an update from {}: {err}",
                            self.name, e.from
                        );
                        results.push(Err(err));
                    }
                },
                _ => messages.push(e),
            }
        }
        for (room, out) in shares {
            self.post_shares(relay, &room, out);
        }
        for e in messages {
            let Some(room) = self.rooms.get_mut(&e.room) else {
                continue;
            };
            match room.decrypt(&e.bytes) {
                Ok(got) => {
                    let text = String::from_utf8_lossy(got.plaintext()).into_owned();
                    let sender = String::from_utf8_lossy(got.sender.as_bytes()).into_owned();
                    println!("  {:>5} <- {}: {sender} says {text:?}", self.name, e.room);
                    results.push(Ok((sender, text)));
                }
                Err(err) => {
                    println!(
                        "  {:>5} cannot read a message in {}: {err}",
                        self.name, e.room
                    );
                    results.push(Err(err));
                }
            }
        }
        results
    }
}

fn member(name: &str) -> MemberId {
    // Names here are short ASCII, always valid member ids.
    MemberId::new(name.as_bytes()).unwrap_or_else(|_| unreachable!())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut relay = Relay::default();
    let (mut alice, mut bob, mut carol) =
        (Phone::new("alice"), Phone::new("bob"), Phone::new("carol"));

    println!("1. A group secret chat: alice creates it with bob and carol");
    let members = [alice.entry(), bob.entry(), carol.entry()];
    alice.create(&mut relay, "friends", &members)?;
    bob.receive(&mut relay);
    carol.receive(&mut relay);
    alice.receive(&mut relay);
    bob.receive(&mut relay);
    carol.receive(&mut relay);
    alice.say(
        &mut relay,
        "friends",
        "Dinner on Friday?",
        &["bob", "carol"],
    )?;
    for p in [&mut bob, &mut carol] {
        let got = p.receive(&mut relay);
        let read = got
            .iter()
            .any(|r| matches!(r, Ok((s, t)) if s == "alice" && t == "Dinner on Friday?"));
        check(read, &format!("{} reads alice", p.name))?;
    }
    carol.say(&mut relay, "friends", "Yes! 8pm?", &["alice", "bob"])?;
    alice.receive(&mut relay);
    bob.receive(&mut relay);

    println!("\n2. A 1:1 secret chat: alice and bob");
    let pair = [alice.entry(), bob.entry()];
    alice.create(&mut relay, "alice+bob", &pair)?;
    bob.receive(&mut relay);
    alice.receive(&mut relay);
    bob.say(
        &mut relay,
        "alice+bob",
        "The surprise is a cake.",
        &["alice"],
    )?;
    let got = alice.receive(&mut relay);
    check(
        got.iter()
            .any(|r| matches!(r, Ok((_, t)) if t == "The surprise is a cake.")),
        "alice reads bob",
    )?;
    show_public_key_image(&alice, &bob)?;

    println!("\n3. Alice (the creator: an admin) removes carol by a signed update");
    let room = alice.rooms.get_mut("friends").ok_or("no room")?;
    let change = room.remove_member(&alice.identity, &member("carol"))?;
    alice.post_update(&mut relay, "friends", &change.update, &["bob", "carol"]);
    alice.post_shares(&mut relay, "friends", change.shares);
    bob.receive(&mut relay); // applies the removal, rotates, shares with alice
    alice.receive(&mut relay);
    carol.receive(&mut relay);
    check(
        carol.rooms.get("friends").is_some_and(|r| !r.is_member()),
        "carol's own device applied her removal",
    )?;
    alice.say(
        &mut relay,
        "friends",
        "Carol's present: the red bike.",
        &["bob", "carol"],
    )?;
    check(
        bob.receive(&mut relay).iter().any(|r| r.is_ok()),
        "bob reads the new epoch",
    )?;
    let carol_sees = carol.receive(&mut relay);
    check(
        !carol_sees.is_empty() && carol_sees.iter().all(|r| r.is_err()),
        "carol cannot read what follows her removal",
    )?;

    println!("\n4. Bob reinstalls the app: a new device identity");
    let old_bob_public = bob.identity.public().clone();
    bob.identity = IdentityKeyPair::generate();
    bob.rooms.clear();
    let room = alice.rooms.get("alice+bob").ok_or("no room")?;
    check(
        matches!(
            room.check_member(&member("bob"), bob.identity.public()),
            Err(Error::IdentityChanged)
        ),
        "alice's room refuses bob's new key: IdentityChanged",
    )?;
    check(
        room.pinned_identity(&member("bob")) == Some(&old_bob_public),
        "the old room still pins bob's old key",
    )?;
    println!("  alice's app starts a new secret chat with bob (a fresh random room id)");
    let new_pair = [alice.entry(), bob.entry()];
    alice.create(&mut relay, "alice+bob#2", &new_pair)?;
    bob.receive(&mut relay);
    alice.receive(&mut relay);
    alice.say(&mut relay, "alice+bob#2", "Welcome back, Bob.", &["bob"])?;
    check(
        bob.receive(&mut relay).iter().any(|r| r.is_ok()),
        "the new room works",
    )?;
    show_public_key_image(&alice, &bob)?;

    println!("\n5. What the relay saw ({} envelopes)", relay.log.len());
    for e in relay.log.iter().take(6) {
        let head = &e.bytes[..e.bytes.len().min(12)];
        println!(
            "  {:<12} {:>5} -> {:<5} {:<9} {:>4} bytes: {}..",
            e.room,
            e.from,
            e.to,
            e.kind,
            e.bytes.len(),
            hex(head)
        );
    }
    println!("  ... ({} more)", relay.log.len().saturating_sub(6));
    let secrets = ["Dinner", "8pm", "cake", "red bike", "Welcome back"];
    let leaked = relay.log.iter().any(|e| {
        secrets
            .iter()
            .any(|s| e.bytes.windows(s.len()).any(|w| w == s.as_bytes()))
    });
    check(
        !leaked,
        "no plaintext in anything the relay handled: only ciphertext",
    )?;
    Ok(())
}

/// Prints the 1:1 public key image as both phones compute it, and checks
/// that they match (what the two people do by looking at their screens).
fn show_public_key_image(alice: &Phone, bob: &Phone) -> Result<(), Box<dyn std::error::Error>> {
    let room = alice
        .rooms
        .keys()
        .rev()
        .find(|r| r.starts_with("alice+bob"))
        .ok_or("no room")?;
    let on_alice = alice
        .rooms
        .get(room)
        .ok_or("no room")?
        .verification(&member("bob"))?;
    let on_bob = bob
        .rooms
        .get(room)
        .ok_or("no room")?
        .verification(&member("alice"))?;
    // Truecolour unless the terminal says it cannot (NO_COLOR or TERM=dumb).
    let plain =
        std::env::var_os("NO_COLOR").is_some() || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let mode = if plain {
        TerminalMode::Plain
    } else {
        TerminalMode::TrueColor
    };
    let left: Vec<String> = on_alice
        .image()
        .render_terminal(mode)
        .lines()
        .map(String::from)
        .collect();
    let right: Vec<String> = on_bob
        .image()
        .render_terminal(mode)
        .lines()
        .map(String::from)
        .collect();
    println!("  public key image of {room}:   on alice's phone  |  on bob's phone");
    for (l, r) in left.iter().zip(&right) {
        println!("    {l}    {r}");
    }
    println!("  numeric code (alice): {}", on_alice.numeric_code());
    println!("  numeric code (bob):   {}", on_bob.numeric_code());
    check(
        on_alice.image() == on_bob.image(),
        "both phones show the same picture",
    )?;
    check(
        on_alice
            .verify_scanned(&on_bob.payload().to_bytes())
            .is_ok(),
        "alice scans bob's code",
    )?;
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("\nAll checks passed.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
