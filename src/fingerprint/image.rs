//! The picture model: a grid of units (frame, mark, or a 2-bit cell), shared
//! by every renderer and decoder. No cryptography here: a [`KeyImage`] is
//! only the 256 bits it draws and which kind of picture it is.
//!
//! ```text
//!  unit x: 0   1 ........ 8   9   10 ....... 17  18
//!  y = 0   M   frame ........ m   frame .......  frame     M = mark (always)
//!  y = 1   |   block 0 row 0  |   block 1 row 0   |        m = mark (room only)
//!   ...    |   ...            |   ...             |
//!  y = 8   |   block 0 row 7  |   block 1 row 7   |
//!  y = 9   frame ........................................
//! ```
//!
//! Cell (row `r`, column `c`) of a block is cell `i = 8r + c`; its value is
//! bits `7-2(i%4) .. 6-2(i%4)` of byte `i / 4` (most significant pair first),
//! and is drawn in colour [`KEY_IMAGE_PALETTE`]`[value]`.

use super::{Fingerprint, PICTURE_BLOCK_LEN, RoomDigest};
use crate::labels::{KEY_IMAGE_FRAME, KEY_IMAGE_MARK, KEY_IMAGE_PALETTE};
use core::fmt;

/// Width of a key image, in units (cells).
pub(crate) const UNITS_W: usize = 19;
/// Height of a key image, in units (cells).
pub(crate) const UNITS_H: usize = 10;
/// Column of the first unit of each block.
const BLOCK_X: [usize; 2] = [1, 10];
/// Row of the first unit of both blocks.
const BLOCK_Y: usize = 1;
/// Cells per block side.
const SIDE: usize = 8;
/// Where the orientation mark of every picture sits (top-left corner).
const MARK: (usize, usize) = (0, 0);
/// Column of the frame's divider between the blocks.
pub(crate) const DIVIDER_X: usize = 9;
/// Where the second mark of a room picture sits (top of the divider).
const ROOM_MARK: (usize, usize) = (DIVIDER_X, 0);

/// Which picture a [`KeyImage`] is; the marks in its frame tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// The 1:1 picture: two members' fingerprints, sorted. One mark, in
    /// the top-left corner.
    Pair,
    /// A group's room digest. A second mark sits at the top of the divider.
    Room,
}

/// How to render a key image in a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TerminalMode {
    /// 24-bit colour escape codes and upper half blocks (`▀`): one character
    /// draws two units, so cells come out square.
    TrueColor,
    /// No colour (dumb terminals, logs): two ASCII characters per unit,
    /// `##` black, `oo` blue, `..` orange, two spaces white, `^^` a mark,
    /// `+-` `-+` `--` `||` the frame, plus a legend line.
    Plain,
}

/// What one unit of the grid shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Frame (grey), carries no data.
    Frame,
    /// Orientation mark.
    Mark,
    /// A data cell with its 2-bit value.
    Cell(u8),
}

/// The public key image: 256 bits drawn as two 8x8 blocks of 2-bit cells.
///
/// Build it with [`KeyImage::pair`] (or
/// [`PairVerification::image`](super::PairVerification::image)) or
/// [`KeyImage::room`]; render it with `render_svg`, `render_png` (feature
/// `png`) or `render_terminal`; each `decode_*` function gives back exactly
/// the bits, which is how the tests show that the renderings are lossless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyImage {
    kind: ImageKind,
    blocks: [[u8; PICTURE_BLOCK_LEN]; 2],
}

