//! Real-shaped replies, one table: prose around the code, each common client's quote in six
//! languages and a few more found by shape alone, HTML-only replies, auto-replies and bounces,
//! forged or doubled senders. Each row sends a real key or TOTP enrolment to its own recipient
//! (read back from the outbox), replies with `reply --message`, and checks both the verdict and
//! the attempts the store counted (through `status --json`).

use crate::support::{self, Env, decode_mail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Otp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// A well-formed but wrong code: refused, one attempt.
    Wrong,
    /// Nothing to try (no code, a typo, several codes): exit 65, no attempt.
    NoCode,
    /// Set aside into this Maildir folder: exit 65, no attempt.
    SetAside(&'static str),
    /// From someone else (no record of theirs): exit 1, the recipient's record untouched.
    NotTheirs,
    /// Not an email message at all: exit 65, no attempt.
    Malformed,
}

/// What a row's reply is built from.
struct Ctx {
    to: String,
    /// The key as printed, or the current TOTP code.
    code: String,
    message_id: String,
    /// The original mail's text part.
    text: String,
    subject: String,
}

type Build = Box<dyn Fn(&Ctx) -> Vec<u8>>;

struct Row {
    name: String,
    kind: Kind,
    build: Build,
    expect: Verdict,
}

fn row(name: &str, kind: Kind, expect: Verdict, build: impl Fn(&Ctx) -> Vec<u8> + 'static) -> Row {
    Row {
        name: name.into(),
        kind,
        build: Box::new(build),
        expect,
    }
}

/// A reply from the recipient: extra headers, a content type, and the body.
fn mail(c: &Ctx, headers: &str, content_type: &str, body: &str) -> Vec<u8> {
    let from = if headers.contains("From:") {
        String::new()
    } else {
        format!("From: Recipient <{}>\r\n", c.to)
    };
    format!(
        "{from}{headers}To: Example Admin <admin@example.org>\r\nSubject: Re: {}\r\n\
         Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <r.{}@example.net>\r\n\
         In-Reply-To: {mid}\r\nReferences: {mid}\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
        c.subject,
        c.to.replace('@', "."),
        body.replace('\n', "\r\n"),
        mid = c.message_id,
    )
    .into_bytes()
}

fn plain(c: &Ctx, body: &str) -> Vec<u8> {
    mail(c, "", "text/plain; charset=utf-8", body)
}

fn html(c: &Ctx, body: &str) -> Vec<u8> {
    mail(
        c,
        "",
        "text/html; charset=utf-8",
        &format!("<html><head><style>div {{ margin: 0 }}</style></head><body>{body}</body></html>"),
    )
}

/// The original, each line prefixed with `> `.
fn quoted(text: &str) -> String {
    text.lines().map(|l| format!("> {l}\n")).collect()
}

/// The original as an HTML fragment.
fn as_html(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            if l.trim().is_empty() {
                "<div><br></div>".to_string()
            } else {
                format!("<div>{l}</div>")
            }
        })
        .collect()
}

const LANGS: [&str; 6] = ["en", "de", "fr", "es", "nl", "pt"];

/// What a person types above the quote in each language; `{}` is the code.
fn typed(lang: &str) -> &'static str {
    match lang {
        "en" => "Hi,\n\nHere is the key: {}\n\nThanks,\nRecipient",
        "de" => "Hallo,\n\nhier ist der Schlüssel: {}\n\nViele Grüße\nEmpfänger",
        "fr" => "Bonjour,\n\nvoici la clé : {}\n\nCordialement,\nDestinataire",
        "es" => "Hola,\n\naquí está la clave: {}\n\nSaludos,\nDestinatario",
        "nl" => "Hallo,\n\nhier is de sleutel: {}\n\nMet vriendelijke groet,\nOntvanger",
        _ => "Olá,\n\naqui está a chave: {}\n\nAtenciosamente,\nDestinatário",
    }
}

/// A reply that types no code at all.
fn thanks(lang: &str) -> &'static str {
    match lang {
        "en" => "Thanks, got it! Dear Example Admin, here is the key you asked for below.",
        "de" => "Danke, erhalten! Hier ist der Schlüssel, siehe unten.",
        "fr" => "Merci, bien reçu ! La clé est ci-dessous.",
        "es" => "Gracias, recibido. La clave está abajo.",
        "nl" => "Bedankt, ontvangen! De sleutel staat hieronder.",
        _ => "Obrigado, recebido! A chave está abaixo.",
    }
}

fn gmail_attribution(lang: &str) -> &'static str {
    match lang {
        "en" => "On Tue, Nov 24, 2026 at 11:00 AM Example Admin <admin@example.org> wrote:",
        "de" => "Am Di., 24. Nov. 2026 um 11:00 Uhr schrieb Example Admin <admin@example.org>:",
        "fr" => "Le mar. 24 nov. 2026 à 11:00, Example Admin <admin@example.org> a écrit :",
        "es" => "El mar, 24 nov 2026 a las 11:00, Example Admin (<admin@example.org>) escribió:",
        "nl" => "Op di 24 nov 2026 om 11:00 schreef Example Admin <admin@example.org>:",
        _ => "Em ter., 24 de nov. de 2026 às 11:00, Example Admin <admin@example.org> escreveu:",
    }
}

