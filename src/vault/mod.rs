//! Encryption at rest. A master key (from `CANDOR_MASTER_KEY`, or generated once into the data directory)
//! wraps a random data key per recording; the data key seals the recording in authenticated chunks (`sealed`).
//! Sensitive text columns (job descriptions, transcripts, report texts) are sealed one value at a time by a
//! field key (`FieldCipher`), itself a data key wrapped by the master key and kept in the database.
//! Rows keep the wrapped data key and the id of the master key that wrapped it, so the master key can be
//! rotated: the new one wraps new data keys, retired ones (`CANDOR_RETIRED_MASTER_KEYS`) still unwrap old ones,
//! and `candor keys rewrap` moves every row to the current key. AES-256-GCM throughout (ring).

pub mod sealed;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the master key must be at least 32 characters")]
    WeakMasterKey,
    #[error("no master key with id {0} is configured (was it retired without rewrapping?)")]
    UnknownMasterKey(String),
    #[error("the data key does not unwrap: wrong master key or damaged row")]
    Unwrap,
    #[error("chunk {0} fails authentication: the data was changed or damaged")]
    Damaged(u64),
    #[error("the sealed stream is malformed: {0}")]
    Malformed(String),
    #[error("no randomness available")]
    Random,
}

/// A key derived from a master secret; its id names it in rows without revealing it.
struct MasterKey {
    id: String,
    key: LessSafeKey,
}

impl MasterKey {
    fn derive(secret: &str) -> Result<Self, VaultError> {
        if secret.trim().len() < 32 {
            return Err(VaultError::WeakMasterKey);
        }
        let mut bytes = [0u8; KEY_LEN];
        hkdf::Salt::new(hkdf::HKDF_SHA256, b"candor-master-key")
            .extract(secret.trim().as_bytes())
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| VaultError::WeakMasterKey)?;
        let id = hex(&Sha256::digest(bytes)[..6]);
        Ok(Self { id, key: aes_key(&bytes) })
    }
}

/// A recording's own key, as it is used and never stored in the clear.
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    pub fn cipher(&self) -> LessSafeKey {
        aes_key(&self.0)
    }
}

/// A data key sealed by a master key: what rows keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub master_key_id: String,
    /// Base64 of nonce, ciphertext and tag.
    pub sealed: String,
}

pub struct Vault {
    current: MasterKey,
    retired: Vec<MasterKey>,
    random: SystemRandom,
}

impl Vault {
    pub fn new(master: &SecretString, retired: &[SecretString]) -> Result<Self, VaultError> {
        Ok(Self {
            current: MasterKey::derive(master.expose_secret())?,
            retired: retired.iter().map(|s| MasterKey::derive(s.expose_secret())).collect::<Result<_, _>>()?,
            random: SystemRandom::new(),
        })
    }

    /// The current master key's id.
    pub fn master_key_id(&self) -> &str {
        &self.current.id
    }

    /// A fresh random data key and its wrapped form.
    pub fn new_data_key(&self) -> Result<(DataKey, WrappedKey), VaultError> {
        let mut key = [0u8; KEY_LEN];
        self.random.fill(&mut key).map_err(|_| VaultError::Random)?;
        let wrapped = self.wrap(&key)?;
        Ok((DataKey(key), wrapped))
    }

    pub fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, VaultError> {
        let master = std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|m| m.id == wrapped.master_key_id)
            .ok_or_else(|| VaultError::UnknownMasterKey(wrapped.master_key_id.clone()))?;
        let mut sealed = STANDARD.decode(&wrapped.sealed).map_err(|_| VaultError::Unwrap)?;
        if sealed.len() != NONCE_LEN + KEY_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Unwrap);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| VaultError::Unwrap)?;
        let plain =
            master.key.open_in_place(nonce, Aad::from(master.id.as_bytes()), &mut sealed[NONCE_LEN..]).map_err(|_| VaultError::Unwrap)?;
        let key: [u8; KEY_LEN] = plain.try_into().map_err(|_| VaultError::Unwrap)?;
        Ok(DataKey(key))
    }

    /// The same data key wrapped by the current master key, or `None` when it already is.
    pub fn rewrap(&self, wrapped: &WrappedKey) -> Result<Option<WrappedKey>, VaultError> {
        if wrapped.master_key_id == self.current.id {
            return Ok(None);
        }
        let key = self.unwrap(wrapped)?;
        self.wrap(&key.0).map(Some)
    }

    fn wrap(&self, key: &[u8; KEY_LEN]) -> Result<WrappedKey, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut sealed = key.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(self.current.id.as_bytes()), &mut sealed)
            .map_err(|_| VaultError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(WrappedKey { master_key_id: self.current.id.clone(), sealed: STANDARD.encode(out) })
    }
}

