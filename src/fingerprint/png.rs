//! PNG rendering of a [`KeyImage`] and of the scannable payload's QR code
//! (feature `png`), and the key image decoder.
//!
//! The key image PNG is the unit grid at `scale` pixels per unit (19·scale
//! by 10·scale, 8-bit RGB). A mark unit is a triangle: pixel `(i, j)` inside
//! it is mark-coloured when `i + j < scale`, frame-coloured otherwise. Each
//! cell has a grid line of frame colour `g = scale / 12` px wide (integer
//! division, so none below scale 12): the first `g / 2` px of the cell's
//! columns and rows and the last `g - g / 2` are frame-coloured, which never
//! reaches a cell's centre.
//!
//! The decoder does not assume the PNG is the picture alone: it finds the
//! grey frame inside a larger image (a screenshot), follows it if it is
//! slightly rotated, and reads each cell's centre; see
//! [`KeyImage::decode_png`] and `docs/PROTOCOL.md` section 6.2.

use super::ScannablePayload;
use super::image::{DIVIDER_X, ImageError, KeyImage, UNITS_H, UNITS_W, Unit, unit_rgb};
use crate::error::Error;
use crate::labels::{KEY_IMAGE_FRAME, KEY_IMAGE_MARK, KEY_IMAGE_PALETTE};
use crate::limits::{MAX_PNG_DECODE_SIDE, MAX_PNG_SCALE};
use alloc::vec::Vec;

/// Largest difference, per colour channel, between a pixel and the frame
/// grey `#8C8C8C` for the pixel to count as frame: room for noise and
/// colour management, while no palette colour comes near in a colour copy.
/// (In a greyscale copy orange may land within it; orange cells sit inside
/// the frame, so the frame's outline does not change.)
const FRAME_TOLERANCE: u8 = 24;
/// Largest spread between the channels of a pixel (max - min) for it to
/// count as grey. If every cell centre is grey the copy is read as a
/// greyscale copy (by grey level), even when it is stored as RGB; blue and
/// orange have spreads of 178 and 230.
const GREY_SPREAD: u8 = 32;
/// Largest RGB distance between a cell's colour and its nearest palette
/// colour in a colour copy. The closest two palette colours (black and
/// blue) are 211 apart, so below 96 the nearest colour is unambiguous with
/// a wide margin; a colour further from every palette colour is refused.
const MAX_COLOUR_DISTANCE: u32 = 96;
/// Smallest gap between two neighbouring grey levels of a greyscale copy
/// (on the 0-255 scale). The usual greyscale conversions keep the palette's
/// four levels at least 26 apart (Rec. 601 luma 0, 87, 162, 255; the
/// lightness (max + min) / 2, the closest, 0, 89, 115, 255).
const MIN_GREY_GAP: u8 = 20;
/// How many of the largest frame-coloured regions are tried as the frame
/// before the decoder gives up (grey buttons or bars around a screenshot).
const FRAME_CANDIDATES: usize = 8;