fn apple_attribution(lang: &str) -> &'static str {
    match lang {
        "en" => "On 24 Nov 2026, at 11:00, Example Admin <admin@example.org> wrote:",
        "de" => "Am 24.11.2026 um 11:00 schrieb Example Admin <admin@example.org>:",
        "fr" => "Le 24 nov. 2026 à 11:00, Example Admin <admin@example.org> a écrit :",
        "es" => "El 24 nov 2026, a las 11:00, Example Admin <admin@example.org> escribió:",
        "nl" => {
            "Op 24 nov. 2026 om 11:00 heeft Example Admin <admin@example.org> het volgende geschreven:"
        }
        _ => "Em 24 de nov. de 2026, à(s) 11:00, Example Admin <admin@example.org> escreveu:",
    }
}

fn k9_attribution(lang: &str) -> &'static str {
    match lang {
        "en" => {
            "On November 24, 2026 11:00:00 AM GMT+01:00, Example Admin <admin@example.org> wrote:"
        }
        "de" => "Am 24. November 2026 11:00:00 MEZ schrieb Example Admin <admin@example.org>:",
        "fr" => {
            "Le 24 novembre 2026 11:00:00 GMT+01:00, Example Admin <admin@example.org> a écrit :"
        }
        "es" => {
            "El 24 de noviembre de 2026 11:00:00 CET, Example Admin <admin@example.org> escribió:"
        }
        "nl" => "Op 24 november 2026 11:00:00 CET schreef Example Admin <admin@example.org>:",
        _ => "Em 24 de novembro de 2026 11:00:00 BRT, Example Admin <admin@example.org> escreveu:",
    }
}

/// Outlook's header block labels: From, Sent, To, Subject; and the date as it writes it.
fn outlook_labels(lang: &str) -> [&'static str; 5] {
    match lang {
        "en" => [
            "From",
            "Sent",
            "To",
            "Subject",
            "Tuesday, November 24, 2026 11:00 AM",
        ],
        "de" => [
            "Von",
            "Gesendet",
            "An",
            "Betreff",
            "Dienstag, 24. November 2026 11:00",
        ],
        "fr" => [
            "De ",
            "Envoyé ",
            "À ",
            "Objet ",
            "mardi 24 novembre 2026 11:00",
        ],
        "es" => [
            "De",
            "Enviado",
            "Para",
            "Asunto",
            "martes, 24 de noviembre de 2026 11:00",
        ],
        "nl" => [
            "Van",
            "Verzonden",
            "Aan",
            "Onderwerp",
            "dinsdag 24 november 2026 11:00",
        ],
        _ => [
            "De",
            "Enviado",
            "Para",
            "Assunto",
            "terça-feira, 24 de novembro de 2026 11:00",
        ],
    }
}

fn thunderbird_separator(lang: &str) -> &'static str {
    match lang {
        "en" => "-------- Original Message --------",
        "de" => "-------- Ursprüngliche Nachricht --------",
        "fr" => "-------- Message original --------",
        "es" => "-------- Mensaje original --------",
        "nl" => "-------- Oorspronkelijk bericht --------",
        _ => "-------- Mensagem original --------",
    }
}

fn thunderbird_attribution(lang: &str) -> &'static str {
    match lang {
        "en" => "On 11/24/26 11:00 AM, Example Admin wrote:",
        "de" => "Am 24.11.26 um 11:00 schrieb Example Admin:",
        "fr" => "Le 24/11/2026 à 11:00, Example Admin a écrit :",
        "es" => "El 24/11/26 a las 11:00, Example Admin escribió:",
        "nl" => "Op 24-11-2026 om 11:00 schreef Example Admin:",
        _ => "Em 24/11/2026 11:00, Example Admin escreveu:",
    }
}

/// The typed part: the code in the language's prose, or nothing but thanks.
fn fresh(c: &Ctx, lang: &str, with_code: bool) -> String {
    if with_code {
        typed(lang).replace("{}", &c.code)
    } else {
        thanks(lang).to_string()
    }
}

