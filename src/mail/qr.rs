//! QR codes as small PNG files, built in memory.
//!
//! The PNG rides inline in every mail, so it must be small and sharp: whole pixels per module,
//! a 4-module quiet zone and error correction level M. A typical `otpauth://` URI comes out
//! under 1 KB.
//!
//! Both halves come from the crates the design names rather than from code of our own: the
//! symbol from `qrcode` (segments optimised, the mask chosen by the standard's penalty rules),
//! rendered into an `image` buffer and written by `image`'s PNG encoder. That is slower than the
//! hand-tuned `fast_qr` symbol and hand-written 1-bit PNG this module used to have (building a
//! whole enrolment mail went from 0.12 ms to about 1.1 ms, `cargo bench --bench throughput`, see
//! the README); most of it is scoring the eight masks (~0.5 ms). A batch builds one code per
//! recipient, and even so that is about 900 mails a second per core, invisible next to the rate
//! any SMTP provider accepts (Google Workspace: 2 000 mails a day).
//!
//! `image` 0.25 writes 8-bit grayscale, not 1-bit. At 4 px a module, deflate level 3 with the
//! adaptive row filter gives about 1.1 KB for a typical URI in ~0.2 ms; level 7 unfiltered is
//! 0.8 KB but twice as slow, and the `Fast` mode is quicker still but twice the size (measured
//! with the typical URI in `tests`, 200 rounds each).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Luma};
use qrcode::{EcLevel, QrCode};

use crate::secret::Secret;

/// Pixels per QR module.
pub const MODULE_PX: u32 = 4;
/// Light modules around the code, as the QR standard asks (and `qrcode` draws for a full-size
/// symbol).
pub const QUIET_ZONE: u32 = 4;

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

/// The text did not fit in a QR code, or the PNG could not be written. The content never
/// appears in a message: it is secret.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the QR code content ({len} bytes) is too long for a QR code")]
    TooLong { len: usize },
    #[error("building the QR code failed ({0})")]
    Symbol(qrcode::types::QrError),
    #[error("encoding the QR code PNG failed ({0})")]
    Png(#[from] image::ImageError),
}

/// Renders `text` as a QR code PNG.
pub fn render(text: &str) -> Result<QrPng, QrError> {
    let code =
        QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| match e {
            qrcode::types::QrError::DataTooLong => QrError::TooLong { len: text.len() },
            other => QrError::Symbol(other),
        })?;
    let image = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .build();
    let (width, height) = image.dimensions();
    // The pixels show the secret too: wiped once encoded.
    let pixels = zeroize::Zeroizing::new(image.into_raw());

    let mut png = Vec::with_capacity(4096);
    PngEncoder::new_with_quality(&mut png, CompressionType::Level(3), FilterType::Adaptive)
        .write_image(&pixels, width, height, ExtendedColorType::L8)?;
    Ok(QrPng {
        png: Secret::new(png),
        size_px: width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: usize = MODULE_PX as usize;
    const Q: usize = QUIET_ZONE as usize;

    /// Width, height and one byte a pixel, decoded with the `png` crate.
    fn pixels(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = dec.read_info().unwrap();
        let info = reader.info().clone();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        (info.width as usize, info.height as usize, buf)
    }

    fn decode(png_bytes: &[u8]) -> String {
        let (w, h, buf) = pixels(png_bytes);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    const URI: &str = "otpauth://totp/Example%20Org:alice%40example.org?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example%20Org";

    fn png_len(issuer: &str, account: &str) -> usize {
        let params = crate::otp::OtpParams {
            algorithm: crate::otp::OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        let key = crate::otp::OtpKey::generate(params, issuer, account).unwrap();
        let uri = key.uri().unwrap();
        let qr = render(uri.expose()).unwrap();
        assert_eq!(decode(qr.png.expose()), *uri.expose());
        qr.png.expose().len()
    }

    #[test]
    fn png_decodes_back_to_the_text() {
        let qr = render(URI).unwrap();
        assert_eq!(decode(qr.png.expose()), URI);
        let again = render("7KQ2-9XMD-4HTP").unwrap();
        assert_eq!(decode(again.png.expose()), "7KQ2-9XMD-4HTP");
    }

    #[test]
    fn typical_uri_png_is_under_2_5_kb() {
        let n = render(URI).unwrap().png.expose().len();
        assert!(n < 2560, "PNG is {n} bytes");
        // Whatever the (random) secret; each one also decodes back.
        for _ in 0..200 {
            let n = png_len("Example Org", "alice@example.org");
            assert!(n < 2560, "PNG is {n} bytes");
        }
        // A long address and issuer need a bigger symbol; still small.
        let n = png_len(
            "Example Corporation",
            "firstname.lastname@subdomain.example.org",
        );
        assert!(n < 2560, "PNG is {n} bytes");
    }

    #[test]
    fn quiet_zone_is_white_and_modules_are_whole_pixels() {
        let qr = render("7KQ2-9XMD-4HTP").unwrap();
        let (w, h, buf) = pixels(qr.png.expose());
        assert_eq!((w, h), (qr.size_px as usize, qr.size_px as usize));
        assert_eq!(w % M, 0);
        let at = |x: usize, y: usize| match buf[y * w + x] {
            255 => true,
            0 => false,
            other => panic!("pixel ({x},{y}) is gray ({other})"),
        };
        for y in 0..h {
            for x in 0..w {
                let in_quiet = x < Q * M || y < Q * M || x >= w - Q * M || y >= h - Q * M;
                if in_quiet {
                    assert!(at(x, y), "quiet zone pixel ({x},{y}) is dark");
                }
                // Every pixel equals the top-left pixel of its module.
                assert_eq!(at(x, y), at(x - x % M, y - y % M));
            }
        }
        // The top-left finder pattern starts dark right after the quiet zone.
        assert!(!at(Q * M, Q * M));
        // A version 1 symbol is 21 modules.
        assert_eq!(w, (21 + 2 * Q) * M);
    }

    #[test]
    fn overlong_text_is_an_error_without_the_text() {
        let long = "x".repeat(5000);
        let e = render(&long).unwrap_err();
        assert!(matches!(e, QrError::TooLong { len: 5000 }), "{e:?}");
        assert!(!e.to_string().contains("xxxx"));
    }
}
