//! age keys: recipients (public, for the backup host) and identities
//! (private, for the restore host). Loading fails closed: no file, an
//! unreadable file, an empty one, a malformed line or a private key where a
//! public one belongs is an error before anything connects anywhere.

use std::path::Path;
use std::str::FromStr;

use age::x25519;

use crate::exit;

/// Read and parse a key file; every failure is a usage error naming the file.
fn read_keys<T>(
    path: &Path,
    what: &str,
    parse: fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        exit::usage(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text).map_err(|e| exit::usage(format!("{what} file {}: {e}", path.display())))
}

/// The public keys backups are encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
}

impl Recipients {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = path.ok_or_else(|| {
            exit::usage(
                "no age recipients: set --recipients-file or STOCKOPS_AGE_RECIPIENTS to a file of age1... public keys, \
                 one a line (as `age -R`); backups are never written unencrypted",
            )
        })?;
        read_keys(path, "recipients", Self::parse)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("AGE-SECRET-KEY-") {
                return Err(format!(
                    "line {} is a private key: the backup host holds only public recipients (`age-keygen -y` prints one)",
                    n + 1
                ));
            }
            let key = x25519::Recipient::from_str(line)
                .map_err(|e| format!("line {} is not an age recipient (age1...): {e}", n + 1))?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("it holds no recipient (one age1... public key a line)".into());
        }
        Ok(Self { keys })
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Recipient> {
        self.keys.iter().map(|k| k as &dyn age::Recipient)
    }

    /// The public keys, as written in manifests (they are public).
    pub fn public(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.to_string()).collect()
    }
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.public()).finish()
    }
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities(for {:?})", self.public())
    }
}

/// The private keys a restore decrypts with.
#[derive(Clone)]
pub struct Identities {
    keys: Vec<x25519::Identity>,
}

impl Identities {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = path.ok_or_else(|| {
            exit::usage("no age identity: set --identity-file or STOCKOPS_AGE_IDENTITY to the private key file (as `age -i`)")
        })?;
        read_keys(path, "identity", Self::parse)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = x25519::Identity::from_str(line).map_err(|_| {
                format!("line {} is not an age identity (AGE-SECRET-KEY-...)", n + 1)
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("it holds no identity".into());
        }
        Ok(Self { keys })
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k as &dyn age::Identity)
    }

    /// The recipients these identities decrypt for.
    pub fn public(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn recipients_fail_closed() {
        assert!(Recipients::parse("").is_err());
        assert!(Recipients::parse("# only a comment\n").is_err());
        assert!(Recipients::parse("age1notakey\n")
            .unwrap_err()
            .contains("line 1"));
        let id = x25519::Identity::generate();
        let secret = id.to_string();
        let err = Recipients::parse(secret.expose_secret()).unwrap_err();
        assert!(err.contains("private key"), "{err}");
        let two = format!(
            "{}\n\n# escrow\n{}\n",
            id.to_public(),
            x25519::Identity::generate().to_public()
        );
        assert_eq!(Recipients::parse(&two).unwrap().public().len(), 2);
    }

    #[test]
    fn identities_parse_and_name_their_recipient() {
        let id = x25519::Identity::generate();
        let ids = Identities::parse(id.to_string().expose_secret()).unwrap();
        assert_eq!(ids.public(), vec![id.to_public().to_string()]);
        assert!(Identities::parse("age1xyz").is_err());
    }
}
