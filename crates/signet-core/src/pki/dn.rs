//! Distinguished names as operators write them (RFC 4514 strings) and as certificates carry
//! them, reduced to one canonical form so that `CN=Agent, O=Acme` and `o=acme,cn=agent`-style
//! spelling differences do not decide whether a certificate matches.
//!
//! The canonical form lists the RDNs in RFC 4514 order (most specific first), each RDN's
//! attributes sorted, attribute types as dotted OIDs, values with surrounding spaces removed,
//! inner runs of spaces collapsed and letters folded to lower case (the caseIgnoreMatch of
//! RFC 4517, which is what directory attributes like CN and O use).

use x509_parser::x509::X509Name;

/// Why a distinguished name string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 4514 distinguished name: {0}")]
pub struct DnError(pub String);

/// Short names RFC 4514 §3 and common practice allow, with their OIDs.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("cn", "2.5.4.3"),
    ("sn", "2.5.4.4"),
    ("serialnumber", "2.5.4.5"),
    ("c", "2.5.4.6"),
    ("l", "2.5.4.7"),
    ("st", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("o", "2.5.4.10"),
    ("ou", "2.5.4.11"),
    ("title", "2.5.4.12"),
    ("givenname", "2.5.4.42"),
    ("dc", "0.9.2342.19200300.100.1.25"),
    ("uid", "0.9.2342.19200300.100.1.1"),
    ("emailaddress", "1.2.840.113549.1.9.1"),
    ("e", "1.2.840.113549.1.9.1"),
];

/// A parsed distinguished name: RDNs in RFC 4514 order (most specific first), each a list of
/// (dotted attribute OID, value as written).
pub type Rdns = Vec<Vec<(String, String)>>;

/// Parses an RFC 4514 string and returns its canonical form.
pub fn canonical_from_str(text: &str) -> Result<String, DnError> {
    let rdns = parse(text)?
        .into_iter()
        .map(|rdn| {
            rdn.into_iter()
                .map(|(oid, value)| (oid, normalize_value(&value)))
                .collect()
        })
        .collect();
    Ok(render(rdns))
}

/// Parses an RFC 4514 string, keeping values as written (unescaped).
pub fn parse(text: &str) -> Result<Rdns, DnError> {
    if text.len() > 1024 {
        return Err(DnError("longer than 1024 characters".into()));
    }
    let mut rdns: Rdns = vec![Vec::new()];
    let mut chars = text.chars().peekable();
    loop {
        // attributeType
        let mut attr_type = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            attr_type.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DnError(format!("`{}` has no `=`", attr_type.trim())));
        }
        let oid = attribute_oid(attr_type.trim())?;
        // attributeValue, with escapes
        let mut value = Vec::<u8>::new();
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let next = chars
                        .next()
                        .ok_or_else(|| DnError("dangling `\\` at the end".into()))?;
                    if next.is_ascii_hexdigit() {
                        let low = chars
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or_else(|| DnError("`\\` must be followed by two hex digits or a special character".into()))?;
                        let byte = u8::from_str_radix(&format!("{next}{low}"), 16)
                            .map_err(|_| DnError("bad hex escape".into()))?;
                        value.push(byte);
                    } else if "\"+,;<>\\ #=".contains(next) {
                        value.push(next as u8);
                    } else {
                        return Err(DnError(format!("`\\{next}` is not an RFC 4514 escape")));
                    }
                }
                ',' | '+' => {
                    end = Some(c);
                    break;
                }
                '\0' => return Err(DnError("NUL character".into())),
                c => {
                    let mut buf = [0u8; 4];
                    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        let value =
            String::from_utf8(value).map_err(|_| DnError("escaped bytes are not UTF-8".into()))?;
        // Spaces around a value are not part of it (RFC 4514); only ASCII ones, like every
        // comparison of names here.
        let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
        if value.is_empty() {
            return Err(DnError(format!("empty value for `{}`", attr_type.trim())));
        }
        if let Some(rdn) = rdns.last_mut() {
            rdn.push((oid, value.to_string()));
        }
        match end {
            None => break,
            Some(',') => rdns.push(Vec::new()),
            Some(_) => {}
        }
    }
    Ok(rdns)
}

/// The canonical form of a certificate's subject or issuer name.
pub fn canonical_from_name(name: &X509Name<'_>) -> String {
    let mut rdns: Rdns = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let value = match attr.as_str() {
                        Ok(s) => normalize_value(s),
                        Err(_) => format!("#{}", hex(attr.attr_value().data)),
                    };
                    (attr.attr_type().to_id_string(), value)
                })
                .collect()
        })
        .collect();
    // ASN.1 order is least specific first; RFC 4514 strings are the reverse.
    rdns.reverse();
    render(rdns)
}