/// Seals and opens single text values. A sealed value is `enc1:` and the base64 of a random nonce, the
/// ciphertext and its tag; the column's name is the associated data, so a value moved to another column does not
/// open. Values without the prefix (written before encryption was on) read as they are.
pub struct FieldCipher {
    key: LessSafeKey,
    random: SystemRandom,
}

const FIELD_PREFIX: &str = "enc1:";

impl FieldCipher {
    pub fn new(key: &DataKey) -> Self {
        Self { key: key.cipher(), random: SystemRandom::new() }
    }

    pub fn seal(&self, column: &str, text: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut sealed = text.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(column.as_bytes()), &mut sealed)
            .map_err(|_| VaultError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{FIELD_PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, column: &str, stored: &str) -> Result<String, VaultError> {
        let Some(encoded) = stored.strip_prefix(FIELD_PREFIX) else { return Ok(stored.to_string()) };
        let damaged = || VaultError::Damaged(0);
        let mut bytes = STANDARD.decode(encoded).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(damaged());
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).map_err(|_| damaged())?;
        let plain = self.key.open_in_place(nonce, Aad::from(column.as_bytes()), &mut bytes[NONCE_LEN..]).map_err(|_| damaged())?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged())
    }
}

fn aes_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.repeat(40))
    }

    #[test]
    fn data_keys_unwrap_under_the_master_key_that_wrapped_them_and_survive_rotation() {
        let old = Vault::new(&secret("a"), &[]).unwrap();
        let (key, wrapped) = old.new_data_key().unwrap();
        assert_eq!(old.unwrap(&wrapped).unwrap().0, key.0);
        assert!(!wrapped.sealed.contains(&STANDARD.encode(key.0)), "the key is not stored in the clear");

        let stranger = Vault::new(&secret("b"), &[]).unwrap();
        assert_eq!(stranger.unwrap(&wrapped).err(), Some(VaultError::UnknownMasterKey(old.master_key_id().into())));

        let rotated = Vault::new(&secret("b"), &[secret("a")]).unwrap();
        assert_eq!(rotated.unwrap(&wrapped).unwrap().0, key.0, "a retired key still unwraps");
        let moved = rotated.rewrap(&wrapped).unwrap().expect("moved to the current key");
        assert_eq!(moved.master_key_id, rotated.master_key_id());
        assert_eq!(stranger.unwrap(&moved).unwrap().0, key.0, "after rewrapping, the old key is not needed");
        assert_eq!(rotated.rewrap(&moved).unwrap(), None);
    }

    #[test]
    fn field_values_are_sealed_per_column_and_old_plain_values_still_read() {
        let vault = Vault::new(&secret("a"), &[]).unwrap();
        let (key, _) = vault.new_data_key().unwrap();
        let fields = FieldCipher::new(&key);
        let sealed = fields.seal("turns.text", "I led the migration.").unwrap();
        assert!(sealed.starts_with("enc1:") && !sealed.contains("migration"));
        assert_ne!(sealed, fields.seal("turns.text", "I led the migration.").unwrap(), "a fresh nonce each time");
        assert_eq!(fields.open("turns.text", &sealed).unwrap(), "I led the migration.");
        assert_eq!(fields.open("reports.summary", &sealed), Err(VaultError::Damaged(0)), "bound to its column");
        assert_eq!(fields.open("turns.text", "written before encryption").unwrap(), "written before encryption");
        let mut bytes = STANDARD.decode(&sealed[5..]).unwrap();
        bytes[14] ^= 1;
        assert!(fields.open("turns.text", &format!("enc1:{}", STANDARD.encode(bytes))).is_err());
    }

    #[test]
    fn a_changed_wrapped_key_or_a_short_master_key_is_refused() {
        let vault = Vault::new(&secret("a"), &[]).unwrap();
        let (_, mut wrapped) = vault.new_data_key().unwrap();
        let mut bytes = STANDARD.decode(&wrapped.sealed).unwrap();
        bytes[20] ^= 1;
        wrapped.sealed = STANDARD.encode(bytes);
        assert_eq!(vault.unwrap(&wrapped).err(), Some(VaultError::Unwrap));
        assert_eq!(Vault::new(&SecretString::from("short"), &[]).err(), Some(VaultError::WeakMasterKey));
    }
}
