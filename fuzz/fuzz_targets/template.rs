//! Any template text with any variable values: parse, check and render within fuel; never a
//! panic or a runaway. Values reaching a tag go through sanitizing, so the output of the
//! sanitize filter is always tag-safe.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (template, value) = input;
    let env = tagguard::template::environment();
    let _ = tagguard::template::check(&env, template, &Default::default());
    let mut vars = BTreeMap::new();
    for (name, _) in tagguard::template::VARIABLES {
        vars.insert(*name, value.to_owned());
    }
    let _ = tagguard::template::render(&env, template, &vars);
    let safe = tagguard::sanitize::tag_component(value);
    assert_eq!(tagguard::sanitize::tag_problem(&safe), None, "{safe:?}");
});