/// A certificate name as an RFC 4514 string for people: most specific RDN first, short
/// attribute names where known, values as written.
pub fn display(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let short = SHORT_NAMES
                        .iter()
                        .find(|(short, o)| *o == oid && *short != "e")
                        .map(|(short, _)| match *short {
                            "emailaddress" => "emailAddress".to_string(),
                            "serialnumber" => "serialNumber".to_string(),
                            "givenname" => "givenName".to_string(),
                            other => other.to_ascii_uppercase(),
                        })
                        .unwrap_or(oid);
                    let value = match attr.as_str() {
                        Ok(s) => escape(s),
                        Err(_) => format!("#{}", hex(attr.attr_value().data)),
                    };
                    format!("{short}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.reverse();
    rdns.join(",")
}

fn render(rdns: Rdns) -> String {
    rdns.into_iter()
        .map(|mut rdn| {
            rdn.sort();
            rdn.iter()
                .map(|(oid, value)| format!("{oid}={}", escape(value)))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4514 §2.4: the special characters with a backslash, and control characters (NUL, which
/// RFC 4514 requires, and the rest, which would otherwise reach logs, terminals and PostgreSQL
/// text columns as written) as `\xx` per UTF-8 byte.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("\\{byte:02x}"));
            }
            continue;
        }
        if matches!(c, ',' | '+' | '\\' | '=' | '"' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn attribute_oid(name: &str) -> Result<String, DnError> {
    if name.is_empty() {
        return Err(DnError("empty attribute type".into()));
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, oid)) = SHORT_NAMES.iter().find(|(short, _)| *short == lower) {
        return Ok((*oid).to_string());
    }
    let dotted = lower.strip_prefix("oid.").unwrap_or(&lower);
    let valid = dotted.split('.').count() >= 2
        && dotted
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(dotted.to_string())
    } else {
        Err(DnError(format!("unknown attribute type `{name}`")))
    }
}

/// Case and runs of spaces do not matter, in ASCII only: a non-ASCII character matches only
/// itself, so that no lookalike (the Kelvin sign `K` lower-cases to `k`, a no-break space is
/// Unicode whitespace, full-width letters) can pass for an ASCII name.
fn normalize_value(value: &str) -> String {
    value
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_differences_do_not_matter() {
        let a = canonical_from_str("CN=Billing Agent,O=Acme Corp,C=DE").expect("valid");
        let b = canonical_from_str("cn=billing  agent , o=ACME CORP, c=de").expect("valid");
        let c =
            canonical_from_str("2.5.4.3=billing agent,OID.2.5.4.10=acme corp,C=DE").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, "2.5.4.3=billing agent,2.5.4.10=acme corp,2.5.4.6=de");
    }

    #[test]
    fn order_and_values_do_matter() {
        let a = canonical_from_str("CN=a,O=b").expect("valid");
        assert_ne!(a, canonical_from_str("O=b,CN=a").expect("valid"));
        assert_ne!(a, canonical_from_str("CN=a,O=c").expect("valid"));
        assert_ne!(a, canonical_from_str("CN=a").expect("valid"));
    }

    #[test]
    fn unicode_lookalikes_do_not_match_ascii_names() {
        let ascii = canonical_from_str("CN=key,O=Acme").expect("valid");
        assert_eq!(ascii, canonical_from_str("cn=KEY,  o=acme").expect("valid"));
        for lookalike in [
            "CN=\u{212A}ey,O=Acme",  // Kelvin sign, which Unicode lower-cases to `k`
            "CN=k\u{0435}y,O=Acme",  // Cyrillic e
            "CN=\u{FF4B}ey,O=Acme",  // full-width k
            "CN=key\u{00A0},O=Acme", // no-break space (Unicode whitespace)
            "CN=ke\u{200B}y,O=Acme", // zero-width space
        ] {
            if let Ok(other) = canonical_from_str(lookalike) {
                assert_ne!(other, ascii, "{lookalike:?}");
            }
        }
    }

    #[test]
    fn control_characters_are_hex_escaped() {
        // A NUL in a name (the "www.bank.com\0.evil.com" trick) never reaches a string as is,
        // and the escaped spelling written by an operator names the same thing.
        let canonical = canonical_from_str(r"CN=bank\00.evil,O=x\01y").expect("valid");
        assert_eq!(canonical, r"2.5.4.3=bank\00.evil,2.5.4.10=x\01y");
        assert!(!canonical.contains('\0'));
        assert_eq!(escape("a\u{85}b"), r"a\c2\85b");
    }

    #[test]
    fn escapes_and_multi_valued_rdns() {
        let escaped = canonical_from_str(r"CN=Smith\, John,O=x").expect("valid");
        assert_eq!(escaped, r"2.5.4.3=smith\, john,2.5.4.10=x");
        let hex = canonical_from_str(r"CN=Smith\2C John,O=x").expect("valid");
        assert_eq!(escaped, hex);
        // A comma smuggled through an escape is not an RDN separator.
        assert_ne!(
            escaped,
            canonical_from_str("CN=Smith,CN=John,O=x").expect("valid")
        );
        let multi = canonical_from_str("OU=b+CN=a,O=x").expect("valid");
        assert_eq!(multi, canonical_from_str("CN=a+OU=b,O=x").expect("valid"));
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "", "CN", "CN=", "XX=a", "CN=a,", r"CN=a\", r"CN=a\zz", "CN=a\0b",
        ] {
            assert!(canonical_from_str(bad).is_err(), "{bad:?} accepted");
        }
    }
}