impl KeyImage {
    /// Renders the picture as a PNG with `scale` pixels per cell.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if `scale` is 0 or above
    /// [`MAX_PNG_SCALE`].
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// let png = image.render_png(16)?;
    /// assert_eq!(KeyImage::decode_png(&png), Ok(image));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn render_png(&self, scale: u32) -> Result<Vec<u8>, Error> {
        let (width, height, pixels) = self.rgb_pixels(scale)?;
        encode(width, height, ::png::ColorType::Rgb, &pixels)
    }

    /// The RGB pixels (row-major, 3 bytes each) of the PNG rendering.
    fn rgb_pixels(&self, scale: u32) -> Result<(u32, u32, Vec<u8>), Error> {
        if scale == 0 || scale > MAX_PNG_SCALE {
            return Err(Error::LimitExceeded);
        }
        let s = scale as usize;
        let (w, h) = (UNITS_W * s, UNITS_H * s);
        // Grid lines between cells, so cells are easy to count: `gutter` px
        // of frame colour, split over both sides (the odd pixel on the
        // right / bottom).
        let gutter = s / 12;
        let (lo, hi) = (gutter / 2, s - (gutter - gutter / 2));
        let in_gutter = |i: usize| i < lo || i >= hi;
        let mut px = Vec::with_capacity(w * h * 3);
        for py in 0..h {
            for pxl in 0..w {
                let (x, y, i, j) = (pxl / s, py / s, pxl % s, py % s);
                let u = self.unit(x, y);
                let colour = match u {
                    Unit::Mark if i + j >= s => unit_rgb(Unit::Frame),
                    Unit::Cell(_) if in_gutter(i) || in_gutter(j) => unit_rgb(Unit::Frame),
                    u => unit_rgb(u),
                };
                px.extend_from_slice(&colour);
            }
        }
        let dim = |n: usize| u32::try_from(n).map_err(|_| Error::LimitExceeded);
        Ok((dim(w)?, dim(h)?, px))
    }

    /// Recovers the picture from a PNG that shows it: the PNG this crate
    /// wrote, a rescaled or greyscale copy (also greyscale stored as RGB),
    /// or a screenshot with other things around the picture, rotated by a
    /// few degrees at most.
    ///
    /// It finds the picture's grey frame, checks that the frame has the
    /// 19 x 10 grid it must have, reads the orientation mark(s) and each
    /// cell's centre. A copy it cannot read with certainty is refused, never
    /// turned into other bits.
    ///
    /// # Errors
    /// [`ImageError::NotPng`] if the bytes do not decode as a PNG;
    /// [`ImageError::Size`] if it is smaller than the grid or larger than
    /// [`MAX_PNG_DECODE_SIDE`] on a
    /// side; [`ImageError::FrameNotFound`] if no frame with a consistent
    /// grid is found; [`ImageError::NoMark`] if the frame has no mark in its
    /// top-left corner (an upside-down or mirrored copy);
    /// [`ImageError::UnclearColour`] if a cell's colour cannot be read
    /// safely.
    ///
    /// ```
    /// use secret_chat::{Fingerprint, KeyImage};
    /// let image = KeyImage::pair(&Fingerprint::from_bytes([1; 32]), &Fingerprint::from_bytes([2; 32]));
    /// assert_eq!(KeyImage::decode_png(&image.render_png(8)?), Ok(image));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn decode_png(bytes: &[u8]) -> Result<Self, ImageError> {
        let pixels = Pixels::read(bytes)?;
        let mut error = ImageError::FrameNotFound;
        // First the frame's solid core (robust to noise touching the
        // frame), then every frame-coloured pixel (frames 1-2 px thick).
        let mask = pixels.frame_mask();
        let solid = pixels.frame_regions(pixels.solid_mask(&mask), true);
        let regions = solid
            .into_iter()
            .chain(core::iter::once_with(|| pixels.frame_regions(mask.clone(), false)).flatten());
        for region in regions {
            // The first of the region's four possible frames whose grid
            // checks out is read; a region with none is not the frame.
            let Some(frame) = region.frames().into_iter().find(|f| pixels.grid_fits(f)) else {
                continue;
            };
            match pixels.read_frame(&frame) {
                Ok(image) => return Ok(image),
                // Keep the error of the first frame that fitted, and try
                // the other regions (another picture in the same image).
                Err(e) => {
                    if error == ImageError::FrameNotFound {
                        error = e;
                    }
                }
            }
        }
        Err(error)
    }
}

