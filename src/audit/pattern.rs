//! A tag template turned into a pattern that recognises the tags it renders: `sha-{{ short_sha }}`
//! becomes `^sha-([0-9a-f]{7})$`. The template is rendered once with a marker in place of every
//! variable; the text between markers is literal and each marker becomes its variable's shape.
//! Templates whose filters change the markers (`upper`, `date(…)`) give no pattern: their
//! tags are not audited, which is said in the report.

use std::collections::BTreeMap;

use regex::Regex;

use crate::template;

/// A compiled tag pattern and which variable each capture group holds.
#[derive(Debug, Clone)]
pub struct TagPattern {
    regex: Regex,
    /// The variable of capture group `i + 1`.
    groups: Vec<&'static str>,
    /// How many characters of a tag the template fixes (its literal text).
    literal: usize,
}

/// The values a tag gave the template's variables.
pub type Captures = BTreeMap<&'static str, String>;

const MARK: &str = "qqtgq";

impl TagPattern {
    /// The pattern of `template`, or `None` when it cannot be recognised in tags.
    pub fn new(template: &str, short_sha_length: usize) -> Option<TagPattern> {
        let env = template::environment();
        let vars: BTreeMap<&'static str, String> = template::VARIABLES
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (*name, format!("{MARK}{i}{MARK}")))
            .collect();
        let rendered = template::render(&env, template, &vars).ok()?;
        let mut regex = String::from("^");
        let mut groups = Vec::new();
        let mut literal = 0;
        let mut rest = rendered.as_str();
        while let Some(start) = rest.find(MARK) {
            literal += rest[..start].len();
            regex.push_str(&regex::escape(&rest[..start]));
            let after = &rest[start + MARK.len()..];
            let end = after.find(MARK)?;
            let index: usize = after[..end].parse().ok()?;
            let name = template::VARIABLES.get(index)?.0;
            regex.push('(');
            regex.push_str(&shape(name, short_sha_length));
            regex.push(')');
            groups.push(name);
            rest = &after[end + MARK.len()..];
        }
        // A filter that changed a marker (`upper`) leaves one behind in another shape.
        if rest.to_ascii_lowercase().contains(MARK) {
            return None;
        }
        regex.push_str(&regex::escape(rest));
        regex.push('$');
        Some(TagPattern {
            regex: Regex::new(&regex).ok()?,
            groups,
            literal: literal + rest.len(),
        })
    }

    /// The variables' values when `tag` has this pattern's shape (a variable used twice must
    /// have the same value both times).
    pub fn captures(&self, tag: &str) -> Option<Captures> {
        let caps = self.regex.captures(tag)?;
        let mut out = Captures::new();
        for (i, name) in self.groups.iter().enumerate() {
            let value = caps.get(i + 1)?.as_str();
            match out.get(name) {
                Some(earlier) if earlier != value => return None,
                _ => {
                    out.insert(name, value.to_owned());
                }
            }
        }
        Some(out)
    }

    pub fn uses(&self, variable: &str) -> bool {
        self.groups.contains(&variable)
    }

    /// How specific the pattern is: the literal text it fixes, then how many variables it
    /// explains. `mr-{{ pr_number }}` is more specific than `{{ branch }}-{{ build_number }}`,
    /// `{{ version }}-{{ short_sha }}` than `{{ version }}`.
    pub fn specificity(&self) -> (usize, usize) {
        (self.literal, self.groups.len())
    }
}

/// What a variable's value looks like in a tag (tags are `[A-Za-z0-9_][A-Za-z0-9_.-]*`).
fn shape(variable: &str, short_sha_length: usize) -> String {
    const PART: &str = "[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*";
    match variable {
        "sha" => "[0-9a-f]{40}".to_owned(),
        "short_sha" => format!("[0-9a-f]{{{short_sha_length}}}"),
        "version" => format!("[0-9]+\\.[0-9]+\\.[0-9]+(?:-{PART})?(?:_{PART})?"),
        "major" | "minor" | "patch" | "pr_number" | "build_number" => "[0-9]+".to_owned(),
        "prerelease" => PART.to_owned(),
        "timestamp" | "commit_timestamp" => "[0-9]{14}".to_owned(),
        _ => "[0-9A-Za-z_.-]+".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(template: &str, tag: &str) -> Option<Vec<(String, String)>> {
        let p = TagPattern::new(template, 7).expect("a pattern");
        p.captures(tag)
            .map(|c| c.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    #[test]
    fn commit_templates_recognise_their_tags_only() {
        assert_eq!(
            caps("sha-{{ short_sha }}", "sha-deadbee"),
            Some(vec![("short_sha".into(), "deadbee".into())])
        );
        assert_eq!(caps("sha-{{ short_sha }}", "sha-deadbeef"), None);
        assert_eq!(caps("sha-{{ short_sha }}", "xsha-deadbee"), None);
        assert_eq!(caps("sha-{{ short_sha }}", "sha-DEADBEE"), None);
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert!(caps("{{ sha }}", full).is_some());
    }

    #[test]
    fn version_and_floating_templates() {
        assert_eq!(
            caps("{{ version }}", "1.2.3-rc.1_b.2"),
            Some(vec![("version".into(), "1.2.3-rc.1_b.2".into())])
        );
        assert_eq!(caps("{{ version }}", "1.2"), None);
        assert_eq!(caps("{{ version }}", "latest"), None);
        assert_eq!(
            caps("{{ major }}.{{ minor }}", "1.4"),
            Some(vec![
                ("major".into(), "1".into()),
                ("minor".into(), "4".into())
            ])
        );
        assert_eq!(caps("{{ major }}.{{ minor }}", "1.4.2"), None);
        assert_eq!(caps("latest", "latest"), Some(vec![]));
        assert_eq!(caps("v{{ version }}", "1.0.0"), None);
    }

    #[test]
    fn literal_dots_are_literal_and_repeats_must_agree() {
        assert_eq!(caps("a.{{ major }}", "aX1"), None);
        assert!(caps("{{ major }}-{{ major }}", "1-1").is_some());
        assert_eq!(caps("{{ major }}-{{ major }}", "1-2"), None);
    }

    #[test]
    fn filters_that_keep_the_value_work_others_give_no_pattern() {
        assert!(caps("br-{{ branch | lower | truncate(40) }}", "br-main").is_some());
        assert!(TagPattern::new("{{ commit_timestamp | date('%Y') }}", 7).is_none());
        assert!(TagPattern::new("{{ branch | upper }}", 7).is_none());
    }
}
