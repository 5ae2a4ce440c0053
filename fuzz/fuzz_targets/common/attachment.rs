//! Checks of the attachment targets (`attachment_pointer`, `content`,
//! `attachment_chunk`): the attachment pointer, the message-content envelope
//! and the chunk decoder (header, single chunks, whole blobs).

use std::sync::OnceLock;

use secret_chat::attachment::{self, AttachmentKey, ChunkOpener, HEADER_LEN, encrypt_with_rng};
use secret_chat::testing::VectorRng;
use secret_chat::{AttachmentPointer, Content, LinkPreview};

/// A genuine three-chunk attachment (1 KiB chunks, 2,500 bytes padded to
/// 2,560), built once per process.
pub(crate) struct Genuine {
    pub(crate) plain: Vec<u8>,
    pub(crate) pointer: AttachmentPointer,
    pub(crate) blob: Vec<u8>,
}

pub(crate) fn genuine() -> &'static Genuine {
    static G: OnceLock<Genuine> = OnceLock::new();
    G.get_or_init(|| {
        let plain: Vec<u8> = (0..2500u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut blob = Vec::new();
        let pointer = encrypt_with_rng(
            &plain[..],
            &mut blob,
            "image/png",
            1024,
            &mut VectorRng::new(b"fuzz-attachment"),
        )
        .unwrap();
        Genuine {
            plain,
            pointer,
            blob,
        }
    })
}

/// `attachment_pointer`: total; whatever parses re-encodes to the same bytes.
pub(crate) fn attachment_pointer(data: &[u8]) {
    if let Ok(p) = AttachmentPointer::from_bytes(data) {
        assert_eq!(&*p.to_bytes(), data, "pointer encoding not canonical");
        assert!(p.chunk_count() >= 1);
    }
}

/// `content`: total, canonical, and an accepted preview's URL is in the text.
pub(crate) fn content(data: &[u8]) {
    if let Ok(c) = Content::from_bytes(data) {
        assert_eq!(&*c.to_bytes(), data, "content encoding not canonical");
        if let Some(p) = c.preview() {
            assert!(c.text().contains(p.url()), "preview URL not in text");
        }
    }
}

/// `attachment_chunk`: the first byte picks what the rest is: 0 a whole blob
/// for the genuine pointer, 1 a `u32` chunk index then one chunk, 2 a
/// header. Only the genuine bytes are ever accepted.
pub(crate) fn attachment_chunk(data: &[u8]) {
    let g = genuine();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let mut out = Vec::new();
            match attachment::decrypt(&g.pointer, rest, &mut out) {
                Ok(n) => {
                    assert_eq!(rest, &g.blob[..], "forged blob accepted");
                    assert_eq!(n, g.plain.len() as u64);
                    assert_eq!(out, g.plain);
                }
                Err(_) => assert_ne!(rest, &g.blob[..], "genuine blob refused"),
            }
        }
        1 => {
            let opener = ChunkOpener::new(&g.pointer, &g.blob[..HEADER_LEN]).unwrap();
            let Some((idx, chunk)) = rest.split_first_chunk::<4>() else {
                return;
            };
            let index = u32::from_be_bytes(*idx);
            let genuine = opener
                .ciphertext_range(index)
                .map(|r| &g.blob[r.start as usize..r.end as usize]);
            match opener.decrypt_chunk(index, chunk) {
                Ok(plain) => {
                    assert_eq!(Some(chunk), genuine, "forged chunk accepted");
                    let r = opener.plaintext_range(index).unwrap();
                    assert_eq!(plain, &g.plain[r.start as usize..r.end as usize]);
                }
                Err(_) => assert_ne!(Some(chunk), genuine, "genuine chunk refused"),
            }
        }
        _ => {
            let ok = ChunkOpener::new(&g.pointer, rest).is_ok();
            assert_eq!(ok, rest == &g.blob[..HEADER_LEN], "header check wrong");
        }
    }
}

/// Seeds for the three targets.
pub(crate) fn seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let g = genuine();
    out.push((
        "attachment_pointer",
        "genuine".into(),
        g.pointer.to_bytes().to_vec(),
    ));
    let with_extras = AttachmentPointer::new(
        AttachmentKey::from_bytes([5; 32]),
        70_000,
        65_536,
        "video/mp4",
    )
    .unwrap()
    .with_locator(b"https://media.example/blob/1")
    .unwrap()
    .with_thumbnail(&[0xff, 0xd8, 0xff, 0xe0])
    .unwrap();
    out.push((
        "attachment_pointer",
        "extras".into(),
        with_extras.to_bytes().to_vec(),
    ));
    let mut whole = vec![0u8];
    whole.extend_from_slice(&g.blob);
    out.push(("attachment_chunk", "blob".into(), whole));
    let opener = ChunkOpener::new(&g.pointer, &g.blob[..HEADER_LEN]).unwrap();
    for i in 0..opener.chunk_count() {
        let r = opener.ciphertext_range(i).unwrap();
        let mut c = vec![1u8];
        c.extend_from_slice(&i.to_be_bytes());
        c.extend_from_slice(&g.blob[r.start as usize..r.end as usize]);
        out.push(("attachment_chunk", format!("chunk-{i}"), c));
    }
    let mut h = vec![2u8];
    h.extend_from_slice(&g.blob[..HEADER_LEN]);
    out.push(("attachment_chunk", "header".into(), h));
    let text = Content::new("hello").unwrap();
    out.push(("content", "text".into(), text.to_bytes().to_vec()));
    let album = Content::new("see https://example.org/a")
        .unwrap()
        .with_attachment(AttachmentPointer::from_bytes(&g.pointer.to_bytes()).unwrap())
        .unwrap()
        .with_attachment(AttachmentPointer::from_bytes(&with_extras.to_bytes()).unwrap())
        .unwrap()
        .with_preview(
            LinkPreview::new("https://example.org/a", "Example", "A page")
                .unwrap()
                .with_image(AttachmentPointer::from_bytes(&g.pointer.to_bytes()).unwrap()),
        )
        .unwrap();
    out.push(("content", "album-preview".into(), album.to_bytes().to_vec()));
}