impl ScannablePayload {
    /// The payload's QR code as a PNG (feature `png`): the module matrix of
    /// [`qr_modules`](Self::qr_modules) with a quiet zone of 4 modules,
    /// `module_px` pixels per module, 8-bit greyscale, dark modules black
    /// (0) and light ones white (255).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if `module_px` is 0 or above
    /// [`MAX_PNG_SCALE`], or (as for
    /// [`qr_svg`](Self::qr_svg)) the code would need a version above
    /// [`MAX_QR_VERSION`](crate::limits::MAX_QR_VERSION).
    ///
    /// ```
    /// use secret_chat::{Fingerprint, PairVerification};
    /// let pair = PairVerification::new(Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
    /// let png = pair.payload().qr_png(8)?;
    /// assert!(png.starts_with(b"\x89PNG"));
    /// # Ok::<(), secret_chat::Error>(())
    /// ```
    pub fn qr_png(&self, module_px: u32) -> Result<Vec<u8>, Error> {
        if module_px == 0 || module_px > MAX_PNG_SCALE {
            return Err(Error::LimitExceeded);
        }
        let (width, modules) = self.qr_modules()?;
        let s = module_px as usize;
        let side = (width + 2 * QUIET_ZONE) * s;
        let dark = |px: usize, py: usize| -> bool {
            let (mx, my) = (px / s, py / s);
            mx >= QUIET_ZONE
                && my >= QUIET_ZONE
                && modules
                    .get((my - QUIET_ZONE) * width + (mx - QUIET_ZONE))
                    .copied()
                    .filter(|_| mx - QUIET_ZONE < width)
                    .unwrap_or(false)
        };
        let mut grey = Vec::with_capacity(side * side);
        for py in 0..side {
            for px in 0..side {
                grey.push(if dark(px, py) { 0 } else { 255 });
            }
        }
        let dim = u32::try_from(side).map_err(|_| Error::LimitExceeded)?;
        encode(dim, dim, ::png::ColorType::Grayscale, &grey)
    }
}

/// Light modules around a QR code (the minimum the QR standard asks for).
const QUIET_ZONE: usize = 4;

/// Encodes 8-bit pixels as a PNG.
fn encode(
    width: u32,
    height: u32,
    colour: ::png::ColorType,
    pixels: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(pixels.len() / 8 + 256);
    let mut enc = ::png::Encoder::new(&mut out, width, height);
    enc.set_color(colour);
    enc.set_depth(::png::BitDepth::Eight);
    enc.set_compression(::png::Compression::Balanced);
    let mut w = enc.write_header().map_err(|_| Error::LimitExceeded)?;
    w.write_image_data(pixels)
        .map_err(|_| Error::LimitExceeded)?;
    w.finish().map_err(|_| Error::LimitExceeded)?;
    Ok(out)
}

/// A decoded PNG: 8-bit samples, 1 to 4 channels.
struct Pixels {
    buf: Vec<u8>,
    width: usize,
    height: usize,
    channels: usize,
    line: usize,
}

/// Where the frame is: the picture's corners, in continuous pixel
/// coordinates (pixel `(x, y)` covers `[x, x+1) x [y, y+1)`).
#[derive(Clone, Copy, Debug)]
struct Frame {
    top_left: (f64, f64),
    top_right: (f64, f64),
    bottom_left: (f64, f64),
}

/// A frame-coloured region: its size and extreme pixels.
#[derive(Clone, Copy, Debug)]
struct Region {
    /// Made of solid frame pixels only (one pixel in from the outline).
    solid: bool,
    size: usize,
    /// Pixel with the smallest `x + y` (top-left corner).
    min_sum: (usize, usize),
    /// Pixel with the largest `x + y` (bottom-right corner).
    max_sum: (usize, usize),
    /// Pixel with the largest `x - y` (top-right corner).
    max_diff: (usize, usize),
    /// Pixel with the smallest `x - y` (bottom-left corner).
    min_diff: (usize, usize),
}

