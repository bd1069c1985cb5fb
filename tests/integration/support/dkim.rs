//! A DKIM verifier (RFC 6376 with RFC 8463's Ed25519), written here from the RFCs so that the
//! test does not take lettre's word for its own signatures: canonicalization, body hash, header
//! selection and the signature check are all done independently.

use super::{base64 as base64_encode, base64_decode as b64};
use sha2_010::{Digest, Sha256};

/// Header fields as (name, full field including continuation lines, without the final CRLF).
fn headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().expect("continuation without field");
            last.1.push_str("\r\n");
            last.1.push_str(line);
        } else {
            let name = line.split(':').next().unwrap().to_string();
            fields.push((name, line.to_string()));
        }
    }
    (fields, body)
}

fn collapse_wsp(s: &str) -> String {
    let mut out = String::new();
    let mut in_ws = false;
    for c in s.chars() {
        if c == ' ' || c == '\t' {
            in_ws = true;
        } else {
            if in_ws {
                out.push(' ');
            }
            in_ws = false;
            out.push(c);
        }
    }
    if in_ws {
        out.push(' ');
    }
    out
}

/// RFC 6376 §3.4.2.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap();
    let unfolded = value.replace("\r\n", "");
    format!(
        "{}:{}",
        name.trim().to_lowercase(),
        collapse_wsp(&unfolded).trim()
    )
}

/// RFC 6376 §3.4.4 (relaxed) / §3.4.3 (simple).
fn canonical_body(body: &str, relaxed: bool) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|l| {
            if relaxed {
                collapse_wsp(l).trim_end().to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return if relaxed {
            String::new()
        } else {
            "\r\n".into()
        };
    }
    lines.join("\r\n") + "\r\n"
}

/// Verifies the DKIM-Signature of `raw` against the TXT record `txt` (`v=DKIM1; k=…; p=…`).
pub fn verify(raw: &[u8], txt: &str) -> Result<(), String> {
    let raw = std::str::from_utf8(raw).map_err(|_| "message is not UTF-8")?;
    let (fields, body) = headers(raw);
    let sig_field = fields
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
        .ok_or("no DKIM-Signature")?
        .1
        .clone();
    let tags: Vec<(String, String)> = sig_field
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect();
    let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
    let c = tag("c").unwrap_or_else(|| "simple/simple".into());
    let (hc, bc) = c.split_once('/').unwrap_or((&c, "simple"));
    if hc != "relaxed" {
        return Err(format!("header canonicalization {hc} not implemented here"));
    }
    // Body hash.
    let bh = base64_encode(&Sha256::digest(
        canonical_body(body, bc == "relaxed").as_bytes(),
    ));
    if Some(bh.clone()) != tag("bh") {
        return Err(format!(
            "body hash mismatch: computed {bh}, signed {:?}",
            tag("bh")
        ));
    }
    // Signed headers, each taken from the bottom up.
    let mut used = vec![false; fields.len()];
    let mut data = String::new();
    for name in tag("h").ok_or("no h=")?.split(':') {
        if let Some(i) = (0..fields.len()).rev().find(|&i| {
            !used[i]
                && fields[i].0.eq_ignore_ascii_case(name)
                && !fields[i].0.eq_ignore_ascii_case("DKIM-Signature")
        }) {
            used[i] = true;
            data.push_str(&relaxed_header(&fields[i].1));
            data.push_str("\r\n");
        }
    }
    // The signature field itself, with b= emptied, without a final CRLF.
    let b_start = sig_field.find("b=").ok_or("no b=")?;
    let rest = &sig_field[b_start..];
    let b_end = rest.find(';').map_or(sig_field.len(), |i| b_start + i);
    let mut unsigned = sig_field.clone();
    unsigned.replace_range(b_start + 2..b_end, "");
    // "b=" may also match "bh=": make sure we emptied b= and not bh=.
    if sig_field[..b_start].ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("ambiguous b= position".into());
    }
    data.push_str(&relaxed_header(&unsigned));
    let signature = b64(&tag("b").ok_or("no b=")?);
    let record: Vec<(&str, &str)> = txt
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let p = b64(record
        .iter()
        .find(|(k, _)| *k == "p")
        .ok_or("no p= in record")?
        .1);
    match tag("a").as_deref() {
        Some("rsa-sha256") => {
            use rsa::pkcs8::DecodePublicKey;
            let key = rsa::RsaPublicKey::from_public_key_der(&p).map_err(|e| e.to_string())?;
            let hash = Sha256::digest(data.as_bytes());
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
                .map_err(|e| format!("RSA signature does not verify: {e}"))
        }
        Some("ed25519-sha256") => {
            let key = ed25519_dalek::VerifyingKey::from_bytes(
                &p.as_slice().try_into().map_err(|_| "bad key length")?,
            )
            .map_err(|e| e.to_string())?;
            let sig =
                ed25519_dalek::Signature::from_slice(&signature).map_err(|e| e.to_string())?;
            let hash = Sha256::digest(data.as_bytes());
            key.verify_strict(&hash, &sig)
                .map_err(|e| format!("Ed25519 signature does not verify: {e}"))
        }
        other => Err(format!("algorithm {other:?} not implemented here")),
    }
}