impl KeyImage {
    /// The 1:1 picture of two members: each one's first 128 fingerprint
    /// bits, the smaller fingerprint on the left. `pair(a, b) == pair(b, a)`.
    ///
    /// A change of one member's key changes that member's block; the
    /// partner's block keeps its bits, but if the new fingerprint sorts on
    /// the other side of the partner's, the blocks swap places and both
    /// halves of the picture change.
    /// [`PairVerification::local_block`](super::PairVerification::local_block)
    /// says which block is whose.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage};
    /// let (a, b) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// assert_eq!(KeyImage::pair(&a, &b), KeyImage::pair(&b, &a));
    /// assert_eq!(KeyImage::pair(&a, &b).blocks()[0], a.picture_bits());
    /// ```
    pub fn pair(a: &Fingerprint, b: &Fingerprint) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Self {
            kind: ImageKind::Pair,
            blocks: [first.picture_bits(), second.picture_bits()],
        }
    }

    /// The room picture: the digest's 256 bits, bytes 0..16 on the left.
    pub fn room(digest: &RoomDigest) -> Self {
        let mut blocks = [[0u8; PICTURE_BLOCK_LEN]; 2];
        for (i, b) in digest.as_bytes().iter().enumerate() {
            if let Some(slot) = blocks
                .get_mut(i / PICTURE_BLOCK_LEN)
                .and_then(|blk| blk.get_mut(i % PICTURE_BLOCK_LEN))
            {
                *slot = *b;
            }
        }
        Self {
            kind: ImageKind::Room,
            blocks,
        }
    }

    /// Which picture this is.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    /// The drawn bits: left block, right block.
    pub fn blocks(&self) -> &[[u8; PICTURE_BLOCK_LEN]; 2] {
        &self.blocks
    }

    /// The value (0..=3) of cell `i` (0..64) of block `b`, if in range.
    pub(crate) fn cell(&self, b: usize, i: usize) -> Option<u8> {
        let byte = self.blocks.get(b)?.get(i / 4)?;
        Some((byte >> (6 - 2 * (i % 4))) & 3)
    }

    /// What unit `(x, y)` shows (out of range: frame).
    pub(crate) fn unit(&self, x: usize, y: usize) -> Unit {
        if (x, y) == MARK || ((x, y) == ROOM_MARK && self.kind == ImageKind::Room) {
            return Unit::Mark;
        }
        match cell_at(x, y) {
            Some((b, i)) => self.cell(b, i).map_or(Unit::Frame, Unit::Cell),
            None => Unit::Frame,
        }
    }

    /// Rebuilds an image from a classifier of units: `mark(x, y)` says
    /// whether a mark is drawn at a mark position, `cell(x, y)` gives a
    /// cell's value. Fails with the classifier's error, or
    /// [`ImageError::NoMark`] if the first mark is missing.
    pub(crate) fn from_units(
        mut mark: impl FnMut(usize, usize) -> Result<bool, ImageError>,
        mut cell: impl FnMut(usize, usize) -> Result<u8, ImageError>,
    ) -> Result<Self, ImageError> {
        if !mark(MARK.0, MARK.1)? {
            return Err(ImageError::NoMark);
        }
        let kind = if mark(ROOM_MARK.0, ROOM_MARK.1)? {
            ImageKind::Room
        } else {
            ImageKind::Pair
        };
        let mut blocks = [[0u8; PICTURE_BLOCK_LEN]; 2];
        for (b, block) in blocks.iter_mut().enumerate() {
            for i in 0..SIDE * SIDE {
                let (x, y) = unit_of(b, i);
                let v = cell(x, y)?;
                if v > 3 {
                    return Err(ImageError::UnclearColour);
                }
                if let Some(slot) = block.get_mut(i / 4) {
                    *slot |= v << (6 - 2 * (i % 4));
                }
            }
        }
        Ok(Self { kind, blocks })
    }
}

