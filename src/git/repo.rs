//! Where a client's repository argument points: always under one root, by canonical
//! components only, and never out of the root through a symlink.

use std::path::{Path, PathBuf};

/// Why a path is refused. The client is told only that the repository is not available.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// `..`, `.`, hidden or empty components, `~user` forms, backslashes.
    #[error("path is not a canonical repository path")]
    BadPath,
    /// Resolving symlinks leads outside the root.
    #[error("path escapes the repository root")]
    Escapes,
    /// A repository to create would lie inside another one (its `refs/`, say), or where
    /// something that is not a repository already is.
    #[error("path lies inside another repository or on a non-repository")]
    Occupied,
    /// The file system said no.
    #[error("cannot inspect repository: {0}")]
    Io(String),
}

/// A repository argument resolved under the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    /// Its name relative to the root, with `.git` when the repository is bare-named
    /// (`team/app.git`): the name used for authorization and logs.
    pub name: String,
    /// Absolute path handed to git.
    pub path: PathBuf,
    /// Whether it exists as a git repository.
    pub exists: bool,
}

/// The directory all repositories live in.
#[derive(Clone, Debug)]
pub struct RepoRoot {
    root: PathBuf,
}

impl RepoRoot {
    /// A root; it must exist.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// The canonical root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves what a git client sent: `/a/b.git` (ssh:// form), `a/b` (scp form), `~/a/b`.
    /// `a/b` finds `a/b.git` or `a/b`; a missing repository resolves to `<a/b>.git`.
    pub fn resolve(&self, client_path: &str) -> Result<Repo, RepoError> {
        let rel = canonical_name(client_path)?;
        let candidates = if rel.ends_with(".git") {
            vec![rel.clone()]
        } else {
            vec![format!("{rel}.git"), rel.clone()]
        };
        for name in &candidates {
            let path = self.root.join(name);
            if !path.exists() {
                continue;
            }
            let real = path
                .canonicalize()
                .map_err(|e| RepoError::Io(e.to_string()))?;
            if !real.starts_with(&self.root) {
                return Err(RepoError::Escapes);
            }
            if is_git_dir(&real) || is_git_dir(&real.join(".git")) {
                return Ok(Repo {
                    name: name.clone(),
                    path: real,
                    exists: true,
                });
            }
        }
        // Missing: where it would be created, provided nothing is there yet, no existing
        // ancestor escapes the root and none is a repository (a push must not create one inside
        // another's `refs/` or objects).
        let name = candidates.into_iter().next().ok_or(RepoError::BadPath)?;
        let path = self.root.join(&name);
        if path.symlink_metadata().is_ok() {
            return Err(RepoError::Occupied);
        }
        let mut ancestor = path.parent();
        while let Some(a) = ancestor.filter(|a| *a != self.root) {
            if a.exists() {
                let real = a.canonicalize().map_err(|e| RepoError::Io(e.to_string()))?;
                if !real.starts_with(&self.root) {
                    return Err(RepoError::Escapes);
                }
                if is_git_dir(&real) || is_git_dir(&real.join(".git")) {
                    return Err(RepoError::Occupied);
                }
            }
            ancestor = a.parent();
        }
        Ok(Repo {
            name,
            path,
            exists: false,
        })
    }
}

/// The repository name a client path stands for, by its text alone: `/a/b.git`, `~/a/b.git`
/// and `a/b.git` are all `a/b.git`. Refuses `..`, `.`, hidden, empty or `-`-led components,
/// `~user`, backslashes, control characters and more than 16 levels.
pub fn canonical_name(client_path: &str) -> Result<String, RepoError> {
    let rel = client_path
        .strip_prefix("~/")
        .or_else(|| client_path.strip_prefix('/'))
        .unwrap_or(client_path);
    let components: Vec<&str> = rel.split('/').collect();
    // No component may start with '-': the name reaches an upstream's command line, where a
    // leading dash would be an option (`/--x` once passed as '--x').
    let canonical = components.iter().all(|c| {
        !c.is_empty()
            && !c.starts_with('.')
            && !c.starts_with('-')
            && !c.starts_with('~')
            && !c.contains('\\')
            && !c.chars().any(char::is_control)
    });
    if !canonical || components.is_empty() || components.len() > 16 {
        return Err(RepoError::BadPath);
    }
    Ok(components.join("/"))
}

/// A git directory: `HEAD`, `objects/` and `refs/` (bare repositories and `.git` dirs).
fn is_git_dir(p: &Path) -> bool {
    p.join("HEAD").is_file() && p.join("objects").is_dir() && p.join("refs").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(root: &Path, name: &str) {
        let p = root.join(name);
        std::fs::create_dir_all(p.join("objects")).unwrap();
        std::fs::create_dir_all(p.join("refs")).unwrap();
        std::fs::write(p.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    }

    #[test]
    fn resolves_the_forms_git_clients_send() {
        let dir = tempfile::tempdir().unwrap();
        bare(dir.path(), "team/app.git");
        bare(dir.path(), "plain");
        let root = RepoRoot::new(dir.path()).unwrap();
        for arg in [
            "/team/app.git",
            "team/app.git",
            "team/app",
            "~/team/app",
            "/team/app",
        ] {
            let r = root.resolve(arg).unwrap();
            assert_eq!((r.name.as_str(), r.exists), ("team/app.git", true), "{arg}");
            assert!(r.path.starts_with(root.path()));
        }
        assert_eq!(root.resolve("plain").unwrap().name, "plain");
        let missing = root.resolve("/new/thing").unwrap();
        assert_eq!(
            (missing.name.as_str(), missing.exists),
            ("new/thing.git", false)
        );
    }

    #[test]
    fn refuses_non_canonical_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = RepoRoot::new(dir.path()).unwrap();
        for arg in [
            "../x",
            "/a/../b",
            "a/./b",
            "a//b",
            ".hidden",
            "a/.git",
            "~alice/x",
            "/",
            "",
            "a\\b",
            "~",
            "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
        ] {
            assert_eq!(root.resolve(arg), Err(RepoError::BadPath), "{arg:?}");
        }
    }

    #[test]
    fn refuses_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        bare(outside.path(), "secret.git");
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.git"),
            dir.path().join("link.git"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        let root = RepoRoot::new(dir.path()).unwrap();
        assert_eq!(root.resolve("link"), Err(RepoError::Escapes));
        assert_eq!(root.resolve("out/secret.git"), Err(RepoError::Escapes));
        assert_eq!(
            root.resolve("out/newrepo"),
            Err(RepoError::Escapes),
            "creation through a link"
        );
    }

    #[test]
    fn a_new_repository_never_lands_inside_another_or_on_a_file() {
        let dir = tempfile::tempdir().unwrap();
        bare(dir.path(), "a.git");
        std::fs::write(dir.path().join("notes.git"), "x").unwrap();
        let root = RepoRoot::new(dir.path()).unwrap();
        for inside in ["a.git/refs/x.git", "a.git/objects/y", "/a.git/hooks/z.git"] {
            assert_eq!(root.resolve(inside), Err(RepoError::Occupied), "{inside}");
        }
        assert_eq!(root.resolve("notes.git"), Err(RepoError::Occupied));
        assert!(root.resolve("team/new.git").is_ok_and(|r| !r.exists));
    }

    #[test]
    fn dash_led_components_are_refused() {
        for bad in ["/--upload-pack=x", "-x.git", "team/-rf.git", "~/-x"] {
            assert_eq!(canonical_name(bad), Err(RepoError::BadPath), "{bad}");
        }
    }
}
