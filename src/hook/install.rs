//! `tagguard hook install`: writes the repository's `pre-push` hook, where git looks for it
//! (`core.hooksPath`, else `hooks/` in the common git dir), and never overwrites a hook it did
//! not write.

use std::path::{Path, PathBuf};

/// The line that marks a hook as ours, so installing again updates it.
pub const MARKER: &str = "# tagguard-managed pre-push hook";
/// Where `--chain` moves an existing hook; ours runs it first.
pub const CHAINED: &str = "pre-push.tagguard-chained";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Created(PathBuf),
    /// Ours was there already and is rewritten.
    Updated(PathBuf),
    /// The existing hook was moved to `kept` and is run before ours.
    Chained {
        hook: PathBuf,
        kept: PathBuf,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InstallError {
    #[error("could not open the git repository at {dir}: {message}")]
    #[diagnostic(code(tagguard::hook::repository))]
    Repository { dir: String, message: String },
    #[error("{path} exists and was not written by tagguard; it is left as it is")]
    #[diagnostic(
        code(tagguard::hook::exists),
        help(
            "pass --chain to keep it and run it before tagguard's check, or merge `tagguard hook pre-push \"$@\"` into it yourself (stdin carries the pushed refs)"
        )
    )]
    Exists { path: String },
    #[error("{path} exists already, so --chain has nowhere to keep the current hook")]
    #[diagnostic(
        code(tagguard::hook::chain_taken),
        help("merge the two hooks by hand, then run `tagguard hook install` again")
    )]
    ChainTaken { path: String },
    #[error("could not write {path}: {source}")]
    #[diagnostic(code(tagguard::hook::write))]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The directory git runs hooks from for the repository containing `dir`.
pub fn hooks_dir(dir: &Path) -> Result<PathBuf, InstallError> {
    let failed = |e: git2::Error| InstallError::Repository {
        dir: dir.display().to_string(),
        message: e.message().to_owned(),
    };
    let repo = git2::Repository::discover(dir).map_err(failed)?;
    let configured = repo
        .config()
        .map_err(failed)?
        .get_path("core.hooksPath")
        .ok();
    Ok(match configured {
        // githooks(5): a relative core.hooksPath is relative to where hooks run, the top of
        // the work tree (the git dir in a bare repository).
        Some(path) if path.is_relative() => repo.workdir().unwrap_or(repo.path()).join(path),
        Some(path) => path,
        None => repo.commondir().join("hooks"),
    })
}

/// Writes the hook. `exe` is the tagguard to run (the script falls back to `tagguard` on PATH
/// when it is gone).
pub fn install(dir: &Path, exe: &Path, chain: bool) -> Result<Installed, InstallError> {
    let hooks = hooks_dir(dir)?;
    let hook = hooks.join("pre-push");
    let kept = hooks.join(CHAINED);
    let write = |path: &Path, text: &str| write_executable(path, text);
    match std::fs::read(&hook) {
        Ok(existing) if String::from_utf8_lossy(&existing).contains(MARKER) => {
            write(&hook, &script(exe, kept.exists()))?;
            Ok(Installed::Updated(hook))
        }
        Ok(_) if !chain => Err(InstallError::Exists {
            path: hook.display().to_string(),
        }),
        Ok(_) => {
            if kept.exists() {
                return Err(InstallError::ChainTaken {
                    path: kept.display().to_string(),
                });
            }
            std::fs::rename(&hook, &kept).map_err(|source| InstallError::Write {
                path: kept.display().to_string(),
                source,
            })?;
            write(&hook, &script(exe, true))?;
            Ok(Installed::Chained { hook, kept })
        }
        Err(_) => {
            std::fs::create_dir_all(&hooks).map_err(|source| InstallError::Write {
                path: hooks.display().to_string(),
                source,
            })?;
            write(&hook, &script(exe, false))?;
            Ok(Installed::Created(hook))
        }
    }
}

fn write_executable(path: &Path, text: &str) -> Result<(), InstallError> {
    let failed = |source| InstallError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(path, text).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(failed)?;
    }
    Ok(())
}

/// The hook script. Git hands the pushed refs on stdin; a chained hook needs them too, so
/// they are read once and given to both.
pub fn script(exe: &Path, chained: bool) -> String {
    let exe = shell_quote(&exe.display().to_string());
    let run = if chained {
        format!(
            "input=$(cat)\nprintf '%s\\n' \"$input\" | \"$(dirname \"$0\")/{CHAINED}\" \"$@\" || exit\nprintf '%s\\n' \"$input\" | \"$tagguard\" hook pre-push \"$@\"\n"
        )
    } else {
        "exec \"$tagguard\" hook pre-push \"$@\"\n".to_owned()
    };
    format!(
        "#!/bin/sh\n{MARKER} (`tagguard hook install`): refuses pushes that would misname, move or\n# delete release tags, or reuse a released version's image tags. Reinstall to update.\ntagguard={exe}\n[ -x \"$tagguard\" ] || tagguard=tagguard\n{run}"
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_path_and_passes_arguments() {
        let s = script(Path::new("/opt/it's/tagguard"), false);
        assert!(s.starts_with("#!/bin/sh\n# tagguard-managed pre-push hook"));
        assert!(s.contains(r"tagguard='/opt/it'\''s/tagguard'"), "{s}");
        assert!(s.ends_with("exec \"$tagguard\" hook pre-push \"$@\"\n"));
    }

    #[test]
    fn a_chained_script_runs_the_kept_hook_first_with_the_same_input() {
        let s = script(Path::new("/bin/tagguard"), true);
        assert!(s.contains("input=$(cat)"));
        let kept = s.find(CHAINED).unwrap();
        let ours = s.rfind("hook pre-push").unwrap();
        assert!(kept < ours, "{s}");
        assert!(s.contains("\"$@\" || exit\n"), "{s}");
    }
}
