//! PII masking: e-mail addresses, IPv4 and IPv6 addresses and phone numbers replaced by
//! placeholders, with counts.
//!
//! Decisions on ambiguous text (each has a test):
//! - **IPv4**: four dot-separated decimal octets (0–255, no leading zeros) standing alone. A
//!   dotted quad *is* masked when nothing marks it as something else (`1.2.3.4` alone reads as an
//!   address); it is left alone when it is part of a longer dotted run (`1.2.3.4.5`), glued to
//!   letters or digits (`v1.2.3.4`, `1.2.3.4a`), or follows the word `version`/`Version`.
//! - **IPv6**: a run of hex digits, colons (at least two) and dots that the standard library
//!   parses as an IPv6 address and that contains a digit, so Rust paths such as `a::b` or
//!   `std::io` (no digit, or not hex) are never masked while `::1` and `fe80::1` are.
//! - **Phone numbers**: two or more digit groups joined by single spaces, `-` or `.`, with an
//!   optional leading `+` and an optional parenthesised area code, holding 10–15 digits in all
//!   (7–15 after a `+`). Bare digit strings (`5551234567`, an id or a literal) and dates
//!   (`2024-01-15`, too few digits) are left alone.

/// Placeholder written in place of an IPv4 address.
pub const IPV4_PLACEHOLDER: &str = "<IPV4>";
/// Placeholder written in place of an IPv6 address.
pub const IPV6_PLACEHOLDER: &str = "<IPV6>";
/// Placeholder written in place of a phone number.
pub const PHONE_PLACEHOLDER: &str = "<PHONE>";

/// How many of each kind [`mask_pii`] replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PiiCounts {
    /// E-mail addresses.
    pub emails: usize,
    /// IPv4 addresses.
    pub ipv4: usize,
    /// IPv6 addresses.
    pub ipv6: usize,
    /// Phone numbers.
    pub phones: usize,
}

impl PiiCounts {
    /// Adds another document's counts.
    pub fn merge(&mut self, o: &PiiCounts) {
        self.emails += o.emails;
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.phones += o.phones;
    }
}

/// Masks e-mail addresses, then IPv6, IPv4 and phone numbers (module docs).
///
/// ```
/// use fm_data::clean::pii::mask_pii;
///
/// let (text, counts) = mask_pii("mail ops@example.com from 10.0.0.1 or fe80::1, call +1 555 123 4567");
/// assert_eq!(text, "mail <EMAIL> from <IPV4> or <IPV6>, call <PHONE>");
/// assert_eq!((counts.emails, counts.ipv4, counts.ipv6, counts.phones), (1, 1, 1, 1));
/// ```
pub fn mask_pii(text: &str) -> (String, PiiCounts) {
    let mut counts = PiiCounts::default();
    // Cheap gates: most documents have no '@', no digit-dot-digit, no phone-like digits.
    let (t, n) = if text.contains('@') {
        mask_emails(text)
    } else {
        (text.to_string(), 0)
    };
    counts.emails = n;
    let (t, n) = mask_runs(&t, is_ipv6_char, IPV6_PLACEHOLDER, is_ipv6);
    counts.ipv6 = n;
    let (t, n) = mask_runs(&t, is_ipv4_char, IPV4_PLACEHOLDER, is_ipv4);
    counts.ipv4 = n;
    let (t, n) = mask_runs(&t, is_phone_char, PHONE_PLACEHOLDER, is_phone);
    counts.phones = n;
    (t, counts)
}

fn is_ipv6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

fn is_ipv4_char(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

fn is_phone_char(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'+' | b'(' | b')' | b' ' | b'-' | b'.')
}

/// What a run is glued to: a letter, digit or `_` on either side means it is part of a word.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Replaces each maximal run of `member` bytes (trimmed of trailing dots/spaces/`:`) that
/// `accept` takes, given what precedes it, and that is not glued to a word.
fn mask_runs(
    text: &str,
    member: fn(u8) -> bool,
    placeholder: &str,
    accept: fn(&str, &str) -> bool,
) -> (String, usize) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A run starts at a digit, hex digit, `+`, `(` or `:`, never inside a word.
        let starts = member(bytes[i]) && !matches!(bytes[i], b' ' | b'-' | b'.' | b')');
        if !starts || (i > 0 && is_word_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && member(bytes[end]) {
            end += 1;
        }
        let mut cut = end;
        while cut > i && matches!(bytes[cut - 1], b'.' | b' ' | b'-' | b':' | b'(') {
            cut -= 1;
        }
        let glued = end == cut && end < bytes.len() && is_word_byte(bytes[end]);
        let candidate = &text[i..cut];
        if !glued && cut > i && accept(candidate, &text[..i]) {
            out.push_str(&text[copied..i]);
            out.push_str(placeholder);
            copied = cut;
            count += 1;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    (out, count)
}

fn is_ipv6(run: &str, _before: &str) -> bool {
    run.matches(':').count() >= 2
        && run.bytes().any(|b| b.is_ascii_digit())
        && run.parse::<std::net::Ipv6Addr>().is_ok()
}

fn is_ipv4(run: &str, before: &str) -> bool {
    let parts: Vec<&str> = run.split('.').collect();
    let octets_ok = parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        });
    let after_version = before
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("version"));
    octets_ok && !after_version
}

