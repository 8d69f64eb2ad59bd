//! `WWW-Authenticate` challenges (RFC 7235): several per header, quoted strings with escapes and
//! commas inside, case-insensitive schemes and parameter names.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercase: `basic`, `bearer`, …
    pub scheme: String,
    /// Parameter names lowercase, values as sent.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Every challenge in one or more `WWW-Authenticate` header values, in order.
pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for h in headers {
        parse_one(h, &mut out);
    }
    out
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c)
}

fn parse_one(s: &str, out: &mut Vec<Challenge>) {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let skip = |i: &mut usize, set: &str| {
        while *i < chars.len() && set.contains(chars[*i]) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, " \t,");
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_tchar(chars[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip the stray character rather than loop forever.
            i += 1;
            continue;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        skip(&mut j, " \t");
        let is_param = j < chars.len() && chars[j] == '=' && !out.is_empty() && {
            // token68 ends in '=' padding followed by ',' or end; a param has a value after '='.
            let mut k = j;
            skip(&mut k, "=");
            k - j == 1
        };
        if !is_param {
            // A new challenge. Swallow a token68 credential (`Negotiate abc==`) if one follows.
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            let mut k = i;
            skip(&mut k, " \t");
            let t68 = k;
            while k < chars.len() && is_tchar(chars[k]) {
                k += 1;
            }
            if k > t68 {
                skip(&mut k, "=");
                skip(&mut k, " \t");
                if k >= chars.len() || chars[k] == ',' {
                    i = k;
                }
            }
            continue;
        }
        i = j + 1;
        skip(&mut i, " \t");
        let value = if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut v = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                v.push(chars[i]);
                i += 1;
            }
            i += 1; // closing quote (or end)
            v
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                i += 1;
            }
            chars[start..i].iter().collect()
        };
        if let Some(last) = out.last_mut() {
            last.params.insert(token.to_ascii_lowercase(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer() {
        let c = parse([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn several_challenges_commas_and_escapes_inside_quotes() {
        let c = parse([
            r#"Basic realm="a, b \"c\"", BEARER Realm = "https://x/token?a=1,2" , service=reg scope="repository:a:pull,push""#,
            "Negotiate abc==",
        ]);
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[0].param("realm"), Some(r#"a, b "c""#));
        assert_eq!(c[1].param("realm"), Some("https://x/token?a=1,2"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("scope"), Some("repository:a:pull,push"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer ===",
            "Basic",
        ] {
            let _ = parse([s]);
        }
        assert_eq!(parse(["Basic"])[0].scheme, "basic");
    }
}
