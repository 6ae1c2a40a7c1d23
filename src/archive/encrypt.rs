//! Encrypted backups: the finished gzip stream sealed with [age](https://age-encryption.org)
//! before it gets its final name, so a backup that leaves the machine (a workflow artifact is
//! readable by everyone who can read the repository) is never a plain database.
//!
//! An encrypted backup is still two files, so listing, rotation and artifacts treat it like any
//! other backup:
//! - `<stem>-<stamp>[-N].<ext>.gz.age`: the gzip stream, age-encrypted while it is written
//!   (`age -d -i KEY F | gunzip` gives the dump back without dbbackup);
//! - the same name plus `.manifest.json`: an [`Envelope`], readable without the key but holding
//!   only what listing, pruning and a failed decryption need to say: the file's name, creation
//!   time, size and sha256, and the public recipients it was encrypted to. The manifest itself
//!   (table names, row counts, checksums are data too) travels inside it, age-encrypted to the
//!   same recipients.
//!
//! age's X25519 stanzas do not name their recipient, so the envelope lists the recipients: a
//! missing or wrong identity can then say which key the backup needs.

use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::compress::HashingWriter;
use super::manifest::{MANIFEST_VERSION, Manifest};
use crate::error::{Error, Result};

/// Appended to the archive's name (`app-<stamp>.sqlite.gz.age`).
pub const SUFFIX: &str = ".age";

/// Where the identity comes from when `--identity` is not given: the secret key's text itself,
/// the way a workflow passes a secret.
pub const IDENTITY_VAR: &str = "DBBACKUP_IDENTITY";

/// How to give the identity, repeated in every message about a missing or wrong one.
pub const IDENTITY_HINT: &str = "pass the matching secret key with --identity FILE or in the \
DBBACKUP_IDENTITY environment variable (in a workflow: `DBBACKUP_IDENTITY: ${{ secrets.NAME }}`, \
or the action's `identity` input)";

/// The public keys a backup is encrypted to: `age1…` (X25519) and `ssh-ed25519`/`ssh-rsa` keys.
pub struct Recipients {
    /// As the user wrote them, for the envelope and for messages.
    shown: Vec<String>,
    keys: Vec<Box<dyn age::Recipient + Send>>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Recipients").field(&self.shown).finish()
    }
}

impl Recipients {
    /// Parses `--encrypt-to` values. Each value may hold several recipients, one per line or
    /// separated by commas (how `DBBACKUP_RECIPIENTS` and the action's input carry a list);
    /// blank lines and `#` comments are skipped. `None` when there is none at all.
    pub fn parse(values: &[String]) -> Result<Option<Recipients>> {
        let mut recipients = Recipients {
            shown: Vec::new(),
            keys: Vec::new(),
        };
        let entries = values
            .iter()
            .flat_map(|v| v.split(['\n', ',']))
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for entry in entries {
            recipients.keys.push(parse_recipient(entry)?);
            if !recipients.shown.iter().any(|s| s == entry) {
                recipients.shown.push(entry.to_string());
            }
        }
        Ok((!recipients.keys.is_empty()).then_some(recipients))
    }

    pub fn shown(&self) -> &[String] {
        &self.shown
    }

    fn encryptor(&self) -> io::Result<age::Encryptor> {
        age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age cannot encrypt to these recipients: {e}")))
    }

    /// Encrypts a small value whole (the manifest).
    fn seal(&self, plain: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = self.encryptor()?.wrap_output(Vec::new())?;
        out.write_all(plain)?;
        out.finish()
    }
}

/// Whether TEXT holds a secret key (an age identity or a PEM/OpenSSH private key): text that
/// must never be echoed, whatever it was given as.
pub fn is_secret_key(text: &str) -> bool {
    text.contains("AGE-SECRET-KEY-") || text.contains("PRIVATE KEY")
}

/// Refuses a command line that holds a secret key in any argument (`--encrypt-to "$(cat
/// key)"`), before the argument parser can quote it in an error. Names the option only.
pub fn refuse_secret_key_args(args: &[String]) -> Result<()> {
    let Some(at) = args.iter().position(|a| is_secret_key(a)) else {
        return Ok(());
    };
    let option = args[..at]
        .last()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .or_else(|| {
            let a = &args[at];
            a.starts_with("--")
                .then(|| a.split('=').next().unwrap_or(a).to_string())
        });
    let given = option.map_or("an argument".to_string(), |o| o.to_string());
    Err(Error::Usage(format!(
        "{given} was given a secret key (not shown): --encrypt-to takes the public key \
         (age-keygen -y KEYFILE, or the .pub file's line), and --identity the name of the \
         secret key's file (or its text in DBBACKUP_IDENTITY)"
    )))
}

