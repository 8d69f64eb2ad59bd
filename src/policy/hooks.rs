//! `hooks:`: how `tagguard hook pre-push` behaves.

/// `hooks.pre-push.registry`: whether the pre-push hook asks the registry if a release's
/// immutable image tags already exist for another commit, and what an unreachable registry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistryCheck {
    /// Ask; an unreachable registry refuses the push.
    Strict,
    /// Ask; an unreachable registry is a warning and the push goes on.
    #[default]
    Warn,
    /// Do not ask.
    Off,
}

impl RegistryCheck {
    pub const ALL: [RegistryCheck; 3] = [Self::Strict, Self::Warn, Self::Off];

    pub fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Warn => "warn",
            Self::Off => "off",
        }
    }
}

/// The `hooks:` section; every key is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks {
    pub pre_push_registry: RegistryCheck,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn parse(hooks: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::parse("p.yml", &format!("version: 1\ntags: [latest]\n{hooks}"))
    }

    #[test]
    fn registry_check_defaults_to_warn() {
        assert_eq!(
            parse("").unwrap().hooks.pre_push_registry,
            RegistryCheck::Warn
        );
        assert_eq!(
            parse("hooks: {}\n").unwrap().hooks.pre_push_registry,
            RegistryCheck::Warn
        );
    }

    #[test]
    fn registry_check_is_read() {
        let policy = parse("hooks:\n  pre-push:\n    registry: strict\n").unwrap();
        assert_eq!(policy.hooks.pre_push_registry, RegistryCheck::Strict);
        let policy = parse("hooks: { pre-push: { registry: off } }\n").unwrap();
        assert_eq!(policy.hooks.pre_push_registry, RegistryCheck::Off);
    }

    #[test]
    fn unknown_values_and_keys_are_problems_with_suggestions() {
        let err = parse("hooks:\n  pre-push:\n    registry: strikt\n").unwrap_err();
        assert_eq!(
            err.problems[0].message,
            "`hooks.pre-push.registry` must be strict, warn or off"
        );
        assert_eq!(
            err.problems[0].help.as_deref(),
            Some("did you mean `strict`?")
        );
        assert_eq!(err.problems[0].line, 5);
        let err = parse("hooks:\n  pre-pushh: {}\n").unwrap_err();
        assert_eq!(
            err.problems[0].help.as_deref(),
            Some("did you mean `pre-push`?")
        );
    }
}
