//! Image references: `[host[:port]/]repository[:tag][@digest]`, normalized the way Docker does.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// The registry host Docker Hub's API is served from.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// API host, with port when one was given (`localhost:5000`); Docker Hub is `registry-1.docker.io`.
    pub registry: String,
    /// Repository path inside the registry (`library/alpine`, `acme/app`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a text is not an image reference. Displayed as `invalid image reference "…": <reason>`;
/// [`ReferenceError::reason`] is the part after the colon, for messages that name the input
/// themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    Empty { input: String },
    Component { input: String, component: String },
    TooLong { input: String },
    Host { input: String, host: String },
    Tag { input: String, source: TagError },
    Digest { input: String, source: DigestError },
}

impl ReferenceError {
    /// What is wrong, without the input.
    pub fn reason(&self) -> String {
        match self {
            ReferenceError::Empty { .. } => "it is empty".to_owned(),
            ReferenceError::Component { component, .. } => format!(
                "repository path component {component:?} must be lowercase letters and digits, \
                 separated by `.`, `_`, `__` or `-`"
            ),
            ReferenceError::TooLong { .. } => {
                "the repository name is longer than 255 characters".to_owned()
            }
            ReferenceError::Host { host, .. } => {
                format!("registry host {host:?} is not a valid host[:port]")
            }
            ReferenceError::Tag { source, .. } => source.to_string(),
            ReferenceError::Digest { source, .. } => source.to_string(),
        }
    }

    fn input(&self) -> &str {
        match self {
            ReferenceError::Empty { input }
            | ReferenceError::Component { input, .. }
            | ReferenceError::TooLong { input }
            | ReferenceError::Host { input, .. }
            | ReferenceError::Tag { input, .. }
            | ReferenceError::Digest { input, .. } => input,
        }
    }
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image reference {:?}: {}",
            self.input(),
            self.reason()
        )
    }
}

/// The longest tag the OCI distribution spec allows.
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag {tag:?} is not valid: {why}")]
pub struct TagError {
    pub tag: String,
    pub why: String,
}

/// Why `tag` is not a valid tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`), if it is not: the one
/// rule, for computed tags and references alike.
pub fn tag_problem(tag: &str) -> Option<String> {
    let Some(first) = tag.chars().next() else {
        return Some("the tag is empty".to_owned());
    };
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Some(format!(
            "a tag must start with a letter, digit or `_`, not {first:?}"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "{bad:?} is not allowed in a tag (only A-Z a-z 0-9 . _ -)"
        ));
    }
    if tag.len() > MAX_TAG_LEN {
        return Some(format!(
            "the tag is {} characters long; the limit is {MAX_TAG_LEN} (shorten it with truncate(n))",
            tag.len()
        ));
    }
    None
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    match tag_problem(tag) {
        None => Ok(()),
        Some(why) => Err(TagError {
            tag: tag.to_owned(),
            why,
        }),
    }
}

/// One repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` / `[v6][:port]` split into the host and the port (as written), the one place
/// that takes a registry host apart. `None` for an unterminated `[`.
pub fn split_host_port(host: &str) -> Option<(&str, Option<&str>)> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Some((host, None));
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return match after {
            "" => Some((addr, None)),
            _ => after.strip_prefix(':').map(|p| (addr, Some(p))),
        };
    }
    Some(match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    })
}

fn valid_host(host: &str) -> bool {
    let Some((name, port)) = split_host_port(host) else {
        return false;
    };
    if host.starts_with('[') {
        return name.parse::<std::net::Ipv6Addr>().is_ok() && port.is_none_or(valid_port);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !name.is_empty() && name.split('.').all(label_ok) && port.is_none_or(valid_port)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok()
}

impl Reference {
    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, TagError> {
        validate_tag(tag)?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// What to ask the registry for: the digest when there is one, else the tag, else `latest`.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.into(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|source| ReferenceError::Digest {
                            input: input.into(),
                            source,
                        })?,
                ),
            ),
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/'; a ':' before is the host's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|source| ReferenceError::Tag {
                input: input.into(),
                source,
            })?;
        }
        let (host, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                (Some(first), path)
            }
            _ => (None, name),
        };
        if let Some(h) = host
            && !valid_host(h)
        {
            return Err(ReferenceError::Host {
                input: input.into(),
                host: h.into(),
            });
        }
        if path.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.into(),
            });
        }
        if let Some(bad) = path.split('/').find(|c| !valid_component(c)) {
            return Err(ReferenceError::Component {
                input: input.into(),
                component: bad.into(),
            });
        }
        let registry = match host {
            None | Some("docker.io") | Some("index.docker.io") => DOCKER_HUB.to_owned(),
            Some(h) => h.to_owned(),
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        if registry.len() + 1 + repository.len() > 255 {
            return Err(ReferenceError::TooLong {
                input: input.into(),
            });
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_hub_normalization() {
        let r = parse("alpine");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            (DOCKER_HUB, "library/alpine")
        );
        assert_eq!(r.tag, None);
        assert_eq!(parse("docker.io/alpine:3").repository, "library/alpine");
        assert_eq!(parse("index.docker.io/acme/app").registry, DOCKER_HUB);
        assert_eq!(parse("acme/app:1.0").repository, "acme/app");
        assert_eq!(parse("acme/app:1.0").manifest_ref(), "1.0");
        assert_eq!(parse("alpine").manifest_ref(), "latest");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = parse(&format!("localhost:5000/a/b/c:v1.2.3@{D}"));
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b/c");
        assert_eq!(r.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/a/b/c:v1.2.3@{D}"));
        let r = parse("127.0.0.1:5000/app");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", None)
        );
        assert_eq!(parse("[::1]:5000/app").registry, "[::1]:5000");
        assert_eq!(
            parse("ghcr.io/acme/my_app__x.y-z---w").repository,
            "acme/my_app__x.y-z---w"
        );
        assert_eq!(parse("localhost/app").registry, "localhost");
    }

    #[test]
    fn clear_errors() {
        let e = |s: &str| s.parse::<Reference>().unwrap_err().to_string();
        assert!(e("ghcr.io/Acme/app").contains("component \"Acme\""));
        assert!(e("app:-bad").contains("tag \"-bad\" is not valid"));
        assert!(e(&format!("app:{}", "x".repeat(129))).contains("is not valid"));
        assert!(e("app@sha256:123").contains("sha256 needs 64"));
        assert!(e("").contains("empty"));
        assert!(e("ghcr.io:99999/app").contains("not a valid host"));
        assert!(e("a//b").contains("component \"\""));
        assert!(e("a/b_-c").contains("component"));
        assert!(e(&format!("ghcr.io/{}", "a".repeat(260))).contains("255"));
    }

    #[test]
    fn tags() {
        assert!(validate_tag("_x").is_ok());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("a+b").is_err());
        assert!(validate_tag("").is_err());
    }
}
