//! What is being pushed: githooks(5) `pre-push` lines on stdin, or the environment the
//! pre-commit framework sets for its `pre-push` stage.

use std::collections::HashMap;

/// One ref update: `<local ref> <local oid> <remote ref> <remote oid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    /// The local ref, or `(delete)`.
    pub local_ref: String,
    /// The object pushed; `None` when the remote ref is deleted.
    pub local_oid: Option<String>,
    /// The ref the remote will update, e.g. `refs/tags/v1.2.3`.
    pub remote_ref: String,
    pub remote_oid: RemoteOid,
}

/// What the remote holds at `remote_ref` before the push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOid {
    /// Nothing: the ref is new there.
    Absent,
    Present(String),
    /// Not known (the pre-commit framework does not pass it on).
    Unknown,
}

impl PushedRef {
    /// The tag name when the remote ref is a tag: `refs/tags/api/v1.0.0` → `api/v1.0.0`.
    pub fn tag(&self) -> Option<&str> {
        self.remote_ref.strip_prefix("refs/tags/")
    }
}

/// An all-zero object name (SHA-1 or SHA-256) means "no object".
fn is_zero(oid: &str) -> bool {
    oid.bytes().all(|b| b == b'0')
}

fn is_oid(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses the pre-push hook's stdin. Blank lines are skipped.
/// git's pre-push input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
#[diagnostic(
    code(tagguard::hook::bad_input),
    help(
        "git runs the hook with the pushed refs on stdin, one `<local ref> <local oid> <remote ref> <remote oid>` per line (githooks(5))"
    )
)]
pub struct InputError(String);

pub fn parse_lines(input: &str) -> Result<Vec<PushedRef>, InputError> {
    let mut refs = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // Ref names cannot hold spaces, so four fields split from the right are exact.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_oid, remote_ref, remote_oid] = fields[..] else {
            return Err(InputError(format!(
                "line {} of the pre-push input has {} fields, not the 4 `<local ref> <local oid> <remote ref> <remote oid>`: {line:?}",
                n + 1,
                fields.len()
            )));
        };
        for oid in [local_oid, remote_oid] {
            if !is_oid(oid) {
                return Err(InputError(format!(
                    "line {} of the pre-push input: {oid:?} is not an object name",
                    n + 1
                )));
            }
        }
        refs.push(PushedRef {
            local_ref: local_ref.to_owned(),
            local_oid: (!is_zero(local_oid)).then(|| local_oid.to_owned()),
            remote_ref: remote_ref.to_owned(),
            remote_oid: if is_zero(remote_oid) {
                RemoteOid::Absent
            } else {
                RemoteOid::Present(remote_oid.to_owned())
            },
        });
    }
    Ok(refs)
}

/// The one ref the pre-commit framework's `pre-push` stage describes in its environment
/// (`PRE_COMMIT_REMOTE_BRANCH`, `PRE_COMMIT_LOCAL_BRANCH`, `PRE_COMMIT_TO_REF`), if any.
/// pre-commit skips deletions and refs that bring no new commits, and does not say what the
/// remote holds, so the remote side is [`RemoteOid::Unknown`]. `resolve` turns the local ref
/// into an object name when pre-commit gives none.
pub fn from_pre_commit_env(
    env: &HashMap<String, String>,
    resolve: impl FnOnce(&str) -> Option<String>,
) -> Option<PushedRef> {
    let remote_ref = env
        .get("PRE_COMMIT_REMOTE_BRANCH")
        .filter(|s| !s.is_empty())?;
    let local_ref = env
        .get("PRE_COMMIT_LOCAL_BRANCH")
        .cloned()
        .unwrap_or_else(|| remote_ref.clone());
    let local_oid = env
        .get("PRE_COMMIT_TO_REF")
        .filter(|s| is_oid(s))
        .cloned()
        .or_else(|| resolve(&local_ref));
    Some(PushedRef {
        local_ref,
        local_oid,
        remote_ref: remote_ref.clone(),
        remote_oid: RemoteOid::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn reads_githooks_lines() {
        let input = format!(
            "refs/heads/main {A} refs/heads/main {B}\nrefs/tags/v1.0.0 {A} refs/tags/v1.0.0 {Z}\n\n(delete) {Z} refs/tags/v0.9.0 {B}\n"
        );
        let refs = parse_lines(&input).unwrap();
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].tag(), None);
        assert_eq!(refs[1].tag(), Some("v1.0.0"));
        assert_eq!(refs[1].local_oid.as_deref(), Some(A));
        assert_eq!(refs[1].remote_oid, RemoteOid::Absent);
        assert_eq!(refs[2].local_oid, None);
        assert_eq!(refs[2].remote_oid, RemoteOid::Present(B.to_owned()));
    }

    #[test]
    fn sha256_object_names_are_read() {
        let a = "a".repeat(64);
        let z = "0".repeat(64);
        let refs = parse_lines(&format!("refs/tags/v1.0.0 {a} refs/tags/v1.0.0 {z}")).unwrap();
        assert_eq!(refs[0].local_oid.as_deref(), Some(a.as_str()));
    }

    #[test]
    fn malformed_lines_say_which() {
        let err = parse_lines(&format!("refs/heads/main {A}\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1 of the pre-push input has 2 fields"),
            "{err}"
        );
        let err = parse_lines(&format!("\nrefs/heads/main xyz refs/heads/main {A}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2 of the pre-push input: \"xyz\" is not an object name"
        );
    }

    #[test]
    fn pre_commit_environment() {
        let env: HashMap<String, String> = [
            ("PRE_COMMIT_REMOTE_BRANCH", "refs/tags/v1.2"),
            ("PRE_COMMIT_LOCAL_BRANCH", "refs/tags/v1.2"),
            ("PRE_COMMIT_TO_REF", A),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = from_pre_commit_env(&env, |_| None).unwrap();
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.local_oid.as_deref(), Some(A));
        assert_eq!(r.remote_oid, RemoteOid::Unknown);

        // Pushing the whole history: no TO_REF, the local ref is resolved instead.
        let mut env = env;
        env.remove("PRE_COMMIT_TO_REF");
        let r = from_pre_commit_env(&env, |name| {
            assert_eq!(name, "refs/tags/v1.2");
            Some(B.to_owned())
        })
        .unwrap();
        assert_eq!(r.local_oid.as_deref(), Some(B));

        assert_eq!(from_pre_commit_env(&HashMap::new(), |_| None), None);
    }
}
