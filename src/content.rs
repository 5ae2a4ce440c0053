//! The message-content envelope: text, attachments and a sender-side link
//! preview, encoded into the plaintext of one room message.
//!
//! The sender's app builds the link preview itself (it fetched the page when
//! the user typed the link, or not at all); the library fetches nothing, and
//! a receiver never contacts the linked site. A receiver accepts a preview
//! only if its URL appears in the message text, so a sender cannot dress a
//! message up with a preview of a link it did not send.
//!
//! # Layout (version 1)
//!
//! ```text
//! 0x01                                  version
//! u32 text_len || text                  UTF-8, at most MAX_TEXT_LEN bytes
//! u8  n                                 attachments (an album), at most MAX_ALBUM_LEN
//! n x ( u16 len || AttachmentPointer )  each pointer in its own encoding
//! u8  has_preview                       0 or 1; if 1:
//!     u16 url_len || url                UTF-8, http:// or https://, no whitespace or
//!                                       control character, appears in text, <= MAX_URL_LEN
//!     u16 title_len || title            UTF-8, <= MAX_PREVIEW_TITLE_LEN
//!     u16 desc_len || description       UTF-8, <= MAX_PREVIEW_DESCRIPTION_LEN
//!     u8  has_image                     0 or 1; if 1: u16 len || AttachmentPointer
//! ```
//!
//! No trailing bytes; a flag byte other than 0 or 1 is
//! [`DecodeError::InvalidValue`]. The envelope carries file keys: its
//! encoding is returned as zeroizing bytes and must only travel encrypted.

use crate::attachment::AttachmentPointer;
use crate::error::{AttachmentError, DecodeError};
use crate::labels;
use crate::limits::{
    MAX_ALBUM_LEN, MAX_PREVIEW_DESCRIPTION_LEN, MAX_PREVIEW_TITLE_LEN, MAX_TEXT_LEN, MAX_URL_LEN,
};
use crate::wire::{Reader, Writer};
use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

/// A link preview made by the sender: URL, title, description and an
/// optional image (an encrypted attachment like any other).
///
/// ```
/// use secret_chat::LinkPreview;
/// let p = LinkPreview::new("https://example.org/a", "Example", "An example page").unwrap();
/// assert_eq!(p.url(), "https://example.org/a");
/// assert!(LinkPreview::new("javascript:alert(1)", "", "").is_err());
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct LinkPreview {
    url: String,
    title: String,
    description: String,
    image: Option<AttachmentPointer>,
}

/// An `http://` or `https://` URL (scheme in any case) with something after
/// the scheme, within [`MAX_URL_LEN`], without whitespace or control characters.
fn url_ok(url: &str) -> bool {
    let has = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    };
    let scheme_len = if has("https://") {
        8
    } else if has("http://") {
        7
    } else {
        return false;
    };
    url.len() > scheme_len
        && url.len() <= MAX_URL_LEN
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl LinkPreview {
    /// A preview of `url` (an `http://` or `https://` URL without whitespace
    /// or control characters, at most [`MAX_URL_LEN`] bytes) with a title
    /// and a description (at most [`MAX_PREVIEW_TITLE_LEN`] and
    /// [`MAX_PREVIEW_DESCRIPTION_LEN`] bytes).
    ///
    /// # Errors
    /// [`AttachmentError::BadUrl`], [`AttachmentError::LimitExceeded`].
    ///
    /// ```
    /// use secret_chat::{AttachmentError, LinkPreview};
    /// let p = LinkPreview::new("https://example.org/post", "A post", "What it says")?;
    /// assert_eq!((p.title(), p.description()), ("A post", "What it says"));
    /// assert_eq!(LinkPreview::new("https://a b", "", ""), Err(AttachmentError::BadUrl));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn new(url: &str, title: &str, description: &str) -> Result<Self, AttachmentError> {
        if !url_ok(url) {
            return Err(AttachmentError::BadUrl);
        }
        if title.len() > MAX_PREVIEW_TITLE_LEN || description.len() > MAX_PREVIEW_DESCRIPTION_LEN {
            return Err(AttachmentError::LimitExceeded);
        }
        Ok(Self {
            url: url.into(),
            title: title.into(),
            description: description.into(),
            image: None,
        })
    }

    /// Adds the preview image, encrypted like any attachment.
    ///
    /// ```
    /// use secret_chat::{attachment, LinkPreview};
    /// let mut blob = Vec::new(); // upload it like any attachment
    /// let image = attachment::encrypt(&[0u8; 64][..], &mut blob, "image/webp")?;
    /// let p = LinkPreview::new("https://example.org", "Example", "")?.with_image(image);
    /// assert_eq!(p.image().map(|i| i.content_type()), Some("image/webp"));
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn with_image(mut self, image: AttachmentPointer) -> Self {
        self.image = Some(image);
        self
    }

    /// The previewed URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The page title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The page description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The preview image, if any.
    pub fn image(&self) -> Option<&AttachmentPointer> {
        self.image.as_ref()
    }
}