/// Each client's quote style in each language, once with the code typed above it (accepted)
/// and once with nothing typed (the quoted key must not count).
fn client_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for lang in LANGS {
        for with_code in [true, false] {
            let expect = if with_code {
                Verdict::Accepted
            } else {
                Verdict::NoCode
            };
            let tag = if with_code { "typed" } else { "nothing typed" };
            rows.push(row(
                &format!("Gmail {lang}, {tag}"),
                Kind::Key,
                expect,
                move |c| {
                    plain(
                        c,
                        &format!(
                            "{}\n\n{}\n\n{}",
                            fresh(c, lang, with_code),
                            gmail_attribution(lang),
                            quoted(&c.text)
                        ),
                    )
                },
            ));
            rows.push(row(&format!("Apple Mail HTML {lang}, {tag}"), Kind::Key, expect, move |c| {
                html(c, &format!(
                    "<div dir=\"auto\">{}</div><div dir=\"ltr\"><br><blockquote type=\"cite\">{}<br><br>{}</blockquote></div>",
                    as_html(&fresh(c, lang, with_code)),
                    apple_attribution(lang).replace('<', "&lt;").replace('>', "&gt;"),
                    as_html(&c.text)
                ))
            }));
            rows.push(row(&format!("Outlook desktop {lang}, {tag}"), Kind::Key, expect, move |c| {
                let [from, sent, to, subject, date] = outlook_labels(lang);
                plain(c, &format!(
                    "{}\n\n________________________________\n{from}: Example Admin <admin@example.org>\n{sent}: {date}\n\
                     {to}: Recipient <{}>\n{subject}: {}\n\n{}",
                    fresh(c, lang, with_code), c.to, c.subject, c.text
                ))
            }));
            rows.push(row(&format!("Outlook web {lang}, {tag}"), Kind::Key, expect, move |c| {
                let [from, sent, to, subject, date] = outlook_labels(lang);
                html(c, &format!(
                    "<div style=\"font-family: Aptos\">{}</div><div id=\"appendonsend\"></div>\
                     <hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\
                     <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri\"><b>{from}:</b> Example Admin &lt;admin@example.org&gt;<br>\
                     <b>{sent}:</b> {date}<br><b>{to}:</b> Recipient &lt;{}&gt;<br><b>{subject}:</b> {}</font><div>&nbsp;</div></div>{}",
                    as_html(&fresh(c, lang, with_code)), c.to, c.subject, as_html(&c.text)
                ))
            }));
            // Thunderbird's "Original Message" header, the original not `>`-quoted under it.
            rows.push(row(&format!("Thunderbird {lang}, {tag}"), Kind::Key, expect, move |c| {
                plain(c, &format!(
                    "{}\n\n{}\nSubject: {}\nDate: Tue, 24 Nov 2026 11:00:00 +0000\nFrom: Example Admin <admin@example.org>\nTo: {}\n\n{}",
                    fresh(c, lang, with_code), thunderbird_separator(lang), c.subject, c.to, c.text
                ))
            }));
            rows.push(row(
                &format!("K-9 {lang}, {tag}"),
                Kind::Key,
                expect,
                move |c| {
                    plain(
                        c,
                        &format!(
                            "{}\n\n{}\n{}",
                            fresh(c, lang, with_code),
                            k9_attribution(lang),
                            quoted(&c.text)
                        ),
                    )
                },
            ));
        }
        // Thunderbird's attribution style: plain with `>`, and HTML with moz-cite-prefix.
        rows.push(row(
            &format!("Thunderbird attribution {lang}, nothing typed"),
            Kind::Key,
            Verdict::NoCode,
            move |c| {
                plain(
                    c,
                    &format!(
                        "{}\n\n{}\n{}",
                        thanks(lang),
                        thunderbird_attribution(lang),
                        quoted(&c.text)
                    ),
                )
            },
        ));
        rows.push(row(&format!("Thunderbird HTML {lang}, typed"), Kind::Key, Verdict::Accepted, move |c| {
            html(c, &format!(
                "<p>{}</p><div class=\"moz-cite-prefix\">{}<br></div><blockquote type=\"cite\" cite=\"mid:x@example.org\">{}</blockquote>",
                as_html(&fresh(c, lang, true)), thunderbird_attribution(lang), as_html(&c.text)
            ))
        }));
    }
    rows
}

/// Languages securemail has no words for: their quotes are found by shape.
fn shape_rows() -> Vec<Row> {
    let attributions = [
        (
            "Japanese Gmail",
            "2026年11月24日(火) 11:00 Example Admin <admin@example.org>:",
        ),
        (
            "Turkish Gmail",
            "Example Admin <admin@example.org>, 24 Kas 2026 Sal, 11:00 tarihinde şunu yazdı:",
        ),
        (
            "Hungarian Gmail",
            "Example Admin <admin@example.org> ezt írta (időpont: 2026. nov. 24., K, 11:00):",
        ),
        (
            "Korean Gmail",
            "2026년 11월 24일 (화) 오전 11:00, Example Admin <admin@example.org>님이 작성:",
        ),
        (
            "Russian Apple Mail",
            "24 нояб. 2026 г., в 11:00, Example Admin <admin@example.org> написал(а):",
        ),
        (
            "Greek K-9",
            "Στις 24 Νοεμβρίου 2026 11:00:00 π.μ. EET, ο χρήστης Example Admin <admin@example.org> έστειλε:",
        ),
    ];
    let mut rows = Vec::new();
    for (name, attribution) in attributions {
        rows.push(row(
            &format!("{name}, typed"),
            Kind::Key,
            Verdict::Accepted,
            move |c| {
                plain(
                    c,
                    &format!("{}\n\n{attribution}\n\n{}", c.code, quoted(&c.text)),
                )
            },
        ));
        rows.push(row(
            &format!("{name}, nothing typed"),
            Kind::Key,
            Verdict::NoCode,
            move |c| plain(c, &format!("OK!\n\n{attribution}\n\n{}", quoted(&c.text))),
        ));
    }
    // Polish and Swedish Outlook: unknown labels, confirmed by the subject in the block.
    for (name, labels) in [
        ("Polish Outlook", ["Od", "Wysłano", "Do", "Temat"]),
        (
            "Czech Outlook",
            ["Odesílatel", "Odesláno", "Komu", "Předmět"],
        ),
    ] {
        for with_code in [true, false] {
            let expect = if with_code {
                Verdict::Accepted
            } else {
                Verdict::NoCode
            };
            rows.push(row(&format!("{name}, {}", if with_code { "typed" } else { "nothing typed" }), Kind::Key, expect, move |c| {
                let [from, sent, to, subject] = labels;
                plain(c, &format!(
                    "{}\n\n{from}: Example Admin <admin@example.org>\n{sent}: 24.11.2026 11:00\n{to}: {}\n{subject}: {}\n\n{}",
                    if with_code { c.code.as_str() } else { "Dziękuję" }, c.to, c.subject, c.text
                ))
            }));
        }
    }
    rows
}