fn is_phone(run: &str, _before: &str) -> bool {
    let run = run.trim_start_matches(' ');
    let plus = run.starts_with('+');
    let body = run.strip_prefix('+').unwrap_or(run);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let min = if plus { 7 } else { 10 };
    if !(min..=15).contains(&digits) || body.starts_with([' ', '-', '.', ')']) {
        return false;
    }
    // Groups: digit runs separated by exactly one separator (a "(123) " area code counts as one).
    let cleaned = body.replace("(", "").replace(") ", " ").replace(')', " ");
    let groups: Vec<&str> = cleaned.split([' ', '-', '.']).collect();
    groups.len() >= 2
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.len() <= 5 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Placeholder written in place of an e-mail address.
pub const EMAIL_PLACEHOLDER: &str = "<EMAIL>";

fn is_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

/// Replaces every `local@domain.tld` with [`EMAIL_PLACEHOLDER`]; returns the text and how many.
pub fn mask_emails(text: &str) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut s = i;
            while s > 0 && is_local(chars[s - 1]) {
                s -= 1;
            }
            let mut e = i + 1;
            while e < chars.len() && is_domain(chars[e]) {
                e += 1;
            }
            // Trailing dots belong to the sentence, not the domain.
            while e > i + 1 && chars[e - 1] == '.' {
                e -= 1;
            }
            let domain: String = chars[i + 1..e].iter().collect();
            let local_len = i - s;
            if local_len > 0 && domain.contains('.') && !domain.starts_with('.') {
                // Drop the local part already copied to `out`.
                for _ in 0..local_len {
                    out.pop();
                }
                out.push_str(EMAIL_PLACEHOLDER);
                count += 1;
                i = e;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_counts() {
        let (t, n) = mask_emails("mail jo.e+x@ex-ample.co.uk or a@b.org. not @home or x@y");
        assert_eq!(t, "mail <EMAIL> or <EMAIL>. not @home or x@y");
        assert_eq!(n, 2);
    }

    fn masked(text: &str) -> String {
        mask_pii(text).0
    }

    #[test]
    fn ipv4_and_version_numbers() {
        assert_eq!(masked("host 192.168.1.20."), "host <IPV4>.");
        assert_eq!(masked("(10.0.0.255)"), "(<IPV4>)");
        assert_eq!(masked("1.2.3.4"), "<IPV4>");
        assert_eq!(masked("release 1.2.3.4.5"), "release 1.2.3.4.5");
        assert_eq!(
            masked("tag v1.2.3.4 and 1.2.3.4a"),
            "tag v1.2.3.4 and 1.2.3.4a"
        );
        assert_eq!(masked("version 1.2.3.4"), "version 1.2.3.4");
        assert_eq!(
            masked("bad 256.1.1.1 and 01.2.3.4 and 1.2.3"),
            "bad 256.1.1.1 and 01.2.3.4 and 1.2.3"
        );
        assert_eq!(masked("semver 1.70.0"), "semver 1.70.0");
    }

    #[test]
    fn ipv6_but_not_rust_paths() {
        assert_eq!(
            masked("loopback ::1 and fe80::1ff:fe23:4567:890a."),
            "loopback <IPV6> and <IPV6>."
        );
        assert_eq!(masked("2001:db8:85a3:0:0:8a2e:370:7334"), "<IPV6>");
        assert_eq!(
            masked("use std::io::Read; a::b::c; dead::beef"),
            "use std::io::Read; a::b::c; dead::beef"
        );
        assert_eq!(masked("mapped ::ffff:192.0.2.1 here"), "mapped <IPV6> here");
        assert_eq!(masked("time 12:30:45"), "time 12:30:45");
    }

    #[test]
    fn phones_but_not_dates_or_ids() {
        assert_eq!(masked("call 555-123-4567 now"), "call <PHONE> now");
        assert_eq!(masked("call (555) 123-4567."), "call <PHONE>.");
        assert_eq!(masked("intl +44 20 7946 0958, ok"), "intl <PHONE>, ok");
        assert_eq!(masked("short +33 123 4567"), "short <PHONE>");
        assert_eq!(
            masked("date 2024-01-15 id 5551234567"),
            "date 2024-01-15 id 5551234567"
        );
        assert_eq!(masked("list 1 2 3 4 5"), "list 1 2 3 4 5");
        let (_, c) = mask_pii("a@b.io 1.1.1.1 ::1 555.123.4567");
        assert_eq!(
            c,
            PiiCounts {
                emails: 1,
                ipv4: 1,
                ipv6: 1,
                phones: 1
            }
        );
    }
}
