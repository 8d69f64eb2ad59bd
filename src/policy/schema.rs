//! The policy's JSON Schema, for editors (yaml-language-server) and CI linters.
//!
//! Built from the same key and name lists the validator uses, so the two cannot drift apart;
//! `policy.schema.json` at the repository root is this output, kept current by a test.

use serde_json::{Value, json};

use super::condition;
use super::validate::{
    AUDIT_KEYS, HOOKS_KEYS, PRE_PUSH_KEYS, RELEASE_KEYS, RETAIN_KEYS, RULE_KEYS, SUPPORTED_VERSION,
    TOP_KEYS,
};
use super::{Alive, Floating, OnConflict, RegistryCheck, ReleaseFrom};
use crate::template;

pub fn schema() -> Value {
    let image = json!({
        "type": "string",
        "description": "An image name without tag: [registry/]repository, e.g. ghcr.io/acme/app",
        "pattern": "^[^@\\s]+$"
    });
    let condition_keys = condition_keys();
    let rule_props = rule_properties();
    debug_assert!(RULE_KEYS.iter().all(|k| rule_props.get(k).is_some()));
    let top = json!({
        "version": {"const": SUPPORTED_VERSION, "description": "Policy format version"},
        "image": image,
        "images": {"type": "array", "items": image, "minItems": 1, "uniqueItems": true},
        "release": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "git-tag": {"type": "string", "pattern": "\\{version\\}", "description": "How release tags look; {version} is SemVer 2.0. Default v{version}"},
                "from": {"enum": ReleaseFrom::ALL.map(ReleaseFrom::name), "description": "Who says a build is a release: ci (the default: the CI's tag build of a release tag is; its branch and pull request builds are not, whatever tags HEAD carries; without a CI, git decides) or git (any release tag at HEAD)"}
            }
        },
        "hooks": {
            "type": "object",
            "additionalProperties": false,
            "description": "How the git hooks (`tagguard hook install`) behave",
            "properties": {
                "pre-push": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "registry": {
                            "enum": [RegistryCheck::Strict.name(), RegistryCheck::Warn.name(), RegistryCheck::Off.name(), false],
                            "description": "Whether the pre-push hook refuses a release whose immutable image tags already exist for another commit: strict (an unreachable registry refuses the push too), warn (the default: an unreachable registry is a warning), off (no registry lookup)"
                        }
                    }
                }
            }
        },
        "audit": {
            "type": "object",
            "additionalProperties": false,
            "description": "What `tagguard audit` relies on",
            "properties": {
                "record": {"type": "boolean", "description": "Whether `push` records what it wrote beside each image (an OCI artifact whose subject is the image; on registries without the referrers API, a sha256-<hex> tag listing the records), so `audit` can tell a moved immutable tag (default true)"}
            }
        },
        "short-sha-length": {"type": "integer", "minimum": 4, "maximum": 40, "description": "Length of short_sha (default 7)"},
        "tags": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "object", "additionalProperties": false, "required": ["template"], "properties": rule_props}
                ]
            }
        }
    });
    debug_assert!(TOP_KEYS.iter().all(|k| top.get(k).is_some()));
    debug_assert!(
        RELEASE_KEYS
            .iter()
            .all(|k| top["release"]["properties"].get(k).is_some())
    );
    debug_assert!(
        HOOKS_KEYS
            .iter()
            .all(|k| top["hooks"]["properties"].get(k).is_some())
    );
    debug_assert!(
        AUDIT_KEYS
            .iter()
            .all(|k| top["audit"]["properties"].get(k).is_some())
    );
    debug_assert!(PRE_PUSH_KEYS.iter().all(|k| {
        top["hooks"]["properties"]["pre-push"]["properties"]
            .get(k)
            .is_some()
    }));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/tagguard/tagguard/raw/main/policy.schema.json",
        "title": "tagguard policy",
        "description": "Which image tags tagguard computes, and which are immutable or floating",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "tags"],
        "not": {"required": ["image", "images"]},
        "properties": top,
        "$defs": {
            "condition": {
                "oneOf": [
                    {"enum": condition::NAMED},
                    {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": condition_keys}
                ]
            }
        }
    })
}

/// The schema of each key of a `when: { KEY: … }` mapping.
fn condition_keys() -> serde_json::Map<String, Value> {
    let mut condition_keys = serde_json::Map::new();
    for key in condition::KEYS {
        let value = match *key {
            "branch" => {
                json!({"type": "string", "format": "regex", "description": "Regex searched in the branch name (anchor it to match whole names)"})
            }
            "git-tag" => {
                json!({"type": "string", "format": "regex", "description": "Regex searched in the tags at HEAD"})
            }
            "version" => {
                json!({"type": ["string", "number"], "description": "SemVer requirement the release version must satisfy, e.g. \">=1.0.0\""})
            }
            "event" => {
                json!({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}], "description": "The CI's event is one of these: GitHub's GITHUB_EVENT_NAME (push, pull_request, schedule, workflow_dispatch, …), GitLab's CI_PIPELINE_SOURCE (push, merge_request_event, schedule, web, …)"})
            }
            "all" => {
                json!({"type": "array", "items": {"$ref": "#/$defs/condition"}, "description": "Every condition holds"})
            }
            "any" => {
                json!({"type": "array", "items": {"$ref": "#/$defs/condition"}, "description": "At least one condition holds"})
            }
            "not" => {
                json!({"$ref": "#/$defs/condition", "description": "The condition does not hold"})
            }
            other => unreachable!("condition key {other} has no schema"),
        };
        condition_keys.insert((*key).to_owned(), value);
    }
    condition_keys
}

/// The schema of the keys of one rule of `tags:`.
fn rule_properties() -> Value {
    let variables: Vec<String> = template::VARIABLES
        .iter()
        .map(|(n, d)| format!("{n}: {d}"))
        .collect();
    json!({
        "template": {
            "type": ["string", "integer"],
            "description": format!("minijinja template of the tag. Variables: {}. Filters: {}.", variables.join("; "), template::FILTERS.join(", "))
        },
        "when": {"$ref": "#/$defs/condition"},
        "floating": {"enum": Floating::NAMES, "description": "A tag that moves forward with releases; never immutable"},
        "immutable": {"type": "boolean", "description": "Defaults to true unless the rule is floating"},
        "on-conflict": {"enum": OnConflict::ALL.map(OnConflict::name), "description": "What an immutable tag that already names another image means: refuse (the default), or keep-same-revision (keep the existing image when its org.opencontainers.image.revision label is this build's commit, as on a CI re-run; refuse otherwise)"},
        "retain": retain_schema()
    })
}

/// The schema of `retain:` (mutable, non-floating rules only: the validator says so).
fn retain_schema() -> Value {
    debug_assert_eq!(RETAIN_KEYS, ["while", "newest", "younger-than"]);
    json!({
        "type": "object",
        "additionalProperties": false,
        "minProperties": 1,
        "description": "How long the tags of a mutable, non-floating rule live, for `tagguard prune`: a tag is kept while any key keeps it. Without `retain` a rule's tags are never pruned.",
        "properties": {
            "while": {"enum": Alive::ALL.map(Alive::name), "description": "Kept while the branch (on the checkout's remote) or the pull/merge request the tag names exists / is open"},
            "newest": {"type": "integer", "minimum": 1, "description": "The rule's N newest tags are kept"},
            "younger-than": {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*[smhdw]$", "description": "Kept while younger than this age (s, m, h, d or w), from tagguard's write records, else the image's `created`"}
        }
    })
}
