//! Alice sends Bob a photo in a secret chat.
//!
//! The example draws a real PNG image and writes it to a file, encrypts the
//! file as a stream into the media server (which stores only ciphertext),
//! sends the attachment pointer (key, size, content type, blob locator,
//! thumbnail) inside a room message through the relay, and Bob fetches the
//! blob, decrypts it as a stream into a file, and checks it is byte for byte
//! the photo Alice sent. Exits non-zero if anything goes wrong.
//!
//! `cargo run --example attachment`

use secret_chat::{
    AttachmentPointer, Content, DeviceBundle, IdentityKeyPair, LinkPreview, MemberId, Room, RoomId,
    attachment,
};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error>;

/// A PNG of `side` x `side` pixels: a colour gradient with a circle and
/// sensor-like noise (so it compresses like a photo, to several chunks).
fn draw_png(side: u32) -> Result<Vec<u8>, BoxError> {
    let mut pixels = Vec::with_capacity((side * side * 3) as usize);
    let c = side as i64 / 2;
    let mut noise = 0x2545_f491_u32;
    for y in 0..side {
        for x in 0..side {
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let grain = (noise >> 28) as u8;
            let (dx, dy) = (x as i64 - c, y as i64 - c);
            let inside = dx * dx + dy * dy < (c * c) / 2;
            let r = (x * 255 / side) as u8 ^ grain;
            let g = (y * 255 / side) as u8;
            let b = if inside {
                230 - grain
            } else {
                ((x ^ y) & 0xff) as u8
            };
            pixels.extend_from_slice(&[r, g, b]);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&pixels)?;
    Ok(out)
}

/// The blob store: it sees only what it stores.
#[derive(Default)]
struct MediaServer {
    blobs: BTreeMap<String, Vec<u8>>,
}

/// The room part, kept apart: two phones with a 1:1 room, and the relay
/// queue that carries key shares and messages between them.
struct Chat {
    alice: (IdentityKeyPair, Room),
    bob: (IdentityKeyPair, Room),
}

impl Chat {
    fn new() -> Result<Self, BoxError> {
        let (a, b) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
        let members: [(MemberId, DeviceBundle); 2] = [
            (MemberId::new(b"alice")?, a.bundle()),
            (MemberId::new(b"bob")?, b.bundle()),
        ];
        let room = RoomId::new(b"alice+bob")?;
        // Alice creates the room; Bob joins from her welcome.
        let (mut ra, sa) = Room::create(&a, room.clone(), members[0].0.clone(), &members)?;
        let (mut rb, sb) = Room::join(&b, members[1].0.clone(), &room, &ra.welcome(&a)?)?;
        // The relay carries each side's key share to the other.
        for s in sa {
            rb.receive_share(&b, &s.bytes)?;
        }
        for s in sb {
            ra.receive_share(&a, &s.bytes)?;
        }
        Ok(Self {
            alice: (a, ra),
            bob: (b, rb),
        })
    }

    /// Alice encrypts `plaintext` as a room message; the relay hands it to
    /// Bob, who decrypts it.
    fn alice_to_bob(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, BoxError> {
        let out = self.alice.1.encrypt(&self.alice.0, plaintext)?;
        let relayed = out.message; // all the relay ever sees of it
        println!("  relay forwards a {}-byte room message", relayed.len());
        Ok(self.bob.1.decrypt(&relayed)?.plaintext().to_vec())
    }
}

fn run(dir: &Path) -> Result<(), BoxError> {
    let photo_path = dir.join("holiday.png");
    let photo = draw_png(512)?;
    std::fs::write(&photo_path, &photo)?;
    let thumbnail = draw_png(16)?;
    println!(
        "alice's photo: {} ({} bytes)",
        photo_path.display(),
        photo.len()
    );

    // 1. Alice encrypts the file as a stream straight into the upload.
    let mut media = MediaServer::default();
    let mut upload = Vec::new();
    let pointer = attachment::encrypt(
        BufReader::new(File::open(&photo_path)?),
        &mut upload,
        "image/png",
    )?
    .with_locator(b"media/0001")?
    .with_thumbnail(&thumbnail)?;
    println!(
        "  media server stores {} bytes (padded; {} chunks), no PNG signature in sight: {}",
        upload.len(),
        pointer.chunk_count(),
        !upload.windows(8).any(|w| w == &photo[..8])
    );
    media.blobs.insert("media/0001".into(), upload);

    // 2. The pointer travels inside an end-to-end encrypted room message.
    let text = "our spot, see https://maps.example/p/42";
    let content = Content::new(text)?
        .with_attachment(pointer)?
        .with_preview(LinkPreview::new(
            "https://maps.example/p/42",
            "The cove",
            "A beach map",
        )?)?;
    let mut chat = Chat::new()?;
    let received = Content::from_bytes(&chat.alice_to_bob(&content.to_bytes())?)?;
    println!("  bob reads: {:?}", received.text());
    if let Some(p) = received.preview() {
        println!(
            "  with a preview made by alice: {:?} ({})",
            p.title(),
            p.url()
        );
    }

    // 3. Bob fetches the blob and decrypts it as a stream into a file.
    let got: &AttachmentPointer = received.attachments().first().ok_or("no attachment")?;
    let locator = String::from_utf8(got.locator().ok_or("no locator")?.to_vec())?;
    let blob = media.blobs.get(&locator).ok_or("blob not found")?;
    let out_path = dir.join("received.png");
    let written = {
        let mut out = BufWriter::new(File::create(&out_path)?);
        let n = attachment::decrypt(got, &blob[..], &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        n
    };
    println!(
        "  bob wrote {} ({written} bytes, {}, thumbnail {} bytes)",
        out_path.display(),
        got.content_type(),
        got.thumbnail().map_or(0, <[u8]>::len)
    );
    if std::fs::read(&out_path)? != photo {
        return Err("the received file differs from the photo".into());
    }
    println!("  ok: byte-identical");

    // 4. A media server that serves another blob, or flips one bit, is caught.
    let mut tampered = blob.clone();
    if let Some(b) = tampered.get_mut(100) {
        *b ^= 1;
    }
    let err = attachment::decrypt(got, &tampered[..], std::io::sink())
        .err()
        .ok_or("a tampered blob was accepted")?;
    println!("  ok: a flipped bit is refused: {err}");
    Ok(())
}

fn main() -> ExitCode {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("secret-chat-attachment-{}", std::process::id()));
    let result = std::fs::create_dir_all(&dir)
        .map_err(BoxError::from)
        .and_then(|()| run(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
