//! QR codes as small PNG files, built in memory.
//!
//! The PNG rides inline in every mail, so it must be tiny and sharp: a 1-bit grayscale image,
//! whole pixels per module, a 4-module quiet zone and error correction level M. A typical
//! `otpauth://` URI comes out under 1 KB.
//!
//! Both halves are chosen for speed, because in a batch every recipient gets their own code
//! (measured with `cargo bench --bench throughput`, see the README):
//! - the symbol comes from `fast_qr`, which picks the mask by the standard's penalty rules in
//!   about 0.09 ms; the `qrcode` crate took 0.8 ms and `qrcodegen` 0.17–0.26 ms for the same job;
//! - the PNG container is written here (signature, IHDR, one IDAT, IEND) around a zlib stream
//!   from a per-thread `miniz_oxide` compressor that is reset rather than reallocated: the `png`
//!   and `image` encoders allocate ~200 KB of fresh compressor state for every image, and
//!   faulting those pages in cost more than the compression itself. Rows are left unfiltered
//!   and compressed at level 1: each pixel row repeats the one above (a back-reference one
//!   row long), which greedy matching finds at once; measured against the "Up" filter at
//!   level 6 it is twice as fast for the same size.

use std::cell::RefCell;

use fast_qr::{ECL, QRBuilder};
use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};

use crate::secret::Secret;

/// Pixels per QR module.
pub const MODULE_PX: usize = 5;
/// Light modules around the code, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;
/// zlib compression level (miniz: 1 fastest … 9 smallest).
const LEVEL: i32 = 1;

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

/// The text did not fit in a QR code, or compression failed.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The content never appears in the message: it is secret.
    #[error("the QR code content ({len} bytes) is too long for a QR code")]
    TooLong { len: usize },
    #[error("compressing the QR code PNG failed ({0})")]
    Deflate(String),
}

thread_local! {
    static COMPRESSOR: RefCell<CompressorOxide> =
        RefCell::new(CompressorOxide::new(create_comp_flags_from_zip_params(LEVEL, 15, 0)));
}

