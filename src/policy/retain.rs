//! `retain:` on a mutable rule: how long its tags live, for `tagguard prune`. A tag is kept while
//! any of the keys keeps it; a rule without `retain` is never pruned.

use std::time::Duration;

use serde::Serialize;

/// What keeps the tags of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Retain {
    /// `while`: kept while the branch or pull request the tag was made for is alive.
    #[serde(rename = "while")]
    pub while_alive: Option<Alive>,
    /// `newest: N`: the rule's N newest tags are kept.
    pub newest: Option<usize>,
    /// `younger-than: 30d`: kept while younger than this.
    #[serde(rename = "younger-than")]
    pub younger_than: Option<Age>,
}

/// `while:`: what must still exist for the tag to be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alive {
    /// The branch the tag names still exists on the checkout's remote.
    BranchExists,
    /// The pull/merge request the tag names is still open.
    PrOpen,
}

impl Alive {
    pub const ALL: [Alive; 2] = [Alive::BranchExists, Alive::PrOpen];

    pub fn name(self) -> &'static str {
        match self {
            Alive::BranchExists => "branch-exists",
            Alive::PrOpen => "pr-open",
        }
    }

    /// The template variable a tag must carry for this liveness to be asked about.
    pub fn variable(self) -> &'static str {
        match self {
            Alive::BranchExists => "branch",
            Alive::PrOpen => "pr_number",
        }
    }
}

/// An age as the policy writes it: a whole number and a unit, `90m`, `12h`, `30d`, `2w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Age {
    pub text: String,
    pub duration: Duration,
}

impl Serialize for Age {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl Age {
    pub const UNITS: &'static str = "s, m, h, d or w";

    /// Parses `<n><unit>` with unit s, m, h, d or w; `n` at least 1.
    pub fn parse(text: &str) -> Result<Age, String> {
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` does not start with a whole number"))?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(format!("`{text}` has no unit of {}", Self::UNITS)),
        };
        if n == 0 {
            return Err("an age of zero keeps nothing".to_owned());
        }
        let duration = n
            .checked_mul(seconds)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))?;
        Ok(Age {
            text: text.to_owned(),
            duration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(Age::parse("30d").unwrap().duration.as_secs(), 30 * 86_400);
        assert_eq!(Age::parse("2w").unwrap().duration.as_secs(), 14 * 86_400);
        assert_eq!(Age::parse("90m").unwrap().duration.as_secs(), 5400);
        assert!(Age::parse("0d").is_err());
        assert!(Age::parse("30").is_err());
        assert!(Age::parse("d").is_err());
        assert!(Age::parse("3 days").is_err());
        assert!(Age::parse("99999999999999999w").is_err());
    }
}