/// Prose around the code, typos, several codes, TOTP codes.
fn prose_rows() -> Vec<Row> {
    vec![
        row(
            "prose: here is the key",
            Kind::Key,
            Verdict::Accepted,
            |c| plain(c, &format!("Here is the key: {}", c.code)),
        ),
        row(
            "prose: dear admin, my code is",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                plain(
                    c,
                    &format!(
                        "Dear Example Admin,\n\nmy code is {}.\n\nBest regards,\nRecipient",
                        c.code
                    ),
                )
            },
        ),
        row(
            "prose: lower case, no dashes, in parentheses",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                plain(
                    c,
                    &format!(
                        "Got it (key {}) thanks",
                        c.code.replace('-', "").to_lowercase()
                    ),
                )
            },
        ),
        row(
            "prose: bold and quoted",
            Kind::Key,
            Verdict::Accepted,
            |c| plain(c, &format!("Key: *{}* and \"{}\"", c.code, c.code)),
        ),
        row(
            "prose: groups with spaces on their own line",
            Kind::Key,
            Verdict::Accepted,
            |c| plain(c, &format!("Here:\n{}\n", c.code.replace('-', " "))),
        ),
        row("prose: no key at all", Kind::Key, Verdict::NoCode, |c| {
            plain(c, "Here is the key")
        }),
        row(
            "prose: dear example admin, no key",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                plain(
                    c,
                    "Dear Example Admin,\n\nwhich key do you mean? I did not receive it.\n\nRecipient",
                )
            },
        ),
        row(
            "prose: one symbol mistyped",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                let mut k: Vec<char> = c.code.chars().collect();
                k[1] = if k[1] == '7' { '8' } else { '7' };
                plain(c, &format!("Key: {}", k.into_iter().collect::<String>()))
            },
        ),
        row(
            "prose: two symbols swapped",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                let mut k: Vec<char> = c.code.chars().collect();
                let i = (0..k.len() - 1)
                    .find(|&i| k[i] != k[i + 1] && k[i] != '-' && k[i + 1] != '-')
                    .unwrap();
                k.swap(i, i + 1);
                plain(c, &format!("Key: {}", k.into_iter().collect::<String>()))
            },
        ),
        row(
            "prose: a well-formed wrong key",
            Kind::Key,
            Verdict::Wrong,
            |c| {
                plain(
                    c,
                    &format!("Key: {}", support::well_formed_key("ZZZZ-YYYY-XXXX")),
                )
            },
        ),
        row(
            "prose: two different keys",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                plain(
                    c,
                    &format!(
                        "Either {} or {}?",
                        c.code,
                        support::well_formed_key("ZZZZ-YYYY-XXXX")
                    ),
                )
            },
        ),
        row(
            "prose: the same key twice, signature after",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                plain(
                    c,
                    &format!(
                        "{0}\n(again: {0})\n\nSent from my iPhone\n\n{1}",
                        c.code,
                        quoted(&c.text)
                    ),
                )
            },
        ),
        row(
            "HTML-only: key on its own block line",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                html(
                    c,
                    &format!(
                        "<div>Here is the key:</div><div>{}</div><div>Regards</div>",
                        c.code
                    ),
                )
            },
        ),
        row(
            "HTML-only Gmail: nothing typed",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                html(
                    c,
                    &format!(
                        "<div dir=\"ltr\">Thanks!</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">{}</div>\
                 <blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex\">{}</blockquote></div>",
                        gmail_attribution("en")
                            .replace('<', "&lt;")
                            .replace('>', "&gt;"),
                        as_html(&c.text)
                    ),
                )
            },
        ),
        row(
            "OTP: grouped code in prose",
            Kind::Otp,
            Verdict::Accepted,
            |c| {
                plain(
                    c,
                    &format!(
                        "Hi, the app shows {} {}\n\n{}\n\n{}",
                        &c.code[..3],
                        &c.code[3..],
                        gmail_attribution("en"),
                        quoted(&c.text)
                    ),
                )
            },
        ),
        row(
            "OTP: phone number in the signature",
            Kind::Otp,
            Verdict::Accepted,
            |c| {
                plain(
                    c,
                    &format!(
                        "code: {}\n\nRecipient\nTel. +49 30 1234567\nFax 030 123456-99",
                        c.code
                    ),
                )
            },
        ),
        row(
            "OTP: two different codes",
            Kind::Otp,
            Verdict::NoCode,
            |c| {
                let other = if c.code == "000000" {
                    "111111"
                } else {
                    "000000"
                };
                plain(c, &format!("{} or {other}", c.code))
            },
        ),
        row(
            "OTP: nothing typed above the Outlook quote",
            Kind::Otp,
            Verdict::NoCode,
            |c| {
                plain(
                    c,
                    &format!(
                        "Done.\n\n-----Original Message-----\nFrom: admin@example.org\nSubject: {}\n\n{}",
                        c.subject, c.text
                    ),
                )
            },
        ),
    ]
}