fn parse_recipient(entry: &str) -> Result<Box<dyn age::Recipient + Send>> {
    let refuse = |why: String| {
        Error::Usage(format!(
            "--encrypt-to {entry:?}: {why}; give an age public key (age1…, from `age-keygen`) \
             or an SSH public key (`ssh-ed25519 AAAA…`, the line of a .pub file)"
        ))
    };
    if entry.starts_with("age1") {
        let key: age::x25519::Recipient = entry
            .parse()
            .map_err(|e: &str| refuse(format!("not an age public key ({e})")))?;
        Ok(Box::new(key))
    } else if entry.starts_with("ssh-") {
        let key: age::ssh::Recipient = entry
            .parse()
            .map_err(|e| refuse(format!("not a usable SSH public key ({e:?})")))?;
        Ok(Box::new(key))
    } else if is_secret_key(entry) {
        // Never echo a secret key back, even one given by mistake.
        Err(Error::Usage(
            "--encrypt-to was given a secret key: give its public key (age-keygen -y KEYFILE), \
             and keep the secret key for --identity"
                .into(),
        ))
    } else {
        Err(refuse("not a recipient".into()))
    }
}

/// The secret keys that can open a backup, from `--identity FILE` or `DBBACKUP_IDENTITY`:
/// an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments) or an unencrypted OpenSSH
/// private key. Its text is never shown, not even in `Debug`.
pub struct Identity {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// `--identity FILE` or `DBBACKUP_IDENTITY`, for messages.
    origin: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity(*** from {})", self.origin)
    }
}

impl Identity {
    /// `--identity FILE` when given, else `DBBACKUP_IDENTITY` when set and not empty, else none.
    pub fn from_sources(file: Option<&Path>) -> Result<Option<Identity>> {
        if let Some(file) = file {
            let origin = format!("--identity {}", file.display());
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::Identity(format!("{origin}: cannot read the identity file: {e}"))
            })?;
            return Identity::parse(&text, origin).map(Some);
        }
        match std::env::var(IDENTITY_VAR) {
            Ok(text) if !text.trim().is_empty() => {
                Identity::parse(&text, IDENTITY_VAR.to_string()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Parses an identity's text. Errors name the origin and a line number, never the text.
    pub fn parse(text: &str, origin: String) -> Result<Identity> {
        let bad = |why: String| Error::Identity(format!("{origin}: {why}; {IDENTITY_HINT}"));
        let keys: Vec<Box<dyn age::Identity + Send + Sync>> =
            if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
                match age::ssh::Identity::from_buffer(text.as_bytes(), None) {
                    Ok(key @ age::ssh::Identity::Unencrypted(_)) => vec![Box::new(key)],
                    Ok(age::ssh::Identity::Encrypted(_)) => {
                        return Err(bad("the SSH private key is passphrase-protected, which a \
                                        CI job cannot unlock: use an age identity or an SSH key \
                                        without passphrase"
                            .into()));
                    }
                    Ok(_) => return Err(bad("this SSH key type is not supported by age".into())),
                    Err(e) => return Err(bad(format!("not a usable SSH private key ({e})"))),
                }
            } else {
                age::IdentityFile::from_buffer(text.as_bytes())
                    .and_then(|f| f.into_identities().map_err(io::Error::other))
                    .map_err(|e| {
                        bad(format!(
                            "not an age identity file or OpenSSH private key ({e})"
                        ))
                    })?
            };
        if keys.is_empty() {
            return Err(bad("it holds no secret key".into()));
        }
        Ok(Identity { keys, origin })
    }

    fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }
}

/// The readable sidecar of an encrypted backup (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub manifest_version: u32,
    pub tool: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// File name of the encrypted archive.
    pub archive: String,
    /// Bytes of the `.age` file on disk.
    pub encrypted_bytes: u64,
    /// sha256 of the `.age` file, lowercase hex.
    pub encrypted_sha256: String,
    pub encryption: Encryption,
    /// The manifest (JSON), age-encrypted to the same recipients, base64.
    pub manifest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always `age`.
    pub scheme: String,
    /// The public keys that can open the backup, as given to `--encrypt-to`.
    pub recipients: Vec<String>,
}

