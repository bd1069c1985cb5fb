//! Process exit codes.
//!
//! securemail follows `sysexits.h`, as msmtp does, so that scripts and MTAs that pipe into it can
//! tell "try again later" from "this will never work" without parsing text. The table is repeated
//! in the README; keep the two in step.

/// Everything worked (or the code was accepted).
pub const OK: u8 = 0;
/// The code was refused: wrong, expired, already used, locked, revoked or never issued.
pub const REFUSED: u8 = 1;
/// The command line was wrong (EX_USAGE).
pub const USAGE: u8 = 64;
/// Input data was wrong: an address, a name, a template, a list or message file (EX_DATAERR).
pub const DATAERR: u8 = 65;
/// An input file named on the command line does not exist or cannot be read (EX_NOINPUT).
pub const NOINPUT: u8 = 66;
/// The server refused permanently (5xx) or lacks something we require, e.g. STARTTLS (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;
/// An internal error: a bug, please report it (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// A file or database securemail would create holds something already: `init` and `templates
/// export` over existing files, `store migrate` into a database with records (EX_CANTCREAT).
pub const CANTCREAT: u8 = 73;
/// Local I/O failed: the store, the key file or the outbox (EX_IOERR).
pub const IOERR: u8 = 74;
/// A temporary failure: connect, timeout, 4xx, dropped connection, busy store; retry later (EX_TEMPFAIL).
pub const TEMPFAIL: u8 = 75;
/// The server broke the SMTP protocol, e.g. bytes injected after STARTTLS (EX_PROTOCOL).
pub const PROTOCOL: u8 = 76;
/// TLS or authentication failed: untrusted or mismatched certificate, old TLS, refused login (EX_NOPERM).
pub const NOPERM: u8 = 77;
/// The configuration is wrong (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// A batch stopped at Ctrl-C (SIGINT) after finishing its mails in flight: 128 + 2, as shells
/// report a command ended by SIGINT. Running the same command again sends to the rest.
pub const INTERRUPTED: u8 = 130;