/// Why a rendering of a key image could not be decoded back to its bits.
///
/// The decoders never guess: a copy they cannot read with certainty is
/// refused with one of these, never turned into other bits. None of them
/// says that a key was substituted (compare the decoded picture for that);
/// they say that this copy cannot be checked, and the app should ask for a
/// sharper or complete copy of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes are not a PNG the decoder reads (damaged or truncated, or
    /// a format it does not support). Retrying with the same bytes cannot help.
    NotPng,
    /// The PNG is smaller than the 19 x 10 unit grid, or larger than
    /// [`MAX_PNG_DECODE_SIDE`](crate::limits::MAX_PNG_DECODE_SIDE) on a side.
    Size,
    /// No grey frame with a consistent 19 x 10 grid was found: the picture
    /// is cut off, too blurred, rotated too far, or not a key image.
    FrameNotFound,
    /// The frame was found but its orientation mark is missing: the copy
    /// is upside down or mirrored, or not a key image.
    NoMark,
    /// A cell's colour is too far from every palette colour (or, in a
    /// greyscale copy, the four grey levels cannot be told apart): the
    /// copy's colours were changed too much to read it safely.
    UnclearColour,
    /// The text is not an SVG or terminal rendering made by this crate.
    NotARendering,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotPng => "not a readable PNG",
            Self::Size => "image size outside the decoder's limits",
            Self::FrameNotFound => "no key image frame with a consistent grid found",
            Self::NoMark => "orientation mark missing (upside down, mirrored, or not a key image)",
            Self::UnclearColour => "cell colours too far from the palette to read safely",
            Self::NotARendering => "not a key image rendering made by this crate",
        })
    }
}

impl core::error::Error for ImageError {}

/// The unit of cell `i` of block `b`.
fn unit_of(b: usize, i: usize) -> (usize, usize) {
    let bx = BLOCK_X.get(b).copied().unwrap_or(0);
    (bx + i % SIDE, BLOCK_Y + i / SIDE)
}

/// The (block, cell index) at unit `(x, y)`, if it is a cell.
fn cell_at(x: usize, y: usize) -> Option<(usize, usize)> {
    if !(BLOCK_Y..BLOCK_Y + SIDE).contains(&y) {
        return None;
    }
    let row = y - BLOCK_Y;
    BLOCK_X
        .iter()
        .enumerate()
        .find(|(_, bx)| (**bx..**bx + SIDE).contains(&x))
        .map(|(b, bx)| (b, row * SIDE + (x - bx)))
}

/// Whether `(x, y)` is always drawn as frame (no cell, no mark position).
pub(crate) fn is_frame_unit(x: usize, y: usize) -> bool {
    x < UNITS_W && y < UNITS_H && cell_at(x, y).is_none() && !is_mark_position(x, y)
}

/// Whether `(x, y)` is one of the two mark positions.
pub(crate) fn is_mark_position(x: usize, y: usize) -> bool {
    (x, y) == MARK || (x, y) == ROOM_MARK
}

/// The colour a unit is drawn in (a mark unit: the mark colour).
pub(crate) fn unit_rgb(u: Unit) -> [u8; 3] {
    match u {
        Unit::Frame => KEY_IMAGE_FRAME,
        Unit::Mark => KEY_IMAGE_MARK,
        Unit::Cell(v) => KEY_IMAGE_PALETTE
            .get(usize::from(v))
            .copied()
            .unwrap_or(KEY_IMAGE_FRAME),
    }
}

/// The palette value whose colour equals `c` exactly.
pub(crate) fn exact_cell(c: [u8; 3]) -> Option<u8> {
    (0u8..)
        .zip(KEY_IMAGE_PALETTE)
        .find(|(_, p)| *p == c)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let mut blocks = [[0u8; 16]; 2];
        for (i, b) in blocks.iter_mut().flatten().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        for kind in [ImageKind::Pair, ImageKind::Room] {
            let img = KeyImage { kind, blocks };
            let back = KeyImage::from_units(
                |x, y| Ok(img.unit(x, y) == Unit::Mark),
                |x, y| match img.unit(x, y) {
                    Unit::Cell(v) => Ok(v),
                    _ => Err(ImageError::NotARendering),
                },
            )
            .unwrap();
            assert_eq!(back, img);
        }
        // Bit order: the first cell is the top two bits of byte 0.
        let img = KeyImage {
            kind: ImageKind::Pair,
            blocks: [[0b1100_0000; 16], [0; 16]],
        };
        assert_eq!(img.unit(1, 1), Unit::Cell(3));
        assert_eq!(img.unit(2, 1), Unit::Cell(0));
        assert_eq!(img.unit(0, 0), Unit::Mark);
        assert_eq!(img.unit(9, 0), Unit::Frame);
    }
}