impl Region {
    /// The four frames this region may outline. A mark hides one corner of
    /// the outline (the top-left one if the copy is upright), so each frame
    /// takes three extreme pixels as corners and completes the
    /// parallelogram; the upright guess comes first.
    fn frames(&self) -> [Frame; 4] {
        // The outer corner of each extreme pixel (of the pixel outside a
        // solid one).
        let o = if self.solid { 1.0 } else { 0.0 };
        let f = |(x, y): (usize, usize), dx: f64, dy: f64| (x as f64 + dx, y as f64 + dy);
        let tl = f(self.min_sum, -o, -o);
        let br = f(self.max_sum, 1.0 + o, 1.0 + o);
        let tr = f(self.max_diff, 1.0 + o, -o);
        let bl = f(self.min_diff, -o, 1.0 + o);
        // The fourth corner of the parallelogram through a, b (adjacent to
        // the missing corner) and c (opposite to it).
        let complete =
            |a: (f64, f64), b: (f64, f64), c: (f64, f64)| (a.0 + b.0 - c.0, a.1 + b.1 - c.1);
        let frame = |top_left, top_right, bottom_left| Frame {
            top_left,
            top_right,
            bottom_left,
        };
        [
            frame(complete(tr, bl, br), tr, bl),
            frame(tl, complete(tl, br, bl), bl),
            frame(tl, tr, complete(tl, br, tr)),
            frame(tl, tr, bl),
        ]
    }
}

impl Pixels {
    fn read(bytes: &[u8]) -> Result<Self, ImageError> {
        let mut dec = ::png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(::png::Transformations::normalize_to_color8());
        let side = MAX_PNG_DECODE_SIDE as usize;
        dec.set_limits(::png::Limits {
            bytes: 4 * side * side,
        });
        let mut reader = dec.read_info().map_err(|_| ImageError::NotPng)?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width < UNITS_W as u32
            || height < UNITS_H as u32
            || width > MAX_PNG_DECODE_SIDE
            || height > MAX_PNG_DECODE_SIDE
        {
            return Err(ImageError::Size);
        }
        let size = reader.output_buffer_size().ok_or(ImageError::Size)?;
        let mut buf = alloc::vec![0u8; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|_| ImageError::NotPng)?;
        let channels = match info.color_type {
            ::png::ColorType::Grayscale => 1,
            ::png::ColorType::GrayscaleAlpha => 2,
            ::png::ColorType::Rgb => 3,
            ::png::ColorType::Rgba => 4,
            ::png::ColorType::Indexed => return Err(ImageError::NotPng),
        };
        if info.bit_depth != ::png::BitDepth::Eight {
            return Err(ImageError::NotPng);
        }
        Ok(Self {
            buf,
            width: info.width as usize,
            height: info.height as usize,
            channels,
            line: info.line_size,
        })
    }

    /// The colour of pixel `(x, y)` (grey expanded to RGB; alpha ignored).
    fn rgb(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = y.checked_mul(self.line)? + x * self.channels;
        match self.buf.get(at..at + self.channels)? {
            [g] | [g, _] => Some([*g; 3]),
            [r, g, b] | [r, g, b, _] => Some([*r, *g, *b]),
            _ => None,
        }
    }

    /// Which pixels are frame-coloured (row-major).
    fn frame_mask(&self) -> Vec<bool> {
        let mut mask = Vec::with_capacity(self.width * self.height);
        for y in 0..self.height {
            for x in 0..self.width {
                mask.push(self.rgb(x, y).is_some_and(is_frame_colour));
            }
        }
        mask
    }

    /// Which pixels are *solid* frame pixels: frame-coloured, and so are
    /// their four neighbours.
    fn solid_mask(&self, mask: &[bool]) -> Vec<bool> {
        let w = self.width;
        let at = |i: Option<usize>| i.and_then(|i| mask.get(i)).copied().unwrap_or(false);
        (0..mask.len())
            .map(|i| {
                let x = i % w;
                at(Some(i))
                    && x > 0
                    && x + 1 < w
                    && at(i.checked_sub(1))
                    && at(Some(i + 1))
                    && at(i.checked_sub(w))
                    && at(Some(i + w))
            })
            .collect()
    }

