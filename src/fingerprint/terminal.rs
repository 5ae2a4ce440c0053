//! Terminal renderings of a [`KeyImage`] and their decoder.
//!
//! - [`TerminalMode::TrueColor`]: five lines of 19 upper half blocks (`▀`);
//!   each character's foreground (`ESC[38;2;R;G;Bm`) is the upper unit and
//!   its background (`ESC[48;2;R;G;Bm`) the lower; every line ends with
//!   `ESC[0m`.
//! - [`TerminalMode::Plain`]: ten lines of 19 two-character units (`##`,
//!   `oo`, `..`, two spaces for the cell colours; `^^` for a mark; for the
//!   frame `+-` where the left edge or the divider meets the top or bottom
//!   edge, `-+` at the two right-hand corners, `--` elsewhere on the top and
//!   bottom edges, `||` elsewhere on the left edge, the divider and the right
//!   edge), then a one-line legend ([`PLAIN_LEGEND_PAIR`] or
//!   [`PLAIN_LEGEND_ROOM`]).

use super::image::{
    DIVIDER_X, ImageError, ImageKind, KeyImage, TerminalMode, UNITS_H, UNITS_W, Unit, exact_cell,
    is_frame_unit, unit_rgb,
};
use crate::labels::{KEY_IMAGE_FRAME, KEY_IMAGE_MARK};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// The plain-mode glyph pair of each cell value.
const PLAIN_CELLS: [&str; 4] = ["##", "oo", "..", "  "];
/// The plain-mode glyph pair of a mark.
const PLAIN_MARK: &str = "^^";
/// The plain-mode legend line of a 1:1 picture.
pub(crate) const PLAIN_LEGEND_PAIR: &str =
    "## black   oo blue   .. orange   (blank) white   ^^ mark (top left)";
/// The plain-mode legend line of a room picture (two marks).
pub(crate) const PLAIN_LEGEND_ROOM: &str =
    "## black   oo blue   .. orange   (blank) white   ^^ marks (top left, top middle: room)";
/// The upper half block.
const HALF: char = '▀';

impl KeyImage {
    /// Renders the picture for a terminal; lines end with `\n`.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage, TerminalMode};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// let colour = image.render_terminal(TerminalMode::TrueColor); // 24-bit colour escapes
    /// let plain = image.render_terminal(TerminalMode::Plain); // any terminal, or a log
    /// assert!(colour.contains('\x1b') && !plain.contains('\x1b'));
    /// ```
    pub fn render_terminal(&self, mode: TerminalMode) -> String {
        match mode {
            TerminalMode::TrueColor => self.render_truecolor(),
            TerminalMode::Plain => self.render_plain(),
        }
    }

    fn render_truecolor(&self) -> String {
        let mut s = String::with_capacity(UNITS_W * UNITS_H * 24);
        for row in 0..UNITS_H / 2 {
            for x in 0..UNITS_W {
                let [r, g, b] = unit_rgb(self.unit(x, 2 * row));
                let [r2, g2, b2] = unit_rgb(self.unit(x, 2 * row + 1));
                let _ = write!(s, "\x1b[38;2;{r};{g};{b}m\x1b[48;2;{r2};{g2};{b2}m{HALF}");
            }
            s.push_str("\x1b[0m\n");
        }
        s
    }

    fn render_plain(&self) -> String {
        let mut s = String::with_capacity((UNITS_W * 2 + 1) * UNITS_H + 80);
        for y in 0..UNITS_H {
            for x in 0..UNITS_W {
                let glyph = match self.unit(x, y) {
                    Unit::Mark => PLAIN_MARK,
                    Unit::Cell(v) => PLAIN_CELLS.get(usize::from(v)).copied().unwrap_or("??"),
                    Unit::Frame => frame_glyph(x, y),
                };
                s.push_str(glyph);
            }
            s.push('\n');
        }
        s.push_str(match self.kind() {
            ImageKind::Pair => PLAIN_LEGEND_PAIR,
            ImageKind::Room => PLAIN_LEGEND_ROOM,
        });
        s.push('\n');
        s
    }

    /// Recovers the picture from the output of
    /// [`render_terminal`](Self::render_terminal), in either mode.
    ///
    /// # Errors
    /// [`ImageError::NotARendering`] if the text is not such a rendering
    /// (a unit's glyph or colour is not one the renderer writes);
    /// [`ImageError::NoMark`] if the orientation mark is missing.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage, TerminalMode};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// let text = image.render_terminal(TerminalMode::Plain);
    /// assert_eq!(KeyImage::decode_terminal(&text), Ok(image));
    /// ```
    pub fn decode_terminal(text: &str) -> Result<Self, ImageError> {
        if text.contains('\x1b') {
            decode_truecolor(text)
        } else {
            decode_plain(text)
        }
    }
}

