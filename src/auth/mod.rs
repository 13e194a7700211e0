//! Authentication primitives: Argon2id password hashes, signed access tokens (JWT, HS256) and opaque refresh
//! tokens. No HTTP and no storage here; `api` combines these with the store.

mod password;
mod tokens;

pub use password::{hash_password, verify_password};
pub use tokens::{AccessClaims, TokenError, Tokens, hash_secret, new_refresh_token, random_secret, turn_credential};