/// What nobody typed, and senders that cannot be told.
fn machine_and_sender_rows() -> Vec<Row> {
    vec![
        row(
            "vacation responder (Auto-Submitted) repeating the original",
            Kind::Key,
            Verdict::SetAside("auto"),
            |c| {
                mail(
                    c,
                    "Auto-Submitted: auto-replied\r\n",
                    "text/plain; charset=utf-8",
                    &format!("I am away until Monday.\n\n{}", c.text),
                )
            },
        ),
        row(
            "Exchange out-of-office",
            Kind::Key,
            Verdict::SetAside("auto"),
            |c| {
                let raw = mail(
                    c,
                    "X-Auto-Response-Suppress: All\r\n",
                    "text/plain; charset=utf-8",
                    &format!("Out of office.\n{}", c.code),
                );
                String::from_utf8(raw)
                    .unwrap()
                    .replace("Subject: Re: ", "Subject: Automatic reply: ")
                    .into_bytes()
            },
        ),
        row(
            "Precedence: bulk with the key",
            Kind::Key,
            Verdict::SetAside("auto"),
            |c| mail(c, "Precedence: bulk\r\n", "text/plain", &c.code),
        ),
        row(
            "bounce from MAILER-DAEMON (multipart/report, original attached)",
            Kind::Key,
            Verdict::SetAside("auto"),
            |c| {
                let body = format!(
                    "--b1\nContent-Type: text/plain\n\nThis is the mail system. Delivery failed for {0}\n\n--b1\n\
                 Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; {0}\nAction: failed\nStatus: 5.1.1\n\n--b1\n\
                 Content-Type: message/rfc822\n\nFrom: admin@example.org\nTo: {0}\nSubject: {1}\n\n{2}\n--b1--\n",
                    c.to, c.subject, c.text
                );
                mail(
                    c,
                    "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n",
                    "multipart/report; report-type=delivery-status; boundary=\"b1\"",
                    &body,
                )
            },
        ),
        row(
            "auto-reply without markers repeating the original differently",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                let rewrapped: String = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
                plain(
                    c,
                    &format!(
                        "Thank you for your message. I will read it when I am back.\n\nYour message:\n{rewrapped}"
                    ),
                )
            },
        ),
        row(
            "two From headers",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            |c| {
                mail(
                    c,
                    &format!(
                        "From: Mallory <mallory@example.net>\r\nFrom: Recipient <{}>\r\n",
                        c.to
                    ),
                    "text/plain",
                    &c.code,
                )
            },
        ),
        row(
            "From with two mailboxes",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            |c| {
                mail(
                    c,
                    &format!("From: {}, mallory@example.net\r\n", c.to),
                    "text/plain",
                    &c.code,
                )
            },
        ),
        row(
            "From as a group",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            |c| {
                mail(
                    c,
                    &format!("From: Team: {};\r\n", c.to),
                    "text/plain",
                    &c.code,
                )
            },
        ),
        row(
            "forged From: someone else with the key",
            Kind::Key,
            Verdict::NotTheirs,
            |c| {
                mail(
                    c,
                    "From: Mallory <mallory@example.net>\r\n",
                    "text/plain",
                    &c.code,
                )
            },
        ),
        row(
            "the key only in the quote",
            Kind::Key,
            Verdict::NoCode,
            |c| {
                plain(
                    c,
                    &format!(
                        "Thanks!\n\nOn Tue, 24 Nov 2026, Example Admin wrote:\n{}",
                        quoted(&c.text)
                    ),
                )
            },
        ),
    ]
}