impl Envelope {
    /// The envelope (as JSON) of the backup `manifest` describes, whose `.age` file measured
    /// `sealed`: the manifest goes inside, encrypted to `recipients`.
    pub fn seal(manifest: &Manifest, sealed: &Sealed, recipients: &Recipients) -> Result<String> {
        let inner = recipients
            .seal(manifest.to_json_pretty().as_bytes())
            .map_err(|e| Error::Internal(format!("encrypting the manifest failed: {e}")))?;
        let envelope = Envelope {
            manifest_version: MANIFEST_VERSION,
            tool: manifest.tool.clone(),
            created_at: manifest.created_at.clone(),
            archive: manifest.archive.clone(),
            encrypted_bytes: sealed.bytes,
            encrypted_sha256: sealed.sha256.clone(),
            encryption: Encryption {
                scheme: "age".into(),
                recipients: recipients.shown().to_vec(),
            },
            manifest: BASE64.encode(inner),
        };
        Ok(serde_json::to_string_pretty(&envelope).expect("an envelope always serializes"))
    }

    /// `age1…, ssh-ed25519 …` for messages.
    pub fn recipients_text(&self) -> String {
        self.encryption.recipients.join(", ")
    }

    /// The manifest inside, decrypted with `identity`. `sidecar` names the file in errors.
    fn open(&self, sidecar: &Path, identity: Option<&Identity>) -> Result<Manifest> {
        let sealed = BASE64.decode(self.manifest.trim()).map_err(|e| {
            Error::unreadable(
                sidecar,
                format!("the encrypted manifest is not base64 ({e})"),
            )
        })?;
        let mut plain = Vec::new();
        decrypt(&sealed[..], identity, self, sidecar)?
            .read_to_end(&mut plain)
            .map_err(|e| {
                Error::unreadable(
                    sidecar,
                    format!("the encrypted manifest failed age's authentication: {e}"),
                )
            })?;
        Manifest::parse(&plain).map_err(|reason| Error::unreadable(sidecar, reason))
    }
}

/// Whether the backup `archive` is encrypted, judged by its contents rather than its name (a
/// renamed plain file must not pass the public-repository guard): an age file whose sidecar
/// is an envelope.
pub fn is_encrypted(archive: &Path) -> bool {
    let mut magic = [0u8; AGE_MAGIC.len()];
    let age_file = std::fs::File::open(archive)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *AGE_MAGIC);
    let sidecar = std::fs::read(super::manifest::path_for(archive)).unwrap_or_default();
    age_file && is_envelope(&sidecar)
}

fn is_envelope(sidecar: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(sidecar)
        .is_ok_and(|v| v.get("encryption").is_some())
}

/// How every age file begins.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// What a backup's sidecar held: a plain manifest, or an encrypted backup's envelope with the
/// manifest decrypted from it.
pub fn open_manifest(
    sidecar: &Path,
    identity: Option<&Identity>,
) -> Result<(Manifest, Option<Envelope>)> {
    let bytes = std::fs::read(sidecar)
        .map_err(|e| Error::unreadable(sidecar, format!("manifest missing or unreadable: {e}")))?;
    open_manifest_bytes(&bytes, sidecar, identity)
}

/// [`open_manifest`] of a sidecar already read (from a store that is not a directory);
/// `sidecar` names it in errors.
pub fn open_manifest_bytes(
    bytes: &[u8],
    sidecar: &Path,
    identity: Option<&Identity>,
) -> Result<(Manifest, Option<Envelope>)> {
    if !is_envelope(bytes) {
        let manifest = Manifest::parse(bytes).map_err(|r| Error::unreadable(sidecar, r))?;
        return Ok((manifest, None));
    }
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| {
        Error::unreadable(sidecar, format!("not a dbbackup encrypted manifest ({e})"))
    })?;
    if envelope.encryption.scheme != "age" {
        return Err(Error::unreadable(
            sidecar,
            format!(
                "encrypted with {:?}, which this dbbackup does not know: upgrade dbbackup",
                envelope.encryption.scheme
            ),
        ));
    }
    let manifest = envelope.open(sidecar, identity)?;
    Ok((manifest, Some(envelope)))
}

