//! Alice and Bob chat over real TCP on loopback through a relay thread.
//!
//! `cargo run --example relay` runs an honest relay: it forwards key shares
//! and ciphertext, and both phones show the same public key image.
//!
//! `cargo run --example relay -- --attack` runs the attack published against
//! the product this crate is modelled on: the relay's key directory hands
//! each side the relay's own identity instead of the partner's, and the relay
//! re-encrypts every message in the middle. The chat "works" and the relay
//! reads it, but the two public key images differ, so two people who compare
//! their screens catch it. The example exits non-zero if that check fails.

use secret_chat::{
    DeviceBundle, Error, IdentityKeyPair, MemberId, PairVerification, Room, RoomId, TerminalMode,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ROOM: &[u8] = b"alice+bob";
const REGISTER: u8 = 1;
const FETCH: u8 = 2;
const IDENTITY: u8 = 3;
const SHARE: u8 = 4;
const MESSAGE: u8 = 5;
const WELCOME: u8 = 6;
/// Largest frame the example accepts (a key share or a short message).
const MAX_FRAME: usize = 64 * 1024;

/// One frame on the wire: `u32 length || kind || from || to || payload`,
/// the three byte strings each with a `u16` length.
struct Frame {
    kind: u8,
    from: String,
    to: String,
    payload: Vec<u8>,
}

fn write_frame(stream: &mut TcpStream, f: &Frame) -> Result<(), BoxError> {
    let mut body = vec![f.kind];
    for part in [f.from.as_bytes(), f.to.as_bytes(), &f.payload] {
        body.extend_from_slice(&u16::try_from(part.len())?.to_be_bytes());
        body.extend_from_slice(part);
    }
    stream.write_all(&u32::try_from(body.len())?.to_be_bytes())?;
    stream.write_all(&body)?;
    Ok(())
}

fn read_frame(stream: &mut TcpStream) -> Result<Option<Frame>, BoxError> {
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return Ok(None); // connection closed
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err("bad frame length".into());
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let kind = body[0];
    let mut rest = &body[1..];
    let mut parts = Vec::new();
    for _ in 0..3 {
        if rest.len() < 2 {
            return Err("truncated frame".into());
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let part = rest.get(2..2 + n).ok_or("truncated frame")?.to_vec();
        rest = &rest[2 + n..];
        parts.push(part);
    }
    let payload = parts.pop().unwrap_or_default();
    let to = String::from_utf8(parts.pop().unwrap_or_default())?;
    let from = String::from_utf8(parts.pop().unwrap_or_default())?;
    Ok(Some(Frame {
        kind,
        from,
        to,
        payload,
    }))
}

fn member(name: &str) -> Result<MemberId, Error> {
    MemberId::new(name.as_bytes())
}

/// The relay: a key directory and a forwarder. In attack mode it is also a
/// man in the middle, holding an identity of its own.
fn relay(listener: TcpListener, attack: bool) -> Result<(), BoxError> {
    let (tx, rx) = mpsc::channel::<(String, Frame)>();
    let mut writers: BTreeMap<String, TcpStream> = BTreeMap::new();
    let mut directory: BTreeMap<String, DeviceBundle> = BTreeMap::new();
    let mallory = IdentityKeyPair::generate();
    // The relay's rooms in attack mode: with alice (posing as bob) and with
    // bob (posing as alice).
    let mut mitm: BTreeMap<String, Room> = BTreeMap::new();
    let mut seen = 0usize;
    // Key requests for users not registered yet, answered on registration.
    let mut waiting_fetch: Vec<(String, String)> = Vec::new();
    for _ in 0..2 {
        let (stream, _) = listener.accept()?;
        let mut reader = stream.try_clone()?;
        let tx = tx.clone();
        let first = read_frame(&mut reader)?.ok_or("client left")?;
        let name = first.from.clone();
        writers.insert(name.clone(), stream);
        let _ = tx.send((name.clone(), first));
        thread::spawn(move || {
            while let Ok(Some(f)) = read_frame(&mut reader) {
                if tx.send((name.clone(), f)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    for (sender, f) in rx {
        seen += 1;
        match f.kind {
            REGISTER => {
                directory.insert(sender.clone(), DeviceBundle::from_bytes(&f.payload)?);
                println!("  relay: {sender} registered a public key");
            }
            WELCOME if attack => {
                // Alice's room names the relay's identity as "bob": the relay
                // joins it as bob, and makes its own room with the real bob in
                // which it poses as alice.
                let (room_a, to_alice) =
                    Room::join(&mallory, member("bob")?, &RoomId::new(ROOM)?, &f.payload)?;
                mitm.insert("alice".to_string(), room_a);
                let real_bob = directory.get("bob").ok_or("unregistered")?.clone();
                let members = [
                    (member("alice")?, mallory.bundle()),
                    (member("bob")?, real_bob),
                ];
                let (room_b, to_bob) =
                    Room::create(&mallory, RoomId::new(ROOM)?, member("alice")?, &members)?;
                let welcome = room_b.welcome(&mallory)?;
                mitm.insert("bob".to_string(), room_b);
                let frames = [
                    ("alice", "bob", WELCOME, vec![welcome]),
                    (
                        "bob",
                        "alice",
                        SHARE,
                        to_alice.into_iter().map(|s| s.bytes).collect(),
                    ),
                    (
                        "alice",
                        "bob",
                        SHARE,
                        to_bob.into_iter().map(|s| s.bytes).collect(),
                    ),
                ];
                for (from, to, kind, payloads) in frames {
                    let w = writers.get_mut(to).ok_or("no such client")?;
                    for payload in payloads {
                        write_frame(
                            w,
                            &Frame {
                                kind,
                                from: from.into(),
                                to: to.into(),
                                payload,
                            },
                        )?;
                    }
                }
            }
            FETCH => waiting_fetch.push((sender.clone(), f.to.clone())),
            SHARE | MESSAGE if attack => {
                // The man in the middle: open with the room the victim built
                // with "its partner" (the relay), re-encrypt for the other.
                let room = mitm.get_mut(&sender).ok_or("no fake room")?;
                if f.kind == SHARE {
                    room.receive_share(&mallory, &f.payload)?;
                    continue;
                }
                let got = room.decrypt(&f.payload)?;
                println!(
                    "  relay READS {sender}'s message: {:?}",
                    String::from_utf8_lossy(got.plaintext())
                );
                let other = mitm.get_mut(&f.to).ok_or("no fake room")?;
                let out = other.encrypt(&mallory, got.plaintext())?;
                let w = writers.get_mut(&f.to).ok_or("no such client")?;
                write_frame(
                    w,
                    &Frame {
                        kind: MESSAGE,
                        from: sender.clone(),
                        to: f.to.clone(),
                        payload: out.message,
                    },
                )?;
            }
            SHARE | MESSAGE | WELCOME => {
                let what = match f.kind {
                    SHARE => "key share",
                    WELCOME => "welcome",
                    _ => "message",
                };
                println!(
                    "  relay: forwards a {what} {} -> {}: {} opaque bytes",
                    sender,
                    f.to,
                    f.payload.len()
                );
                let w = writers.get_mut(&f.to).ok_or("no such client")?;
                write_frame(
                    w,
                    &Frame {
                        kind: f.kind,
                        from: sender.clone(),
                        to: f.to.clone(),
                        payload: f.payload,
                    },
                )?;
            }
            _ => {}
        }
        // Answer every key request whose user is registered.
        let mut still_waiting = Vec::new();
        for (asker, wanted) in waiting_fetch.drain(..) {
            let Some(key) = directory.get(&wanted) else {
                still_waiting.push((asker, wanted));
                continue;
            };
            let answer = if attack {
                println!("  relay: {asker} asks for {wanted}'s key; the relay hands over its own");
                mallory.bundle()
            } else {
                key.clone()
            };
            let w = writers.get_mut(&asker).ok_or("no such client")?;
            let payload = answer.to_bytes();
            write_frame(
                w,
                &Frame {
                    kind: IDENTITY,
                    from: wanted,
                    to: asker.clone(),
                    payload,
                },
            )?;
        }
        waiting_fetch = still_waiting;
    }
    println!("  relay: handled {seen} frames");
    Ok(())
}

/// One phone: registers, fetches the partner's key, creates the room,
/// exchanges messages, and returns what its screen shows for verification.
fn phone(
    name: &'static str,
    partner: &'static str,
    port: u16,
    registered: Arc<Barrier>,
    lines: &'static [&'static str],
    expect: usize,
) -> Result<PairVerification, BoxError> {
    let identity = IdentityKeyPair::generate();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write_frame(
        &mut stream,
        &Frame {
            kind: REGISTER,
            from: name.into(),
            to: String::new(),
            payload: identity.bundle().to_bytes(),
        },
    )?;
    registered.wait();
    let mut pending = Vec::new();
    let (mut room, shares) = if name == "alice" {
        // Alice creates the room with the bundle the relay's directory gives
        // her for bob, and sends bob the welcome.
        write_frame(
            &mut stream,
            &Frame {
                kind: FETCH,
                from: name.into(),
                to: partner.into(),
                payload: Vec::new(),
            },
        )?;
        let partner_key = loop {
            let f = read_frame(&mut stream)?.ok_or("relay closed")?;
            if f.kind == IDENTITY {
                break DeviceBundle::from_bytes(&f.payload)?;
            }
            pending.push(f);
        };
        let members = [
            (member(name)?, identity.bundle()),
            (member(partner)?, partner_key),
        ];
        let (room, shares) = Room::create(&identity, RoomId::new(ROOM)?, member(name)?, &members)?;
        write_frame(
            &mut stream,
            &Frame {
                kind: WELCOME,
                from: name.into(),
                to: partner.into(),
                payload: room.welcome(&identity)?,
            },
        )?;
        (room, shares)
    } else {
        // Bob joins from the welcome, verifying its log from the genesis.
        let welcome = loop {
            let f = read_frame(&mut stream)?.ok_or("relay closed")?;
            if f.kind == WELCOME {
                break f.payload;
            }
            pending.push(f);
        };
        Room::join(&identity, member(name)?, &RoomId::new(ROOM)?, &welcome)?
    };
    for s in shares {
        write_frame(
            &mut stream,
            &Frame {
                kind: SHARE,
                from: name.into(),
                to: partner.into(),
                payload: s.bytes,
            },
        )?;
    }
    let mut sent = 0;
    let mut received = 0;
    let mut waiting: Vec<Vec<u8>> = Vec::new();
    while received < expect || sent < lines.len() {
        if sent < lines.len() && (name == "alice" || received > sent) {
            let out = room.encrypt(&identity, lines[sent].as_bytes())?;
            write_frame(
                &mut stream,
                &Frame {
                    kind: MESSAGE,
                    from: name.into(),
                    to: partner.into(),
                    payload: out.message,
                },
            )?;
            println!("  {name:>5} sends {:?}", lines[sent]);
            sent += 1;
            continue;
        }
        let f = match pending.pop() {
            Some(f) => f,
            None => read_frame(&mut stream)?.ok_or("relay closed")?,
        };
        match f.kind {
            SHARE => {
                room.receive_share(&identity, &f.payload)?;
                // Messages that overtook the share decrypt now.
                for m in std::mem::take(&mut waiting) {
                    let got = room.decrypt(&m)?;
                    println!(
                        "  {name:>5} reads {:?}",
                        String::from_utf8_lossy(got.plaintext())
                    );
                    received += 1;
                }
            }
            MESSAGE => match room.decrypt(&f.payload) {
                Ok(got) => {
                    println!(
                        "  {name:>5} reads {:?}",
                        String::from_utf8_lossy(got.plaintext())
                    );
                    received += 1;
                }
                Err(Error::UnknownSenderKey) => waiting.push(f.payload),
                Err(e) => return Err(e.into()),
            },
            _ => {}
        }
    }
    Ok(room.verification(&member(partner)?)?)
}

fn main() -> std::process::ExitCode {
    let attack = std::env::args().any(|a| a == "--attack");
    match run(attack) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(attack: bool) -> Result<(), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    println!(
        "relay on 127.0.0.1:{port}{}",
        if attack {
            " (attacking: key substitution)"
        } else {
            ""
        }
    );
    let relay = thread::spawn(move || relay(listener, attack));
    let barrier = Arc::new(Barrier::new(2));
    let b2 = Arc::clone(&barrier);
    let alice = thread::spawn(move || {
        phone(
            "alice",
            "bob",
            port,
            barrier,
            &["Hi Bob, it's Alice.", "Meet at noon?"],
            2,
        )
    });
    let bob =
        thread::spawn(move || phone("bob", "alice", port, b2, &["Hi Alice!", "Noon works."], 2));
    let on_alice = alice.join().map_err(|_| "alice panicked")??;
    let on_bob = bob.join().map_err(|_| "bob panicked")??;
    relay.join().map_err(|_| "relay panicked")??;

    println!("\npublic key image   on alice's phone  |  on bob's phone");
    let plain =
        std::env::var_os("NO_COLOR").is_some() || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let mode = if plain {
        TerminalMode::Plain
    } else {
        TerminalMode::TrueColor
    };
    let left = on_alice.image().render_terminal(mode);
    let right = on_bob.image().render_terminal(mode);
    for (l, r) in left.lines().zip(right.lines()) {
        println!("    {l}    {r}");
    }
    println!("numeric code on alice's phone: {}", on_alice.numeric_code());
    println!("numeric code on bob's phone:   {}", on_bob.numeric_code());
    let same = on_alice.image() == on_bob.image()
        && on_alice
            .verify_scanned(&on_bob.payload().to_bytes())
            .is_ok();
    match (attack, same) {
        (false, true) => println!("\nThe pictures match: no one is in the middle."),
        (true, false) => println!(
            "\nThe pictures DIFFER: the relay swapped keys. Alice and Bob catch the attack as \
             soon as they compare screens (or scan each other's code)."
        ),
        (false, false) => return Err("honest relay, yet the pictures differ".into()),
        (true, true) => return Err("attack not visible in the pictures".into()),
    }
    Ok(())
}