    /// The 8-connected regions of `mask`, largest first, at most
    /// [`FRAME_CANDIDATES`] of them. `solid` records which mask it was.
    fn frame_regions(&self, mut mask: Vec<bool>, solid: bool) -> Vec<Region> {
        let (w, h) = (self.width, self.height);
        // Visiting a pixel clears it from the mask.
        let mut visit = |i: usize| -> bool {
            match mask.get_mut(i) {
                Some(v) if *v => {
                    *v = false;
                    true
                }
                _ => false,
            }
        };
        let mut regions: Vec<Region> = Vec::new();
        // Pixel indices fit in u32 (at most 4096 x 4096 pixels): half the
        // memory of usize for the fill stack.
        let mut stack: Vec<u32> = Vec::new();
        for start in 0..w * h {
            if !visit(start) {
                continue;
            }
            let p = (start % w, start / w);
            let mut r = Region {
                solid,
                size: 0,
                min_sum: p,
                max_sum: p,
                max_diff: p,
                min_diff: p,
            };
            stack.extend(u32::try_from(start).ok());
            while let Some(i) = stack.pop() {
                let i = i as usize;
                let (x, y) = (i % w, i / w);
                r.size += 1;
                let (sum, diff) = (x + y, x as isize - y as isize);
                if sum < r.min_sum.0 + r.min_sum.1 {
                    r.min_sum = (x, y);
                }
                if sum > r.max_sum.0 + r.max_sum.1 {
                    r.max_sum = (x, y);
                }
                if diff > r.max_diff.0 as isize - r.max_diff.1 as isize {
                    r.max_diff = (x, y);
                }
                if diff < r.min_diff.0 as isize - r.min_diff.1 as isize {
                    r.min_diff = (x, y);
                }
                for (dx, dy) in NEIGHBOURS {
                    let (Some(nx), Some(ny)) = (x.checked_add_signed(dx), y.checked_add_signed(dy))
                    else {
                        continue;
                    };
                    if nx < w && ny < h && visit(ny * w + nx) {
                        stack.extend(u32::try_from(ny * w + nx).ok());
                    }
                }
            }
            // Each of the 60 frame units that carry no mark has at least one
            // frame pixel.
            if r.size >= 60 {
                regions.push(Region { solid, ..r });
            }
        }
        regions.sort_by_key(|r| core::cmp::Reverse(r.size));
        regions.truncate(FRAME_CANDIDATES);
        regions
    }

    /// The colour at point `(u, v)` of the unit grid (`0..19`, `0..10`)
    /// inside `frame`.
    fn at(&self, frame: &Frame, u: f64, v: f64) -> Option<[u8; 3]> {
        let (fu, fv) = (u / UNITS_W as f64, v / UNITS_H as f64);
        let x = frame.top_left.0
            + fu * (frame.top_right.0 - frame.top_left.0)
            + fv * (frame.bottom_left.0 - frame.top_left.0);
        let y = frame.top_left.1
            + fu * (frame.top_right.1 - frame.top_left.1)
            + fv * (frame.bottom_left.1 - frame.top_left.1);
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        // Truncation of a non-negative value is the floor.
        self.rgb(x as usize, y as usize)
    }

    /// Whether `frame` has the picture's grid: big enough for a pixel per
    /// unit; every frame unit (except the six where a mark could be, in any
    /// orientation) frame-coloured at its centre; at most half the cell
    /// centres frame-coloured (a grey bar is not a picture; in a greyscale
    /// copy orange may come out frame-grey).
    fn grid_fits(&self, frame: &Frame) -> bool {
        let side =
            |a: (f64, f64), b: (f64, f64)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
        if side(frame.top_left, frame.top_right) < UNITS_W as f64 - 0.5
            || side(frame.top_left, frame.bottom_left) < UNITS_H as f64 - 0.5
        {
            return false;
        }
        let mut grey_cells = 0;
        for y in 0..UNITS_H {
            for x in 0..UNITS_W {
                let centre = self.at(frame, x as f64 + 0.5, y as f64 + 0.5);
                let Some(c) = centre else {
                    return false;
                };
                match grid_unit(x, y) {
                    GridUnit::Frame if !is_frame_colour(c) => return false,
                    GridUnit::Cell if is_frame_colour(c) => grey_cells += 1,
                    _ => {}
                }
            }
        }
        grey_cells <= 64
    }

