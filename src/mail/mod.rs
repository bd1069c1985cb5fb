//! The mail itself: who it goes to ([`recipient`]), what it says ([`template`]), its QR code
//! ([`qr`]), its MIME shape ([`mime`]) and its DKIM signature ([`dkim`]).
//!
//! This module builds bytes; it never talks to a server or the store.

pub mod dkim;
pub mod error;
pub mod mime;
pub mod qr;
pub mod recipient;
pub mod template;

pub use error::MailError;
pub use mime::{Code, Composed, Kit, Mail, compose};
pub use recipient::Recipient;