/// The same mail with its Subject replaced.
fn with_subject(raw: Vec<u8>, subject: &str) -> Vec<u8> {
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| {
            if l.starts_with("Subject: ") {
                format!("Subject: {subject}")
            } else {
                l.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// A reply as an MDA hands it over: procmail and Postfix's pipe(8) `F` flag write an mbox
/// envelope line before the headers.
fn envelope_rows() -> Vec<Row> {
    vec![
        row(
            "mbox envelope line (procmail)",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                let mut raw = format!("From {} Thu Dec  3 06:00:00 2026\n", c.to).into_bytes();
                raw.extend(plain(c, &format!("Here is the key: {}", c.code)));
                raw
            },
        ),
        row(
            "mbox envelope line (Postfix pipe F), TOTP",
            Kind::Otp,
            Verdict::Accepted,
            |c| {
                let mut raw = format!("From {}  Thu Dec  3 06:00:00 2026\r\n", c.to).into_bytes();
                raw.extend(plain(c, &c.code));
                raw
            },
        ),
        row(
            "mbox envelope line with a time zone",
            Kind::Key,
            Verdict::Accepted,
            |c| {
                let mut raw = b"From MAILER-DAEMON Thu Dec 3 06:00:00 +0100 2026\n".to_vec();
                raw.extend(plain(c, &c.code));
                raw
            },
        ),
        row(
            "a From line that is no envelope",
            Kind::Key,
            Verdict::Malformed,
            |c| {
                let mut raw = format!("From {}\n", c.to).into_bytes();
                raw.extend(plain(c, &c.code));
                raw
            },
        ),
    ]
}

/// Numbers people write in prose that are not the TOTP code: telephones, amounts, counts,
/// order and ticket numbers, dates. Alone they are no code (nothing tried); beside the real
/// code they do not make it ambiguous.
fn prose_number_rows() -> Vec<Row> {
    let prose = [
        "Please call me back at (030) 123 456.",
        "Best regards\nRecipient\nTel. +49 (30) 123456",
        "Regards,\nRecipient\nMob. 0171 / 123 456",
        "Our platform has 250 000 users and none of them got a code.",
        "The project is worth 120 000 EUR to us.",
        "I already paid €482 913 for this service.",
        "About your Order #482913: nothing arrived.",
        "Ticket 482913 is still open.",
        "Date 251126\nSubject of my complaint: no code",
        "Kundennummer: 482913, bitte prüfen.",
        "Invoice no. 482913 is attached.",
        "Phone: 123 456",
        "We shipped 482913 kg last year.",
        "Growth was 482913 % this year.",
        "Mit freundlichen Grüßen\nRecipient\nHandy: 0171 / 482 913\nFax: (030) 482 913-99",
    ];
    let mut rows: Vec<Row> = prose
        .iter()
        .map(|&text| {
            row(
                &format!("prose number alone: {text:?}"),
                Kind::Otp,
                Verdict::NoCode,
                move |c| {
                    // The real code is not in the reply; a prose number that happened to equal it
                    // would still not be taken.
                    plain(
                        c,
                        &format!(
                            "Hello,\n\n{text}\n\n{}\n{}",
                            gmail_attribution("en"),
                            quoted(&c.text)
                        ),
                    )
                },
            )
        })
        .collect();
    rows.extend([
        row("code, then a phone-number signature", Kind::Otp, Verdict::Accepted, |c| {
            plain(c, &format!("{}\n\n--\nRecipient\nTel: +49 30 123456", c.code))
        }),
        row("code beside every kind of prose number", Kind::Otp, Verdict::Accepted, |c| {
            plain(
                c,
                &format!(
                    "Hi, my code is {}.\n\nAbout Order #482913 (Ticket 482913): we paid €482 913 for \
                     250 000 users.\n\nRecipient\nTel. +49 (30) 123456\nMob. 0171 / 123 456",
                    c.code
                ),
            )
        }),
        row("code in a German sentence, grouped", Kind::Otp, Verdict::Accepted, |c| {
            plain(c, &format!("Hallo,\n\nder Code lautet {} {}\n\nGrüße", &c.code[..3], &c.code[3..]))
        }),
        row("code grouped on its own line", Kind::Otp, Verdict::Accepted, |c| {
            plain(c, &format!("{} {}\n\nSent from my iPhone", &c.code[..3], &c.code[3..]))
        }),
        row("code with a dash", Kind::Otp, Verdict::Accepted, |c| {
            plain(c, &format!("{}-{}", &c.code[..3], &c.code[3..]))
        }),
        row("code from the phone, after a colon", Kind::Otp, Verdict::Accepted, |c| {
            plain(c, &format!("The code on my phone: {}", c.code))
        }),
    ]);
    rows
}

/// Auto-replies, bounces and read receipts that carry the code and must cost nothing.
fn unrecognised_machine_rows() -> Vec<Row> {
    let subjects = [
        "Não é possível entregar: {}",
        "=?utf-8?q?N=C3=A3o_=C3=A9_poss=C3=ADvel_entregar=3A?= {}",
        "Read: {}",
        "Gelesen: {}",
        "Lu : {}",
        "Leído: {}",
        "Автоответ: {}",
        "Odpowiedź automatyczna: {}",
        "Autosvar: {}",
        "自动回复: {}",
        "自動回覆: {}",
        "自動応答: {}",
    ];
    let mut rows: Vec<Row> = subjects
        .iter()
        .map(|&subject| {
            row(
                &format!("auto subject {subject:?}"),
                Kind::Key,
                Verdict::SetAside("auto"),
                move |c| {
                    with_subject(
                        plain(c, &format!("{}\n\n{}", c.code, c.text)),
                        &subject.replace("{}", &c.subject),
                    )
                },
            )
        })
        .collect();
    for header in [
        "Precedence: auto-reply",
        "X-Failed-Recipients: someone@example.net",
        "X-MS-Exchange-Inbox-Rules-Loop: recipient@example.org",
        "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent",
    ] {
        rows.push(row(
            &format!("auto header {header}"),
            Kind::Key,
            Verdict::SetAside("auto"),
            move |c| {
                mail(
                    c,
                    &format!("{header}\r\n"),
                    "text/plain; charset=utf-8",
                    &c.code,
                )
            },
        ));
    }
    rows.push(row(
        "read receipt (disposition-notification)",
        Kind::Key,
        Verdict::SetAside("auto"),
        |c| {
            let body = format!(
                "--mdn\nContent-Type: text/plain\n\nYour message was read: {0}\n\n--mdn\n\
             Content-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; {1}\n\
             Disposition: manual-action/MDN-sent-manually; displayed\n\n--mdn--\n",
                c.code, c.to
            );
            with_subject(
                mail(
                    c,
                    "",
                    "multipart/report; report-type=disposition-notification; boundary=\"mdn\"",
                    &body,
                ),
                &format!("Read: {}", c.subject),
            )
        },
    ));
    rows
}

/// From fields a lenient parser reads as some address: not one well-formed mailbox, so no
/// sender, so nothing counted against anybody.
fn malformed_sender_rows() -> Vec<Row> {
    let forms = [
        "{to} mallory@example.net",
        "mallory@example.net {to}",
        "<{to}> mallory@example.net",
        "mallory@example.net <{to}>",
        "Recipient <{to}",
        "Recipient {to}>",
        "Recipient <{to}> <mallory@example.net>",
        "Team: {to}, mallory@example.net;",
        "Team: {to};",
        "{to}, mallory@example.net",
    ];
    forms
        .iter()
        .map(|&form| {
            row(
                &format!("From: {form}"),
                Kind::Key,
                Verdict::SetAside("unauthenticated"),
                move |c| {
                    mail(
                        c,
                        &format!("From: {}\r\n", form.replace("{to}", &c.to)),
                        "text/plain",
                        &c.code,
                    )
                },
            )
        })
        .collect()
}

/// Sends a code of `kind` to `to` through the outbox; the Ctx for building replies.
fn issue(env: &Env, kind: Kind, to: &str) -> Ctx {
    let flag = if kind == Kind::Key { "--key" } else { "--otp" };
    env.run(&["send", flag, "--to", to]).expect(0);
    let mail = decode_mail(&std::fs::read(env.outbox().pop().unwrap()).unwrap());
    let code = match kind {
        Kind::Key => mail.qr.clone(),
        Kind::Otp => support::totp(&support::otpauth_secret(&mail.qr), support::now()),
    };
    if kind == Kind::Key {
        assert!(
            mail.text.contains(&code),
            "the key is in the original's text"
        );
    }
    Ctx {
        to: to.into(),
        code,
        message_id: mail.message_id.clone(),
        text: mail.text.replace("\r\n", "\n"),
        subject: mail.subject,
    }
}

fn status(env: &Env, to: &str) -> (u64, String) {
    let st = env.run(&["--json", "status", "--to", to]);
    // After the {"type":"store"} line, the recipient's record.
    let v: serde_json::Value = serde_json::from_str(st.stdout().lines().last().unwrap()).unwrap();
    (
        v["attempts"].as_u64().unwrap(),
        v["state"].as_str().unwrap().to_string(),
    )
}

/// Runs every row; returns the failures as text.
fn run_rows(env: &Env, rows: &[Row]) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let to = format!("r{i}@example.org");
        let ctx = issue(env, r.kind, &to);
        let file = format!("row{i}.eml");
        std::fs::write(env.path(&file), (r.build)(&ctx)).unwrap();
        let run = env.run(&["--json", "reply", "--message", &file]);
        // The first line is the reply's outcome; a refusal adds an {"type":"error"} line.
        let v: serde_json::Value = run
            .stdout()
            .lines()
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let (attempts, state) = status(env, &to);
        let got = match (run.code(), v["outcome"].as_str(), v["reason"].as_str()) {
            (0, Some("accepted"), _) => Some(Verdict::Accepted),
            (1, Some("refused"), Some("wrong")) => Some(Verdict::Wrong),
            (1, Some("refused"), Some("no-code")) => Some(Verdict::NotTheirs),
            (65, Some("no_code" | "mistyped" | "ambiguous"), _) => Some(Verdict::NoCode),
            (65, None, _)
                if v["type"] == "error" && run.stderr().contains("not an email message") =>
            {
                Some(Verdict::Malformed)
            }
            (65, Some("set_aside"), _) => match v["folder"].as_str() {
                Some("auto") => Some(Verdict::SetAside("auto")),
                Some("unauthenticated") => Some(Verdict::SetAside("unauthenticated")),
                _ => None,
            },
            _ => None,
        };
        let (want_attempts, want_state) = match r.expect {
            Verdict::Accepted => (0, "verified"),
            Verdict::Wrong => (1, "pending"),
            _ => (0, "pending"),
        };
        if got != Some(r.expect) || attempts != want_attempts || state != want_state {
            failures.push(format!(
                "{}: want {:?} ({want_attempts} attempts, {want_state}), got {got:?} ({attempts} attempts, {state}); exit {}; {}{}",
                r.name,
                r.expect,
                run.code(),
                run.stdout().trim(),
                run.stderr().lines().next().unwrap_or("")
            ));
        }
    }
    failures
}