/// Renders `text` as a QR code PNG.
pub fn render(text: &str) -> Result<QrPng, QrError> {
    let code = QRBuilder::new(text.as_bytes())
        .ecl(ECL::M)
        .build()
        .map_err(|_| QrError::TooLong { len: text.len() })?;
    let modules = code.size;
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    let size_px = u32::try_from(side).map_err(|_| QrError::TooLong { len: text.len() })?;
    let row_bytes = side.div_ceil(8);

    // One pixel row per module row (1 bit a pixel, MSB first, 1 = white), written MODULE_PX
    // times as PNG scanlines: filter byte 0 ("None"), then the row.
    let mut row = vec![0xffu8; row_bytes];
    let mut raw = zeroize::Zeroizing::new(Vec::with_capacity((row_bytes + 1) * side));
    let push_row = |row: &[u8], raw: &mut Vec<u8>| {
        raw.push(0);
        raw.extend_from_slice(row);
    };
    for y in 0..modules + 2 * QUIET_ZONE {
        row.fill(0xff);
        if (QUIET_ZONE..QUIET_ZONE + modules).contains(&y) {
            for (x, module) in code[y - QUIET_ZONE].iter().enumerate() {
                if module.value() {
                    let px0 = (x + QUIET_ZONE) * MODULE_PX;
                    for px in px0..px0 + MODULE_PX {
                        row[px / 8] &= !(0x80 >> (px % 8));
                    }
                }
            }
        }
        for _ in 0..MODULE_PX {
            push_row(&row, &mut raw);
        }
    }
    row.iter_mut().for_each(|b| *b = 0);

    let idat = zlib(&raw)?;
    let mut png = Vec::with_capacity(idat.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&size_px.to_be_bytes());
    ihdr[4..8].copy_from_slice(&size_px.to_be_bytes());
    ihdr[8] = 1; // bit depth
    ihdr[9] = 0; // grayscale
    // compression 0 (deflate), filter method 0, interlace 0
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    Ok(QrPng {
        png: Secret::new(png),
        size_px,
    })
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// A zlib stream of `data`, from this thread's reusable compressor.
fn zlib(data: &[u8]) -> Result<Vec<u8>, QrError> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = vec![0u8; data.len() / 2 + 128];
        let mut read = 0;
        let mut written = 0;
        loop {
            let (status, r, w) = compress(
                &mut c,
                &data[read..],
                &mut out[written..],
                TDEFLFlush::Finish,
            );
            read += r;
            written += w;
            match status {
                TDEFLStatus::Done => {
                    out.truncate(written);
                    return Ok(out);
                }
                TDEFLStatus::Okay => out.resize(out.len() * 2, 0),
                other => return Err(QrError::Deflate(format!("{other:?}"))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = dec.read_info().unwrap();
        let info = reader.info().clone();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        (info.width as usize, info.height as usize, buf)
    }

    fn decode(png_bytes: &[u8]) -> String {
        let (w, h, buf) = pixels(png_bytes);
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
        // Twice on the same thread: the reused compressor starts clean.
        let again = render("7KQ2-9XMD-4HTP").unwrap();
        assert_eq!(decode(again.png.expose()), "7KQ2-9XMD-4HTP");
    }

    #[test]
    fn typical_uri_png_is_under_1kb() {
        let qr = render(URI).unwrap();
        let n = qr.png.expose().len();
        assert!(n < 1024, "PNG is {n} bytes");
        // Whatever the (random) secret.
        let params = crate::otp::OtpParams {
            algorithm: crate::otp::OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        };
        for _ in 0..200 {
            let key = crate::otp::OtpKey::generate(params, "Example", "alice@example.org").unwrap();
            let n = render(key.uri().unwrap().expose())
                .unwrap()
                .png
                .expose()
                .len();
            assert!(n < 1024, "PNG is {n} bytes");
        }
        // A long address and issuer need a bigger symbol; still small.
        let key = crate::otp::OtpKey::generate(
            params,
            "Example Corporation",
            "firstname.lastname@subdomain.example.org",
        )
        .unwrap();
        let n = render(key.uri().unwrap().expose())
            .unwrap()
            .png
            .expose()
            .len();
        assert!(n < 1536, "PNG is {n} bytes");
    }

    #[test]
    fn quiet_zone_is_white_and_modules_are_whole_pixels() {
        let qr = render("7KQ2-9XMD-4HTP").unwrap();
        let (w, h, buf) = pixels(qr.png.expose());
        assert_eq!((w, h), (qr.size_px as usize, qr.size_px as usize));
        assert_eq!(w % MODULE_PX, 0);
        let stride = w.div_ceil(8);
        let at = |x: usize, y: usize| buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0;
        for y in 0..h {
            for x in 0..w {
                let in_quiet = x < QUIET_ZONE * MODULE_PX
                    || y < QUIET_ZONE * MODULE_PX
                    || x >= w - QUIET_ZONE * MODULE_PX
                    || y >= h - QUIET_ZONE * MODULE_PX;
                if in_quiet {
                    assert!(at(x, y), "quiet zone pixel ({x},{y}) is dark");
                }
                // Every pixel equals the top-left pixel of its module.
                assert_eq!(at(x, y), at(x - x % MODULE_PX, y - y % MODULE_PX));
            }
        }
        // The top-left finder pattern starts dark right after the quiet zone.
        assert!(!at(QUIET_ZONE * MODULE_PX, QUIET_ZONE * MODULE_PX));
    }

    #[test]
    fn overlong_text_is_an_error_without_the_text() {
        let long = "x".repeat(5000);
        let e = render(&long).unwrap_err();
        assert!(!e.to_string().contains("xxxx"));
    }
}
