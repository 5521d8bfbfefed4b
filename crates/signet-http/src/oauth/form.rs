//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests: bytes that are not
//! UTF-8 after decoding, broken percent-escapes and repeated parameters are refused (RFC 6749
//! §3.2: "parameters MUST NOT be included more than once"), except `resource` (RFC 8707 §2).
//! Parameters without a value are treated as omitted (RFC 6749 §3.1).

/// Parameters that may appear more than once.
const REPEATABLE: &[&str] = &["resource"];
const MAX_PARAMETERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    BadEncoding,
    NotUtf8,
    Duplicate,
    TooManyParameters,
}

impl FormError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadEncoding => "malformed_form",
            Self::NotUtf8 => "form_not_utf8",
            Self::Duplicate => "duplicate_parameter",
            Self::TooManyParameters => "too_many_parameters",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            Self::BadEncoding => "the form body is not valid application/x-www-form-urlencoded",
            Self::NotUtf8 => "the form body is not UTF-8",
            Self::Duplicate => "a parameter appears more than once",
            Self::TooManyParameters => "too many parameters",
        }
    }
}

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in body.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) && !REPEATABLE.contains(&name.as_str()) {
                return Err(FormError::Duplicate);
            }
            if pairs.len() == MAX_PARAMETERS {
                return Err(FormError::TooManyParameters);
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of a single-valued parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(input: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3).ok_or(FormError::BadEncoding)?;
                let hex = std::str::from_utf8(hex).map_err(|_| FormError::BadEncoding)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| FormError::BadEncoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8], expected: Result<Vec<(&str, &str)>, FormError>) {
        let result = Form::parse(body).map(|f| f.pairs);
        let expected = expected.map(|p| {
            p.into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        });
        assert_eq!(result, expected, "{}", String::from_utf8_lossy(body));
    }

    #[test]
    fn parsing() {
        check(
            b"grant_type=client_credentials&scope=a+b",
            Ok(vec![("grant_type", "client_credentials"), ("scope", "a b")]),
        );
        check(b"a=%C3%A9&b=", Ok(vec![("a", "é")]));
        check(
            b"resource=x&resource=y",
            Ok(vec![("resource", "x"), ("resource", "y")]),
        );
        check(b"scope=a&scope=b", Err(FormError::Duplicate));
        check(b"a=%FF", Err(FormError::NotUtf8));
        check(b"a=\xff", Err(FormError::NotUtf8));
        check(b"a=%G1", Err(FormError::BadEncoding));
        check(b"a=%4", Err(FormError::BadEncoding));
        check(b"", Ok(vec![]));
    }

    #[test]
    fn too_many_parameters() {
        let body: Vec<u8> = (0..65)
            .map(|i| format!("p{i}=x"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        assert_eq!(Form::parse(&body).err(), Some(FormError::TooManyParameters));
    }
}
