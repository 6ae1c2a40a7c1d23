//! The public-repository guard: a workflow artifact is readable by everyone who can read the
//! repository (in a public repository, by any signed-in GitHub user), so a plain backup is not
//! uploaded from a public repository unless the user explicitly allows it.
//!
//! The visibility comes from the workflow's event payload (`GITHUB_EVENT_PATH`,
//! `repository.visibility` or `repository.private`, present in every event GitHub sends for a
//! repository), else from the REST API (`GET /repos/{owner}/{repo}`) when a token is there.
//! When neither tells, the repository is treated as public: refusing a backup that could have
//! been uploaded costs a re-run, uploading one that should not have been cannot be undone.
//! Outside GitHub Actions (`GITHUB_ACTIONS` not `true`) there is nothing to guard.

use serde_json::Value;

use super::{ArtifactStore, GitHub};
use crate::error::{Error, Result};

/// Who can read the repository, as far as it could be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    Public,
    /// Private or internal: anyone with read access to the repository.
    Restricted,
    /// Neither the event payload nor the API said; the reason, for the message.
    Unknown(String),
}

/// How to get past the guard, in every refusal.
const FIX: &str = "encrypt the backup: pass --encrypt-to with an age or SSH public key (the \
action's `encrypt-to` input) and keep the secret key in a repository secret for restores \
(--identity / DBBACKUP_IDENTITY, the action's `identity` input). To upload the plain database \
anyway, knowing that anyone who can read the repository can download it, pass \
--allow-public-plaintext (the action's `allow-public-plaintext: true`)";

/// What the guard has to say about an allowed plain upload, for the caller to say: the guard
/// decides, the command reports (log, annotation, job summary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line for the job summary: who can download the artifact.
    pub line: String,
    /// Anyone may download it (a public repository, or one that may be): worth a warning
    /// annotation, not only a line in the summary.
    pub public: bool,
}

/// Checks an upload before anything is uploaded (or backed up: callers run it first).
/// `github` is used only when the event payload does not tell the visibility. An allowed plain
/// upload returns what to tell the user; an encrypted one, or one outside GitHub Actions,
/// returns nothing.
pub fn check_upload(
    encrypted: bool,
    allow_public_plaintext: bool,
    github: Option<&GitHub>,
) -> Result<Option<Notice>> {
    let in_actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    if encrypted || !in_actions {
        return Ok(None);
    }
    let visibility = match visibility_from_event() {
        Some(v) => v,
        None => visibility_from_api(github),
    };
    let repo = std::env::var("GITHUB_REPOSITORY").unwrap_or_else(|_| "this repository".into());
    match (visibility, allow_public_plaintext) {
        (Visibility::Restricted, _) => Ok(Some(Notice {
            line: format!(
                "This backup is not encrypted: anyone with read access to {repo} can download \
                 the artifact (--encrypt-to encrypts it)."
            ),
            public: false,
        })),
        (Visibility::Public, true) | (Visibility::Unknown(_), true) => Ok(Some(Notice {
            line: format!(
                "This backup is NOT encrypted and {repo} may be public \
                 (--allow-public-plaintext): any signed-in GitHub user can download the artifact."
            ),
            public: true,
        })),
        (Visibility::Public, false) => Err(Error::Usage(format!(
            "refusing to upload a plain (unencrypted) backup from the public repository {repo}: \
             any signed-in GitHub user can download a workflow artifact of a public repository. \
             Fix: {FIX}"
        ))),
        (Visibility::Unknown(why), false) => Err(Error::Usage(format!(
            "refusing to upload a plain (unencrypted) backup: cannot tell whether {repo} is \
             public ({why}), so it is treated as public. Fix: {FIX}"
        ))),
    }
}

/// `repository.visibility` (`public`, `private`, `internal`) or `repository.private` from the
/// event payload; `None` when the payload is missing or does not say.
fn visibility_from_event() -> Option<Visibility> {
    let path = std::env::var_os("GITHUB_EVENT_PATH").filter(|p| !p.is_empty())?;
    let payload: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    visibility_of(payload.get("repository")?)
}

/// Reads a repository object as both the event payload and the REST API give it.
fn visibility_of(repository: &Value) -> Option<Visibility> {
    match repository.get("visibility").and_then(Value::as_str) {
        Some("public") => return Some(Visibility::Public),
        Some("private" | "internal") => return Some(Visibility::Restricted),
        _ => {}
    }
    match repository.get("private").and_then(Value::as_bool) {
        Some(true) => Some(Visibility::Restricted),
        Some(false) => Some(Visibility::Public),
        None => None,
    }
}

fn visibility_from_api(github: Option<&GitHub>) -> Visibility {
    let Some(github) = github else {
        return Visibility::Unknown(
            "the event payload (GITHUB_EVENT_PATH) does not say and no GitHub token was given \
             to ask the API"
                .into(),
        );
    };
    match ArtifactStore::connect(github.clone()).and_then(|store| store.repository()) {
        Ok(repository) => visibility_of(&repository).unwrap_or_else(|| {
            Visibility::Unknown("the repository API answer does not say".into())
        }),
        Err(e) => Visibility::Unknown(format!("asking the API failed: {e}")),
    }
}

impl ArtifactStore {
    /// `GET /repos/{owner}/{repo}`: the repository as the REST API describes it. Not retried:
    /// the event payload is the usual source, and a failure here only makes the guard refuse.
    fn repository(&self) -> Result<Value> {
        let (client, gh) = self.rest()?;
        self.rt
            .block_on(client.get(self.repo_path()?, None::<&()>))
            .map_err(|e| Error::Remote(format!("read repository {}/{}: {e}", gh.owner, gh.repo)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_visibility_and_private_flags() {
        let of = |v: Value| visibility_of(&v);
        assert_eq!(
            of(json!({"visibility": "public"})),
            Some(Visibility::Public)
        );
        assert_eq!(
            of(json!({"visibility": "internal", "private": true})),
            Some(Visibility::Restricted)
        );
        assert_eq!(of(json!({"private": false})), Some(Visibility::Public));
        assert_eq!(of(json!({"private": true})), Some(Visibility::Restricted));
        assert_eq!(of(json!({"name": "x"})), None);
    }
}
