//! SVG rendering of a [`KeyImage`] (no dependency) and its decoder.
//!
//! The SVG's user space is the unit grid (`viewBox="0 0 19 10"`): one grey
//! `<rect>` for the frame, one 1x1 `<rect>` per cell (in a group stroked in
//! the frame colour, which draws thin grid lines), then, outside that group
//! and so not stroked, a triangle `<path>` (`M x y h1 l-1 1 z`) per
//! orientation mark. `docs/PROTOCOL.md` section 6.2 gives the exact text.

use super::image::{ImageError, KeyImage, UNITS_H, UNITS_W, Unit, is_mark_position, unit_rgb};
use crate::labels::KEY_IMAGE_PALETTE;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// Pixels per unit of the SVG's default size (it scales freely).
const SVG_UNIT_PX: usize = 24;

impl KeyImage {
    /// Renders the picture as a standalone SVG document.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// let svg = image.render_svg(); // show it in a web view, or write it to a file
    /// assert!(svg.starts_with("<svg") && svg.contains("<title>Public key image</title>"));
    /// ```
    pub fn render_svg(&self) -> String {
        let mut s = String::with_capacity(8 * 1024);
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {UNITS_W} {UNITS_H}\" \
             width=\"{}\" height=\"{}\" shape-rendering=\"crispEdges\">\n\
             <title>Public key image</title>\n",
            UNITS_W * SVG_UNIT_PX,
            UNITS_H * SVG_UNIT_PX
        );
        let _ = writeln!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{UNITS_W}\" height=\"{UNITS_H}\" fill=\"{}\"/>",
            hex(unit_rgb(Unit::Frame))
        );
        let _ = writeln!(
            s,
            "<g stroke=\"{}\" stroke-width=\"0.08\">",
            hex(unit_rgb(Unit::Frame))
        );
        for y in 0..UNITS_H {
            for x in 0..UNITS_W {
                if let u @ Unit::Cell(_) = self.unit(x, y) {
                    let _ = writeln!(
                        s,
                        "<rect x=\"{x}\" y=\"{y}\" width=\"1\" height=\"1\" fill=\"{}\"/>",
                        hex(unit_rgb(u))
                    );
                }
            }
        }
        s.push_str("</g>\n");
        // The marks are drawn after (above) the stroked group, unstroked.
        for y in 0..UNITS_H {
            for x in 0..UNITS_W {
                if self.unit(x, y) == Unit::Mark {
                    let _ = writeln!(
                        s,
                        "<path d=\"M{x} {y}h1l-1 1z\" fill=\"{}\"/>",
                        hex(unit_rgb(Unit::Mark))
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }

    /// Recovers the picture from an SVG made by [`render_svg`](Self::render_svg).
    ///
    /// # Errors
    /// [`ImageError::NotARendering`] if a cell is missing or has a colour
    /// outside the palette, or a tag is not one `render_svg` writes;
    /// [`ImageError::NoMark`] if the orientation mark is missing.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// assert_eq!(KeyImage::decode_svg(&image.render_svg()), Ok(image));
    /// ```
    pub fn decode_svg(svg: &str) -> Result<Self, ImageError> {
        let bad = ImageError::NotARendering;
        let mut cells: Vec<Option<u8>> = alloc::vec![None; UNITS_W * UNITS_H];
        let mut marks: Vec<bool> = alloc::vec![false; UNITS_W * UNITS_H];
        for tag in svg.split('<').skip(1) {
            if let Some(rest) = tag.strip_prefix("rect ") {
                let (Some(x), Some(y), Some(w), Some(h), Some(fill)) = (
                    attr(rest, "x").and_then(|v| v.parse::<usize>().ok()),
                    attr(rest, "y").and_then(|v| v.parse::<usize>().ok()),
                    attr(rest, "width"),
                    attr(rest, "height"),
                    attr(rest, "fill"),
                ) else {
                    return Err(bad);
                };
                if (w, h) != ("1", "1") {
                    continue; // the frame
                }
                let v = (0u8..)
                    .zip(KEY_IMAGE_PALETTE)
                    .find(|(_, c)| hex(*c).eq_ignore_ascii_case(fill))
                    .map(|(i, _)| i)
                    .ok_or(bad)?;
                let slot = cells.get_mut(index(x, y).ok_or(bad)?);
                *slot.ok_or(bad)? = Some(v);
            } else if let Some(rest) = tag.strip_prefix("path ") {
                let d = attr(rest, "d").ok_or(bad)?;
                let coords = d
                    .strip_prefix('M')
                    .and_then(|d| d.strip_suffix("h1l-1 1z"))
                    .ok_or(bad)?;
                let (x, y) = coords.split_once(' ').ok_or(bad)?;
                let (x, y) = (
                    x.parse::<usize>().map_err(|_| bad)?,
                    y.parse::<usize>().map_err(|_| bad)?,
                );
                if !is_mark_position(x, y) {
                    return Err(bad);
                }
                let slot = marks.get_mut(index(x, y).ok_or(bad)?);
                *slot.ok_or(bad)? = true;
            }
        }
        Self::from_units(
            |x, y| {
                index(x, y)
                    .and_then(|i| marks.get(i).copied())
                    .ok_or(ImageError::NotARendering)
            },
            |x, y| {
                index(x, y)
                    .and_then(|i| cells.get(i).copied().flatten())
                    .ok_or(ImageError::NotARendering)
            },
        )
    }
}

/// `#RRGGBB`.
fn hex(c: [u8; 3]) -> String {
    let [r, g, b] = c;
    alloc::format!("#{r:02X}{g:02X}{b:02X}")
}

/// Index of unit `(x, y)` in a row-major grid, if in range.
fn index(x: usize, y: usize) -> Option<usize> {
    (x < UNITS_W && y < UNITS_H).then_some(y * UNITS_W + x)
}

/// The value of attribute `name="..."` in a tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before_ok = at == 0 || rest.as_bytes().get(at - 1) == Some(&b' ');
        let after = rest.get(at + name.len()..)?;
        if let (true, Some(value)) = (before_ok, after.strip_prefix("=\"")) {
            return value.split_once('"').map(|(v, _)| v);
        }
        rest = after;
    }
}