    /// Reads the picture inside a frame whose grid fits.
    fn read_frame(&self, frame: &Frame) -> Result<KeyImage, ImageError> {
        // The cells, read at their centres, row by row across both blocks.
        let mut samples = Vec::with_capacity(2 * 64);
        for y in 0..UNITS_H {
            for x in 0..UNITS_W {
                if grid_unit(x, y) == GridUnit::Cell {
                    let c = self
                        .at(frame, x as f64 + 0.5, y as f64 + 0.5)
                        .ok_or(ImageError::FrameNotFound)?;
                    samples.push(c);
                }
            }
        }
        let greyscale = self.channels <= 2 || samples.iter().all(|c| spread(*c) <= GREY_SPREAD);
        let values = if greyscale {
            grey_levels(&samples)?
        } else {
            colour_values(&samples)?
        };
        KeyImage::from_units(
            |x, y| {
                // A mark fills its unit's upper-left half: of three points
                // inside it, those that are clearly frame or clearly mark
                // (blended edge pixels are neither) must agree, and be at
                // least two.
                let mut seen = [0usize; 2];
                for (du, dv) in MARK_POINTS {
                    let c = self
                        .at(frame, x as f64 + du, y as f64 + dv)
                        .ok_or(ImageError::FrameNotFound)?;
                    if is_frame_colour(c) {
                        seen[0] += 1;
                    } else if distance(c, KEY_IMAGE_MARK) <= MARK_DISTANCE * MARK_DISTANCE {
                        seen[1] += 1;
                    }
                }
                match seen {
                    [frame, 0] if frame >= 2 => Ok(false),
                    [0, mark] if mark >= 2 => Ok(true),
                    _ => Err(ImageError::UnclearColour),
                }
            },
            |x, y| {
                cell_index(x, y)
                    .and_then(|i| values.get(i).copied())
                    .ok_or(ImageError::FrameNotFound)
            },
        )
    }
}

/// What a unit of the grid is, as far as locating the frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GridUnit {
    /// Always frame-coloured.
    Frame,
    /// A corner, or the top or bottom of the divider: where a mark is in
    /// some orientation of the picture.
    MaybeMark,
    /// A data cell.
    Cell,
}

fn grid_unit(x: usize, y: usize) -> GridUnit {
    let edge_x = x == 0 || x == DIVIDER_X || x == UNITS_W - 1;
    let edge_y = y == 0 || y == UNITS_H - 1;
    if edge_x && edge_y {
        GridUnit::MaybeMark
    } else if edge_x || edge_y {
        GridUnit::Frame
    } else {
        GridUnit::Cell
    }
}

/// Where a mark is read, in a mark unit: its upper-left quarter point and
/// two points beside it, all at least 0.2 units inside the triangle
/// `u + v < 1`.
const MARK_POINTS: [(f64, f64); 3] = [(0.25, 0.25), (0.2, 0.45), (0.45, 0.2)];
/// Largest RGB distance from black for a pixel to count as the mark
/// (the frame grey is 242 away; a half blend of the two, 121).
const MARK_DISTANCE: u32 = 96;

/// Squared RGB distance between two colours.
fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u32::from(x.abs_diff(y)).pow(2))
        .sum()
}