/// A reader of `input`'s plaintext. No identity, or one that is not among the recipients, is
/// an [`Error::Identity`] naming the recipients; a damaged header makes `what` (the file
/// `input` reads) unreadable.
/// The payload is authenticated chunk by chunk as it is read: a damaged chunk is a read error,
/// never garbage.
pub fn decrypt<R: BufRead>(
    input: R,
    identity: Option<&Identity>,
    envelope: &Envelope,
    what: &Path,
) -> Result<age::stream::StreamReader<R>> {
    let Some(identity) = identity else {
        return Err(Error::Identity(format!(
            "backup {} is encrypted to {} and no identity was given: {IDENTITY_HINT}",
            envelope.archive,
            envelope.recipients_text()
        )));
    };
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| damaged(what, &e))?;
    decryptor.decrypt(identity.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Error::Identity(format!(
            "backup {} is encrypted to {}, and the identity from {} is none of them: \
             {IDENTITY_HINT}",
            envelope.archive,
            envelope.recipients_text(),
            identity.origin
        )),
        other => damaged(what, &other),
    })
}

fn damaged(what: &Path, err: &age::DecryptError) -> Error {
    Error::unreadable(
        what,
        format!("not a readable age file, damaged or altered ({err})"),
    )
}

/// What encrypting the archive measured: the `.age` file's size and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub bytes: u64,
    pub sha256: String,
}

/// The writer a backup's gzip stream goes into: the file itself, or age encrypting into it
/// with the ciphertext hashed on the way, so nothing is written or read twice.
pub enum Sink<W: Write> {
    Plain(W),
    Age(age::stream::StreamWriter<HashingWriter<W>>),
}

impl<W: Write> Sink<W> {
    pub fn new(inner: W, recipients: Option<&Recipients>) -> io::Result<Self> {
        match recipients {
            None => Ok(Sink::Plain(inner)),
            Some(r) => Ok(Sink::Age(
                r.encryptor()?.wrap_output(HashingWriter::new(inner))?,
            )),
        }
    }

    /// Ends the age stream (its last chunk is what authenticates the end of the file).
    pub fn finish(self) -> io::Result<(W, Option<Sealed>)> {
        match self {
            Sink::Plain(w) => Ok((w, None)),
            Sink::Age(stream) => {
                let (w, bytes, sha256) = stream.finish()?.finish();
                Ok((w, Some(Sealed { bytes, sha256 })))
            }
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use age::secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::archive::compress::hex;

    /// A fresh key pair: the identity and its public key.
    fn key() -> (age::x25519::Identity, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        (id, public)
    }

    fn secret_text(id: &age::x25519::Identity) -> String {
        id.to_string().expose_secret().to_string()
    }

    #[test]
    fn recipients_split_on_lines_and_commas_and_refuse_secrets() {
        let ((_, a), (_, b)) = (key(), key());
        let list = Recipients::parse(&[format!("# team\n{a}\n\n"), format!("{b}, {a}")])
            .unwrap()
            .unwrap();
        assert_eq!(list.shown(), [a.as_str(), b.as_str()]);
        assert_eq!(list.keys.len(), 3);
        assert!(
            Recipients::parse(&["  \n# only a comment".into()])
                .unwrap()
                .is_none()
        );
        let secret = secret_text(&key().0);
        let err = Recipients::parse(std::slice::from_ref(&secret))
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains(&secret) && err.contains("secret key"),
            "{err}"
        );
        assert!(Recipients::parse(&["age1nope".into()]).is_err());
    }

    #[test]
    fn sink_round_trips_and_hashes_the_ciphertext() {
        let (id, public) = key();
        let recipients = Recipients::parse(&[public]).unwrap().unwrap();
        let mut sink = Sink::new(Vec::new(), Some(&recipients)).unwrap();
        sink.write_all(&[7u8; 200_000]).unwrap();
        let (file, sealed) = sink.finish().unwrap();
        let sealed = sealed.unwrap();
        assert_eq!(sealed.bytes, file.len() as u64);
        assert_eq!(sealed.sha256, hex(&Sha256::digest(&file)));
        let decryptor = age::Decryptor::new_buffered(&file[..]).unwrap();
        let mut plain = Vec::new();
        decryptor
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, vec![7u8; 200_000]);
    }

    #[test]
    fn identity_errors_and_debug_never_show_the_key() {
        let text = "AGE-SECRET-KEY-1NOTAREALKEYBUTSECRETLOOKING";
        let err = Identity::parse(text, IDENTITY_VAR.into())
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("NOTAREALKEY") && err.contains(IDENTITY_VAR),
            "{err}"
        );
        let secret = secret_text(&key().0);
        let identity = Identity::parse(&format!("# created: now\n{secret}\n"), "x".into()).unwrap();
        let shown = format!("{identity:?}");
        assert!(!shown.contains(&secret) && shown.contains("***"), "{shown}");
    }
}
