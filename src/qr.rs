//! QR codes as small PNG files, built in memory.
//!
//! The PNG rides inline in every mail, so it must be tiny and sharp: a 1-bit grayscale image,
//! whole pixels per module, a 4-module quiet zone and error correction level M. A typical
//! `otpauth://` URI comes out well under 1 KB. The bitmap is drawn straight from `qrcode`'s
//! module grid and encoded with `png` (the encoder behind the `image` crate, which has no
//! 1-bit writer of its own).

use qrcode::{Color, EcLevel, QrCode};

use crate::secret::Secret;

/// Pixels per QR module.
pub const MODULE_PX: usize = 5;
/// Light modules around the code, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;

/// A QR code rendered as a PNG.
pub struct QrPng {
    /// The PNG file's bytes. It encodes a secret, hence the wrapper.
    pub png: Secret<Vec<u8>>,
    /// Width and height in pixels.
    pub size_px: u32,
}

impl std::fmt::Debug for QrPng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrPng")
            .field("bytes", &self.png.expose().len())
            .field("size_px", &self.size_px)
            .finish()
    }
}

/// The text did not fit in a QR code, or PNG encoding failed.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The content never appears in the message: it is secret.
    #[error("the QR code content ({len} bytes) is too long for a QR code")]
    TooLong { len: usize },
    #[error("PNG encoding of the QR code failed: {0}")]
    Png(String),
}

/// Renders `text` as a QR code PNG.
pub fn render(text: &str) -> Result<QrPng, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrError::TooLong { len: text.len() })?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    let row_bytes = side.div_ceil(8);

    // 1 bit a pixel, MSB first; 1 is white. Start all white, then clear the dark modules.
    let mut pixels = zeroize::Zeroizing::new(vec![0xffu8; row_bytes * side]);
    for (y, row) in colors.chunks(modules).enumerate() {
        for (x, &color) in row.iter().enumerate() {
            if color != Color::Dark {
                continue;
            }
            let px0 = (x + QUIET_ZONE) * MODULE_PX;
            let py0 = (y + QUIET_ZONE) * MODULE_PX;
            for py in py0..py0 + MODULE_PX {
                let line = &mut pixels[py * row_bytes..(py + 1) * row_bytes];
                for px in px0..px0 + MODULE_PX {
                    line[px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
    }

    let size_px = u32::try_from(side).map_err(|_| QrError::TooLong { len: text.len() })?;
    let mut out = Vec::with_capacity(1024);
    {
        let mut enc = png::Encoder::new(&mut out, size_px, size_px);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::High);
        enc.set_filter(png::Filter::Up);
        let mut writer = enc
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(QrPng {
        png: Secret::new(out),
        size_px,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> String {
        let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = dec.read_info().unwrap();
        let info = reader.info().clone();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let stride = w.div_ceil(8);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
                255
            } else {
                0
            }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    const URI: &str = "otpauth://totp/Example:alice%40example.org?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example";

    #[test]
    fn png_decodes_back_to_the_text() {
        let qr = render(URI).unwrap();
        assert_eq!(decode(qr.png.expose()), URI);
    }

    #[test]
    fn typical_uri_png_is_under_1kb() {
        let qr = render(URI).unwrap();
        let n = qr.png.expose().len();
        assert!(n < 1024, "PNG is {n} bytes");
    }

    #[test]
    fn quiet_zone_is_white() {
        let qr = render("7KQ2-9XMD-4HTP").unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(qr.png.expose().as_slice()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let stride = (qr.size_px as usize).div_ceil(8);
        // The first QUIET_ZONE * MODULE_PX rows are all white.
        for y in 0..QUIET_ZONE * MODULE_PX {
            for x in 0..qr.size_px as usize {
                assert_ne!(buf[y * stride + x / 8] & (0x80 >> (x % 8)), 0, "({x},{y})");
            }
        }
    }

    #[test]
    fn overlong_text_is_an_error_without_the_text() {
        let long = "x".repeat(5000);
        let e = render(&long).unwrap_err();
        assert!(!e.to_string().contains("xxxx"));
    }
}
