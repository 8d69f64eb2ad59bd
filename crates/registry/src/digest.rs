//! Content digests (`algorithm:hex`), and checking that bytes match one.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A content digest such as `sha256:4f53…`. Only `sha256` and `sha512` can be verified.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    pub input: String,
    pub reason: &'static str,
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: "sha256".into(),
            hex: hex(&Sha256::digest(bytes)),
        }
    }

    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `bytes` computed with this digest's algorithm, or `None` when the algorithm
    /// is not one we can compute.
    pub fn recompute(&self, bytes: &[u8]) -> Option<Digest> {
        let hex = match self.algorithm.as_str() {
            "sha256" => hex(&Sha256::digest(bytes)),
            "sha512" => hex(&Sha512::digest(bytes)),
            _ => return None,
        };
        Some(Digest {
            algorithm: self.algorithm.clone(),
            hex,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestError {
            input: input.to_owned(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| err("expected algorithm:hex"))?;
        // algorithm-component ([+._-] algorithm-component)*, each `[a-z0-9]+`
        let valid_algorithm = !algorithm.is_empty()
            && algorithm.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !valid_algorithm {
            return Err(err(
                "the algorithm must be lowercase letters and digits, like sha256",
            ));
        }
        let expected_len = match algorithm {
            "sha256" => Some(64),
            "sha512" => Some(128),
            _ => None,
        };
        let is_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match expected_len {
            Some(n) if hex.len() != n || !is_hex => {
                return Err(err(if algorithm == "sha256" {
                    "sha256 needs 64 lowercase hex digits"
                } else {
                    "sha512 needs 128 lowercase hex digits"
                }));
            }
            None if hex.len() < 32
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b)) =>
            {
                return Err(err(
                    "the encoded part must be at least 32 characters of [A-Za-z0-9=_-]",
                ));
            }
            _ => {}
        }
        Ok(Digest {
            algorithm: algorithm.to_owned(),
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_and_rejects() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.recompute(b""), Some(d.clone()));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        assert!("nocolon".parse::<Digest>().is_err());
        assert!(
            "SHA256:00000000000000000000000000000000"
                .parse::<Digest>()
                .is_err()
        );
        let other: Digest = "blake3+x:0123456789abcdef0123456789abcdef".parse().unwrap();
        assert_eq!(other.recompute(b"x"), None);
        let e = "sha256:zz".parse::<Digest>().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid digest \"sha256:zz\": sha256 needs 64 lowercase hex digits"
        );
    }
}
