//! PNG rendering of a [`KeyImage`] (feature `png`) and its decoder.
//!
//! The PNG is the unit grid at `scale` pixels per unit (19·scale by
//! 10·scale, 8-bit RGB). A mark unit is a triangle: pixel `(i, j)` inside
//! it is mark-coloured when `i + j < scale`, frame-coloured otherwise. From
//! a scale of 8 up, each cell has a `scale / 12` px grid line of frame colour
//! around it (half on each side), which never reaches a cell's centre.

use super::image::{KeyImage, Sample, UNITS_H, UNITS_W, Unit, is_mark, nearest_cell, unit_rgb};
use crate::error::{DecodeError, Error};
use crate::limits::{MAX_PNG_DECODE_SIDE, MAX_PNG_SCALE};
use alloc::vec::Vec;

impl KeyImage {
    /// Renders the picture as a PNG with `scale` pixels per cell.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if `scale` is 0 or above
    /// [`MAX_PNG_SCALE`](crate::limits::MAX_PNG_SCALE).
    pub fn render_png(&self, scale: u32) -> Result<Vec<u8>, Error> {
        let (width, height, pixels) = self.rgb_pixels(scale)?;
        let mut out = Vec::with_capacity(pixels.len() / 8 + 256);
        let mut enc = ::png::Encoder::new(&mut out, width, height);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        enc.set_compression(::png::Compression::Balanced);
        let mut w = enc.write_header().map_err(|_| Error::LimitExceeded)?;
        w.write_image_data(&pixels)
            .map_err(|_| Error::LimitExceeded)?;
        w.finish().map_err(|_| Error::LimitExceeded)?;
        Ok(out)
    }

    /// The RGB pixels (row-major, 3 bytes each) of the PNG rendering.
    fn rgb_pixels(&self, scale: u32) -> Result<(u32, u32, Vec<u8>), Error> {
        if scale == 0 || scale > MAX_PNG_SCALE {
            return Err(Error::LimitExceeded);
        }
        let s = scale as usize;
        let (w, h) = (UNITS_W * s, UNITS_H * s);
        // Grid lines between cells (from 8 px cells up), so cells are easy
        // to count: `gutter` px of frame colour split over both sides.
        let gutter = if s >= 8 { s / 12 } else { 0 };
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

    /// Recovers the picture from a PNG of it at any size (rescaled copies and
    /// greyscale copies too): it samples each cell's centre and takes the
    /// nearest palette colour (by luma for a greyscale PNG), and samples a
    /// mark's upper-left quarter.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the PNG does not decode, is smaller than the
    /// grid or larger than
    /// [`MAX_PNG_DECODE_SIDE`](crate::limits::MAX_PNG_DECODE_SIDE) on a
    /// side, or has no orientation mark.
    pub fn decode_png(bytes: &[u8]) -> Result<Self, Error> {
        let bad = Error::Malformed(DecodeError::InvalidValue);
        let mut dec = ::png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(::png::Transformations::normalize_to_color8());
        let side = MAX_PNG_DECODE_SIDE as usize;
        dec.set_limits(::png::Limits {
            bytes: 4 * side * side,
        });
        let mut reader = dec.read_info().map_err(|_| bad.clone())?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width < UNITS_W as u32
            || height < UNITS_H as u32
            || width > MAX_PNG_DECODE_SIDE
            || height > MAX_PNG_DECODE_SIDE
        {
            return Err(bad);
        }
        let size = reader.output_buffer_size().ok_or(bad.clone())?;
        let mut buf = alloc::vec![0u8; size];
        let info = reader.next_frame(&mut buf).map_err(|_| bad.clone())?;
        let channels = match info.color_type {
            ::png::ColorType::Grayscale => 1,
            ::png::ColorType::GrayscaleAlpha => 2,
            ::png::ColorType::Rgb => 3,
            ::png::ColorType::Rgba => 4,
            ::png::ColorType::Indexed => return Err(bad),
        };
        let (w, h) = (info.width as usize, info.height as usize);
        let line = info.line_size;
        let sample = |fx: usize, fy: usize, denom: usize| -> Option<Sample> {
            // Pixel at fraction (fx / denom, fy / denom) of the image.
            let px = fx * w / denom;
            let py = fy * h / denom;
            let at = py
                .checked_mul(line)?
                .checked_add(px.checked_mul(channels)?)?;
            let p = buf.get(at..at + channels)?;
            match p {
                [g] | [g, _] => Some(Sample::Grey(*g)),
                [r, g, b] | [r, g, b, _] => Some(Sample::Rgb([*r, *g, *b])),
                _ => None,
            }
        };
        // Unit (x, y) spans [x, x+1) of UNITS_W; its centre is (2x+1)/(2W),
        // its upper-left quarter point (4x+1)/(4W).
        KeyImage::from_units(
            |x, y| {
                let sx = sample(
                    (4 * x + 1) * UNITS_H,
                    (4 * y + 1) * UNITS_W,
                    4 * UNITS_W * UNITS_H,
                )?;
                Some(is_mark(sx))
            },
            |x, y| {
                let s = sample(
                    (2 * x + 1) * UNITS_H,
                    (2 * y + 1) * UNITS_W,
                    2 * UNITS_W * UNITS_H,
                )?;
                Some(nearest_cell(s))
            },
        )
    }
}