#[test]
fn real_shaped_replies() {
    let env = Env::new("");
    let mut rows = client_rows();
    rows.extend(shape_rows());
    rows.extend(prose_rows());
    rows.extend(machine_and_sender_rows());
    rows.extend(envelope_rows());
    rows.extend(prose_number_rows());
    rows.extend(unrecognised_machine_rows());
    rows.extend(malformed_sender_rows());
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let failures = run_rows(&env, &rows);
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// With `[reply] require_authenticated`, only the receiving server's topmost verdict counts.
#[test]
fn authenticated_replies() {
    let env = Env::new("[reply]\nrequire_authenticated = true\nauthserv_id = \"mx.example.net\"\n");
    let with =
        |ar: &'static str| move |c: &Ctx| mail(c, ar, "text/plain", &format!("Key: {}", c.code));
    let rows = vec![
        row(
            "DMARC pass",
            Kind::Key,
            Verdict::Accepted,
            with(
                "Authentication-Results: mx.example.net;\r\n dkim=pass (2048-bit key) header.d=example.org header.s=s1;\r\n spf=pass smtp.mailfrom=example.org;\r\n dmarc=pass (p=REJECT) header.from=example.org\r\n",
            ),
        ),
        row(
            "aligned DKIM pass, parent domain",
            Kind::Key,
            Verdict::Accepted,
            with("Authentication-Results: mx.example.net; dkim=pass header.i=@example.org\r\n"),
        ),
        row(
            "no Authentication-Results",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(""),
        ),
        row(
            "only another server's pass",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(
                "Authentication-Results: mx.attacker.example; dmarc=pass header.from=example.org\r\n",
            ),
        ),
        row(
            "forged pass below the trusted fail",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(
                "Authentication-Results: mx.example.net; dkim=fail header.d=example.org; dmarc=fail header.from=example.org\r\n\
             Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\n",
            ),
        ),
        row(
            "version 1, written out",
            Kind::Key,
            Verdict::Accepted,
            with(
                "Authentication-Results: mx.example.net 1; dmarc=pass header.from=example.org\r\n",
            ),
        ),
        row(
            "a version other than 1 (RFC 8601 §2.2: ignored, so not believed)",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(
                "Authentication-Results: mx.example.net 2; dmarc=pass header.from=example.org\r\n",
            ),
        ),
        row(
            "a version 2 on top, a version 1 pass below it",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(
                "Authentication-Results: mx.example.net 2; dmarc=pass header.from=example.org\r\n\
             Authentication-Results: mx.example.net 1; dmarc=pass header.from=example.org\r\n",
            ),
        ),
        row(
            "DKIM pass for another domain",
            Kind::Key,
            Verdict::SetAside("unauthenticated"),
            with(
                "Authentication-Results: mx.example.net; dkim=pass header.d=example.net; spf=pass smtp.mailfrom=example.org\r\n",
            ),
        ),
    ];
    let failures = run_rows(&env, &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Without authserv_id the config is refused, pointing at the line.
    let bad = Env::new("[reply]\nrequire_authenticated = true\n");
    let r = bad.run(&["status"]);
    r.expect(78);
    assert!(
        r.stderr()
            .contains("account.toml:17:25: [reply] require_authenticated = true needs authserv_id"),
        "{}",
        r.stderr()
    );
}

/// Set-aside mails in a Maildir go to auto/ and unauthenticated/, never cur/, and are counted.
#[test]
fn maildir_sets_aside() {
    let env = Env::new("");
    let md = env.path("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let c = issue(&env, Kind::Key, "ann@example.org");
    let put = |name: &str, raw: Vec<u8>| std::fs::write(md.join("new").join(name), raw).unwrap();
    put(
        "1.vacation",
        mail(
            &c,
            "Auto-Submitted: auto-replied\r\n",
            "text/plain",
            &c.code,
        ),
    );
    put(
        "2.doubled",
        mail(
            &c,
            &format!("From: a@example.net\r\nFrom: {}\r\n", c.to),
            "text/plain",
            &c.code,
        ),
    );
    put("3.good", plain(&c, &c.code));
    let r = env.run(&["reply", "--maildir", "Maildir"]);
    r.expect(0);
    let out = r.stdout();
    assert!(out.contains("1.vacation: set aside: an automatic mail (Auto-Submitted: auto-replied) (moved to Maildir/auto/1.vacation)"), "{out}");
    assert!(
        out.contains("2.doubled: set aside: the message has 2 From headers"),
        "{out}"
    );
    assert!(out.ends_with("1 accepted, 0 refused, 0 malformed, 1 set aside as automatic, 1 set aside as unauthenticated\n"), "{out}");
    assert!(md.join("auto/1.vacation").exists());
    assert!(md.join("unauthenticated/2.doubled").exists());
    let cur: Vec<String> = std::fs::read_dir(md.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cur, vec!["3.good:2,S"]);

    let c = issue(&env, Kind::Key, "ben@example.org");
    put(
        "4.bounce",
        mail(&c, "Return-Path: <>\r\n", "text/plain", &c.code),
    );
    let r = env.run(&["--json", "reply", "--maildir", "Maildir"]);
    r.expect(0);
    let lines: Vec<serde_json::Value> = r
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "reply");
    assert_eq!(lines[0]["outcome"], "set_aside");
    assert_eq!(lines[0]["folder"], "auto");
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["command"], "reply");
    assert_eq!(lines[1]["auto"], 1);
    assert_eq!(lines[1]["unauthenticated"], 0);
    assert_eq!(status(&env, "ben@example.org"), (0, "pending".into()));
}

/// `reply --code`: surrounding white space (a pasted newline) is not part of the code; a typo
/// costs nothing.
#[test]
fn typed_codes() {
    let env = Env::new("");
    let c = issue(&env, Kind::Key, "cy@example.org");
    let mut typo: Vec<char> = c.code.chars().collect();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == '0' { '1' } else { '0' };
    let typo: String = typo.into_iter().collect();
    let r = env.run(&["reply", "--to", &c.to, "--code", &typo]);
    r.expect(65);
    assert!(
        r.stderr().contains("check symbol does not match"),
        "{}",
        r.stderr()
    );
    assert_eq!(status(&env, &c.to), (0, "pending".into()));
    env.run(&["reply", "--to", &c.to, "--code", &format!("  {}\n", c.code)])
        .expect(0);
}

/// What an auto-reply was recognised by is said by name; the header's own text (the sender's)
/// reaches neither the terminal nor the audit log.
#[test]
fn set_aside_details_name_the_marker_only() {
    let env = Env::new("");
    let c = issue(&env, Kind::Key, "dee@example.org");
    let evil = "x-injected-7f3a (owner-email=attacker@example.net)";
    std::fs::write(
        env.path("auto.eml"),
        mail(
            &c,
            &format!("Auto-Submitted: {evil}\r\n"),
            "text/plain",
            &c.code,
        ),
    )
    .unwrap();
    let r = env.run(&["reply", "--message", "auto.eml"]);
    r.expect(65);
    assert_eq!(
        r.stderr().lines().next().unwrap_or(""),
        "securemail: error: set aside, not checked (no attempt was counted): an automatic mail (it has Auto-Submitted)"
    );
    let audit = std::fs::read_to_string(env.path("securemail-audit.log")).unwrap();
    assert!(
        audit.contains("an automatic mail (it has Auto-Submitted)"),
        "{audit}"
    );
    for text in [r.stdout(), r.stderr(), audit] {
        assert!(
            !text.contains("injected") && !text.contains("attacker"),
            "{text}"
        );
    }
    assert_eq!(status(&env, &c.to), (0, "pending".into()));
}

/// An MDA pipes the reply with its mbox envelope line: `reply --message -` reads past it.
#[test]
fn envelope_line_on_stdin() {
    let env = Env::new("");
    let c = issue(&env, Kind::Key, "eve@example.org");
    let mut raw = format!("From {} Thu Dec  3 06:00:00 2026\n", c.to).into_bytes();
    raw.extend(plain(&c, &c.code));
    let r = env.run_with_stdin(&["--json", "reply", "--message", "-"], &raw);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["outcome"], "accepted");
    assert_eq!(v["recipient"], "eve@example.org");
}
