//! Any `WWW-Authenticate` header values (one per line): never a panic, never a hang; schemes and
//! parameter names come out lowercase, and the chosen scheme is one we know.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard_registry::fuzzing::Scheme;
use tagguard_registry::fuzzing::parse_challenges;

fuzz_target!(|input: &str| {
    let challenges = parse_challenges(input.split('\n'));
    for c in &challenges {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for name in c.params.keys() {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }
    match Scheme::from_challenges(&challenges) {
        Some(Scheme::Bearer { realm, .. }) => {
            assert!(
                challenges
                    .iter()
                    .any(|c| c.param("realm") == Some(realm.as_str()))
            )
        }
        Some(Scheme::Basic) => assert!(challenges.iter().any(|c| c.scheme == "basic")),
        Some(Scheme::Anonymous) => panic!("a challenge never means anonymous"),
        None => {}
    }
});
