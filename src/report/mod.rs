//! The last stage: one [`Report`] per run, whatever happened. Every output format (text, JSON,
//! GitHub, GitLab, the step summary) renders this one value, and the exit code is decided from
//! it in one place ([`Report::status`]).

use crate::finding::{Finding, Severity, code};
use serde::Serialize;
use serde::ser::SerializeStruct as _;

use crate::audit::AuditSummary;
use crate::plan::Decision;
use tagguard_registry::Digest;

/// One tag write of this run that the registry acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub image: String,
    pub tag: String,
    pub digest: Digest,
    /// Whether reading the tag back (after the settle time, where one applies) found this
    /// write's digest. An acknowledged write is not a verified one: another writer may have
    /// changed the tag since, or the registry may not have stored it.
    pub verified: bool,
}

impl Written {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// How a run ended, from its findings: an error outweighs a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Refused by the policy or the registry: exit 3.
    Refused,
    /// Failed, or a write could not be proven: exit 1.
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }

    /// The published exit code: 0 ok, 1 error, 3 refused.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Refused => 3,
        }
    }
}

/// Everything a `check`, `push`, `audit` or pre-push hook run has to say.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// A dry run decides but writes nothing.
    pub dry_run: bool,
    /// One per image × tag, image-major, in the policy's order.
    pub decisions: Vec<Decision>,
    /// Every tag write the registry acknowledged, in the order they were written; `verified`
    /// says which were read back as written.
    pub written: Vec<Written>,
    pub findings: Vec<Finding>,
    /// Whether the run writes at all (`push`); a check verifies nothing.
    pub writes: bool,
    /// For `audit`: what it read (its findings are [`Report::findings`]).
    pub audit: Option<AuditSummary>,
}

impl Report {
    pub fn status(&self) -> Status {
        match self.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Status::Failed,
            Some(Severity::Refusal) => Status::Refused,
            _ => Status::Ok,
        }
    }

    /// A push that wrote (or had nothing to write) and proved every write.
    pub fn verified(&self) -> bool {
        self.writes && !self.dry_run && self.status() == Status::Ok
    }

    fn subjects(&self, pick: impl Fn(&Finding) -> bool) -> Vec<&str> {
        self.findings
            .iter()
            .filter(|f| pick(f))
            .filter_map(|f| f.subject.as_deref())
            .collect()
    }

    /// `image:tag` of every refusal, by the policy or by the registry.
    pub fn refused(&self) -> Vec<&str> {
        self.subjects(|f| f.severity == Severity::Refusal)
    }

    /// Tag writes whose fate is unknown.
    pub fn unsure(&self) -> Vec<&str> {
        self.subjects(|f| f.code == code::UNSURE)
    }

    /// Tags another writer changed around this run's write.
    pub fn races(&self) -> Vec<&str> {
        self.subjects(|f| {
            [code::RACE, code::UNSETTLED, code::TAKEN_MEANWHILE].contains(&f.code.as_str())
        })
    }

    /// Tag writes that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.subjects(|f| f.code == code::PUSH_FAILED)
    }

    /// Planned tag writes that were never sent.
    pub fn not_written(&self) -> Vec<&str> {
        self.subjects(|f| f.code == code::NOT_WRITTEN)
    }

    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
}

/// The JSON report: the same fields on every exit.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.status();
        let mut s = serializer.serialize_struct("Report", 15)?;
        s.serialize_field("status", status.name())?;
        s.serialize_field("exit_code", &status.exit_code())?;
        s.serialize_field("dry_run", &self.dry_run)?;
        s.serialize_field("verified", &self.verified())?;
        s.serialize_field("decisions", &self.decisions)?;
        s.serialize_field("written", &self.written)?;
        s.serialize_field("refused", &self.refused())?;
        s.serialize_field("failed", &self.failed())?;
        s.serialize_field("unsure", &self.unsure())?;
        s.serialize_field("races", &self.races())?;
        s.serialize_field("not_written", &self.not_written())?;
        s.serialize_field("findings", &self.findings)?;
        s.serialize_field("clean", &self.findings.is_empty())?;
        if let Some(audit) = &self.audit {
            s.serialize_field("images", &audit.images)?;
            s.serialize_field("unaudited_templates", &audit.unaudited_templates)?;
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_finding_decides_the_exit_code() {
        let mut r = Report::default();
        assert_eq!(r.status().exit_code(), 0);
        r.push(Finding::new(code::NO_TAGS, Severity::Warning, "none"));
        assert_eq!(r.status(), Status::Ok);
        r.push(Finding::new(code::REGISTRY_REFUSED, Severity::Refusal, "no").about("a:1"));
        assert_eq!(r.status().exit_code(), 3);
        r.push(Finding::new(code::UNSURE, Severity::Error, "?").about("a:2"));
        assert_eq!(r.status().exit_code(), 1);
        assert_eq!(r.refused(), ["a:1"]);
        assert_eq!(r.unsure(), ["a:2"]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["findings"][1]["code"], "tagguard::push::registry_refused");
        assert_eq!(v["findings"][1]["severity"], "refusal");
    }
}