/// What one room message says: text, attachments (several make an album)
/// and an optional link preview. See the module docs for the layout.
///
/// ```
/// use secret_chat::{attachment, Content, LinkPreview};
/// let mut blob = Vec::new();
/// let photo = attachment::encrypt(&[0u8; 10][..], &mut blob, "image/jpeg").unwrap();
/// let content = Content::new("look https://example.org/x")
///     .unwrap()
///     .with_attachment(photo)
///     .unwrap()
///     .with_preview(LinkPreview::new("https://example.org/x", "X", "").unwrap())
///     .unwrap();
/// let plaintext = content.to_bytes(); // encrypt this with the room
/// let received = Content::from_bytes(&plaintext).unwrap();
/// assert_eq!(received, content);
/// assert_eq!(received.attachments().len(), 1);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Content {
    text: String,
    attachments: Vec<AttachmentPointer>,
    preview: Option<LinkPreview>,
}

impl Content {
    /// A message with `text` (at most [`MAX_TEXT_LEN`] bytes) and nothing else.
    ///
    /// ```
    /// use secret_chat::Content;
    /// let content = Content::new("see you at 8")?;
    /// assert_eq!(content.text(), "see you at 8");
    /// assert!(content.attachments().is_empty() && content.preview().is_none());
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn new(text: &str) -> Result<Self, AttachmentError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(AttachmentError::LimitExceeded);
        }
        Ok(Self {
            text: text.into(),
            attachments: Vec::new(),
            preview: None,
        })
    }

    /// Adds an attachment (at most [`MAX_ALBUM_LEN`] per message).
    ///
    /// ```
    /// use secret_chat::{attachment, Content};
    /// let mut album = Content::new("holiday")?;
    /// for photo in [&b"one"[..], b"two"] {
    ///     let mut blob = Vec::new(); // upload each blob
    ///     album = album.with_attachment(attachment::encrypt(photo, &mut blob, "image/jpeg")?)?;
    /// }
    /// assert_eq!(album.attachments().len(), 2);
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn with_attachment(mut self, pointer: AttachmentPointer) -> Result<Self, AttachmentError> {
        if self.attachments.len() >= MAX_ALBUM_LEN {
            return Err(AttachmentError::LimitExceeded);
        }
        self.attachments.push(pointer);
        Ok(self)
    }

    /// Sets the link preview; its URL must appear in the text
    /// ([`AttachmentError::PreviewUrlNotInText`] otherwise, the check every
    /// receiver makes too).
    ///
    /// ```
    /// use secret_chat::{AttachmentError, Content, LinkPreview};
    /// let preview = || LinkPreview::new("https://example.org/x", "X", "");
    /// let c = Content::new("read https://example.org/x")?.with_preview(preview()?)?;
    /// assert_eq!(c.preview().map(|p| p.url()), Some("https://example.org/x"));
    /// let other = Content::new("no link here")?.with_preview(preview()?);
    /// assert_eq!(other, Err(AttachmentError::PreviewUrlNotInText));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn with_preview(mut self, preview: LinkPreview) -> Result<Self, AttachmentError> {
        if !self.text.contains(preview.url.as_str()) {
            return Err(AttachmentError::PreviewUrlNotInText);
        }
        self.preview = Some(preview);
        Ok(self)
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The attachments, in the sender's order.
    pub fn attachments(&self) -> &[AttachmentPointer] {
        &self.attachments
    }

    /// The link preview, if any (its URL is in the text).
    pub fn preview(&self) -> Option<&LinkPreview> {
        self.preview.as_ref()
    }

    /// The encoding (see the module docs), to encrypt as one room message;
    /// zeroized when dropped (it holds file keys).
    ///
    /// ```
    /// use secret_chat::Content;
    /// let plaintext = Content::new("hi")?.to_bytes();
    /// // room.encrypt(&identity, &plaintext) sends it; the receiver parses it:
    /// assert_eq!(Content::from_bytes(&plaintext)?.text(), "hi");
    /// # Ok::<(), secret_chat::AttachmentError>(())
    /// ```
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::secret(64 + self.text.len());
        w.u8(labels::CONTENT_VERSION).vec32(self.text.as_bytes());
        w.u8(self.attachments.len() as u8);
        for a in &self.attachments {
            w.vec16(&a.to_bytes());
        }
        match &self.preview {
            None => {
                w.u8(0);
            }
            Some(p) => {
                w.u8(1)
                    .vec16(p.url.as_bytes())
                    .vec16(p.title.as_bytes())
                    .vec16(p.description.as_bytes());
                match &p.image {
                    None => w.u8(0),
                    Some(i) => w.u8(1).vec16(&i.to_bytes()),
                };
            }
        }
        w.into_zeroizing()
    }

    /// Parses a content envelope: total, strict, and the preview's URL must
    /// appear in the text.
    ///
    /// # Errors
    /// [`AttachmentError::Malformed`] for a bad encoding,
    /// [`AttachmentError::NotUtf8`], [`AttachmentError::BadUrl`],
    /// [`AttachmentError::PreviewUrlNotInText`].
    ///
    /// ```
    /// use secret_chat::{AttachmentError, Content};
    /// let mut bytes = Content::new("hi")?.to_bytes().to_vec();
    /// assert_eq!(Content::from_bytes(&bytes)?.text(), "hi");
    /// bytes.push(0);
    /// assert!(matches!(Content::from_bytes(&bytes), Err(AttachmentError::Malformed(_))));
    /// # Ok::<(), AttachmentError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut r = Reader::new(bytes);
        r.version(labels::CONTENT_VERSION)?;
        let text = utf8(r.vec32(MAX_TEXT_LEN)?)?;
        let n = usize::from(r.u8()?);
        if n > MAX_ALBUM_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let mut attachments = Vec::with_capacity(n);
        for _ in 0..n {
            attachments.push(pointer(&mut r)?);
        }
        let preview = if flag(&mut r)? {
            let url = utf8(r.vec16(MAX_URL_LEN)?)?;
            let title = utf8(r.vec16(MAX_PREVIEW_TITLE_LEN)?)?;
            let description = utf8(r.vec16(MAX_PREVIEW_DESCRIPTION_LEN)?)?;
            let image = if flag(&mut r)? {
                Some(pointer(&mut r)?)
            } else {
                None
            };
            if !url_ok(&url) {
                return Err(AttachmentError::BadUrl);
            }
            if !text.contains(url.as_str()) {
                return Err(AttachmentError::PreviewUrlNotInText);
            }
            Some(LinkPreview {
                url,
                title,
                description,
                image,
            })
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            text,
            attachments,
            preview,
        })
    }
}

fn utf8(b: &[u8]) -> Result<String, AttachmentError> {
    core::str::from_utf8(b)
        .map(String::from)
        .map_err(|_| AttachmentError::NotUtf8)
}

fn flag(r: &mut Reader<'_>) -> Result<bool, AttachmentError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::InvalidValue.into()),
    }
}

/// A `u16`-length-prefixed pointer, parsed strictly inside its own bytes.
fn pointer(r: &mut Reader<'_>) -> Result<AttachmentPointer, AttachmentError> {
    AttachmentPointer::from_bytes(r.vec16(usize::from(u16::MAX))?)
}
