//! How registries say "no, not this tag": their own immutability settings, locks and protected
//! tags. Recognised from the status, the error code and the message of the spec's error body, so
//! such an answer becomes a refusal, never a credentials problem. docs/registries.md has the
//! same table for users.

use super::error::ErrorEntry;

/// One way a registry says it refuses a write.
struct Rule {
    /// Who says it this way, for the message.
    name: &'static str,
    /// The status it comes with; `None` for any 4xx.
    status: Option<u16>,
    /// The error code; `None` for any.
    code: Option<&'static str>,
    /// Words the message must contain (lowercase); empty for any message.
    words: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        name: "Harbor tag immutability rule",
        status: Some(412),
        code: Some("PRECONDITION"),
        // Harbor answers 412 PRECONDITION for other policies too (e.g. vulnerable images).
        words: &["immutable"],
    },
    Rule {
        name: "Quay immutable tag",
        status: None,
        code: Some("TAG_IMMUTABLE"),
        words: &[],
    },
    Rule {
        name: "GitLab immutable tag",
        status: None,
        code: Some("IMMUTABLE_TAG"),
        words: &[],
    },
    Rule {
        name: "GitLab protected tag",
        status: None,
        code: Some("PROTECTED_TAG"),
        words: &[],
    },
    Rule {
        name: "ECR tag immutability",
        status: None,
        code: Some("TAG_INVALID"),
        words: &["cannot be overwritten"],
    },
    // ACR answers a locked repository or image (`--write-enabled false`, `--delete-enabled
    // false`) with `DENIED` or `REGISTRY_DISALLOWED_OPERATION` (a 405 to a delete,
    // Azure/acr-cli#70), always in these words.
    Rule {
        name: "ACR lock (write or delete disabled)",
        status: None,
        code: None,
        words: &["operation is disallowed on this registry"],
    },
    Rule {
        name: "Docker Hub immutable tags",
        status: Some(403),
        code: Some("DENIED"),
        words: &["immutable"],
    },
    // Any other registry whose message says the tag is immutable (MSR/DTR, Alibaba ACR,
    // Artifactory, …).
    Rule {
        name: "the registry's tag immutability",
        status: None,
        code: None,
        words: &["immutable"],
    },
];

/// The registry's refusal among the entries of an error answer, with the name of the rule that
/// recognised it. Only client errors (4xx) can be refusals: a 5xx is a failure.
pub fn recognise(status: u16, entries: &[ErrorEntry]) -> Option<(&'static str, &ErrorEntry)> {
    if !(400..500).contains(&status) {
        return None;
    }
    RULES.iter().find_map(|rule| {
        entries
            .iter()
            .find(|e| matches(rule, status, e))
            .map(|e| (rule.name, e))
    })
}

/// A refusal in a body that is not the spec's JSON: a plain-text or HTML answer saying the tag
/// is immutable.
pub fn recognise_text(status: u16, body: &[u8]) -> Option<(&'static str, ErrorEntry)> {
    if !(400..500).contains(&status) || body.len() > 4096 {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    (lower.contains("immutable") && lower.contains("tag")).then(|| {
        (
            "the registry's tag immutability",
            ErrorEntry {
                code: String::new(),
                message: text.trim().to_owned(),
                detail: None,
            },
        )
    })
}

fn matches(rule: &Rule, status: u16, entry: &ErrorEntry) -> bool {
    if rule.status.is_some_and(|s| s != status) {
        return false;
    }
    if rule
        .code
        .is_some_and(|c| !entry.code.eq_ignore_ascii_case(c))
    {
        return false;
    }
    let message = entry.message.to_ascii_lowercase();
    rule.words.iter().all(|w| message.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_entries;

    fn rule(status: u16, body: &str) -> Option<&'static str> {
        recognise(status, &error_entries(body.as_bytes())).map(|(name, _)| name)
    }

    #[test]
    fn each_registry_s_way_of_saying_it() {
        let cases = [
            (
                412,
                r#"{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'app:1.0' configured as immutable."}]}"#,
                "Harbor tag immutability rule",
            ),
            (
                409,
                r#"{"errors":[{"code":"TAG_IMMUTABLE","message":"tag is immutable and cannot be overwritten"}]}"#,
                "Quay immutable tag",
            ),
            (
                400,
                r#"{"errors":[{"code":"IMMUTABLE_TAG","message":"tag 1.0 is immutable"}]}"#,
                "GitLab immutable tag",
            ),
            (
                401,
                r#"{"errors":[{"code":"PROTECTED_TAG","message":"protected"}]}"#,
                "GitLab protected tag",
            ),
            (
                400,
                r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag '1.0' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}"#,
                "ECR tag immutability",
            ),
            (
                400,
                r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag '1.0' already exists in the 'app' repository and cannot be overwritten because the tag is immutable."}]}"#,
                "ECR tag immutability",
            ),
            (
                409,
                r#"{"errors":[{"code":"DENIED","message":"The operation is disallowed on this registry, repository or manifest."}]}"#,
                "ACR lock (write or delete disabled)",
            ),
            (
                403,
                r#"{"errors":[{"code":"DENIED","message":"tag is immutable: cannot overwrite 1.0"}]}"#,
                "Docker Hub immutable tags",
            ),
            (
                400,
                r#"{"errors":[{"code":"UNKNOWN","message":"tag=1.0 cannot be overwritten because r.example/app is an immutable repository"}]}"#,
                "the registry's tag immutability",
            ),
        ];
        for (status, body, name) in cases {
            assert_eq!(rule(status, body), Some(name), "{status} {body}");
        }
    }

    #[test]
    fn permissions_and_failures_are_not_refusals() {
        for (status, body) in [
            (
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            ),
            (
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ),
            (
                400,
                r#"{"errors":[{"code":"TAG_INVALID","message":"manifest tag did not match URI"}]}"#,
            ),
            (
                412,
                r#"{"errors":[{"code":"PRECONDITION","message":"precondition failed"}]}"#,
            ),
            (
                500,
                r#"{"errors":[{"code":"TAG_IMMUTABLE","message":"tag is immutable"}]}"#,
            ),
        ] {
            assert_eq!(rule(status, body), None, "{status} {body}");
        }
        assert!(recognise_text(403, b"tag v1 is immutable").is_some());
        assert!(recognise_text(403, b"<html>forbidden</html>").is_none());
        assert!(recognise_text(502, b"tag v1 is immutable").is_none());
    }
}