/// The 8 neighbours of a pixel.
const NEIGHBOURS: [(isize, isize); 8] = [
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// Index of the cell at unit `(x, y)` among the cells in row-major order
/// across the whole grid (row by row, each row left block then right).
fn cell_index(x: usize, y: usize) -> Option<usize> {
    let row = y.checked_sub(1).filter(|r| *r < 8)?;
    let col = match x {
        1..=8 => x - 1,
        10..=17 => x - 2,
        _ => return None,
    };
    Some(row * 16 + col)
}

fn is_frame_colour(c: [u8; 3]) -> bool {
    c.iter()
        .zip(KEY_IMAGE_FRAME)
        .all(|(a, b)| a.abs_diff(b) <= FRAME_TOLERANCE)
}

/// Largest minus smallest channel.
fn spread(c: [u8; 3]) -> u8 {
    let [r, g, b] = c;
    r.max(g).max(b) - r.min(g).min(b)
}

/// Values of colour samples: the nearest palette colour, if near enough.
fn colour_values(samples: &[[u8; 3]]) -> Result<Vec<u8>, ImageError> {
    samples
        .iter()
        .map(|c| {
            let (d, v) = (0u8..)
                .zip(KEY_IMAGE_PALETTE)
                .map(|(i, p)| (distance(*c, p), i))
                .min()
                .ok_or(ImageError::UnclearColour)?;
            if d <= MAX_COLOUR_DISTANCE * MAX_COLOUR_DISTANCE {
                Ok(v)
            } else {
                Err(ImageError::UnclearColour)
            }
        })
        .collect()
}

/// Values of greyscale samples (grey level = mean of the channels): the
/// four palette colours keep their order in any greyscale conversion, so
/// the samples must fall into four groups separated by the three widest
/// gaps between neighbouring levels, each gap at least [`MIN_GREY_GAP`] and
/// wider than any group's own spread; darkest group 0 (black), lightest 3
/// (white). Otherwise the copy is refused.
fn grey_levels(samples: &[[u8; 3]]) -> Result<Vec<u8>, ImageError> {
    let level = |c: &[u8; 3]| -> u8 {
        let sum: u16 = c.iter().map(|v| u16::from(*v)).sum();
        u8::try_from(sum / 3).unwrap_or(u8::MAX)
    };
    let levels: Vec<u8> = samples.iter().map(level).collect();
    let mut sorted = levels.clone();
    sorted.sort_unstable();
    // Gaps between neighbours in sorted order: (gap, index of upper value).
    let mut gaps: Vec<(u8, usize)> = sorted
        .windows(2)
        .enumerate()
        .map(|(i, w)| match w {
            [a, b] => (b - a, i + 1),
            _ => (0, i + 1),
        })
        .collect();
    gaps.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut cuts: Vec<usize> = gaps.iter().take(3).map(|g| g.1).collect();
    let narrowest = gaps.iter().take(3).map(|g| g.0).min().unwrap_or(0);
    if cuts.len() != 3 || narrowest < MIN_GREY_GAP {
        return Err(ImageError::UnclearColour);
    }
    cuts.sort_unstable();
    // The four groups' bounds, as values: group k is [lo_k, hi_k].
    let mut bounds = [(0u8, 0u8); 4];
    let mut start = 0;
    for (k, end) in cuts.iter().copied().chain([sorted.len()]).enumerate() {
        let (lo, hi) = (
            sorted.get(start),
            end.checked_sub(1).and_then(|e| sorted.get(e)),
        );
        let (Some(lo), Some(hi), Some(slot)) = (lo, hi, bounds.get_mut(k)) else {
            return Err(ImageError::UnclearColour);
        };
        if hi - lo >= narrowest {
            return Err(ImageError::UnclearColour);
        }
        *slot = (*lo, *hi);
        start = end;
    }
    levels
        .iter()
        .map(|l| {
            (0u8..)
                .zip(bounds)
                .find(|(_, (lo, hi))| (lo..=hi).contains(&l))
                .map(|(k, _)| k)
                .ok_or(ImageError::UnclearColour)
        })
        .collect()
}