/// The plain-mode glyph pair of frame unit `(x, y)`.
fn frame_glyph(x: usize, y: usize) -> &'static str {
    let vertical = x == 0 || x == DIVIDER_X || x == UNITS_W - 1;
    let horizontal = y == 0 || y == UNITS_H - 1;
    match (vertical, horizontal) {
        (true, true) if x == UNITS_W - 1 => "-+",
        (true, true) => "+-",
        (false, true) => "--",
        _ => "||",
    }
}

fn decode_plain(text: &str) -> Result<KeyImage, ImageError> {
    let lines: Vec<&str> = text.lines().take(UNITS_H).collect();
    let glyph = |x: usize, y: usize| -> Option<&str> {
        let line = lines.get(y)?;
        line.get(2 * x..2 * x + 2)
    };
    let bad = ImageError::NotARendering;
    // Every line whole, every frame glyph the renderer's.
    if lines.len() != UNITS_H || lines.iter().any(|l| l.len() != 2 * UNITS_W) {
        return Err(bad);
    }
    for y in 0..UNITS_H {
        for x in 0..UNITS_W {
            if is_frame_unit(x, y) && glyph(x, y) != Some(frame_glyph(x, y)) {
                return Err(bad);
            }
        }
    }
    KeyImage::from_units(
        |x, y| match glyph(x, y) {
            Some(PLAIN_MARK) => Ok(true),
            Some(g) if g == frame_glyph(x, y) => Ok(false),
            _ => Err(bad),
        },
        |x, y| {
            let g = glyph(x, y).ok_or(bad)?;
            (0u8..)
                .zip(PLAIN_CELLS)
                .find(|(_, c)| *c == g)
                .map(|(i, _)| i)
                .ok_or(bad)
        },
    )
}

fn decode_truecolor(text: &str) -> Result<KeyImage, ImageError> {
    let bad = ImageError::NotARendering;
    // colours[y * UNITS_W + x]
    let mut colours: Vec<Option<[u8; 3]>> = alloc::vec![None; UNITS_W * UNITS_H];
    for (row, line) in text.lines().take(UNITS_H / 2).enumerate() {
        let (mut fg, mut bg) = (None, None);
        let mut x = 0;
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if let Some(esc) = rest.strip_prefix("\x1b[") {
                let (params, after) = esc.split_once('m').ok_or(bad)?;
                rest = after;
                let p: Vec<&str> = params.split(';').collect();
                match p.as_slice() {
                    ["38", "2", r, g, b] => fg = Some(rgb(r, g, b).ok_or(bad)?),
                    ["48", "2", r, g, b] => bg = Some(rgb(r, g, b).ok_or(bad)?),
                    ["0"] => (fg, bg) = (None, None),
                    _ => return Err(bad),
                }
                continue;
            }
            rest = rest.get(c.len_utf8()..).unwrap_or("");
            if c != HALF {
                return Err(bad);
            }
            for (dy, colour) in [(0, fg), (1, bg)] {
                let i = (2 * row + dy) * UNITS_W + x;
                if x >= UNITS_W {
                    return Err(bad);
                }
                if let Some(slot) = colours.get_mut(i) {
                    *slot = colour;
                }
            }
            x += 1;
        }
    }
    let at = |x: usize, y: usize| colours.get(y * UNITS_W + x).copied().flatten();
    // Every unit drawn, every frame unit in the frame colour.
    for y in 0..UNITS_H {
        for x in 0..UNITS_W {
            let ok = match at(x, y) {
                Some(c) => !is_frame_unit(x, y) || c == KEY_IMAGE_FRAME,
                None => false,
            };
            if !ok {
                return Err(bad);
            }
        }
    }
    KeyImage::from_units(
        |x, y| match at(x, y) {
            Some(c) if c == KEY_IMAGE_MARK => Ok(true),
            Some(c) if c == KEY_IMAGE_FRAME => Ok(false),
            _ => Err(bad),
        },
        |x, y| at(x, y).and_then(exact_cell).ok_or(bad),
    )
}

fn rgb(r: &str, g: &str, b: &str) -> Option<[u8; 3]> {
    Some([r.parse().ok()?, g.parse().ok()?, b.parse().ok()?])
}
