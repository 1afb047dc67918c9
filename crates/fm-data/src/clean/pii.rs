//! PII masking: e-mail addresses replaced by a placeholder, with a count.

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
}
